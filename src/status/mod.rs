//! `status`: the freshness inventory. For every rotation and target, what the systems say, with
//! reads only: nothing is written and no credential is spent. The provider is asked through
//! [`Provider::check`](crate::providers::Provider::check), the one call that never spends a
//! credential (a GitLab token's `GET .../self`: its creation and expiry; a refresh token
//! cannot be looked at without using it, so oauth2 says nothing), and every target through
//! [`Target::stored`] (GitHub's `updated_at`; a GitLab variable keeps no update time). Each row
//! gets a [`Verdict`]; `table` renders them for a person and for the step summary.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Serialize, Serializer};
use tokio::task::JoinSet;

use crate::alert::{self, Alert, Line};
use crate::error::Exit;
use crate::http::Http;
use crate::inputs::{format_duration, Env};
use crate::log;
use crate::plan::{Freshness, Plan, Rotation};
use crate::providers::{Checked, ProviderError};
use crate::report::seconds;
use crate::targets::{Stored, TargetError, ValueKind};

pub mod table;

/// Report format version of the status report.
pub const VERSION: u32 = 1;

/// What status concludes of one target (and, the worst of them, of a rotation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Rotated less than `min_age` ago: the next run skips it.
    Ok,
    /// Older than `min_age` (or no `min_age`: every run rotates it): the next run rotates it.
    Due,
    /// Status cannot tell: no update time and no age from the upstream, a target that does not
    /// exist, or a read that failed.
    Unknown,
    /// Older than `max_age`: the rotation has stopped running, or keeps failing.
    Overdue,
    /// The credential expires within `warn_before` (or has expired).
    Expiring,
}

impl Verdict {
    /// Every verdict, mildest first.
    pub const ALL: [Verdict; 5] = [Verdict::Ok, Verdict::Due, Verdict::Unknown, Verdict::Overdue, Verdict::Expiring];

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Due => "due",
            Verdict::Unknown => "unknown",
            Verdict::Overdue => "overdue",
            Verdict::Expiring => "expiring",
        }
    }

    /// `ok` and `due` are healthy (exit 0); any other verdict is exit 1.
    pub fn exit(self) -> Exit {
        match self {
            Verdict::Ok | Verdict::Due => Exit::Ok,
            _ => Exit::Failed,
        }
    }
}

/// Why a rotation could not be looked at fully.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Problem {
    /// The upstream rejected the current credential (revoked or expired): exit 4, as for `rotate`.
    Rejected,
    /// The upstream's check or a target's read failed.
    Failed,
}

impl Problem {
    /// Lowercase name (the run outcome an alert's `on` names).
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::Rejected => "rejected",
            Problem::Failed => "failed",
        }
    }
}

/// The whole inventory: the `--report` JSON of `status`.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    /// Format version.
    pub version: u32,
    /// Always `status` (a rotate report has none).
    pub command: &'static str,
    /// When the systems were asked, RFC 3339.
    #[serde(serialize_with = "rfc3339")]
    pub checked_at: Timestamp,
    /// The worst verdict.
    pub verdict: Verdict,
    /// One entry per rotation, in config order.
    pub rotations: Vec<Entry>,
}

impl Inventory {
    /// Exit 0 when every verdict is `ok` or `due`; 4 when an upstream rejected a credential; else 1.
    pub fn exit(&self) -> Exit {
        self.rotations.iter().fold(Exit::Ok, |acc, e| acc.worst(e.exit()))
    }

