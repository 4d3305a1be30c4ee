//! Provider `oauth2`: the RFC 6749 section 6 refresh grant, with refresh-token rotation
//! (RFC 9700 section 4.14). The request is sent once; it is repeated only when the connection
//! was never made, because a provider with reuse detection revokes the whole token family
//! when a consumed refresh token is presented again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;
use url::Url;

use super::{Provider, ProviderError, ProviderKind, Rotated};
use crate::error::InputError;
use crate::http::{Http, HttpError, Request, Response, UpstreamTls};
use crate::inputs::tls::{given, TlsDefaults, TlsFields};
use crate::inputs::{check_token_text, check_url, parse_duration, Field, Fields, Owner};
use crate::log;
use crate::secret::Secret;
use crate::services::Services;

const OWNER: Owner = Owner::Provider("oauth2");
const TOKEN_URL: Field = Field::plain("token_url", "oauth2: the token endpoint").of(OWNER);
const CLIENT_ID: Field = Field::plain("client_id", "oauth2: the client id").of(OWNER);
const CLIENT_SECRET: Field =
    Field::secret("client_secret", "oauth2: the client secret (confidential clients)").of(OWNER);
const CLIENT_AUTH: Field = Field::plain(
    "client_auth",
    "oauth2: client authentication: basic, post, none or tls_client_auth (default: basic with a secret, else none)",
)
.of(OWNER);
const TLS: TlsFields = TlsFields::of(OWNER);
const SCOPE: Field = Field::plain("scope", "oauth2: the scope to request").of(OWNER);
const REFRESH_TOKEN: Field = Field::secret("refresh_token", "oauth2: the current refresh token").of(OWNER);
const REUSE_GRACE: Field = Field::plain(
    "reuse_grace",
    "oauth2: how long the provider keeps a just-rotated refresh token usable (Auth0 rotation overlap, Okta grace \
     period); only with it, a lost token response is retried once with the same token inside that window",
)
.of(OWNER);

/// Longest accepted `reuse_grace`.
const MAX_REUSE_GRACE: Duration = Duration::from_secs(3600);

/// Provider `oauth2`.
pub const KIND: ProviderKind = ProviderKind {
    name: "oauth2",
    fields: &[
        TOKEN_URL,
        CLIENT_ID,
        CLIENT_SECRET,
        CLIENT_AUTH,
        SCOPE,
        REFRESH_TOKEN,
        REUSE_GRACE,
        TLS.section,
        TLS.client_cert,
        TLS.client_key,
    ],
    credential: "refresh_token",
    issues_access_token: true,
    knows_own_age: false,
    parse,
};

/// OAuth2 client authentication (RFC 6749 section 2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
    /// Public client: `client_id` in the body, no secret.
    None,
    /// RFC 8705 section 2: the client certificate authenticates the client (`client_id` in the
    /// body, no secret).
    TlsClientAuth,
}

/// The refresh-grant client, as validated.
#[derive(Debug)]
pub struct OAuth2 {
    token_url: Url,
    client_id: String,
    client_secret: Option<Secret>,
    client_auth: ClientAuth,
    scope: Option<String>,
    refresh_token: Secret,
    /// The provider's reuse interval: a lost response may be retried once within it.
    reuse_grace: Option<Duration>,
    /// The token endpoint's TLS settings (a client certificate), if any.
    tls: Option<Arc<UpstreamTls>>,
}

