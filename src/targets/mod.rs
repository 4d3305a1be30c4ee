//! Targets: where a rotated value is written. The engine knows only the [`Target`] trait; the
//! config assembler knows each target by its [`TargetKind`], listed in the registry.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::InputError;
use crate::http::{Http, Response};
use crate::inputs::{Field, Fields};
use crate::providers::Provider;
use crate::secret::Secret;
use crate::services::Services;

pub mod aws_secrets_manager;
pub mod github;
pub mod gitlab;
pub mod vault_kv;

/// What the config assembler knows of a target: its name, its settings, and how to build it.
#[derive(Debug)]
pub struct TargetKind {
    /// `github`: the `target` input's value.
    pub name: &'static str,
    /// The key of a config file's target entry (`- github: { ... }`).
    pub key: &'static str,
    /// The variable (set to `true`) of the CI system where this is the default single target.
    pub default_in: Option<&'static str>,
    /// Its inputs and config keys (owned by it).
    pub fields: &'static [Field],
    /// Validates one target entry (in single-rotation mode, the target inputs, which may
    /// describe more than one target) into targets.
    pub parse: fn(&Fields, &TargetContext) -> Result<Vec<Planned>, InputError>,
}

/// What a target's validation may know of its rotation.
pub struct TargetContext<'a> {
    /// The run's services.
    pub services: &'a Services<'a>,
    /// The rotation's provider, validated.
    pub provider: &'a dyn Provider,
    /// The value this target receives (`value:`; the rotated credential by default).
    pub value: ValueKind,
    /// The rotation's name; empty in single-rotation mode before its default is known.
    pub rotation: &'a str,
}

/// Which value a target receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// The rotated credential (new refresh token): its current value is known.
    Credential,
    /// The new access token: not known before the rotation.
    AccessToken,
}

impl ValueKind {
    /// The config spelling, for a provider whose credential is called `credential`.
    pub fn label(self, credential: &'static str) -> &'static str {
        match self {
            ValueKind::Credential => credential,
            ValueKind::AccessToken => "access_token",
        }
    }
}

/// A target of a rotation, with the value it receives.
#[derive(Clone)]
pub struct Planned {
    /// Which value.
    pub value: ValueKind,
    /// Where.
    pub target: Arc<dyn Target>,
}

/// Why a target could not be read or written. The message names the target and says what
/// the server answered (minus any secret) and, where it can, how to fix it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);

/// An API's refusal as a target error: the target, what was asked, the status, the API's own
/// message, and (from `hint`) what that status usually means for this service.
pub fn status_error(r: &Response, what: &str, target: &str, hint: fn(u16) -> &'static str) -> TargetError {
    let status = r.status.as_u16();
    TargetError(format!("{target}: {what} answered HTTP {status}: {}{}", r.message(), hint(status)))
}

/// The result of a write: attempts made and the final result.
#[derive(Debug)]
pub struct Written {
    /// HTTP attempts made for the write itself.
    pub attempts: u32,
    /// Ok, or why it failed for good.
    pub result: Result<(), TargetError>,
    /// The write failed without an answer to it (a timeout, a dropped connection): it may have
    /// landed, so the target may hold the new value. False when it was refused or never sent.
    pub unanswered: bool,
}

/// What the preflight is asked to prove.
#[derive(Debug, Clone, Copy)]
pub struct Proof<'a> {
    /// The value to re-write (the current credential), or `None` when the value is not known yet
    /// (an access token): then only access is proven.
    pub current: Option<&'a Secret>,
    /// The rotation's credential as it is now (see [`Target::write`]).
    pub live: &'a Secret,
    /// Create and change nothing: report what would be created.
    pub dry_run: bool,
    /// When this job received its secrets, at the latest. A target updated after that holds a
    /// value newer than `current` (another run stored it): re-writing `current` would put an
    /// older credential over a newer one, so the preflight refuses.
    pub received_at: jiff::Timestamp,
}

/// The preflight's refusal of a target that was updated after this job received its secrets.
pub fn newer_than_ours(target: &str, updated_at: jiff::Timestamp, received_at: jiff::Timestamp) -> TargetError {
    TargetError(format!(
        "{target} was updated at {updated_at}, after this job received its secrets ({}): another run has most likely \
         rotated it already, and re-writing the value this job holds would put an older credential over the newer \
         one. Nothing was written or rotated. Make sure two runs cannot overlap (GitHub: concurrency:; GitLab: \
         resource_group)",
        crate::report::seconds(received_at)
    ))
}

