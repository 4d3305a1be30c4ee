//! Target `github`: repository, environment and organization secrets in GitHub's Actions,
//! Dependabot and Codespaces stores, sealed to the store's public key (the connection and its
//! caches are in `connection.rs`). An existing organization secret keeps the visibility and
//! selected repositories it has, unless the settings name them.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Deserialize;

use super::{
    check_current, newer_than_ours, Planned, Prepared, Proof, Target, TargetContext, TargetError, TargetKind,
    ValueKind, ValueProblem, Written,
};
use crate::error::InputError;
use crate::http::{Http, Method};
use crate::inputs::{Field, Fields, Owner};
use crate::secret::Secret;

mod connection;
mod pacing;

use connection::{expect_in, github_error, parse as parse_body, SecretMeta, PER_PAGE};
pub use connection::{Github, GithubAuth, GithubScope, Store};

/// GitHub's limit on a secret's value.
pub const MAX_SECRET_BYTES: usize = 48 * 1024;

const OWNER: Owner = Owner::Target("github");
const SECRET_NAME: Field =
    Field::plain("secret_name", "the secret that receives the rotated credential").key("secret").of(OWNER);
const ACCESS_TOKEN_SECRET_NAME: Field =
    Field::plain("access_token_secret_name", "also write the new access token to this secret").input_only().of(OWNER);
const REPOSITORY: Field = Field::plain("repository", "owner/repo (default: GITHUB_REPOSITORY)").of(OWNER);
const ENVIRONMENT: Field = Field::plain("environment", "write an environment secret of this environment").of(OWNER);
const ORG: Field = Field::plain("org", "write an organization secret of this organization").of(OWNER);
const STORE: Field = Field::plain(
    "github_store",
    "the secret store: actions, dependabot (what Dependabot-triggered workflows read) or codespaces (default: actions)",
)
.key("store")
.of(OWNER);
const VISIBILITY: Field = Field::plain(
    "visibility",
    "organization secret visibility: all, private or selected (default: the existing secret's, else private)",
)
.of(OWNER);
const SELECTED_REPOSITORIES: Field =
    Field::plain("selected_repositories", "with visibility selected: comma-separated repository names").of(OWNER);

/// Target `github`.
pub const KIND: TargetKind = TargetKind {
    name: "github",
    key: "github",
    default_in: Some("GITHUB_ACTIONS"),
    fields: &[
        SECRET_NAME,
        ACCESS_TOKEN_SECRET_NAME,
        REPOSITORY,
        ENVIRONMENT,
        ORG,
        STORE,
        VISIBILITY,
        SELECTED_REPOSITORIES,
    ],
    parse,
};

/// Organization secret visibility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Every repository of the org.
    All,
    /// Private and internal repositories.
    Private,
    /// The named repositories.
    Selected(Vec<String>),
}

/// Who may read an organization secret, as sent in a write: the visibility, with the selected
/// repositories as ids.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Access {
    All,
    Private,
    Selected(Vec<u64>),
}

/// One GitHub secret, as validated.
pub struct GithubSecret {
    github: Arc<Github>,
    scope: GithubScope,
    store: Store,
    /// Secret name, uppercased as GitHub stores it.
    name: String,
    /// For an organization secret: the visibility the settings ask for; `None` keeps the
    /// existing secret's.
    visibility: Option<Visibility>,
    /// For an organization secret without a configured visibility: who may read it now, learnt
    /// from the secret itself (`None` inside: the secret does not exist yet).
    kept: Mutex<Option<Option<Access>>>,
    /// When the secret was last updated, as read once this run (`min_age` and the preflight
    /// both ask; `None` inside: it does not exist).
    seen: tokio::sync::OnceCell<Option<jiff::Timestamp>>,
}

fn parse(f: &Fields, ctx: &TargetContext) -> Result<Vec<Planned>, InputError> {
    let name = f.str(&SECRET_NAME)?.ok_or_else(|| {
        f.error(
            &SECRET_NAME,
            if f.is_inputs() {
                "is required: name the secret that receives the rotated credential"
            } else {
                "is required: the secret's name"
            },
        )
    })?;
    check_secret_name(&f.label(&SECRET_NAME), &name)?;
    let (scope, visibility) = scope(f)?;
    let store = store(f, &scope)?;
    let github = ctx.services.get::<Github>()?;
    let secret = GithubSecret::new(github.clone(), scope.clone(), store, name.to_ascii_uppercase(), visibility.clone());
    secret.count_reader(ctx.value);
    check_current(f, &SECRET_NAME, &secret, ctx)?;
    let mut planned = vec![Planned { value: ctx.value, target: Arc::new(secret) as Arc<dyn Target> }];
    if let Some(access) = f.str(&ACCESS_TOKEN_SECRET_NAME)? {
        if !ctx.provider.kind().issues_access_token {
            return Err(f.error(
                &ACCESS_TOKEN_SECRET_NAME,
                format!("does not apply to provider {}: drop it", ctx.provider.kind().name),
            ));
        }
        check_secret_name(&f.label(&ACCESS_TOKEN_SECRET_NAME), &access)?;
        let access = GithubSecret::new(github, scope, store, access.to_ascii_uppercase(), visibility);
        access.count_reader(ValueKind::AccessToken);
        planned.push(Planned { value: ValueKind::AccessToken, target: Arc::new(access) });
    }
    Ok(planned)
}

