//! Provider `gitlab-token`: a GitLab personal, project or group access token rotates itself
//! (`POST .../self/rotate`). GitLab revokes the old token at once, and rotating an already
//! revoked token revokes the whole token family, the newest included: so the rotate request is
//! never repeated once it may have reached GitLab.

use async_trait::async_trait;
use serde::Deserialize;
use url::Url;

use super::{Checked, Provider, ProviderError, ProviderKind, Rotated};
use crate::error::InputError;
use crate::http::{Http, HttpError, Request, Response};
use crate::inputs::{check_token_text, Field, Fields, Owner};
use crate::log;
use crate::secret::Secret;
use crate::services::gitlab::{api_base, check_not_job_token, check_path, Gitlab};
use crate::services::Services;

const OWNER: Owner = Owner::Provider("gitlab-token");
const TOKEN: Field =
    Field::secret("token", "gitlab-token: the GitLab access token to rotate (it rotates itself)").of(OWNER);
const TOKEN_KIND: Field =
    Field::plain("token_kind", "gitlab-token: personal, project or group (default: personal)").of(OWNER);
const TOKEN_OWNER: Field =
    Field::plain("token_owner", "gitlab-token: the project or group (id or path) that owns a project or group token")
        .of(OWNER);
const EXPIRES_IN: Field =
    Field::plain("expires_in", "gitlab-token: lifetime of the new token in days (default: 30)").of(OWNER);
const GITLAB_URL: Field =
    Field::plain("gitlab_url", "the instance, when it differs from gitlab.url").config_only().of(OWNER);

/// Provider `gitlab-token`.
pub const KIND: ProviderKind = ProviderKind {
    name: "gitlab-token",
    fields: &[TOKEN, TOKEN_KIND, TOKEN_OWNER, EXPIRES_IN, GITLAB_URL],
    credential: "token",
    issues_access_token: false,
    knows_own_age: true,
    parse,
};

/// Which kind of GitLab access token, and who owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// A personal access token.
    Personal,
    /// A project access token of this project (id or path).
    Project(String),
    /// A group access token of this group (id or path).
    Group(String),
}

fn parse(f: &Fields, services: &Services) -> Result<Box<dyn Provider>, InputError> {
    let token =
        f.secret(&TOKEN)?.ok_or_else(|| f.error(&TOKEN, "is required for gitlab-token: the access token to rotate"))?;
    check_not_job_token(&f.label(&TOKEN), &token, f.env())?;
    check_token_text(&f.label(&TOKEN), &token)?;
    let owner = f.str(&TOKEN_OWNER)?.filter(|o| !o.trim().is_empty());
    let kind = match (f.str(&TOKEN_KIND)?.as_deref().unwrap_or("personal"), owner) {
        ("personal", None) => TokenKind::Personal,
        ("personal", Some(_)) => {
            return Err(f.error(
                &TOKEN_OWNER,
                "applies to project and group tokens: drop it, or set token_kind project or group",
            ))
        }
        ("project" | "group", None) => {
            return Err(f.error(
                &TOKEN_OWNER,
                "is required for a project or group token: the project or group (id or path) that owns it",
            ))
        }
        ("project", Some(o)) => TokenKind::Project(check_path(&f.label(&TOKEN_OWNER), &o)?),
        ("group", Some(o)) => TokenKind::Group(check_path(&f.label(&TOKEN_OWNER), &o)?),
        (other, _) => {
            return Err(f.error(&TOKEN_KIND, format!("`{other}` is not valid: use personal, project or group")))
        }
    };
    let expires_in_days = match f.str(&EXPIRES_IN)? {
        None => 30,
        Some(text) => match text.trim().trim_end_matches('d').parse::<u32>() {
            Ok(n) if (1..=3650).contains(&n) => n,
            _ => {
                return Err(f.error(
                    &EXPIRES_IN,
                    format!(
                        "`{text}` is not a number of days between 1 and 3650 (GitLab's own maximum is usually 365)"
                    ),
                ))
            }
        },
    };
    let api = match f.str(&GITLAB_URL)? {
        Some(u) => api_base(&f.label(&GITLAB_URL), &u)?,
        None => services.get::<Gitlab>()?.api_url.clone(),
    };
    Ok(Box::new(GitlabToken { api, token, kind, expires_in_days }))
}

