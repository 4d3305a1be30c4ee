//! The environment the run was given, read once. Values are zeroized when the run ends and
//! never printed: `Debug` shows the variable names only, since `INPUT_*` variables hold secrets.

use std::collections::HashMap;
use std::fmt;

use zeroize::Zeroizing;

use crate::secret::Secret;

/// The process environment, read once.
#[derive(Default, Clone)]
pub struct Env(HashMap<String, Zeroizing<String>>);

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("Env").field("names", &names).finish_non_exhaustive()
    }
}

impl Env {
    /// The real environment.
    pub fn from_process() -> Self {
        Env(std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, Zeroizing::new(v.into_string().ok()?))))
            .collect())
    }

    /// An environment from pairs (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Env(pairs.into_iter().map(|(k, v)| (k.to_owned(), Zeroizing::new(v.to_owned()))).collect())
    }

    /// A variable's value; empty counts as unset. For settings, not secrets: see [`Env::secret`].
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str()).filter(|v| !v.is_empty())
    }

    /// A variable that holds a secret, trimmed, as a [`Secret`]; empty counts as unset.
    pub fn secret(&self, key: &str) -> Option<Secret> {
        self.get(key).map(str::trim).filter(|v| !v.is_empty()).map(Secret::new)
    }

    /// The name of the `INPUT_*` variable of an input that is set, as GitHub spells it
    /// (`INPUT_SECRET_NAME`, or with hyphens `INPUT_SECRET-NAME`).
    pub fn input_var(&self, name: &str) -> Option<String> {
        let upper = name.to_ascii_uppercase();
        [format!("INPUT_{upper}"), format!("INPUT_{}", upper.replace('_', "-"))]
            .into_iter()
            .find(|k| self.get(k).is_some())
    }

    /// True when the variable is `true` (any case) or `1`.
    pub fn is_true(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_variables_but_never_prints_a_value() {
        let env = Env::from_pairs([("INPUT_REFRESH_TOKEN", "r1-never-printed-0123"), ("HOME", "/root")]);
        let printed = format!("{env:?}");
        assert!(printed.contains("INPUT_REFRESH_TOKEN"), "{printed}");
        assert!(!printed.contains("r1-never-printed"), "{printed}");
        assert!(!printed.contains("/root"), "{printed}");
    }

    #[test]
    fn input_variables_take_both_spellings_and_empty_is_unset() {
        let env = Env::from_pairs([("INPUT_SECRET-NAME", "FOO"), ("INPUT_SCOPE", "")]);
        assert_eq!(env.input_var("secret_name").as_deref(), Some("INPUT_SECRET-NAME"));
        assert_eq!(env.input_var("scope"), None);
    }
}
