//! The single-rotation inputs: one table drives the CLI flags, the `INPUT_*` variables,
//! and (in tests) the check that `action.yml` declares exactly these inputs.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::error::InputError;
use crate::secret::Secret;

/// What kind of value an input holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A plain value: flag `--name-with-dashes VALUE` or `INPUT_NAME`.
    Plain,
    /// A secret: `INPUT_NAME` or a file named by `--name-with-dashes-file PATH`; never a flag.
    Secret,
    /// `true`/`false`: a switch `--name-with-dashes` or `INPUT_NAME`.
    Bool,
}

/// One input.
#[derive(Debug, Clone, Copy)]
pub struct InputSpec {
    /// The underscore name (`token_url`).
    pub name: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// One line for `--help` and the README.
    pub help: &'static str,
    /// True for inputs that describe the rotation itself (not used together with `config`).
    pub rotation: bool,
}

const fn plain(name: &'static str, help: &'static str) -> InputSpec {
    InputSpec { name, kind: Kind::Plain, help, rotation: true }
}
const fn secret(name: &'static str, help: &'static str) -> InputSpec {
    InputSpec { name, kind: Kind::Secret, help, rotation: true }
}
const fn global(name: &'static str, kind: Kind, help: &'static str) -> InputSpec {
    InputSpec { name, kind, help, rotation: false }
}

/// Every input, in the order `--help` shows them.
pub const INPUTS: &[InputSpec] = &[
    plain("name", "the rotation's name in the report and logs ([a-z0-9-]); default: the secret name, lowercased"),
    plain("provider", "where the credential is rotated: oauth2 or gitlab-token"),
    plain("token_url", "oauth2: the token endpoint"),
    plain("client_id", "oauth2: the client id"),
    secret("client_secret", "oauth2: the client secret (confidential clients)"),
    plain(
        "client_auth",
        "oauth2: client authentication: basic, post or none (default: basic with a secret, else none)",
    ),
    plain("scope", "oauth2: the scope to request"),
    secret("refresh_token", "oauth2: the current refresh token"),
    secret("token", "gitlab-token: the GitLab access token to rotate (it rotates itself)"),
    plain("token_kind", "gitlab-token: personal, project or group (default: personal)"),
    plain("token_owner", "gitlab-token: the project or group (id or path) that owns a project or group token"),
    plain("expires_in", "gitlab-token: lifetime of the new token in days (default: 30)"),
    global("gitlab_url", Kind::Plain, "GitLab instance (default: CI_SERVER_URL, else https://gitlab.com)"),
    plain("verify_url", "GET with the new access token before anything is written; any 2xx passes"),
    plain(
        "target",
        "where the new value is written: github or gitlab (default: github when GITHUB_ACTIONS=true, gitlab when GITLAB_CI=true)",
    ),
    global("github_token", Kind::Secret, "a token that may write Actions secrets (GITHUB_TOKEN cannot)"),
    global("app_id", Kind::Plain, "GitHub App id (instead of github_token)"),
    global("app_private_key", Kind::Secret, "GitHub App private key, PEM"),
    global("app_installation_id", Kind::Plain, "GitHub App installation id (looked up when absent)"),
    plain("repository", "owner/repo (default: GITHUB_REPOSITORY)"),
    plain("environment", "write an environment secret of this environment"),
    plain("org", "write an organization secret of this organization"),
    plain("visibility", "organization secret visibility: all, private or selected (default: private)"),
    plain("selected_repositories", "with visibility selected: comma-separated repository names"),
    plain("secret_name", "the secret that receives the rotated credential"),
    plain("access_token_secret_name", "also write the new access token to this secret"),
    global(
        "gitlab_token",
        Kind::Secret,
        "a token that may write CI/CD variables (default: the rotated token itself with gitlab-token)",
    ),
    global("gitlab_token_type", Kind::Plain, "how gitlab_token is sent: private-token or bearer (default: private-token)"),
    plain("project", "GitLab project (id or path) whose variable is written (default: CI_PROJECT_ID)"),
    plain("group", "GitLab group (id or path) whose variable is written, instead of a project"),
    plain("variable_name", "the GitLab CI/CD variable that receives the rotated credential"),
    plain("masked", "GitLab: mask the variable in job logs (default: true)"),
    plain("masked_and_hidden", "GitLab: mask and hide the variable (only when it is created; default: false)"),
    plain("protected", "GitLab: expose the variable only to protected branches and tags (default: false)"),
    plain("raw", "GitLab: do not expand $ in the value (default: false)"),
    plain("environment_scope", "GitLab: the variable's environment scope (default: *)"),
    plain("variable_type", "GitLab: env_var or file (default: env_var)"),
    plain("variable_description", "GitLab: the variable's description"),
    plain("min_age", "skip when the secret was updated less than this long ago (20h, 7d)"),
    global(
        "rescue_recipient",
        Kind::Plain,
        "age recipient (age1...) for the rescue file of a value that could not be stored",
    ),
    global("config", Kind::Plain, "YAML config file with many rotations"),
    global("only", Kind::Plain, "with config: comma-separated rotation names to run"),
    global("dry_run", Kind::Bool, "plan and preflight only"),
    global("log_format", Kind::Plain, "text or json (default: text)"),
    global("log_level", Kind::Plain, "error, warn, info or debug (default: info; debug when RUNNER_DEBUG=1)"),
    global("timeout", Kind::Plain, "total time allowed for one HTTP request (default: 30s)"),
    global(
        "report",
        Kind::Plain,
        "write the JSON report here (GitHub Actions default: $RUNNER_TEMP/secret-rotator-report.json)",
    ),
    global("ca_file", Kind::Plain, "PEM file with extra CA certificates (also SSL_CERT_FILE)"),
];