    /// How many rows have each verdict, worst first (only verdicts that occur).
    pub fn counts(&self) -> Vec<(Verdict, usize)> {
        let rows: Vec<Verdict> = self.rotations.iter().flat_map(|e| e.targets.iter().map(|t| t.verdict)).collect();
        Verdict::ALL
            .iter()
            .rev()
            .map(|v| (*v, rows.iter().filter(|r| *r == v).count()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// One rotation.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Rotation name.
    pub name: String,
    /// Provider kind.
    pub provider: String,
    /// The worst verdict of its targets.
    pub verdict: Verdict,
    /// Fingerprint of the current credential (the one the targets should hold).
    pub fingerprint: String,
    /// `min_age`, as given.
    pub min_age: Option<String>,
    /// `max_age` (given, or `min_age` x 3).
    pub max_age: Option<String>,
    /// `warn_before`.
    pub warn_before: String,
    /// When the current credential was created, where the upstream says.
    #[serde(serialize_with = "rfc3339_opt")]
    pub created_at: Option<Timestamp>,
    /// When the current credential expires, where the upstream says.
    #[serde(serialize_with = "rfc3339_opt")]
    pub expires_at: Option<Timestamp>,
    /// Set when the upstream's check failed or rejected the credential.
    pub problem: Option<Problem>,
    /// What the check said, when it failed.
    pub error: Option<String>,
    /// One row per target, in config order.
    pub targets: Vec<Row>,
}

impl Entry {
    /// This rotation's exit code.
    pub fn exit(&self) -> Exit {
        match self.problem {
            Some(Problem::Rejected) => Exit::Rejected,
            _ => self.verdict.exit(),
        }
    }

    /// The run outcome an alert matches besides the verdict (`rejected`, `failed`), if any.
    pub fn problem_name(&self) -> Option<&'static str> {
        self.problem
            .map(Problem::as_str)
            .or_else(|| self.targets.iter().any(|t| t.stored == Seen::Error).then_some("failed"))
    }
}

/// What a target said of its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Seen {
    /// It exists and has an update time (`last_update`).
    Updated,
    /// It exists; the target keeps no update time.
    Exists,
    /// The target keeps no update time and was not read.
    Unknown,
    /// It does not exist yet.
    Missing,
    /// The read failed (`note` says why).
    Error,
}

/// One target of a rotation.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `github`, `gitlab`.
    pub kind: String,
    /// Description, e.g. `acme/app secret FOO`.
    pub target: String,
    /// Which value it holds: `refresh_token`, `token`, `access_token`.
    pub value: String,
    /// The verdict.
    pub verdict: Verdict,
    /// What the target said.
    pub stored: Seen,
    /// When the stored value was last updated, where the target keeps that.
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_update: Option<Timestamp>,
    /// The time the age is counted from: the credential's creation where the upstream tells it,
    /// else `last_update`.
    #[serde(serialize_with = "rfc3339_opt")]
    pub rotated_at: Option<Timestamp>,
    /// `rotated_at + min_age`: from then on the next run rotates it (without `min_age`, every run).
    #[serde(serialize_with = "rfc3339_opt")]
    pub next_due: Option<Timestamp>,
    /// When the value expires, where the upstream says (the credential's expiry).
    #[serde(serialize_with = "rfc3339_opt")]
    pub expires_at: Option<Timestamp>,
    /// Why this verdict, and what to do.
    pub note: Option<String>,
}

fn rfc3339<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&seconds(*t).to_string())
}

fn rfc3339_opt<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

/// The `status` command: asks, prints the table, writes the report (`report`: where, and how the
/// `report` output names it) and, in GitHub Actions, the step summary and outputs; alerts.
pub fn command(
    runtime: &tokio::runtime::Runtime,
    plan: &Plan,
    http: &Http,
    env: &Env,
    report: Option<&(PathBuf, String)>,
) -> Exit {
    let inv = runtime.block_on(inventory(plan, http));
    let _ = std::io::stdout().lock().write_all(table::text(&inv, table::colour(env)).as_bytes());
    for e in &inv.rotations {
        if let Some(error) = &e.error {
            log::log(log::Level::Error, Some(&e.name), error);
        }
    }
    log::info(&format!("status: {}", table::summary(&inv)));
    if let Some((path, _)) = report {
        if let Err(e) = crate::report::write_json(path, &inv) {
            log::error(&format!("cannot write the report to {}: {e}", path.display()));
        }
    }
    if env.is_true("GITHUB_ACTIONS") {
        actions_outputs(env, &inv, report.map(|(_, named)| named.as_str()));
    }
    if let Some(a) = &plan.alert {
        runtime.block_on(alert_if_wanted(http, a, &inv, env));
    }
    let exit = inv.exit();
    log::info(&format!("done: exit {}", exit.code()));
    exit
}

