//! Target `github`: repository, environment and organization Actions secrets, sealed to the
//! scope's public key (the connection and its caches are in `connection.rs`).

use std::sync::Arc;

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

use connection::{expect, github_error, parse as parse_body};
pub use connection::{Github, GithubAuth, GithubScope};

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
const VISIBILITY: Field =
    Field::plain("visibility", "organization secret visibility: all, private or selected (default: private)").of(OWNER);
const SELECTED_REPOSITORIES: Field =
    Field::plain("selected_repositories", "with visibility selected: comma-separated repository names").of(OWNER);

/// Target `github`.
pub const KIND: TargetKind = TargetKind {
    name: "github",
    key: "github",
    default_in: Some("GITHUB_ACTIONS"),
    fields: &[SECRET_NAME, ACCESS_TOKEN_SECRET_NAME, REPOSITORY, ENVIRONMENT, ORG, VISIBILITY, SELECTED_REPOSITORIES],
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

/// One GitHub secret, as validated.
pub struct GithubSecret {
    github: Arc<Github>,
    scope: GithubScope,
    /// Secret name, uppercased as GitHub stores it.
    name: String,
    /// For an organization secret.
    visibility: Option<Visibility>,
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
    let github = ctx.services.get::<Github>()?;
    let secret = GithubSecret {
        github: github.clone(),
        scope: scope.clone(),
        name: name.to_ascii_uppercase(),
        visibility: visibility.clone(),
    };
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
        let access = GithubSecret { github, scope, name: access.to_ascii_uppercase(), visibility };
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
            let visibility = match visibility.as_deref().unwrap_or("private") {
                "all" => Visibility::All,
                "private" => Visibility::Private,
                "selected" => {
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
                other => {
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
struct SecretMeta {
    updated_at: String,
}

impl GithubSecret {
    fn secret_url(&self) -> url::Url {
        let mut segs = self.scope.secrets_path();
        segs.push(&self.name);
        self.github.url(&segs)
    }

    /// Builds the PUT body: the sealed value, its key id, and for org secrets the visibility.
    async fn body(&self, http: &Http, value: &Secret, token: &Secret) -> Result<serde_json::Value, TargetError> {
        let key = self.github.public_key(http, &self.scope).await?;
        let sealed = key.seal(value).map_err(|e| TargetError(format!("{}: {e}", self.describe())))?;
        let mut body = serde_json::json!({ "encrypted_value": sealed, "key_id": key.key_id });
        if let (GithubScope::Org { org }, Some(visibility)) = (&self.scope, &self.visibility) {
            let (vis, repos) = match visibility {
                Visibility::All => ("all", None),
                Visibility::Private => ("private", None),
                Visibility::Selected(names) => ("selected", Some(names)),
            };
            body["visibility"] = vis.into();
            if let Some(names) = repos {
                let mut ids = Vec::new();
                for n in names {
                    ids.push(self.github.repo_id(http, org, n, token).await?);
                }
                body["selected_repository_ids"] = ids.into();
            }
        }
        Ok(body)
    }

    async fn put(&self, http: &Http, value: &Secret) -> Written {
        let token = match self.github.token(http, &self.scope).await {
            Ok(t) => t,
            Err(e) => return Written { attempts: 0, result: Err(e) },
        };
        let body = match self.body(http, value, &token).await {
            Ok(b) => b,
            Err(e) => return Written { attempts: 0, result: Err(e) },
        };
        let req = self.github.request(Method::PUT, self.secret_url(), &token).json(body);
        let at = self.github.send(http, &format!("write {}", self.describe()), &req).await;
        let result = match at.result {
            Ok(r) if r.status.as_u16() == 201 || r.status.as_u16() == 204 => Ok(()),
            Ok(r) => Err(github_error(&r, "write", &self.describe())),
            Err(e) => Err(TargetError(format!("{}: {e}", self.describe()))),
        };
        Written { attempts: at.attempts, result }
    }
}

#[async_trait]
impl Target for GithubSecret {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self) -> String {
        format!("{} secret {}", self.scope.describe(), self.name)
    }

    fn name_hint(&self) -> String {
        self.name.clone()
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
        let token = self.github.token(http, &self.scope).await?;
        let r = self.github.get(http, self.secret_url(), &token, "read secret").await?;
        if r.status.as_u16() == 404 {
            return Ok(None);
        }
        expect(&r, 200, "read secret", &self.describe())?;
        let meta = parse_body::<SecretMeta>(&r, "secret")?;
        meta.updated_at.parse::<jiff::Timestamp>().map(Some).map_err(|_| {
            TargetError(format!("{}: updated_at `{}` is not a timestamp", self.describe(), meta.updated_at))
        })
    }

    async fn preflight(&self, http: &Http, proof: Proof<'_>) -> Result<Prepared, TargetError> {
        let Some(current) = proof.current else {
            return self.github.public_key(http, &self.scope).await.map(|_| Prepared::Ready);
        };
        match self.updated_at(http, proof.live).await? {
            // A dry run creates nothing: a missing secret is reported, its scope's key proven readable.
            None if proof.dry_run => self.github.public_key(http, &self.scope).await.map(|_| Prepared::WouldCreate),
            None => self.put(http, current).await.result.map(|()| Prepared::Ready),
            Some(updated_at) => {
                let received_at = match self.github.run_started_at(http).await {
                    Some(started) if started < proof.received_at => started,
                    _ => proof.received_at,
                };
                if updated_at > received_at {
                    return Err(newer_than_ours(&self.describe(), updated_at, received_at));
                }
                self.put(http, current).await.result.map(|()| Prepared::Ready)
            }
        }
    }

    async fn write(&self, http: &Http, value: &Secret, _live: &Secret) -> Written {
        self.put(http, value).await
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
        GithubSecret { github, scope, name: "MY_TOKEN".into(), visibility }
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
        let e = t.preflight(&fake.http(), proof).await.unwrap_err();
        assert!(e.0.contains("another run has most likely rotated it already"), "{e}");
        assert_eq!(
            fake.lines(),
            ["GET https://ghe.example.com/api/v3/repos/acme/app/actions/secrets/MY_TOKEN"],
            "nothing written"
        );

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
