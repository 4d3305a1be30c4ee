//! The TLS settings of one upstream: the CA certificates it is verified against (instead of
//! the system's, as the Vault CLI's `VAULT_CACERT` does) and the client certificate it asks for
//! (mutual TLS). Read and validated when the plan is built, so a bad file is a bad input; the
//! transport builds one client per setting and sends that upstream's requests through it.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::error::InputError;
use crate::secret::Secret;

/// A client certificate chain and its private key (PEM).
pub struct ClientIdentity {
    cert_pem: Vec<u8>,
    key: Secret,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity").field("cert_bytes", &self.cert_pem.len()).finish_non_exhaustive()
    }
}

impl ClientIdentity {
    /// Reads the certificate chain at `cert_path` and checks that it and `key` make a usable
    /// identity (the key is a PEM private key that belongs to the first certificate).
    /// `cert_input` and `key_input` name them in errors.
    pub fn read(cert_input: &str, cert_path: &Path, key_input: &str, key: Secret) -> Result<Self, InputError> {
        let cert_pem = std::fs::read(cert_path)
            .map_err(|e| InputError::new(cert_input, format!("cannot read {}: {e}", cert_path.display())))?;
        match reqwest::Certificate::from_pem_bundle(&cert_pem) {
            Ok(certs) if !certs.is_empty() => {}
            _ => {
                return Err(InputError::new(
                    cert_input,
                    format!("{} holds no PEM certificate: give the client certificate chain", cert_path.display()),
                ))
            }
        }
        if !key.expose().contains("PRIVATE KEY-----") {
            return Err(InputError::new(
                key_input,
                "is not a PEM private key (-----BEGIN PRIVATE KEY----- or RSA/EC PRIVATE KEY): give the client \
                 certificate's key",
            ));
        }
        let id = ClientIdentity { cert_pem, key };
        let usable = id
            .reqwest()
            .and_then(|i| reqwest::Client::builder().identity(i).build().map(drop).map_err(|e| error_text(&e)));
        if let Err(why) = usable {
            return Err(InputError::new(
                key_input,
                format!(
                    "and {cert_input} do not make a client certificate ({why}): the key must be the certificate's, \
                     in PKCS#8, RSA or EC PEM"
                ),
            ));
        }
        Ok(id)
    }

    fn reqwest(&self) -> Result<reqwest::Identity, String> {
        let mut pem = Zeroizing::new(Vec::with_capacity(self.cert_pem.len() + self.key.len() + 1));
        pem.extend_from_slice(self.key.expose().as_bytes());
        pem.push(b'\n');
        pem.extend_from_slice(&self.cert_pem);
        reqwest::Identity::from_pem(&pem).map_err(|e| error_text(&e))
    }
}

fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    crate::secret::redact(&text)
}

/// How one upstream is reached over TLS.
#[derive(Debug)]
pub struct UpstreamTls {
    id: u64,
    ca_pem: Option<Vec<u8>>,
    identity: Option<ClientIdentity>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl UpstreamTls {
    /// The settings: `ca_pem` replaces the system's CA certificates for this upstream, and
    /// `identity` is presented when the server asks for a client certificate. `None` when both are
    /// absent (the run's default client serves).
    pub fn new(ca_pem: Option<Vec<u8>>, identity: Option<ClientIdentity>) -> Option<Arc<UpstreamTls>> {
        if ca_pem.is_none() && identity.is_none() {
            return None;
        }
        Some(Arc::new(UpstreamTls { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), ca_pem, identity }))
    }

    /// True when a client certificate is presented.
    pub fn has_identity(&self) -> bool {
        self.identity.is_some()
    }

    /// True when the upstream is verified against its own CA certificates only.
    pub fn has_ca(&self) -> bool {
        self.ca_pem.is_some()
    }

    /// What tells one setting's client from another's.
    pub(super) fn id(&self) -> u64 {
        self.id
    }

    /// The client builder with these settings applied.
    pub(super) fn apply(&self, mut builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, String> {
        if let Some(pem) = &self.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("CA certificates: {e}"))?;
            builder = builder.tls_certs_only(certs);
        }
        if let Some(id) = &self.identity {
            builder = builder.identity(id.reqwest()?);
        }
        Ok(builder)
    }
}

/// Reads a PEM file of CA certificates, refusing one that holds none.
pub fn read_ca(input: &str, path: &Path) -> Result<Vec<u8>, InputError> {
    let pem =
        std::fs::read(path).map_err(|e| InputError::new(input, format!("cannot read {}: {e}", path.display())))?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(certs) if !certs.is_empty() => Ok(pem),
        _ => Err(InputError::new(input, format!("{} holds no PEM certificate", path.display()))),
    }
}