fn scope(f: &Fields) -> Result<(GithubScope, Option<Visibility>), InputError> {
    let org = f.str(&ORG)?;
    let repository = match f.str(&REPOSITORY)? {
        None if f.is_inputs() && org.is_none() => f.env().get("GITHUB_REPOSITORY").map(str::to_owned),
        r => r,
    };
    let selected = f.list(&SELECTED_REPOSITORIES)?;
    let visibility = f.str(&VISIBILITY)?;
    let environment = f.str(&ENVIRONMENT)?;
    match (repository, org) {
        (Some(_), Some(_)) => {
            Err(f.error(&ORG, "and repository are both set: an organization secret has no repository; set one of them"))
        }
        (None, None) => Err(f.error(&REPOSITORY, "is required (owner/repo), or set org for an organization secret")),
        (Some(repo), None) => {
            check_repository(&f.label(&REPOSITORY), &repo)?;
            if visibility.is_some() || selected.is_some() {
                return Err(f.error(&VISIBILITY, "applies to organization secrets only: set org, or drop it"));
            }
            match environment {
                Some(env) => {
                    check_environment(&f.label(&ENVIRONMENT), &env)?;
                    Ok((GithubScope::Environment { repository: repo, environment: env }, None))
                }
                None => Ok((GithubScope::Repo { repository: repo }, None)),
            }
        }
        (None, Some(org)) => {
            check_owner(&f.label(&ORG), &org)?;
            if environment.is_some() {
                return Err(f.error(
                    &ENVIRONMENT,
                    "needs a repository: environments belong to repositories, not organizations",
                ));
            }
            let selected = selected.unwrap_or_default();
            let visibility = match visibility.as_deref() {
                None if selected.is_empty() => return Ok((GithubScope::Org { org }, None)),
                None => {
                    return Err(f.error(
                        &SELECTED_REPOSITORIES,
                        "applies only with visibility selected: set visibility to selected too",
                    ))
                }
                Some("all") => Visibility::All,
                Some("private") => Visibility::Private,
                Some("selected") => {
                    if selected.is_empty() {
                        return Err(f.error(
                            &SELECTED_REPOSITORIES,
                            "is required with visibility selected: name at least one repository",
                        ));
                    }
                    for r in &selected {
                        check_repo_name(&f.label(&SELECTED_REPOSITORIES), r)?;
                    }
                    Visibility::Selected(selected.clone())
                }
                Some(other) => {
                    return Err(f.error(&VISIBILITY, format!("`{other}` is not valid: use all, private or selected")))
                }
            };
            if !selected.is_empty() && !matches!(visibility, Visibility::Selected(_)) {
                return Err(f.error(&SELECTED_REPOSITORIES, "applies only with visibility selected"));
            }
            Ok((GithubScope::Org { org }, Some(visibility)))
        }
    }
}

fn store(f: &Fields, scope: &GithubScope) -> Result<Store, InputError> {
    let store = match f.str(&STORE)?.as_deref() {
        None | Some("actions") => Store::Actions,
        Some("dependabot") => Store::Dependabot,
        Some("codespaces") => Store::Codespaces,
        Some(other) => {
            return Err(
                f.error(&STORE, format!("`{other}` is not a secret store: use actions, dependabot or codespaces"))
            )
        }
    };
    if store != Store::Actions && matches!(scope, GithubScope::Environment { .. }) {
        return Err(f.error(
            &STORE,
            format!(
                "is {}, but environments hold Actions secrets only: drop environment, or use store actions",
                store.name()
            ),
        ));
    }
    Ok(store)
}

/// GitHub's rules: `[A-Za-z0-9_]`, not starting with a digit or `GITHUB_`.
pub fn check_secret_name(input: &str, name: &str) -> Result<(), InputError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(InputError::new(
            input,
            format!("`{name}` is not a valid secret name: use only letters, digits and _"),
        ));
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(InputError::new(input, format!("`{name}` must not start with a digit")));
    }
    if name.to_ascii_uppercase().starts_with("GITHUB_") {
        return Err(InputError::new(input, format!("`{name}` must not start with GITHUB_ (reserved by GitHub)")));
    }
    Ok(())
}

fn check_owner(input: &str, owner: &str) -> Result<(), InputError> {
    let ok = !owner.is_empty()
        && owner.len() <= 39
        && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(InputError::new(input, format!("`{owner}` is not a GitHub account name")))
    }
}

