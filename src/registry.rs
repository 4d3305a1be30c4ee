//! The registry: the one place that lists the providers, targets and services. Adding one is
//! adding its module and a line here.

use crate::inputs::Field;
use crate::providers::{self, ProviderKind};
use crate::services::{self, Service};
use crate::targets::{self, TargetKind};

/// Every provider.
pub const PROVIDERS: &[&ProviderKind] = &[
    &providers::oauth2::KIND,
    &providers::gitlab_token::KIND,
    &providers::vault_token::KIND,
    &providers::vault_approle::KIND,
];

/// Every target.
pub const TARGETS: &[&TargetKind] =
    &[&targets::github::KIND, &targets::gitlab::KIND, &targets::vault_kv::KIND, &targets::aws_secrets_manager::KIND];

/// Every service: its config section key and its settings.
pub const SERVICES: &[(&str, &[Field])] = &[
    (targets::github::Github::KEY, targets::github::Github::FIELDS),
    (services::gitlab::Gitlab::KEY, services::gitlab::Gitlab::FIELDS),
    (services::vault::Vault::KEY, services::vault::Vault::FIELDS),
];

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