/// What GitLab says about an access token (`GET /personal_access_tokens/self`, and the rotate
/// response, which adds `token`).
#[derive(Deserialize)]
struct TokenInfo {
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    revoked: Option<bool>,
    #[serde(default)]
    scopes: Vec<String>,
    expires_at: Option<String>,
    created_at: Option<String>,
    token: Option<String>,
}

/// The self-rotating GitLab token, as validated.
#[derive(Debug)]
pub struct GitlabToken {
    api: Url,
    token: Secret,
    kind: TokenKind,
    expires_in_days: u32,
}

impl GitlabToken {
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.api.clone();
        url.path_segments_mut().expect("https base URL").pop_if_empty().extend(segments);
        url
    }

    fn rotate_url(&self) -> Url {
        match &self.kind {
            TokenKind::Personal => self.url(&["personal_access_tokens", "self", "rotate"]),
            TokenKind::Project(p) => self.url(&["projects", p, "access_tokens", "self", "rotate"]),
            TokenKind::Group(g) => self.url(&["groups", g, "access_tokens", "self", "rotate"]),
        }
    }

    /// The date the new token expires: today plus `expires_in` days (GitLab wants a date).
    fn expires_at(&self) -> String {
        let now = jiff::Timestamp::now();
        let then =
            now.checked_add(jiff::SignedDuration::from_hours(24 * i64::from(self.expires_in_days))).unwrap_or(now);
        then.to_string()[..10].to_owned()
    }

    async fn self_info(&self, http: &Http, token: &Secret) -> Result<Response, HttpError> {
        let req =
            Request::get(self.url(&["personal_access_tokens", "self"])).secret_header("PRIVATE-TOKEN", token.clone());
        http.send_idempotent("GitLab token lookup", &req).await.result
    }
}

fn rejected(status: u16) -> ProviderError {
    ProviderError::Rejected(format!(
        "GitLab rejected the token (HTTP {status}): it is revoked or expired, or it was already rotated (GitLab revokes \
         the old token at once, and rotating an already-revoked token revokes the whole token family, the newest \
         included). Create a new token by hand and store it"
    ))
}

fn parse_date(s: &str) -> Option<jiff::Timestamp> {
    s.parse::<jiff::Timestamp>().ok().or_else(|| format!("{s}T00:00:00Z").parse().ok())
}

