//! The configuration as written: the YAML file, or the same shape built from single-rotation
//! inputs. Nothing here is validated beyond its shape; see `plan.rs` for that.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroize;

use crate::secret::Secret;

/// Where a secret comes from. A literal in a config file is recognised only to be refused.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// `{ env: NAME }`: read from an environment variable.
    Env(String),
    /// `{ file: PATH }`: read from a file (surrounding whitespace trimmed).
    File(PathBuf),
    /// A value given directly (single-rotation mode: `INPUT_<NAME>`).
    Value(Secret),
    /// A literal string in the config file: refused during validation.
    Literal,
    /// `{}` or `{ env, file }` together: refused during validation.
    Ambiguous,
}

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Ref {
            env: Option<String>,
            file: Option<PathBuf>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            Ref(Ref),
            Literal(String),
        }
        // An untagged mismatch reports no value, so a secret never reaches a parse error.
        Ok(match Shape::deserialize(d)? {
            Shape::Literal(mut s) => {
                s.zeroize();
                SecretSource::Literal
            }
            Shape::Ref(Ref { env: Some(e), file: None }) => SecretSource::Env(e),
            Shape::Ref(Ref { env: None, file: Some(f) }) => SecretSource::File(f),
            Shape::Ref(_) => SecretSource::Ambiguous,
        })
    }
}

/// A number or a string holding one (ids are often quoted in YAML).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum IdValue {
    /// `123`
    Number(u64),
    /// `"123"`
    Text(String),
}

/// The whole config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// GitHub connection shared by every `github` target.
    pub github: Option<RawGithub>,
    /// GitLab connection shared by every `gitlab` target and `gitlab-token` provider.
    pub gitlab: Option<RawGitlab>,
    /// Default age recipient for rescue files.
    pub rescue_recipient: Option<String>,
    /// HTTP settings.
    pub http: Option<RawHttp>,
    /// The rotations.
    #[serde(default)]
    pub rotations: Vec<RawRotation>,
}

/// `http:` settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// Total time allowed for one request (`30s`).
    pub timeout: Option<String>,
}

/// `github:`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGithub {
    /// A token that may write Actions secrets.
    pub token: Option<SecretSource>,
    /// GitHub App credentials instead of a token.
    pub app: Option<RawApp>,
    /// REST API base URL (GitHub Enterprise Server: `https://HOST/api/v3`).
    pub api_url: Option<String>,
    /// Target writes in flight at once.
    pub max_concurrency: Option<usize>,
}

/// `gitlab:`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGitlab {
    /// Instance URL (`https://gitlab.example.com`) or its API base (`.../api/v4`).
    pub url: Option<String>,
    /// A token that may write CI/CD variables (default: a rotated GitLab token writes with itself).
    pub token: Option<SecretSource>,
    /// How `token` is sent: `private-token` (the `PRIVATE-TOKEN` header) or `bearer` (OAuth).
    pub token_type: Option<String>,
}

/// `github.app:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApp {
    /// The App's id.
    pub id: Option<IdValue>,
    /// The App's private key (PEM).
    pub private_key: Option<SecretSource>,
    /// The installation to use; looked up per owner when absent.
    pub installation_id: Option<IdValue>,
}

/// One rotation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRotation {
    /// Unique name, `[a-z0-9-]`.
    pub name: Option<String>,
    /// Skip when every credential target is younger than this.
    pub min_age: Option<String>,
    /// Where the credential is rotated.
    pub provider: RawProvider,
    /// Check the new access token before writing.
    pub verify: Option<RawVerify>,
    /// age recipient for this rotation's rescue file.
    pub rescue_recipient: Option<String>,
    /// Where the new values are written.
    #[serde(default)]
    pub targets: Vec<RawTargetEntry>,
}

/// `verify:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVerify {
    /// GET with the new access token; any 2xx passes.
    pub url: String,
}

/// `provider:`
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum RawProvider {
    /// RFC 6749 section 6 refresh grant.
    #[serde(rename = "oauth2")]
    OAuth2(RawOAuth2),
    /// GitLab access token self-rotation.
    #[serde(rename = "gitlab-token")]
    GitlabToken(RawGitlabToken),
}

/// `provider: { type: gitlab-token, ... }`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGitlabToken {
    /// The access token to rotate (it rotates itself).
    pub token: Option<SecretSource>,
    /// `personal`, `project` or `group`.
    pub token_kind: Option<String>,
    /// The project or group (id or path) that owns a project or group token.
    pub token_owner: Option<IdValue>,
    /// Lifetime of the new token in days.
    pub expires_in: Option<IdValue>,
    /// The instance, when it differs from `gitlab.url`.
    pub gitlab_url: Option<String>,
}

/// `provider: { type: oauth2, ... }`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOAuth2 {
    /// Token endpoint.
    pub token_url: Option<String>,
    /// Client id.
    pub client_id: Option<String>,
    /// Client secret (confidential clients).
    pub client_secret: Option<SecretSource>,
    /// `basic`, `post` or `none`.
    pub client_auth: Option<String>,
    /// Scope to request.
    pub scope: Option<String>,
    /// The current refresh token.
    pub refresh_token: Option<SecretSource>,
}

/// One entry of `targets:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTargetEntry {
    /// A GitHub Actions secret.
    pub github: Option<RawGithubTarget>,
    /// A GitLab CI/CD variable.
    pub gitlab: Option<RawGitlabTarget>,
    /// Which value to write: `refresh_token` (default) or `access_token`.
    pub value: Option<String>,
}

/// `- gitlab: { ... }`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGitlabTarget {
    /// Project id or path: a project variable.
    pub project: Option<IdValue>,
    /// Group id or path: a group variable.
    pub group: Option<IdValue>,
    /// The variable's key.
    pub variable: Option<String>,
    /// Masked in job logs (default true).
    pub masked: Option<bool>,
    /// Masked and hidden (only when the variable is created).
    pub masked_and_hidden: Option<bool>,
    /// Only in protected branches and tags (default false).
    pub protected: Option<bool>,
    /// Not expanded (`$` kept as is) (default false).
    pub raw: Option<bool>,
    /// Environment scope (default `*`).
    pub environment_scope: Option<String>,
    /// `env_var` (default) or `file`.
    pub variable_type: Option<String>,
    /// The variable's description.
    pub description: Option<String>,
}

/// `- github: { ... }`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGithubTarget {
    /// `owner/repo` for repository and environment secrets.
    pub repository: Option<String>,
    /// Environment name: write an environment secret.
    pub environment: Option<String>,
    /// Organization: write an organization secret.
    pub org: Option<String>,
    /// Organization secret visibility.
    pub visibility: Option<String>,
    /// Repository names for `visibility: selected`.
    pub selected_repositories: Option<Vec<String>>,
    /// Secret name.
    pub secret: Option<String>,
}
