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
    /// The rotations to run, in order (the report keeps it).
    pub rotations: Vec<Rotation>,
    /// How many rotations run at once (`parallel_rotations`).
    pub parallel: usize,
    /// What `status` judges each rotation by: one per rotation, in the same order.
    pub freshness: Vec<Freshness>,
    /// Total time allowed for one HTTP request.
    pub timeout: Duration,
    /// Extra CA certificates (PEM), from `--ca-file`.
    pub ca_pem: Option<Vec<u8>>,
    /// Where to send an alert after the run, and on which outcomes.
    pub alert: Option<crate::alert::Alert>,
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

/// How fresh a rotation's credential should be: what `status` judges it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// The rotation skips a credential younger than this: it is due once this old.
    pub min_age: Option<Duration>,
    /// Older than this, it is overdue (the rotation has stopped running or keeps failing).
    pub max_age: Option<Duration>,
    /// A credential that expires within this is expiring.
    pub warn_before: Duration,
}
