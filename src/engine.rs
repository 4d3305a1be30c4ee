//! The rotation engine: the safety protocol, top to bottom, in one place.
//!
//! For each rotation ([`rotate_one`] calls one function per stage, in this order):
//! 1. **check** — the current credential, where the upstream can check it without spending it;
//! 2. **freshness** — with `min_age`, skip when the credential (or every target holding it) is
//!    young enough;
//! 3. **preflight** — prove every target writable (re-write the current value) before the
//!    upstream is touched; any failure stops here with the credential untouched. A dry run
//!    stops here too, having created nothing;
//!    Then, in a run that changes things, **retire**: the provider revokes earlier credentials
//!    whose overlap (`grace`) has passed (only after a preflight: it proved every target holds
//!    the current one); and
//!    **reserve**: the targets wait until a shared rate budget has room for the rotation's
//!    writes, now rather than after the credential is spent;
//! 4. **rotate** — send the rotate request once; mask the new values at once;
//! 5. **verify** — check the new credential (provider) and access token (`verify_url`). Where
//!    the old credential stays valid until revoked (Vault), a new one that fails is revoked and
//!    nothing is written;
//! 6. **write** — write every target concurrently (bounded), with retries;
//! 7. **rollback** — where the old credential stays valid, a credential target that failed for
//!    good puts the old value back into every target already written and revokes the new one:
//!    nothing is lost, so the rotation has failed safely;
//! 8. **settle** — decide the outcome; a rotated credential that is stored in fewer targets
//!    than asked (and could not be rolled back) is age-encrypted to the operator's key (rescue).
//!    Stored everywhere: the provider **finishes** (revokes the old credential when there is no
//!    overlap);
//! 9. **close** — whatever the outcome, the provider gives up what it acquired for the run (the
//!    token of an AppRole login is revoked);
//! 10. **report** — what happened, with fingerprints and accessors, never values.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::http::Http;
use crate::log::{self, Level};
use crate::plan::{Plan, Rotation};
use crate::providers::{Checked, ProviderError, Retired, Rotated};
use crate::report::{Report, RotationReport, RotationStatus, TargetReport, TargetStatus};
use crate::secret::Secret;
use crate::targets::{Prepared, Proof, Target, TargetError, ValueKind};

/// What the engine needs from its surroundings.
pub struct Context<'a> {
    /// The HTTP client.
    pub http: &'a Http,
    /// Called with every new secret value before anything else can print it.
    pub mask: &'a (dyn Fn(&Secret) + Sync),
    /// Where rescue files go (the workspace, or the working directory); the report names them
    /// relative to it, as the next step (on the host, for a container action) finds them.
    pub rescue_dir: PathBuf,
    /// When this job received its secrets, at the latest (the process start): a target updated
    /// later holds a newer value than ours, which the preflight must not overwrite.
    pub received_at: jiff::Timestamp,
}

/// A finished run: the report, and the new values of each rotation.
pub struct Outcome {
    /// The report.
    pub report: Report,
    /// Per rotation: the new access token, if one was issued (for step outputs).
    pub access_tokens: Vec<Option<Secret>>,
    /// Every new value of the run, kept (and so known to the redactor) until the outputs are written.
    pub issued: Vec<Secret>,
}

/// Runs every rotation of the plan: up to `plan.parallel` at once (they share the HTTP client and
/// each service's limits), the report in the plan's order. A failed rotation does not stop the
/// others.
pub async fn run(plan: &Plan, ctx: &Context<'_>) -> Outcome {
    use futures_util::stream::{self, StreamExt};

    let started_at = now();
    let finished: Vec<_> = stream::iter(&plan.rotations)
        .map(|r| async move {
            let (report, rotated) = rotate_one(r, plan.dry_run, ctx).await;
            let level = if report.status.exit().code() == 0 { Level::Info } else { Level::Error };
            let mut line = report.status.as_str().to_owned();
            if let Some(e) = &report.error {
                line.push_str(&format!(": {e}"));
            }
            log::log(level, Some(&r.name), &line);
            (report, rotated)
        })
        .buffered(plan.parallel.max(1))
        .collect()
        .await;
    let mut rotations = Vec::new();
    let mut access_tokens = Vec::new();
    let mut issued = Vec::new();
    for (report, rotated) in finished {
        rotations.push(report);
        access_tokens.push(rotated.as_ref().and_then(|r| r.access_token.clone()));
        issued.extend(rotated.into_iter().flat_map(|r| [Some(r.credential), r.access_token]).flatten());
    }
    let report =
        Report { version: crate::report::VERSION, started_at, finished_at: now(), dry_run: plan.dry_run, rotations };
    Outcome { report, access_tokens, issued }
}

/// Why the protocol ended before its last stage: the rotation's status and what to say.
struct Stop {
    status: RotationStatus,
    error: Option<String>,
}

impl Stop {
    fn failed(error: impl Into<String>) -> Stop {
        Stop { status: RotationStatus::Failed, error: Some(error.into()) }
    }

    fn provider(e: ProviderError, prefix: &str) -> Stop {
        let status =
            if matches!(e, ProviderError::Rejected(_)) { RotationStatus::Rejected } else { RotationStatus::Failed };
        Stop { status, error: Some(format!("{prefix}{e}")) }
    }
}

const NOT_ROTATED: &str = "preflight failed, nothing was rotated: ";