fn check_repo_name(input: &str, name: &str) -> Result<(), InputError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(InputError::new(input, format!("`{name}` is not a repository name")))
    }
}

fn check_repository(input: &str, repo: &str) -> Result<(), InputError> {
    match repo.split_once('/') {
        Some((owner, name)) if !name.contains('/') => check_owner(input, owner)
            .and_then(|_| check_repo_name(input, name))
            .map_err(|_| InputError::new(input, format!("`{repo}` is not owner/repo"))),
        _ => Err(InputError::new(input, format!("`{repo}` is not owner/repo"))),
    }
}

fn check_environment(input: &str, env: &str) -> Result<(), InputError> {
    let ok = !env.trim().is_empty() && env.len() <= 255 && !env.contains(['/', '?', '#', '%']);
    if ok {
        Ok(())
    } else {
        Err(InputError::new(input, format!("`{env}` is not an environment name")))
    }
}

#[derive(Deserialize)]
struct SelectedRepositories {
    total_count: usize,
    repositories: Vec<RepositoryId>,
}

#[derive(Deserialize)]
struct RepositoryId {
    id: u64,
}

impl GithubSecret {
    fn new(
        github: Arc<Github>,
        scope: GithubScope,
        store: Store,
        name: String,
        visibility: Option<Visibility>,
    ) -> Self {
        GithubSecret {
            github,
            scope,
            store,
            name,
            visibility,
            kept: Mutex::new(None),
            seen: tokio::sync::OnceCell::new(),
        }
    }

    fn secret_url(&self) -> url::Url {
        let mut segs = self.scope.secrets_path(self.store);
        segs.push(&self.name);
        self.github.url(&segs)
    }

    /// Counts this target with its scope's readers of secret metadata when it will read its own:
    /// a target of the rotated credential (its update time), or an organization secret that keeps
    /// its access. A target of a value not known yet (an access token) reads nothing else.
    fn count_reader(&self, value: ValueKind) {
        if value == ValueKind::Credential || self.keeps_access() {
            self.github.will_read(&self.scope, self.store);
        }
    }

    /// True for an organization secret whose visibility comes from the secret itself.
    fn keeps_access(&self) -> bool {
        matches!(self.scope, GithubScope::Org { .. }) && self.visibility.is_none()
    }

