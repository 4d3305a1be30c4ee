"""Cuts GitHub's OpenAPI description (@octokit/openapi, dereferenced) down to the endpoints
secret-rotator calls, so Prism can serve it as a validating mock in about two seconds.

Two adjustments, both to what the spec says rather than to what it checks:
  * responses are also offered as `application/vnd.github+json` (the media type GitHub documents
    and clients send in Accept; the spec lists only application/json);
  * the example public key (33 bytes, not a usable X25519 key) is replaced by a real one;
  * an example that breaks its own schema (`null` for the empty object of a 201) becomes `{}`;
  * the full-repository example of `GET /repos/{owner}/{repo}` breaks its own (very large)
    schema, so that response's schema is trimmed to the fields secret-rotator reads.
Requests are validated against the spec as published.

usage: python openapi_subset.py SPEC_IN SPEC_OUT PUBLIC_KEY_B64
"""

import json
import sys

PATHS = {
    "/repos/{owner}/{repo}": ["get"],
    "/repos/{owner}/{repo}/actions/secrets": ["get"],
    "/repos/{owner}/{repo}/actions/secrets/public-key": ["get"],
    "/repos/{owner}/{repo}/actions/secrets/{secret_name}": ["get", "put"],
    "/repos/{owner}/{repo}/environments/{environment_name}/secrets": ["get"],
    "/repos/{owner}/{repo}/environments/{environment_name}/secrets/public-key": ["get"],
    "/repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}": ["get", "put"],
    "/orgs/{org}/actions/secrets": ["get"],
    "/orgs/{org}/actions/secrets/public-key": ["get"],
    "/orgs/{org}/actions/secrets/{secret_name}": ["get", "put"],
    "/orgs/{org}/actions/secrets/{secret_name}/repositories": ["get"],
    "/repos/{owner}/{repo}/dependabot/secrets": ["get"],
    "/repos/{owner}/{repo}/dependabot/secrets/public-key": ["get"],
    "/repos/{owner}/{repo}/dependabot/secrets/{secret_name}": ["get", "put"],
    "/orgs/{org}/dependabot/secrets": ["get"],
    "/orgs/{org}/dependabot/secrets/public-key": ["get"],
    "/orgs/{org}/dependabot/secrets/{secret_name}": ["get", "put"],
    "/orgs/{org}/dependabot/secrets/{secret_name}/repositories": ["get"],
    "/repos/{owner}/{repo}/codespaces/secrets": ["get"],
    "/repos/{owner}/{repo}/codespaces/secrets/public-key": ["get"],
    "/repos/{owner}/{repo}/codespaces/secrets/{secret_name}": ["get", "put"],
    "/orgs/{org}/codespaces/secrets": ["get"],
    "/orgs/{org}/codespaces/secrets/public-key": ["get"],
    "/orgs/{org}/codespaces/secrets/{secret_name}": ["get", "put"],
    "/orgs/{org}/codespaces/secrets/{secret_name}/repositories": ["get"],
    "/repos/{owner}/{repo}/installation": ["get"],
    "/repos/{owner}/{repo}/actions/runs/{run_id}": ["get"],
    "/orgs/{org}/installation": ["get"],
    "/app/installations/{installation_id}/access_tokens": ["post"],
}


def main():
    src, dst, key = sys.argv[1:4]
    spec = json.load(open(src))
    paths = {}
    for path, methods in PATHS.items():
        item = spec["paths"][path]
        kept = {m: item[m] for m in methods}
        if "parameters" in item:
            kept["parameters"] = item["parameters"]
        for op in kept.values():
            if not isinstance(op, dict):
                continue
            for resp in op.get("responses", {}).values():
                content = resp.get("content", {})
                for media in content.values():
                    for ex in media.get("examples", {}).values():
                        if ex.get("value") is None and media.get("schema", {}).get("type") == "object":
                            ex["value"] = {}
                if "application/json" in content:
                    content["application/vnd.github+json"] = content["application/json"]
                    if path.endswith("/public-key"):
                        for media in content.values():
                            for ex in media.get("examples", {}).values():
                                ex["value"]["key"] = key
        if path == "/repos/{owner}/{repo}":
            for media in kept["get"]["responses"]["200"]["content"].values():
                media["schema"] = {
                    "type": "object",
                    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "full_name": {"type": "string"}},
                    "required": ["id", "name", "full_name"],
                }
        paths[path] = kept
    out = {k: spec[k] for k in ("openapi", "info", "servers")}
    out["paths"] = paths
    json.dump(out, open(dst, "w"))


if __name__ == "__main__":
    main()