/// One rotation, stage by stage. Returns its report and, when the upstream issued one, the
/// new credential.
pub async fn rotate_one(r: &Rotation, dry_run: bool, ctx: &Context<'_>) -> (RotationReport, Option<Rotated>) {
    let mut rep = report_for(r);
    let outcome = async {
        let checked = check(r, ctx).await?;
        // A rotation skipped as fresh retires nothing: only a preflight proves that every target
        // holds the current credential, so that an older one may be revoked.
        fresh(r, &checked, ctx).await?;
        preflight(r, dry_run, ctx, &mut rep).await?;
        retire(r, ctx, &mut rep).await;
        reserve(r, ctx).await?;
        let rotated = rotate(r, ctx, &mut rep).await?;
        let verify_error = verify(r, &rotated, ctx, &mut rep).await?;
        let failures = write(r, &rotated, ctx, &mut rep).await;
        let rolled_back = rollback(r, &rotated, &failures, ctx, &mut rep).await;
        let stored_everywhere = rotated.changed && failures.credential.is_empty();
        settle(r, &rotated, failures, rolled_back, verify_error, ctx, &mut rep).await;
        if stored_everywhere {
            let retired = r.provider.finish(ctx.http, &rotated).await;
            record(r, retired, &mut rep);
        }
        Ok::<_, Stop>(rotated)
    }
    .await;
    for p in &r.targets {
        p.target.release(&r.name);
    }
    let closed = r.provider.close(ctx.http).await;
    record(r, closed, &mut rep);
    match outcome {
        Ok(rotated) => (rep, Some(rotated)),
        Err(stop) => {
            rep.status = stop.status;
            rep.error = stop.error;
            (rep, None)
        }
    }
}

fn report_for(r: &Rotation) -> RotationReport {
    let credential = r.provider.kind().credential;
    RotationReport {
        name: r.name.clone(),
        provider: r.provider.kind().name.to_owned(),
        status: RotationStatus::Failed,
        old_fingerprint: r.provider.current().fingerprint(),
        new_fingerprint: None,
        expires_at: None,
        rescue_file: None,
        targets: r
            .targets
            .iter()
            .map(|p| TargetReport {
                kind: p.target.kind().to_owned(),
                target: p.target.describe(),
                value: p.value.label(credential).to_owned(),
                status: TargetStatus::Skipped,
                attempts: 0,
                note: None,
                error: None,
            })
            .collect(),
        error: None,
        revoked: Vec::new(),
        not_revoked: Vec::new(),
    }
}

/// What a provider retired, into the report and the log.
fn record(r: &Rotation, retired: Retired, rep: &mut RotationReport) {
    for f in &retired.failed {
        log::log(Level::Warn, Some(&r.name), f);
    }
    rep.revoked.extend(retired.revoked);
    rep.not_revoked.extend(retired.failed);
}

/// Stage 3b, in a run that changes things: earlier credentials whose overlap has passed are
/// revoked (the provider knows them from its check).
async fn retire(r: &Rotation, ctx: &Context<'_>, rep: &mut RotationReport) {
    let retired = r.provider.retire_expired(ctx.http).await;
    record(r, retired, rep);
}

/// Stage 1: the current credential, checked where that does not spend it.
async fn check(r: &Rotation, ctx: &Context<'_>) -> Result<Checked, Stop> {
    r.provider.check(ctx.http).await.map_err(|e| Stop::provider(e, NOT_ROTATED))
}

/// Stage 2, with `min_age`: the credential's own age where the upstream tells it, else the age of
/// every target that holds it. Young enough: stop, skipped.
async fn fresh(r: &Rotation, checked: &Checked, ctx: &Context<'_>) -> Result<(), Stop> {
    let Some(min_age) = r.min_age else { return Ok(()) };
    let min = jiff::SignedDuration::try_from(min_age).unwrap_or(jiff::SignedDuration::MAX);
    let young = |at: jiff::Timestamp| jiff::Timestamp::now().duration_since(at) < min;
    let is_young = match checked.created_at {
        Some(at) => young(at),
        None => {
            let mut all = true;
            for t in r.targets.iter().filter(|t| t.value == ValueKind::Credential) {
                match t.target.updated_at(ctx.http, r.provider.current()).await {
                    Ok(Some(at)) if young(at) => {}
                    Ok(_) => all = false,
                    Err(e) => return Err(Stop::failed(format!("{NOT_ROTATED}{e}"))),
                }
            }
            all
        }
    };
    if is_young {
        log::info_in(&r.name, &format!("the credential is less than {} old: skipped", human(min_age)));
        return Err(Stop { status: RotationStatus::Skipped, error: None });
    }
    Ok(())
}

