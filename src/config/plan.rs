//! Validation: raw inputs or a config file become one [`Plan`] before any request is made.
//! Every problem is an [`InputError`] that names the input and says how to fix it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use url::Url;

use super::inputs::{label, Env, Inputs, SecretInput};
use super::raw::*;
use crate::error::InputError;
use crate::secret::Secret;

/// GitHub's limit on a secret's value.
pub const GITHUB_MAX_SECRET_BYTES: usize = 48 * 1024;
/// Default bound on target writes in flight at once: well inside GitHub's limits on
/// concurrent requests, and few enough that secondary rate limits are rare.
pub const DEFAULT_MAX_CONCURRENCY: usize = 4;
/// Highest accepted `github.max_concurrency`.
pub const MAX_CONCURRENCY_LIMIT: usize = 16;
/// Default total time for one HTTP request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything a run does, validated.
#[derive(Debug)]
pub struct Plan {
    /// Plan and preflight only.
    pub dry_run: bool,
    /// The rotations to run, in order.
    pub rotations: Vec<RotationPlan>,
    /// Total time allowed for one HTTP request.
    pub timeout: Duration,
    /// Extra CA certificates (PEM), from `--ca-file`.
    pub ca_pem: Option<Vec<u8>>,
    /// GitHub connection, when any target is on GitHub.
    pub github: Option<GithubSettings>,
    /// GitLab connection, when any target is on GitLab.
    pub gitlab: Option<GitlabSettings>,
}

/// How to reach GitLab's CI/CD variables.
#[derive(Debug, Clone)]
pub struct GitlabSettings {
    /// REST API base (`https://gitlab.example.com/api/v4`).
    pub api_url: Url,
    /// The token that writes variables; `None`: each rotation's own (rotated) GitLab token.
    pub writer: Option<GitlabWriter>,
}

/// A token that writes GitLab variables.
#[derive(Debug, Clone)]
pub struct GitlabWriter {
    /// The token.
    pub token: Secret,
    /// Sent as `Authorization: Bearer` (an OAuth token) instead of `PRIVATE-TOKEN`.
    pub bearer: bool,
}

/// How to reach GitHub.
#[derive(Debug, Clone)]
pub struct GithubSettings {
    /// REST API base, no trailing slash.
    pub api_url: Url,
    /// Credentials.
    pub auth: GithubAuth,
    /// Target writes in flight at once.
    pub max_concurrency: usize,
}

/// GitHub credentials.
#[derive(Debug, Clone)]
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

/// One rotation.
#[derive(Debug)]
pub struct RotationPlan {
    /// Unique name.
    pub name: String,
    /// Skip when every credential target is younger than this.
    pub min_age: Option<Duration>,
    /// Where the credential is rotated.
    pub provider: ProviderSpec,
    /// GET with the new access token before writing.
    pub verify_url: Option<Url>,
    /// Rescue recipient.
    pub rescue: Option<age::x25519::Recipient>,
    /// Where the new values go.
    pub targets: Vec<TargetSpec>,
}

/// A provider's validated settings.
#[derive(Debug)]
pub enum ProviderSpec {
    /// RFC 6749 refresh grant.
    OAuth2(OAuth2Spec),
    /// GitLab access token self-rotation.
    GitlabToken(GitlabTokenSpec),
}

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

/// `provider: gitlab-token`
#[derive(Debug)]
pub struct GitlabTokenSpec {
    /// REST API base.
    pub api_url: Url,
    /// The token to rotate.
    pub token: Secret,
    /// Its kind.
    pub kind: TokenKind,
    /// Lifetime of the new token, in days (always sent as `expires_at`).
    pub expires_in_days: u32,
}

impl ProviderSpec {
    /// The provider's name in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderSpec::OAuth2(_) => "oauth2",
            ProviderSpec::GitlabToken(_) => "gitlab-token",
        }
    }

    /// The current value of the credential that rotation replaces.
    pub fn current(&self) -> &Secret {
        match self {
            ProviderSpec::OAuth2(o) => &o.refresh_token,
            ProviderSpec::GitlabToken(g) => &g.token,
        }
    }
}

/// OAuth2 client authentication (RFC 6749 section 2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
    /// Public client: `client_id` in the body, no secret.
    None,
}

/// `provider: oauth2`
#[derive(Debug)]
pub struct OAuth2Spec {
    /// Token endpoint.
    pub token_url: Url,
    /// Client id.
    pub client_id: String,
    /// Client secret, for `basic` and `post`.
    pub client_secret: Option<Secret>,
    /// Client authentication.
    pub client_auth: ClientAuth,
    /// Scope to request.
    pub scope: Option<String>,
    /// The current refresh token.
    pub refresh_token: Secret,
}

/// Which value a target receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// The rotated credential (new refresh token): its current value is known.
    Credential,
    /// The new access token: not known before the rotation.
    AccessToken,
}

impl ValueKind {
    /// The config spelling, for a provider of this kind: the rotated credential is a
    /// `refresh_token` (oauth2) or a `token` (gitlab-token).
    pub fn label(self, provider: &str) -> &'static str {
        match (self, provider) {
            (ValueKind::Credential, "gitlab-token") => "token",
            (ValueKind::Credential, _) => "refresh_token",
            (ValueKind::AccessToken, _) => "access_token",
        }
    }
}

/// One target of a rotation.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// Which value.
    pub value: ValueKind,
    /// Where.
    pub location: TargetLocation,
}

/// Where a value is written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetLocation {
    /// A GitHub Actions secret.
    Github(GithubSecret),
    /// A GitLab CI/CD variable.
    Gitlab(GitlabVariable),
}

impl TargetLocation {
    /// `github`, `gitlab`.
    pub fn kind(&self) -> &'static str {
        match self {
            TargetLocation::Github(_) => "github",
            TargetLocation::Gitlab(_) => "gitlab",
        }
    }

    /// A human description (`acme/app secret FOO`).
    pub fn describe(&self) -> String {
        match self {
            TargetLocation::Github(g) => g.describe(),
            TargetLocation::Gitlab(g) => g.describe(),
        }
    }

    /// What makes two targets the same place (flags aside).
    pub fn identity(&self) -> String {
        match self {
            TargetLocation::Github(g) => format!("github {}", g.describe()),
            TargetLocation::Gitlab(g) => format!("gitlab {}", g.describe()),
        }
    }
}

