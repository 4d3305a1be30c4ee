#!/usr/bin/env bash
# Points action.yml at a published image: `image: Dockerfile` becomes `image: docker://...@sha256:...`.
#   scripts/release-action.sh docker://ghcr.io/OWNER/REPO@sha256:DIGEST [ACTION_YML]
set -euo pipefail
ref=$1
file=${2:-$(dirname "$0")/../action.yml}
if ! [[ "$ref" =~ ^docker://[a-z0-9./_-]+@sha256:[0-9a-f]{64}$ ]]; then
  echo "release-action: expected docker://IMAGE@sha256:<64 hex>, got: $ref" >&2
  exit 2
fi
grep -q '^  image: Dockerfile$' "$file" || { echo "release-action: no 'image: Dockerfile' line in $file" >&2; exit 1; }
sed -i "s|^  image: Dockerfile\$|  image: ${ref}|" "$file"
