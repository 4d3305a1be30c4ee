"""A strict stand-in for the GitHub REST API's secrets endpoints: Actions, Dependabot and Codespaces.

GitHub cannot run here, so this checks what GitHub checks:
  * every request is authenticated (a token, or for App endpoints an RS256 JWT signed by the App key);
  * a secret PUT carries exactly the fields GitHub's API describes, its sealed box OPENS (libsodium,
    via PyNaCl) with the private key whose key_id was sent, and the opened value is at most 48 KB;
  * secret names follow GitHub's rules ([A-Za-z0-9_], not starting with a digit or GITHUB_);
  * each store (actions, dependabot, codespaces) of each scope has its own public key, so a box
    sealed to another store's key does not open; environments hold Actions secrets only;
  * org secrets carry a valid visibility, and selected_repository_ids only with `selected`; GET of
    an org secret tells its visibility, and its selected repositories are listed page by page;
  * a scope's secrets are listed (GET .../secrets) page by page (per_page at most 100), with what
    each secret's own GET says;
  * it keeps created_at/updated_at, answers 201 on create and 204 on update;
  * every API request pins the REST API version (X-GitHub-Api-Version) and a request body is
    application/json (see `admit` for what GitHub itself does and why this is stricter).

Secondary rate limits, like GitHub's (setup "limits": {"points": N, "window": SECONDS, "concurrency": M}):
a request that arrives while M are in flight, or whose points (GET 1, any other method 5) would take
the last WINDOW seconds over N, is refused with 403, `retry-after` and GitHub's "secondary rate
limit" message, and logged with "limited": true. Off unless a test sets them.

Test-only control routes (under /_control/): setup, faults, the request log, the stored plaintexts,
errors (see standin.py).
usage: python github_standin.py PORT_FILE [--tls CERT KEY] [--latency-ms N]
"""

import base64
import math
import re
import secrets
import time
from datetime import datetime, timezone

import jwt  # PyJWT
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox

import standin

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_VALUE = 48 * 1024
API_VERSIONS = {"2022-11-28", "2026-03-10"}


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class State(standin.State):
    def __init__(self):
        super().__init__()
        # token -> {"repos": set or "*", "write": bool}
        self.tokens = {}
        self.repos = {}  # "owner/name" -> {"id": int, "environments": set}
        self.orgs = set()
        self.runs = {}  # run id (str) -> {"run_started_at": iso}
        self.apps = {}  # app_id(str) -> {"public_key": pem, "installations": {owner: id}}
        self.installation_tokens = {}  # token -> owner
        self.keys = {}  # scope -> (key_id, PrivateKey)
        self.secrets = {}  # (scope, NAME) -> {"value", "created_at", "updated_at", "visibility", "selected"}
        self.next_id = 1000
        # User-Agent prefixes whose requests may omit X-GitHub-Api-Version (setup
        # "allow_unversioned"); empty unless a test opts in for a client it does not control.
        self.allow_unversioned = []
        self.limits = None  # {"points", "window", "concurrency"}
        self.in_flight = 0
        self.peak_in_flight = 0
        self.spent = []  # (time, points) of admitted API requests, for "limits"

    def key(self, scope):
        if scope not in self.keys:
            self.keys[scope] = ("kid-" + secrets.token_hex(6), PrivateKey.generate())
        return self.keys[scope]


S = State()


