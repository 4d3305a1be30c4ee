//! The GitHub connection (`github:`, `github_token`, `app_*`, `GITHUB_API_URL`) and the client
//! every GitHub target of a run shares: it makes GitHub App installation tokens once per owner,
//! fetches each scope's public key once, lists a scope's secrets once where several targets read
//! from it, resolves selected repositories to ids once, and paces every request within GitHub's
//! limits (`pacing.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::OnceCell;
use tokio::time::Instant;
use url::Url;

use super::pacing::{self, Class, Pacer};
use crate::crypto::PublicKey;
use crate::error::InputError;
use crate::http::{Attempted, Http, HttpError, Method, Pace, Request, Response, Shutdown};
use crate::inputs::{check_url, Field, Fields, Owner};
use crate::log;
use crate::secret::Secret;
use crate::services::Service;
use crate::targets::{status_error, TargetError};

/// Default bound on GitHub requests in flight: a third of GitHub's documented limit of 100
/// concurrent requests (other jobs of the same account share it), enough for a 50-target fan-out
/// to go out in two waves.
pub const DEFAULT_MAX_CONCURRENCY: usize = 32;
/// Highest accepted `github.max_concurrency`.
pub const MAX_CONCURRENCY_LIMIT: usize = 32;
/// Lowest accepted `github.points_per_minute`: two writes.
const MIN_POINTS: u32 = 10;

const OWNER: Owner = Owner::Service("github");
const TOKEN: Field = Field::secret("github_token", "a token that may write Actions secrets (GITHUB_TOKEN cannot)")
    .key("token")
    .of(OWNER);
const APP: Field = Field::plain("app", "a GitHub App instead of a token").config_only().of(OWNER);
const APP_ID: Field = Field::plain("app_id", "GitHub App id (instead of github_token)").key("id").of(OWNER);
const APP_PRIVATE_KEY: Field =
    Field::secret("app_private_key", "GitHub App private key, PEM").key("private_key").of(OWNER);
const APP_INSTALLATION_ID: Field =
    Field::plain("app_installation_id", "GitHub App installation id (looked up when absent)")
        .key("installation_id")
        .of(OWNER);
const API_URL: Field = Field::plain("api_url", "REST API base URL").config_only().of(OWNER);
const MAX_CONCURRENCY: Field =
    Field::plain("max_concurrency", "GitHub requests in flight at once").config_only().of(OWNER);
const POINTS_PER_MINUTE: Field = Field::plain(
    "points_per_minute",
    "GitHub's secondary rate limit budget in points a minute (a GET costs 1, a write 5)",
)
.config_only()
.of(OWNER);

const SECTION: &[Field] = &[TOKEN, APP, API_URL, MAX_CONCURRENCY, POINTS_PER_MINUTE];
const APP_SECTION: &[Field] = &[APP_ID, APP_PRIVATE_KEY, APP_INSTALLATION_ID];

/// GitHub credentials.
#[derive(Debug)]
pub enum GithubAuth {
    /// A token that may write secrets.
    Token(Secret),
    /// A GitHub App: installation tokens are made per owner.
    App {
        /// App id (the JWT issuer).
        app_id: u64,
        /// RSA private key, PEM.
        private_key: Secret,
        /// Installation to use for every owner; looked up per owner when absent.
        installation_id: Option<u64>,
    },
}

/// Which of GitHub's secret stores: each has its own endpoints and public keys, and is read by
/// different consumers (workflows, Dependabot-triggered workflows, codespaces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Store {
    /// Actions secrets, read by workflows.
    Actions,
    /// Dependabot secrets: the only secrets a workflow that Dependabot triggered can read.
    Dependabot,
    /// Codespaces secrets, read by codespaces.
    Codespaces,
}