/// What the preflight found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepared {
    /// The target is proven writable (and holds the current value, when it is known).
    Ready,
    /// A dry run: the target does not exist yet and would be created; it was not.
    WouldCreate,
}

/// Why a value cannot be stored in a target (its size, its format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueProblem {
    /// What is wrong with it: `is 49153 bytes, over GitHub's 48 KB secret limit`.
    pub problem: String,
    /// How to fix it, when the value is the current one and the target setting can change.
    pub fix: &'static str,
}

/// What a target says of the value it stores, for `status`: read, never written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// It exists and was last updated then.
    UpdatedAt(jiff::Timestamp),
    /// It exists, and the target keeps no update time (a GitLab variable).
    NoUpdateTime,
    /// The target keeps no update time, and whether the value exists was not read either.
    Unknown,
    /// It does not exist (yet): the next rotation creates it.
    Missing,
}

/// A place where a value is stored. The value is the validated settings; every call gets
/// the run's HTTP client.
#[async_trait]
pub trait Target: Send + Sync {
    /// `github`, `gitlab`.
    fn kind(&self) -> &'static str;
    /// Human description: `acme/app secret FOO`.
    fn describe(&self) -> String;
    /// The target's own name (`FOO`), from which a single rotation takes its default name.
    fn name_hint(&self) -> String;
    /// What makes two targets the same place (flags aside).
    fn identity(&self) -> String {
        format!("{} {}", self.kind(), self.describe())
    }
    /// The secrets this target authenticates with that the plan fixes (a writer token; not the
    /// rotation's own credential, which its provider names), so the plan can refuse a run in
    /// which another rotation revokes one of them.
    fn authenticates_with(&self) -> Vec<&Secret> {
        Vec::new()
    }
    /// Why `value` cannot be stored here, checked before anything is rotated.
    fn check_value(&self, value: &Secret) -> Result<(), ValueProblem>;
    /// When the target keeps no update time, why `min_age` cannot use it.
    fn without_update_time(&self) -> Option<&'static str> {
        None
    }
    /// When the stored value was last updated: `None` when the target does not exist yet.
    /// `live` is the rotation's credential as it is now (see [`Target::write`]).
    async fn updated_at(&self, http: &Http, live: &Secret) -> Result<Option<jiff::Timestamp>, TargetError>;
    /// What `status` reports of the stored value, with reads only. The default asks
    /// [`Target::updated_at`], or, when the target keeps no update time, says so without a
    /// request; a target that can tell more (that the value exists) overrides it.
    async fn stored(&self, http: &Http, live: &Secret) -> Result<Stored, TargetError> {
        if self.without_update_time().is_some() {
            return Ok(Stored::Unknown);
        }
        Ok(match self.updated_at(http, live).await? {
            Some(at) => Stored::UpdatedAt(at),
            None => Stored::Missing,
        })
    }
    /// Proves the target writable: re-writes `proof.current` (creating the target when
    /// missing), or, when the value is not known yet, proves it reachable. With `dry_run` nothing
    /// is created. A target that keeps an update time refuses to re-write a value older than
    /// the one it holds ([`newer_than_ours`]).
    async fn preflight(&self, http: &Http, proof: Proof<'_>) -> Result<Prepared, TargetError>;
    /// Just before `rotation`'s rotate request: waits until a budget the write shares with
    /// other requests (GitHub's rate limits) has room for it, here, where waiting costs nothing,
    /// rather than after the credential is spent. An error stops the rotation before it starts.
    async fn reserve(&self, _http: &Http, _rotation: &str) -> Result<(), TargetError> {
        Ok(())
    }
    /// After `rotation`, whatever its outcome: forgets what [`Target::reserve`] counted.
    fn release(&self, _rotation: &str) {}
    /// Writes `value`, retrying as the server allows. `live` is the rotation's credential as it
    /// is now: the new one after a rotation. A target that authenticates with the very token
    /// being rotated (a GitLab token writing its own variable) uses it, as the old one is dead.
    async fn write(&self, http: &Http, value: &Secret, live: &Secret) -> Written;
}

/// Refuses, before anything is rotated, a target that cannot hold the current credential.
pub fn check_current(f: &Fields, field: &Field, target: &dyn Target, ctx: &TargetContext) -> Result<(), InputError> {
    if ctx.value != ValueKind::Credential {
        return Ok(());
    }
    match target.check_value(ctx.provider.current()) {
        Ok(()) => Ok(()),
        Err(p) => Err(f.error(field, format!("the current credential {}{}", p.problem, p.fix))),
    }
}
