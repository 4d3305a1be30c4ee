//! Services: the connection to a system that several providers or targets share (where it is,
//! how to authenticate, what the run has learned of it), read from its config section
//! (`github:`, `gitlab:`) and the inputs. A service is resolved the first time a selected
//! rotation asks for it, and only then: settings of a system no selected rotation uses are
//! never read, so they cannot fail a run.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use serde_norway::{Mapping, Value};

use crate::error::InputError;
use crate::inputs::{Env, Field, Fields, Inputs};

pub mod aws;
pub mod gitlab;
pub mod vault;

/// A shared connection, built once per run from its section and the inputs.
pub trait Service: Any + Send + Sync + Sized {
    /// Its config section's key (`github`).
    const KEY: &'static str;
    /// Its inputs and config keys.
    const FIELDS: &'static [Field];
    /// Validates the settings, refusing unknown keys: `section` is the config file's section
    /// (`None` in single-rotation mode; empty when the file has none), `inputs` the inputs
    /// (which apply in both modes).
    fn parse(section: Option<&Fields>, inputs: &Fields) -> Result<Self, InputError>;
}

/// A service setting and how the user spelled it: the input when given (inputs apply in both
/// modes), else the config section's key.
pub fn setting(inputs: &Fields, section: Option<&Fields>, f: &Field) -> Result<Option<(String, String)>, InputError> {
    if let Some(v) = inputs.str(f)? {
        return Ok(Some((v, inputs.label(f))));
    }
    match section {
        Some(s) => Ok(s.str(f)?.map(|v| (v, s.label(f)))),
        None => Ok(None),
    }
}

type Resolved = Result<Arc<dyn Any + Send + Sync>, InputError>;

/// The services of one run, resolved on first use.
pub struct Services<'a> {
    root: Option<&'a Mapping>,
    inputs: &'a Inputs,
    env: &'a Env,
    resolved: RefCell<HashMap<TypeId, Resolved>>,
}

impl<'a> Services<'a> {
    /// Services read from the config file's top level (`None` in single-rotation mode) and the inputs.
    pub fn new(root: Option<&'a Mapping>, inputs: &'a Inputs, env: &'a Env) -> Self {
        Services { root, inputs, env, resolved: RefCell::default() }
    }

    /// The service `S`, validated the first time it is asked for.
    pub fn get<S: Service>(&self) -> Result<Arc<S>, InputError> {
        let id = TypeId::of::<S>();
        if !self.resolved.borrow().contains_key(&id) {
            let built = self.build::<S>().map(|s| Arc::new(s) as Arc<dyn Any + Send + Sync>);
            self.resolved.borrow_mut().insert(id, built);
        }
        match &self.resolved.borrow()[&id] {
            Ok(any) => Ok(any.clone().downcast::<S>().expect("resolved under its own type id")),
            Err(e) => Err(e.clone()),
        }
    }

    fn build<S: Service>(&self) -> Result<S, InputError> {
        let section = match self.root.and_then(|r| r.get(S::KEY)) {
            None | Some(Value::Null) => None,
            Some(Value::Mapping(m)) => Some(m),
            Some(_) => return Err(InputError::new(S::KEY, "must be a mapping (key: value)")),
        };
        let inputs = Fields::inputs(self.inputs, self.env);
        match self.root {
            Some(_) => S::parse(Some(&Fields::yaml(section, S::KEY, self.env)), &inputs),
            None => S::parse(None, &inputs),
        }
    }
}