fn parse(f: &Fields, _services: &Services) -> Result<Box<dyn Provider>, InputError> {
    let token_url = f
        .str(&TOKEN_URL)?
        .ok_or_else(|| f.error(&TOKEN_URL, "is required for oauth2: the provider's token endpoint"))?;
    let token_url = check_url(&f.label(&TOKEN_URL), &token_url)?;
    let client_id = f
        .str(&CLIENT_ID)?
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| f.error(&CLIENT_ID, "is required for oauth2"))?;
    let client_secret = f.secret(&CLIENT_SECRET)?;
    let client_auth = match f.str(&CLIENT_AUTH)?.as_deref() {
        None if client_secret.is_some() => ClientAuth::Basic,
        None => ClientAuth::None,
        Some("basic") => ClientAuth::Basic,
        Some("post") => ClientAuth::Post,
        Some("none") => ClientAuth::None,
        Some("tls_client_auth") => ClientAuth::TlsClientAuth,
        Some(other) => {
            return Err(
                f.error(&CLIENT_AUTH, format!("`{other}` is not valid: use basic, post, none or tls_client_auth"))
            )
        }
    };
    let tls = given(f, &TLS, None)?.resolve(TlsDefaults::default())?;
    if client_auth == ClientAuth::TlsClientAuth {
        if client_secret.is_some() {
            return Err(f.error(
                &CLIENT_AUTH,
                "is tls_client_auth but a client_secret is given: the certificate authenticates the client; drop the \
                 secret, or use basic or post",
            ));
        }
        if !tls.as_ref().is_some_and(|t| t.has_identity()) {
            return Err(
                f.error(&CLIENT_AUTH, "is tls_client_auth: set client_cert and client_key (the client certificate)")
            );
        }
    }
    match (client_auth, &client_secret) {
        (ClientAuth::Basic | ClientAuth::Post, None) => {
            return Err(f.error(
                &CLIENT_SECRET,
                "is required with client_auth basic or post (or set client_auth none for a public client)",
            ))
        }
        (ClientAuth::None, Some(_)) => {
            return Err(
                f.error(&CLIENT_AUTH, "is none but a client_secret is given: use basic or post, or drop the secret")
            )
        }
        _ => {}
    }
    let refresh_token = f
        .secret(&REFRESH_TOKEN)?
        .ok_or_else(|| f.error(&REFRESH_TOKEN, "is required for oauth2: the current refresh token"))?;
    check_token_text(&f.label(&REFRESH_TOKEN), &refresh_token)?;
    let scope = f.str(&SCOPE)?.filter(|s| !s.trim().is_empty());
    let reuse_grace = match f.str(&REUSE_GRACE)? {
        None => None,
        Some(text) => {
            let d = parse_duration(&f.label(&REUSE_GRACE), &text)?;
            if d.is_zero() || d > MAX_REUSE_GRACE {
                return Err(f.error(
                    &REUSE_GRACE,
                    "must be between 1s and 1h: the provider's own reuse interval (leave it unset when it has none)",
                ));
            }
            Some(d)
        }
    };
    Ok(Box::new(OAuth2 { token_url, client_id, client_secret, client_auth, scope, refresh_token, reuse_grace, tls }))
}

impl OAuth2 {
    fn request(&self) -> Request {
        let mut form: Vec<(&str, &str)> =
            vec![("grant_type", "refresh_token"), ("refresh_token", self.refresh_token.expose())];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        let mut req = Request::post(self.token_url.clone()).header("accept", "application/json").tls(self.tls.as_ref());
        match (self.client_auth, &self.client_secret) {
            (ClientAuth::Basic, Some(secret)) => {
                req = req.secret_header("authorization", basic_auth(&self.client_id, secret));
            }
            (ClientAuth::Post, Some(secret)) => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", secret.expose()));
            }
            _ => form.push(("client_id", &self.client_id)),
        }
        req.form(&form)
    }
}

/// RFC 6749 section 2.3.1: id and secret are form-urlencoded before Basic encoding.
fn basic_auth(id: &str, secret: &Secret) -> Secret {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = zeroize::Zeroizing::new(format!("{}:{}", enc(id), enc(secret.expose())));
    Secret::new(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())))
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    error_description: Option<String>,
    error_uri: Option<String>,
}

