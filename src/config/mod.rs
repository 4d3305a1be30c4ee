//! The config assembler: reads the single-rotation inputs or the config file and joins what
//! the providers, targets and services validate into one [`Plan`]. It owns only what is
//! common to every rotation (names, `--only`, duplicates, `min_age` and the other freshness
//! settings, `verify_url`, rescue, the run's settings, alerts); every provider- or
//! target-specific rule lives in that module.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::InputError;
use crate::inputs::{check_url, format_duration, label, parse_duration, Document, Env, Field, Fields, Inputs, Owner};
use crate::plan::{Freshness, Plan, Rotation};
use crate::providers::{Provider, ProviderKind};
use crate::registry;
use crate::services::Services;
use crate::targets::{Planned, TargetContext, TargetKind, ValueKind};

mod settings;

use settings::{parse_recipient, run_settings};

/// Default total time for one HTTP request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

const ROTATION: Owner = Owner::Rotation;
const NAME: Field = Field::plain(
    "name",
    "the rotation's name in the report and logs ([a-z0-9-]); default: the secret name, lowercased",
)
.of(ROTATION);
const PROVIDER: Field =
    Field::plain("provider", "where the credential is rotated: oauth2, gitlab-token, vault-token or vault-approle")
        .of(ROTATION);
const TARGET: Field = Field::plain(
    "target",
    "where the new value is written: github, gitlab, vault-kv or aws-secrets-manager (default: github when GITHUB_ACTIONS=true, gitlab when GITLAB_CI=true)",
)
.input_only()
.of(ROTATION);
const TARGETS: Field = Field::plain("targets", "where the new values are written").config_only().of(ROTATION);
const VERIFY_URL: Field =
    Field::plain("verify_url", "GET with the new access token before anything is written; any 2xx passes")
        .input_only()
        .of(ROTATION);
const VERIFY: Field = Field::plain("verify", "check the new access token").config_only().of(ROTATION);
const URL: Field = Field::plain("url", "GET with the new access token; any 2xx passes").config_only().of(ROTATION);
const MIN_AGE: Field =
    Field::plain("min_age", "skip when the secret was updated less than this long ago (20h, 7d)").of(ROTATION);
const MAX_AGE: Field =
    Field::plain("max_age", "status: a credential last rotated longer ago than this is overdue (default: 3 x min_age)")
        .of(ROTATION);
const WARN_BEFORE: Field =
    Field::plain("warn_before", "status: a credential that expires within this is expiring (default: 7d)").of(ROTATION);
const VALUE: Field =
    Field::plain("value", "which value a target receives (refresh_token, access_token)").config_only().of(ROTATION);
const TYPE: Field = Field::plain("type", "the provider").config_only().of(ROTATION);

const RESCUE_RECIPIENT: Field =
    Field::plain("rescue_recipient", "age recipient (age1...) for the rescue file of a value that could not be stored");
const CONFIG: Field = Field::plain("config", "YAML config file with many rotations");
const ONLY: Field = Field::plain("only", "with config: comma-separated rotation names to run");
const DRY_RUN: Field = Field::bool("dry_run", "plan and preflight only");
const LOG_FORMAT: Field = Field::plain("log_format", "text or json (default: text)");
const LOG_LEVEL: Field =
    Field::plain("log_level", "error, warn, info or debug (default: info; debug when RUNNER_DEBUG=1)");
const TIMEOUT: Field = Field::plain("timeout", "total time allowed for one HTTP request (default: 30s)");
const REPORT: Field = Field::plain(
    "report",
    "write the JSON report here (GitHub Actions default: secret-rotator-report.json in the workspace)",
);
const CA_FILE: Field = Field::plain("ca_file", "PEM file with extra CA certificates (also SSL_CERT_FILE)");
const ROTATIONS: Field = Field::plain("rotations", "the rotations").config_only();
const PARALLEL_ROTATIONS: Field =
    Field::plain("parallel_rotations", "how many rotations run at once (1-16, default 4)").config_only();
const HTTP: Field = Field::plain("http", "HTTP settings").config_only();

