//! The rotation engine: the safety protocol, top to bottom, in one place.
//!
//! For each rotation:
//! 1. **check** — the current credential, where the upstream can check it without spending it;
//! 2. **freshness** — with `min_age`, skip when the credential (or every target holding it) is
//!    young enough;
//! 3. **preflight** — prove every target writable (re-write the current value) before the
//!    upstream is touched; any failure stops here with the credential untouched;
//! 4. **rotate** — send the rotate request once; mask the new values at once;
//! 5. **verify** — check the new credential (provider) and access token (`verify_url`);
//! 6. **write** — write every target concurrently (bounded), with retries;
//! 7. **rescue** — a value that could not be stored is age-encrypted to the operator's key;
//! 8. **report** — what happened, with fingerprints, never values.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::config::plan::{Plan, RotationPlan, ValueKind};
use crate::http::Http;
use crate::log::{self, Level};
use crate::providers::{self, ProviderError, Rotated};
use crate::report::{Report, RotationReport, RotationStatus, TargetReport, TargetStatus};
use crate::secret::Secret;
use crate::targets::{Factory, Target, TargetError};

/// What the engine needs from its surroundings.
pub struct Context<'a> {
    /// The HTTP client.
    pub http: &'a Http,
    /// Called with every new secret value before anything else can print it.
    pub mask: &'a (dyn Fn(&Secret) + Sync),
    /// Where rescue files go (the working directory).
    pub rescue_dir: PathBuf,
}

/// A finished run: the report, and the new access token of each rotation (for step outputs).
pub struct Outcome {
    /// The report.
    pub report: Report,
    /// Per rotation: the new access token, if one was issued.
    pub access_tokens: Vec<Option<Secret>>,
}

struct Planned {
    value: ValueKind,
    target: Arc<dyn Target>,
}

/// Runs every rotation of the plan, one after another.
pub async fn run(plan: &Plan, ctx: &Context<'_>) -> Outcome {
    let started_at = now();
    let factory = Factory::new(plan, ctx.http);
    let mut rotations = Vec::new();
    let mut access_tokens = Vec::new();
    for r in &plan.rotations {
        let (report, access) = rotate_one(r, plan.dry_run, &factory, ctx).await;
        let level = match report.status {
            RotationStatus::Rotated | RotationStatus::Skipped | RotationStatus::Planned => Level::Info,
            _ => Level::Error,
        };
        let mut line = report.status.as_str().to_owned();
        if let Some(e) = &report.error {
            line.push_str(&format!(": {e}"));
        }
        log::log(level, Some(&r.name), &line);
        rotations.push(report);
        access_tokens.push(access);
    }
    Outcome {
        report: Report {
            version: crate::report::VERSION,
            started_at,
            finished_at: now(),
            dry_run: plan.dry_run,
            rotations,
        },
        access_tokens,
    }
}

