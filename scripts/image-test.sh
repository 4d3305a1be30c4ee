#!/usr/bin/env bash
# The image test: builds the action's image (the Dockerfile's default target) and the GitLab
# component's image (`--target gitlab`) with podman, as the release workflow builds them, then runs
# tests/image.rs, which starts them the way the GitHub runner starts a docker action and the way
# GitLab runs the component's job script.
#
# No registry serves images here, so the Dockerfile's base images are local stand-ins (see
# make_rust_standin and make_busybox_standin), cached in podman's image store under a tag keyed by
# their recipe. The build uses a copy of the Dockerfile whose FROM lines alone name the stand-ins;
# any other difference fails the test.
#
# Ends with one line, also written to target/image-test.txt for the suite's closing summary:
#   image test: N passed, M failed (...)      or      image test: SKIP: <why podman cannot run>
# A SKIP happens only when podman itself cannot run a container here; every other problem fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$root/target/image-test
summary=$root/target/image-test.txt
mkdir -p "$work"
rm -f "$summary"
cache=${XDG_CACHE_HOME:-$HOME/.cache}/secret-rotator
mkdir -p "$cache"

say() { echo "image-test: $*" >&2; }
fail() { echo "image test: FAILED: $*" | tee "$summary" >&2; exit 1; }
skip() { echo "image test: SKIP: $*" | tee "$summary" >&2; exit 0; }

# Rootful podman: as root, else through passwordless sudo (as on GitHub's runners).
if [ "$(id -u)" = 0 ]; then
  sudo=()
elif sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  skip "podman needs root here and sudo asks for a password"
fi
command -v podman >/dev/null || fail "podman is not installed (scripts/test-deps.sh installs it)"
[ "$(uname -m)" = x86_64 ] || fail "the base-image stand-ins are made for x86_64 (this is $(uname -m))"

# The settings that work on these machines: runc (crun cannot set RLIMIT_NOFILE here), cgroupfs,
# ulimits the kernel grants, the host's network. Kept in a file of our own: the machine's
# containers.conf is left alone.
conf=$work/containers.conf
cat >"$conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "host"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
export CONTAINERS_CONF=$conf
pm() { "${sudo[@]}" env CONTAINERS_CONF="$conf" podman "$@"; }

# One image test at a time on a machine: runs share podman's store and the build cache.
exec 9>"$cache/image-test.lock"
flock 9

started=$(date +%s)

# --- stand-ins for the base images -----------------------------------------------------------

