"""A strict stand-in for the GitLab REST API endpoints secret-rotator uses, behaving as GitLab's
REST docs describe (GitLab cannot run here):

Access tokens (personal, project, group):
  * GET  /personal_access_tokens/self                      -> the token's id, scopes, active, revoked, dates
  * POST /personal_access_tokens/self/rotate               (personal tokens)
  * POST /projects/:id/access_tokens/self/rotate           (project tokens of that project)
  * POST /groups/:id/access_tokens/self/rotate             (group tokens of that group)
  Rotation needs the api or self_rotate scope, takes expires_at (a date; default a week; at most the
  instance's maximum lifetime), revokes the old token at once, and returns the new one. Presenting a
  revoked token to rotate revokes the whole token family, the newest included (401).
CI/CD variables (project and group):
  * GET/POST /projects/:id/variables, GET/PUT/DELETE /projects/:id/variables/:key (same for groups)
  Needs a token with the api scope and access to the project or group (CI job tokens cannot);
  keys [A-Za-z0-9_]{1,255}; a key is unique per environment scope ("has already been taken");
  masked values are a single line, without spaces, of 8 characters or more; masked_and_hidden is
  accepted only on creation and hidden values are never returned; an update of a key defined for
  several scopes needs filter[environment_scope] (409).
Request bodies: application/json or application/x-www-form-urlencoded, else 415 (see `body_types`).

Test-only control routes (under /_control/): setup, faults, requests, variables, tokens, errors.
usage: python gitlab_standin.py PORT_FILE [--tls CERT KEY] [--latency-ms N]
"""

import re
import secrets
from datetime import date, datetime, timedelta, timezone
from urllib.parse import parse_qs, unquote

import standin

KEY_RE = re.compile(r"^[A-Za-z0-9_]{1,255}$")
VAR_FIELDS = {"key", "value", "variable_type", "protected", "masked", "masked_and_hidden", "raw", "environment_scope", "description"}


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class State(standin.State):
    def __init__(self):
        super().__init__()
        self.projects = {}  # path -> {"id", "group"}
        self.groups = {}  # path -> {"id"}
        self.tokens = {}  # value -> token record
        self.variables = []  # {"scope": ["project"|"group", path], key, value, ...}
        self.max_lifetime_days = 365
        self.next_id = 100


S = State()


def as_bool(v, default=False):
    if v is None:
        return default
    if isinstance(v, bool):
        return v
    return str(v).lower() == "true"


def masked_ok(value):
    return len(value) >= 8 and "\n" not in value and "\r" not in value and not any(c.isspace() for c in value)