    /// The secret's metadata, `None` when it does not exist. For an organization secret that
    /// keeps its access, learns who may read it (once per run).
    async fn meta(&self, http: &Http, token: &Secret) -> Result<Option<SecretMeta>, TargetError> {
        let known = self.github.listed(http, &self.scope, self.store, &self.name, token).await?;
        let meta = match known {
            Some(known) => known,
            None => self.read(http, token).await?,
        };
        let Some(meta) = meta else {
            if self.keeps_access() {
                self.kept.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(None);
            }
            return Ok(None);
        };
        if self.keeps_access() && self.kept.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
            let access = match meta.visibility.as_deref() {
                Some("all") => Access::All,
                Some("private") => Access::Private,
                Some("selected") => Access::Selected(self.selected_ids(http, token).await?),
                other => {
                    return Err(TargetError(format!(
                        "{}: GitHub answered an unexpected visibility {other:?}: set visibility in the settings",
                        self.describe()
                    )))
                }
            };
            *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = Some(Some(access));
        }
        Ok(Some(meta))
    }

    /// The secret's own GET; `None` when it does not exist.
    async fn read(&self, http: &Http, token: &Secret) -> Result<Option<SecretMeta>, TargetError> {
        let r = self.github.get(http, self.secret_url(), token, "read secret").await?;
        if r.status.as_u16() == 404 {
            return Ok(None);
        }
        expect_in(&r, 200, "read secret", &self.describe(), self.store)?;
        parse_body::<SecretMeta>(&r, "secret").map(Some)
    }

    /// The repositories an existing `selected` organization secret is shared with, every page.
    async fn selected_ids(&self, http: &Http, token: &Secret) -> Result<Vec<u64>, TargetError> {
        let mut ids = Vec::new();
        for page in 1.. {
            let mut url = self.secret_url();
            url.path_segments_mut().expect("https base URL").push("repositories");
            url.query_pairs_mut().append_pair("per_page", &PER_PAGE.to_string()).append_pair("page", &page.to_string());
            let r = self.github.get(http, url, token, "list selected repositories").await?;
            expect_in(&r, 200, "list selected repositories", &self.describe(), self.store)?;
            let list = parse_body::<SelectedRepositories>(&r, "selected repositories")?;
            let got = list.repositories.len();
            ids.extend(list.repositories.into_iter().map(|r| r.id));
            if got < PER_PAGE || ids.len() >= list.total_count {
                break;
            }
        }
        Ok(ids)
    }

    /// Who may read the organization secret after this write.
    async fn access(&self, http: &Http, org: &str, token: &Secret) -> Result<Access, TargetError> {
        match &self.visibility {
            Some(Visibility::All) => Ok(Access::All),
            Some(Visibility::Private) => Ok(Access::Private),
            Some(Visibility::Selected(names)) => {
                let mut ids = Vec::new();
                for n in names {
                    ids.push(self.github.repo_id(http, org, n, token).await?);
                }
                Ok(Access::Selected(ids))
            }
            None => {
                let known = self.kept.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let kept = match known {
                    Some(kept) => kept,
                    None => {
                        self.meta(http, token).await?;
                        self.kept.lock().unwrap_or_else(|e| e.into_inner()).clone().flatten()
                    }
                };
                // A new secret: private, GitHub's own default in its UI.
                Ok(kept.unwrap_or(Access::Private))
            }
        }
    }

    /// Builds the PUT body: the sealed value, its key id, and for org secrets who may read it.
    async fn body(&self, http: &Http, value: &Secret, token: &Secret) -> Result<serde_json::Value, TargetError> {
        let key = self.github.public_key(http, &self.scope, self.store).await?;
        let sealed = key.seal(value).map_err(|e| TargetError(format!("{}: {e}", self.describe())))?;
        let mut body = serde_json::json!({ "encrypted_value": sealed, "key_id": key.key_id });
        if let GithubScope::Org { org } = &self.scope {
            match self.access(http, org, token).await? {
                Access::All => body["visibility"] = "all".into(),
                Access::Private => body["visibility"] = "private".into(),
                Access::Selected(ids) => {
                    body["visibility"] = "selected".into();
                    body["selected_repository_ids"] = ids.into();
                }
            }
        }
        Ok(body)
    }

    /// Writes `value`: in the preflight (`after_rotation` false) as any request, after the
    /// rotation ahead of other requests.
    async fn put(&self, http: &Http, value: &Secret, after_rotation: bool) -> Written {
        let token = match self.github.token(http, &self.scope).await {
            Ok(t) => t,
            Err(e) => return Written { attempts: 0, result: Err(e), unanswered: false },
        };
        let body = match self.body(http, value, &token).await {
            Ok(b) => b,
            Err(e) => return Written { attempts: 0, result: Err(e), unanswered: false },
        };
        let req = self.github.request(Method::PUT, self.secret_url(), &token).json(body);
        let what = format!("write {}", self.describe());
        let at = if after_rotation {
            self.github.send_write(http, &what, &req).await
        } else {
            self.github.send(http, &what, &req).await
        };
        let unanswered = at.unanswered;
        let result = match at.result {
            Ok(r) if r.status.as_u16() == 201 || r.status.as_u16() == 204 => Ok(()),
            Ok(r) => Err(github_error(&r, "write", &self.describe(), self.store)),
            Err(e) => Err(TargetError(format!("{}: {e}", self.describe()))),
        };
        Written { attempts: at.attempts, result, unanswered }
    }
}

#[async_trait]
impl Target for GithubSecret {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self) -> String {
        format!("{} {} {}", self.scope.describe(), self.store.noun(), self.name)
    }

    fn name_hint(&self) -> String {
        self.name.clone()
    }

    fn identity(&self) -> String {
        // GitHub's owner, repository and environment names are case-insensitive: `Acme/App` and
        // `acme/app` are one secret (its name is uppercased already).
        format!("{} {}", KIND.name, self.describe().to_lowercase())
    }

    fn check_value(&self, value: &Secret) -> Result<(), ValueProblem> {
        if value.len() > MAX_SECRET_BYTES {
            return Err(ValueProblem {
                problem: format!("is {} bytes, over GitHub's 48 KB secret limit", value.len()),
                fix: ": it cannot be stored there",
            });
        }
        Ok(())
    }

    async fn updated_at(&self, http: &Http, _live: &Secret) -> Result<Option<jiff::Timestamp>, TargetError> {
        let seen = self.seen.get_or_try_init(|| async {
            let token = self.github.token(http, &self.scope).await?;
            let Some(meta) = self.meta(http, &token).await? else {
                return Ok(None);
            };
            meta.updated_at.parse::<jiff::Timestamp>().map(Some).map_err(|_| {
                TargetError(format!("{}: updated_at `{}` is not a timestamp", self.describe(), meta.updated_at))
            })
        });
        seen.await.copied()
    }

    async fn preflight(&self, http: &Http, proof: Proof<'_>) -> Result<Prepared, TargetError> {
        self.prove(http, proof).await
    }

    async fn reserve(&self, http: &Http, rotation: &str) -> Result<(), TargetError> {
        self.github.reserve_write(http, rotation).await
    }

    fn release(&self, rotation: &str) {
        self.github.release(rotation);
    }

    async fn write(&self, http: &Http, value: &Secret, _live: &Secret) -> Written {
        self.put(http, value, true).await
    }
}