async fn rotate_one(
    plan: &RotationPlan,
    dry_run: bool,
    factory: &Factory,
    ctx: &Context<'_>,
) -> (RotationReport, Option<Secret>) {
    let name = plan.name.as_str();
    let provider = providers::build(&plan.provider);
    let targets: Vec<Planned> =
        plan.targets.iter().map(|t| Planned { value: t.value, target: factory.build(&t.location) }).collect();
    let mut rep = RotationReport {
        name: name.to_owned(),
        provider: provider.kind().to_owned(),
        status: RotationStatus::Failed,
        old_fingerprint: provider.current().fingerprint(),
        new_fingerprint: None,
        expires_at: None,
        rescue_file: None,
        targets: targets
            .iter()
            .map(|p| TargetReport {
                kind: p.target.kind().to_owned(),
                target: p.target.describe(),
                value: p.value.label(provider.kind()).to_owned(),
                status: TargetStatus::Skipped,
                attempts: 0,
                error: None,
            })
            .collect(),
        error: None,
    };

    // 1. Check the current credential, where that does not spend it.
    let checked = match provider.check(ctx.http).await {
        Ok(c) => c,
        Err(e) => {
            rep.status = match &e {
                ProviderError::Rejected(_) => RotationStatus::Rejected,
                _ => RotationStatus::Failed,
            };
            rep.error = Some(format!("preflight failed, nothing was rotated: {e}"));
            return (rep, None);
        }
    };

    // 2. Freshness: the credential's own age where the upstream tells it, else the targets'.
    if let Some(min_age) = plan.min_age {
        let young = |at: jiff::Timestamp| {
            jiff::Timestamp::now().duration_since(at)
                < jiff::SignedDuration::try_from(min_age).unwrap_or(jiff::SignedDuration::MAX)
        };
        let verdict = match checked.created_at {
            Some(at) => Ok(young(at)),
            None => fresh(&targets, provider.current(), young).await,
        };
        match verdict {
            Ok(true) => {
                rep.status = RotationStatus::Skipped;
                rep.error = None;
                log::info_in(name, &format!("the credential is less than {} old: skipped", human(min_age)));
                return (rep, None);
            }
            Ok(false) => {}
            Err(e) => {
                rep.error = Some(format!("preflight failed, nothing was rotated: {e}"));
                return (rep, None);
            }
        }
    }

    // 3. Preflight: every target proven writable before the upstream is touched.
    let results = preflight(&targets, provider.current()).await;
    let mut failures = Vec::new();
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(()) => rep.targets[i].status = if dry_run { TargetStatus::Planned } else { TargetStatus::Skipped },
            Err(e) => {
                rep.targets[i].status = TargetStatus::Failed;
                rep.targets[i].error = Some(e.0.clone());
                failures.push(e.0);
            }
        }
    }
    if !failures.is_empty() {
        rep.error = Some(format!("preflight failed, nothing was rotated: {}", failures.join("; ")));
        return (rep, None);
    }
    log::info_in(name, &format!("preflight: {} target(s) writable", targets.len()));

    if dry_run {
        rep.status = RotationStatus::Planned;
        return (rep, None);
    }
    if ctx.http.shutdown().requested() {
        rep.error = Some("interrupted before the upstream was contacted; nothing was rotated".into());
        return (rep, None);
    }

    // 4. Rotate: the request is sent once.
    let rotated = match provider.rotate(ctx.http).await {
        Ok(r) => r,
        Err(e) => {
            rep.status = match &e {
                ProviderError::Rejected(_) => RotationStatus::Rejected,
                _ => RotationStatus::Failed,
            };
            rep.error = Some(e.to_string());
            return (rep, None);
        }
    };
    if rotated.changed {
        (ctx.mask)(&rotated.credential);
    }
    if let Some(a) = &rotated.access_token {
        (ctx.mask)(a);
    }
    rep.new_fingerprint = Some(rotated.credential.fingerprint());
    rep.expires_at = rotated.expires_at.map(|t| jiff::Timestamp::from_second(t.as_second()).unwrap_or(t).to_string());
    if rotated.changed {
        log::info_in(name, &format!("rotated: {} -> {}", rep.old_fingerprint, rotated.credential.fingerprint()));
    } else {
        log::info_in(name, "the provider issued no new refresh token: the current one stays valid");
    }

    // 5. Verify. The old credential is already spent, so a failure here still writes the new one.
    let verify_error = match provider.verify(ctx.http, &rotated).await {
        Err(e) => Some(e),
        Ok(()) => match (&plan.verify_url, &rotated.access_token) {
            (Some(url), Some(token)) => verify(ctx.http, url, token).await.err(),
            (Some(_), None) => Some("verify_url is set but the provider issued no access token".to_owned()),
            _ => None,
        },
    };
    if let Some(e) = &verify_error {
        log::log(
            Level::Error,
            Some(name),
            &format!("verification failed: {e}; writing the new credential anyway, the old one is no longer valid"),
        );
    }

    // 6. Write.
    let written = write_all(&targets, &rotated).await;
    let mut credential_lost = false;
    let mut failed = Vec::new();
    for (i, w) in written.into_iter().enumerate() {
        let t = &mut rep.targets[i];
        match w {
            None => t.status = TargetStatus::Skipped,
            Some((attempts, Ok(()))) => {
                t.status = TargetStatus::Written;
                t.attempts = attempts;
                log::info_in(name, &format!("wrote {} ({})", t.target, t.value));
            }
            Some((attempts, Err(e))) => {
                t.status = TargetStatus::Failed;
                t.attempts = attempts;
                t.error = Some(e.clone());
                failed.push(e);
                if targets[i].value == ValueKind::Credential {
                    credential_lost = true;
                }
            }
        }
    }

    // 7. Rescue and status.
    if failed.is_empty() {
        rep.status = if verify_error.is_some() { RotationStatus::Failed } else { RotationStatus::Rotated };
        rep.error = verify_error.map(|e| format!("verification failed: {e}; the new credential was stored anyway"));
    } else if rotated.changed {
        rep.status = RotationStatus::Critical;
        let stored: Vec<&str> = rep
            .targets
            .iter()
            .filter(|t| t.status == TargetStatus::Written && t.value == ValueKind::Credential.label(provider.kind()))
            .map(|t| t.target.as_str())
            .collect();
        let mut msg = format!("the new credential could not be stored in every target: {}", failed.join("; "));
        if credential_lost {
            match &plan.rescue {
                Some(recipient) => match crate::crypto::rescue(&ctx.rescue_dir, name, recipient, &rotated.credential) {
                    Ok(path) => {
                        msg.push_str(&format!(
                            ". It was rescued to {} (recover it with `age -d -i KEY {}` and store it by hand)",
                            path.display(),
                            path.display()
                        ));
                        rep.rescue_file = Some(path.display().to_string());
                    }
                    Err(e) => msg.push_str(&format!(". Rescue failed too: {e}")),
                },
                None if stored.is_empty() => msg.push_str(
                    ". It is stored nowhere and no rescue_recipient is set: re-authorize by hand. Set rescue_recipient so this can never lose a credential",
                ),
                None => {}
            }
            if !stored.is_empty() {
                msg.push_str(&format!(". The new credential is stored in: {}", stored.join(", ")));
            }
        }
        if let Some(e) = &verify_error {
            msg.push_str(&format!(". Verification failed too: {e}"));
        }
        rep.error = Some(msg);
    } else {
        rep.status = RotationStatus::Failed;
        rep.error = Some(format!(
            "some targets were not updated (the stored credential is unchanged and valid): {}",
            failed.join("; ")
        ));
    }
    (rep, rotated.access_token)
}

