#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (into .test-deps/),
# then formatting, lints, unit tests, end-to-end tests against real servers on loopback, the container
# images built and run with podman (scripts/image-test.sh), and a
# fuzzing smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/test-deps.sh
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --locked --all-targets 2>&1 | tee .test-deps/test.log
# The closing line for CI: totals over every test binary.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "tests: %d passed, %d failed\n", p, f; if (i > 0) printf "(%d ignored)\n", i }' .test-deps/test.log
# The ignored tests are tests/image.rs: they need the images, which this builds, then runs them.
echo "== image test (podman: the action's and the GitLab component's images, run as the runners run them)"
scripts/image-test.sh
echo "== fuzz smoke run (every cargo-fuzz target 10 s from its seeds; longer runs: scripts/fuzz.sh SECONDS)"
scripts/fuzz.sh 10
# The closing lines for CI: the fault matrix's totals (its table is in target/fault-matrix.md).
if [ -f target/fault-matrix.md ]; then tail -n 1 target/fault-matrix.md; fi
cat target/image-test.txt