impl Store {
    /// The config spelling and the URL segment.
    pub fn name(self) -> &'static str {
        match self {
            Store::Actions => "actions",
            Store::Dependabot => "dependabot",
            Store::Codespaces => "codespaces",
        }
    }

    /// The store's secrets in prose (`Dependabot secret`); Actions secrets are just `secret`.
    pub fn noun(self) -> &'static str {
        match self {
            Store::Actions => "secret",
            Store::Dependabot => "Dependabot secret",
            Store::Codespaces => "Codespaces secret",
        }
    }
}

/// Where a secret lives: a scope with its own public key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GithubScope {
    /// Repository secret.
    Repo {
        /// `owner/repo`.
        repository: String,
    },
    /// Environment secret.
    Environment {
        /// `owner/repo`.
        repository: String,
        /// Environment name.
        environment: String,
    },
    /// Organization secret.
    Org {
        /// Organization.
        org: String,
    },
}

impl GithubScope {
    /// Human description.
    pub fn describe(&self) -> String {
        match self {
            GithubScope::Repo { repository } => repository.clone(),
            GithubScope::Environment { repository, environment } => format!("{repository} environment {environment}"),
            GithubScope::Org { org } => format!("org {org}"),
        }
    }

    /// The account that owns the secret (where a GitHub App is installed).
    pub fn owner(&self) -> &str {
        match self {
            GithubScope::Repo { repository } | GithubScope::Environment { repository, .. } => {
                repository.split('/').next().unwrap_or(repository)
            }
            GithubScope::Org { org } => org,
        }
    }

    /// The URL path of the scope's secrets collection in `store` (environments have Actions
    /// secrets only: the parser refuses another store for them).
    pub fn secrets_path(&self, store: Store) -> Vec<&str> {
        match self {
            GithubScope::Repo { repository } => {
                let (o, r) = repository.split_once('/').unwrap_or((repository, ""));
                vec!["repos", o, r, store.name(), "secrets"]
            }
            GithubScope::Environment { repository, environment } => {
                let (o, r) = repository.split_once('/').unwrap_or((repository, ""));
                vec!["repos", o, r, "environments", environment, "secrets"]
            }
            GithubScope::Org { org } => vec!["orgs", org, store.name(), "secrets"],
        }
    }
}

type Cell<T> = Arc<OnceCell<T>>;

/// A scope's latest list (being) read, and when it was asked for.
type LatestList = (Instant, Cell<Listing>);

fn cell<K: std::hash::Hash + Eq + Clone, T>(map: &Mutex<HashMap<K, Cell<T>>>, key: &K) -> Cell<T> {
    map.lock().unwrap_or_else(|e| e.into_inner()).entry(key.clone()).or_default().clone()
}

/// The GitHub connection of a run, shared by its GitHub targets.
#[derive(Debug)]
pub struct Github {
    /// REST API base, no trailing slash.
    pub api_url: Url,
    auth: GithubAuth,
    keys: Mutex<HashMap<(GithubScope, Store), Cell<PublicKey>>>,
    /// Per scope and store: how many targets of the run read their secret's metadata.
    readers: Mutex<HashMap<(GithubScope, Store), usize>>,
    /// The latest list of each scope's secrets, with when it was asked for.
    listings: Mutex<HashMap<(GithubScope, Store), LatestList>>,
    tokens: Mutex<HashMap<String, Cell<Secret>>>,
    repo_ids: Mutex<HashMap<String, Cell<u64>>>,
    /// Paces every request (`github.max_concurrency`, `github.points_per_minute`), retries included.
    pacer: Arc<Pacer>,
    /// This workflow run (`GITHUB_REPOSITORY`, `GITHUB_RUN_ID`), inside GitHub Actions.
    run: Option<(String, String)>,
    run_started: OnceCell<Option<jiff::Timestamp>>,
}

impl Service for Github {
    const KEY: &'static str = "github";
    const FIELDS: &'static [Field] =
        &[TOKEN, APP, APP_ID, APP_PRIVATE_KEY, APP_INSTALLATION_ID, API_URL, MAX_CONCURRENCY, POINTS_PER_MINUTE];

