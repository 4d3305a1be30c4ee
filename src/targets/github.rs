//! Target `github`: repository, environment and organization Actions secrets.
//!
//! One [`GithubClient`] serves every GitHub target of a run: it fetches each scope's public
//! key once, makes GitHub App installation tokens once per owner, resolves selected
//! repositories to ids once, and bounds the writes in flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Deserialize;
use tokio::sync::{OnceCell, Semaphore};

use super::{Target, TargetError, Written};
use crate::config::plan::{GithubAuth, GithubScope, GithubSecret, GithubSettings, Visibility, GITHUB_MAX_SECRET_BYTES};
use crate::crypto::PublicKey;
use crate::http::{Attempted, Http, Response};
use crate::log;
use crate::secret::Secret;

type Cell<T> = Arc<OnceCell<T>>;

/// The shared GitHub client.
pub struct GithubClient {
    http: Http,
    settings: GithubSettings,
    keys: Mutex<HashMap<GithubScope, Cell<PublicKey>>>,
    tokens: Mutex<HashMap<String, Cell<Secret>>>,
    repo_ids: Mutex<HashMap<String, Cell<u64>>>,
    /// Bounds requests in flight (`github.max_concurrency`), retries included.
    in_flight: Semaphore,
}

fn cell<K: std::hash::Hash + Eq + Clone, T>(map: &Mutex<HashMap<K, Cell<T>>>, key: &K) -> Cell<T> {
    map.lock().unwrap_or_else(|e| e.into_inner()).entry(key.clone()).or_default().clone()
}

#[derive(Deserialize)]
struct KeyResponse {
    key_id: String,
    key: String,
}

#[derive(Deserialize)]
struct SecretMeta {
    updated_at: String,
}

#[derive(Deserialize)]
struct IdResponse {
    id: u64,
}

#[derive(Deserialize)]
struct TokenResponse {
    token: String,
}

#[derive(serde::Serialize)]
struct AppClaims {
    iat: i64,
    exp: i64,
    iss: String,
}

impl GithubClient {
    /// A client for one run. Makes no request.
    pub fn new(http: Http, settings: GithubSettings) -> Self {
        let in_flight = Semaphore::new(settings.max_concurrency);
        GithubClient {
            http,
            settings,
            keys: Mutex::default(),
            tokens: Mutex::default(),
            repo_ids: Mutex::default(),
            in_flight,
        }
    }

    /// Every GitHub request goes through here: at most `max_concurrency` in flight.
    async fn send(&self, what: &str, build: impl Fn() -> reqwest::RequestBuilder) -> Attempted {
        let _permit = self.in_flight.acquire().await;
        self.http.send_idempotent(what, build).await
    }

    fn url(&self, segments: &[&str]) -> url::Url {
        let mut url = self.settings.api_url.clone();
        url.path_segments_mut().expect("https base URL").pop_if_empty().extend(segments);
        url
    }

    fn request(&self, method: reqwest::Method, url: url::Url, token: &Secret) -> reqwest::RequestBuilder {
        self.http
            .client()
            .request(method, url)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .bearer_auth(token.expose())
    }

    /// The token for requests about `owner`'s secrets.
    async fn token(&self, scope: &GithubScope) -> Result<Secret, TargetError> {
        match &self.settings.auth {
            GithubAuth::Token(t) => Ok(t.clone()),
            GithubAuth::App { app_id, private_key, installation_id } => {
                let owner = scope.owner().to_owned();
                let c = cell(&self.tokens, &owner);
                c.get_or_try_init(|| self.installation_token(*app_id, private_key, *installation_id, scope))
                    .await
                    .cloned()
            }
        }
    }

    async fn installation_token(
        &self,
        app_id: u64,
        key: &Secret,
        installation_id: Option<u64>,
        scope: &GithubScope,
    ) -> Result<Secret, TargetError> {
        let now = jiff::Timestamp::now().as_second();
        // GitHub allows at most 10 minutes; backdate a minute against clock drift.
        let claims = AppClaims { iat: now - 60, exp: now + 540, iss: app_id.to_string() };
        let enc = jsonwebtoken::EncodingKey::from_rsa_pem(key.expose().as_bytes())
            .map_err(|_| TargetError("the GitHub App private key is not an RSA PEM key".into()))?;
        let jwt = jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &claims, &enc)
            .map_err(|e| TargetError(format!("cannot sign the GitHub App JWT: {e}")))?;
        let jwt = Secret::new(jwt);