const ROTATION_KEYS: &[Field] = &[NAME, MIN_AGE, MAX_AGE, WARN_BEFORE, PROVIDER, VERIFY, RESCUE_RECIPIENT, TARGETS];
const TOP_KEYS: &[Field] = &[ROTATIONS, PARALLEL_ROTATIONS, RESCUE_RECIPIENT, HTTP, crate::alert::SECTION];

/// Rotations of a config that run at once unless `parallel_rotations` says otherwise.
pub const DEFAULT_PARALLEL_ROTATIONS: usize = 4;
/// Most rotations that may run at once.
pub const MAX_PARALLEL_ROTATIONS: usize = 16;

/// `warn_before` when it is not given.
pub const DEFAULT_WARN_BEFORE: Duration = Duration::from_secs(7 * 86_400);
/// `max_age` when it is not given: this many times `min_age`.
pub const MAX_AGE_PER_MIN_AGE: u32 = 3;

/// Every input, in the order `--help` shows them: the rotation, its provider and target, the
/// services, then the run's settings. An input several modules declare appears once.
pub fn table() -> Vec<&'static Field> {
    const ROTATION_INPUTS: &[Field] = &[NAME, PROVIDER, TARGET, VERIFY_URL, MIN_AGE, MAX_AGE, WARN_BEFORE];
    const RUN_INPUTS: &[Field] = &[
        RESCUE_RECIPIENT,
        crate::alert::WEBHOOK,
        crate::alert::ON,
        CONFIG,
        ONLY,
        DRY_RUN,
        LOG_FORMAT,
        LOG_LEVEL,
        TIMEOUT,
        REPORT,
        CA_FILE,
    ];
    let mut seen = HashSet::new();
    ROTATION_INPUTS
        .iter()
        .chain(registry::fields())
        .chain(RUN_INPUTS.iter())
        .filter(|f| !f.input.is_empty() && seen.insert(f.input))
        .collect()
}

/// Global settings read before the plan: flags that are not rotation inputs.
#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// `--config`
    pub config: Option<PathBuf>,
    /// `--only`
    pub only: Vec<String>,
    /// `--dry-run`, or the `check` command.
    pub dry_run: bool,
}

/// Builds the plan from the inputs (and the config file they name).
pub fn build(inputs: &Inputs, env: &Env, opts: &RunOptions) -> Result<Plan, InputError> {
    let config_path = opts.config.clone().or_else(|| inputs.get(CONFIG.input).map(PathBuf::from));
    let only = opts
        .only
        .iter()
        .cloned()
        .chain(inputs.get(ONLY.input).into_iter().flat_map(|v| v.split(',').map(|s| s.trim().to_owned())))
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>();
    let dry_run = opts.dry_run || inputs.bool(DRY_RUN.input)?.unwrap_or(false);
    match &config_path {
        Some(path) => {
            if let Some(first) = table().into_iter().find(|f| per_rotation(f) && inputs.is_set(f.input)) {
                return Err(InputError::new(
                    label(first.input),
                    "is not used with config: put it in the config file, or drop config",
                ));
            }
            let text =
                zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    InputError::new(label(CONFIG.input), format!("cannot read {}: {e}", path.display()))
                })?);
            from_yaml(&text, &path.display().to_string(), inputs, env, &only, dry_run)
        }
        None => {
            if !only.is_empty() {
                return Err(InputError::new(label(ONLY.input), "needs config: it selects rotations of a config file"));
            }
            from_inputs(inputs, env, dry_run)
        }
    }
}

/// True for inputs that describe the single rotation (not used with a config file).
fn per_rotation(f: &Field) -> bool {
    matches!(f.owner, Owner::Rotation | Owner::Provider(_) | Owner::Target(_))
}

/// Builds the plan from a config file's text (`source` names it in errors), with the inputs
/// that apply in config mode: what `build` does once it has read the file.
pub fn from_yaml(
    text: &str,
    source: &str,
    inputs: &Inputs,
    env: &Env,
    only: &[String],
    dry_run: bool,
) -> Result<Plan, InputError> {
    let doc = Document::parse(text, source)?;
    from_config(&doc, inputs, env, only, dry_run)
}