    fn parse(section: Option<&Fields>, inputs: &Fields) -> Result<Self, InputError> {
        let (api_url, max_concurrency, points, from_config) = match section {
            Some(s) => {
                s.finish(SECTION, &[])?;
                let url = s.str(&API_URL)?.map(|u| (u, s.label(&API_URL)));
                (url, s.str(&MAX_CONCURRENCY)?, s.str(&POINTS_PER_MINUTE)?, auth(s)?)
            }
            None => (None, None, None, None),
        };
        let api_url = match api_url {
            Some((u, label)) => check_url(&label, u.trim_end_matches('/'))?,
            None => {
                let u = inputs.env().get("GITHUB_API_URL").unwrap_or("https://api.github.com");
                check_url("GITHUB_API_URL", u.trim_end_matches('/'))?
            }
        };
        let max_concurrency = match max_concurrency {
            None => DEFAULT_MAX_CONCURRENCY,
            Some(n) => {
                n.parse::<usize>().ok().filter(|n| (1..=MAX_CONCURRENCY_LIMIT).contains(n)).ok_or_else(|| {
                    InputError::new("github.max_concurrency", format!("must be between 1 and {MAX_CONCURRENCY_LIMIT}"))
                })?
            }
        };
        let points = match points {
            None => pacing::DEFAULT_POINTS_PER_MINUTE,
            Some(n) => n.parse::<u32>().ok().filter(|n| *n >= MIN_POINTS).ok_or_else(|| {
                InputError::new(
                    "github.points_per_minute",
                    format!(
                        "must be a whole number of at least {MIN_POINTS} (GitHub's documented budget is {})",
                        pacing::DEFAULT_POINTS_PER_MINUTE
                    ),
                )
            })?,
        };
        let auth = match from_config {
            Some(a) => a,
            None => match auth(inputs)? {
                Some(a) => a,
                None if section.is_some() => {
                    return Err(InputError::new(
                        "github.token",
                        "is required: set github.token or github.app in the config file (or the github_token input)",
                    ))
                }
                None => {
                    return Err(inputs.error(
                        &TOKEN,
                        "is required: set github_token (a token that may write Actions secrets) or app_id and app_private_key",
                    ))
                }
            },
        };
        let env = inputs.env();
        let run = match (env.is_true("GITHUB_ACTIONS"), env.get("GITHUB_REPOSITORY"), env.get("GITHUB_RUN_ID")) {
            (true, Some(repo), Some(id)) if repo.contains('/') && id.bytes().all(|b| b.is_ascii_digit()) => {
                Some((repo.to_owned(), id.to_owned()))
            }
            _ => None,
        };
        Ok(Github {
            api_url,
            auth,
            keys: Mutex::default(),
            readers: Mutex::default(),
            listings: Mutex::default(),
            tokens: Mutex::default(),
            repo_ids: Mutex::default(),
            pacer: Pacer::new(max_concurrency, points),
            run,
            run_started: OnceCell::new(),
        })
    }
}

/// A token or an App, from the config section or the inputs; `None` when neither is given.
fn auth(f: &Fields) -> Result<Option<GithubAuth>, InputError> {
    let nested;
    let app = if f.is_inputs() {
        f.is_set(&APP_ID).then_some(f)
    } else {
        nested = f.section(&APP)?;
        nested.as_ref()
    };
    match (f.is_set(&TOKEN), app) {
        (true, Some(_)) if f.is_inputs() => Err(f.error(&APP_ID, "and github_token are both set: use one of them")),
        (true, Some(_)) => Err(f.error(&APP, "and github.token are both set: use one of them")),
        (true, None) => Ok(f.secret(&TOKEN)?.map(GithubAuth::Token)),
        (false, Some(a)) => app_auth(a).map(Some),
        (false, None) => Ok(None),
    }
}

