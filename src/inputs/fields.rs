//! Reading declared [`Field`]s from wherever they were given: the single-rotation inputs, or
//! one section of the config file. A module reads its settings through [`Fields`] alone, so
//! one validation serves both, and every error names the field as the user spelled it
//! (`input token_url`, `rotations[0].provider.token_url`).

use serde_norway::{Mapping, Value};
use zeroize::Zeroize;

use super::checks::{resolve, SecretSource};
use super::env::Env;
use super::table::{label, Field, Inputs, SecretInput};
use crate::error::InputError;
use crate::secret::Secret;

/// A parsed config file. Every string in it is zeroized when it is dropped: a literal secret
/// someone wrote there (refused) does not outlive the run in memory.
pub struct Document {
    root: Value,
}

impl Document {
    /// Parses YAML text; `source` names the file in errors.
    pub fn parse(text: &str, source: &str) -> Result<Document, InputError> {
        let root: Value = serde_norway::from_str(text).map_err(|e| {
            InputError::new(format!("config file {source}"), format!("{e}; see the README's config section"))
        })?;
        let doc = Document { root };
        if !doc.root.is_mapping() {
            return Err(InputError::new(
                format!("config file {source}"),
                "is not a mapping of settings (github:, rotations:, ...); see the README's config section",
            ));
        }
        Ok(doc)
    }

    /// The top level.
    pub fn root(&self) -> Option<&Mapping> {
        self.root.as_mapping()
    }
}

impl Drop for Document {
    fn drop(&mut self) {
        scrub(&mut self.root);
    }
}

fn scrub(v: &mut Value) {
    match v {
        Value::String(s) => s.zeroize(),
        Value::Sequence(items) => items.iter_mut().for_each(scrub),
        Value::Mapping(m) => m.iter_mut().for_each(|(_, v)| scrub(v)),
        Value::Tagged(t) => scrub(&mut t.value),
        _ => {}
    }
}