/// Which GitLab variable, and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GitlabVariable {
    /// Project or group.
    pub scope: GitlabScope,
    /// Key.
    pub key: String,
    /// Environment scope (`*` for all).
    pub environment_scope: String,
    /// Masked in job logs.
    pub masked: bool,
    /// Masked and hidden (settable only at creation).
    pub masked_and_hidden: bool,
    /// Protected branches and tags only.
    pub protected: bool,
    /// `$` not expanded.
    pub raw: bool,
    /// `env_var` or `file`.
    pub variable_type: String,
    /// Description.
    pub description: Option<String>,
}

impl GitlabVariable {
    /// `project acme/app variable FOO (scope production)`.
    pub fn describe(&self) -> String {
        let scope = match &self.scope {
            GitlabScope::Project(p) => format!("project {p}"),
            GitlabScope::Group(g) => format!("group {g}"),
        };
        if self.environment_scope == "*" {
            format!("{scope} variable {}", self.key)
        } else {
            format!("{scope} variable {} (environment {})", self.key, self.environment_scope)
        }
    }

    /// True when GitLab masks the value: its masking rules apply.
    pub fn is_masked(&self) -> bool {
        self.masked || self.masked_and_hidden
    }
}

/// A GitLab project or group (id or path).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GitlabScope {
    /// Project id or `group/project` path.
    Project(String),
    /// Group id or path.
    Group(String),
}

/// GitLab's masking rules: a single line, no spaces, at least 8 characters.
pub fn masking_problem(value: &str) -> Option<&'static str> {
    if value.chars().count() < 8 {
        Some("is shorter than 8 characters")
    } else if value.contains(['\n', '\r']) {
        Some("is not a single line")
    } else if value.chars().any(char::is_whitespace) {
        Some("contains spaces")
    } else {
        None
    }
}

/// Which GitHub secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GithubSecret {
    /// Repository, environment or organization.
    pub scope: GithubScope,
    /// Secret name, uppercased as GitHub stores it.
    pub name: String,
}

impl GithubSecret {
    /// `acme/app secret FOO`, `acme/app environment prod secret FOO`, `org acme secret FOO`.
    pub fn describe(&self) -> String {
        format!("{} secret {}", self.scope.describe(), self.name)
    }
}

/// A scope that has its own public key.
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
        /// `all`, `private`, `selected`.
        visibility: Visibility,
    },
}

impl GithubScope {
    /// Human description.
    pub fn describe(&self) -> String {
        match self {
            GithubScope::Repo { repository } => repository.clone(),
            GithubScope::Environment { repository, environment } => {
                format!("{repository} environment {environment}")
            }
            GithubScope::Org { org, .. } => format!("org {org}"),
        }
    }

    /// The account that owns the secret (where a GitHub App is installed).
    pub fn owner(&self) -> &str {
        match self {
            GithubScope::Repo { repository } | GithubScope::Environment { repository, .. } => {
                repository.split('/').next().unwrap_or(repository)
            }
            GithubScope::Org { org, .. } => org,
        }
    }
}

/// Organization secret visibility.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Every repository of the org.
    All,
    /// Private and internal repositories.
    Private,
    /// The named repositories.
    Selected(Vec<String>),
}

/// Where a raw rotation came from, to name its fields in errors.
#[derive(Debug, Clone, Copy)]
enum Origin {
    Inputs,
    Config(usize),
}

impl Origin {
    /// `input token_url` or `rotations[0].provider.token_url`.
    fn label(self, config_path: &str, input: &str) -> String {
        match self {
            Origin::Inputs => label(input),
            Origin::Config(i) => format!("rotations[{i}].{config_path}"),
        }
    }
}

/// Global settings read before the plan: flags that are not rotation inputs.
#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// `--config`
    pub config: Option<PathBuf>,
    /// `--only`
    pub only: Vec<String>,
    /// `--dry-run`, or the `check` command.
    pub dry_run: bool,
}

/// Builds the plan from the inputs (and the config file they name).
pub fn build(inputs: &Inputs, env: &Env, opts: &RunOptions) -> Result<Plan, InputError> {
    let config_path = opts.config.clone().or_else(|| inputs.get("config").map(PathBuf::from));
    let only = opts
        .only
        .iter()
        .cloned()
        .chain(inputs.get("only").into_iter().flat_map(|v| v.split(',').map(|s| s.trim().to_owned())))
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>();
    let dry_run = opts.dry_run || inputs.bool("dry_run")?.unwrap_or(false);

    let (raw, origin_of): (RawConfig, fn(usize) -> Origin) = match &config_path {
        Some(path) => {
            let set = inputs.rotation_inputs_set();
            if let Some(first) = set.first() {
                return Err(InputError::new(
                    label(first),
                    "is not used with config: put it in the config file, or drop config",
                ));
            }
            (read_config(path)?, Origin::Config)
        }
        None => {
            if !only.is_empty() {
                return Err(InputError::new(label("only"), "needs config: it selects rotations of a config file"));
            }
            (raw_from_inputs(inputs, env)?, |_| Origin::Inputs)
        }
    };

    let timeout = match inputs.get("timeout") {
        Some(t) => parse_duration(&label("timeout"), t)?,
        None => match raw.http.as_ref().and_then(|h| h.timeout.as_deref()) {
            Some(t) => parse_duration("http.timeout", t)?,
            None => DEFAULT_TIMEOUT,
        },
    };
    if timeout.is_zero() || timeout > Duration::from_secs(600) {
        return Err(InputError::new(label("timeout"), "must be between 1s and 10m"));
    }

    let ca_pem = match inputs.get("ca_file") {
        Some(path) => Some(read_ca(&label("ca_file"), Path::new(path))?),
        None => None,
    };

    let default_rescue = match inputs.get("rescue_recipient") {
        Some(r) => Some(parse_recipient(&label("rescue_recipient"), r)?),
        None => match &raw.rescue_recipient {
            Some(r) => Some(parse_recipient("rescue_recipient", r)?),
            None => None,
        },
    };

    if raw.rotations.is_empty() {
        return Err(InputError::new("rotations", "the config file has no rotations: add at least one"));
    }

    let gitlab_api = gitlab_api_url(raw.gitlab.as_ref(), inputs, env)?;
    let gitlab_writer = gitlab_writer(raw.gitlab.as_ref(), inputs, env)?;

    let mut rotations = Vec::new();
    let mut names = HashSet::new();
    let mut written = HashSet::new();
    for (i, r) in raw.rotations.iter().enumerate() {
        let origin = origin_of(i);
        let rot = rotation(r, origin, default_rescue.as_ref(), &gitlab_api, env)?;
        let writes_gitlab = rot.targets.iter().any(|t| t.location.kind() == "gitlab");
        if writes_gitlab && gitlab_writer.is_none() && !matches!(rot.provider, ProviderSpec::GitlabToken(_)) {
            let input = match origin {
                Origin::Inputs => label("gitlab_token"),
                Origin::Config(_) => "gitlab.token".to_owned(),
            };
            return Err(InputError::new(
                input,
                format!(
                    "is required to write GitLab variables for rotation `{}`: a project, group or personal access token \
                     with the api scope (only a gitlab-token rotation can write with the token it rotates)",
                    rot.name
                ),
            ));
        }
        if !names.insert(rot.name.clone()) {
            return Err(InputError::new(
                origin.label("name", "name"),
                format!("`{}` is used by two rotations: names must be unique", rot.name),
            ));
        }
        for t in &rot.targets {
            if !written.insert(t.location.identity()) {
                return Err(InputError::new(
                    origin.label("targets", "secret_name"),
                    format!("{} is written twice in one run: each target may appear once", t.location.describe()),
                ));
            }
        }
        rotations.push(rot);
    }

    for name in &only {
        if !names.contains(name) {
            return Err(InputError::new(
                label("only"),
                format!("no rotation is named `{name}`: use names from the config file"),
            ));
        }
    }
    if !only.is_empty() {
        rotations.retain(|r| only.contains(&r.name));
    }

    let needs_github = rotations.iter().any(|r| r.targets.iter().any(|t| t.location.kind() == "github"));
    let github = if needs_github {
        Some(github_settings(raw.github.as_ref(), inputs, env, config_path.is_some())?)
    } else {
        None
    };

    let needs_gitlab = rotations.iter().any(|r| r.targets.iter().any(|t| t.location.kind() == "gitlab"));
    let gitlab = needs_gitlab.then(|| GitlabSettings { api_url: gitlab_api.clone(), writer: gitlab_writer });

    Ok(Plan { dry_run, rotations, timeout, ca_pem, github, gitlab })
}