class Handler(standin.Handler):
    state = S
    api_prefix = "/api/v4"
    # What GitLab's API (Grape, `content_type :json` in lib/api/api.rb) parses: JSON, and the
    # form types Rack parses itself. Another declared type gets Grape's 415 "The provided
    # content-type '...' is not supported." Stricter than GitLab in two places, on purpose:
    # a body without Content-Type (GitLab would parse it as JSON, its default format) and
    # multipart/form-data (which GitLab accepts, but this stand-in does not parse) are refused
    # with 415 as well, rather than guessed at.
    body_types = ("application/json", "application/x-www-form-urlencoded")

    def error(self, status, message):
        self.reply(status, {"message": message})

    def unsupported(self):
        # Grape's own error body for a thrown :error with a string message.
        self.reply(415, {"error": f"The provided content-type '{self.media_type() or ''}' is not supported."})

    def params(self):
        """GitLab takes parameters as JSON, a form, or the query string (admit() has refused
        any other body). None after replying 400 to a JSON body that is not an object."""
        out = {}
        query = self.path.split("?", 1)[1] if "?" in self.path else ""
        for k, v in parse_qs(query).items():
            out[k] = v[0]
        if not self.raw_body:
            return out
        if self.media_type() == "application/json":
            body = self.body_json()
            if not isinstance(body, dict):
                self.error(400, "400 Bad request - the body is not a JSON object")
                return None
            out.update(body)
        else:
            for k, v in parse_qs(self.raw_body.decode()).items():
                out[k] = v[0]
        return out

    # --- auth -----------------------------------------------------------------------------
    def token(self):
        """The token record sent, or None after replying 401."""
        value = self.headers.get("private-token")
        auth = self.headers.get("authorization") or ""
        if value is None and auth.startswith("Bearer "):
            value = auth[len("Bearer "):]
        with S.lock:
            t = S.tokens.get(value) if value else None
            ok = t is not None and t["active"] and not t["revoked"] and t["expires_at"] >= date.today().isoformat()
        if not ok:
            self.error(401, "401 Unauthorized")
            return None
        with S.lock:
            t["last_used_at"] = now_iso()
            if self.entry is not None:
                self.entry["token_id"] = t["id"]
        return t

    def resolve(self, kind, ident):
        """A project or group path from an id or an (url-encoded) path."""
        table = S.projects if kind == "project" else S.groups
        ident = unquote(ident)
        for path, rec in table.items():
            if ident == path or ident == str(rec["id"]):
                return path
        return None

    def may_write_variables(self, t, kind, path):
        if "api" not in t["scopes"]:
            self.error(403, "403 Forbidden - insufficient_scope")
            return False
        if t["kind"] == "project":
            ok = kind == "project" and path == t["owner"]
        elif t["kind"] == "group":
            group = path if kind == "group" else S.projects[path]["group"]
            ok = group is not None and (group == t["owner"] or group.startswith(t["owner"] + "/"))
        else:
            ok = path in t.get(kind + "s", [])
        if not ok:
            self.error(404, f"404 {kind.capitalize()} Not Found")
        return ok

    # --- the API --------------------------------------------------------------------------
    def api(self, method, path):
        parts = [p for p in path.split("/") if p]
        if parts == ["personal_access_tokens", "self"] and method == "GET":
            t = self.token()
            if t is None:
                return
            return self.reply(200, self.public(t))
        if method == "POST" and parts[-3:] == ["access_tokens", "self", "rotate"] and len(parts) == 5:
            return self.rotate(parts[0][:-1], parts[1])
        if method == "POST" and parts == ["personal_access_tokens", "self", "rotate"]:
            return self.rotate("personal", None)
        if len(parts) >= 3 and parts[0] in ("projects", "groups") and parts[2] == "variables":
            return self.variables(method, parts[0][:-1], parts[1], parts[3:])
        return self.error(404, "404 Not Found")

    def public(self, t):
        return {k: t[k] for k in ("id", "name", "revoked", "created_at", "scopes", "user_id", "last_used_at", "active", "expires_at")}

    def rotate(self, kind, owner_ident):
        value = self.headers.get("private-token")
        with S.lock:
            t = S.tokens.get(value) if value else None
            if t is not None and t["revoked"]:
                # Reuse of a revoked token: GitLab revokes the whole family, the newest included.
                for other in S.tokens.values():
                    if other["family"] == t["family"]:
                        other["revoked"] = True
                        other["active"] = False
                return self.error(401, "401 Unauthorized")
        t = self.token()
        if t is None:
            return
        if not ({"api", "self_rotate"} & set(t["scopes"])):
            return self.error(403, "403 Forbidden - insufficient_scope")
        if kind != t["kind"]:
            return self.error(404, "404 Not Found")
        if kind != "personal":
            path = self.resolve(kind, owner_ident)
            if path is None or path != t["owner"]:
                return self.error(404, f"404 {kind.capitalize()} Not Found")
        p = self.params()
        if p is None:
            return
        unknown = set(p) - {"expires_at"}
        if unknown:
            return self.error(400, f"400 Bad request - unknown parameters {sorted(unknown)}")
        today = date.today()
        if "expires_at" in p:
            try:
                exp = date.fromisoformat(str(p["expires_at"]))
            except ValueError:
                return self.error(400, "expires_at is invalid")
        else:
            exp = today + timedelta(days=7)
        if exp <= today:
            return self.error(400, "400 Bad request - Expiration date must be in the future")
        if exp > today + timedelta(days=S.max_lifetime_days):
            return self.error(400, f"400 Bad request - Expiration date must be before {(today + timedelta(days=S.max_lifetime_days)).isoformat()}")
        with S.lock:
            t["revoked"] = True
            t["active"] = False
            S.next_id += 1
            new_value = "glpat-" + secrets.token_urlsafe(15)
            new = dict(t, id=S.next_id, revoked=False, active=True, created_at=now_iso(), last_used_at=None,
                       expires_at=exp.isoformat(), value=new_value)
            S.tokens[new_value] = new
        return self.reply(200, dict(self.public(new), token=new_value))

    def variables(self, method, kind, ident, rest):
        t = self.token()
        if t is None:
            return
        path = self.resolve(kind, ident)
        if path is None:
            return self.error(404, f"404 {kind.capitalize()} Not Found")
        if not self.may_write_variables(t, kind, path):
            return
        scope = [kind, path]
        p = self.params()
        if p is None:
            return
        env_filter = p.pop("filter[environment_scope]", None)
        with S.lock:
            mine = [v for v in S.variables if v["scope"] == scope]
        if not rest:
            if method == "GET":
                return self.reply(200, [self.shown(v) for v in mine])
            if method == "POST":
                return self.create(scope, mine, p)
            return self.error(405, "405 Method Not Allowed")
        key = unquote(rest[0])
        matches = [v for v in mine if v["key"] == key and (env_filter is None or v["environment_scope"] == env_filter)]
        if method == "GET":
            return self.reply(200, self.shown(matches[0])) if matches else self.error(404, "404 Variable Not Found")
        if method == "PUT":
            if not matches:
                return self.error(404, "404 Variable Not Found")
            if len(matches) > 1:
                return self.error(409, "There are multiple variables with provided parameters. Please use 'filter[environment_scope]'")
            return self.update(matches[0], mine, p)
        if method == "DELETE":
            with S.lock:
                for v in matches[:1]:
                    S.variables.remove(v)
            return self.reply(204) if matches else self.error(404, "404 Variable Not Found")
        return self.error(405, "405 Method Not Allowed")

    def shown(self, v):
        out = {k: v[k] for k in ("variable_type", "key", "value", "protected", "masked", "hidden", "raw", "environment_scope", "description")}
        if v["hidden"]:
            out["value"] = None
        return out

    def validate(self, v, mine, replaces=None):
        errors = {}
        if not KEY_RE.match(v["key"]):
            errors["key"] = ["can contain only letters, digits and '_'."]
        if v["variable_type"] not in ("env_var", "file"):
            errors["variable_type"] = ["is not included in the list"]
        if v["masked"] and not masked_ok(v["value"]):
            errors["value"] = ["is invalid"]
        clash = [o for o in mine if o is not replaces and o["key"] == v["key"] and o["environment_scope"] == v["environment_scope"]]
        if clash:
            errors["key"] = [f"({v['key']}) has already been taken"]
        return errors

    def create(self, scope, mine, p):
        unknown = set(p) - VAR_FIELDS
        if unknown:
            return self.error(400, f"400 Bad request - unknown parameters {sorted(unknown)}")
        if "key" not in p or "value" not in p:
            return self.error(400, "400 Bad request - key is missing, value is missing")
        hidden = as_bool(p.get("masked_and_hidden"))
        v = {
            "scope": scope, "key": str(p["key"]), "value": str(p["value"]),
            "variable_type": p.get("variable_type", "env_var"), "protected": as_bool(p.get("protected")),
            "masked": hidden or as_bool(p.get("masked")), "hidden": hidden, "raw": as_bool(p.get("raw")),
            "environment_scope": p.get("environment_scope", "*"), "description": p.get("description"), "writes": 1,
        }
        errors = self.validate(v, mine)
        if errors:
            return self.error(400, errors)
        with S.lock:
            S.variables.append(v)
        return self.reply(201, self.shown(v))

    def update(self, v, mine, p):
        if "masked_and_hidden" in p:
            return self.error(400, "400 Bad request - masked_and_hidden can only be set when a variable is created")
        unknown = set(p) - (VAR_FIELDS - {"key", "masked_and_hidden"})
        if unknown:
            return self.error(400, f"400 Bad request - unknown parameters {sorted(unknown)}")
        if v["hidden"] and "masked" in p and not as_bool(p["masked"]):
            return self.error(400, "400 Bad request - The masked attribute of a hidden variable cannot be changed")
        new = dict(v)
        for f in ("value", "variable_type", "environment_scope", "description"):
            if f in p:
                new[f] = p[f]
        for f in ("protected", "masked", "raw"):
            if f in p:
                new[f] = as_bool(p[f])
        errors = self.validate(new, mine, replaces=v)
        if errors:
            return self.error(400, errors)
        with S.lock:
            new["writes"] = v["writes"] + 1
            v.update(new)
        return self.reply(200, self.shown(v))

    # --- control --------------------------------------------------------------------------
    def control(self, method, what, body):
        if what == "setup" and method == "POST":
            with S.lock:
                S.max_lifetime_days = body.get("max_lifetime_days", S.max_lifetime_days)
                for path, g in body.get("groups", {}).items():
                    S.next_id += 1
                    S.groups[path] = {"id": g.get("id", S.next_id)}
                for path, p in body.get("projects", {}).items():
                    S.next_id += 1
                    S.projects[path] = {"id": p.get("id", S.next_id), "group": path.rsplit("/", 1)[0] if "/" in path else None}
                for t in body.get("tokens", []):
                    S.next_id += 1
                    rec = {
                        "id": S.next_id, "name": t.get("name", "ci"), "kind": t.get("kind", "personal"),
                        "owner": t.get("owner"), "scopes": t.get("scopes", ["api"]), "user_id": t.get("user_id", 1),
                        "created_at": t.get("created_at", now_iso()), "last_used_at": None, "active": True, "revoked": False,
                        "expires_at": t.get("expires_at", (date.today() + timedelta(days=30)).isoformat()),
                        "projects": t.get("projects", []), "groups": t.get("groups", []),
                        "family": t["value"], "value": t["value"],
                    }
                    S.tokens[t["value"]] = rec
                for v in body.get("variables", []):
                    S.variables.append({
                        "scope": v["scope"], "key": v["key"], "value": v["value"], "variable_type": v.get("variable_type", "env_var"),
                        "protected": v.get("protected", False), "masked": v.get("masked", False), "hidden": v.get("hidden", False),
                        "raw": v.get("raw", False), "environment_scope": v.get("environment_scope", "*"),
                        "description": v.get("description"), "writes": 0,
                    })
            return self.reply(200, {"ok": True})
        if what == "variables":
            with S.lock:
                return self.reply(200, S.variables)
        if what == "tokens":
            with S.lock:
                return self.reply(200, list(S.tokens.values()))
        return self.error(404, "no such control route")


if __name__ == "__main__":
    standin.serve(Handler, S)
