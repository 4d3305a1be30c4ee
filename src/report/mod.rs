//! What a run did: the JSON report (never a value, only fingerprints) and its exit code.

use serde::Serialize;

use crate::error::Exit;

pub mod actions;

/// Report format version.
pub const VERSION: u32 = 1;

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Format version.
    pub version: u32,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    /// Plan and preflight only.
    pub dry_run: bool,
    /// One entry per rotation.
    pub rotations: Vec<RotationReport>,
}

impl Report {
    /// The run's exit code: the most severe of its rotations'.
    pub fn exit(&self) -> Exit {
        self.rotations.iter().fold(Exit::Ok, |acc, r| acc.worst(r.status.exit()))
    }
}

/// One rotation.
#[derive(Debug, Clone, Serialize)]
pub struct RotationReport {
    /// Rotation name.
    pub name: String,
    /// Provider kind.
    pub provider: String,
    /// Outcome.
    pub status: RotationStatus,
    /// Fingerprint of the credential before the run.
    pub old_fingerprint: String,
    /// Fingerprint of the new credential, when one was issued.
    pub new_fingerprint: Option<String>,
    /// Expiry of the new access token (oauth2) or token, RFC 3339.
    pub expires_at: Option<String>,
    /// Path of the rescue file, when one was written.
    pub rescue_file: Option<String>,
    /// Targets.
    pub targets: Vec<TargetReport>,
    /// What went wrong.
    pub error: Option<String>,
    /// Earlier (or discarded) credentials revoked in this run, by an identifier that is not a
    /// credential (a Vault accessor). Absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub revoked: Vec<String>,
    /// Credentials that should have been revoked and could not be, with how to do it by hand.
    /// Absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_revoked: Vec<String>,
}

/// One target of a rotation.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    /// `github`, `gitlab`.
    pub kind: String,
    /// Description, e.g. `acme/app secret FOO`.
    pub target: String,
    /// Which value it receives: `refresh_token` or `access_token`.
    pub value: String,
    /// Outcome.
    pub status: TargetStatus,
    /// HTTP attempts of the final write.
    pub attempts: u32,
    /// What a dry run found (`would create`: the target does not exist yet).
    pub note: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
}

/// A rotation's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RotationStatus {
    /// Rotated and stored everywhere.
    Rotated,
    /// Fresh enough (`min_age`).
    Skipped,
    /// Dry run: would rotate.
    Planned,
    /// Failed safely.
    Failed,
    /// The upstream rejected the current credential.
    Rejected,
    /// A new credential could not be stored everywhere.
    Critical,
}

impl RotationStatus {
    /// The exit code of a rotation with this status.
    pub fn exit(self) -> Exit {
        match self {
            RotationStatus::Rotated | RotationStatus::Skipped | RotationStatus::Planned => Exit::Ok,
            RotationStatus::Failed => Exit::Failed,
            RotationStatus::Rejected => Exit::Rejected,
            RotationStatus::Critical => Exit::Critical,
        }
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            RotationStatus::Rotated => "rotated",
            RotationStatus::Skipped => "skipped",
            RotationStatus::Planned => "planned",
            RotationStatus::Failed => "failed",
            RotationStatus::Rejected => "rejected",
            RotationStatus::Critical => "critical",
        }
    }
}

/// A target's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetStatus {
    /// Holds the new value.
    Written,
    /// Dry run: would be written.
    Planned,
    /// Not written (rotation skipped, stopped earlier, or value unchanged).
    Skipped,
    /// Could not be written.
    Failed,
}

impl TargetStatus {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetStatus::Written => "written",
            TargetStatus::Planned => "planned",
            TargetStatus::Skipped => "skipped",
            TargetStatus::Failed => "failed",
        }
    }
}

/// A timestamp to the whole second, as reports and messages show times.
pub fn seconds(t: jiff::Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// Writes a report (a run's, or the `status` inventory) as pretty JSON, mode 0600, owned by its
/// directory's owner (see [`crate::files`]).
pub fn write_json(path: &std::path::Path, report: &impl Serialize) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    let text = crate::secret::redact(&text);
    use std::io::Write;
    let mut f = crate::files::create_private(path, crate::files::Create::Replace)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")
}