/// True when every credential target exists and was updated recently (`young`).
async fn fresh(
    targets: &[Planned],
    live: &Secret,
    young: impl Fn(jiff::Timestamp) -> bool,
) -> Result<bool, TargetError> {
    for t in targets.iter().filter(|t| t.value == ValueKind::Credential) {
        match t.target.updated_at(live).await? {
            Some(at) if young(at) => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// Preflight every target concurrently; results in target order.
async fn preflight(targets: &[Planned], current: &Secret) -> Vec<Result<(), TargetError>> {
    let mut set = JoinSet::new();
    for (i, p) in targets.iter().enumerate() {
        let target = p.target.clone();
        let value = (p.value == ValueKind::Credential).then(|| current.clone());
        let live = current.clone();
        set.spawn(async move { (i, target.preflight(value.as_ref(), &live).await) });
    }
    let mut out: Vec<Result<(), TargetError>> = (0..targets.len()).map(|_| Ok(())).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, r)) => out[i] = r,
            Err(e) => return out.into_iter().map(|_| Err(TargetError(format!("internal error: {e}")))).collect(),
        }
    }
    out
}

type WriteResult = Option<(u32, Result<(), String>)>;

/// Writes every target concurrently (the target's client bounds requests in flight).
/// `None` for a target that needs no write (its value did not change).
async fn write_all(targets: &[Planned], rotated: &Rotated) -> Vec<WriteResult> {
    let mut out: Vec<WriteResult> = (0..targets.len()).map(|_| None).collect();
    let mut set = JoinSet::new();
    for (i, p) in targets.iter().enumerate() {
        let value = match p.value {
            ValueKind::Credential if !rotated.changed => continue,
            ValueKind::Credential => rotated.credential.clone(),
            ValueKind::AccessToken => match &rotated.access_token {
                Some(a) => a.clone(),
                None => {
                    out[i] = Some((0, Err("the provider issued no access token".to_owned())));
                    continue;
                }
            },
        };
        if let Err(e) = p.target.check_value(&value) {
            out[i] = Some((0, Err(format!("{}: {e}", p.target.describe()))));
            continue;
        }
        let target = p.target.clone();
        let live = rotated.credential.clone();
        set.spawn(async move {
            let w = target.write(&value, &live).await;
            (i, w.attempts, w.result.map_err(|e| e.0))
        });
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, attempts, r)) => out[i] = Some((attempts, r)),
            Err(e) => {
                // A panicked write: every target not yet settled counts as failed.
                for o in out.iter_mut().filter(|o| o.is_none()) {
                    *o = Some((0, Err(format!("internal error: {e}"))));
                }
            }
        }
    }
    out
}

/// GET `url` with the new access token; any 2xx passes.
async fn verify(http: &Http, url: &url::Url, token: &Secret) -> Result<(), String> {
    let at = http.send_idempotent("verify", || http.client().get(url.clone()).bearer_auth(token.expose())).await;
    match at.result {
        Ok(r) if r.status.is_success() => Ok(()),
        Ok(r) => Err(format!("{url} answered HTTP {}", r.status.as_u16())),
        Err(e) => Err(format!("{url}: {e}")),
    }
}

fn now() -> String {
    jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string()
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