fn actions_outputs(env: &Env, inv: &Inventory, report: Option<&str>) {
    use crate::report::actions;
    if let Some(out) = env.get("GITHUB_OUTPUT") {
        let pairs = [("rotated", "false"), ("report", report.unwrap_or_default())];
        if let Err(e) = actions::write_outputs(std::path::Path::new(out), &pairs) {
            log::error(&format!("cannot write step outputs to GITHUB_OUTPUT: {e}"));
        }
    }
    if let Some(summary) = env.get("GITHUB_STEP_SUMMARY") {
        if let Err(e) = actions::append(std::path::Path::new(summary), &table::markdown(inv)) {
            log::error(&format!("cannot write the step summary: {e}"));
        }
    }
}

/// Alerts on the rotations whose verdict (or, when it could not be checked, `rejected` /
/// `failed`) `on` names.
async fn alert_if_wanted(http: &Http, a: &Alert, inv: &Inventory, env: &Env) {
    let lines: Vec<Line> = inv
        .rotations
        .iter()
        .filter_map(|e| {
            let worst = e
                .targets
                .iter()
                .filter(|t| t.verdict == e.verdict)
                .find_map(|t| t.note.as_ref().map(|n| format!("{}: {n}", t.target)));
            match e.problem_name().filter(|p| a.wants(p)) {
                Some(p) => Some(Line { name: e.name.clone(), outcome: p, detail: e.error.clone().or(worst) }),
                None if a.wants(e.verdict.as_str()) => {
                    Some(Line { name: e.name.clone(), outcome: e.verdict.as_str(), detail: worst })
                }
                None => None,
            }
        })
        .collect();
    if !lines.is_empty() {
        alert::send(http, a, &alert::text("status", &lines, inv.rotations.len(), env), inv).await;
    }
}

/// Asks every system of the plan, reads only, and judges every target.
pub async fn inventory(plan: &Plan, http: &Http) -> Inventory {
    let now = Timestamp::now();
    let mut rotations = Vec::new();
    for (r, fresh) in plan.rotations.iter().zip(&plan.freshness) {
        rotations.push(entry(r, fresh, http, now).await);
    }
    let verdict = rotations.iter().map(|e| e.verdict).max().unwrap_or(Verdict::Ok);
    Inventory { version: VERSION, command: "status", checked_at: now, verdict, rotations }
}

async fn entry(r: &Rotation, fresh: &Freshness, http: &Http, now: Timestamp) -> Entry {
    let checked = r.provider.check(http).await;
    let mut set = JoinSet::new();
    for (i, p) in r.targets.iter().enumerate() {
        let (target, http, live) = (p.target.clone(), http.clone(), r.provider.current().clone());
        set.spawn(async move { (i, target.stored(&http, &live).await) });
    }
    let mut stored: Vec<Result<Stored, TargetError>> =
        r.targets.iter().map(|_| Err(TargetError("internal error: the read did not finish".into()))).collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((i, s)) = joined {
            stored[i] = s;
        }
    }
    let kind = r.provider.kind();
    let facts = Facts { checked: &checked, fresh, now, credential: kind.credential, provider: kind.name };
    let targets: Vec<Row> = r
        .targets
        .iter()
        .zip(&stored)
        .map(|(p, s)| {
            let j = judge(p.value, s, &facts);
            Row {
                kind: p.target.kind().to_owned(),
                target: p.target.describe(),
                value: p.value.label(kind.credential).to_owned(),
                ..j
            }
        })
        .collect();
    let (problem, error) = match &checked {
        Ok(_) => (None, None),
        Err(e @ ProviderError::Rejected(_)) => (Some(Problem::Rejected), Some(e.to_string())),
        Err(e) => (Some(Problem::Failed), Some(e.to_string())),
    };
    let ok = checked.as_ref().ok();
    Entry {
        name: r.name.clone(),
        provider: kind.name.to_owned(),
        verdict: targets.iter().map(|t| t.verdict).max().unwrap_or(Verdict::Unknown),
        fingerprint: r.provider.current().fingerprint(),
        min_age: fresh.min_age.map(format_duration),
        max_age: fresh.max_age.map(format_duration),
        warn_before: format_duration(fresh.warn_before),
        created_at: ok.and_then(|c| c.created_at),
        expires_at: ok.and_then(|c| c.expires_at),
        problem,
        error,
        targets,
    }
}

