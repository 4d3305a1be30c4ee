//! The TLS settings an upstream may need: a client certificate (mutual TLS) and its own CA
//! certificates. Single-rotation inputs `client_cert` (a path to the PEM chain) and `client_key`
//! (a secret: the PEM key); in a config file a `tls:` mapping on a provider or a connection
//! section: `tls: { client_cert: PATH, client_key: { file: key.pem }, ca_cert: PATH }`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Field, Fields, Owner};
use crate::error::InputError;
use crate::http::tls::read_ca;
use crate::http::{ClientIdentity, UpstreamTls};
use crate::secret::Secret;

const CLIENT_CERT_HELP: &str = "a PEM client certificate chain (path) presented to the upstream that asks for one";
const CLIENT_KEY_HELP: &str = "the client certificate's PEM private key";

/// The inputs and config key of one owner's TLS settings.
#[derive(Debug, Clone, Copy)]
pub struct TlsFields {
    /// `tls:` (config only).
    pub section: Field,
    /// `client_cert` (input only; in the file, inside `tls:`).
    pub client_cert: Field,
    /// `client_key` (input only; in the file, inside `tls:`).
    pub client_key: Field,
}

impl TlsFields {
    /// The fields, owned by `owner`.
    pub const fn of(owner: Owner) -> TlsFields {
        TlsFields {
            section: Field::plain("tls", "TLS settings: client_cert, client_key, ca_cert").config_only().of(owner),
            client_cert: Field::plain("client_cert", CLIENT_CERT_HELP).input_only().of(owner),
            client_key: Field::secret("client_key", CLIENT_KEY_HELP).input_only().of(owner),
        }
    }
}

const CERT_KEY: Field = Field::plain("client_cert", CLIENT_CERT_HELP).config_only();
const KEY_KEY: Field = Field::secret("client_key", CLIENT_KEY_HELP).config_only();
const CA_KEY: Field =
    Field::plain("ca_cert", "PEM CA certificates (path) this upstream is verified against").config_only();

/// What applies when the settings do not say (the Vault CLI's `VAULT_CLIENT_CERT`, ...): each
/// with the name to give in errors.
#[derive(Debug, Default, Clone)]
pub struct TlsDefaults {
    /// A client certificate chain path.
    pub client_cert: Option<(String, PathBuf)>,
    /// A private key path.
    pub client_key: Option<(String, PathBuf)>,
    /// A CA certificates path.
    pub ca_cert: Option<(String, PathBuf)>,
}

/// What was given, before the files are read: `None` when nothing was.
pub struct GivenTls {
    cert: Option<(String, PathBuf)>,
    key: Option<(String, KeySource)>,
    ca: Option<(String, PathBuf)>,
}

enum KeySource {
    Value(Secret),
    File(PathBuf),
}

/// Reads an owner's TLS settings from the inputs, or from its `tls:` mapping; `ca` is the owner's
/// CA input in single-rotation mode, if it has one. Returns what was given (files unread).
pub fn given(f: &Fields, fields: &TlsFields, ca: Option<&Field>) -> Result<GivenTls, InputError> {
    if f.is_inputs() {
        let cert = f.str(&fields.client_cert)?.map(|p| (f.label(&fields.client_cert), PathBuf::from(p)));
        let key = f.secret(&fields.client_key)?.map(|k| (f.label(&fields.client_key), KeySource::Value(k)));
        let ca = match ca {
            Some(c) => f.str(c)?.map(|p| (f.label(c), PathBuf::from(p))),
            None => None,
        };
        return Ok(GivenTls { cert, key, ca });
    }
    let Some(t) = f.section(&fields.section)? else { return Ok(GivenTls { cert: None, key: None, ca: None }) };
    t.finish(&[CERT_KEY, KEY_KEY, CA_KEY], &[])?;
    let cert = t.str(&CERT_KEY)?.map(|p| (t.label(&CERT_KEY), PathBuf::from(p)));
    let key = t.secret(&KEY_KEY)?.map(|k| (t.label(&KEY_KEY), KeySource::Value(k)));
    let ca = t.str(&CA_KEY)?.map(|p| (t.label(&CA_KEY), PathBuf::from(p)));
    Ok(GivenTls { cert, key, ca })
}

impl GivenTls {
    /// True when nothing was given.
    pub fn is_empty(&self) -> bool {
        self.cert.is_none() && self.key.is_none() && self.ca.is_none()
    }

    /// Fills what was not given from `defaults`, reads and checks the files: the upstream's
    /// settings, or `None` when there are none.
    pub fn resolve(self, defaults: TlsDefaults) -> Result<Option<Arc<UpstreamTls>>, InputError> {
        let cert = self.cert.or(defaults.client_cert);
        let key = self.key.or(defaults.client_key.map(|(l, p)| (l, KeySource::File(p))));
        let identity = match (cert, key) {
            (None, None) => None,
            (Some((label, _)), None) => {
                return Err(InputError::new(label, "needs its private key: set client_key too"));
            }
            (None, Some((label, _))) => {
                return Err(InputError::new(label, "needs its certificate: set client_cert too"));
            }
            (Some((cert_label, cert_path)), Some((key_label, key))) => {
                let key = match key {
                    KeySource::Value(s) => s,
                    KeySource::File(p) => read_key(&key_label, &p)?,
                };
                Some(ClientIdentity::read(&cert_label, &cert_path, &key_label, key)?)
            }
        };
        let ca = match self.ca.or(defaults.ca_cert) {
            Some((label, path)) => Some(read_ca(&label, &path)?),
            None => None,
        };
        Ok(UpstreamTls::new(ca, identity))
    }
}

fn read_key(label: &str, path: &Path) -> Result<Secret, InputError> {
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(path).map_err(|e| InputError::new(label, format!("cannot read {}: {e}", path.display())))?,
    );
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| InputError::new(label, format!("file {} is not PEM text", path.display())))?;
    Ok(Secret::new(text.trim()))
}