/// Stage 3: every target proven writable, concurrently, before the upstream is touched. A dry run
/// ends here.
async fn preflight(r: &Rotation, dry_run: bool, ctx: &Context<'_>, rep: &mut RotationReport) -> Result<(), Stop> {
    let current = r.provider.current();
    let mut set = JoinSet::new();
    for (i, p) in r.targets.iter().enumerate() {
        let (target, http, live, received_at) = (p.target.clone(), ctx.http.clone(), current.clone(), ctx.received_at);
        let value = (p.value == ValueKind::Credential).then(|| current.clone());
        set.spawn(async move {
            let proof = Proof { current: value.as_ref(), live: &live, dry_run, received_at };
            (i, target.preflight(&http, proof).await)
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (i, result) = joined.unwrap_or_else(|e| (usize::MAX, Err(TargetError(format!("internal error: {e}")))));
        let t = rep.targets.get_mut(i);
        match (result, t) {
            (Ok(prepared), Some(t)) => {
                t.status = if dry_run { TargetStatus::Planned } else { TargetStatus::Skipped };
                if prepared == Prepared::WouldCreate {
                    t.note = Some("would create".to_owned());
                }
            }
            (Err(e), t) => {
                if let Some(t) = t {
                    t.status = TargetStatus::Failed;
                    t.error = Some(e.0.clone());
                }
                failures.push(e.0);
            }
            (Ok(_), None) => {}
        }
    }
    if !failures.is_empty() {
        return Err(Stop::failed(format!("{NOT_ROTATED}{}", failures.join("; "))));
    }
    log::info_in(&r.name, &format!("preflight: {} target(s) writable", r.targets.len()));
    if dry_run {
        return Err(Stop { status: RotationStatus::Planned, error: None });
    }
    if ctx.http.shutdown().requested() {
        return Err(Stop::failed("interrupted before the upstream was contacted; nothing was rotated"));
    }
    Ok(())
}

/// Stage 3b: each target waits until a budget its write shares (GitHub's rate limits) has room
/// for the rotation's writes, here, before the upstream is asked: waiting costs nothing yet.
async fn reserve(r: &Rotation, ctx: &Context<'_>) -> Result<(), Stop> {
    for p in &r.targets {
        if let Err(e) = p.target.reserve(ctx.http, &r.name).await {
            return Err(Stop::failed(format!("{e}; nothing was rotated")));
        }
    }
    Ok(())
}

/// Stage 4: the rotate request, sent once; the new values are masked before anything can print them.
async fn rotate(r: &Rotation, ctx: &Context<'_>, rep: &mut RotationReport) -> Result<Rotated, Stop> {
    let rotated = r.provider.rotate(ctx.http).await.map_err(|e| Stop::provider(e, ""))?;
    if rotated.changed {
        (ctx.mask)(&rotated.credential);
    }
    if let Some(a) = &rotated.access_token {
        (ctx.mask)(a);
    }
    rep.new_fingerprint = Some(rotated.credential.fingerprint());
    rep.expires_at = rotated.expires_at.map(|t| crate::report::seconds(t).to_string());
    if rotated.changed {
        log::info_in(&r.name, &format!("rotated: {} -> {}", rep.old_fingerprint, rotated.credential.fingerprint()));
    } else {
        log::info_in(&r.name, "the provider issued no new refresh token: the current one stays valid");
    }
    Ok(rotated)
}

/// Stage 5: the new credential (provider) and access token (`verify_url`). Where the old
/// credential stays valid, a new one that fails is revoked and the rotation stops: nothing was
/// written. Elsewhere the old credential is already spent, so a failure is reported, and the new
/// one is written anyway.
async fn verify(
    r: &Rotation,
    rotated: &Rotated,
    ctx: &Context<'_>,
    rep: &mut RotationReport,
) -> Result<Option<String>, Stop> {
    let error = verify_error(r, rotated, ctx).await;
    let Some(e) = error.as_ref().filter(|_| r.provider.old_stays_valid() && rotated.changed) else {
        if let Some(e) = &error {
            log::log(
                Level::Error,
                Some(&r.name),
                &format!("verification failed: {e}; writing the new credential anyway, the old one is no longer valid"),
            );
        }
        return Ok(error);
    };
    let credential = r.provider.kind().credential;
    let discarded = match r.provider.discard(ctx.http, rotated).await {
        Ok(retired) => {
            record(r, retired, rep);
            format!("the new {credential} was revoked")
        }
        Err(why) => {
            rep.not_revoked.push(format!("the new {credential}: {why}"));
            format!("the new {credential} could not be revoked ({why})")
        }
    };
    Err(Stop::failed(format!(
        "verification failed: {e}; nothing was written and {discarded}: the current {credential} is unchanged and valid"
    )))
}

async fn verify_error(r: &Rotation, rotated: &Rotated, ctx: &Context<'_>) -> Option<String> {
    match r.provider.verify(ctx.http, rotated).await {
        Err(e) => Some(e),
        Ok(()) => match (&r.verify_url, &rotated.access_token) {
            (Some(url), Some(token)) => verify_url(ctx.http, url, token).await.err(),
            (Some(_), None) => Some("verify_url is set but the provider issued no access token".to_owned()),
            _ => None,
        },
    }
}

/// GET `url` with the new access token; any 2xx passes.
async fn verify_url(http: &Http, url: &url::Url, token: &Secret) -> Result<(), String> {
    let at = http.send_idempotent("verify", &crate::http::Request::get(url.clone()).bearer(token)).await;
    match at.result {
        Ok(r) if r.status.is_success() => Ok(()),
        Ok(r) => Err(format!("{url} answered HTTP {}", r.status.as_u16())),
        Err(e) => Err(format!("{url}: {e}")),
    }
}

/// The writes that failed for good, split by the value they were to hold.
#[derive(Default)]
struct Failures {
    /// Targets of the rotated credential.
    credential: Vec<String>,
    /// Targets of the access token.
    other: Vec<String>,
    /// Targets whose write failed without an answer: it may have landed.
    unanswered: Vec<usize>,
}

/// Stage 6: every target written concurrently (each service bounds its requests in flight).
async fn write(r: &Rotation, rotated: &Rotated, ctx: &Context<'_>, rep: &mut RotationReport) -> Failures {
    let mut failures = Failures::default();
    let mut fail = |i: usize, attempts: u32, e: String, rep: &mut RotationReport| {
        rep.targets[i].status = TargetStatus::Failed;
        rep.targets[i].attempts = attempts;
        rep.targets[i].error = Some(e.clone());
        match r.targets[i].value {
            ValueKind::Credential => failures.credential.push(e),
            ValueKind::AccessToken => failures.other.push(e),
        }
    };
    let mut set = JoinSet::new();
    for (i, p) in r.targets.iter().enumerate() {
        let value = match p.value {
            // Not rotated: the targets already hold it.
            ValueKind::Credential if !rotated.changed => continue,
            ValueKind::Credential => rotated.credential.clone(),
            ValueKind::AccessToken => match &rotated.access_token {
                Some(a) => a.clone(),
                None => {
                    fail(i, 0, format!("{}: the provider issued no access token", p.target.describe()), rep);
                    continue;
                }
            },
        };
        if let Err(problem) = p.target.check_value(&value) {
            fail(i, 0, format!("{}: the new value {}", p.target.describe(), problem.problem), rep);
            continue;
        }
        let (target, http, live): (Arc<dyn Target>, Http, Secret) =
            (p.target.clone(), ctx.http.clone(), rotated.credential.clone());
        set.spawn(async move {
            let w = target.write(&http, &value, &live).await;
            (i, w.attempts, w.result, w.unanswered)
        });
    }
    let mut settled = vec![false; r.targets.len()];
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, attempts, Ok(()), _)) => {
                settled[i] = true;
                let t = &mut rep.targets[i];
                t.status = TargetStatus::Written;
                t.attempts = attempts;
                log::info_in(&r.name, &format!("wrote {} ({})", t.target, t.value));
            }
            Ok((i, attempts, Err(e), unanswered)) => {
                settled[i] = true;
                fail(i, attempts, e.0, rep);
                if unanswered {
                    failures.unanswered.push(i);
                }
            }
            // A panicked write: it may or may not have landed; failed, and maybe landed below.
            Err(e) => log::error(&format!("internal error in a write: {e}")),
        }
    }
    for (i, done) in settled.into_iter().enumerate() {
        if !done && rep.targets[i].status == TargetStatus::Skipped && needs_write(r.targets[i].value, rotated) {
            fail(i, 0, format!("{}: internal error", r.targets[i].target.describe()), rep);
            // It may have sent the value before it panicked: a rollback must not assume it did not.
            failures.unanswered.push(i);
        }
    }
    failures
}