fn read_config(path: &Path) -> Result<RawConfig, InputError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError::new(label("config"), format!("cannot read {}: {e}", path.display())))?;
    serde_norway::from_str(&text).map_err(|e| {
        InputError::new(format!("config file {}", path.display()), format!("{e}; see the README's config section"))
    })
}

/// Single-rotation mode: the inputs in the config file's shape.
fn raw_from_inputs(inputs: &Inputs, env: &Env) -> Result<RawConfig, InputError> {
    let secret = |name: &str| -> Option<SecretSource> { inputs.secret(name).map(to_source) };
    let get = |name: &str| inputs.get(name).map(str::to_owned);
    let id = |name: &str| inputs.get(name).map(|v| IdValue::Text(v.to_owned()));

    let provider = match inputs.get("provider") {
        None => {
            return Err(InputError::new(
                label("provider"),
                "is required: set provider (oauth2 or gitlab-token), or give a config file with config",
            ))
        }
        Some("oauth2") => RawProvider::OAuth2(RawOAuth2 {
            token_url: get("token_url"),
            client_id: get("client_id"),
            client_secret: secret("client_secret"),
            client_auth: get("client_auth"),
            scope: get("scope"),
            refresh_token: secret("refresh_token"),
        }),
        Some("gitlab-token") => RawProvider::GitlabToken(RawGitlabToken {
            token: secret("token"),
            token_kind: get("token_kind"),
            token_owner: id("token_owner"),
            expires_in: id("expires_in"),
            gitlab_url: None,
        }),
        Some(other) => {
            return Err(InputError::new(
                label("provider"),
                format!("`{other}` is not a provider: use oauth2 or gitlab-token"),
            ))
        }
    };
    // Inputs that belong to the other provider are a mistake worth naming.
    let foreign: &[&str] = match provider {
        RawProvider::OAuth2(_) => &["token", "token_kind", "token_owner", "expires_in"],
        RawProvider::GitlabToken(_) => &[
            "token_url",
            "client_id",
            "client_secret",
            "client_auth",
            "scope",
            "refresh_token",
            "access_token_secret_name",
        ],
    };
    if let Some(f) = foreign.iter().find(|f| inputs.get(f).is_some() || inputs.secret(f).is_some()) {
        let p = inputs.get("provider").unwrap_or_default();
        return Err(InputError::new(label(f), format!("does not apply to provider {p}: drop it")));
    }

    let target = match inputs.get("target") {
        Some(t) => t.to_owned(),
        None if env.is_true("GITHUB_ACTIONS") => "github".to_owned(),
        None if env.is_true("GITLAB_CI") => "gitlab".to_owned(),
        None => {
            return Err(InputError::new(
                label("target"),
                "is required outside GitHub Actions and GitLab CI: set target to github or gitlab",
            ))
        }
    };
    let github_only = [
        "secret_name",
        "access_token_secret_name",
        "repository",
        "environment",
        "org",
        "visibility",
        "selected_repositories",
    ];
    let gitlab_only = [
        "variable_name",
        "project",
        "group",
        "masked",
        "masked_and_hidden",
        "protected",
        "raw",
        "environment_scope",
        "variable_type",
        "variable_description",
    ];
    let (targets, key) = match target.as_str() {
        "github" => {
            if let Some(f) = gitlab_only.iter().find(|f| inputs.get(f).is_some()) {
                return Err(InputError::new(label(f), "applies to target gitlab, not github: drop it or set target"));
            }
            let secret_name = inputs.get("secret_name").ok_or_else(|| {
                InputError::new(
                    label("secret_name"),
                    "is required: name the secret that receives the rotated credential",
                )
            })?;
            let base = RawGithubTarget {
                repository: get("repository").or_else(|| {
                    if inputs.get("org").is_none() {
                        env.get("GITHUB_REPOSITORY").map(str::to_owned)
                    } else {
                        None
                    }
                }),
                environment: get("environment"),
                org: get("org"),
                visibility: get("visibility"),
                selected_repositories: inputs
                    .get("selected_repositories")
                    .map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()),
                secret: Some(secret_name.to_owned()),
            };
            let mut targets = vec![RawTargetEntry { github: Some(base.clone()), gitlab: None, value: None }];
            if let Some(access) = inputs.get("access_token_secret_name") {
                targets.push(RawTargetEntry {
                    github: Some(RawGithubTarget { secret: Some(access.to_owned()), ..base }),
                    gitlab: None,
                    value: Some("access_token".to_owned()),
                });
            }
            (targets, secret_name)
        }
        "gitlab" => {
            if let Some(f) = github_only.iter().find(|f| inputs.get(f).is_some()) {
                return Err(InputError::new(label(f), "applies to target github, not gitlab: drop it or set target"));
            }
            let variable = inputs.get("variable_name").ok_or_else(|| {
                InputError::new(
                    label("variable_name"),
                    "is required: name the variable that receives the rotated credential",
                )
            })?;
            let project = match (id("project"), inputs.get("group")) {
                (None, None) => env.get("CI_PROJECT_ID").map(|v| IdValue::Text(v.to_owned())),
                (p, _) => p,
            };
            let target = RawGitlabTarget {
                project,
                group: id("group"),
                variable: Some(variable.to_owned()),
                masked: inputs.bool("masked")?,
                masked_and_hidden: inputs.bool("masked_and_hidden")?,
                protected: inputs.bool("protected")?,
                raw: inputs.bool("raw")?,
                environment_scope: get("environment_scope"),
                variable_type: get("variable_type"),
                description: get("variable_description"),
            };
            (vec![RawTargetEntry { github: None, gitlab: Some(target), value: None }], variable)
        }
        other => {
            return Err(InputError::new(label("target"), format!("`{other}` is not a target: use github or gitlab")))
        }
    };

    let name = match inputs.get("name") {
        Some(n) => n.to_owned(),
        None => key.to_ascii_lowercase().replace('_', "-"),
    };
    Ok(RawConfig {
        github: None,
        gitlab: None,
        rescue_recipient: None,
        http: None,
        rotations: vec![RawRotation {
            name: Some(name),
            min_age: get("min_age"),
            provider,
            verify: get("verify_url").map(|url| RawVerify { url }),
            rescue_recipient: None,
            targets,
        }],
    })
}