class Handler(standin.Handler):
    state = S
    api_prefix = "/api/v3"  # the GitHub Enterprise Server prefix, as gh uses it

    def error(self, status, message):
        self.reply(status, {"message": message, "documentation_url": "https://docs.github.com/rest", "status": str(status)})

    # --- secondary rate limits --------------------------------------------------------------
    def dispatch(self, method):
        if self.path.startswith("/_control/"):
            return super().dispatch(method)
        with S.lock:
            S.in_flight += 1
            S.peak_in_flight = max(S.peak_in_flight, S.in_flight)
            refusal = self.over_limits(method)
        try:
            if refusal is None:
                return super().dispatch(method)
            with S.lock:
                self.entry = {"method": method, "path": self.path.split("?")[0].removeprefix(self.api_prefix),
                              "status": None, "time": time.time(), "limited": True,
                              "content_type": self.headers.get("content-type"),
                              "user_agent": self.headers.get("user-agent")}
                S.log.append(self.entry)
            self.reply(403, {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before "
                             "you try again.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                             "status": "403"}, {"retry-after": refusal})
        finally:
            with S.lock:
                S.in_flight -= 1

    def over_limits(self, method):
        """None when the request is within the limits (and then charged), else the retry-after seconds."""
        lim = S.limits
        if not lim:
            return None
        now = time.time()
        window = lim.get("window", 60)
        S.spent = [(t, p) for t, p in S.spent if now - t < window]
        if S.in_flight > lim.get("concurrency", 100):
            return 1
        cost = 1 if method in ("GET", "HEAD", "OPTIONS") else 5
        used = sum(p for _, p in S.spent)
        if used + cost > lim.get("points", 900):
            over, wait = used + cost - lim["points"], window
            for t, p in S.spent:
                over -= p
                if over <= 0:
                    wait = window - (now - t)
                    break
            return max(1, math.ceil(wait))
        S.spent.append((now, cost))
        return None

    # --- auth -----------------------------------------------------------------------------
    def bearer(self):
        h = self.headers.get("authorization") or ""
        for prefix in ("Bearer ", "bearer ", "token "):
            if h.startswith(prefix):
                return h[len(prefix):]
        return None

    def admit(self, method, path):
        """The version header, then the media type, before anything else.

        What GitHub does (docs.github.com/rest/about-the-rest-api/api-versions): a request
        without X-GitHub-Api-Version is served as 2022-11-28, the default; an unsupported
        version gets 400. This stand-in refuses a missing header too, with 400, on purpose:
        secret-rotator must pin the version it was written against, so that a new default on
        GitHub's side can never change its requests' meaning; a real GitHub would not catch
        a client that forgot it. `gh` 2.23 (tests/crosscheck.rs) sends no version header
        (go-gh added one in 2026, cli/cli#12680), so a test may exempt a client explicitly by
        its User-Agent (setup "allow_unversioned"), never by default.

        Media type: GitHub's OpenAPI description (@octokit/openapi) declares application/json
        as the only request body type of every endpoint used here. GitHub answers
        "415 Unsupported Media Type" when it refuses a media type (seen live for a missing
        preview type in Accept, e.g. pksunkara/octonode#343); no GitHub document found says
        what it does with a body sent under another Content-Type (it is known to parse JSON
        sent with curl's default form type; not verifiable from here). This stand-in follows the
        description, not the leniency: a body that is not application/json (parameters such
        as `; charset=utf-8` allowed, missing Content-Type refused) gets 415, so the type the
        client declares is checked rather than guessed.
        """
        v = self.headers.get("x-github-api-version")
        if v is None:
            ua = self.headers.get("user-agent") or ""
            with S.lock:
                exempt = any(ua.startswith(p) for p in S.allow_unversioned)
            if not exempt:
                self.error(400, "Missing X-GitHub-Api-Version header: the client must pin the REST API version "
                           f"(one of {sorted(API_VERSIONS)}), e.g. X-GitHub-Api-Version: 2022-11-28")
                return False
        elif v not in API_VERSIONS:
            self.error(400, f"Invalid API version: {v}")
            return False
        with S.lock:
            self.entry["api_version"] = v
        return super().admit(method, path)

    def unsupported(self):
        got = self.headers.get("content-type")
        self.error(415, f"Unsupported Media Type: the request body must be application/json, got Content-Type {got!r}")

    def token_scope(self):
        """The permissions of the token sent, or None after replying 401."""
        t = self.bearer()
        if t is None:
            self.error(401, "Requires authentication")
            return None
        with S.lock:
            if t in S.tokens:
                return S.tokens[t]
            if t in S.installation_tokens:
                owner = S.installation_tokens[t]
                return {"owners": {owner}, "write": True}
        self.error(401, "Bad credentials")
        return None

    def app_jwt(self):
        t = self.bearer()
        if t is None:
            self.error(401, "A JSON web token could not be decoded")
            return None
        try:
            claims = jwt.decode(t, options={"verify_signature": False})
            app = S.apps.get(str(claims.get("iss")))
            if app is None:
                raise jwt.InvalidTokenError("unknown issuer")
            claims = jwt.decode(t, app["public_key"], algorithms=["RS256"], options={"require": ["iat", "exp", "iss"]}, leeway=60)
            if claims["exp"] - claims["iat"] > 600:
                raise jwt.InvalidTokenError("exp too far in the future")
        except jwt.InvalidTokenError as e:
            self.error(401, f"'Expiration time' claim ('exp') is too far in the future or JWT invalid: {e}")
            return None
        return app

    def may(self, perm, owner, repo=None, write=False):
        if perm.get("owners") is not None:
            ok = owner in perm["owners"]
        else:
            repos = perm.get("repos", "*")
            ok = repos == "*" or (repo in repos if repo else owner in perm.get("orgs", []))
        if not ok:
            self.error(404, "Not Found")
            return False
        if write and not perm.get("write", True):
            self.error(403, "Resource not accessible by personal access token")
            return False
        return True

    # --- the API --------------------------------------------------------------------------
    def api(self, method, path):
        parts = [p for p in path.split("/") if p]
        from urllib.parse import unquote
        parts = [unquote(p) for p in parts]

        if method == "POST" and len(parts) == 4 and parts[0] == "app" and parts[1] == "installations" and parts[3] == "access_tokens":
            app = self.app_jwt()
            if app is None:
                return
            owner = next((o for o, i in app["installations"].items() if str(i) == parts[2]), None)
            if owner is None:
                return self.error(404, "Not Found")
            tok = "ghs_" + secrets.token_urlsafe(27)
            with S.lock:
                S.installation_tokens[tok] = owner
            return self.reply(201, {"token": tok, "expires_at": now_iso(), "permissions": {"secrets": "write"}})
        if method == "GET" and parts[-1:] == ["installation"] and parts[0] in ("repos", "orgs"):
            app = self.app_jwt()
            if app is None:
                return
            owner = parts[1]
            if owner not in app["installations"]:
                return self.error(404, "Not Found")
            return self.reply(200, {"id": app["installations"][owner], "account": {"login": owner}})

        perm = self.token_scope()
        if perm is None:
            return

        # /repos/{o}/{r}/actions/runs/{id}: a workflow run (needs actions: read)
        if method == "GET" and len(parts) == 6 and parts[0] == "repos" and parts[3:5] == ["actions", "runs"]:
            full = f"{parts[1]}/{parts[2]}"
            run = S.runs.get(parts[5])
            if full not in S.repos or not self.may(perm, parts[1], full):
                return self.error(404, "Not Found") if full not in S.repos else None
            if run is None or perm.get("actions") is False:
                return self.error(404, "Not Found")
            return self.reply(200, {"id": int(parts[5]), "status": "in_progress", "run_started_at": run["run_started_at"]})

        # /repos/{o}/{r}
        if method == "GET" and len(parts) == 3 and parts[0] == "repos":
            full = f"{parts[1]}/{parts[2]}"
            if full not in S.repos or not self.may(perm, parts[1], full):
                return self.error(404, "Not Found") if full not in S.repos else None
            return self.reply(200, {"id": S.repos[full]["id"], "name": parts[2], "full_name": full})

        # A scope is ("repo", r) / ("env", r, e) / ("org", o) for Actions secrets; the other stores
        # append their name: ("repo", r, "dependabot"), ("org", o, "codespaces").
        scope, rest, owner, repo = None, None, None, None
        stores = ("actions", "dependabot", "codespaces")
        if len(parts) >= 5 and parts[0] == "repos" and parts[3] in stores and parts[4] == "secrets":
            repo = f"{parts[1]}/{parts[2]}"
            owner = parts[1]
            if repo not in S.repos:
                return self.error(404, "Not Found")
            scope, rest = ("repo", repo) + (() if parts[3] == "actions" else (parts[3],)), parts[5:]
        elif len(parts) >= 6 and parts[0] == "repos" and parts[3] == "environments" and parts[5] == "secrets":
            repo = f"{parts[1]}/{parts[2]}"
            owner = parts[1]
            if repo not in S.repos or parts[4] not in S.repos[repo]["environments"]:
                return self.error(404, "Not Found")
            scope, rest = ("env", repo, parts[4]), parts[6:]
        elif len(parts) >= 4 and parts[0] == "orgs" and parts[2] in stores and parts[3] == "secrets":
            owner = parts[1]
            if owner not in S.orgs:
                return self.error(404, "Not Found")
            scope, rest = ("org", owner) + (() if parts[2] == "actions" else (parts[2],)), parts[4:]
        else:
            return self.error(404, "Not Found")

        if not self.may(perm, owner, repo, write=(method != "GET")):
            return

        if rest == ["public-key"] and method == "GET":
            with S.lock:
                key_id, sk = S.key(scope)
            return self.reply(200, {"key_id": key_id, "key": base64.b64encode(bytes(sk.public_key)).decode()})
        if len(rest) == 2 and rest[1] == "repositories" and method == "GET" and scope[0] == "org":
            return self.selected_repositories(scope, rest[0])
        if rest == [] and method == "GET":
            return self.list_secrets(scope)
        if len(rest) != 1:
            return self.error(404, "Not Found")
        name = rest[0]
        if method == "GET":
            with S.lock:
                s = S.secrets.get((scope, name.upper()))
            if s is None:
                return self.error(404, "Not Found")
            return self.reply(200, self.secret_view(scope, name.upper(), s, self.path.split("?")[0]))
        if method == "PUT":
            return self.put_secret(scope, name)
        return self.error(404, "Not Found")

    def secret_view(self, scope, name, s, path):
        """A secret as GitHub shows it (its own GET, or an item of its scope's list); `path` is
        the secret's URL path."""
        out = {"name": name, "created_at": s["created_at"], "updated_at": s["updated_at"]}
        if scope[0] == "org":
            out["visibility"] = s["visibility"]
            if s["visibility"] == "selected":
                out["selected_repositories_url"] = f"{self.base_url()}{path}/repositories"
        return out

    def page(self):
        """per_page (1-100, GitHub's default 30) and page (from 1) of the query, or None after
        answering an error."""
        from urllib.parse import parse_qs, urlsplit
        q = parse_qs(urlsplit(self.path).query)
        try:
            per_page = int(q.get("per_page", ["30"])[0])
            page = int(q.get("page", ["1"])[0])
        except ValueError:
            self.error(400, "per_page and page must be integers")
            return None
        if not 1 <= per_page <= 100 or page < 1:
            self.error(422, "per_page must be 1-100 and page at least 1")
            return None
        return per_page, page

    def list_secrets(self, scope):
        """GET {scope}/secrets: the scope's secrets (never their values), by name, a page at a time."""
        p = self.page()
        if p is None:
            return
        per_page, page = p
        base = self.path.split("?")[0]
        with S.lock:
            mine = sorted((name, s) for (sc, name), s in S.secrets.items() if sc == scope)
        chunk = mine[(page - 1) * per_page: page * per_page]
        items = [self.secret_view(scope, name, s, f"{base}/{name}") for name, s in chunk]
        return self.reply(200, {"total_count": len(mine), "secrets": items})

    def base_url(self):
        return f"{'https' if self.server.tls else 'http'}://{self.headers.get('host')}"

    def selected_repositories(self, scope, name):
        """GET /orgs/{org}/{store}/secrets/{name}/repositories: per_page (at most 100) and page."""
        p = self.page()
        if p is None:
            return
        per_page, page = p
        with S.lock:
            s = S.secrets.get((scope, name.upper()))
            if s is None:
                return self.error(404, "Not Found")
            ids = s["selected"] or []
            by_id = {r["id"]: full for full, r in S.repos.items()}
        chunk = ids[(page - 1) * per_page: page * per_page]
        repos = [{"id": i, "name": by_id[i].split("/")[1], "full_name": by_id[i]} for i in chunk]
        return self.reply(200, {"total_count": len(ids), "repositories": repos})

    def put_secret(self, scope, name):
        if not NAME_RE.match(name) or name.upper().startswith("GITHUB_"):
            return self.error(422, "Secret names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) or underscores (_), must not start with a number or GITHUB_")
        body = self.body_json()
        if not isinstance(body, dict):
            return self.error(400, "Problems parsing JSON")
        with S.lock:
            self.entry["fields"] = sorted(body)
        allowed = {"encrypted_value", "key_id"}
        required = {"encrypted_value", "key_id"}
        if scope[0] == "org":
            allowed |= {"visibility", "selected_repository_ids"}
            required |= {"visibility"}
        extra = set(body) - allowed
        missing = required - set(body)
        if extra or missing:
            return self.error(422, f"Invalid request. fields not allowed: {sorted(extra)}; missing: {sorted(missing)}")
        if not isinstance(body["encrypted_value"], str) or not isinstance(body["key_id"], str):
            return self.error(422, "Invalid request. encrypted_value and key_id must be strings")
        if not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", body["encrypted_value"]):
            return self.error(422, "Invalid request. encrypted_value is not base64")
        with S.lock:
            key_id, sk = S.key(scope)
        if body["key_id"] != key_id:
            return self.error(422, "Invalid request. key_id does not match the current public key")
        try:
            value = SealedBox(sk).decrypt(base64.b64decode(body["encrypted_value"]))
        except (CryptoError, ValueError):
            return self.error(422, "Invalid request. Could not decrypt the secret with the key identified by key_id")
        if len(value) > MAX_VALUE:
            return self.error(422, "Secret value is too large (max 48 KB)")
        selected = None
        if scope[0] == "org":
            vis = body["visibility"]
            if vis not in ("all", "private", "selected"):
                return self.error(422, f"Invalid request. {vis!r} is not a valid visibility")
            ids = body.get("selected_repository_ids")
            if vis == "selected":
                if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
                    return self.error(422, "Invalid request. selected_repository_ids must be an array of integers")
                known = {r["id"] for full, r in S.repos.items() if full.split("/")[0] == scope[1]}
                if not set(ids) <= known:
                    return self.error(422, "Invalid request. unknown repository id")
                selected = ids
            elif ids is not None:
                return self.error(422, "Invalid request. selected_repository_ids needs visibility selected")
        key = (scope, name.upper())
        with S.lock:
            existing = S.secrets.get(key)
            now = now_iso()
            S.secrets[key] = {
                "value": value.decode("utf-8", "replace"),
                "created_at": existing["created_at"] if existing else now,
                "updated_at": now,
                "visibility": body.get("visibility"),
                "selected": selected,
                "writes": (existing["writes"] + 1) if existing else 1,
            }
        # GitHub answers 201 with an empty JSON object on create, 204 with no body on update.
        return self.reply(204) if existing else self.reply(201, {})

    # --- control --------------------------------------------------------------------------
    def control(self, method, what, body):
        if what == "setup" and method == "POST":
            with S.lock:
                for t, p in body.get("tokens", {}).items():
                    perm = {"write": p.get("write", True)}
                    if "repos" in p:
                        perm["repos"] = p["repos"]
                    if "orgs" in p:
                        perm["orgs"] = p["orgs"]
                        perm.setdefault("repos", [])
                    S.tokens[t] = perm
                for full, r in body.get("repos", {}).items():
                    S.next_id += 1
                    S.repos[full] = {"id": r.get("id", S.next_id), "environments": set(r.get("environments", []))}
                S.orgs |= set(body.get("orgs", []))
                S.runs.update(body.get("runs", {}))
                S.allow_unversioned.extend(body.get("allow_unversioned", []))
                if "limits" in body:
                    S.limits = body["limits"]
                    S.spent = []
                for app_id, a in body.get("apps", {}).items():
                    S.apps[str(app_id)] = {"public_key": a["public_key"], "installations": a["installations"]}
                for s in body.get("secrets", []):
                    scope = tuple(s["scope"])
                    S.secrets[(scope, s["name"].upper())] = {
                        "value": s["value"], "created_at": s.get("updated_at", now_iso()),
                        "updated_at": s.get("updated_at", now_iso()), "visibility": s.get("visibility"),
                        "selected": s.get("selected"), "writes": 0,
                    }
            return self.reply(200, {"ok": True})
        if what == "limits" and method == "GET":
            with S.lock:
                return self.reply(200, {"peak_in_flight": S.peak_in_flight, "limits": S.limits})
        if what == "secrets":
            with S.lock:
                out = [{"scope": list(k[0]), "name": k[1], **v} for k, v in S.secrets.items()]
            return self.reply(200, out)
        return self.error(404, "no such control route")


if __name__ == "__main__":
    standin.serve(Handler, S)