#[async_trait]
impl Provider for OAuth2 {
    fn kind(&self) -> &'static ProviderKind {
        &KIND
    }

    fn current(&self) -> &Secret {
        &self.refresh_token
    }

    async fn rotate(&self, http: &Http) -> Result<Rotated, ProviderError> {
        let sent = Instant::now();
        let first = self.refresh(http).await;
        let Some(grace) = self.reuse_grace else { return first };
        // The provider keeps the token usable for `grace` after it rotated it: a lost answer can
        // be asked for again with the same token, once, while that window is open.
        match first {
            Err(ProviderError::Failed { message, maybe_consumed: true })
                if sent.elapsed() < grace && !http.shutdown().requested() =>
            {
                log::warn(&format!(
                    "{message}; retrying once with the same refresh token, inside the provider's reuse interval \
                     (reuse_grace)"
                ));
                self.refresh(http).await.map_err(|e| match e {
                    ProviderError::Failed { message, maybe_consumed } => {
                        failed(format!("{message} (the retry inside reuse_grace was lost too)"), maybe_consumed)
                    }
                    other => other,
                })
            }
            Err(ProviderError::Failed { message, maybe_consumed: true }) => {
                Err(failed(format!("{message} (not retried: reuse_grace had passed)"), true))
            }
            other => other,
        }
    }
}

impl OAuth2 {
    /// One refresh request, sent once.
    async fn refresh(&self, http: &Http) -> Result<Rotated, ProviderError> {
        let what = format!("token endpoint {}", self.token_url);
        let resp = http.send_unrepeated(&what, &self.request()).await.map_err(|e| transport_failure(&e))?;
        interpret(resp, &self.refresh_token)
    }
}

fn failed(message: String, maybe_consumed: bool) -> ProviderError {
    ProviderError::Failed { message, maybe_consumed }
}

fn transport_failure(e: &HttpError) -> ProviderError {
    if e.never_sent() {
        failed(format!("token endpoint unreachable: {e}; the refresh token was not used"), false)
    } else {
        failed(
            format!(
                "token endpoint {e}; the request may have reached the provider, so the stored refresh token \
                 may no longer be valid: if the next run fails with invalid_grant, re-authorize by hand"
            ),
            true,
        )
    }
}

/// Reads the token endpoint's answer (RFC 6749 sections 5.1 and 5.2).
fn interpret(resp: Response, current: &Secret) -> Result<Rotated, ProviderError> {
    let status = resp.status.as_u16();
    if resp.status.is_success() {
        let parsed: TokenResponse = serde_json::from_slice(&resp.body).map_err(|_| {
            failed(
                format!(
                    "token endpoint answered HTTP {status} with a body that is not a token response; \
                     the refresh token may have been consumed: if the next run fails with invalid_grant, re-authorize by hand"
                ),
                true,
            )
        })?;
        let Some(access) = parsed.access_token.filter(|a| !a.is_empty()) else {
            return Err(failed(
                format!(
                    "token endpoint answered HTTP {status} without an access_token; \
                     the refresh token may have been consumed: if the next run fails with invalid_grant, re-authorize by hand"
                ),
                true,
            ));
        };
        let access = Secret::new(access);
        if let Some(tt) = &parsed.token_type {
            if !tt.eq_ignore_ascii_case("bearer") {
                log::warn(&format!("token_type is `{tt}`, not bearer"));
            }
        }
        let expires_at = parsed.expires_in.as_ref().and_then(expires_at);
        let (credential, changed) = match parsed.refresh_token.filter(|r| !r.is_empty()) {
            Some(r) => {
                let r = Secret::new(r);
                let changed = !r.same_as(current);
                (r, changed)
            }
            None => (current.clone(), false),
        };
        return Ok(Rotated { credential, changed, access_token: Some(access), expires_at });
    }

    // RFC 6749 section 5.2: an error is a 4xx with an `error` code: the server refused the grant,
    // so it did not act on it. Any other answer (a redirect, a 5xx, a 429, whatever its body
    // says) leaves it unknown whether the token was used.
    let refused = (400..500).contains(&status) && status != 429;
    let err = serde_json::from_slice::<ErrorResponse>(&resp.body).ok();
    let detail = match &err {
        Some(err) => {
            let mut text = format!(" {}", err.error);
            if let Some(d) = &err.error_description {
                text.push_str(&format!(": {d}"));
            }
            if let Some(u) = &err.error_uri {
                text.push_str(&format!(" ({u})"));
            }
            crate::log::one_line(&crate::secret::redact(&text))
        }
        None => format!(": {}", crate::log::one_line(&resp.snippet())),
    };
    if let (true, Some(err)) = (refused, &err) {
        let text = format!("token endpoint answered HTTP {status}{detail}");
        return Err(match err.error.as_str() {
            "invalid_grant" => ProviderError::Rejected(format!(
                "{text}. The refresh token is revoked, expired or was already used (possible theft: a provider with \
                 reuse detection has now revoked the whole token family). Re-authorize by hand and store the new refresh token"
            )),
            "invalid_client" | "unauthorized_client" => ProviderError::Refused(format!(
                "{text}. Check client_id, client_secret and client_auth; the refresh token was not used"
            )),
            _ => ProviderError::Refused(text),
        });
    }
    if refused {
        return Err(ProviderError::Refused(format!("token endpoint answered HTTP {status}{detail}")));
    }
    Err(failed(
        format!(
            "token endpoint answered HTTP {status}{detail}; the refresh token may have been consumed: if the next run \
             fails with invalid_grant, re-authorize by hand"
        ),
        true,
    ))
}