fn from_config(doc: &Document, inputs: &Inputs, env: &Env, only: &[String], dry_run: bool) -> Result<Plan, InputError> {
    let top = Fields::yaml(doc.root(), "", env);
    let service_keys: Vec<&str> = registry::SERVICES.iter().map(|(k, _)| *k).collect();
    top.finish(TOP_KEYS, &service_keys)?;
    let settings = run_settings(inputs, Some(&top))?;
    let alert = crate::alert::parse(&Fields::inputs(inputs, env), Some(&top))?;
    let parallel = match top.str(&PARALLEL_ROTATIONS)? {
        None => DEFAULT_PARALLEL_ROTATIONS,
        Some(n) => {
            n.trim().parse::<usize>().ok().filter(|n| (1..=MAX_PARALLEL_ROTATIONS).contains(n)).ok_or_else(|| {
                top.error(
                    &PARALLEL_ROTATIONS,
                    format!("`{n}` is not valid: use a whole number from 1 to {MAX_PARALLEL_ROTATIONS}"),
                )
            })?
        }
    };
    let items = top.items(&ROTATIONS)?;
    if items.is_empty() {
        return Err(InputError::new("rotations", "the config file has no rotations: add at least one"));
    }

    // Names first: `--only` selects before anything else of a rotation is read.
    let mut names = Vec::new();
    for item in &items {
        let name =
            item.str(&NAME)?.ok_or_else(|| item.error(&NAME, "is required: give each rotation a unique name"))?;
        check_name(&item.label(&NAME), &name)?;
        if names.contains(&name) {
            return Err(item.error(&NAME, format!("`{name}` is used by two rotations: names must be unique")));
        }
        names.push(name);
    }
    if let Some(unknown) = only.iter().find(|o| !names.contains(o)) {
        return Err(InputError::new(
            label(ONLY.input),
            format!("no rotation is named `{unknown}`: use names from the config file"),
        ));
    }

    let services = Services::new(doc.root(), inputs, env);
    let mut rotations = Vec::new();
    let mut freshness = Vec::new();
    let mut written = HashSet::new();
    for (item, name) in items.iter().zip(names) {
        if !only.is_empty() && !only.contains(&name) {
            continue;
        }
        item.finish(ROTATION_KEYS, &[])?;
        let provider = config_provider(item, &services)?;
        let targets = config_targets(item, provider.as_ref(), &name, &services)?;
        for t in &targets {
            if !written.insert(t.target.identity()) {
                return Err(item.error(
                    &TARGETS,
                    format!("{} is written twice in one run: each target may appear once", t.target.describe()),
                ));
            }
        }
        let (rotation, fresh) = rotation(item, name, provider, targets, settings.rescue.as_ref())?;
        rotations.push(rotation);
        freshness.push(fresh);
    }
    check_revoked_in_run(&rotations)?;
    Ok(Plan { dry_run, rotations, parallel, freshness, timeout: settings.timeout, ca_pem: settings.ca_pem, alert })
}

