"""A second, independent OAuth2 authorization server for the end-to-end tests: django-oauth-toolkit
(PyPI `django-oauth-toolkit`, pinned in requirements.txt) as a single-file Django app on SQLite,
with refresh-token rotation, reuse protection (family revocation) and a configurable reuse grace
period -- the reuse window some hosted providers offer, which oidc-provider has not.

usage: python dot_server.py PORT_FILE [--grace SECONDS]

Listens on 127.0.0.1 (a free port the kernel picks, written to PORT_FILE once it listens). The
database lives in a fresh directory beside PORT_FILE (the harness's temporary directory, removed
with it even when the server is killed); migrations run at start. One confidential client,
`ci-dot` / `dot-client-secret-0123456789`, authenticating with client_secret_basic (the secret is
stored hashed, as django-oauth-toolkit does by default), grant types password + refresh_token.

Routes:
  POST /token                the real oauth2_provider TokenView
  POST /introspect           RFC 7662 (oauth2_provider's IntrospectTokenView; client basic auth).
                             NOTE: it knows ACCESS tokens only, a refresh token is always
                             {"active": false} there: use /_test/state for refresh tokens.
  POST /_test/mint           -> {"refresh_token", "access_token"} from a password grant for the
                             test user, made through the same TokenView (a first refresh token,
                             as a login would give)
  GET  /_test/state?token=R  -> {"exists", "revoked", "revoked_at", "access_token_valid",
                             "superseded", "family", "family_live", "family_size"} for a refresh
                             token, read from the models (superseded: an access token was minted
                             from it; family_live / family_size: its family's unrevoked / all
                             refresh tokens)
  GET  /_test/errors         exceptions raised while handling requests (a bug here, or an
                             unexpected failure inside django-oauth-toolkit: either way the
                             answer was not the server's considered one); the Rust harness fails
                             the test when there is any. DELETE clears them.

What REFRESH_TOKEN_GRACE_PERIOD_SECONDS does in django-oauth-toolkit 3.4.1 (read in the installed
oauth2_provider/oauth2_validators.py -- validate_refresh_token, lines 1241-1310, and
_save_bearer_token, lines 935-1062 -- and models.py RefreshToken.revoke / revoke_family, lines
792-870; checked against this server by tests/servers_selftest.rs). The window is counted from
R1's rotation (its `revoked` timestamp), not from its last replay:

  * Rotation (ROTATE_REFRESH_TOKEN=True): refreshing with a live R1 marks R1 revoked (sets
    `revoked`, it is NOT deleted), deletes R1's access token A1, and issues A2 (with
    `source_refresh_token` = R1) and R2 (in R1's `token_family`).
    [_save_bearer_token: `refresh_token_instance.revoke()`, then `_create_access_token(...,
    source_refresh_token=refresh_token_instance)` and `_create_refresh_token(...)`.]
  * Replaying R1 WITHIN the grace period, while R2 has not been rotated yet, SUCCEEDS and returns
    the SAME pair again: the same R2 and the same A2 (no R3 is made; R2 and A2 stay valid).
    [validate_refresh_token: `grace_expired = rt.revoked <= now - GRACE` is False and
    `superseded = AccessToken.objects.filter(source_refresh_token=rt).exists()` is True, so the
    revoked R1 is accepted; _save_bearer_token then finds `previous_access_token` (A2, whose
    source is R1), R1.revoke() is a no-op, and it answers with `previous_access_token.token` and
    `RefreshToken.objects.filter(access_token=previous_access_token).first().token`, i.e. A2/R2,
    overwriting the fresh values oauthlib had generated.] The `expires_in` of that answer is the
    freshly computed one, not A2's real remaining lifetime.
  * Replaying R1 within the grace period AFTER R2 was itself rotated (R2 -> R3) FAILS with
    invalid_grant and revokes the whole family (R3 too): R2's rotation deleted A2, so R1 no longer
    counts as "superseded" (the #1617 rule: the window shields only the immediately preceding
    token).
  * Replaying R1 AFTER the grace period (or with grace 0, immediately) FAILS with invalid_grant and,
    with REFRESH_TOKEN_REUSE_PROTECTION=True, revokes every live token of the family
    (`RefreshToken.revoke_family`: R2 gets `revoked`, A2 is deleted), so R2 is dead as well.
  * A token revoked by other means (RFC 7009 revocation, family revocation) is never honoured in
    the window: it has no access token whose source it is.
  Observed by hand, not relied on by the tests: two CONCURRENT refreshes with the same live R1 and
  grace 0 usually end with one getting R2 and the other invalid_grant, whose reuse detection then
  revokes the family, R2 included; sometimes (both validated before either committed) both get the
  same R2. With a grace period the loser gets the same R2.
"""

import argparse
import base64
import hashlib
import json
import logging
import os
import sys
import tempfile
import threading
import traceback
import warnings

import django
from django.conf import settings

CLIENT_ID = "ci-dot"
CLIENT_SECRET = "dot-client-secret-0123456789"
USERNAME = "ci-user"
PASSWORD = "ci-user-password-0123456789"

parser = argparse.ArgumentParser()
parser.add_argument("port_file")
parser.add_argument("--grace", type=float, default=0.0, help="REFRESH_TOKEN_GRACE_PERIOD_SECONDS")
args = parser.parse_args()

