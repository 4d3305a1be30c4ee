//! Providers: where a credential is rotated. The engine knows only the [`Provider`] trait.

use async_trait::async_trait;

use crate::config::plan::ProviderSpec;
use crate::http::Http;
use crate::secret::Secret;

pub mod gitlab_token;
pub mod oauth2;

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
}

/// A place where a credential is rotated.
#[async_trait]
pub trait Provider: Send + Sync {
    /// `oauth2`, `gitlab-token`.
    fn kind(&self) -> &'static str;
    /// The current credential (what the targets hold now).
    fn current(&self) -> &Secret;
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
}

/// Makes the provider a plan describes.
pub fn build(spec: &ProviderSpec) -> Box<dyn Provider> {
    match spec {
        ProviderSpec::OAuth2(s) => Box::new(oauth2::OAuth2::new(s)),
        ProviderSpec::GitlabToken(s) => Box::new(gitlab_token::GitlabToken::new(s)),
    }
}