# rust:1.95-bookworm: Debian bookworm (minbase) with what the build stage uses (gcc and libc6-dev
# to link, ca-certificates for the image's CA bundle; binutils' readelf comes with gcc) and this
# machine's Rust 1.95 toolchain (x86_64 only, without its HTML docs) laid out as the official
# image lays it out (RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo). Cargo reaches
# crates.io through this machine's proxy, whose CA is only in the host's bundle: the stand-in
# carries that bundle outside /etc/ssl/certs as CARGO_HTTP_CAINFO, so the image keeps Debian's.
make_rust_standin() {
  local dir=$1 tag=$2 toolchain
  toolchain=$(readlink -f "$(rustc +1.95.0 --print sysroot)")
  [ -x "$toolchain/bin/cargo" ] || { echo "no Rust 1.95 toolchain with cargo at $toolchain" >&2; return 1; }
  "${sudo[@]}" debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates bookworm "$dir" \
    http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log" >&2; return 1; }
  "${sudo[@]}" chroot "$dir" apt-get clean
  "${sudo[@]}" rm -rf "$dir/var/lib/apt/lists"/* "$dir/var/cache/apt"/*.bin
  local rh=$dir/usr/local/rustup ch=$dir/usr/local/cargo
  "${sudo[@]}" mkdir -p "$rh/toolchains" "$ch/bin"
  "${sudo[@]}" rsync -a --exclude share/doc "$toolchain/" "$rh/toolchains/1.95.0-x86_64-unknown-linux-gnu/"
  printf 'version = "12"\ndefault_toolchain = "1.95.0-x86_64-unknown-linux-gnu"\nprofile = "minimal"\n' |
    "${sudo[@]}" tee "$rh/settings.toml" >/dev/null
  "${sudo[@]}" install -m 0755 "$(command -v rustup)" "$ch/bin/rustup"
  local proxy
  for proxy in cargo rustc rustdoc rust-gdb rust-lldb; do "${sudo[@]}" ln -s rustup "$ch/bin/$proxy"; done
  "${sudo[@]}" install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$dir/usr/local/share/build-host-ca.crt"
  "${sudo[@]}" tar -C "$dir" -c . | pm import -q \
    --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV RUST_VERSION=1.95.0' \
    --change 'ENV CARGO_HTTP_CAINFO=/usr/local/share/build-host-ca.crt' \
    --change 'CMD ["bash"]' \
    - "$tag" >/dev/null
}

# busybox:1.37-musl: a root holding only Debian's static busybox and its applets, as the official
# image does. Debian's build lacks the `printenv` applet, which the official image has and the
# component's job script uses: a two-line sh stand-in takes its place.
make_busybox_standin() {
  local dir=$1 tag=$2 applet
  if readelf -l /bin/busybox | grep -q 'program interpreter'; then
    echo "/bin/busybox is not static: install Debian's busybox-static" >&2
    return 1
  fi
  "${sudo[@]}" mkdir -p "$dir/bin" "$dir/etc" "$dir/root" "$dir/tmp" "$dir/home" "$dir/usr/sbin" "$dir/var"
  "${sudo[@]}" chmod 1777 "$dir/tmp"
  "${sudo[@]}" install -m 0755 /bin/busybox "$dir/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || "${sudo[@]}" ln -s busybox "$dir/bin/$applet"
  done
  "${sudo[@]}" tee "$dir/bin/printenv" >/dev/null <<'EOF'
#!/bin/sh
# printenv NAME...: the official busybox image's applet, which Debian's busybox lacks.
for n; do
  case $n in '' | [0-9]* | *[!A-Za-z0-9_]*) exit 1 ;; esac
  eval "[ -n \"\${$n+x}\" ]" || exit 1
  eval "printf '%s\n' \"\$$n\""
done
EOF
  "${sudo[@]}" chmod 0755 "$dir/bin/printenv"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' |
    "${sudo[@]}" tee "$dir/etc/passwd" >/dev/null
  printf 'root:x:0:\nnobody:x:65534:\n' | "${sudo[@]}" tee "$dir/etc/group" >/dev/null
  "${sudo[@]}" tar -C "$dir" -c . | pm import -q \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["sh"]' \
    - "$tag" >/dev/null
}

# A stand-in's tag carries a hash of its recipe (the function's text and what it copies from this
# machine), so a changed recipe builds a new stand-in and the old one is removed.
standin() {
  local image=$1 recipe=$2 inputs=$3 key tag dir t0 old
  key=$( { declare -f "$recipe"; printf '%s\n' "$inputs"; } | sha256sum | cut -c1-16)
  tag="localhost/secret-rotator-standin/${image%%:*}:${image#*:}-$key"
  if pm image exists "$tag"; then
    say "stand-in for $image: cached ($tag)"
  else
    t0=$(date +%s)
    say "stand-in for $image: building $tag"
    dir=$(mktemp -d "$cache/standin.XXXXXX")
    if ! "$recipe" "$dir/root" "$tag" >&2; then
      "${sudo[@]}" rm -rf "$dir"
      fail "cannot build the stand-in for $image"
    fi
    "${sudo[@]}" rm -rf "$dir"
    for old in $(pm images --format '{{.Repository}}:{{.Tag}}' "localhost/secret-rotator-standin/${image%%:*}"); do
      # (a stand-in that cached build layers still use is untagged, and removed with them below)
      [ "$old" = "$tag" ] || pm rmi "$old" >/dev/null 2>&1 || pm untag "$old"
    done
    say "stand-in for $image: built in $(($(date +%s) - t0)) s"
  fi
  echo "$tag"
}

# Can podman run a container here at all? Only this may skip the test.
if ! probe=$(pm info 2>&1 >/dev/null); then
  skip "podman does not start on this machine: $(echo "$probe" | tail -n 1)"
fi
busybox_tag=$(standin busybox:1.37-musl make_busybox_standin "$(sha256sum /bin/busybox)")
if ! probe=$(pm run --rm --network host "$busybox_tag" true 2>&1); then
  skip "podman cannot run a container on this machine: $(echo "$probe" | tail -n 1)"
fi

rust_inputs=$(
  rustc +1.95.0 -vV
  sha256sum "$(command -v rustup)" /etc/ssl/certs/ca-certificates.crt
  debootstrap --version 2>/dev/null || dpkg-query -W debootstrap
)
rust_tag=$(standin rust:1.95-bookworm make_rust_standin "$rust_inputs")
standins_done=$(date +%s)

# --- the Dockerfile, its FROM lines pointed at the stand-ins ----------------------------------

declare -A standins=([rust:1.95-bookworm]=$rust_tag [busybox:1.37-musl]=$busybox_tag)
copy=$work/Dockerfile.standins
: >"$copy"
while IFS= read -r line || [ -n "$line" ]; do
  if [[ $line =~ ^FROM[[:space:]] ]]; then
    # FROM [--platform=...] IMAGE[@DIGEST] [AS NAME]
    read -r -a words <<<"$line"
    i=1
    while [[ ${words[i]} == --* ]]; do i=$((i + 1)); done
    ref=${words[i]}
    if [ "$ref" != scratch ]; then
      name=${ref%%@*}
      [ -n "${standins[$name]:-}" ] ||
        fail "the Dockerfile builds FROM $ref, which has no stand-in: add one to scripts/image-test.sh"
      line=${line/"$ref"/"${standins[$name]}"}
    fi
  fi
  printf '%s\n' "$line" >>"$copy"
done <Dockerfile
# Only the base image references may differ from the real Dockerfile.
mask_from() { sed -E 's/^(FROM([[:space:]]+--[^[:space:]]+)*[[:space:]]+)[^[:space:]]+/\1IMAGE/' "$1"; }
if ! d=$(diff <(mask_from Dockerfile) <(mask_from "$copy")); then
  fail "the stand-ins' Dockerfile differs from the Dockerfile beyond its FROM images: $d"
fi
[ "$(grep -c '^FROM ' Dockerfile)" = "$(grep -c '^FROM ' "$copy")" ] || fail "FROM lines lost"

# --- build, as the release workflow does: the default target and --target gitlab -------------

build() {
  local name=$1 t0
  shift
  t0=$(date +%s)
  if ! pm build --network host --platform linux/amd64 --layers -f "$copy" \
    --iidfile "$work/$name.iid" "$@" "$root" >"$work/build-$name.log" 2>&1; then
    tail -n 40 "$work/build-$name.log" >&2
    fail "podman build ($name) failed; the whole log is in target/image-test/build-$name.log"
  fi
  say "built $name in $(($(date +%s) - t0)) s"
}
# The build stage is tagged too, so that its layers stay cached and a run with unchanged sources
# rebuilds nothing. The images tagged before are removed once untagged (with the intermediate
# images only they used): each build stage holds a release target folder, ~0.8 GB.
tags=(localhost/secret-rotator-test:build localhost/secret-rotator-test:action localhost/secret-rotator-test:gitlab)
previous=$(for t in "${tags[@]}"; do pm image inspect --format '{{.Id}}' "$t" 2>/dev/null || true; done)
build stage --target build -t "${tags[0]}"
build action -t "${tags[1]}"
build gitlab --target gitlab -t "${tags[2]}"
drop_untagged() {
  local id=$1 parent
  while [ -n "$id" ] && [ "$(pm image inspect --format '{{len .RepoTags}}' "$id" 2>/dev/null)" = 0 ]; do
    parent=$(pm image inspect --format '{{.Parent}}' "$id")
    pm rmi "$id" >/dev/null 2>&1 || return 0 # still the parent of another image
    id=$parent
  done
}
for id in $previous; do drop_untagged "$id"; done
built=$(date +%s)

action=$(cat "$work/action.iid")
gitlab=$(cat "$work/gitlab.iid")
size() { pm image inspect --format '{{.Size}}' "$1"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }
action_size=$(size "$action")
gitlab_size=$(size "$gitlab")
say "action image $action_size bytes, gitlab image $gitlab_size bytes"

# --- run them ----------------------------------------------------------------------------------

set +e
SR_IMAGE_ACTION=$action SR_IMAGE_GITLAB=$gitlab SR_IMAGE_SUDO="${sudo[*]}" \
  cargo test --locked --test image -- --ignored 2>&1 | tee "$work/test.log"
status=${PIPESTATUS[0]}
set -e
read -r passed failed < <(awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }' "$work/test.log")
[ "$status" = 0 ] || [ "$failed" != 0 ] || failed=1
ended=$(date +%s)
line="image test: $passed passed, $failed failed (action image $(mb "$action_size"), gitlab image $(mb "$gitlab_size");"
line+=" stand-ins $((standins_done - started)) s, podman build $((built - standins_done)) s, runs $((ended - built)) s)"
echo "$line" | tee "$summary"
[ "$status" = 0 ] && [ "$passed" -gt 0 ]