/// The flag spelling of an input.
pub fn flag(name: &str) -> String {
    name.replace('_', "-")
}

/// The process environment, read once.
#[derive(Debug, Default, Clone)]
pub struct Env(HashMap<String, String>);

impl Env {
    /// The real environment.
    pub fn from_process() -> Self {
        Env(std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect())
    }

    /// An environment from pairs (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Env(pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
    }

    /// A variable's value; empty counts as unset.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The `INPUT_*` variable of an input, as GitHub spells it (`INPUT_SECRET_NAME`, or with
    /// hyphens `INPUT_SECRET-NAME`).
    pub fn input(&self, name: &str) -> Option<&str> {
        let upper = name.to_ascii_uppercase();
        self.get(&format!("INPUT_{upper}")).or_else(|| self.get(&format!("INPUT_{}", upper.replace('_', "-"))))
    }

    /// True when the variable is `true` (any case) or `1`.
    pub fn is_true(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }
}

/// The resolved single-rotation inputs: plain values, secret values and secret files.
#[derive(Debug, Default)]
pub struct Inputs {
    plain: HashMap<&'static str, String>,
    secrets: HashMap<&'static str, SecretInput>,
}

/// A secret input.
#[derive(Debug, Clone)]
pub enum SecretInput {
    /// From `INPUT_<NAME>`.
    Value(Secret),
    /// From `--<name>-file`.
    File(PathBuf),
}

impl Inputs {
    /// Collects inputs: `flags` (already parsed from argv: name -> value) win over `INPUT_*`.
    /// Secret files come as `<name>_file` keys of `flags`.
    pub fn collect(flags: &HashMap<String, String>, env: &Env) -> Self {
        let mut inputs = Inputs::default();
        for spec in INPUTS {
            match spec.kind {
                Kind::Plain | Kind::Bool => {
                    if let Some(v) = flags.get(spec.name) {
                        inputs.plain.insert(spec.name, v.clone());
                    } else if let Some(v) = env.input(spec.name) {
                        inputs.plain.insert(spec.name, v.trim().to_owned());
                    }
                }
                Kind::Secret => {
                    if let Some(path) = flags.get(&format!("{}_file", spec.name)) {
                        inputs.secrets.insert(spec.name, SecretInput::File(PathBuf::from(path)));
                    } else if let Some(v) = env.input(spec.name) {
                        inputs.secrets.insert(spec.name, SecretInput::Value(Secret::new(v.trim())));
                    }
                }
            }
        }
        inputs
    }

    /// A plain input's value, if set (empty means unset).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.plain.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// A boolean input: `true`/`false` (any case), else an error naming it.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, InputError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(InputError::new(label(name), "must be true or false")),
        }
    }

    /// A secret input, if set.
    pub fn secret(&self, name: &str) -> Option<&SecretInput> {
        self.secrets.get(name)
    }

    /// Names of the rotation inputs that are set (they are not used together with `config`).
    pub fn rotation_inputs_set(&self) -> Vec<&'static str> {
        INPUTS
            .iter()
            .filter(|s| s.rotation)
            .filter(|s| self.get(s.name).is_some() || self.secrets.contains_key(s.name))
            .map(|s| s.name)
            .collect()
    }
}

/// How an input is named in an error: `input token_url`.
pub fn label(name: &str) -> String {
    format!("input {name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_wins_over_env_and_empty_env_is_unset() {
        let env = Env::from_pairs([("INPUT_TOKEN_URL", "https://env"), ("INPUT_SCOPE", "")]);
        let flags = HashMap::from([("token_url".to_owned(), "https://flag".to_owned())]);
        let inputs = Inputs::collect(&flags, &env);
        assert_eq!(inputs.get("token_url"), Some("https://flag"));
        assert_eq!(inputs.get("scope"), None);
    }

    #[test]
    fn hyphenated_input_variables_are_read() {
        let env = Env::from_pairs([("INPUT_SECRET-NAME", "FOO")]);
        let inputs = Inputs::collect(&HashMap::new(), &env);
        assert_eq!(inputs.get("secret_name"), Some("FOO"));
    }

    #[test]
    fn secrets_come_from_env_or_file_only() {
        let env = Env::from_pairs([("INPUT_REFRESH_TOKEN", " r1-abcdef \n")]);
        let inputs = Inputs::collect(&HashMap::new(), &env);
        match inputs.secret("refresh_token") {
            Some(SecretInput::Value(s)) => assert_eq!(s.expose(), "r1-abcdef"),
            other => panic!("{other:?}"),
        }
        let flags = HashMap::from([("refresh_token_file".to_owned(), "/tmp/x".to_owned())]);
        let inputs = Inputs::collect(&flags, &env);
        assert!(matches!(inputs.secret("refresh_token"), Some(SecretInput::File(_))));
    }

    #[test]
    fn every_input_name_is_lowercase_underscore() {
        for s in INPUTS {
            assert!(s.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{}", s.name);
        }
    }
}