/// A credential that one rotation revokes during the run (a Vault token with `grace: 0`, revoked
/// as soon as its own targets hold the new one) may not be what another rotation of the run
/// authenticates with: that one would fail once it is revoked, perhaps after rotating its own
/// credential, whatever the order and parallelism. The rotation's own targets may use it: it is
/// revoked after every one of them is written. Compared by value, in constant time.
fn check_revoked_in_run(rotations: &[Rotation]) -> Result<(), InputError> {
    for (i, r) in rotations.iter().enumerate() {
        let Some((revoked, input)) = r.provider.revoked_in_run() else { continue };
        let users: Vec<(&str, String)> = rotations
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .filter_map(|(_, other)| authenticates_with(other, revoked).map(|how| (other.name.as_str(), how)))
            .collect();
        if users.is_empty() {
            continue;
        }
        let what = r.provider.kind().credential;
        let named: Vec<String> = users.iter().map(|(name, how)| format!("`{name}` ({how})")).collect();
        let names: Vec<String> = users.iter().map(|(name, _)| format!("`{name}`")).collect();
        let (rotation, verb) =
            if users.len() == 1 { ("rotation", "authenticates") } else { ("rotations", "authenticate") };
        return Err(InputError::new(
            input,
            format!(
                "0 revokes the {what} of rotation `{}` as soon as its own targets hold the new one, but {rotation} {} \
                 {verb} with the same {what} and would fail from then on, perhaps after rotating its own credential. \
                 Give {} a {what} of its own, or set this to a duration (the default is 15m): the old {what} then stays \
                 valid through the run, and a later run revokes it",
                r.name,
                named.join(", "),
                names.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Where rotation `r` authenticates with `secret`, if it does: its provider, or one of its targets.
fn authenticates_with(r: &Rotation, secret: &crate::secret::Secret) -> Option<String> {
    if r.provider.authenticates_with().iter().any(|s| s.same_as(secret)) {
        return Some("its provider".to_owned());
    }
    r.targets
        .iter()
        .find(|t| t.target.authenticates_with().iter().any(|s| s.same_as(secret)))
        .map(|t| format!("its target {}", t.target.describe()))
}

fn config_provider(item: &Fields, services: &Services) -> Result<Box<dyn Provider>, InputError> {
    let p = item.section(&PROVIDER)?.ok_or_else(|| {
        item.error(&PROVIDER, format!("is required: a mapping with `type: {}` and its settings", provider_names()))
    })?;
    let kind = p.str(&TYPE)?.ok_or_else(|| p.error(&TYPE, format!("is required: use {}", provider_names())))?;
    let kind = registry::provider(&kind)
        .ok_or_else(|| p.error(&TYPE, format!("`{kind}` is not a provider: use {}", provider_names())))?;
    p.finish(kind.fields, &[TYPE.key])?;
    (kind.parse)(&p, services)
}

fn config_targets(
    item: &Fields,
    provider: &dyn Provider,
    rotation: &str,
    services: &Services,
) -> Result<Vec<Planned>, InputError> {
    let keys: Vec<&str> = registry::TARGETS.iter().map(|t| t.key).collect();
    let entries = item.items(&TARGETS)?;
    if entries.is_empty() {
        return Err(item.error(&TARGETS, "needs at least one target"));
    }
    let mut planned = Vec::new();
    for entry in &entries {
        entry.finish(&[VALUE], &keys)?;
        let given: Vec<&TargetKind> =
            registry::TARGETS.iter().copied().filter(|t| entry.keys().iter().any(|k| k == t.key)).collect();
        let kind = match given.as_slice() {
            [one] => *one,
            [] => {
                let shapes: Vec<String> = keys.iter().map(|k| format!("`{k}: {{ ... }}`")).collect();
                return Err(InputError::new(entry.at(), format!("a target needs {}", shapes.join(" or "))));
            }
            _ => {
                let shapes: Vec<String> = keys.iter().map(|k| format!("`{k}:`")).collect();
                return Err(InputError::new(
                    entry.at(),
                    format!("a target is one of {}, not several", shapes.join(", ")),
                ));
            }
        };
        let value = value_kind(entry, provider.kind())?;
        let fields = entry.section(&Field::plain(kind.key, "").config_only())?;
        let fields =
            fields.ok_or_else(|| InputError::new(entry.at(), format!("`{}:` needs its settings", kind.key)))?;
        fields.finish(kind.fields, &[])?;
        let ctx = TargetContext { services, provider, value, rotation };
        planned.extend((kind.parse)(&fields, &ctx)?);
    }
    Ok(planned)
}

/// `value:` of a target entry: the rotated credential (default), or the access token.
fn value_kind(entry: &Fields, kind: &ProviderKind) -> Result<ValueKind, InputError> {
    match entry.str(&VALUE)? {
        None => Ok(ValueKind::Credential),
        Some(v) if v == kind.credential => Ok(ValueKind::Credential),
        Some(v) if v == "access_token" && kind.issues_access_token => Ok(ValueKind::AccessToken),
        Some(other) => {
            let valid = if kind.issues_access_token {
                format!("{} or access_token", kind.credential)
            } else {
                kind.credential.to_owned()
            };
            Err(entry.error(&VALUE, format!("`{other}` is not a value of provider {}: use {valid}", kind.name)))
        }
    }
}

fn from_inputs(inputs: &Inputs, env: &Env, dry_run: bool) -> Result<Plan, InputError> {
    let settings = run_settings(inputs, None)?;
    let f = Fields::inputs(inputs, env);
    let provider_kind = match inputs.get(PROVIDER.input) {
        None => {
            return Err(f.error(
                &PROVIDER,
                format!("is required: set provider ({}), or give a config file with config", provider_names()),
            ))
        }
        Some(p) => registry::provider(p)
            .ok_or_else(|| f.error(&PROVIDER, format!("`{p}` is not a provider: use {}", provider_names())))?,
    };
    check_applies(inputs, &f, provider_kind, None)?;
    let target_kind = single_target(&f, env)?;
    check_applies(inputs, &f, provider_kind, Some(target_kind))?;

    let given_name = f.str(&NAME)?;
    if let Some(n) = &given_name {
        check_name(&f.label(&NAME), n)?;
    }
    let services = Services::new(None, inputs, env);
    let provider = (provider_kind.parse)(&f, &services)?;
    let rotation_name = given_name.clone().unwrap_or_default();
    let ctx = TargetContext {
        services: &services,
        provider: provider.as_ref(),
        value: ValueKind::Credential,
        rotation: &rotation_name,
    };
    let targets = (target_kind.parse)(&f, &ctx)?;
    let name = match given_name {
        Some(n) => n,
        None => {
            let hint = targets.first().map(|t| t.target.name_hint()).unwrap_or_default();
            let n = hint.to_ascii_lowercase().replace('_', "-");
            check_name(&f.label(&NAME), &n)?;
            n
        }
    };
    let (rotation, fresh) = rotation(&f, name, provider, targets, settings.rescue.as_ref())?;
    let alert = crate::alert::parse(&f, None)?;
    Ok(Plan {
        dry_run,
        rotations: vec![rotation],
        parallel: 1,
        freshness: vec![fresh],
        timeout: settings.timeout,
        ca_pem: settings.ca_pem,
        alert,
    })
}

/// The `target` input, or the CI system the run is in.
fn single_target(f: &Fields, env: &Env) -> Result<&'static TargetKind, InputError> {
    let names: Vec<&str> = registry::TARGETS.iter().map(|t| t.name).collect();
    let by_ci = || registry::TARGETS.iter().copied().find(|t| t.default_in.is_some_and(|v| env.is_true(v)));
    match f.str(&TARGET)? {
        Some(t) => registry::target(&t)
            .ok_or_else(|| f.error(&TARGET, format!("`{t}` is not a target: use {}", names.join(" or ")))),
        None => by_ci().ok_or_else(|| {
            f.error(
                &TARGET,
                format!("is required outside GitHub Actions and GitLab CI: set target to {}", names.join(" or ")),
            )
        }),
    }
}

/// An input that belongs to another provider or target than the chosen ones is a mistake
/// worth naming (derived from the inputs' owners: an input several modules share applies
/// when any of them is chosen).
/// Without `target`, only the provider's inputs are checked (the target is not known yet).
fn check_applies(
    inputs: &Inputs,
    f: &Fields,
    provider: &ProviderKind,
    target: Option<&TargetKind>,
) -> Result<(), InputError> {
    let all: Vec<&Field> = registry::fields().collect();
    let chosen = |owner: Owner| {
        owner == Owner::Provider(provider.name) || target.is_some_and(|t| owner == Owner::Target(t.name))
    };
    let applies = |name: &str| all.iter().any(|x| x.input == name && chosen(x.owner));
    for field in all.iter().filter(|x| inputs.is_set(x.input) && !applies(x.input)) {
        match (field.owner, target) {
            (Owner::Provider(_), _) => {
                return Err(f.error(field, format!("does not apply to provider {}: drop it", provider.name)))
            }
            (Owner::Target(owner), Some(t)) => {
                return Err(f.error(field, format!("applies to target {owner}, not {}: drop it or set target", t.name)))
            }
            _ => {}
        }
    }
    Ok(())
}

/// What every rotation shares, validated the same way whatever its provider and targets: the
/// rotation, and the freshness settings `status` judges it by.
fn rotation(
    f: &Fields,
    name: String,
    provider: Box<dyn Provider>,
    targets: Vec<Planned>,
    default_rescue: Option<&age::x25519::Recipient>,
) -> Result<(Rotation, Freshness), InputError> {
    let kind = provider.kind();
    let min_age = match f.str(&MIN_AGE)? {
        Some(m) => Some(parse_duration(&f.label(&MIN_AGE), &m)?),
        None => None,
    };
    let fresh = freshness(f, min_age)?;
    let verify_url = verify_url(f, kind)?;
    let rescue = match f.str(&RESCUE_RECIPIENT)?.filter(|_| !f.is_inputs()) {
        Some(r) => Some(parse_recipient(&f.label(&RESCUE_RECIPIENT), &r)?),
        None => default_rescue.cloned(),
    };
    // An age setting needs an age: the credential's own, or the update time of every target of it.
    let given = [(&MIN_AGE, min_age.is_some()), (&MAX_AGE, f.is_set(&MAX_AGE))];
    if let Some((field, _)) = given.into_iter().find(|(_, set)| *set).filter(|_| !kind.knows_own_age) {
        let credential_targets = targets.iter().filter(|t| t.value == ValueKind::Credential);
        if let Some(why) = credential_targets.filter_map(|t| t.target.without_update_time()).next() {
            return Err(f.error(field, why));
        }
    }
    if !targets.iter().any(|t| t.value == ValueKind::Credential) {
        let what = kind.credential;
        return Err(f.error(
            &TARGETS,
            format!("no target receives the rotated {what}: it would be lost; add a target with value {what}"),
        ));
    }
    Ok((Rotation { name, min_age, provider, verify_url, rescue, targets }, fresh))
}

/// `max_age` (default `min_age` x 3; none without `min_age`) and `warn_before` (default 7d).
fn freshness(f: &Fields, min_age: Option<Duration>) -> Result<Freshness, InputError> {
    let given_max = match f.str(&MAX_AGE)? {
        Some(m) => Some(parse_duration(&f.label(&MAX_AGE), &m)?),
        None => None,
    };
    if let Some(max) = given_max {
        if max.is_zero() {
            return Err(f.error(&MAX_AGE, "must be longer than 0s: use about 3 times the rotation's interval"));
        }
        if let Some(min) = min_age.filter(|min| max <= *min) {
            return Err(f.error(
                &MAX_AGE,
                format!(
                    "must be longer than min_age ({}): a credential would be overdue before it is due",
                    format_duration(min)
                ),
            ));
        }
    }
    let warn_before = match f.str(&WARN_BEFORE)? {
        Some(w) => parse_duration(&f.label(&WARN_BEFORE), &w)?,
        None => DEFAULT_WARN_BEFORE,
    };
    let max_age = given_max.or_else(|| min_age.map(|m| m.saturating_mul(MAX_AGE_PER_MIN_AGE)));
    Ok(Freshness { min_age, max_age, warn_before })
}

/// `verify_url` / `verify.url`: only for providers that issue an access token.
fn verify_url(f: &Fields, kind: &ProviderKind) -> Result<Option<url::Url>, InputError> {
    let (url, at) = match f.section(&VERIFY)? {
        _ if f.is_inputs() => (f.str(&VERIFY_URL)?, f.label(&VERIFY_URL)),
        Some(v) => {
            v.finish(&[URL], &[])?;
            (Some(v.str(&URL)?.ok_or_else(|| v.error(&URL, "is required: the URL to GET"))?), v.label(&URL))
        }
        None => (None, String::new()),
    };
    let Some(url) = url else { return Ok(None) };
    let url = check_url(&at, &url)?;
    if !kind.issues_access_token {
        let with_access: Vec<&str> =
            registry::PROVIDERS.iter().filter(|p| p.issues_access_token).map(|p| p.name).collect();
        return Err(InputError::new(
            at,
            format!(
                "applies to {} (it needs an access token); a {} rotation verifies the new {} itself",
                with_access.join(" or "),
                kind.name,
                kind.credential
            ),
        ));
    }
    Ok(Some(url))
}

fn provider_names() -> String {
    registry::PROVIDERS.iter().map(|p| p.name).collect::<Vec<_>>().join(" or ")
}

fn check_name(input: &str, name: &str) -> Result<(), InputError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(InputError::new(input, format!("`{name}` is not valid: use 1-64 of a-z, 0-9 and -")))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn inputs(env: &Env) -> Inputs {
        Inputs::collect(table(), &HashMap::new(), env)
    }

    fn config(yaml: &str) -> (tempfile::TempDir, RunOptions) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yml");
        std::fs::write(&path, yaml).unwrap();
        (dir, RunOptions { config: Some(path), ..RunOptions::default() })
    }

    #[test]
    fn every_input_is_lowercase_underscore_and_listed_once() {
        let names: Vec<&str> = table().iter().map(|f| f.input).collect();
        for n in &names {
            assert!(n.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{n}");
        }
        let unique: HashSet<&&str> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert!(names.contains(&"token_url") && names.contains(&"variable_name") && names.contains(&"github_token"));
    }

    #[test]
    fn an_input_of_another_provider_is_named_before_anything_else() {
        let env = Env::from_pairs([("INPUT_PROVIDER", "gitlab-token"), ("INPUT_TOKEN_URL", "https://x.example")]);
        let err = build(&inputs(&env), &env, &RunOptions::default()).err().unwrap();
        assert_eq!(err.to_string(), "input token_url: does not apply to provider gitlab-token: drop it");
    }

    #[test]
    fn only_reads_nothing_of_the_rotations_it_leaves_out() {
        let yaml = "github: { token: { env: GH } }\nrotations:\n\
            - name: a\n  provider: { type: oauth2, token_url: 'http://nowhere.example', client_id: c, refresh_token: { env: UNSET } }\n  targets: [ { gitlab: { project: x, variable: A } } ]\n\
            - name: b\n  provider: { type: oauth2, token_url: 'https://auth.example', client_id: c, refresh_token: { env: RT } }\n  targets: [ { github: { repository: acme/app, secret: B } } ]\n";
        let (_dir, mut opts) = config(yaml);
        opts.only = vec!["b".into()];
        let env = Env::from_pairs([
            ("GH", "ghp_0123456789"),
            ("RT", "r1-0123456789"),
            ("CI_SERVER_URL", "http://gl.example"),
        ]);
        let plan = build(&inputs(&env), &env, &opts).unwrap();
        assert_eq!(plan.rotations.len(), 1);
        assert_eq!(plan.rotations[0].name, "b");
        opts.only = vec![];
        let err = build(&inputs(&env), &env, &opts).err().unwrap();
        assert_eq!(err.input, "rotations[0].provider.token_url", "{err}");
    }

    /// The freshness settings of a single oauth2 rotation into GitHub with these extra inputs.
    fn freshness_with(extra: &[(&str, &str)]) -> Result<Freshness, InputError> {
        let base = [
            ("INPUT_PROVIDER", "oauth2"),
            ("INPUT_TARGET", "github"),
            ("INPUT_TOKEN_URL", "https://auth.example"),
            ("INPUT_CLIENT_ID", "c"),
            ("INPUT_REFRESH_TOKEN", "r1-0123456789"),
            ("INPUT_GITHUB_TOKEN", "ghp_0123456789"),
            ("INPUT_REPOSITORY", "acme/app"),
            ("INPUT_SECRET_NAME", "X"),
        ];
        let env = Env::from_pairs(base.iter().chain(extra).copied());
        build(&inputs(&env), &env, &RunOptions::default()).map(|p| p.freshness[0])
    }

    #[test]
    fn max_age_defaults_to_three_times_min_age_and_warn_before_to_a_week() {
        let (hour, day) = (Duration::from_secs(3600), Duration::from_secs(86_400));
        let none = freshness_with(&[]).unwrap();
        assert_eq!(none, Freshness { min_age: None, max_age: None, warn_before: 7 * day });
        let f = freshness_with(&[("INPUT_MIN_AGE", "20h")]).unwrap();
        assert_eq!((f.min_age, f.max_age), (Some(20 * hour), Some(60 * hour)));
        let f =
            freshness_with(&[("INPUT_MIN_AGE", "20h"), ("INPUT_MAX_AGE", "2d"), ("INPUT_WARN_BEFORE", "3d")]).unwrap();
        assert_eq!((f.max_age, f.warn_before), (Some(2 * day), 3 * day));
        let f = freshness_with(&[("INPUT_MAX_AGE", "2d")]).unwrap();
        assert_eq!((f.min_age, f.max_age), (None, Some(2 * day)), "max_age without min_age");
    }

    #[test]
    fn a_token_revoked_mid_run_may_not_authenticate_another_rotation() {
        let yaml = |grace: &str, b_manager: &str| {
            format!(
                "vault: {{ addr: 'https://vault.example.com', token: {{ env: T1 }} }}\nrotations:\n\
                 - name: a\n  provider: {{ type: vault-token, token: {{ env: T1_COPY }}, grace: {grace} }}\n  targets: [ {{ vault_kv: {{ path: ci/a }} }} ]\n\
                 - name: b\n  provider: {{ type: vault-approle, role_name: ci, role_id: r, secret_id: {{ env: SID }}{b_manager} }}\n  targets: [ {{ vault_kv: {{ path: ci/b }} }} ]\n"
            )
        };
        let env = Env::from_pairs([
            ("T1", "s.shared-token-0123456789"),
            ("T1_COPY", "s.shared-token-0123456789"),
            ("T2", "s.other-token-0123456789"),
            ("SID", "secret-id-0123456789"),
        ]);
        let plan = |text: String, only: &[&str]| {
            let (_dir, mut opts) = config(&text);
            opts.only = only.iter().map(|s| s.to_string()).collect();
            build(&inputs(&env), &env, &opts)
        };
        // b manages its secret IDs with vault.token, the very value a revokes: compared by value.
        let err = plan(yaml("0", ""), &[]).err().unwrap();
        assert_eq!(err.input, "rotations[0].provider.grace");
        assert!(err.message.contains("rotation `a`") && err.message.contains("`b` (its provider)"), "{err}");
        assert!(!err.to_string().contains("s.shared-token"), "never the value: {err}");
        // With its own vault_token, b still writes its KV target with vault.token.
        let err = plan(yaml("0", ", vault_token: { env: T2 }"), &[]).err().unwrap();
        assert!(err.message.contains("`b` (its target Vault https://vault.example.com secret secret/ci/b"), "{err}");
        // A grace outlasts the run; a rotation whose own target uses the token is revoked last;
        // a rotation not selected does not run.
        assert!(plan(yaml("15m", ""), &[]).is_ok());
        assert!(plan(yaml("0", ""), &["a"]).is_ok());
    }

    #[test]
    fn a_target_entry_names_one_kind_and_a_known_value() {
        let yaml = "github: { token: { env: GH } }\nrotations:\n- name: a\n  provider: { type: oauth2, token_url: 'https://auth.example', client_id: c, refresh_token: { env: RT } }\n  targets:\n  - { github: { repository: acme/app, secret: A }, value: token }\n";
        let (_dir, opts) = config(yaml);
        let env = Env::from_pairs([("GH", "ghp_0123456789"), ("RT", "r1-0123456789")]);
        let err = build(&inputs(&env), &env, &opts).err().unwrap();
        assert_eq!(
            err.to_string(),
            "rotations[0].targets[0].value: `token` is not a value of provider oauth2: use refresh_token or access_token"
        );
        let (_dir, opts) = config(&yaml.replace("value: token", "gitlab: { project: x, variable: B }"));
        let err = build(&inputs(&env), &env, &opts).err().unwrap();
        assert_eq!(
            err.to_string(),
            "rotations[0].targets[0]: a target is one of `github:`, `gitlab:`, `vault_kv:`, `aws_secrets_manager:`, not several"
        );
    }
}