workdir = tempfile.mkdtemp(prefix="dot-server-", dir=os.path.dirname(os.path.abspath(args.port_file)))

settings.configure(
    DEBUG=False,
    SECRET_KEY="dot-server-test-only-not-secret",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    USE_TZ=True,
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "oauth2_provider",
    ],
    MIDDLEWARE=[],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(workdir, "db.sqlite3"),
            # Threads each hold a connection; IMMEDIATE makes a writing transaction take the lock
            # at BEGIN, so two concurrent refreshes queue instead of failing "database is locked".
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
        }
    },
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    LOGGING_CONFIG=None,
    OAUTH2_PROVIDER={
        "ROTATE_REFRESH_TOKEN": True,
        "REFRESH_TOKEN_REUSE_PROTECTION": True,
        "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": args.grace,
        "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
        "SCOPES": {"api": "API access"},
        "DEFAULT_SCOPES": ["api"],
    },
)

# The password grant is deprecated by RFC 9700 and django-oauth-toolkit warns on every use (a
# DeprecationWarning and a log line): expected here, so keep it quiet.
warnings.filterwarnings("ignore", category=DeprecationWarning)
logging.getLogger("oauth2_provider").setLevel(logging.ERROR)
logging.getLogger("django.server").setLevel(logging.ERROR)

django.setup()

from django.core.management import call_command  # noqa: E402
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler  # noqa: E402
from django.core.signals import got_request_exception  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402
from oauth2_provider import views as oauth_views  # noqa: E402
from oauth2_provider.models import AccessToken, Application, RefreshToken  # noqa: E402

errors = []
errors_lock = threading.Lock()


def record_exception(sender, request=None, **kwargs):
    with errors_lock:
        errors.append(
            {
                "method": getattr(request, "method", "?"),
                "path": getattr(request, "path", "?"),
                "error": repr(sys.exc_info()[1]),
                "traceback": traceback.format_exc(),
            }
        )


got_request_exception.connect(record_exception)

token_view = oauth_views.TokenView.as_view()


@csrf_exempt
def mint(request):
    if request.method != "POST":
        return JsonResponse({"error": "POST only"}, status=405)
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    r = RequestFactory().post(
        "/token",
        data={"grant_type": "password", "username": USERNAME, "password": PASSWORD, "scope": "api"},
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )
    resp = token_view(r)
    body = json.loads(resp.content)
    if resp.status_code != 200 or "refresh_token" not in body:
        raise RuntimeError(f"password grant failed: {resp.status_code} {body}")
    return JsonResponse({"refresh_token": body["refresh_token"], "access_token": body["access_token"]})


def state(request):
    token = request.GET.get("token")
    if not token:
        return JsonResponse({"error": "token is required"}, status=400)
    checksum = hashlib.sha256(token.encode()).hexdigest()
    rows = list(RefreshToken.objects.filter(token_checksum=checksum).select_related("access_token"))
    if not rows:
        return JsonResponse({"exists": False, "revoked": None, "access_token_valid": False})
    # As validate_refresh_token picks: the unrevoked row first, else the most recently revoked.
    rows.sort(key=lambda r: (r.revoked is not None, -(r.revoked.timestamp() if r.revoked else 0)))
    rt = rows[0]
    at = rt.access_token
    family = RefreshToken.objects.filter(token_family=rt.token_family) if rt.token_family else None
    family_live = family.filter(revoked__isnull=True).count() if family is not None else None
    family_size = family.count() if family is not None else None
    return JsonResponse(
        {
            "exists": True,
            "revoked": rt.revoked is not None,
            "revoked_at": rt.revoked.isoformat() if rt.revoked else None,
            "access_token_valid": at is not None and at.is_valid(),
            # Some access token was minted from this refresh token (what the grace window checks).
            "superseded": AccessToken.objects.filter(source_refresh_token=rt).exists(),
            "family": str(rt.token_family) if rt.token_family else None,
            "family_live": family_live,
            "family_size": family_size,
        }
    )


@csrf_exempt
def errors_route(request):
    with errors_lock:
        if request.method == "DELETE":
            errors.clear()
            return JsonResponse({"ok": True})
        return JsonResponse(list(errors), safe=False)


urlpatterns = [
    path("token", token_view),
    path("introspect", oauth_views.IntrospectTokenView.as_view()),
    path("_test/mint", mint),
    path("_test/state", state),
    path("_test/errors", errors_route),
]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *a):
        pass


def main():
    call_command("migrate", verbosity=0, interactive=False)
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user(USERNAME, password=PASSWORD)
    # The plaintext secret with hash_client_secret=True: ClientSecretField.pre_save hashes it
    # (make_password with CLIENT_SECRET_HASHER) before it is stored.
    Application.objects.create(
        name="ci-dot",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        hash_client_secret=True,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_PASSWORD,
        redirect_uris="",
    )
    app = Application.objects.get(client_id=CLIENT_ID)
    assert app.client_secret != CLIENT_SECRET, "the client secret was stored in plaintext"

    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, ipv6=False, allow_reuse_address=False)
    server.set_app(get_wsgi_application())
    port = server.server_address[1]
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(args.port_file + ".tmp", args.port_file)
    # Once listening, stderr goes to a file beside the port file: nobody reads the pipe the
    # harness gave us, and a full pipe would block the server.
    log = os.open(args.port_file + ".log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 2)
    server.serve_forever()


if __name__ == "__main__":
    main()
