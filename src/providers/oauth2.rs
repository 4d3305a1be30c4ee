//! Provider `oauth2`: the RFC 6749 section 6 refresh grant, with refresh-token rotation
//! (RFC 9700 section 4.14). The request is sent once; it is repeated only when the connection
//! was never made, because a provider with reuse detection revokes the whole token family
//! when a consumed refresh token is presented again.

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;

use super::{Provider, ProviderError, Rotated};
use crate::config::plan::{ClientAuth, OAuth2Spec};
use crate::http::{Http, HttpError, Response};
use crate::log;
use crate::secret::Secret;

/// The refresh-grant client.
#[derive(Debug)]
pub struct OAuth2 {
    token_url: url::Url,
    client_id: String,
    client_secret: Option<Secret>,
    client_auth: ClientAuth,
    scope: Option<String>,
    refresh_token: Secret,
}

impl OAuth2 {
    /// From the validated settings.
    pub fn new(s: &OAuth2Spec) -> Self {
        OAuth2 {
            token_url: s.token_url.clone(),
            client_id: s.client_id.clone(),
            client_secret: s.client_secret.clone(),
            client_auth: s.client_auth,
            scope: s.scope.clone(),
            refresh_token: s.refresh_token.clone(),
        }
    }

    fn request(&self, http: &Http) -> reqwest::RequestBuilder {
        let mut form: Vec<(&str, &str)> =
            vec![("grant_type", "refresh_token"), ("refresh_token", self.refresh_token.expose())];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        let mut req = http.client().post(self.token_url.clone()).header("accept", "application/json");
        match (self.client_auth, &self.client_secret) {
            (ClientAuth::Basic, Some(secret)) => {
                req = req.header("authorization", basic_auth(&self.client_id, secret));
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
fn basic_auth(id: &str, secret: &Secret) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = zeroize::Zeroizing::new(format!("{}:{}", enc(id), enc(secret.expose())));
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw.as_bytes()))
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
    fn kind(&self) -> &'static str {
        "oauth2"
    }

    fn current(&self) -> &Secret {
        &self.refresh_token
    }

    async fn rotate(&self, http: &Http) -> Result<Rotated, ProviderError> {
        let what = format!("token endpoint {}", self.token_url);
        let resp = http.send_unrepeated(&what, || self.request(http)).await.map_err(|e| transport_failure(&e))?;
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

    if let Ok(err) = serde_json::from_slice::<ErrorResponse>(&resp.body) {
        let mut text = format!("token endpoint answered HTTP {status} {}", err.error);
        if let Some(d) = &err.error_description {
            text.push_str(&format!(": {d}"));
        }
        if let Some(u) = &err.error_uri {
            text.push_str(&format!(" ({u})"));
        }
        let text = crate::secret::redact(&text);
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
    if resp.status.is_server_error() {
        return Err(failed(
            format!(
                "token endpoint answered HTTP {status}: {}; the refresh token may have been consumed: if the next run \
                 fails with invalid_grant, re-authorize by hand",
                resp.snippet()
            ),
            true,
        ));
    }
    Err(ProviderError::Refused(format!("token endpoint answered HTTP {status}: {}", resp.snippet())))
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
    use reqwest::header::HeaderMap;
    use reqwest::StatusCode;
    use zeroize::Zeroizing;

    fn resp(status: u16, body: &str) -> Response {
        Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: Zeroizing::new(body.as_bytes().to_vec()),
        }
    }

    #[test]
    fn basic_auth_form_encodes_id_and_secret() {
        // RFC 6749 2.3.1: "a b" -> "a+b", ":" -> "%3A"
        let h = basic_auth("my client", &Secret::new("p:ss/word"));
        let decoded = base64::engine::general_purpose::STANDARD.decode(h.trim_start_matches("Basic ")).unwrap();
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
        for (status, body) in [(200, "<html>"), (200, "{}"), (502, "bad gateway")] {
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