/// What is known of a rotation, for judging its targets.
pub(crate) struct Facts<'a> {
    /// The provider's check: the credential's creation and expiry, or why it failed.
    pub checked: &'a Result<Checked, ProviderError>,
    /// Its freshness settings.
    pub fresh: &'a Freshness,
    /// Now.
    pub now: Timestamp,
    /// What its credential is called (`refresh_token`, `token`).
    pub credential: &'static str,
    /// The provider's name.
    pub provider: &'static str,
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// The verdict for one target holding `value`, from what it said (`stored`) and the facts.
/// The description fields are left empty for the caller.
pub(crate) fn judge(value: ValueKind, stored: &Result<Stored, TargetError>, facts: &Facts) -> Row {
    let now = facts.now;
    let fresh = facts.fresh;
    let checked = facts.checked.as_ref().ok();
    let holds_credential = value == ValueKind::Credential;
    let (seen, last_update) = match stored {
        Ok(Stored::UpdatedAt(t)) => (Seen::Updated, Some(*t)),
        Ok(Stored::NoUpdateTime) => (Seen::Exists, None),
        Ok(Stored::Unknown) => (Seen::Unknown, None),
        Ok(Stored::Missing) => (Seen::Missing, None),
        Err(_) => (Seen::Error, None),
    };
    let created = checked.and_then(|c| c.created_at).filter(|_| holds_credential);
    let expires_at = checked.and_then(|c| c.expires_at).filter(|_| holds_credential);
    // The credential's own creation time is when it was rotated; a target's update time can be
    // later (a `check` re-writes the current value), so the upstream's word comes first.
    let rotated_at = created.or(last_update).filter(|_| !matches!(seen, Seen::Missing | Seen::Error));
    let next_due = rotated_at.map(|t| t.saturating_add(signed(fresh.min_age.unwrap_or_default())).unwrap_or(t));
    let row = |verdict, note: Option<String>| Row {
        kind: String::new(),
        target: String::new(),
        value: String::new(),
        verdict,
        stored: seen,
        last_update,
        rotated_at,
        next_due,
        expires_at,
        note,
    };
    if let Err(e) = facts.checked {
        return row(Verdict::Unknown, Some(e.to_string()));
    }
    match stored {
        Err(e) => return row(Verdict::Unknown, Some(e.0.clone())),
        Ok(Stored::Missing) => {
            return row(Verdict::Unknown, Some("it does not exist: the next rotate run creates it".to_owned()))
        }
        Ok(_) => {}
    }
    if let Some(exp) = expires_at {
        let left = exp.duration_since(now);
        if left <= signed(fresh.warn_before) {
            let what = facts.credential;
            let note = if left <= SignedDuration::ZERO {
                format!(
                    "the {what} expired {}: it cannot rotate any more; create a new one by hand",
                    relative(exp, now)
                )
            } else {
                format!(
                    "the {what} expires {}, within warn_before ({}): run the rotation now (the new one gets a new expiry)",
                    relative(exp, now),
                    format_duration(fresh.warn_before)
                )
            };
            return row(Verdict::Expiring, Some(note));
        }
    }
    let Some(rotated) = rotated_at else {
        let why = format!(
            "the target keeps no update time, and {} cannot tell the {}'s age without spending it",
            facts.provider,
            value.label(facts.credential)
        );
        return row(Verdict::Unknown, Some(why));
    };
    let from_creation = (created.is_some() && seen != Seen::Updated)
        .then(|| format!("age from the {}'s creation (the target keeps no update time)", facts.credential));
    let age = now.duration_since(rotated);
    if let Some(max) = fresh.max_age.filter(|m| age > signed(*m)) {
        let note = format!(
            "last rotated {}, longer ago than max_age ({}): the scheduled rotation has stopped or keeps failing; look at \
             its last runs",
            relative(rotated, now),
            format_duration(max)
        );
        return row(Verdict::Overdue, Some(note));
    }
    match fresh.min_age {
        Some(min) if age < signed(min) => row(Verdict::Ok, from_creation),
        Some(_) => row(Verdict::Due, from_creation),
        None if fresh.max_age.is_none() => row(
            Verdict::Due,
            Some(
                "no min_age or max_age: every run rotates it, and status cannot tell a stopped rotation; set max_age"
                    .to_owned(),
            ),
        ),
        None => row(Verdict::Due, from_creation),
    }
}

