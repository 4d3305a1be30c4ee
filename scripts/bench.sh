#!/usr/bin/env bash
# Benchmarks (not tests): binary size, start-up, one rotation on loopback; (a) 50 GitHub targets
# at 50 ms added latency next to a loop of 50 `gh secret set` against the same stand-in; (b) 500
# targets against a stand-in that enforces GitHub's secondary limits (900 points a minute, 100
# concurrent requests; 403 + retry-after beyond them): wall time against the budget's floor; (c) 30
# rotations of 2 targets each, parallel_rotations 8 against 1; (d) peak RSS of (a) and (b).
# Prints a Markdown table. Needs what scripts/test-deps.sh installs. SKIP_LARGE=1 leaves out (b),
# which takes about six minutes by design (it is paced by a one-minute budget).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-deps.sh >/dev/null
cargo build --release -q
bin=$PWD/target/release/secret-rotator
deps=$PWD/.test-deps
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
py() { "$deps/venv/bin/python" -c "$@"; }
wait_port() { for _ in $(seq 200); do [ -s "$1" ] && return; sleep 0.05; done; echo "server did not start" >&2; exit 1; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

size=$(stat -c %s "$bin")
static=$PWD/$(scripts/build-static.sh 2>/dev/null)
static_size=$(stat -c %s "$static")
ca_size=$(stat -c %s /etc/ssl/certs/ca-certificates.crt)

# Start-up of the image's binary: --version, 50 runs.
start=$(date +%s.%N); for _ in $(seq 50); do "$static" --version >/dev/null; done; end=$(date +%s.%N)
startup_ms=$(py "print(f'{($end-$start)/50*1000:.1f}')")

# One rotation: real OAuth2 server + stand-in, 5 runs; wall time and peak RSS of the binary.
cp tests/support/oauth_server.mjs "$deps/node/"
"$deps/node/node_modules/.bin/node" "$deps/node/oauth_server.mjs" "$work/oauth.port" >/dev/null 2>&1 & pids+=($!)
"$deps/venv/bin/python" tests/support/github_standin.py "$work/gh.port" & pids+=($!)
wait_port "$work/oauth.port"; wait_port "$work/gh.port"
oauth="http://127.0.0.1:$(cat "$work/oauth.port")"; gh="http://127.0.0.1:$(cat "$work/gh.port")"
curl -fsS -XPOST "$gh/_control/setup" -H 'content-type: application/json' -d '{"tokens":{"ghp_bench":{"repos":"*"}},"repos":{"acme/app":{}}}' >/dev/null
: > "$work/one-ms.txt"; : > "$work/one-rss.txt"
for _ in 1 2 3 4 5; do
  rt=$(curl -fsS -XPOST "$oauth/_test/mint?client_id=ci-basic" | py 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
  env -i PATH="$PATH" GITHUB_API_URL="$gh" INPUT_PROVIDER=oauth2 INPUT_TARGET=github INPUT_REPOSITORY=acme/app \
    INPUT_TOKEN_URL="$oauth/token" INPUT_CLIENT_ID=ci-basic INPUT_CLIENT_SECRET=basic-client-secret-0123456789 \
    INPUT_REFRESH_TOKEN="$rt" INPUT_GITHUB_TOKEN=ghp_bench INPUT_SECRET_NAME=BENCH_TOKEN INPUT_LOG_LEVEL=error \
    /usr/bin/time -f "%M" -a -o "$work/one-rss.txt" "$bin" rotate
  # wall time in ms, measured on a second rotation (time's %e has 10 ms resolution)
  rt=$(curl -fsS -XPOST "$oauth/_test/mint?client_id=ci-basic" | py 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
  s0=$(date +%s%N)
  env -i PATH="$PATH" GITHUB_API_URL="$gh" INPUT_PROVIDER=oauth2 INPUT_TARGET=github INPUT_REPOSITORY=acme/app \
    INPUT_TOKEN_URL="$oauth/token" INPUT_CLIENT_ID=ci-basic INPUT_CLIENT_SECRET=basic-client-secret-0123456789 \
    INPUT_REFRESH_TOKEN="$rt" INPUT_GITHUB_TOKEN=ghp_bench INPUT_SECRET_NAME=BENCH_TOKEN INPUT_LOG_LEVEL=error "$bin" rotate
  echo $(( ($(date +%s%N) - s0) / 1000000 )) >> "$work/one-ms.txt"
done
one_wall=$(median < "$work/one-ms.txt")
one_rss=$(median < "$work/one-rss.txt")

# 50 targets at 50 ms added latency per request, over HTTPS (gh requires it).
d=$work/tls
mkdir -p "$d"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bench CA" -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout "$d/key.pem" -out "$d/leaf.csr" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$d/leaf.ext"
openssl x509 -req -in "$d/leaf.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 -extfile "$d/leaf.ext" -out "$d/cert.pem" 2>/dev/null
"$deps/venv/bin/python" tests/support/github_standin.py "$work/slow.port" --tls "$d/cert.pem" "$d/key.pem" --latency-ms 50 & pids+=($!)
wait_port "$work/slow.port"
slow="https://localhost:$(cat "$work/slow.port")"
repos=$(py 'import json; print(json.dumps({f"acme/r{i:02}": {} for i in range(1, 51)}))')
# gh 2.23 sends no X-GitHub-Api-Version (it predates the header); the stand-in lets its User-Agent through.
curl -fsS --cacert "$d/ca.pem" -XPOST "$slow/_control/setup" -H 'content-type: application/json' -d "{\"tokens\":{\"ghp_bench\":{\"repos\":\"*\"}},\"repos\":$repos,\"allow_unversioned\":[\"GitHub CLI \"]}" >/dev/null

{
  echo "github: { token: { env: GH_TOKEN }, api_url: $slow }"
  echo "rotations:"
  echo "  - name: fifty"
  echo "    provider: { type: oauth2, token_url: $oauth/token, client_id: ci-basic, client_secret: { env: CS }, refresh_token: { env: RT } }"
  echo "    targets:"
  for i in $(seq -w 1 50); do echo "      - github: { repository: acme/r$i, secret: BENCH_TOKEN }"; done
} > "$work/fifty.yml"
: > "$work/fifty-ms.txt"; : > "$work/fifty-rss.txt"
for _ in 1 2 3 4 5; do
  rt=$(curl -fsS -XPOST "$oauth/_test/mint?client_id=ci-basic" | py 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
  s0=$(date +%s%N)
  env -i PATH="$PATH" GH_TOKEN=ghp_bench CS=basic-client-secret-0123456789 RT="$rt" INPUT_LOG_LEVEL=error \
    /usr/bin/time -f "%M" -a -o "$work/fifty-rss.txt" "$bin" rotate --config "$work/fifty.yml" --ca-file "$d/ca.pem"
  echo $(( ($(date +%s%N) - s0) / 1000000 )) >> "$work/fifty-ms.txt"
done
fifty_ms=$(median < "$work/fifty-ms.txt"); fifty_rss=$(median < "$work/fifty-rss.txt")
fifty_requests=$(curl -fsS --cacert "$d/ca.pem" "$slow/_control/requests" | py 'import json,sys; print(len(json.load(sys.stdin)) // 5)')

host=${slow#https://}
# The gh loop three times (its time varies more than ours): the median.
: > "$work/gh-s.txt"
for _ in 1 2 3; do
  start=$(date +%s.%N)
  for i in $(seq -w 1 50); do
    env -i PATH="$PATH" HOME="$work" GH_HOST="$host" GH_ENTERPRISE_TOKEN=ghp_bench SSL_CERT_FILE="$d/ca.pem" GH_NO_UPDATE_NOTIFIER=1 \
      gh secret set BENCH_TOKEN --body "value-$i" --repo "acme/r$i" >/dev/null
  done
  end=$(date +%s.%N)
  py "print(f'{$end-$start:.2f}')" >> "$work/gh-s.txt"
done
gh_wall=$(median < "$work/gh-s.txt")
ratio=$(py "print(f'{$gh_wall*1000/$fifty_ms:.1f}')")

# (c) 30 rotations × 2 targets at 50 ms latency: parallel_rotations 8 against 1.
parallel_run() {
  {
    echo "github: { token: { env: GH_TOKEN }, api_url: $slow }"
    echo "parallel_rotations: $1"
    echo "rotations:"
    for i in $(seq -w 1 30); do
      echo "  - name: p$i"
      echo "    provider: { type: oauth2, token_url: $oauth/token, client_id: ci-basic, client_secret: { env: CS }, refresh_token: { env: RT$i } }"
      echo "    targets:"
      echo "      - github: { repository: acme/r$i, secret: PAR_A }"
      echo "      - github: { repository: acme/r$i, secret: PAR_B }"
    done
  } > "$work/parallel.yml"
  local envs=()
  for i in $(seq -w 1 30); do
    envs+=("RT$i=$(curl -fsS -XPOST "$oauth/_test/mint?client_id=ci-basic" | py 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')")
  done
  local s0; s0=$(date +%s%N)
  env -i PATH="$PATH" GH_TOKEN=ghp_bench CS=basic-client-secret-0123456789 "${envs[@]}" INPUT_LOG_LEVEL=error \
    "$bin" rotate --config "$work/parallel.yml" --ca-file "$d/ca.pem"
  echo $(( ($(date +%s%N) - s0) / 1000000 ))
}
par1_ms=$(parallel_run 1)
par8_ms=$(parallel_run 8)
par_ratio=$(py "print(f'{$par1_ms/$par8_ms:.1f}')")

# (b) 500 targets (10 secrets in each of 50 repositories) against GitHub's limits.
if [ -z "${SKIP_LARGE:-}" ]; then
  "$deps/venv/bin/python" tests/support/github_standin.py "$work/limited.port" --tls "$d/cert.pem" "$d/key.pem" --latency-ms 50 & pids+=($!)
  wait_port "$work/limited.port"
  limited="https://localhost:$(cat "$work/limited.port")"
  curl -fsS --cacert "$d/ca.pem" -XPOST "$limited/_control/setup" -H 'content-type: application/json' \
    -d "{\"tokens\":{\"ghp_bench\":{\"repos\":\"*\"}},\"repos\":$repos,\"limits\":{\"points\":900,\"window\":60,\"concurrency\":100}}" >/dev/null
  {
    echo "github: { token: { env: GH_TOKEN }, api_url: $limited }"
    echo "rotations:"
    echo "  - name: five-hundred"
    echo "    provider: { type: oauth2, token_url: $oauth/token, client_id: ci-basic, client_secret: { env: CS }, refresh_token: { env: RT } }"
    echo "    targets:"
    for i in $(seq -w 1 50); do for j in $(seq 0 9); do echo "      - github: { repository: acme/r$i, secret: BENCH_TOKEN_$j }"; done; done
  } > "$work/five-hundred.yml"
  rt=$(curl -fsS -XPOST "$oauth/_test/mint?client_id=ci-basic" | py 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
  s0=$(date +%s%N)
  env -i PATH="$PATH" GH_TOKEN=ghp_bench CS=basic-client-secret-0123456789 RT="$rt" INPUT_LOG_LEVEL=error \
    /usr/bin/time -f "%M" -o "$work/five-hundred-rss.txt" "$bin" rotate --config "$work/five-hundred.yml" --ca-file "$d/ca.pem" \
    --report "$work/five-hundred.json" || true
  large_s=$(py "print(f'{($(date +%s%N) - $s0) / 1e9:.1f}')")
  large_rss=$(cat "$work/five-hundred-rss.txt")
  read -r large_points large_limited <<< "$(curl -fsS --cacert "$d/ca.pem" "$limited/_control/requests" | py '
import json, sys
log = json.load(sys.stdin)
ok = [r for r in log if not r.get("limited")]
print(sum(1 if r["method"] == "GET" else 5 for r in ok), len(log) - len(ok))')"
  large_failed=$(py "import json; r = json.load(open('$work/five-hundred.json')); print(sum(t['status'] != 'written' for t in r['rotations'][0]['targets']))")
  # The floor: the first minute's 900 points at once, every further 900 a minute later.
  large_floor=$(py "print(f'{max(0, $large_points - 900) / 900 * 60:.0f}')")
fi

echo "| what | result |"
echo "|---|---|"
echo "| release binary size | $size bytes ($(py "print(f'{$size/1048576:.1f}')") MiB) |"
echo "| static binary (the image's) | $static_size bytes ($(py "print(f'{$static_size/1048576:.1f}')") MiB) |"
echo "| image estimate: static binary + CA bundle | $((static_size + ca_size)) bytes ($(py "print(f'{($static_size+$ca_size)/1048576:.1f}')") MiB) |"
echo "| \`--version\` start-up of the static binary (mean of 50) | ${startup_ms} ms |"
echo "| one rotation on loopback (median of 5): wall time | ${one_wall} ms |"
echo "| one rotation on loopback (median of 5): peak RSS | ${one_rss} KiB |"
echo "| (a) 50 targets in 50 repositories, 50 ms latency, default pacing ($fifty_requests GitHub requests: 50 secret GETs, 50 key GETs, 50 preflight PUTs, 50 writes), median of 5: wall, peak RSS | ${fifty_ms} ms, ${fifty_rss} KiB |"
echo "| (a) 50 × \`gh secret set\` against the same stand-in (100 requests, serial), median of 3 | ${gh_wall} s: secret-rotator is **${ratio}×** faster |"
echo "| (c) 30 rotations × 2 targets, 50 ms latency: parallel_rotations 1, then 8 | ${par1_ms} ms, ${par8_ms} ms: **${par_ratio}×** |"
if [ -z "${SKIP_LARGE:-}" ]; then
  echo "| (b) 500 targets (50 repositories × 10), GitHub's limits enforced (900 points/min, 100 concurrent): wall, the budget's floor for its $large_points points, 403s served, failed targets, peak RSS | ${large_s} s, floor ${large_floor} s ($(py "print(f'{$large_s/max($large_floor,1):.2f}')")×), $large_limited, $large_failed, ${large_rss} KiB |"
fi