fn app_auth(f: &Fields) -> Result<GithubAuth, InputError> {
    f.finish(APP_SECTION, &[])?;
    let id = |field: &Field| -> Result<Option<u64>, InputError> {
        match f.str(field)? {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| f.error(field, format!("`{v}` is not a numeric id"))),
        }
    };
    let app_id = id(&APP_ID)?.ok_or_else(|| f.error(&APP_ID, "is required for a GitHub App"))?;
    let private_key = f
        .secret(&APP_PRIVATE_KEY)?
        .ok_or_else(|| f.error(&APP_PRIVATE_KEY, "is required with a GitHub App id: the App's private key (PEM)"))?;
    if jsonwebtoken::EncodingKey::from_rsa_pem(private_key.expose().as_bytes()).is_err() {
        return Err(f.error(
            &APP_PRIVATE_KEY,
            "is not an RSA private key in PEM: use the .pem file GitHub generated for the App",
        ));
    }
    Ok(GithubAuth::App { app_id, private_key, installation_id: id(&APP_INSTALLATION_ID)? })
}

/// What GitHub says of one secret, in its own GET or in a list of the scope's secrets.
#[derive(Debug, Clone, Deserialize)]
pub struct SecretMeta {
    /// RFC 3339.
    pub updated_at: String,
    /// Organization secrets only.
    pub visibility: Option<String>,
}

#[derive(Deserialize)]
struct Listed {
    name: String,
    #[serde(flatten)]
    meta: SecretMeta,
}

#[derive(Deserialize)]
struct SecretList {
    total_count: usize,
    secrets: Vec<Listed>,
}

/// One scope's secrets in one store, as listed.
#[derive(Debug)]
struct Listing {
    /// By name, upper case (GitHub's names are case-insensitive).
    secrets: HashMap<String, SecretMeta>,
    /// Every page was read: a name not in `secrets` does not exist.
    complete: bool,
}

/// GitHub's largest page.
pub const PER_PAGE: usize = 100;
/// How long a list of a scope's secrets answers for them: the reads of one stage of a run come
/// together, while a later read (a rotation that starts after others) must see what GitHub holds
/// then, as its own GET would.
const LISTING_ANSWERS_FOR: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
struct KeyResponse {
    key_id: String,
    key: String,
}

#[derive(Deserialize)]
struct IdResponse {
    id: u64,
}

#[derive(Deserialize)]
struct TokenResponse {
    token: String,
}

#[derive(Deserialize)]
struct RunResponse {
    run_started_at: String,
}

#[derive(serde::Serialize)]
struct AppClaims {
    iat: i64,
    exp: i64,
    iss: String,
}

/// One request's pacing: its class.
struct Paced<'a> {
    pacer: &'a Arc<Pacer>,
    class: Class,
}

#[async_trait::async_trait]
impl Pace for Paced<'_> {
    type Slot = pacing::Slot;

    async fn admit(&self, req: &Request, shutdown: &Shutdown) -> Result<pacing::Slot, HttpError> {
        let slot = self.pacer.admit(pacing::cost(req), self.class, shutdown).await?;
        log::debug(&format!("{} {}", req.method, req.url));
        Ok(slot)
    }

    fn observe(&self, result: &Result<Response, HttpError>, attempt: u32) -> bool {
        self.pacer.observe(result, attempt)
    }
}

impl Github {
    /// Every GitHub request goes through here, paced within GitHub's limits.
    pub async fn send(&self, http: &Http, what: &str, req: &Request) -> Attempted {
        http.send_paced(what, req, &Paced { pacer: &self.pacer, class: Class::before_rotation(req) }).await
    }

    /// A write after the rotation: ahead of other requests.
    pub async fn send_write(&self, http: &Http, what: &str, req: &Request) -> Attempted {
        http.send_paced(what, req, &Paced { pacer: &self.pacer, class: Class::Write }).await
    }