fn rotation(
    r: &RawRotation,
    origin: Origin,
    default_rescue: Option<&age::x25519::Recipient>,
    gitlab_api: &Url,
    env: &Env,
) -> Result<RotationPlan, InputError> {
    let name = r.name.clone().ok_or_else(|| {
        InputError::new(origin.label("name", "name"), "is required: give each rotation a unique name")
    })?;
    check_name(&origin.label("name", "name"), &name)?;

    let min_age = match &r.min_age {
        Some(m) => Some(parse_duration(&origin.label("min_age", "min_age"), m)?),
        None => None,
    };
    let provider = match &r.provider {
        RawProvider::OAuth2(o) => ProviderSpec::OAuth2(oauth2(o, origin, env)?),
        RawProvider::GitlabToken(g) => ProviderSpec::GitlabToken(gitlab_token(g, origin, gitlab_api, env)?),
    };
    let kind = provider.kind();
    let verify_url = match &r.verify {
        Some(v) => Some(check_url(&origin.label("verify.url", "verify_url"), &v.url)?),
        None => None,
    };
    if verify_url.is_some() && kind == "gitlab-token" {
        return Err(InputError::new(
            origin.label("verify.url", "verify_url"),
            "applies to oauth2 (it needs an access token); a gitlab-token rotation verifies the new token itself",
        ));
    }
    let rescue = match &r.rescue_recipient {
        Some(s) => Some(parse_recipient(&origin.label("rescue_recipient", "rescue_recipient"), s)?),
        None => default_rescue.cloned(),
    };

    let first_target_input =
        if r.targets.first().is_some_and(|t| t.gitlab.is_some()) { "variable_name" } else { "secret_name" };
    if r.targets.is_empty() {
        return Err(InputError::new(origin.label("targets", first_target_input), "needs at least one target"));
    }
    let mut targets = Vec::new();
    for (j, t) in r.targets.iter().enumerate() {
        // In single-rotation mode the second target is the access token's secret.
        let at = |field: &str, input: &str| {
            let input = if j > 0 && input == "secret_name" { "access_token_secret_name" } else { input };
            origin.label(&format!("targets[{j}].{field}"), input)
        };
        let value = match (t.value.as_deref(), kind) {
            (None, _) | (Some("refresh_token"), "oauth2") | (Some("token"), "gitlab-token") => ValueKind::Credential,
            (Some("access_token"), "oauth2") => ValueKind::AccessToken,
            (Some(other), _) => {
                let valid = if kind == "oauth2" { "refresh_token or access_token" } else { "token" };
                return Err(InputError::new(
                    at("value", "access_token_secret_name"),
                    format!("`{other}` is not a value of provider {kind}: use {valid}"),
                ));
            }
        };
        let current = provider.current();
        let location = match (&t.github, &t.gitlab) {
            (Some(g), None) => {
                let secret = github_target(g, &at)?;
                if value == ValueKind::Credential && current.len() > GITHUB_MAX_SECRET_BYTES {
                    return Err(InputError::new(
                        at("github.secret", "secret_name"),
                        format!(
                            "the current credential is {} bytes, over GitHub's 48 KB secret limit: it cannot be stored there",
                            current.len()
                        ),
                    ));
                }
                TargetLocation::Github(secret)
            }
            (None, Some(g)) => {
                let variable = gitlab_target(g, &at)?;
                if value == ValueKind::Credential && variable.is_masked() {
                    if let Some(problem) = masking_problem(current.expose()) {
                        return Err(InputError::new(
                            at("gitlab.masked", "masked"),
                            format!(
                                "the current credential {problem}, so GitLab cannot mask it (masked values are a single \
                                 line, without spaces, of 8 characters or more): set masked to false"
                            ),
                        ));
                    }
                }
                if value == ValueKind::Credential && min_age.is_some() && kind != "gitlab-token" {
                    return Err(InputError::new(
                        origin.label("min_age", "min_age"),
                        "is not supported with a GitLab variable target: GitLab keeps no update time for variables \
                         (a gitlab-token rotation uses the token's own age)",
                    ));
                }
                TargetLocation::Gitlab(variable)
            }
            (Some(_), Some(_)) => {
                return Err(InputError::new(
                    at("github", "target"),
                    "a target is either `github:` or `gitlab:`, not both",
                ));
            }
            (None, None) => {
                return Err(InputError::new(
                    at("github", "target"),
                    "a target needs `github: { ... }` or `gitlab: { ... }`",
                ));
            }
        };
        targets.push(TargetSpec { value, location });
    }
    if !targets.iter().any(|t| t.value == ValueKind::Credential) {
        let what = ValueKind::Credential.label(kind);
        return Err(InputError::new(
            origin.label("targets", first_target_input),
            format!("no target receives the rotated {what}: it would be lost; add a target with value {what}"),
        ));
    }
    Ok(RotationPlan { name, min_age, provider, verify_url, rescue, targets })
}

