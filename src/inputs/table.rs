//! Inputs as declared: every module declares its own [`Field`]s (their input name, config key,
//! kind and help, tagged with their owner), and the registry joins them into one table that
//! drives the CLI flags, the `INPUT_*` variables and the `action.yml` consistency test.

use std::collections::HashMap;
use std::path::PathBuf;

use super::env::Env;
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

/// Who an input or config key belongs to, which decides where it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A setting of the whole run (`config`, `timeout`, ...): always applies.
    Run,
    /// Describes the single rotation (`name`, `provider`, `min_age`, ...): not used with `config`.
    Rotation,
    /// Belongs to this provider: refused with another one.
    Provider(&'static str),
    /// Belongs to this target: refused with another one.
    Target(&'static str),
    /// A connection to a system (`github_token`, `gitlab_url`): read only when a selected
    /// rotation uses that system, never refused.
    Service(&'static str),
}

/// One input or config key.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The underscore input name (`token_url`); empty for a key that exists only in the config file.
    pub input: &'static str,
    /// The config file key (`token_url`, or `secret` for the input `secret_name`); empty for an
    /// input that exists only in single-rotation mode.
    pub key: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// One line for `--help` and the README.
    pub help: &'static str,
    /// Who it belongs to.
    pub owner: Owner,
}

impl Field {
    /// A plain value, named alike as input and config key.
    pub const fn plain(name: &'static str, help: &'static str) -> Field {
        Field { input: name, key: name, kind: Kind::Plain, help, owner: Owner::Run }
    }

    /// A secret, named alike as input and config key.
    pub const fn secret(name: &'static str, help: &'static str) -> Field {
        Field { kind: Kind::Secret, ..Field::plain(name, help) }
    }

    /// A `true`/`false` value, named alike as input and config key.
    pub const fn bool(name: &'static str, help: &'static str) -> Field {
        Field { kind: Kind::Bool, ..Field::plain(name, help) }
    }

    /// The same, owned by `owner`.
    pub const fn of(self, owner: Owner) -> Field {
        Field { owner, ..self }
    }

    /// The same, with another config key.
    pub const fn key(self, key: &'static str) -> Field {
        Field { key, ..self }
    }

    /// The same, with no config key (single-rotation mode only).
    pub const fn input_only(self) -> Field {
        Field { key: "", ..self }
    }

    /// The same, with no input (config file only).
    pub const fn config_only(self) -> Field {
        Field { input: "", ..self }
    }
}

/// The flag spelling of an input.
pub fn flag(name: &str) -> String {
    name.replace('_', "-")
}

/// How an input is named in an error: `input token_url`.
pub fn label(name: &str) -> String {
    format!("input {name}")
}

/// A secret input, as given.
#[derive(Debug, Clone)]
pub enum SecretInput {
    /// From `INPUT_<NAME>`.
    Value(Secret),
    /// From `--<name>-file`.
    File(PathBuf),
}

/// The inputs that are set: plain values, secret values and secret files.
#[derive(Debug, Default)]
pub struct Inputs {
    plain: HashMap<&'static str, String>,
    secrets: HashMap<&'static str, SecretInput>,
}

impl Inputs {
    /// Collects the inputs of `table`: `flags` (already parsed from argv: name -> value) win over
    /// `INPUT_*`. Secret files come as `<name>_file` keys of `flags`.
    pub fn collect<'a>(table: impl IntoIterator<Item = &'a Field>, flags: &HashMap<String, String>, env: &Env) -> Self {
        let mut inputs = Inputs::default();
        for spec in table.into_iter().filter(|f| !f.input.is_empty()) {
            let name = spec.input;
            match spec.kind {
                Kind::Plain | Kind::Bool => {
                    if let Some(v) = flags.get(name) {
                        inputs.plain.insert(name, v.clone());
                    } else if let Some(var) = env.input_var(name) {
                        inputs.plain.insert(name, env.get(&var).unwrap_or_default().trim().to_owned());
                    }
                }
                Kind::Secret => {
                    if let Some(path) = flags.get(&format!("{name}_file")) {
                        inputs.secrets.insert(name, SecretInput::File(PathBuf::from(path)));
                    } else if let Some(s) = env.input_var(name).and_then(|var| env.secret(&var)) {
                        inputs.secrets.insert(name, SecretInput::Value(s));
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

    /// True when the input is set (plain or secret).
    pub fn is_set(&self, name: &str) -> bool {
        self.get(name).is_some() || self.secrets.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[Field] = &[
        Field::plain("token_url", "t"),
        Field::plain("scope", "s"),
        Field::plain("secret_name", "n"),
        Field::secret("refresh_token", "r"),
    ];

    #[test]
    fn flag_wins_over_env_and_empty_env_is_unset() {
        let env = Env::from_pairs([("INPUT_TOKEN_URL", "https://env"), ("INPUT_SCOPE", "")]);
        let flags = HashMap::from([("token_url".to_owned(), "https://flag".to_owned())]);
        let inputs = Inputs::collect(TABLE, &flags, &env);
        assert_eq!(inputs.get("token_url"), Some("https://flag"));
        assert_eq!(inputs.get("scope"), None);
    }

    #[test]
    fn hyphenated_input_variables_are_read() {
        let env = Env::from_pairs([("INPUT_SECRET-NAME", "FOO")]);
        let inputs = Inputs::collect(TABLE, &HashMap::new(), &env);
        assert_eq!(inputs.get("secret_name"), Some("FOO"));
    }

    #[test]
    fn secrets_come_from_env_or_file_only() {
        let env = Env::from_pairs([("INPUT_REFRESH_TOKEN", " r1-abcdef \n")]);
        let inputs = Inputs::collect(TABLE, &HashMap::new(), &env);
        match inputs.secret("refresh_token") {
            Some(SecretInput::Value(s)) => assert_eq!(s.expose(), "r1-abcdef"),
            other => panic!("{other:?}"),
        }
        let flags = HashMap::from([("refresh_token_file".to_owned(), "/tmp/x".to_owned())]);
        let inputs = Inputs::collect(TABLE, &flags, &env);
        assert!(matches!(inputs.secret("refresh_token"), Some(SecretInput::File(_))));
    }
}