#[async_trait]
impl Provider for GitlabToken {
    fn kind(&self) -> &'static ProviderKind {
        &KIND
    }

    fn current(&self) -> &Secret {
        &self.token
    }

    fn writes_to(&self, service: &str) -> bool {
        service == <Gitlab as crate::services::Service>::KEY
    }

    async fn check(&self, http: &Http) -> Result<Checked, ProviderError> {
        let r = self.self_info(http, &self.token).await.map_err(|e| ProviderError::Failed {
            message: format!("GitLab token lookup: {e}; the token was not used"),
            maybe_consumed: false,
        })?;
        match r.status.as_u16() {
            200 => {}
            401 => return Err(rejected(401)),
            status => {
                return Err(ProviderError::Refused(format!(
                    "GitLab token lookup answered HTTP {status}: {}",
                    r.message()
                )))
            }
        }
        let info: TokenInfo = serde_json::from_slice(&r.body).map_err(|_| {
            ProviderError::Refused(format!("GitLab token lookup answered with an unexpected body: {}", r.snippet()))
        })?;
        if info.revoked == Some(true) || info.active == Some(false) {
            return Err(rejected(200));
        }
        if !info.scopes.iter().any(|s| s == "api" || s == "self_rotate") {
            return Err(ProviderError::Refused(format!(
                "the token's scopes ({}) do not let it rotate itself: it needs api or self_rotate",
                info.scopes.join(", ")
            )));
        }
        Ok(Checked {
            created_at: info.created_at.as_deref().and_then(parse_date),
            expires_at: info.expires_at.as_deref().and_then(parse_date),
        })
    }

    async fn rotate(&self, http: &Http) -> Result<Rotated, ProviderError> {
        let url = self.rotate_url();
        let expires_at = self.expires_at();
        let body = serde_json::json!({ "expires_at": expires_at });
        let req = Request::post(url.clone()).secret_header("PRIVATE-TOKEN", self.token.clone()).json(body);
        let r = http.send_unrepeated(&format!("GitLab {url}"), &req).await.map_err(|e| {
            if e.never_sent() {
                ProviderError::Failed {
                    message: format!("GitLab unreachable: {e}; the token was not used"),
                    maybe_consumed: false,
                }
            } else {
                ProviderError::Failed {
                    message: format!(
                        "GitLab token rotation {e}; GitLab may have rotated the token (which revokes the old one): \
                             if the next run fails with HTTP 401, create a new token by hand"
                    ),
                    maybe_consumed: true,
                }
            }
        })?;
        let status = r.status.as_u16();
        match status {
            200 | 201 => {}
            401 => return Err(rejected(401)),
            403 => {
                return Err(ProviderError::Refused(format!(
                    "GitLab refused the rotation (HTTP 403: {}): the token needs the api or self_rotate scope, and a \
                     project or group token must belong to token_owner; the token was not rotated",
                    r.message()
                )))
            }
            400 => {
                return Err(ProviderError::Refused(format!(
                    "GitLab refused the rotation (HTTP 400: {}). expires_at was {expires_at} ({} days): when the \
                     instance's maximum token lifetime is shorter, lower expires_in; the token was not rotated",
                    r.message(),
                    self.expires_in_days
                )))
            }
            404 => {
                return Err(ProviderError::Refused(format!(
                    "GitLab answered HTTP 404 for {url}: check token_kind and token_owner; self-rotation needs GitLab \
                     16.10 or later for personal tokens and 17.1 or later for project and group tokens"
                )))
            }
            _ if r.status.is_server_error() => {
                return Err(ProviderError::Failed {
                    message: format!(
                        "GitLab answered HTTP {status} to the rotation; it may have rotated the token (which revokes \
                         the old one): if the next run fails with HTTP 401, create a new token by hand"
                    ),
                    maybe_consumed: true,
                })
            }
            _ => {
                return Err(ProviderError::Refused(format!(
                    "GitLab answered HTTP {status} to the rotation: {}",
                    r.message()
                )))
            }
        }
        let info: TokenInfo = serde_json::from_slice(&r.body).map_err(|_| ProviderError::Failed {
            message: "GitLab answered the rotation with a body that is not a token: the old token is revoked and the \
                      new one unknown; create a new token by hand"
                .into(),
            maybe_consumed: true,
        })?;
        let Some(token) = info.token.filter(|t| !t.is_empty()) else {
            return Err(ProviderError::Failed {
                message: "GitLab answered the rotation without a token: the old token is revoked and the new one \
                          unknown; create a new token by hand"
                    .into(),
                maybe_consumed: true,
            });
        };
        // Found by fuzzing: GitLab revokes the token it rotated, so an answer holding that same
        // token has no usable successor in it.
        if token == self.token.expose() {
            return Err(ProviderError::Failed {
                message: "GitLab answered the rotation with the token it rotated, which it has revoked: the new one \
                          is unknown; create a new token by hand"
                    .into(),
                maybe_consumed: true,
            });
        }
        Ok(Rotated {
            credential: Secret::new(token),
            changed: true,
            access_token: None,
            expires_at: info.expires_at.as_deref().and_then(parse_date),
        })
    }

    async fn verify(&self, http: &Http, rotated: &Rotated) -> Result<(), String> {
        let r = self.self_info(http, &rotated.credential).await.map_err(|e| format!("GitLab token lookup: {e}"))?;
        if r.status.as_u16() != 200 {
            return Err(format!("the new token does not work: GitLab answered HTTP {}", r.status.as_u16()));
        }
        let info: TokenInfo = serde_json::from_slice(&r.body).map_err(|_| "unexpected token lookup body".to_owned())?;
        if info.active == Some(false) || info.revoked == Some(true) {
            return Err("GitLab reports the new token inactive".into());
        }
        if info.expires_at.as_deref() != Some(&self.expires_at()[..]) {
            log::warn(&format!(
                "the new token expires on {}, not {} as asked (the instance may cap token lifetimes)",
                info.expires_at.as_deref().unwrap_or("(never)"),
                self.expires_at()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::testing::{json_body, Fake};

    #[tokio::test]
    async fn check_rotate_and_verify_send_exactly_these_requests() {
        let g = spec(TokenKind::Project("acme/app".into()), 30);
        let fake = Fake::new();
        let info = r#"{"active":true,"revoked":false,"scopes":["api"],"created_at":"2026-01-01T00:00:00Z"}"#;
        fake.reply(200, info);
        let expires = g.expires_at();
        fake.reply(200, &format!(r#"{{"token":"glpat-new-0123456789","expires_at":"{expires}"}}"#));
        fake.reply(200, &format!(r#"{{"active":true,"scopes":["api"],"expires_at":"{expires}"}}"#));
        let http = fake.http();
        let checked = g.check(&http).await.unwrap();
        assert_eq!(checked.created_at.unwrap().to_string(), "2026-01-01T00:00:00Z");
        let rotated = g.rotate(&http).await.unwrap();
        assert_eq!(rotated.credential.expose(), "glpat-new-0123456789");
        g.verify(&http, &rotated).await.unwrap();
        assert_eq!(
            fake.lines(),
            [
                "GET https://gitlab.example.com/api/v4/personal_access_tokens/self",
                "POST https://gitlab.example.com/api/v4/projects/acme%2Fapp/access_tokens/self/rotate",
                "GET https://gitlab.example.com/api/v4/personal_access_tokens/self",
            ]
        );
        let sent = fake.requests();
        assert_eq!(sent[0].header_value("PRIVATE-TOKEN"), Some("glpat-current-0123456789"));
        assert!(sent.iter().all(|r| r.is_sensitive("PRIVATE-TOKEN")));
        assert_eq!(json_body(&sent[1]), serde_json::json!({ "expires_at": expires }));
        assert_eq!(sent[2].header_value("PRIVATE-TOKEN"), Some("glpat-new-0123456789"), "verify uses the new token");
    }

    #[tokio::test]
    async fn the_same_token_back_is_no_rotation() {
        let fake = Fake::new();
        fake.reply(200, r#"{"token":"glpat-current-0123456789"}"#);
        let e = spec(TokenKind::Personal, 30).rotate(&fake.http()).await.unwrap_err();
        assert!(matches!(e, ProviderError::Failed { maybe_consumed: true, .. }), "{e:?}");
        assert!(e.to_string().contains("create a new token by hand"), "{e}");
    }

    #[tokio::test]
    async fn a_5xx_on_rotate_is_not_repeated() {
        let fake = Fake::new();
        fake.reply(503, "unavailable");
        let e = spec(TokenKind::Personal, 30).rotate(&fake.http()).await.unwrap_err();
        assert!(matches!(e, ProviderError::Failed { maybe_consumed: true, .. }), "{e:?}");
        assert_eq!(fake.requests().len(), 1);
    }

    fn spec(kind: TokenKind, days: u32) -> GitlabToken {
        GitlabToken {
            api: "https://gitlab.example.com/api/v4".parse().unwrap(),
            token: Secret::new("glpat-current-0123456789"),
            kind,
            expires_in_days: days,
        }
    }

    #[test]
    fn rotate_urls_per_kind() {
        assert_eq!(
            spec(TokenKind::Personal, 30).rotate_url().as_str(),
            "https://gitlab.example.com/api/v4/personal_access_tokens/self/rotate"
        );
        assert_eq!(
            spec(TokenKind::Project("acme/app".into()), 30).rotate_url().as_str(),
            "https://gitlab.example.com/api/v4/projects/acme%2Fapp/access_tokens/self/rotate"
        );
        assert_eq!(
            spec(TokenKind::Group("42".into()), 30).rotate_url().as_str(),
            "https://gitlab.example.com/api/v4/groups/42/access_tokens/self/rotate"
        );
    }

    #[test]
    fn expires_at_is_a_date_expires_in_days_ahead() {
        let d = spec(TokenKind::Personal, 30).expires_at();
        assert_eq!(d.len(), 10);
        let then = parse_date(&d).unwrap();
        let days = (then.as_second() - jiff::Timestamp::now().as_second()) / 86_400;
        assert!((29..=30).contains(&days), "{d}");
    }
}