/// `provider: gitlab-token`.
fn gitlab_token(
    g: &RawGitlabToken,
    origin: Origin,
    default_api: &Url,
    env: &Env,
) -> Result<GitlabTokenSpec, InputError> {
    let l = |field: &str| origin.label(&format!("provider.{field}"), field);
    let token = match &g.token {
        Some(s) => resolve(&l("token"), s, env)?,
        None => return Err(InputError::new(l("token"), "is required for gitlab-token: the access token to rotate")),
    };
    check_not_job_token(&l("token"), &token, env)?;
    if token.expose().chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InputError::new(l("token"), "contains whitespace or control characters: pass the token alone"));
    }
    let owner = g.token_owner.as_ref().map(id_text).filter(|o| !o.trim().is_empty());
    let kind = match (g.token_kind.as_deref().unwrap_or("personal"), owner) {
        ("personal", None) => TokenKind::Personal,
        ("personal", Some(_)) => {
            return Err(InputError::new(
                l("token_owner"),
                "applies to project and group tokens: drop it, or set token_kind project or group",
            ))
        }
        ("project" | "group", None) => {
            return Err(InputError::new(
                l("token_owner"),
                "is required for a project or group token: the project or group (id or path) that owns it",
            ))
        }
        ("project", Some(o)) => TokenKind::Project(check_gitlab_path(&l("token_owner"), &o)?),
        ("group", Some(o)) => TokenKind::Group(check_gitlab_path(&l("token_owner"), &o)?),
        (other, _) => {
            return Err(InputError::new(
                l("token_kind"),
                format!("`{other}` is not valid: use personal, project or group"),
            ))
        }
    };
    let expires_in_days = match &g.expires_in {
        None => 30,
        Some(v) => {
            let text = id_text(v);
            match text.trim().trim_end_matches('d').parse::<u32>() {
                Ok(n) if (1..=3650).contains(&n) => n,
                _ => {
                    return Err(InputError::new(
                        l("expires_in"),
                        format!(
                            "`{text}` is not a number of days between 1 and 3650 (GitLab's own maximum is usually 365)"
                        ),
                    ))
                }
            }
        }
    };
    let api_url = match &g.gitlab_url {
        Some(u) => api_base(&l("gitlab_url"), u)?,
        None => default_api.clone(),
    };
    Ok(GitlabTokenSpec { api_url, token, kind, expires_in_days })
}

/// `- gitlab: { ... }`.
fn gitlab_target(g: &RawGitlabTarget, at: &dyn Fn(&str, &str) -> String) -> Result<GitlabVariable, InputError> {
    let key = g
        .variable
        .as_deref()
        .ok_or_else(|| InputError::new(at("gitlab.variable", "variable_name"), "is required: the variable's key"))?;
    let key_ok = !key.is_empty() && key.len() <= 255 && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !key_ok {
        return Err(InputError::new(
            at("gitlab.variable", "variable_name"),
            format!("`{key}` is not a valid variable key: use 1-255 of letters, digits and _"),
        ));
    }
    let scope = match (&g.project, &g.group) {
        (Some(p), None) => GitlabScope::Project(check_gitlab_path(&at("gitlab.project", "project"), &id_text(p))?),
        (None, Some(gr)) => GitlabScope::Group(check_gitlab_path(&at("gitlab.group", "group"), &id_text(gr))?),
        (Some(_), Some(_)) => {
            return Err(InputError::new(at("gitlab.group", "group"), "and project are both set: set one of them"))
        }
        (None, None) => {
            return Err(InputError::new(
                at("gitlab.project", "project"),
                "is required (id or path; default CI_PROJECT_ID in GitLab CI), or set group",
            ))
        }
    };
    let environment_scope = g.environment_scope.clone().unwrap_or_else(|| "*".to_owned());
    if environment_scope.trim().is_empty()
        || environment_scope.len() > 255
        || environment_scope.chars().any(char::is_control)
    {
        return Err(InputError::new(
            at("gitlab.environment_scope", "environment_scope"),
            format!(
                "`{environment_scope}` is not an environment scope: use * or an environment name (wildcards allowed)"
            ),
        ));
    }
    let variable_type = g.variable_type.clone().unwrap_or_else(|| "env_var".to_owned());
    if variable_type != "env_var" && variable_type != "file" {
        return Err(InputError::new(
            at("gitlab.variable_type", "variable_type"),
            format!("`{variable_type}` is not valid: use env_var or file"),
        ));
    }
    if g.description.as_ref().is_some_and(|d| d.chars().count() > 255) {
        return Err(InputError::new(
            at("gitlab.description", "variable_description"),
            "is longer than GitLab's 255 characters",
        ));
    }
    let masked_and_hidden = g.masked_and_hidden.unwrap_or(false);
    if masked_and_hidden && g.masked == Some(false) {
        return Err(InputError::new(
            at("gitlab.masked", "masked"),
            "is false but masked_and_hidden is true: a hidden variable is always masked",
        ));
    }
    Ok(GitlabVariable {
        scope,
        key: key.to_owned(),
        environment_scope,
        masked: g.masked.unwrap_or(true) || masked_and_hidden,
        masked_and_hidden,
        protected: g.protected.unwrap_or(false),
        raw: g.raw.unwrap_or(false),
        variable_type,
        description: g.description.clone().filter(|d| !d.is_empty()),
    })
}

/// A GitLab project or group: a numeric id or a `group/subgroup/project` path.
fn check_gitlab_path(input: &str, v: &str) -> Result<String, InputError> {
    let v = v.trim().trim_matches('/');
    let ok = !v.is_empty()
        && v.len() <= 1024
        && v.split('/').all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if ok {
        Ok(v.to_owned())
    } else {
        Err(InputError::new(
            input,
            format!("`{v}` is not a GitLab project or group: use its id or its path (group/project)"),
        ))
    }
}

/// CI_JOB_TOKEN cannot rotate itself nor write variables: say so before anything is sent.
fn check_not_job_token(input: &str, token: &Secret, env: &Env) -> Result<(), InputError> {
    let is_job_token = token.expose().starts_with("glcbt-") || env.get("CI_JOB_TOKEN") == Some(token.expose());
    if is_job_token {
        return Err(InputError::new(
            input,
            "is CI_JOB_TOKEN, which cannot rotate tokens or write CI/CD variables: use a project, group or personal \
             access token with the api scope",
        ));
    }
    Ok(())
}

/// The REST API base of a GitLab instance, from its URL (or an API URL).
fn api_base(input: &str, u: &str) -> Result<Url, InputError> {
    let trimmed = u.trim().trim_end_matches('/');
    check_url(input, trimmed)?;
    let full = if trimmed.ends_with("/api/v4") { trimmed.to_owned() } else { format!("{trimmed}/api/v4") };
    check_url(input, &full)
}

