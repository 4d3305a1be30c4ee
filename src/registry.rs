//! The registry: the one place that lists the providers, targets and services. Adding one is
//! adding its module and a line here.

use crate::inputs::Field;
use crate::providers::{gitlab_token, oauth2, ProviderKind};
use crate::services::{github::Github, gitlab::Gitlab, Service};
use crate::targets::{github, gitlab, TargetKind};

/// Every provider.
pub const PROVIDERS: &[&ProviderKind] = &[&oauth2::KIND, &gitlab_token::KIND];

/// Every target.
pub const TARGETS: &[&TargetKind] = &[&github::KIND, &gitlab::KIND];

/// Every service: its config section key and its settings.
pub const SERVICES: &[(&str, &[Field])] = &[(Github::KEY, Github::FIELDS), (Gitlab::KEY, Gitlab::FIELDS)];

/// The provider named `name`.
pub fn provider(name: &str) -> Option<&'static ProviderKind> {
    PROVIDERS.iter().copied().find(|p| p.name == name)
}

/// The target named `name` (the `target` input).
pub fn target(name: &str) -> Option<&'static TargetKind> {
    TARGETS.iter().copied().find(|t| t.name == name)
}

/// Every field the modules declare: providers', targets', services'.
pub fn fields() -> impl Iterator<Item = &'static Field> {
    PROVIDERS
        .iter()
        .flat_map(|p| p.fields.iter())
        .chain(TARGETS.iter().flat_map(|t| t.fields.iter()))
        .chain(SERVICES.iter().flat_map(|(_, f)| f.iter()))
}