impl GithubSecret {
    /// The preflight's proof: the current value re-written (or the scope's key read).
    async fn prove(&self, http: &Http, proof: Proof<'_>) -> Result<Prepared, TargetError> {
        let Some(current) = proof.current else {
            return self.github.public_key(http, &self.scope, self.store).await.map(|_| Prepared::Ready);
        };
        // The secret's update time, the store's key and the run's start are independent: one
        // round trip for all three, not three.
        let (seen, key, started) = tokio::join!(
            self.updated_at(http, proof.live),
            self.github.public_key(http, &self.scope, self.store),
            self.github.run_started_at(http),
        );
        match seen? {
            // A dry run creates nothing: a missing secret is reported, its scope's key proven readable.
            None if proof.dry_run => key.map(|_| Prepared::WouldCreate),
            None => {
                key?;
                self.put(http, current, false).await.result.map(|()| Prepared::Ready)
            }
            Some(updated_at) => {
                let received_at = match started {
                    Some(started) if started < proof.received_at => started,
                    _ => proof.received_at,
                };
                if updated_at > received_at {
                    return Err(newer_than_ours(&self.describe(), updated_at, received_at));
                }
                key?;
                self.put(http, current, false).await.result.map(|()| Prepared::Ready)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use base64::Engine as _;
    use crypto_box::aead::OsRng;

    use super::*;
    use crate::http::testing::{json_body, Fake};
    use crate::inputs::{Env, Inputs};
    use crate::services::Service;

    fn secret(scope: GithubScope, visibility: Option<Visibility>) -> GithubSecret {
        let env = Env::from_pairs([
            ("INPUT_GITHUB_TOKEN", "ghp_writer_0123456789"),
            ("GITHUB_API_URL", "https://ghe.example.com/api/v3"),
        ]);
        let inputs = Inputs::collect(crate::config::table(), &HashMap::new(), &env);
        let github = Arc::new(Github::parse(None, &Fields::inputs(&inputs, &env)).unwrap());
        GithubSecret::new(github, scope, Store::Actions, "MY_TOKEN".into(), visibility)
    }

    fn key_reply(fake: &Fake) -> crypto_box::SecretKey {
        let sk = crypto_box::SecretKey::generate(&mut OsRng);
        let pk = base64::engine::general_purpose::STANDARD.encode(sk.public_key().as_bytes());
        fake.reply(200, &format!(r#"{{"key_id":"kid-7","key":"{pk}"}}"#));
        sk
    }

    #[tokio::test]
    async fn a_write_seals_to_the_scopes_key_and_sends_its_key_id() {
        let t = secret(GithubScope::Environment { repository: "acme/app".into(), environment: "prod".into() }, None);
        let fake = Fake::new();
        let sk = key_reply(&fake);
        fake.reply(204, "");
        let w = t.write(&fake.http(), &Secret::new("r2-new-0123"), &Secret::new("unused")).await;
        w.result.unwrap();
        assert_eq!(
            fake.lines(),
            [
                "GET https://ghe.example.com/api/v3/repos/acme/app/environments/prod/secrets/public-key",
                "PUT https://ghe.example.com/api/v3/repos/acme/app/environments/prod/secrets/MY_TOKEN",
            ]
        );
        let sent = fake.requests();
        for r in &sent {
            assert_eq!(r.header_value("accept"), Some("application/vnd.github+json"));
            assert_eq!(r.header_value("x-github-api-version"), Some("2022-11-28"));
            assert_eq!(r.header_value("authorization"), Some("Bearer ghp_writer_0123456789"));
            assert!(r.is_sensitive("authorization"));
        }
        let body = json_body(&sent[1]);
        assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
        assert_eq!(body["key_id"], "kid-7");
        let sealed =
            base64::engine::general_purpose::STANDARD.decode(body["encrypted_value"].as_str().unwrap()).unwrap();
        assert_eq!(sk.unseal(&sealed).unwrap(), b"r2-new-0123");
    }

    #[tokio::test]
    async fn an_org_secret_sends_its_visibility_and_repository_ids() {
        let selected = Visibility::Selected(vec!["api".into()]);
        let t = secret(GithubScope::Org { org: "acme".into() }, Some(selected));
        let fake = Fake::new();
        key_reply(&fake);
        fake.reply(200, r#"{"id":4343}"#).reply(201, "{}");
        t.write(&fake.http(), &Secret::new("r2-new-0123"), &Secret::new("unused")).await.result.unwrap();
        assert_eq!(
            fake.lines()[1..],
            [
                "GET https://ghe.example.com/api/v3/repos/acme/api",
                "PUT https://ghe.example.com/api/v3/orgs/acme/actions/secrets/MY_TOKEN",
            ]
        );
        let body = json_body(&fake.requests()[2]);
        assert_eq!(body["visibility"], "selected");
        assert_eq!(body["selected_repository_ids"], serde_json::json!([4343]));
    }

    #[tokio::test]
    async fn a_dry_run_preflight_creates_no_missing_secret() {
        let t = secret(GithubScope::Repo { repository: "acme/app".into() }, None);
        let fake = Fake::new();
        fake.reply(404, r#"{"message":"Not Found"}"#);
        key_reply(&fake);
        let current = Secret::new("r1-current-0123");
        let proof =
            Proof { current: Some(&current), live: &current, dry_run: true, received_at: jiff::Timestamp::now() };
        let prepared = t.preflight(&fake.http(), proof).await.unwrap();
        assert_eq!(prepared, Prepared::WouldCreate);
        assert_eq!(
            fake.lines(),
            [
                "GET https://ghe.example.com/api/v3/repos/acme/app/actions/secrets/MY_TOKEN",
                "GET https://ghe.example.com/api/v3/repos/acme/app/actions/secrets/public-key",
            ]
        );
    }

    #[tokio::test]
    async fn a_secret_updated_after_this_job_received_its_secrets_is_not_overwritten() {
        let t = secret(GithubScope::Repo { repository: "acme/app".into() }, None);
        let received_at: jiff::Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let current = Secret::new("r1-current-0123");
        let proof = Proof { current: Some(&current), live: &current, dry_run: false, received_at };
        let fake = Fake::new();
        fake.reply(
            200,
            r#"{"name":"MY_TOKEN","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-12-01T10:00:05Z"}"#,
        );
        key_reply(&fake);
        let e = t.preflight(&fake.http(), proof).await.unwrap_err();
        assert!(e.0.contains("another run has most likely rotated it already"), "{e}");
        assert_eq!(
            fake.lines(),
            [
                "GET https://ghe.example.com/api/v3/repos/acme/app/actions/secrets/MY_TOKEN",
                "GET https://ghe.example.com/api/v3/repos/acme/app/actions/secrets/public-key",
            ],
            "nothing written"
        );

        let t = secret(GithubScope::Repo { repository: "acme/app".into() }, None);
        let fake = Fake::new();
        fake.reply(
            200,
            r#"{"name":"MY_TOKEN","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-12-01T09:59:59Z"}"#,
        );
        key_reply(&fake);
        fake.reply(204, "");
        assert_eq!(t.preflight(&fake.http(), proof).await.unwrap(), Prepared::Ready);
        assert_eq!(fake.lines().len(), 3, "read, key, re-write");
    }

    fn in_store(scope: GithubScope, store: Store) -> GithubSecret {
        let t = secret(scope, None);
        GithubSecret::new(t.github, t.scope, store, t.name, None)
    }

    #[tokio::test]
    async fn each_store_has_its_own_endpoints_and_key() {
        let repo = GithubScope::Repo { repository: "acme/app".into() };
        for (store, segment) in [(Store::Dependabot, "dependabot"), (Store::Codespaces, "codespaces")] {
            let t = in_store(repo.clone(), store);
            let fake = Fake::new();
            let sk = key_reply(&fake);
            fake.reply(201, "{}");
            t.write(&fake.http(), &Secret::new("r2-new-0123"), &Secret::new("unused")).await.result.unwrap();
            assert_eq!(
                fake.lines(),
                [
                    format!("GET https://ghe.example.com/api/v3/repos/acme/app/{segment}/secrets/public-key"),
                    format!("PUT https://ghe.example.com/api/v3/repos/acme/app/{segment}/secrets/MY_TOKEN"),
                ]
            );
            let body = json_body(&fake.requests()[1]);
            let sealed =
                base64::engine::general_purpose::STANDARD.decode(body["encrypted_value"].as_str().unwrap()).unwrap();
            assert_eq!(sk.unseal(&sealed).unwrap(), b"r2-new-0123");
            assert!(t.describe().starts_with("acme/app ") && t.describe().contains(store.noun()), "{}", t.describe());
        }
    }

    #[tokio::test]
    async fn an_org_secret_keeps_the_visibility_and_repositories_it_has() {
        let t = in_store(GithubScope::Org { org: "acme".into() }, Store::Dependabot);
        let current = Secret::new("r1-current-0123");
        let proof = Proof {
            current: Some(&current),
            live: &current,
            dry_run: false,
            received_at: "2026-12-01T10:00:00Z".parse().unwrap(),
        };
        let fake = Fake::new();
        fake.reply(
            200,
            r#"{"name":"MY_TOKEN","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-11-01T00:00:00Z",
                "visibility":"selected","selected_repositories_url":"https://ghe.example.com/api/v3/orgs/acme/dependabot/secrets/MY_TOKEN/repositories"}"#,
        );
        fake.reply(200, r#"{"total_count":2,"repositories":[{"id":11,"name":"app"},{"id":12,"name":"api"}]}"#);
        key_reply(&fake);
        fake.reply(204, "").reply(204, "");
        assert_eq!(t.preflight(&fake.http(), proof).await.unwrap(), Prepared::Ready);
        t.write(&fake.http(), &Secret::new("r2-new-0123"), &current).await.result.unwrap();
        assert_eq!(
            fake.lines(),
            [
                "GET https://ghe.example.com/api/v3/orgs/acme/dependabot/secrets/MY_TOKEN",
                "GET https://ghe.example.com/api/v3/orgs/acme/dependabot/secrets/MY_TOKEN/repositories?per_page=100&page=1",
                "GET https://ghe.example.com/api/v3/orgs/acme/dependabot/secrets/public-key",
                "PUT https://ghe.example.com/api/v3/orgs/acme/dependabot/secrets/MY_TOKEN",
                "PUT https://ghe.example.com/api/v3/orgs/acme/dependabot/secrets/MY_TOKEN",
            ],
            "who may read it is learnt once, the key fetched once"
        );
        for put in &fake.requests()[3..] {
            let body = json_body(put);
            assert_eq!(body["visibility"], "selected");
            assert_eq!(body["selected_repository_ids"], serde_json::json!([11, 12]));
        }
    }

    #[tokio::test]
    async fn a_new_org_secret_without_a_visibility_is_private() {
        let t = in_store(GithubScope::Org { org: "acme".into() }, Store::Codespaces);
        let fake = Fake::new();
        key_reply(&fake);
        fake.reply(404, r#"{"message":"Not Found"}"#).reply(201, "{}");
        t.write(&fake.http(), &Secret::new("r2-new-0123"), &Secret::new("unused")).await.result.unwrap();
        assert_eq!(fake.lines()[1], "GET https://ghe.example.com/api/v3/orgs/acme/codespaces/secrets/MY_TOKEN");
        let body = json_body(&fake.requests()[2]);
        assert_eq!(body["visibility"], "private");
        assert!(body.get("selected_repository_ids").is_none(), "{body}");
    }

    #[tokio::test]
    async fn a_refusal_names_the_permission_of_the_store() {
        let t = in_store(GithubScope::Repo { repository: "acme/app".into() }, Store::Dependabot);
        let fake = Fake::new();
        fake.reply(403, r#"{"message":"Resource not accessible by personal access token"}"#);
        let e = t.write(&fake.http(), &Secret::new("r2-new-0123"), &Secret::new("unused")).await.result.unwrap_err();
        assert!(e.0.contains("Dependabot secrets: read and write"), "{e}");
    }

    #[tokio::test]
    async fn the_secret_is_read_once_for_min_age_and_the_preflight() {
        let t = secret(GithubScope::Repo { repository: "acme/app".into() }, None);
        let current = Secret::new("r1-current-0123");
        let fake = Fake::new();
        fake.reply(
            200,
            r#"{"name":"MY_TOKEN","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-11-01T00:00:00Z"}"#,
        );
        key_reply(&fake);
        fake.reply(204, "").reply(204, "");
        let http = fake.http();
        assert!(t.updated_at(&http, &current).await.unwrap().is_some(), "min_age's read");
        let proof =
            Proof { current: Some(&current), live: &current, dry_run: false, received_at: jiff::Timestamp::now() };
        assert_eq!(t.preflight(&http, proof).await.unwrap(), Prepared::Ready);
        t.write(&http, &Secret::new("r2-new-0123"), &current).await.result.unwrap();
        assert_eq!(
            fake.lines(),
            [
                "GET https://ghe.example.com/api/v3/repos/acme/app/actions/secrets/MY_TOKEN",
                "GET https://ghe.example.com/api/v3/repos/acme/app/actions/secrets/public-key",
                "PUT https://ghe.example.com/api/v3/repos/acme/app/actions/secrets/MY_TOKEN",
                "PUT https://ghe.example.com/api/v3/repos/acme/app/actions/secrets/MY_TOKEN",
            ],
            "the request floor: one read, one key, the preflight's write and the rotation's"
        );
    }

    /// Secrets of one connection: `names` in one scope and store.
    fn siblings(scope: GithubScope, names: &[&str]) -> Vec<GithubSecret> {
        let t = secret(scope.clone(), None);
        let github = t.github.clone();
        let mut all = vec![t];
        all.extend(
            names.iter().map(|n| GithubSecret::new(github.clone(), scope.clone(), Store::Actions, (*n).into(), None)),
        );
        for t in &all {
            t.count_reader(ValueKind::Credential);
        }
        all
    }

    fn listed(names: &[&str], total: usize) -> String {
        let secrets: Vec<_> = names
            .iter()
            .map(|n| {
                serde_json::json!({
                    "name": n, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-11-01T00:00:00Z",
                    "visibility": "private",
                })
            })
            .collect();
        serde_json::json!({ "total_count": total, "secrets": secrets }).to_string()
    }

    #[tokio::test]
    async fn secrets_of_one_scope_are_read_with_one_list() {
        let all = siblings(GithubScope::Repo { repository: "acme/app".into() }, &["OTHER", "NEW_ONE"]);
        let fake = Fake::new();
        // GitHub lists names in upper case; one of ours is not there yet.
        fake.reply(200, &listed(&["MY_TOKEN", "OTHER", "UNRELATED"], 3));
        let http = fake.http();
        let current = Secret::new("r1-current-0123");
        let listed_at = Some("2026-11-01T00:00:00Z".parse().unwrap());
        assert_eq!(all[0].updated_at(&http, &current).await.unwrap(), listed_at);
        assert_eq!(all[1].updated_at(&http, &current).await.unwrap(), listed_at);
        assert_eq!(all[2].updated_at(&http, &current).await.unwrap(), None, "not listed: it does not exist");
        assert_eq!(
            fake.lines(),
            ["GET https://ghe.example.com/api/v3/repos/acme/app/actions/secrets?per_page=100&page=1"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_list_answers_for_a_few_seconds_then_a_read_lists_again() {
        let all = siblings(GithubScope::Repo { repository: "acme/app".into() }, &["OTHER", "LATER"]);
        let fake = Fake::new();
        fake.reply(200, &listed(&["MY_TOKEN", "OTHER"], 2));
        // Another run created LATER after the first list.
        fake.reply(200, &listed(&["LATER", "MY_TOKEN", "OTHER"], 3));
        let http = fake.http();
        let current = Secret::new("r1-current-0123");
        assert!(all[0].updated_at(&http, &current).await.unwrap().is_some());
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        assert!(all[1].updated_at(&http, &current).await.unwrap().is_some());
        assert_eq!(fake.lines().len(), 1, "one list for the reads that come together");
        tokio::time::advance(std::time::Duration::from_secs(10)).await;
        let seen = all[2].updated_at(&http, &current).await.unwrap();
        assert_eq!(seen, Some("2026-11-01T00:00:00Z".parse().unwrap()), "what GitHub holds now, not the old list");
        assert_eq!(fake.lines().len(), 2, "{:?}", fake.lines());
    }

    #[test]
    fn only_targets_that_read_their_secret_count_towards_a_list() {
        let t = secret(GithubScope::Repo { repository: "acme/app".into() }, None);
        let access = GithubSecret::new(t.github.clone(), t.scope.clone(), Store::Actions, "ACCESS".into(), None);
        t.count_reader(ValueKind::Credential);
        access.count_reader(ValueKind::AccessToken);
        let readers = t.github.readers(&t.scope, Store::Actions);
        assert_eq!(readers, 1, "an access token's target reads nothing: its own GET suffices");
    }

    #[tokio::test]
    async fn a_list_is_read_page_by_page_only_while_it_saves_reads() {
        let scope = GithubScope::Org { org: "acme".into() };
        // 150 secrets, 2 readers: 2 pages for 2 reads.
        let two = siblings(scope.clone(), &["OTHER"]);
        let fake = Fake::new();
        let page1: Vec<String> = (0..100).map(|i| format!("S{i}")).collect();
        let page1: Vec<&str> = page1.iter().map(String::as_str).collect();
        fake.reply(200, &listed(&page1, 150)).reply(200, &listed(&["MY_TOKEN"], 150));
        let http = fake.http();
        let current = Secret::new("r1-current-0123");
        assert!(two[0].updated_at(&http, &current).await.unwrap().is_some(), "found on page 2");
        assert_eq!(two[1].updated_at(&http, &current).await.unwrap(), None, "the list is complete");
        assert_eq!(fake.lines().len(), 2, "{:?}", fake.lines());
        assert!(fake.lines()[1].ends_with("/orgs/acme/actions/secrets?per_page=100&page=2"), "{:?}", fake.lines());

        // 1,000 secrets, 2 readers: page 1, then each reads its own.
        let two = siblings(scope, &["OTHER"]);
        let fake = Fake::new();
        fake.reply(200, &listed(&page1, 1000)).reply(404, r#"{"message":"Not Found"}"#);
        let http = fake.http();
        assert_eq!(two[0].updated_at(&http, &current).await.unwrap(), None);
        assert_eq!(
            fake.lines()[1],
            "GET https://ghe.example.com/api/v3/orgs/acme/actions/secrets/MY_TOKEN",
            "not on the one page read: its own GET"
        );
    }

    #[test]
    fn values_over_48_kb_are_refused() {
        let t = secret(GithubScope::Repo { repository: "acme/app".into() }, None);
        assert!(t.check_value(&Secret::new("x".repeat(MAX_SECRET_BYTES))).is_ok());
        let p = t.check_value(&Secret::new("x".repeat(MAX_SECRET_BYTES + 1))).unwrap_err();
        assert_eq!(p.problem, "is 49153 bytes, over GitHub's 48 KB secret limit");
    }

    #[test]
    fn secret_names_follow_github() {
        assert!(check_secret_name("s", "MY_TOKEN_2").is_ok());
        for bad in ["", "1ABC", "GITHUB_TOKEN", "github_x", "A-B", "A B", "Ä"] {
            assert!(check_secret_name("s", bad).is_err(), "{bad}");
        }
    }
}
