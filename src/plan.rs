//! The plan: everything a run does, validated before any request is made. The config
//! assembler builds it; the engine runs it.

use std::time::Duration;

use url::Url;

use crate::providers::Provider;
use crate::targets::Planned;

/// Everything a run does, validated.
pub struct Plan {
    /// Plan and preflight only: nothing is rotated, created or changed.
    pub dry_run: bool,
    /// The rotations to run, in order.
    pub rotations: Vec<Rotation>,
    /// Total time allowed for one HTTP request.
    pub timeout: Duration,
    /// Extra CA certificates (PEM), from `--ca-file`.
    pub ca_pem: Option<Vec<u8>>,
}

/// One rotation.
pub struct Rotation {
    /// Unique name.
    pub name: String,
    /// Skip when the credential (or every target holding it) is younger than this.
    pub min_age: Option<Duration>,
    /// Where the credential is rotated.
    pub provider: Box<dyn Provider>,
    /// GET with the new access token before writing.
    pub verify_url: Option<Url>,
    /// Rescue recipient.
    pub rescue: Option<age::x25519::Recipient>,
    /// Where the new values go.
    pub targets: Vec<Planned>,
}