fn needs_write(value: ValueKind, rotated: &Rotated) -> bool {
    value == ValueKind::AccessToken || rotated.changed
}

/// What a rollback did.
struct RolledBack {
    /// Targets that hold the old value again.
    restored: Vec<String>,
    /// Targets still holding the new value: the old one could not be put back.
    failed: Vec<String>,
    /// The new credential's revocation, when every target holds the old value again.
    discarded: Option<Result<(), String>>,
}

/// Stage 7, where the old credential stays valid until revoked: a credential target that failed
/// for good puts the old value back into every target already written (and, to be sure, into
/// the ones that failed: a write that timed out may have landed), then the new credential is
/// revoked. Only a target that keeps the new value leaves the rotation critical.
async fn rollback(
    r: &Rotation,
    rotated: &Rotated,
    failures: &Failures,
    ctx: &Context<'_>,
    rep: &mut RotationReport,
) -> Option<RolledBack> {
    if !(r.provider.old_stays_valid() && rotated.changed && !failures.credential.is_empty()) {
        return None;
    }
    let credential = r.provider.kind().credential;
    log::log(
        Level::Warn,
        Some(&r.name),
        &format!("a target could not take the new {credential}: rolling back (the old one is still valid)"),
    );
    let old = r.provider.current().clone();
    let mut set = JoinSet::new();
    for (i, p) in r.targets.iter().enumerate() {
        let written = rep.targets[i].status == TargetStatus::Written;
        if p.value != ValueKind::Credential || !(written || rep.targets[i].status == TargetStatus::Failed) {
            continue;
        }
        let (target, http, old) = (p.target.clone(), ctx.http.clone(), old.clone());
        set.spawn(async move { (i, written, target.write(&http, &old, &old).await.result) });
    }
    let mut rb = RolledBack { restored: Vec::new(), failed: Vec::new(), discarded: None };
    while let Some(joined) = set.join_next().await {
        let Ok((i, written, result)) = joined else {
            rb.failed.push("internal error in a rollback write".to_owned());
            continue;
        };
        let t = &mut rep.targets[i];
        match (written, result) {
            (true, Ok(())) => {
                t.status = TargetStatus::Skipped;
                t.note = Some("rolled back: holds the old value again".to_owned());
                log::info_in(&r.name, &format!("rolled back {} ({})", t.target, t.value));
                rb.restored.push(t.target.clone());
            }
            (true, Err(e)) => {
                t.note = Some("rollback failed: holds the new value".to_owned());
                rb.failed.push(e.0);
            }
            (false, Ok(())) => t.note = Some("holds the old value (re-written in the rollback)".to_owned()),
            // Its write of the new value got no answer (it may have landed), and the re-write
            // of the old one failed: it may hold the new value, which must then stay valid: a
            // failed rollback (rescue, exit 3), never revoked.
            (false, Err(e)) if failures.unanswered.contains(&i) => {
                t.note = Some("rollback failed: may hold the new value".to_owned());
                rb.failed.push(e.0);
            }
            // Its write was refused: it holds the old value (the preflight wrote it).
            (false, Err(_)) => {}
        }
    }
    if rb.failed.is_empty() {
        rb.discarded = Some(match r.provider.discard(ctx.http, rotated).await {
            Ok(retired) => {
                record(r, retired, rep);
                Ok(())
            }
            Err(why) => {
                rep.not_revoked.push(format!("the new {credential}: {why}"));
                Err(why)
            }
        });
    }
    Some(rb)
}

