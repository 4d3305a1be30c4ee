#!/usr/bin/env bash
# A fuzzing smoke run: every cargo-fuzz target of fuzz/ for SECONDS (default 10) each, from its
# seed corpus, one after another (one fuzzer process at a time). Fails on any crash.
#
#   scripts/fuzz.sh [SECONDS]
#
# Needs the nightly toolchain (`cargo +nightly`); installs cargo-fuzz into the default cargo bin
# when it is missing. Quiet: one summary line per target. The seed corpora under fuzz/corpus/
# are left as they are (libFuzzer grows a scratch copy); a crash's input is kept in
# fuzz/artifacts/<target>/ (not committed) and its panic is printed.
#
# SR_FUZZ_ALLOW=multiline,... tolerates a reported, unfixed finding (see fuzz/src/lib.rs); it
# is passed on as it is set, and is unset by default.
set -euo pipefail

secs="${1:-10}"
case "$secs" in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz="$root/fuzz"
cd "$fuzz"

if ! cargo +nightly --version > /dev/null 2>&1; then
  echo "fuzz: the nightly toolchain is needed (cargo +nightly); none is installed" >&2
  exit 1
fi
if ! cargo fuzz --version > /dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install --locked cargo-fuzz --version '^0.13' --quiet > /dev/null 2>&1 \
    || { echo "fuzz: cargo install cargo-fuzz failed" >&2; exit 1; }
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# The same flags as long runs (-a: debug assertions, overflow checks), so their build is shared.
if ! cargo +nightly fuzz build -a > "$scratch/build.log" 2>&1; then
  tail -n 40 "$scratch/build.log" >&2
  echo "fuzz: build failed" >&2
  exit 1
fi
triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
bin="$fuzz/target/$triple/release"

failed=0
targets="$(cargo +nightly fuzz list 2> /dev/null)"
for t in $targets; do
  mkdir -p "$scratch/$t/corpus" "$scratch/$t/artifacts"
  log="$scratch/$t/log"
  rc=0
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}" "$bin/$t" \
    "$scratch/$t/corpus" "$fuzz/corpus/$t" \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$scratch/$t/artifacts/" > "$log" 2>&1 || rc=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
  last="$(grep -a -E '^#[0-9]+' "$log" | tail -n 1 || true)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")"
  corp="$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<< "$last")"
  artifact="$(ls "$scratch/$t/artifacts" 2> /dev/null | head -n 1)"
  if [ "$rc" -eq 0 ] && [ -z "$artifact" ]; then
    echo "fuzz $t: ok, ${secs}s, ${execs:-?} execs (${rate:-?}/s), cov ${cov:-?} ft ${ft:-?}, corpus ${corp:-?}"
  else
    failed=1
    keep="$fuzz/artifacts/$t"
    mkdir -p "$keep"
    [ -n "$artifact" ] && cp "$scratch/$t/artifacts/$artifact" "$keep/"
    why="$(grep -a -m 1 -A 1 -E 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer' "$log" | tr '\n' ' ' | cut -c 1-400 || true)"
    echo "fuzz $t: FAILED (exit $rc) ${why:-see the log}; input: ${artifact:+fuzz/artifacts/$t/$artifact}"
  fi
done
exit "$failed"