/// `expires_in` as a number or a numeric string (some providers send one).
fn expires_at(v: &serde_json::Value) -> Option<jiff::Timestamp> {
    let secs = match v {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !(0.0..=1e10).contains(&secs) {
        return None;
    }
    jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_secs(secs as i64)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::testing::{form_body, response, Fake};

    fn resp(status: u16, body: &str) -> Response {
        response(status, body, &[])
    }

    fn client(auth: ClientAuth, scope: Option<&str>) -> OAuth2 {
        OAuth2 {
            token_url: "https://auth.example.com/oauth/token".parse().unwrap(),
            client_id: "ci client".into(),
            client_secret: (auth != ClientAuth::None).then(|| Secret::new("s3cret:value")),
            client_auth: auth,
            scope: scope.map(str::to_owned),
            refresh_token: Secret::new("r1-current-0123"),
            reuse_grace: None,
            tls: None,
        }
    }

    #[tokio::test]
    async fn tls_client_auth_sends_the_client_id_and_no_secret_over_the_client_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        let out = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=ci-client", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl (scripts/test-deps.sh installs it)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let pem = Secret::new(std::fs::read_to_string(&key).unwrap());
        let id = crate::http::ClientIdentity::read("input client_cert", &cert, "input client_key", pem).unwrap();
        let c = OAuth2 {
            client_secret: None,
            client_auth: ClientAuth::TlsClientAuth,
            tls: UpstreamTls::new(None, Some(id)),
            ..client(ClientAuth::None, None)
        };
        let fake = Fake::new();
        fake.reply(200, r#"{"access_token":"a2-new-0123","refresh_token":"r2-new-0123"}"#);
        c.rotate(&fake.http()).await.unwrap();
        let sent = fake.requests();
        assert_eq!(sent[0].header_value("authorization"), None);
        let keys: Vec<String> = form_body(&sent[0]).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["grant_type", "refresh_token", "client_id"]);
        assert!(sent[0].upstream_tls().is_some_and(|t| t.has_identity()), "sent over the client certificate");
        // A key that is not the certificate's is refused before anything is sent.
        let other = dir.path().join("other.pem");
        let out = std::process::Command::new("openssl")
            .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"])
            .arg(&other)
            .output()
            .unwrap();
        assert!(out.status.success());
        let wrong = Secret::new(std::fs::read_to_string(&other).unwrap());
        let e = crate::http::ClientIdentity::read("input client_cert", &cert, "input client_key", wrong).unwrap_err();
        assert_eq!(e.input, "input client_key", "{e}");
    }

    #[tokio::test]
    async fn a_lost_response_is_retried_once_only_with_reuse_grace() {
        let ok = r#"{"access_token":"a2-new-0123","refresh_token":"r2-new-0123"}"#;
        let lost = || HttpError::Timeout(Duration::from_secs(30));
        // Without it: one request, whatever was lost.
        let fake = Fake::new();
        fake.fail(lost());
        assert!(client(ClientAuth::Basic, None).rotate(&fake.http()).await.is_err());
        assert_eq!(fake.requests().len(), 1);
        // With it: the same request once more, and its answer is the rotation.
        let graced = OAuth2 { reuse_grace: Some(Duration::from_secs(60)), ..client(ClientAuth::Basic, None) };
        for first in [Err(lost()), Ok(response(502, "bad gateway", &[])), Ok(response(200, "{\"access_tok", &[]))] {
            let fake = Fake::new();
            match first {
                Err(e) => fake.fail(e),
                Ok(r) => fake.respond(r),
            };
            fake.reply(200, ok);
            let r = graced.rotate(&fake.http()).await.unwrap();
            assert_eq!(r.credential.expose(), "r2-new-0123");
            let sent = fake.requests();
            assert_eq!(sent.len(), 2);
            assert_eq!(form_body(&sent[0]), form_body(&sent[1]), "the same token, presented again");
        }
        // Never after a refusal, and never a second retry.
        let fake = Fake::new();
        fake.reply(400, r#"{"error":"invalid_grant"}"#);
        assert!(matches!(graced.rotate(&fake.http()).await, Err(ProviderError::Rejected(_))));
        assert_eq!(fake.requests().len(), 1);
        let fake = Fake::new();
        fake.fail(lost()).fail(lost());
        let e = graced.rotate(&fake.http()).await.unwrap_err();
        assert!(e.to_string().contains("the retry inside reuse_grace was lost too"), "{e}");
        assert_eq!(fake.requests().len(), 2);
    }

    #[tokio::test]
    async fn the_refresh_request_is_exactly_rfc_6749_section_6() {
        let fake = Fake::new();
        fake.reply(200, r#"{"access_token":"a2-new-0123","token_type":"Bearer","refresh_token":"r2-new-0123"}"#);
        let r = client(ClientAuth::Basic, Some("read")).rotate(&fake.http()).await.unwrap();
        assert_eq!(r.credential.expose(), "r2-new-0123");
        let sent = fake.requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(fake.lines(), ["POST https://auth.example.com/oauth/token"]);
        assert_eq!(sent[0].header_value("accept"), Some("application/json"));
        assert!(sent[0].is_sensitive("authorization"));
        assert_eq!(sent[0].header_value("authorization"), Some("Basic Y2krY2xpZW50OnMzY3JldCUzQXZhbHVl"));
        let form = form_body(&sent[0]);
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(pairs, [("grant_type", "refresh_token"), ("refresh_token", "r1-current-0123"), ("scope", "read")]);
        assert!(!format!("{:?}", sent[0]).contains("r1-current"), "a request's Debug shows no secret");
    }

    #[tokio::test]
    async fn post_and_public_clients_send_their_id_in_the_body() {
        for (auth, want) in [
            (ClientAuth::Post, vec!["grant_type", "refresh_token", "client_id", "client_secret"]),
            (ClientAuth::None, vec!["grant_type", "refresh_token", "client_id"]),
        ] {
            let fake = Fake::new();
            fake.reply(200, r#"{"access_token":"a2-new-0123"}"#);
            client(auth, None).rotate(&fake.http()).await.unwrap();
            let sent = fake.requests();
            assert_eq!(sent[0].header_value("authorization"), None);
            let keys: Vec<String> = form_body(&sent[0]).into_iter().map(|(k, _)| k).collect();
            assert_eq!(keys, want, "{auth:?}");
        }
    }

    #[tokio::test]
    async fn a_timeout_is_never_retried_and_may_have_consumed_the_token() {
        let fake = Fake::new();
        fake.fail(HttpError::Timeout(std::time::Duration::from_secs(30)));
        let e = client(ClientAuth::Basic, None).rotate(&fake.http()).await.unwrap_err();
        assert!(matches!(e, ProviderError::Failed { maybe_consumed: true, .. }), "{e:?}");
        assert_eq!(fake.requests().len(), 1);
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_because_it_never_arrived() {
        let fake = Fake::new();
        fake.fail(HttpError::NotSent("refused".into())).reply(200, r#"{"access_token":"a2-new-0123"}"#);
        client(ClientAuth::Basic, None).rotate(&fake.http()).await.unwrap();
        assert_eq!(fake.requests().len(), 2);
    }

    #[test]
    fn basic_auth_form_encodes_id_and_secret() {
        // RFC 6749 2.3.1: "a b" -> "a+b", ":" -> "%3A"
        let h = basic_auth("my client", &Secret::new("p:ss/word"));
        let decoded =
            base64::engine::general_purpose::STANDARD.decode(h.expose().trim_start_matches("Basic ")).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "my+client:p%3Ass%2Fword");
    }

    #[test]
    fn rotating_response() {
        let cur = Secret::new("r1-current");
        let r = interpret(
            resp(
                200,
                r#"{"access_token":"a2-xyz","token_type":"BEARER","expires_in":"3600","refresh_token":"r2-next"}"#,
            ),
            &cur,
        )
        .unwrap();
        assert!(r.changed);
        assert_eq!(r.credential.expose(), "r2-next");
        assert_eq!(r.access_token.unwrap().expose(), "a2-xyz");
        let left = r.expires_at.unwrap().as_second() - jiff::Timestamp::now().as_second();
        assert!((3590..=3600).contains(&left), "{left}");
    }

    #[test]
    fn non_rotating_response_keeps_the_old_token() {
        let cur = Secret::new("r1-current");
        let r = interpret(resp(200, r#"{"access_token":"a2-xyz","token_type":"bearer"}"#), &cur).unwrap();
        assert!(!r.changed);
        assert_eq!(r.credential.expose(), "r1-current");
        assert!(r.expires_at.is_none());
    }

    #[test]
    fn invalid_grant_is_rejected() {
        let e = interpret(
            resp(400, r#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#),
            &Secret::new("r1-current"),
        )
        .unwrap_err();
        match e {
            ProviderError::Rejected(m) => {
                assert!(m.contains("invalid_grant: grant request is invalid"), "{m}");
                assert!(m.contains("already used"), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_client_is_refused() {
        let e = interpret(resp(401, r#"{"error":"invalid_client"}"#), &Secret::new("r1-current")).unwrap_err();
        assert!(matches!(e, ProviderError::Refused(_)), "{e:?}");
    }

    #[test]
    fn garbage_and_5xx_may_have_consumed_the_token() {
        let error = r#"{"error":"temporarily_unavailable"}"#;
        for (status, body) in
            [(200, "<html>"), (200, "{}"), (502, "bad gateway"), (503, error), (429, error), (302, "")]
        {
            match interpret(resp(status, body), &Secret::new("r1-current")).unwrap_err() {
                ProviderError::Failed { maybe_consumed, .. } => assert!(maybe_consumed),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn error_description_echoing_the_token_is_redacted() {
        let cur = Secret::new("r1-echoed-token");
        let e = interpret(
            resp(400, r#"{"error":"invalid_grant","error_description":"token r1-echoed-token unknown"}"#),
            &cur,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("r1-echoed-token"));
    }
}