enum From<'a> {
    Inputs(&'a Inputs),
    Yaml { map: Option<&'a Mapping>, at: String },
}

/// One place settings are read from: the inputs, or one mapping of the config file.
pub struct Fields<'a> {
    from: From<'a>,
    env: &'a Env,
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "empty",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

impl<'a> Fields<'a> {
    /// The single-rotation inputs.
    pub fn inputs(inputs: &'a Inputs, env: &'a Env) -> Self {
        Fields { from: From::Inputs(inputs), env }
    }

    /// A mapping of the config file (`None`: the section is absent), named `at` in errors.
    pub fn yaml(map: Option<&'a Mapping>, at: impl Into<String>, env: &'a Env) -> Self {
        Fields { from: From::Yaml { map, at: at.into() }, env }
    }

    /// True in single-rotation mode.
    pub fn is_inputs(&self) -> bool {
        matches!(self.from, From::Inputs(_))
    }

    /// The environment the run was given.
    pub fn env(&self) -> &'a Env {
        self.env
    }

    /// How this place is named in errors (`rotations[0].targets[1]`).
    pub fn at(&self) -> String {
        match &self.from {
            From::Inputs(_) => "inputs".to_owned(),
            From::Yaml { at, .. } => at.clone(),
        }
    }

    /// How `f` is named in errors.
    pub fn label(&self, f: &Field) -> String {
        match &self.from {
            From::Inputs(_) => label(if f.input.is_empty() { f.key } else { f.input }),
            From::Yaml { at, .. } => self.key_label(at, f.key),
        }
    }

    fn key_label(&self, at: &str, key: &str) -> String {
        if at.is_empty() {
            key.to_owned()
        } else {
            format!("{at}.{key}")
        }
    }

    /// An error about `f`.
    pub fn error(&self, f: &Field, message: impl Into<String>) -> InputError {
        InputError::new(self.label(f), message)
    }

    fn value(&self, f: &Field) -> Option<&'a Value> {
        match &self.from {
            From::Yaml { map: Some(m), .. } if !f.key.is_empty() => m.get(f.key).filter(|v| !v.is_null()),
            _ => None,
        }
    }

    /// True when `f` is given at all.
    pub fn is_set(&self, f: &Field) -> bool {
        match &self.from {
            From::Inputs(i) => !f.input.is_empty() && i.is_set(f.input),
            From::Yaml { .. } => self.value(f).is_some(),
        }
    }

    /// A text value (a YAML number is taken as its text: ids are often unquoted).
    pub fn str(&self, f: &Field) -> Result<Option<String>, InputError> {
        match &self.from {
            From::Inputs(i) => Ok((!f.input.is_empty()).then(|| i.get(f.input).map(str::to_owned)).flatten()),
            From::Yaml { .. } => match self.value(f) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Number(n)) => Ok(Some(n.to_string())),
                Some(other) => Err(self.error(f, format!("must be text, not {}", kind_of(other)))),
            },
        }
    }

    /// `true` or `false`.
    pub fn bool(&self, f: &Field) -> Result<Option<bool>, InputError> {
        match &self.from {
            From::Inputs(i) if f.input.is_empty() => Ok(None),
            From::Inputs(i) => i.bool(f.input),
            From::Yaml { .. } => match self.value(f) {
                None => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(*b)),
                Some(_) => Err(self.error(f, "must be true or false")),
            },
        }
    }

    /// A list: comma-separated as an input, a YAML list (or comma-separated text) in the file.
    pub fn list(&self, f: &Field) -> Result<Option<Vec<String>>, InputError> {
        let split = |s: &str| s.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect();
        match (&self.from, self.value(f)) {
            (From::Inputs(_), _) => Ok(self.str(f)?.map(|s| split(&s))),
            (_, None) => Ok(None),
            (_, Some(Value::String(s))) => Ok(Some(split(s))),
            (_, Some(Value::Sequence(items))) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(self.error(f, format!("must be a list of names, not of {}", kind_of(other)))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            (_, Some(other)) => Err(self.error(f, format!("must be a list, not {}", kind_of(other)))),
        }
    }

    /// A secret: `INPUT_NAME` or `--name-file` as an input; `{ env: NAME }` or `{ file: PATH }`
    /// in the file (a literal is refused, and never repeated in the error).
    pub fn secret(&self, f: &Field) -> Result<Option<Secret>, InputError> {
        let source = match &self.from {
            From::Inputs(i) => match (!f.input.is_empty()).then(|| i.secret(f.input)).flatten() {
                None => return Ok(None),
                Some(SecretInput::Value(v)) => SecretSource::Value(v.clone()),
                Some(SecretInput::File(p)) => SecretSource::File(p.clone()),
            },
            From::Yaml { .. } => match self.value(f) {
                None => return Ok(None),
                Some(Value::String(_)) => SecretSource::Literal,
                Some(Value::Mapping(m)) => {
                    let only = |k: &str| m.len() == 1 && m.get(k).is_some();
                    match (m.get("env").and_then(Value::as_str), m.get("file").and_then(Value::as_str)) {
                        (Some(e), None) if only("env") => SecretSource::Env(e.to_owned()),
                        (None, Some(p)) if only("file") => SecretSource::File(p.into()),
                        _ => SecretSource::Ambiguous,
                    }
                }
                Some(_) => SecretSource::Ambiguous,
            },
        };
        resolve(&self.label(f), &source, self.env).map(Some)
    }

    /// A nested mapping (`github.app`, `verify`), or `None` when absent or in input mode.
    pub fn section(&self, f: &Field) -> Result<Option<Fields<'a>>, InputError> {
        let From::Yaml { at, .. } = &self.from else { return Ok(None) };
        match self.value(f) {
            None => Ok(None),
            Some(Value::Mapping(m)) => Ok(Some(Fields::yaml(Some(m), self.key_label(at, f.key), self.env))),
            Some(other) => Err(self.error(f, format!("must be a mapping (key: value), not {}", kind_of(other)))),
        }
    }

    /// The mappings of a YAML list (`rotations`, `targets`), each named `key[i]`.
    pub fn items(&self, f: &Field) -> Result<Vec<Fields<'a>>, InputError> {
        let From::Yaml { at, .. } = &self.from else { return Ok(Vec::new()) };
        match self.value(f) {
            None => Ok(Vec::new()),
            Some(Value::Sequence(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let name = format!("{}[{i}]", self.key_label(at, f.key));
                    match v {
                        Value::Mapping(m) => Ok(Fields::yaml(Some(m), name, self.env)),
                        other => Err(InputError::new(name, format!("must be a mapping, not {}", kind_of(other)))),
                    }
                })
                .collect(),
            Some(other) => Err(self.error(f, format!("must be a list, not {}", kind_of(other)))),
        }
    }

    /// The keys given here (config file only).
    pub fn keys(&self) -> Vec<String> {
        match &self.from {
            From::Yaml { map: Some(m), .. } => m.keys().map(|k| k.as_str().unwrap_or("?").to_owned()).collect(),
            _ => Vec::new(),
        }
    }

    /// Refuses a config key that is none of `known` (nor of `also`): a typo is named, not ignored.
    pub fn finish(&self, known: &[Field], also: &[&str]) -> Result<(), InputError> {
        let From::Yaml { at, .. } = &self.from else { return Ok(()) };
        let mut allowed: Vec<&str> = known.iter().map(|f| f.key).filter(|k| !k.is_empty()).collect();
        allowed.extend_from_slice(also);
        for k in self.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(InputError::new(
                    self.key_label(at, &k),
                    format!(
                        "is not a setting here: use one of {}; see the README's config section",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TOKEN: Field = Field::secret("refresh_token", "r");
    const NAME: Field = Field::plain("secret_name", "n").key("secret");
    const MASKED: Field = Field::bool("masked", "m");

    fn doc(yaml: &str) -> Document {
        Document::parse(yaml, "c.yml").unwrap()
    }

    proptest! {
        /// Whatever a literal secret in a config file holds, the error never repeats it.
        #[test]
        fn a_literal_secret_is_never_echoed(value in "[A-Za-z0-9_.~+/=-]{12,80}") {
            let d = doc(&format!("refresh_token: '{value}'\n"));
            let env = Env::default();
            let err = Fields::yaml(d.root(), "rotations[0].provider", &env).secret(&TOKEN).unwrap_err();
            prop_assert_eq!(err.input.as_str(), "rotations[0].provider.refresh_token");
            prop_assert!(err.message.contains("literal secret is refused"), "{}", err);
            prop_assert!(!err.to_string().contains(&value));
        }
    }

    #[test]
    fn labels_follow_the_source() {
        let env = Env::default();
        let d = doc("secret: X\n");
        assert_eq!(
            Fields::yaml(d.root(), "rotations[0].targets[1].github", &env).label(&NAME),
            "rotations[0].targets[1].github.secret"
        );
        let inputs = Inputs::default();
        assert_eq!(Fields::inputs(&inputs, &env).label(&NAME), "input secret_name");
    }

    #[test]
    fn yaml_values_are_typed() {
        let env = Env::from_pairs([("RT", "r1-from-env-0123")]);
        let d = doc("secret: 42\nmasked: 'yes'\nrefresh_token: { env: RT }\n");
        let f = Fields::yaml(d.root(), "t", &env);
        assert_eq!(f.str(&NAME).unwrap().as_deref(), Some("42"));
        assert_eq!(f.bool(&MASKED).unwrap_err().to_string(), "t.masked: must be true or false");
        assert_eq!(f.secret(&TOKEN).unwrap().unwrap().expose(), "r1-from-env-0123");
        let both = doc("refresh_token: { env: RT, file: x }\n");
        let err = Fields::yaml(both.root(), "t", &env).secret(&TOKEN).unwrap_err();
        assert!(err.message.contains("exactly one of"), "{err}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let env = Env::default();
        let d = doc("secret: X\nsecrte: Y\n");
        let err = Fields::yaml(d.root(), "rotations[0].targets[0].github", &env).finish(&[NAME], &[]).unwrap_err();
        assert_eq!(err.input, "rotations[0].targets[0].github.secrte");
        assert!(err.message.contains("use one of secret"), "{err}");
    }
}
