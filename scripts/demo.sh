#!/usr/bin/env bash
# Shows secret-rotator doing its job with no account: a real OAuth2 server (oidc-provider, with
# refresh-token rotation and reuse detection) and the strict GitHub stand-in (which opens every
# sealed box with libsodium) run on loopback; two chained rotations; the step summaries printed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-deps.sh >/dev/null
cargo build -q
bin=target/debug/secret-rotator
deps=.test-deps
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

cp tests/support/oauth_server.mjs "$deps/node/"
"$deps/node/node_modules/.bin/node" "$deps/node/oauth_server.mjs" "$work/oauth.port" >/dev/null 2>&1 & pids+=($!)
"$deps/venv/bin/python" tests/support/github_standin.py "$work/gh.port" & pids+=($!)
for f in oauth.port gh.port; do for _ in $(seq 100); do [ -s "$work/$f" ] && break; sleep 0.1; done; done
oauth="http://127.0.0.1:$(cat "$work/oauth.port")"
gh="http://127.0.0.1:$(cat "$work/gh.port")"
curl -fsS -XPOST "$gh/_control/setup" -H 'content-type: application/json' \
  -d '{"tokens":{"ghp_demo_writer_token":{"repos":"*"}},"repos":{"acme/app":{"environments":["prod"]}}}' >/dev/null

py() { "$deps/venv/bin/python" -c "$@"; }
active() {
  curl -fsS -u ci-basic:basic-client-secret-0123456789 -d "token=$1" "$oauth/token/introspection" |
    py 'import json,sys; print("active" if json.load(sys.stdin)["active"] else "dead")'
}
stored() {
  curl -fsS "$gh/_control/secrets" | py 'import json,sys; print(next(s["value"] for s in json.load(sys.stdin) if s["name"]=="SPOTIFY_REFRESH_TOKEN" and s["scope"]==["repo","acme/app"]))'
}

token=$(curl -fsS -XPOST "$oauth/_test/mint?client_id=ci-basic" | py 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
echo "OAuth2 server $oauth, GitHub stand-in $gh"
echo "first refresh token minted (as a login would give it)"
for run in 1 2; do
  echo
  echo "=== run $run: secret-rotator rotate"
  : > "$work/summary.md"
  env -i PATH="$PATH" GITHUB_ACTIONS=true GITHUB_REPOSITORY=acme/app GITHUB_API_URL="$gh" \
    GITHUB_OUTPUT="$work/output" GITHUB_STEP_SUMMARY="$work/summary.md" RUNNER_TEMP="$work" \
    INPUT_PROVIDER=oauth2 INPUT_TOKEN_URL="$oauth/token" INPUT_CLIENT_ID=ci-basic \
    INPUT_CLIENT_SECRET=basic-client-secret-0123456789 INPUT_REFRESH_TOKEN="$token" \
    INPUT_GITHUB_TOKEN=ghp_demo_writer_token INPUT_SECRET_NAME=SPOTIFY_REFRESH_TOKEN \
    INPUT_ACCESS_TOKEN_SECRET_NAME=SPOTIFY_ACCESS_TOKEN \
    INPUT_VERIFY_URL="$oauth/me" \
    "$bin" rotate >/dev/null 2>"$work/log"   # stdout carries ::add-mask:: lines for the runner
  sed 's/^/  /' "$work/log"
  echo
  cat "$work/summary.md"
  echo
  new=$(stored)
  echo "old refresh token: $(active "$token"); new one (opened by the stand-in with libsodium): $(active "$new")"
  token=$new
done