/// `gitlab_url` / `gitlab.url`, else `CI_API_V4_URL`, else `CI_SERVER_URL`, else gitlab.com.
fn gitlab_api_url(raw: Option<&RawGitlab>, inputs: &Inputs, env: &Env) -> Result<Url, InputError> {
    if let Some(u) = inputs.get("gitlab_url") {
        return api_base(&label("gitlab_url"), u);
    }
    if let Some(u) = raw.and_then(|g| g.url.as_deref()) {
        return api_base("gitlab.url", u);
    }
    if let Some(u) = env.get("CI_API_V4_URL") {
        return api_base("CI_API_V4_URL", u);
    }
    if let Some(u) = env.get("CI_SERVER_URL") {
        return api_base("CI_SERVER_URL", u);
    }
    api_base("gitlab_url", "https://gitlab.com")
}

/// The token that writes GitLab variables, when one is given.
fn gitlab_writer(raw: Option<&RawGitlab>, inputs: &Inputs, env: &Env) -> Result<Option<GitlabWriter>, InputError> {
    let (token, token_label) = match inputs.secret("gitlab_token") {
        Some(t) => (Some(resolve(&label("gitlab_token"), &to_source(t), env)?), label("gitlab_token")),
        None => match raw.and_then(|g| g.token.as_ref()) {
            Some(t) => (Some(resolve("gitlab.token", t, env)?), "gitlab.token".to_owned()),
            None => (None, String::new()),
        },
    };
    let token_type = match inputs.get("gitlab_token_type") {
        Some(t) => (t.to_owned(), label("gitlab_token_type")),
        None => (
            raw.and_then(|g| g.token_type.clone()).unwrap_or_else(|| "private-token".to_owned()),
            "gitlab.token_type".to_owned(),
        ),
    };
    let bearer = match token_type.0.as_str() {
        "private-token" => false,
        "bearer" => true,
        other => {
            return Err(InputError::new(token_type.1, format!("`{other}` is not valid: use private-token or bearer")))
        }
    };
    match token {
        Some(token) => {
            check_not_job_token(&token_label, &token, env)?;
            Ok(Some(GitlabWriter { token, bearer }))
        }
        None => Ok(None),
    }
}

fn oauth2(o: &RawOAuth2, origin: Origin, env: &Env) -> Result<OAuth2Spec, InputError> {
    let l = |field: &str| origin.label(&format!("provider.{field}"), field);
    let token_url = o
        .token_url
        .as_deref()
        .ok_or_else(|| InputError::new(l("token_url"), "is required for oauth2: the provider's token endpoint"))?;
    let token_url = check_url(&l("token_url"), token_url)?;
    let client_id = o
        .client_id
        .clone()
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| InputError::new(l("client_id"), "is required for oauth2"))?;
    let client_secret = match &o.client_secret {
        Some(s) => Some(resolve(&l("client_secret"), s, env)?),
        None => None,
    };
    let client_auth = match o.client_auth.as_deref() {
        None if client_secret.is_some() => ClientAuth::Basic,
        None => ClientAuth::None,
        Some("basic") => ClientAuth::Basic,
        Some("post") => ClientAuth::Post,
        Some("none") => ClientAuth::None,
        Some(other) => {
            return Err(InputError::new(l("client_auth"), format!("`{other}` is not valid: use basic, post or none")))
        }
    };
    match (client_auth, &client_secret) {
        (ClientAuth::Basic | ClientAuth::Post, None) => {
            return Err(InputError::new(
                l("client_secret"),
                "is required with client_auth basic or post (or set client_auth none for a public client)",
            ))
        }
        (ClientAuth::None, Some(_)) => {
            return Err(InputError::new(
                l("client_auth"),
                "is none but a client_secret is given: use basic or post, or drop the secret",
            ))
        }
        _ => {}
    }
    let refresh_token = match &o.refresh_token {
        Some(s) => resolve(&l("refresh_token"), s, env)?,
        None => return Err(InputError::new(l("refresh_token"), "is required for oauth2: the current refresh token")),
    };
    if refresh_token.expose().chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InputError::new(
            l("refresh_token"),
            "contains whitespace or control characters: pass the token alone",
        ));
    }
    let scope = o.scope.clone().filter(|s| !s.trim().is_empty());
    Ok(OAuth2Spec { token_url, client_id, client_secret, client_auth, scope, refresh_token })
}

fn github_target(g: &RawGithubTarget, at: &dyn Fn(&str, &str) -> String) -> Result<GithubSecret, InputError> {
    let name = g
        .secret
        .as_deref()
        .ok_or_else(|| InputError::new(at("github.secret", "secret_name"), "is required: the secret's name"))?;
    check_secret_name(&at("github.secret", "secret_name"), name)?;
    let scope = match (&g.repository, &g.org) {
        (Some(_), Some(_)) => {
            return Err(InputError::new(
                at("github.org", "org"),
                "and repository are both set: an organization secret has no repository; set one of them",
            ))
        }
        (None, None) => {
            return Err(InputError::new(
                at("github.repository", "repository"),
                "is required (owner/repo), or set org for an organization secret",
            ))
        }
        (Some(repo), None) => {
            check_repository(&at("github.repository", "repository"), repo)?;
            if g.visibility.is_some() || g.selected_repositories.is_some() {
                return Err(InputError::new(
                    at("github.visibility", "visibility"),
                    "applies to organization secrets only: set org, or drop it",
                ));
            }
            match &g.environment {
                Some(env) => {
                    check_environment(&at("github.environment", "environment"), env)?;
                    GithubScope::Environment { repository: repo.clone(), environment: env.clone() }
                }
                None => GithubScope::Repo { repository: repo.clone() },
            }
        }
        (None, Some(org)) => {
            check_owner(&at("github.org", "org"), org)?;
            if g.environment.is_some() {
                return Err(InputError::new(
                    at("github.environment", "environment"),
                    "needs a repository: environments belong to repositories, not organizations",
                ));
            }
            let selected = g.selected_repositories.clone().unwrap_or_default();
            let visibility = match g.visibility.as_deref().unwrap_or("private") {
                "all" => Visibility::All,
                "private" => Visibility::Private,
                "selected" => {
                    if selected.is_empty() {
                        return Err(InputError::new(
                            at("github.selected_repositories", "selected_repositories"),
                            "is required with visibility selected: name at least one repository",
                        ));
                    }
                    for r in &selected {
                        check_repo_name(&at("github.selected_repositories", "selected_repositories"), r)?;
                    }
                    Visibility::Selected(selected.clone())
                }
                other => {
                    return Err(InputError::new(
                        at("github.visibility", "visibility"),
                        format!("`{other}` is not valid: use all, private or selected"),
                    ))
                }
            };
            if !selected.is_empty() && !matches!(visibility, Visibility::Selected(_)) {
                return Err(InputError::new(
                    at("github.selected_repositories", "selected_repositories"),
                    "applies only with visibility selected",
                ));
            }
            GithubScope::Org { org: org.clone(), visibility }
        }
    };
    Ok(GithubSecret { scope, name: name.to_ascii_uppercase() })
}