/// Stage 8: the outcome. Critical (exit 3) only when the rotated credential is stored in fewer
/// targets than asked and was not rolled back: then it is rescued. A failed access-token target
/// leaves the credential safe, and so does a rollback: failed (exit 1).
async fn settle(
    r: &Rotation,
    rotated: &Rotated,
    failures: Failures,
    rolled_back: Option<RolledBack>,
    verify_error: Option<String>,
    ctx: &Context<'_>,
    rep: &mut RotationReport,
) {
    let credential = r.provider.kind().credential;
    let stored: Vec<String> = rep
        .targets
        .iter()
        .filter(|t| t.status == TargetStatus::Written && t.value == credential)
        .map(|t| t.target.clone())
        .collect();
    let verify_note = verify_error.as_ref().map(|e| format!(". Verification failed too: {e}")).unwrap_or_default();
    let mut rollback_note = String::new();
    if let Some(rb) = rolled_back {
        if rb.failed.is_empty() {
            rep.status = RotationStatus::Failed;
            let restored = if rb.restored.is_empty() {
                "no target had been written".to_owned()
            } else {
                format!("the old {credential} is back in {}", rb.restored.join(", "))
            };
            let discarded = match rb.discarded {
                Some(Err(why)) => format!("the new {credential} could not be revoked: {why}"),
                _ => format!("the new {credential} was revoked"),
            };
            rep.error = Some(format!(
                "the new {credential} could not be stored in every target: {}; rolled back: {restored}, and the old                  {credential} stays valid; {discarded}{verify_note}",
                failures.credential.join("; ")
            ));
            return;
        }
        rollback_note = format!(
            ". The rollback failed too ({}): the old and the new {credential} both stay valid",
            rb.failed.join("; ")
        );
    }
    if failures.credential.is_empty() && failures.other.is_empty() {
        rep.status = if verify_error.is_some() { RotationStatus::Failed } else { RotationStatus::Rotated };
        rep.error = verify_error.map(|e| format!("verification failed: {e}; the new credential was stored anyway"));
    } else if rotated.changed && !failures.credential.is_empty() {
        rep.status = RotationStatus::Critical;
        let all: Vec<String> = failures.credential.into_iter().chain(failures.other).collect();
        let mut msg =
            format!("the new credential could not be stored in every target: {}{rollback_note}", all.join("; "));
        match &r.rescue {
            Some(recipient) => match rescue(ctx, &r.name, recipient, &rotated.credential).await {
                Ok(path) => {
                    msg.push_str(&format!(
                        ". It was rescued to {path} (recover it with `age -d -i KEY {path}` and store it by hand)"
                    ));
                    rep.rescue_file = Some(path);
                }
                Err(e) => msg.push_str(&format!(". Rescue failed too: {e}")),
            },
            None if stored.is_empty() => msg.push_str(
                ". It is stored nowhere and no rescue_recipient is set: re-authorize by hand. Set rescue_recipient so \
                 this can never lose a credential",
            ),
            None => {}
        }
        if !stored.is_empty() {
            msg.push_str(&format!(". The new credential is stored in: {}", stored.join(", ")));
        }
        rep.error = Some(format!("{msg}{verify_note}"));
    } else if rotated.changed {
        rep.status = RotationStatus::Failed;
        rep.error = Some(format!(
            "the new {credential} is stored in every target that receives it ({}), so it is safe; not written: {}{verify_note}",
            stored.join(", "),
            failures.other.join("; ")
        ));
    } else {
        rep.status = RotationStatus::Failed;
        rep.error = Some(format!(
            "some targets were not updated (the stored credential is unchanged and valid): {}{verify_note}",
            failures.other.join("; ")
        ));
    }
}

/// The age-encrypted rescue file, written off the async runtime (encryption and `fsync`).
async fn rescue(
    ctx: &Context<'_>,
    name: &str,
    recipient: &age::x25519::Recipient,
    value: &Secret,
) -> Result<String, String> {
    let (dir, name, recipient, value) = (ctx.rescue_dir.clone(), name.to_owned(), recipient.clone(), value.clone());
    let path = tokio::task::spawn_blocking(move || crate::crypto::rescue(&dir, &name, &recipient, &value))
        .await
        .map_err(|e| format!("internal error: {e}"))??;
    Ok(path.strip_prefix(&ctx.rescue_dir).unwrap_or(&path).display().to_string())
}