/// `3d ago`, `in 5h`, `now`: the largest whole unit.
pub fn relative(t: Timestamp, now: Timestamp) -> String {
    let secs = t.as_second() - now.as_second();
    let n = secs.unsigned_abs();
    let amount = match n {
        0..60 => return "now".to_owned(),
        60..3600 => format!("{}m", n / 60),
        3600..86_400 => format!("{}h", n / 3600),
        _ => format!("{}d", n / 86_400),
    };
    if secs < 0 {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;
    const HOUR: u64 = 3600;

    fn at(now: Timestamp, secs_ago: i64) -> Timestamp {
        now.checked_sub(SignedDuration::from_secs(secs_ago)).unwrap()
    }

    fn fresh(min_h: Option<u64>, max_h: Option<u64>) -> Freshness {
        Freshness {
            min_age: min_h.map(|h| Duration::from_secs(h * HOUR)),
            max_age: max_h.map(|h| Duration::from_secs(h * HOUR)),
            warn_before: Duration::from_secs(7 * DAY),
        }
    }

    fn verdict(
        value: ValueKind,
        stored: Result<Stored, TargetError>,
        checked: Result<Checked, ProviderError>,
        fresh: Freshness,
        now: Timestamp,
    ) -> Row {
        let facts = Facts { checked: &checked, fresh: &fresh, now, credential: "token", provider: "gitlab-token" };
        judge(value, &stored, &facts)
    }

    #[test]
    fn every_verdict_from_an_update_time() {
        let now = Timestamp::now();
        let c = ValueKind::Credential;
        let f = fresh(Some(20), Some(60));
        let v = |ago: u64| verdict(c, Ok(Stored::UpdatedAt(at(now, ago as i64))), Ok(Checked::default()), f, now);
        assert_eq!(v(HOUR).verdict, Verdict::Ok);
        assert_eq!(v(30 * HOUR).verdict, Verdict::Due);
        let overdue = v(3 * DAY);
        assert_eq!(overdue.verdict, Verdict::Overdue);
        assert!(overdue.note.unwrap().starts_with("last rotated 3d ago, longer ago than max_age (2d12h)"));
        assert_eq!(v(HOUR).next_due, Some(at(now, HOUR as i64 - 20 * HOUR as i64)), "last update + min_age");
    }

    #[test]
    fn a_credential_that_expires_within_warn_before_is_expiring_whatever_its_age() {
        let now = Timestamp::now();
        let soon = Checked { created_at: Some(at(now, 3600)), expires_at: Some(at(now, -(3 * DAY as i64))) };
        let r = verdict(ValueKind::Credential, Ok(Stored::NoUpdateTime), Ok(soon), fresh(Some(20), None), now);
        assert_eq!(r.verdict, Verdict::Expiring);
        assert!(r.note.unwrap().starts_with("the token expires in 3d, within warn_before (7d)"));
        let gone = Checked { created_at: None, expires_at: Some(at(now, DAY as i64)) };
        let r = verdict(ValueKind::Credential, Ok(Stored::NoUpdateTime), Ok(gone), fresh(None, None), now);
        assert!(r.note.unwrap().starts_with("the token expired 1d ago"), "expired is expiring too");
        let later = Checked { created_at: Some(at(now, 3600)), expires_at: Some(at(now, -(30 * DAY as i64))) };
        let r = verdict(ValueKind::Credential, Ok(Stored::NoUpdateTime), Ok(later), fresh(Some(20), None), now);
        assert_eq!(r.verdict, Verdict::Ok, "age from the token's creation: {:?}", r.note);
        assert_eq!(r.note.as_deref(), Some("age from the token's creation (the target keeps no update time)"));
    }

    #[test]
    fn unknown_when_nothing_tells_the_age_or_a_read_fails() {
        let now = Timestamp::now();
        let c = ValueKind::Credential;
        let r = verdict(c, Ok(Stored::NoUpdateTime), Ok(Checked::default()), fresh(None, None), now);
        assert_eq!(r.verdict, Verdict::Unknown);
        let r = verdict(c, Ok(Stored::Missing), Ok(Checked::default()), fresh(Some(1), None), now);
        assert_eq!((r.verdict, r.stored), (Verdict::Unknown, Seen::Missing));
        let r = verdict(c, Err(TargetError("x: HTTP 403".into())), Ok(Checked::default()), fresh(Some(1), None), now);
        assert_eq!((r.verdict, r.note.as_deref()), (Verdict::Unknown, Some("x: HTTP 403")));
        let rejected = Err(ProviderError::Rejected("revoked".into()));
        let r = verdict(c, Ok(Stored::UpdatedAt(now)), rejected, fresh(Some(1), None), now);
        assert_eq!((r.verdict, r.note.as_deref()), (Verdict::Unknown, Some("revoked")));
    }

    #[test]
    fn without_min_age_every_run_is_due_and_only_max_age_tells_overdue() {
        let now = Timestamp::now();
        let c = ValueKind::Credential;
        let old = Ok(Stored::UpdatedAt(at(now, 30 * DAY as i64)));
        let r = verdict(c, old.clone(), Ok(Checked::default()), fresh(None, None), now);
        assert_eq!(r.verdict, Verdict::Due);
        assert!(r.note.unwrap().contains("set max_age"));
        let r = verdict(c, old, Ok(Checked::default()), fresh(None, Some(24)), now);
        assert_eq!(r.verdict, Verdict::Overdue);
    }

    #[test]
    fn an_access_token_target_is_judged_by_its_own_update_time() {
        let now = Timestamp::now();
        let soon = Checked { created_at: Some(now), expires_at: Some(now) };
        let r =
            verdict(ValueKind::AccessToken, Ok(Stored::UpdatedAt(at(now, 3600))), Ok(soon), fresh(Some(20), None), now);
        assert_eq!((r.verdict, r.expires_at), (Verdict::Ok, None), "the credential's expiry is not the access token's");
    }

    #[test]
    fn exit_codes() {
        let e = |verdict, problem| Entry {
            name: String::new(),
            provider: String::new(),
            verdict,
            fingerprint: String::new(),
            min_age: None,
            max_age: None,
            warn_before: String::new(),
            created_at: None,
            expires_at: None,
            problem,
            error: None,
            targets: vec![],
        };
        let inv = |es: Vec<Entry>| Inventory {
            version: 1,
            command: "status",
            checked_at: Timestamp::now(),
            verdict: Verdict::Ok,
            rotations: es,
        };
        assert_eq!(inv(vec![e(Verdict::Ok, None), e(Verdict::Due, None)]).exit(), Exit::Ok);
        assert_eq!(inv(vec![e(Verdict::Ok, None), e(Verdict::Unknown, None)]).exit(), Exit::Failed);
        assert_eq!(
            inv(vec![e(Verdict::Expiring, None), e(Verdict::Unknown, Some(Problem::Rejected))]).exit(),
            Exit::Rejected
        );
    }

    #[test]
    fn relative_times() {
        let now = Timestamp::now();
        assert_eq!(relative(at(now, 3 * DAY as i64 + 5), now), "3d ago");
        assert_eq!(relative(at(now, -(5 * HOUR as i64)), now), "in 5h");
        assert_eq!(relative(at(now, 90), now), "1m ago");
        assert_eq!(relative(now, now), "now");
    }
}