fn github_settings(
    raw: Option<&RawGithub>,
    inputs: &Inputs,
    env: &Env,
    config_mode: bool,
) -> Result<GithubSettings, InputError> {
    let api = match raw.and_then(|g| g.api_url.as_deref()) {
        Some(u) => (u.to_owned(), "github.api_url".to_owned()),
        None => match env.get("GITHUB_API_URL") {
            Some(u) => (u.to_owned(), "GITHUB_API_URL".to_owned()),
            None => ("https://api.github.com".to_owned(), "GITHUB_API_URL".to_owned()),
        },
    };
    let api_url = check_url(&api.1, api.0.trim_end_matches('/'))?;
    let max_concurrency = raw.and_then(|g| g.max_concurrency).unwrap_or(DEFAULT_MAX_CONCURRENCY);
    if max_concurrency == 0 || max_concurrency > MAX_CONCURRENCY_LIMIT {
        return Err(InputError::new(
            "github.max_concurrency",
            format!("must be between 1 and {MAX_CONCURRENCY_LIMIT}"),
        ));
    }

    let from_config = match raw {
        Some(g) => match (&g.token, &g.app) {
            (Some(_), Some(_)) => {
                return Err(InputError::new("github.app", "and github.token are both set: use one of them"))
            }
            (Some(t), None) => Some(GithubAuth::Token(resolve("github.token", t, env)?)),
            (None, Some(app)) => Some(app_auth(
                app.id.as_ref().map(id_text).as_deref(),
                app.private_key.as_ref(),
                app.installation_id.as_ref().map(id_text).as_deref(),
                "github.app.id",
                "github.app.private_key",
                "github.app.installation_id",
                env,
            )?),
            (None, None) => None,
        },
        None => None,
    };
    let auth = match from_config {
        Some(a) => a,
        None => {
            let token = inputs.secret("github_token");
            let app_id = inputs.get("app_id");
            match (token, app_id) {
                (Some(_), Some(_)) => {
                    return Err(InputError::new(label("app_id"), "and github_token are both set: use one of them"))
                }
                (Some(t), None) => GithubAuth::Token(resolve(&label("github_token"), &to_source(t), env)?),
                (None, Some(_)) => app_auth(
                    app_id,
                    inputs.secret("app_private_key").map(to_source).as_ref(),
                    inputs.get("app_installation_id"),
                    &label("app_id"),
                    &label("app_private_key"),
                    &label("app_installation_id"),
                    env,
                )?,
                (None, None) => {
                    let (input, how) = if config_mode {
                        (
                            "github.token",
                            "set github.token or github.app in the config file (or the github_token input)",
                        )
                    } else {
                        (
                            "input github_token",
                            "set github_token (a token that may write Actions secrets) or app_id and app_private_key",
                        )
                    };
                    return Err(InputError::new(input, format!("is required: {how}")));
                }
            }
        }
    };
    Ok(GithubSettings { api_url, auth, max_concurrency })
}

fn to_source(s: &SecretInput) -> SecretSource {
    match s {
        SecretInput::Value(v) => SecretSource::Value(v.clone()),
        SecretInput::File(p) => SecretSource::File(p.clone()),
    }
}

fn id_text(v: &IdValue) -> String {
    match v {
        IdValue::Number(n) => n.to_string(),
        IdValue::Text(t) => t.clone(),
    }
}

fn app_auth(
    id: Option<&str>,
    key: Option<&SecretSource>,
    installation: Option<&str>,
    id_label: &str,
    key_label: &str,
    inst_label: &str,
    env: &Env,
) -> Result<GithubAuth, InputError> {
    let parse_id = |l: &str, v: &str| {
        v.trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| InputError::new(l, format!("`{v}` is not a numeric id")))
    };
    let app_id = parse_id(id_label, id.ok_or_else(|| InputError::new(id_label, "is required for a GitHub App"))?)?;
    let private_key = match key {
        Some(k) => resolve(key_label, k, env)?,
        None => {
            return Err(InputError::new(key_label, "is required with a GitHub App id: the App's private key (PEM)"))
        }
    };
    if jsonwebtoken::EncodingKey::from_rsa_pem(private_key.expose().as_bytes()).is_err() {
        return Err(InputError::new(
            key_label,
            "is not an RSA private key in PEM: use the .pem file GitHub generated for the App",
        ));
    }
    let installation_id = match installation {
        Some(v) => Some(parse_id(inst_label, v)?),
        None => None,
    };
    Ok(GithubAuth::App { app_id, private_key, installation_id })
}

/// Reads a secret from where its source says. Errors name the input, never the value.
/// `{ env: NAME }` is read from `env` (the environment the run was given), never from elsewhere.
pub fn resolve(input: &str, src: &SecretSource, env: &Env) -> Result<Secret, InputError> {
    let value = match src {
        SecretSource::Value(v) => v.clone(),
        SecretSource::Literal => {
            return Err(InputError::new(
                input,
                "a literal secret is refused: secrets do not belong in a committed file; use { env: NAME } or { file: PATH }",
            ))
        }
        SecretSource::Ambiguous => {
            return Err(InputError::new(input, "takes exactly one of { env: NAME } or { file: PATH }"))
        }
        SecretSource::Env(name) => match env.get(name) {
            Some(v) if !v.trim().is_empty() => Secret::new(v.trim()),
            _ => {
                return Err(InputError::new(
                    input,
                    format!("environment variable {name} is not set or empty: set it, or point to another"),
                ))
            }
        },
        SecretSource::File(path) => match std::fs::read_to_string(path) {
            Ok(v) if !v.trim().is_empty() => Secret::new(v.trim()),
            Ok(_) => return Err(InputError::new(input, format!("file {} is empty", path.display()))),
            Err(e) => return Err(InputError::new(input, format!("cannot read {}: {e}", path.display()))),
        },
    };
    if value.is_empty() {
        return Err(InputError::new(input, "is empty"));
    }
    Ok(value)
}