    /// Before `rotation`'s token request, for one of its writes: waits for room (see `pacing.rs`).
    pub async fn reserve_write(&self, http: &Http, rotation: &str) -> Result<(), TargetError> {
        self.pacer
            .reserve(rotation, pacing::cost(&Request::new(Method::PUT, self.api_url.clone())), http.shutdown())
            .await
            .map_err(|e| TargetError(format!("GitHub: {e}")))
    }

    /// `rotation` is done (see `pacing.rs`).
    pub fn release(&self, rotation: &str) {
        self.pacer.release(rotation);
    }

    /// Rate-limit answers GitHub gave this run.
    pub fn limited(&self) -> u32 {
        self.pacer.limited()
    }

    /// A URL under the API base.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.api_url.clone();
        url.path_segments_mut().expect("https base URL").pop_if_empty().extend(segments);
        url
    }

    /// A request with GitHub's media type, the pinned API version and the token.
    pub fn request(&self, method: Method, url: Url, token: &Secret) -> Request {
        Request::new(method, url)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .bearer(token)
    }

    /// The token for requests about `scope`'s secrets.
    pub async fn token(&self, http: &Http, scope: &GithubScope) -> Result<Secret, TargetError> {
        match &self.auth {
            GithubAuth::Token(t) => Ok(t.clone()),
            GithubAuth::App { app_id, private_key, installation_id } => {
                let c = cell(&self.tokens, &scope.owner().to_owned());
                c.get_or_try_init(|| self.installation_token(http, *app_id, private_key, *installation_id, scope))
                    .await
                    .cloned()
            }
        }
    }

    async fn installation_token(
        &self,
        http: &Http,
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
                    GithubScope::Org { org } => self.url(&["orgs", org, "installation"]),
                    GithubScope::Repo { repository } | GithubScope::Environment { repository, .. } => {
                        let (o, r) = repository.split_once('/').unwrap_or((repository, ""));
                        self.url(&["repos", o, r, "installation"])
                    }
                };
                let r = self.get(http, url, &jwt, "GitHub App installation lookup").await?;
                expect(&r, 200, &format!("GitHub App {app_id} installation for {}", scope.owner()), &scope.describe())?;
                parse::<IdResponse>(&r, "installation")?.id
            }
        };
        let url = self.url(&["app", "installations", &id.to_string(), "access_tokens"]);
        // A POST, but what every request about the owner's secrets waits for: it goes as a read.
        let req = self.request(Method::POST, url, &jwt);
        let at = http
            .send_paced("GitHub App installation token", &req, &Paced { pacer: &self.pacer, class: Class::Read })
            .await;
        let r = at.result.map_err(|e| TargetError(format!("GitHub App installation token: {e}")))?;
        expect(&r, 201, &format!("GitHub App installation {id} token"), &scope.describe())?;
        let token = Secret::new(parse::<TokenResponse>(&r, "installation token")?.token);
        log::debug(&format!("made a GitHub App installation token for {}", scope.owner()));
        Ok(token)
    }

    /// `GET url`, with retries.
    pub async fn get(&self, http: &Http, url: Url, token: &Secret, what: &str) -> Result<Response, TargetError> {
        let req = self.request(Method::GET, url.clone(), token);
        self.send(http, what, &req).await.result.map_err(|e| TargetError(format!("{what}: GET {url}: {e}")))
    }

    /// When this workflow run started, where the token may read it (`actions: read`): no job of
    /// the run received its secrets earlier. Read once per process; `None` outside Actions.
    pub async fn run_started_at(&self, http: &Http) -> Option<jiff::Timestamp> {
        let (repository, id) = self.run.as_ref()?;
        *self
            .run_started
            .get_or_init(|| async {
                let (o, r) = repository.split_once('/')?;
                let token = self.token(http, &GithubScope::Repo { repository: repository.clone() }).await.ok()?;
                let url = self.url(&["repos", o, r, "actions", "runs", id]);
                let at = match self.get(http, url, &token, "workflow run").await {
                    Ok(resp) if resp.status.as_u16() == 200 => parse::<RunResponse>(&resp, "workflow run")
                        .ok()
                        .and_then(|run| run.run_started_at.parse::<jiff::Timestamp>().ok()),
                    _ => None,
                };
                if at.is_none() {
                    log::debug("the workflow run's start is not readable (actions: read): using the process start");
                }
                at
            })
            .await
    }

    /// The public key of `scope`'s `store`, fetched once per run.
    pub async fn public_key(&self, http: &Http, scope: &GithubScope, store: Store) -> Result<PublicKey, TargetError> {
        let c = cell(&self.keys, &(scope.clone(), store));
        c.get_or_try_init(|| async {
            let token = self.token(http, scope).await?;
            let mut segs = scope.secrets_path(store);
            segs.push("public-key");
            let r = self.get(http, self.url(&segs), &token, "public key").await?;
            expect_in(&r, 200, "public key", &scope.describe(), store)?;
            let k = parse::<KeyResponse>(&r, "public key")?;
            PublicKey::from_base64(&k.key_id, &k.key).map_err(|e| TargetError(format!("{}: {e}", scope.describe())))
        })
        .await
        .cloned()
    }

    /// A target of the run will read its secret's metadata in `scope`'s `store` (counted as the
    /// plan is made).
    pub fn will_read(&self, scope: &GithubScope, store: Store) {
        *self.readers.lock().unwrap_or_else(|e| e.into_inner()).entry((scope.clone(), store)).or_default() += 1;
    }

    /// How many targets of the run read their secret's metadata in `scope`'s `store`.
    pub fn readers(&self, scope: &GithubScope, store: Store) -> usize {
        let readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        readers.get(&(scope.clone(), store)).copied().unwrap_or(0)
    }

    /// What the list of `scope`'s `store` secrets says of `name` (upper case): `Some(None)` when
    /// it does not exist, `None` when the list does not tell (read the secret itself). The list
    /// is read only where two or more targets read from the scope (a page costs what one
    /// secret's read costs), and answers for [`LISTING_ANSWERS_FOR`]; a read after that lists
    /// again.
    pub async fn listed(
        &self,
        http: &Http,
        scope: &GithubScope,
        store: Store,
        name: &str,
        token: &Secret,
    ) -> Result<Option<Option<SecretMeta>>, TargetError> {
        let readers = self.readers(scope, store);
        if readers < 2 {
            return Ok(None);
        }
        let listing = {
            let mut lists = self.listings.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let (at, listing) = lists.entry((scope.clone(), store)).or_insert_with(|| (now, Cell::default()));
            if now.duration_since(*at) > LISTING_ANSWERS_FOR {
                // Too old to judge a secret by (another run may have rotated it since): list again.
                *at = now;
                *listing = Cell::default();
            }
            listing.clone()
        };
        let listing = listing.get_or_try_init(|| self.list(http, scope, store, token, readers)).await?;
        Ok(match listing.secrets.get(name) {
            Some(meta) => Some(Some(meta.clone())),
            None if listing.complete => Some(None),
            None => None,
        })
    }

    /// Lists `scope`'s `store` secrets, page by page, unless there are more pages than the
    /// `readers` they would each save a read: then the first page only.
    async fn list(
        &self,
        http: &Http,
        scope: &GithubScope,
        store: Store,
        token: &Secret,
        readers: usize,
    ) -> Result<Listing, TargetError> {
        let what = format!("{} {}s", scope.describe(), store.noun());
        let mut secrets = HashMap::new();
        for page in 1.. {
            let mut url = self.url(&scope.secrets_path(store));
            url.query_pairs_mut().append_pair("per_page", &PER_PAGE.to_string()).append_pair("page", &page.to_string());
            let r = self.get(http, url, token, "list secrets").await?;
            expect_in(&r, 200, "list secrets", &what, store)?;
            let list = parse::<SecretList>(&r, "list secrets")?;
            let got = list.secrets.len();
            secrets.extend(list.secrets.into_iter().map(|s| (s.name.to_ascii_uppercase(), s.meta)));
            let pages = list.total_count.div_ceil(PER_PAGE);
            if got < PER_PAGE || secrets.len() >= list.total_count || page >= pages {
                break;
            }
            if pages > readers {
                return Ok(Listing { secrets, complete: false });
            }
        }
        Ok(Listing { secrets, complete: true })
    }

    /// A repository's id (for an org secret's selected repositories), looked up once per run.
    pub async fn repo_id(&self, http: &Http, org: &str, name: &str, token: &Secret) -> Result<u64, TargetError> {
        let full = format!("{org}/{name}");
        let c = cell(&self.repo_ids, &full);
        c.get_or_try_init(|| async {
            let r = self.get(http, self.url(&["repos", org, name]), token, "repository lookup").await?;
            if r.status.as_u16() == 404 {
                return Err(TargetError(format!(
                    "selected repository {full} was not found, or the token cannot see it"
                )));
            }
            expect(&r, 200, "repository lookup", &full)?;
            Ok(parse::<IdResponse>(&r, "repository")?.id)
        })
        .await
        .copied()
    }
}

