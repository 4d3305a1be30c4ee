//! The run's own settings: the request timeout, extra CA certificates, the default rescue
//! recipient (from the inputs, or the config file's top level).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use super::{CA_FILE, DEFAULT_TIMEOUT, HTTP, RESCUE_RECIPIENT, TIMEOUT};
use crate::error::InputError;
use crate::inputs::{label, parse_duration, Fields, Inputs};

/// The run's own settings: the request timeout, extra CAs, the default rescue recipient.
pub(super) struct RunSettings {
    pub(super) timeout: Duration,
    pub(super) ca_pem: Option<Vec<u8>>,
    pub(super) rescue: Option<age::x25519::Recipient>,
}

pub(super) fn run_settings(inputs: &Inputs, top: Option<&Fields>) -> Result<RunSettings, InputError> {
    let http = match top {
        Some(t) => t.section(&HTTP)?,
        None => None,
    };
    if let Some(h) = &http {
        h.finish(&[TIMEOUT], &[])?;
    }
    let timeout = match (inputs.get(TIMEOUT.input), &http) {
        (Some(t), _) => parse_duration(&label(TIMEOUT.input), t)?,
        (None, Some(h)) => match h.str(&TIMEOUT)? {
            Some(t) => parse_duration(&h.label(&TIMEOUT), &t)?,
            None => DEFAULT_TIMEOUT,
        },
        (None, None) => DEFAULT_TIMEOUT,
    };
    if timeout.is_zero() || timeout > Duration::from_secs(600) {
        return Err(InputError::new(label(TIMEOUT.input), "must be between 1s and 10m"));
    }
    let ca_pem = match inputs.get(CA_FILE.input) {
        Some(path) => Some(read_ca(&label(CA_FILE.input), Path::new(path))?),
        None => None,
    };
    let rescue = match (inputs.get(RESCUE_RECIPIENT.input), top) {
        (Some(r), _) => Some(parse_recipient(&label(RESCUE_RECIPIENT.input), r)?),
        (None, Some(t)) => match t.str(&RESCUE_RECIPIENT)? {
            Some(r) => Some(parse_recipient(&t.label(&RESCUE_RECIPIENT), &r)?),
            None => None,
        },
        (None, None) => None,
    };
    Ok(RunSettings { timeout, ca_pem, rescue })
}

pub(super) fn parse_recipient(input: &str, s: &str) -> Result<age::x25519::Recipient, InputError> {
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