fn now() -> String {
    crate::report::seconds(jiff::Timestamp::now()).to_string()
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

#[cfg(test)]
mod tests {
    //! The protocol's order and outcomes, with a provider and targets that record every call.

    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;

    use super::*;
    use crate::http::testing::Fake;
    use crate::providers::{Provider, ProviderKind};
    use crate::targets::{Planned, ValueProblem, Written};

    type Log = Arc<Mutex<Vec<String>>>;

    const KIND: ProviderKind = ProviderKind {
        name: "fake",
        fields: &[],
        credential: "refresh_token",
        issues_access_token: true,
        knows_own_age: false,
        parse: |_, _| unreachable!(),
    };

    #[derive(Debug)]
    struct FakeProvider {
        log: Log,
        current: Secret,
        check: fn() -> Result<Checked, ProviderError>,
        /// The old credential stays valid until revoked (as a Vault token).
        stays_valid: bool,
        fail_verify: bool,
    }

    fn provider(log: &Log, stays_valid: bool) -> FakeProvider {
        FakeProvider {
            log: log.clone(),
            current: Secret::new("r1-current"),
            check: || Ok(Checked::default()),
            stays_valid,
            fail_verify: false,
        }
    }

    #[async_trait]
    impl Provider for FakeProvider {
        fn kind(&self) -> &'static ProviderKind {
            &KIND
        }
        fn current(&self) -> &Secret {
            &self.current
        }
        async fn check(&self, _http: &Http) -> Result<Checked, ProviderError> {
            self.log.lock().unwrap().push("check".into());
            (self.check)()
        }
        async fn rotate(&self, _http: &Http) -> Result<Rotated, ProviderError> {
            self.log.lock().unwrap().push("rotate".into());
            Ok(Rotated {
                credential: Secret::new("r2-new-credential"),
                changed: true,
                access_token: Some(Secret::new("a2-new-access")),
                expires_at: None,
            })
        }
        async fn verify(&self, _http: &Http, rotated: &Rotated) -> Result<(), String> {
            self.log.lock().unwrap().push(format!("verify {}", rotated.credential.expose()));
            if self.fail_verify {
                return Err("the new one does not work".into());
            }
            Ok(())
        }
        fn old_stays_valid(&self) -> bool {
            self.stays_valid
        }
        async fn retire_expired(&self, _http: &Http) -> Retired {
            self.log.lock().unwrap().push("retire".into());
            Retired { revoked: vec!["acc-0".into()], failed: vec![] }
        }
        async fn finish(&self, _http: &Http, _rotated: &Rotated) -> Retired {
            self.log.lock().unwrap().push("finish".into());
            Retired::default()
        }
        async fn discard(&self, _http: &Http, rotated: &Rotated) -> Result<Retired, String> {
            self.log.lock().unwrap().push(format!("discard {}", rotated.credential.expose()));
            Ok(Retired { revoked: vec!["acc-2".into()], failed: vec![] })
        }
        async fn close(&self, _http: &Http) -> Retired {
            self.log.lock().unwrap().push("close".into());
            Retired { revoked: vec![], failed: vec!["a login token could not be revoked".into()] }
        }
    }

    struct FakeTarget {
        log: Log,
        name: &'static str,
        fail_preflight: bool,
        fail_write: bool,
        /// Fails the writes of this value only.
        fail_value: Option<&'static str>,
        missing: bool,
        updated_at: Option<jiff::Timestamp>,
        /// Its failed writes get no answer (a timeout after the request was sent).
        unanswered: bool,
        /// Panics writing this value (a bug in the target).
        panic_value: Option<&'static str>,
    }

    fn target(log: &Log, name: &'static str) -> FakeTarget {
        FakeTarget {
            log: log.clone(),
            name,
            fail_preflight: false,
            fail_write: false,
            fail_value: None,
            missing: false,
            updated_at: None,
            unanswered: false,
            panic_value: None,
        }
    }

    #[async_trait]
    impl Target for FakeTarget {
        fn kind(&self) -> &'static str {
            "fake"
        }
        fn describe(&self) -> String {
            format!("fake {}", self.name)
        }
        fn name_hint(&self) -> String {
            self.name.to_owned()
        }
        fn check_value(&self, _value: &Secret) -> Result<(), ValueProblem> {
            Ok(())
        }
        async fn updated_at(&self, _http: &Http, _live: &Secret) -> Result<Option<jiff::Timestamp>, TargetError> {
            self.log.lock().unwrap().push(format!("updated_at {}", self.name));
            Ok(self.updated_at)
        }
        async fn preflight(&self, _http: &Http, proof: Proof<'_>) -> Result<Prepared, TargetError> {
            let value = proof.current.map(Secret::expose).unwrap_or("-");
            self.log.lock().unwrap().push(format!("preflight {} {value}", self.name));
            match (self.fail_preflight, self.missing && proof.dry_run) {
                (true, _) => Err(TargetError(format!("fake {}: refused", self.name))),
                (false, true) => Ok(Prepared::WouldCreate),
                (false, false) => Ok(Prepared::Ready),
            }
        }
        async fn write(&self, _http: &Http, value: &Secret, live: &Secret) -> Written {
            self.log.lock().unwrap().push(format!("write {} {} as {}", self.name, value.expose(), live.expose()));
            assert!(self.panic_value != Some(value.expose()), "a bug in fake {}", self.name);
            let fails = self.fail_write || self.fail_value == Some(value.expose());
            let result = if fails { Err(TargetError(format!("fake {}: 500", self.name))) } else { Ok(()) };
            Written { attempts: 1, result, unanswered: fails && self.unanswered }
        }
    }

    fn rotation(log: &Log, targets: Vec<(ValueKind, FakeTarget)>) -> Rotation {
        Rotation {
            name: "demo".into(),
            min_age: None,
            provider: Box::new(provider(log, false)),
            verify_url: None,
            rescue: None,
            targets: targets
                .into_iter()
                .map(|(value, t)| Planned { value, target: Arc::new(t) as Arc<dyn Target> })
                .collect(),
        }
    }

    async fn run_one(r: &Rotation, dry_run: bool, dir: &std::path::Path) -> (RotationReport, Vec<String>) {
        let fake = Fake::new();
        let http = fake.http();
        let masked = Mutex::new(Vec::new());
        let mask = |s: &Secret| masked.lock().unwrap().push(s.expose().to_owned());
        let ctx = Context { http: &http, mask: &mask, rescue_dir: dir.to_owned(), received_at: jiff::Timestamp::now() };
        let (rep, _) = rotate_one(r, dry_run, &ctx).await;
        assert!(fake.requests().is_empty(), "the engine itself sends nothing");
        (rep, masked.into_inner().unwrap())
    }

    fn calls(log: &Log) -> Vec<String> {
        log.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn stages_run_in_the_protocols_order() {
        let log = Log::default();
        let r = rotation(
            &log,
            vec![(ValueKind::Credential, target(&log, "rt")), (ValueKind::AccessToken, target(&log, "at"))],
        );
        let dir = tempfile::tempdir().unwrap();
        let (rep, masked) = run_one(&r, false, dir.path()).await;
        assert_eq!(rep.status, RotationStatus::Rotated, "{:?}", rep.error);
        let mut got = calls(&log);
        // Targets of one stage run concurrently: their order within the stage is free.
        got[1..3].sort();
        got[6..8].sort();
        assert_eq!(
            got,
            [
                "check",
                "preflight at -",
                "preflight rt r1-current",
                "retire",
                "rotate",
                "verify r2-new-credential",
                "write at a2-new-access as r2-new-credential",
                "write rt r2-new-credential as r2-new-credential",
                "finish",
                "close",
            ]
        );
        assert_eq!(rep.revoked, ["acc-0"], "what the provider retired is reported");
        assert_eq!(rep.not_revoked, ["a login token could not be revoked"], "a warning, not a failure");
        assert_eq!(masked, ["r2-new-credential", "a2-new-access"], "masked before anything is written");
        assert_eq!(rep.new_fingerprint, Some(Secret::new("r2-new-credential").fingerprint()));
    }

    #[tokio::test]
    async fn a_failed_preflight_never_reaches_the_upstream() {
        let log = Log::default();
        let r =
            rotation(&log, vec![(ValueKind::Credential, FakeTarget { fail_preflight: true, ..target(&log, "rt") })]);
        let dir = tempfile::tempdir().unwrap();
        let (rep, _) = run_one(&r, false, dir.path()).await;
        assert_eq!(rep.status, RotationStatus::Failed);
        assert!(rep.error.unwrap().starts_with("preflight failed, nothing was rotated: fake rt: refused"));
        assert!(!calls(&log).contains(&"rotate".to_owned()), "{:?}", calls(&log));
    }

    #[tokio::test]
    async fn a_dry_run_stops_after_the_preflight_and_says_what_it_would_create() {
        let log = Log::default();
        let r = rotation(&log, vec![(ValueKind::Credential, FakeTarget { missing: true, ..target(&log, "rt") })]);
        let dir = tempfile::tempdir().unwrap();
        let (rep, _) = run_one(&r, true, dir.path()).await;
        assert_eq!(rep.status, RotationStatus::Planned);
        assert_eq!(rep.targets[0].status, TargetStatus::Planned);
        assert_eq!(rep.targets[0].note.as_deref(), Some("would create"));
        assert_eq!(calls(&log), ["check", "preflight rt r1-current", "close"]);
    }

    #[tokio::test]
    async fn a_rejected_credential_stops_at_the_check() {
        let log = Log::default();
        let mut r = rotation(&log, vec![(ValueKind::Credential, target(&log, "rt"))]);
        r.provider = Box::new(FakeProvider {
            check: || Err(ProviderError::Rejected("revoked".into())),
            ..provider(&log, false)
        });
        let dir = tempfile::tempdir().unwrap();
        let (rep, _) = run_one(&r, false, dir.path()).await;
        assert_eq!(rep.status, RotationStatus::Rejected);
        assert_eq!(calls(&log), ["check", "close"], "closed after a failure too");
        assert_eq!(rep.not_revoked, ["a login token could not be revoked"]);
    }

    #[tokio::test]
    async fn a_fresh_credential_is_skipped_before_the_preflight() {
        let log = Log::default();
        let young = FakeTarget { updated_at: Some(jiff::Timestamp::now()), ..target(&log, "rt") };
        let mut r = rotation(&log, vec![(ValueKind::Credential, young), (ValueKind::AccessToken, target(&log, "at"))]);
        r.min_age = Some(Duration::from_secs(3600));
        let dir = tempfile::tempdir().unwrap();
        let (rep, _) = run_one(&r, false, dir.path()).await;
        assert_eq!(rep.status, RotationStatus::Skipped);
        assert_eq!(
            calls(&log),
            ["check", "updated_at rt", "close"],
            "only credential targets tell the age; nothing is retired without a preflight"
        );
    }

    #[tokio::test]
    async fn a_failed_credential_write_is_critical_and_rescued() {
        let log = Log::default();
        let id = age::x25519::Identity::generate();
        let mut r = rotation(
            &log,
            vec![
                (ValueKind::Credential, target(&log, "a")),
                (ValueKind::Credential, FakeTarget { fail_write: true, ..target(&log, "b") }),
            ],
        );
        r.rescue = Some(id.to_public());
        let dir = tempfile::tempdir().unwrap();
        let (rep, _) = run_one(&r, false, dir.path()).await;
        assert_eq!(rep.status, RotationStatus::Critical);
        let error = rep.error.unwrap();
        assert!(error.contains("The new credential is stored in: fake a"), "{error}");
        let file = rep.rescue_file.expect("rescued");
        assert_eq!(file, "secret-rotator-rescue-demo.age", "named relative to the workspace");
        assert_eq!(age::decrypt(&id, &std::fs::read(dir.path().join(file)).unwrap()).unwrap(), b"r2-new-credential");
    }

    #[tokio::test]
    async fn a_failed_access_token_write_leaves_the_credential_safe_exit_1() {
        let log = Log::default();
        let id = age::x25519::Identity::generate();
        let mut r = rotation(
            &log,
            vec![
                (ValueKind::Credential, target(&log, "rt")),
                (ValueKind::AccessToken, FakeTarget { fail_write: true, ..target(&log, "at") }),
            ],
        );
        r.rescue = Some(id.to_public());
        let dir = tempfile::tempdir().unwrap();
        let (rep, _) = run_one(&r, false, dir.path()).await;
        assert_eq!(rep.status, RotationStatus::Failed);
        assert_eq!(rep.status.exit(), crate::error::Exit::Failed);
        assert_eq!(rep.rescue_file, None, "nothing to rescue: the credential is stored");
        let error = rep.error.unwrap();
        assert!(error.contains("is stored in every target") && error.contains("not written: fake at: 500"), "{error}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn nothing_is_retired_in_a_dry_run_nor_after_a_failed_preflight() {
        let log = Log::default();
        let r = rotation(&log, vec![(ValueKind::Credential, target(&log, "rt"))]);
        let dir = tempfile::tempdir().unwrap();
        run_one(&r, true, dir.path()).await;
        let log2 = Log::default();
        let r2 =
            rotation(&log2, vec![(ValueKind::Credential, FakeTarget { fail_preflight: true, ..target(&log2, "rt") })]);
        run_one(&r2, false, dir.path()).await;
        assert!(!calls(&log).contains(&"retire".to_owned()) && !calls(&log2).contains(&"retire".to_owned()));
        let mut young = rotation(&log, vec![]);
        young.targets = vec![Planned {
            value: ValueKind::Credential,
            target: Arc::new(FakeTarget { updated_at: Some(jiff::Timestamp::now()), ..target(&log, "rt") }),
        }];
        young.min_age = Some(Duration::from_secs(3600));
        log.lock().unwrap().clear();
        run_one(&young, true, dir.path()).await;
        assert_eq!(calls(&log), ["check", "updated_at rt", "close"], "a dry run skipped as fresh retires nothing");
    }

    #[tokio::test]
    async fn where_the_old_credential_stays_valid_a_failed_write_is_rolled_back_exit_1() {
        let log = Log::default();
        let id = age::x25519::Identity::generate();
        let mut r = rotation(
            &log,
            vec![
                (ValueKind::Credential, target(&log, "a")),
                (ValueKind::Credential, FakeTarget { fail_value: Some("r2-new-credential"), ..target(&log, "b") }),
            ],
        );
        r.provider = Box::new(provider(&log, true));
        r.rescue = Some(id.to_public());
        let dir = tempfile::tempdir().unwrap();
        let (rep, _) = run_one(&r, false, dir.path()).await;
        assert_eq!(rep.status, RotationStatus::Failed, "{:?}", rep.error);
        assert_eq!(rep.rescue_file, None, "nothing to rescue: the old credential is stored and valid");
        let got = calls(&log);
        let after_writes: Vec<&String> = got.iter().skip_while(|c| !c.starts_with("write")).collect();
        let (writes, rest): (Vec<&String>, Vec<&String>) = after_writes.iter().partition(|c| c.starts_with("write"));
        let mut writes: Vec<&str> = writes.iter().map(|s| s.as_str()).collect();
        writes.sort();
        assert_eq!(
            writes,
            [
                "write a r1-current as r1-current",
                "write a r2-new-credential as r2-new-credential",
                "write b r1-current as r1-current",
                "write b r2-new-credential as r2-new-credential",
            ],
            "the old value goes back with the old credential"
        );
        assert_eq!(rest, ["discard r2-new-credential", "close"], "the new one is revoked; no finish");
        let error = rep.error.unwrap();
        assert!(error.contains("rolled back: the old refresh_token is back in fake a"), "{error}");
        assert!(error.contains("was revoked"), "{error}");
        assert_eq!(rep.targets[0].status, TargetStatus::Skipped);
        assert_eq!(rep.revoked, ["acc-0", "acc-2"]);
    }

    #[tokio::test]
    async fn a_rollback_that_fails_is_critical_and_rescued_and_the_new_credential_kept() {
        let log = Log::default();
        let id = age::x25519::Identity::generate();
        let mut r = rotation(
            &log,
            vec![
                (ValueKind::Credential, FakeTarget { fail_value: Some("r1-current"), ..target(&log, "a") }),
                (ValueKind::Credential, FakeTarget { fail_write: true, ..target(&log, "b") }),
            ],
        );
        r.provider = Box::new(provider(&log, true));
        r.rescue = Some(id.to_public());
        let dir = tempfile::tempdir().unwrap();
        let (rep, _) = run_one(&r, false, dir.path()).await;
        assert_eq!(rep.status, RotationStatus::Critical);
        let error = rep.error.unwrap();
        assert!(error.contains("The rollback failed too") && error.contains("both stay valid"), "{error}");
        assert!(error.contains("The new credential is stored in: fake a"), "{error}");
        assert!(!calls(&log).iter().any(|c| c.starts_with("discard")), "a target holds the new one: not revoked");
        let file = rep.rescue_file.expect("rescued");
        assert_eq!(age::decrypt(&id, &std::fs::read(dir.path().join(file)).unwrap()).unwrap(), b"r2-new-credential");
    }

    /// Target a is written, b's write fails as `b` says and its re-write fails too: when b may
    /// hold the new credential it is not revoked, and it is rescued (exit 3).
    async fn run_with_b_failing(log: &Log, b: FakeTarget) -> RotationReport {
        let id = age::x25519::Identity::generate();
        let mut r = rotation(log, vec![(ValueKind::Credential, target(log, "a")), (ValueKind::Credential, b)]);
        r.provider = Box::new(provider(log, true));
        r.rescue = Some(id.to_public());
        let dir = tempfile::tempdir().unwrap();
        run_one(&r, false, dir.path()).await.0
    }

    fn assert_kept_and_rescued(log: &Log, rep: &RotationReport) {
        assert_eq!(rep.status, RotationStatus::Critical, "{:?}", rep.error);
        assert!(
            !calls(log).iter().any(|c| c.starts_with("discard")),
            "the new credential stays valid: {:?}",
            calls(log)
        );
        assert!(rep.rescue_file.is_some());
        assert_eq!(rep.targets[1].note.as_deref(), Some("rollback failed: may hold the new value"));
    }

    #[tokio::test]
    async fn a_write_that_got_no_answer_and_cannot_be_rewritten_keeps_the_new_credential_valid() {
        // b's write of the new value timed out (it may have landed) and its re-write fails too.
        let log = Log::default();
        let rep =
            run_with_b_failing(&log, FakeTarget { fail_write: true, unanswered: true, ..target(&log, "b") }).await;
        assert_kept_and_rescued(&log, &rep);

        // The same refused with an answer: it holds the old value, and the rollback succeeds.
        let log = Log::default();
        let rep = run_with_b_failing(&log, FakeTarget { fail_write: true, ..target(&log, "b") }).await;
        assert_eq!(rep.status, RotationStatus::Failed, "{:?}", rep.error);
        assert!(calls(&log).contains(&"discard r2-new-credential".to_owned()));
    }

    #[tokio::test]
    async fn a_write_that_panicked_may_have_landed() {
        // b's write of the new value panicked (it may have sent it) and its re-write fails.
        let log = Log::default();
        let b =
            FakeTarget { panic_value: Some("r2-new-credential"), fail_value: Some("r1-current"), ..target(&log, "b") };
        let rep = run_with_b_failing(&log, b).await;
        assert_kept_and_rescued(&log, &rep);
    }

    #[tokio::test]
    async fn where_the_old_credential_stays_valid_a_new_one_that_fails_verification_is_revoked_unwritten() {
        let log = Log::default();
        let mut r = rotation(&log, vec![(ValueKind::Credential, target(&log, "rt"))]);
        r.provider = Box::new(FakeProvider { fail_verify: true, ..provider(&log, true) });
        let dir = tempfile::tempdir().unwrap();
        let (rep, _) = run_one(&r, false, dir.path()).await;
        assert_eq!(rep.status, RotationStatus::Failed);
        assert!(!calls(&log).iter().any(|c| c.starts_with("write")), "{:?}", calls(&log));
        assert!(calls(&log).contains(&"discard r2-new-credential".to_owned()));
        let error = rep.error.unwrap();
        assert!(error.contains("nothing was written") && error.contains("unchanged and valid"), "{error}");
    }
}
