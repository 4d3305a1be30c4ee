#!/usr/bin/env bash
# Builds the fully static release binary (glibc with crt-static, rustls: no OpenSSL, no loader)
# that the container image holds alone with a CA bundle. Used by the Dockerfile and the tests.
#   scripts/build-static.sh [TARGET]        TARGET: x86_64-unknown-linux-gnu (default) or aarch64-unknown-linux-gnu
# Prints the binary's path.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-$(rustc -vV | sed -n 's/^host: //p')}
case "$target" in
  aarch64-unknown-linux-gnu)
    if [ "$(uname -m)" != aarch64 ]; then
      # Cross-compiling from x86_64: Debian's gcc-aarch64-linux-gnu links, and builds aws-lc.
      export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
      export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
      export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
    fi ;;
  x86_64-unknown-linux-gnu) ;;
  *) echo "build-static: unsupported target $target" >&2; exit 2 ;;
esac
# --target keeps RUSTFLAGS off build scripts and proc macros, which must stay dynamic.
RUSTFLAGS="-C target-feature=+crt-static ${RUSTFLAGS:-}" \
  cargo build --release --locked --target "$target" --target-dir target/static >&2
bin="target/static/$target/release/secret-rotator"
if readelf -l "$bin" | grep -q 'Requesting program interpreter'; then
  echo "build-static: $bin is not static" >&2
  exit 1
fi
echo "$bin"