        let id = match installation_id {
            Some(id) => id,
            None => {
                let url = match scope {
                    GithubScope::Org { org, .. } => self.url(&["orgs", org, "installation"]),
                    GithubScope::Repo { repository } | GithubScope::Environment { repository, .. } => {
                        let (o, r) = repository.split_once('/').unwrap_or((repository, ""));
                        self.url(&["repos", o, r, "installation"])
                    }
                };
                let r = self.get(url, &jwt, "GitHub App installation lookup").await?;
                expect_ok(
                    &r,
                    200,
                    &format!("GitHub App {app_id} installation for {}", scope.owner()),
                    &scope.describe(),
                )?;
                parse::<IdResponse>(&r, "installation")?.id
            }
        };
        let url = self.url(&["app", "installations", &id.to_string(), "access_tokens"]);
        let at =
            self.send("GitHub App installation token", || self.request(reqwest::Method::POST, url.clone(), &jwt)).await;
        let r = at.result.map_err(|e| TargetError(format!("GitHub App installation token: {e}")))?;
        expect_ok(&r, 201, &format!("GitHub App installation {id} token"), &scope.describe())?;
        let token = parse::<TokenResponse>(&r, "installation token")?.token;
        log::debug(&format!("made a GitHub App installation token for {}", scope.owner()));
        Ok(Secret::new(token))
    }

    async fn get(&self, url: url::Url, token: &Secret, what: &str) -> Result<Response, TargetError> {
        log::debug(&format!("GET {url}"));
        self.send(what, || self.request(reqwest::Method::GET, url.clone(), token))
            .await
            .result
            .map_err(|e| TargetError(format!("{what}: GET {url}: {e}")))
    }

    fn base(scope: &GithubScope) -> Vec<&str> {
        match scope {
            GithubScope::Repo { repository } => {
                let (o, r) = repository.split_once('/').unwrap_or((repository, ""));
                vec!["repos", o, r, "actions", "secrets"]
            }
            GithubScope::Environment { repository, environment } => {
                let (o, r) = repository.split_once('/').unwrap_or((repository, ""));
                vec!["repos", o, r, "environments", environment, "secrets"]
            }
            GithubScope::Org { org, .. } => vec!["orgs", org, "actions", "secrets"],
        }
    }

    /// The scope's public key, fetched once per run.
    async fn public_key(&self, scope: &GithubScope) -> Result<PublicKey, TargetError> {
        let c = cell(&self.keys, scope);
        c.get_or_try_init(|| async {
            let token = self.token(scope).await?;
            let mut segs = Self::base(scope);
            segs.push("public-key");
            let r = self.get(self.url(&segs), &token, "public key").await?;
            expect_ok(&r, 200, "public key", &scope.describe())?;
            let k = parse::<KeyResponse>(&r, "public key")?;
            PublicKey::from_base64(&k.key_id, &k.key).map_err(|e| TargetError(format!("{}: {e}", scope.describe())))
        })
        .await
        .cloned()
    }

    async fn repo_id(&self, org: &str, name: &str, token: &Secret) -> Result<u64, TargetError> {
        let full = format!("{org}/{name}");
        let c = cell(&self.repo_ids, &full);
        c.get_or_try_init(|| async {
            let r = self.get(self.url(&["repos", org, name]), token, "repository lookup").await?;
            if r.status.as_u16() == 404 {
                return Err(TargetError(format!(
                    "selected repository {full} was not found, or the token cannot see it"
                )));
            }
            expect_ok(&r, 200, "repository lookup", &full)?;
            Ok(parse::<IdResponse>(&r, "repository")?.id)
        })
        .await
        .copied()
    }
}

/// One GitHub secret.
pub struct GithubTarget {
    client: Arc<GithubClient>,
    secret: GithubSecret,
}

impl GithubTarget {
    /// A target on the shared client.
    pub fn new(client: Arc<GithubClient>, secret: GithubSecret) -> Self {
        GithubTarget { client, secret }
    }

    fn secret_url(&self) -> url::Url {
        let mut segs = GithubClient::base(&self.secret.scope);
        segs.push(&self.secret.name);
        self.client.url(&segs)
    }

