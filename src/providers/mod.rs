//! Providers: where a credential is rotated. The engine knows only the [`Provider`] trait; the
//! config assembler knows each provider by its [`ProviderKind`], listed in the registry.

use async_trait::async_trait;

use crate::error::InputError;
use crate::http::Http;
use crate::inputs::{Field, Fields};
use crate::secret::Secret;
use crate::services::Services;

pub mod gitlab_token;
pub mod oauth2;
pub mod vault_approle;
pub mod vault_token;

/// Validates a provider's settings into the provider.
pub type ParseProvider = fn(&Fields, &Services) -> Result<Box<dyn Provider>, InputError>;

/// What the config assembler knows of a provider: its name, its settings, and how to build it.
#[derive(Debug)]
pub struct ProviderKind {
    /// `oauth2`: the `provider` input and the config's `type`.
    pub name: &'static str,
    /// Its inputs and config keys (owned by it).
    pub fields: &'static [Field],
    /// What the rotated credential is called in `value:` and reports (`refresh_token`, `token`).
    pub credential: &'static str,
    /// True when a rotation also issues an access token (targets may take `value: access_token`,
    /// and `verify_url` can use it).
    pub issues_access_token: bool,
    /// True when the check tells the current credential's age (`min_age` needs no target's time).
    pub knows_own_age: bool,
    /// Validates the settings into the provider.
    pub parse: ParseProvider,
}

/// The result of a rotation at the upstream.
#[derive(Debug)]
pub struct Rotated {
    /// The credential to store from now on (the new refresh token, or the old one when the
    /// provider does not rotate it).
    pub credential: Secret,
    /// False when the upstream returned no new credential (the current one stays valid).
    pub changed: bool,
    /// A new access token, when the provider issues one.
    pub access_token: Option<Secret>,
    /// When the new access token (or token) expires, if known.
    pub expires_at: Option<jiff::Timestamp>,
}

/// Why a rotation did not return a new credential.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The upstream rejected the current credential: revoked, expired, or already used. Exit 4.
    #[error("{0}")]
    Rejected(String),
    /// The upstream refused the request before using the credential (bad client, bad scope). Exit 1.
    #[error("{0}")]
    Refused(String),
    /// The upstream failed or did not answer. The current credential may or may not still be
    /// valid (`maybe_consumed`). Exit 1.
    #[error("{message}")]
    Failed {
        /// What happened.
        message: String,
        /// True when the request may have reached the upstream, so the old credential may be dead.
        maybe_consumed: bool,
    },
}

/// What a check of the current credential found (without consuming it).
#[derive(Debug, Default)]
pub struct Checked {
    /// When the current credential was issued, where the upstream says (its age, for `min_age`).
    pub created_at: Option<jiff::Timestamp>,
    /// When the current credential expires, where the upstream says without spending it.
    pub expires_at: Option<jiff::Timestamp>,
}

/// What was done to retire old credentials: what was revoked (by an identifier that is not a
/// credential, such as a Vault accessor) and what could not be.
#[derive(Debug, Default)]
pub struct Retired {
    /// Identifiers of the credentials revoked (never a value).
    pub revoked: Vec<String>,
    /// What could not be revoked, each with how to do it by hand.
    pub failed: Vec<String>,
}

impl Retired {
    /// Adds another's.
    pub fn extend(&mut self, other: Retired) {
        self.revoked.extend(other.revoked);
        self.failed.extend(other.failed);
    }
}

/// A place where a credential is rotated. The value is the validated settings.
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// What kind of provider this is.
    fn kind(&self) -> &'static ProviderKind;
    /// The current credential (what the targets hold now).
    fn current(&self) -> &Secret;
    /// True when the credential itself may write to `service` (a GitLab token writes its own
    /// GitLab variable when no separate writer token is given).
    fn writes_to(&self, _service: &str) -> bool {
        false
    }
    /// The secrets this provider authenticates with (its own credential included), so the plan
    /// can refuse a run in which another rotation revokes one of them ([`Provider::revoked_in_run`]).
    fn authenticates_with(&self) -> Vec<&Secret> {
        Vec::new()
    }
    /// The credential this rotation revokes during the run, as soon as its own targets hold the
    /// new one (a Vault token with `grace: 0`), and the input that makes it so
    /// (`rotations[0].provider.grace`). Every other rotation of the run that authenticates with
    /// the same value would fail from then on, so the plan refuses that.
    fn revoked_in_run(&self) -> Option<(&Secret, &str)> {
        None
    }
    /// Checks the current credential without consuming it, where the upstream can (a rotating
    /// refresh token cannot be checked: using it spends it). Part of the preflight.
    async fn check(&self, _http: &Http) -> Result<Checked, ProviderError> {
        Ok(Checked::default())
    }
    /// Rotates: called at most once per run, and the request is sent once.
    async fn rotate(&self, http: &Http) -> Result<Rotated, ProviderError>;
    /// Checks the new credential before it is written, where the upstream can.
    async fn verify(&self, _http: &Http, _rotated: &Rotated) -> Result<(), String> {
        Ok(())
    }
    /// True when the old credential stays valid until it is revoked (a Vault token or secret
    /// ID). Then nothing is lost when a write fails for good: the targets already written get the
    /// old value back and the new credential is revoked ([`Provider::discard`]); and a new
    /// credential that fails verification is revoked before anything is written.
    fn old_stays_valid(&self) -> bool {
        false
    }
    /// Housekeeping of a run that changes things (never `check` or a dry run): retires earlier
    /// credentials whose overlap (`grace`) has passed. Called once the preflight has passed, before
    /// the rotate request, and when the rotation is skipped as fresh.
    async fn retire_expired(&self, _http: &Http) -> Retired {
        Retired::default()
    }
    /// Called once every target holds the new credential: retires the old one at once when there
    /// is no overlap (else a later run's [`Provider::retire_expired`] does).
    async fn finish(&self, _http: &Http, _rotated: &Rotated) -> Retired {
        Retired::default()
    }
    /// Revokes the new credential (a rollback, or a failed verification), where the old one
    /// stays valid. `Err` says what failed and how to revoke it by hand.
    async fn discard(&self, _http: &Http, _rotated: &Rotated) -> Result<Retired, String> {
        Err("this provider cannot revoke a new credential".to_owned())
    }
    /// Called once the rotation is over, whatever its outcome (a failure at any stage, a dry
    /// run, a skip): gives up what the provider acquired for the run (an AppRole login's token)
    /// and reports what it retired that no other stage reported. A failure here is a warning.
    async fn close(&self, _http: &Http) -> Retired {
        Retired::default()
    }
}