/// A URL that may carry credentials: https, or http to a loopback host only.
pub fn check_url(input: &str, s: &str) -> Result<Url, InputError> {
    let url = Url::parse(s.trim()).map_err(|e| InputError::new(input, format!("`{s}` is not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(InputError::new(input, "must not hold credentials: pass them as secret inputs"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(InputError::new(
                input,
                format!("`{s}` uses plain http: use https (http is allowed only to loopback hosts)"),
            ))
        }
        other => return Err(InputError::new(input, format!("`{other}:` is not supported: use an https URL"))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(InputError::new(input, format!("`{s}` has no host")));
    }
    Ok(url)
}

/// True for 127.0.0.0/8, ::1 and localhost.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// `30s`, `20h`, `7d`, `1d12h`, `90m`.
pub fn parse_duration(input: &str, s: &str) -> Result<Duration, InputError> {
    let bad =
        || InputError::new(input, format!("`{s}` is not a duration: use a number and a unit, like 30s, 20h or 7d"));
    let s = s.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
    }
    if !num.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

fn check_name(input: &str, name: &str) -> Result<(), InputError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(InputError::new(input, format!("`{name}` is not valid: use 1-64 of a-z, 0-9 and -")))
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

fn parse_recipient(input: &str, s: &str) -> Result<age::x25519::Recipient, InputError> {
    age::x25519::Recipient::from_str(s.trim()).map_err(|_| {
        InputError::new(input, "is not an age X25519 recipient: use the age1... line that age-keygen prints")
    })
}

fn read_ca(input: &str, path: &Path) -> Result<Vec<u8>, InputError> {
    let pem =
        std::fs::read(path).map_err(|e| InputError::new(input, format!("cannot read {}: {e}", path.display())))?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(certs) if !certs.is_empty() => Ok(pem),
        _ => Err(InputError::new(input, format!("{} holds no PEM certificate", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn durations_round_trip(d in 0u64..400, h in 0u64..24, m in 0u64..60, s in 0u64..60) {
            let text = format!("{d}d{h}h{m}m{s}s");
            prop_assert_eq!(parse_duration("x", &text).unwrap(), Duration::from_secs(((d * 24 + h) * 60 + m) * 60 + s));
        }

        /// Whatever a literal secret in a config file holds, the error never repeats it.
        #[test]
        fn a_literal_secret_is_never_echoed(value in "[A-Za-z0-9_.~+/=-]{12,80}", field in 0usize..3) {
            let dir = tempfile::tempdir().unwrap();
            let file = |name: &str| {
                std::fs::write(dir.path().join(name), "a-valid-secret-0123456789").unwrap();
                format!("{{ file: {} }}", dir.path().join(name).display())
            };
            let quoted = format!("'{value}'");
            let mut fields = [file("cs"), file("rt"), file("gt")];
            fields[field] = quoted;
            let [client_secret, refresh_token, token] = fields;
            let yaml = format!(
                "gitlab:\n  token: {token}\nrotations:\n- name: a\n  provider: {{ type: oauth2, token_url: 'https://x.example', client_id: c, client_secret: {client_secret}, refresh_token: {refresh_token} }}\n  targets: [ {{ gitlab: {{ project: acme/app, variable: X }} }} ]\n"
            );
            let path = dir.path().join("c.yml");
            std::fs::write(&path, yaml).unwrap();
            let opts = RunOptions { config: Some(path), ..RunOptions::default() };
            let env = Env::from_pairs([]);
            let inputs = Inputs::collect(&std::collections::HashMap::new(), &env);
            let err = build(&inputs, &env, &opts).unwrap_err();
            prop_assert!(err.message.contains("literal secret is refused"), "{}", err);
            prop_assert!(!err.to_string().contains(&value));
        }
    }

    #[test]
    fn env_references_read_the_given_environment() {
        let env = Env::from_pairs([("SR_TEST_ONLY_RT", "r1-from-the-given-env")]);
        assert!(std::env::var("SR_TEST_ONLY_RT").is_err());
        let s = resolve("x", &SecretSource::Env("SR_TEST_ONLY_RT".into()), &env).unwrap();
        assert_eq!(s.expose(), "r1-from-the-given-env");
        let err = resolve("x", &SecretSource::Env("SR_TEST_ONLY_MISSING".into()), &env).unwrap_err();
        assert!(err.message.contains("SR_TEST_ONLY_MISSING is not set"), "{err}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("x", "20h").unwrap(), Duration::from_secs(72_000));
        assert_eq!(parse_duration("x", "1d12h").unwrap(), Duration::from_secs(129_600));
        assert_eq!(parse_duration("x", "30s").unwrap(), Duration::from_secs(30));
        for bad in ["", "20", "h", "2x", "-1d", "1.5h"] {
            assert!(parse_duration("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_need_https_except_loopback() {
        assert!(check_url("u", "https://example.com/token").is_ok());
        assert!(check_url("u", "http://127.0.0.1:8080/token").is_ok());
        assert!(check_url("u", "http://[::1]:8080/").is_ok());
        assert!(check_url("u", "http://localhost/").is_ok());
        assert!(check_url("u", "http://example.com/").is_err());
        assert!(check_url("u", "http://127.0.0.1.example.com/").is_err());
        assert!(check_url("u", "https://user:pw@example.com/").is_err());
        assert!(check_url("u", "ftp://example.com/").is_err());
    }

    #[test]
    fn secret_names_follow_github() {
        assert!(check_secret_name("s", "MY_TOKEN_2").is_ok());
        for bad in ["", "1ABC", "GITHUB_TOKEN", "github_x", "A-B", "A B", "Ä"] {
            assert!(check_secret_name("s", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn literal_secret_in_yaml_is_refused_without_echo() {
        let yaml = "rotations:\n- name: a\n  provider: { type: oauth2, token_url: 'https://x', client_id: c, refresh_token: 'sup3r-s3cret' }\n  targets: [ { github: { repository: a/b, secret: X } } ]\n";
        let raw: RawConfig = serde_norway::from_str(yaml).unwrap();
        let api: Url = "https://gitlab.com/api/v4".parse().unwrap();
        let err = rotation(&raw.rotations[0], Origin::Config(0), None, &api, &Env::default()).unwrap_err();
        assert_eq!(err.input, "rotations[0].provider.refresh_token");
        assert!(err.message.contains("literal secret is refused"));
        assert!(!err.to_string().contains("sup3r"));
    }
}