    /// Builds the PUT body: the sealed value, its key id, and for org secrets the visibility.
    async fn body(&self, value: &Secret, token: &Secret) -> Result<serde_json::Value, TargetError> {
        let key = self.client.public_key(&self.secret.scope).await?;
        let sealed = key.seal(value).map_err(|e| TargetError(format!("{}: {e}", self.describe())))?;
        let mut body = serde_json::json!({ "encrypted_value": sealed, "key_id": key.key_id });
        if let GithubScope::Org { org, visibility } = &self.secret.scope {
            let (vis, repos) = match visibility {
                Visibility::All => ("all", None),
                Visibility::Private => ("private", None),
                Visibility::Selected(names) => ("selected", Some(names)),
            };
            body["visibility"] = vis.into();
            if let Some(names) = repos {
                let mut ids = Vec::new();
                for n in names {
                    ids.push(self.client.repo_id(org, n, token).await?);
                }
                body["selected_repository_ids"] = ids.into();
            }
        }
        Ok(body)
    }

    async fn put(&self, value: &Secret) -> Written {
        let token = match self.client.token(&self.secret.scope).await {
            Ok(t) => t,
            Err(e) => return Written { attempts: 0, result: Err(e) },
        };
        let body = match self.body(value, &token).await {
            Ok(b) => b,
            Err(e) => return Written { attempts: 0, result: Err(e) },
        };
        let url = self.secret_url();
        log::debug(&format!("PUT {url}"));
        let at = self
            .client
            .send(&format!("write {}", self.describe()), || {
                self.client.request(reqwest::Method::PUT, url.clone(), &token).json(&body)
            })
            .await;
        let result = match at.result {
            Ok(r) if r.status.as_u16() == 201 || r.status.as_u16() == 204 => Ok(()),
            Ok(r) => Err(status_error(&r, "write", &self.describe())),
            Err(e) => Err(TargetError(format!("{}: {e}", self.describe()))),
        };
        Written { attempts: at.attempts, result }
    }
}

#[async_trait]
impl Target for GithubTarget {
    fn kind(&self) -> &'static str {
        "github"
    }

    fn describe(&self) -> String {
        self.secret.describe()
    }

    fn check_value(&self, value: &Secret) -> Result<(), String> {
        if value.len() > GITHUB_MAX_SECRET_BYTES {
            return Err(format!("the new value is {} bytes, over GitHub's 48 KB secret limit", value.len()));
        }
        Ok(())
    }

    async fn updated_at(&self, _live: &Secret) -> Result<Option<jiff::Timestamp>, TargetError> {
        let token = self.client.token(&self.secret.scope).await?;
        let r = self.client.get(self.secret_url(), &token, "read secret").await?;
        if r.status.as_u16() == 404 {
            return Ok(None);
        }
        expect_ok(&r, 200, "read secret", &self.describe())?;
        let meta = parse::<SecretMeta>(&r, "secret")?;
        meta.updated_at.parse::<jiff::Timestamp>().map(Some).map_err(|_| {
            TargetError(format!("{}: updated_at `{}` is not a timestamp", self.describe(), meta.updated_at))
        })
    }

    async fn preflight(&self, current: Option<&Secret>, _live: &Secret) -> Result<(), TargetError> {
        match current {
            Some(value) => self.put(value).await.result,
            None => self.client.public_key(&self.secret.scope).await.map(|_| ()),
        }
    }

    async fn write(&self, value: &Secret, _live: &Secret) -> Written {
        self.put(value).await
    }
}

fn parse<T: serde::de::DeserializeOwned>(r: &Response, what: &str) -> Result<T, TargetError> {
    serde_json::from_slice(&r.body)
        .map_err(|_| TargetError(format!("GitHub answered a {what} request with an unexpected body: {}", r.snippet())))
}

fn expect_ok(r: &Response, want: u16, what: &str, target: &str) -> Result<(), TargetError> {
    if r.status.as_u16() == want {
        Ok(())
    } else {
        Err(status_error(r, what, target))
    }
}

/// GitHub's answer, with what it usually means.
fn status_error(r: &Response, what: &str, target: &str) -> TargetError {
    super::status_error(r, what, target, |status| {
        match status {
        401 => " (the token is invalid or expired)",
        403 => " (the token may not write Actions secrets: a fine-grained token needs \"Secrets: read and write\" on the repository, or \"Organization secrets\" for an org; a GitHub App needs the secrets permission; GITHUB_TOKEN cannot write secrets)",
        404 => " (not found: check the repository, environment or organization name, and that the token can see it)",
        _ => "",
    }
    })
}
