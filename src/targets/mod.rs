//! Targets: where a rotated value is written. The engine knows only the [`Target`] trait.

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::plan::{Plan, TargetLocation};
use crate::http::{Http, Response};
use crate::secret::Secret;

pub mod github;
pub mod gitlab;

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
}

/// A place where a value is stored.
#[async_trait]
pub trait Target: Send + Sync {
    /// `github`, `gitlab`.
    fn kind(&self) -> &'static str;
    /// Human description: `acme/app secret FOO`.
    fn describe(&self) -> String;
    /// Why `value` cannot be stored here (size, format), checked before anything is rotated.
    fn check_value(&self, value: &Secret) -> Result<(), String>;
    /// When the stored value was last updated: `None` when the target does not exist yet.
    /// `live` is the rotation's credential as it is now (see [`Target::write`]).
    async fn updated_at(&self, live: &Secret) -> Result<Option<jiff::Timestamp>, TargetError>;
    /// Proves the target writable: re-writes `current` (creating the target when missing), or,
    /// when the value is not known yet, proves it reachable.
    async fn preflight(&self, current: Option<&Secret>, live: &Secret) -> Result<(), TargetError>;
    /// Writes `value`, retrying as the server allows. `live` is the rotation's credential as it
    /// is now: the new one after a rotation. A target that authenticates with the very token
    /// being rotated (a GitLab token writing its own variable) uses it, as the old one is dead.
    async fn write(&self, value: &Secret, live: &Secret) -> Written;
}

/// Makes targets for the locations of a plan, sharing one client (and its caches) per service.
pub struct Factory {
    github: Option<Arc<github::GithubClient>>,
    gitlab: Option<Arc<gitlab::GitlabClient>>,
}

impl Factory {
    /// Prepares clients for the services the plan uses. Makes no request.
    pub fn new(plan: &Plan, http: &Http) -> Self {
        Factory {
            github: plan.github.as_ref().map(|g| Arc::new(github::GithubClient::new(http.clone(), g.clone()))),
            gitlab: plan.gitlab.as_ref().map(|g| Arc::new(gitlab::GitlabClient::new(http.clone(), g.clone()))),
        }
    }

    /// The target at `location`.
    pub fn build(&self, location: &TargetLocation) -> Arc<dyn Target> {
        match location {
            TargetLocation::Github(s) => {
                let client = self.github.clone().expect("the plan has GitHub settings when it has a GitHub target");
                Arc::new(github::GithubTarget::new(client, s.clone()))
            }
            TargetLocation::Gitlab(v) => {
                let client = self.gitlab.clone().expect("the plan has GitLab settings when it has a GitLab target");
                Arc::new(gitlab::GitlabTarget::new(client, v.clone()))
            }
        }
    }
}