/// Parses a GitHub answer, or says it was unexpected.
pub fn parse<T: serde::de::DeserializeOwned>(r: &Response, what: &str) -> Result<T, TargetError> {
    serde_json::from_slice(&r.body)
        .map_err(|_| TargetError(format!("GitHub answered a {what} request with an unexpected body: {}", r.snippet())))
}

/// `Ok` when GitHub answered `want`, else its answer as an error.
pub fn expect(r: &Response, want: u16, what: &str, target: &str) -> Result<(), TargetError> {
    expect_in(r, want, what, target, Store::Actions)
}

/// `Ok` when GitHub answered `want` to a request about `store`'s secrets, else its answer as an
/// error that names the permission that store needs.
pub fn expect_in(r: &Response, want: u16, what: &str, target: &str, store: Store) -> Result<(), TargetError> {
    if r.status.as_u16() == want {
        Ok(())
    } else {
        Err(github_error(r, what, target, store))
    }
}

const NOT_FOUND: &str =
    " (not found: check the repository, environment or organization name, and that the token can see it)";

/// GitHub's answer to a request about `store`'s secrets, with what it usually means.
pub fn github_error(r: &Response, what: &str, target: &str, store: Store) -> TargetError {
    let hint: fn(u16) -> &'static str = match store {
        Store::Actions => |status| match status {
            401 => " (the token is invalid or expired)",
            403 => {
                " (the token may not write Actions secrets: a fine-grained token needs \"Secrets: read and write\" on \
                 the repository, or \"Secrets\" (organization) for an org; a GitHub App needs the secrets permission; \
                 GITHUB_TOKEN cannot write secrets)"
            }
            404 => NOT_FOUND,
            _ => "",
        },
        Store::Dependabot => |status| match status {
            401 => " (the token is invalid or expired)",
            403 => {
                " (the token may not write Dependabot secrets: a fine-grained token needs \"Dependabot secrets: read \
                 and write\" on the repository or organization; a GitHub App needs the dependabot_secrets \
                 permission; GITHUB_TOKEN cannot write secrets)"
            }
            404 => NOT_FOUND,
            _ => "",
        },
        Store::Codespaces => |status| match status {
            401 => " (the token is invalid or expired)",
            403 => {
                " (the token may not write Codespaces secrets: a fine-grained token needs \"Codespaces secrets: \
                 read and write\" on the repository, or \"Organization codespaces secrets\" for an org; a GitHub App \
                 needs the codespaces_secrets or organization_codespaces_secrets permission)"
            }
            404 => NOT_FOUND,
            _ => "",
        },
    };
    status_error(r, what, target, hint)
}
