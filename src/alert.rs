//! Alerts: after a run with an outcome the user asked to hear about (`alert.on`), one POST of a
//! Slack-compatible JSON body, `{"text": "...", "secret_rotator": <the report>}`, to a webhook.
//!
//! The webhook URL is a credential (whoever has a Slack incoming-webhook URL can post to the
//! channel): it is held in a [`Secret`] from the moment it is read, and no log line, error or
//! report names it, not even its host. Errors of the HTTP layer (which may quote the URL) are
//! reduced to their kind before they are logged. An alert is retried inside a 5 s budget; one
//! that fails is logged in one line and never changes the run's exit code.

use std::time::Duration;

use serde::Serialize;
use url::Url;

use crate::error::InputError;
use crate::http::{backoff, retry_delay, Http, HttpError, Request};
use crate::inputs::{is_loopback, Env, Field, Fields};
use crate::log::{self, one_line};
use crate::report::{Report, RotationStatus};
use crate::secret::{redact, Secret};

/// The config file's `alert:` section.
pub const SECTION: Field =
    Field::plain("alert", "alerts: a webhook, and the outcomes that send one (webhook, on)").config_only();
/// The webhook: input `alert_webhook`, key `alert.webhook`.
pub const WEBHOOK: Field = Field::secret(
    "alert_webhook",
    "a webhook URL (Slack-compatible: Slack, Mattermost, Teams workflows, Discord .../slack) that receives an alert \
     after a run with an outcome in alert_on; https (http only to loopback)",
)
.key("webhook");
/// The outcomes that alert: input `alert_on`, key `alert.on`.
pub const ON: Field = Field::plain(
    "alert_on",
    "comma-separated outcomes that send an alert (default: critical, rejected, failed, overdue, expiring)",
)
.key("on");

/// How long an alert may take, retries included.
pub const BUDGET: Duration = Duration::from_secs(5);

/// The outcomes of `rotate` and `check` that `on` may name.
pub const RUN_OUTCOMES: &[&str] = &["critical", "rejected", "failed", "rotated", "skipped", "planned"];
/// The verdicts of `status` that `on` may name.
pub const STATUS_VERDICTS: &[&str] = &["expiring", "overdue", "unknown", "due", "ok"];
/// `on` when it is not given: a run's failures, and a credential that needs rotating now.
pub const DEFAULT_ON: &[&str] = &["critical", "rejected", "failed", "overdue", "expiring"];

/// The longest text sent (Discord's Slack-compatible endpoint takes at most 2000 characters).
const MAX_TEXT: usize = 1900;
/// The longest detail quoted for one rotation.
const MAX_DETAIL: usize = 400;

/// Where alerts go and when, validated.
#[derive(Debug)]
pub struct Alert {
    /// The URL as given, held so that the redactor knows that spelling too.
    _given: Secret,
    /// The URL as parsed (it may differ in spelling from what was given): known to the redactor too.
    normalized: Secret,
    on: Vec<&'static str>,
}

impl Alert {
    /// True when an outcome or verdict named `outcome` sends an alert.
    pub fn wants(&self, outcome: &str) -> bool {
        self.on.contains(&outcome)
    }
}

/// Reads `alert_webhook` / `alert_on` (inputs win) or the config file's `alert:` section
/// (`top`, `None` in single-rotation mode). `None` when no webhook is given.
pub fn parse(inputs: &Fields, top: Option<&Fields>) -> Result<Option<Alert>, InputError> {
    let section = match top {
        Some(t) => t.section(&SECTION)?,
        None => None,
    };
    if let Some(s) = &section {
        s.finish(&[WEBHOOK, ON], &[])?;
    }
    let (webhook, webhook_label) = match (inputs.secret(&WEBHOOK)?, &section) {
        (Some(w), _) => (Some(w), inputs.label(&WEBHOOK)),
        (None, Some(s)) => (s.secret(&WEBHOOK)?, s.label(&WEBHOOK)),
        (None, None) => (None, inputs.label(&WEBHOOK)),
    };
    let (on, on_label) = match (inputs.list(&ON)?, &section) {
        (Some(l), _) => (Some(l), inputs.label(&ON)),
        (None, Some(s)) => (s.list(&ON)?, s.label(&ON)),
        (None, None) => (None, inputs.label(&ON)),
    };
    let Some(webhook) = webhook else {
        if let Some(s) = &section {
            return Err(s.error(&WEBHOOK, "is required: { env: NAME } or { file: PATH } holding the webhook's URL"));
        }
        if on.is_some() {
            return Err(InputError::new(on_label, "needs alert_webhook: the URL that receives the alerts"));
        }
        return Ok(None);
    };
    let normalized = Secret::new(check_webhook(&webhook_label, &webhook)?.as_str());
    let on = match on {
        None => DEFAULT_ON.to_vec(),
        Some(names) => outcomes(&on_label, &names)?,
    };
    Ok(Some(Alert { _given: webhook, normalized, on }))
}

fn outcomes(input: &str, names: &[String]) -> Result<Vec<&'static str>, InputError> {
    let known: Vec<&'static str> = RUN_OUTCOMES.iter().chain(STATUS_VERDICTS).copied().collect();
    if names.is_empty() {
        return Err(InputError::new(input, format!("is empty: name at least one of {}", known.join(", "))));
    }
    names
        .iter()
        .map(|n| {
            known.iter().copied().find(|k| k == n).ok_or_else(|| {
                InputError::new(
                    input,
                    format!(
                        "`{n}` is not an outcome: use {} (rotate, check) or {} (status)",
                        RUN_OUTCOMES.join(", "),
                        STATUS_VERDICTS.join(", ")
                    ),
                )
            })
        })
        .collect()
}

/// The webhook URL: https, or http to a loopback host. The messages never repeat it.
fn check_webhook(input: &str, webhook: &Secret) -> Result<Url, InputError> {
    let hidden = "(the URL is not shown: it is a secret)";
    let url = Url::parse(webhook.expose().trim())
        .map_err(|_| InputError::new(input, format!("is not a URL: give the webhook's whole https:// URL {hidden}")))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(InputError::new(
                input,
                format!("uses plain http: use https (http is allowed only to loopback hosts) {hidden}"),
            ))
        }
        _ => return Err(InputError::new(input, format!("is not an https:// URL {hidden}"))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(InputError::new(
            input,
            format!("holds a user name or password: use a webhook whose URL carries its own token {hidden}"),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(InputError::new(input, format!("has no host {hidden}")));
    }
    Ok(url)
}

/// One rotation an alert is about.
#[derive(Debug, Clone)]
pub struct Line {
    /// The rotation.
    pub name: String,
    /// Its outcome or verdict (`critical`, `overdue`).
    pub outcome: &'static str,
    /// What happened and what to do (the error message, which says how to fix it).
    pub detail: Option<String>,
}

/// The alert's text: what ran where, one line per rotation, and a link to the run.
pub fn text(command: &str, lines: &[Line], total: usize, env: &Env) -> String {
    let (github, gitlab) = (env.get("GITHUB_REPOSITORY"), env.get("CI_PROJECT_PATH"));
    let place = if env.is_true("GITLAB_CI") { gitlab.or(github) } else { github.or(gitlab) };
    let place = place.map(|p| format!(" in {p}")).unwrap_or_default();
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for l in lines {
        match counts.iter_mut().find(|(o, _)| *o == l.outcome) {
            Some((_, n)) => *n += 1,
            None => counts.push((l.outcome, 1)),
        }
    }
    let counts: Vec<String> = counts.iter().map(|(o, n)| format!("{n} {}", shout(o))).collect();
    let plural = if total == 1 { "" } else { "s" };
    let mut text = format!("secret-rotator {command}{place}: {} (of {total} rotation{plural})", counts.join(", "));
    let link = run_link(env).map(|l| format!("\nRun: {l}")).unwrap_or_default();
    for (i, l) in lines.iter().enumerate() {
        let mut line = format!("\n• {}: {}", l.name, shout(l.outcome));
        if let Some(d) = &l.detail {
            line.push_str(" — ");
            line.push_str(&cut(&one_line(d), MAX_DETAIL));
        }
        let more = format!("\n… and {} more (see secret_rotator.rotations)", lines.len() - i);
        if text.chars().count() + line.chars().count() + more.chars().count() + link.chars().count() > MAX_TEXT {
            text.push_str(&more);
            break;
        }
        text.push_str(&line);
    }
    text.push_str(&link);
    redact(&text)
}

fn shout(outcome: &str) -> String {
    if outcome == "critical" {
        "CRITICAL".to_owned()
    } else {
        outcome.to_owned()
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// The link to this run: GitHub Actions' run page, or GitLab's job page (in a GitLab job first).
pub fn run_link(env: &Env) -> Option<String> {
    let github = match (env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY"), env.get("GITHUB_RUN_ID")) {
        (Some(server), Some(repo), Some(id)) => {
            Some(format!("{}/{repo}/actions/runs/{id}", server.trim_end_matches('/')))
        }
        _ => None,
    };
    let gitlab = env.get("CI_JOB_URL").map(str::to_owned);
    if env.is_true("GITLAB_CI") {
        gitlab.or(github)
    } else {
        github.or(gitlab)
    }
}

/// After `rotate` or `check`: alerts when a rotation's outcome is one `on` names.
pub async fn after_run(http: &Http, alert: &Alert, command: &str, report: &Report, env: &Env) {
    let lines: Vec<Line> = report
        .rotations
        .iter()
        .filter(|r| alert.wants(r.status.as_str()))
        .map(|r| Line { name: r.name.clone(), outcome: outcome(r.status), detail: r.error.clone() })
        .collect();
    if lines.is_empty() {
        return;
    }
    send(http, alert, &text(command, &lines, report.rotations.len(), env), report).await;
}

fn outcome(status: RotationStatus) -> &'static str {
    RUN_OUTCOMES.iter().copied().find(|o| *o == status.as_str()).unwrap_or("failed")
}

/// Sends one alert, `text` and the report, and logs the result in one line.
pub async fn send(http: &Http, alert: &Alert, text: &str, report: &impl Serialize) {
    let body = serde_json::json!({ "text": text, "secret_rotator": report });
    // Every live secret is scrubbed from the body, as from the report file.
    let body = match serde_json::from_str(&redact(&body.to_string())) {
        Ok(b) => b,
        Err(_) => {
            log::error("alert not sent: it could not be built; the exit code is unchanged");
            return;
        }
    };
    match post(http, alert, body).await {
        Ok((status, attempts)) => {
            log::info(&format!("alert sent: the webhook answered HTTP {status}{}", tries(attempts)))
        }
        Err((why, attempts)) => {
            log::error(&format!("alert not sent: {why}{}; the exit code is unchanged", tries(attempts)))
        }
    }
}

fn tries(attempts: u32) -> String {
    if attempts > 1 {
        format!(" ({attempts} attempts)")
    } else {
        String::new()
    }
}

/// Why an alert was not delivered, in words that never quote the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    Status(u16),
    Unreachable,
    Tls,
    Connection,
    TooLarge,
    Timeout,
    Budget,
    Interrupted,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status(s @ (404 | 410)) => {
                write!(f, "the webhook answered HTTP {s} (deleted, or a wrong URL: check alert_webhook)")
            }
            Failure::Status(s @ (401 | 403)) => {
                write!(f, "the webhook answered HTTP {s} (not allowed: check alert_webhook)")
            }
            Failure::Status(s @ (400 | 413 | 422)) => {
                write!(f, "the webhook answered HTTP {s} (it refused the message)")
            }
            Failure::Status(s) => write!(f, "the webhook answered HTTP {s}"),
            Failure::Unreachable => f.write_str("the webhook could not be reached"),
            Failure::Tls => f.write_str("the webhook's certificate was refused (a private CA: pass it with ca_file)"),
            Failure::Connection => f.write_str("the connection to the webhook failed"),
            Failure::TooLarge => f.write_str("the webhook's answer was too large"),
            Failure::Timeout => f.write_str("the webhook did not answer in time"),
            Failure::Budget => write!(f, "no answer from the webhook within {} s", BUDGET.as_secs()),
            Failure::Interrupted => f.write_str("interrupted by a termination signal"),
        }
    }
}

/// POSTs the body, retrying what may pass on a second try, all within [`BUDGET`]. Returns the
/// status and attempts, or why it failed and the attempts.
async fn post(http: &Http, alert: &Alert, body: serde_json::Value) -> Result<(u16, u32), (Failure, u32)> {
    let deadline = tokio::time::Instant::now() + BUDGET;
    let url = Url::parse(alert.normalized.expose()).map_err(|_| (Failure::Unreachable, 0))?;
    let req = Request::post(url).json(body);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let sent = tokio::time::timeout_at(deadline, http.send(&req)).await;
        let (failure, wait) = match sent {
            Err(_) => return Err((Failure::Budget, attempts)),
            Ok(Ok(r)) if r.status.is_success() => return Ok((r.status.as_u16(), attempts)),
            Ok(Ok(r)) => (Failure::Status(r.status.as_u16()), retry_delay(&r, attempts)),
            Ok(Err(e)) => match e {
                HttpError::Tls(_) => (Failure::Tls, None),
                HttpError::TooLarge => (Failure::TooLarge, None),
                HttpError::Interrupted => (Failure::Interrupted, None),
                HttpError::NotSent(_) => (Failure::Unreachable, Some(backoff(attempts))),
                HttpError::Timeout(_) => (Failure::Timeout, Some(backoff(attempts))),
                HttpError::Transport(_) => (Failure::Connection, Some(backoff(attempts))),
            },
        };
        let Some(wait) = wait else { return Err((failure, attempts)) };
        if tokio::time::Instant::now() + wait >= deadline || !http.shutdown().sleep(wait).await {
            return Err((failure, attempts));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::http::testing::{json_body, Fake};
    use crate::inputs::{Document, Inputs};

    const URL: &str = "https://hooks.example.com/services/T000/B000/XXXXXXXXXXXXXXXX";

    fn from_inputs(pairs: &[(&str, &str)]) -> Result<Option<Alert>, InputError> {
        let env = Env::from_pairs(pairs.iter().copied());
        let inputs = Inputs::collect(crate::config::table(), &HashMap::new(), &env);
        parse(&Fields::inputs(&inputs, &env), None)
    }

    fn from_yaml(yaml: &str, pairs: &[(&str, &str)]) -> Result<Option<Alert>, InputError> {
        let env = Env::from_pairs(pairs.iter().copied());
        let inputs = Inputs::collect(crate::config::table(), &HashMap::new(), &env);
        let doc = Document::parse(yaml, "c.yml")?;
        parse(&Fields::inputs(&inputs, &env), Some(&Fields::yaml(doc.root(), "", &env)))
    }

    #[test]
    fn defaults_and_names() {
        let a = from_inputs(&[("INPUT_ALERT_WEBHOOK", URL)]).unwrap().unwrap();
        assert_eq!(a.on, DEFAULT_ON);
        assert!(a.wants("critical") && a.wants("expiring") && !a.wants("rotated") && !a.wants("unknown"));
        let a = from_inputs(&[("INPUT_ALERT_WEBHOOK", URL), ("INPUT_ALERT_ON", "rotated, unknown")]).unwrap().unwrap();
        assert_eq!(a.on, ["rotated", "unknown"]);
        assert!(from_inputs(&[]).unwrap().is_none(), "no webhook, no alerts");
    }

    #[test]
    fn the_config_section_and_its_on_key() {
        let yaml = "alert:\n  webhook: { env: HOOK }\n  on: [critical, overdue]\nrotations: []\n";
        let a = from_yaml(yaml, &[("HOOK", URL)]).unwrap().unwrap();
        assert_eq!(a.on, ["critical", "overdue"], "`on` is a key, not YAML 1.1's true");
        let e = from_yaml("alert:\n  webhook: { env: HOOK }\n  on: [critcal]\n", &[("HOOK", URL)]).unwrap_err();
        assert_eq!(e.input, "alert.on");
        assert!(e.message.starts_with("`critcal` is not an outcome: use critical, rejected"), "{e}");
        let e = from_yaml("alert:\n  webhook: 'https://literal.example/x'\n", &[]).unwrap_err();
        assert!(e.message.contains("literal secret is refused") && !e.to_string().contains("literal.example"), "{e}");
        let e = from_yaml("alert:\n  on: [critical]\n", &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "alert.webhook: is required: { env: NAME } or { file: PATH } holding the webhook's URL"
        );
    }

    #[test]
    fn a_bad_webhook_is_refused_without_repeating_it() {
        for (url, says) in [
            ("http://hooks.example.com/services/T0/B0/SECRETPART", "plain http"),
            ("hooks.example.com/services/T0/B0/SECRETPART", "is not a URL"),
            ("ftp://hooks.example.com/SECRETPART", "is not an https"),
            ("https://user:SECRETPART@hooks.example.com/x", "user name or password"),
        ] {
            let e = from_inputs(&[("INPUT_ALERT_WEBHOOK", url)]).unwrap_err();
            assert_eq!(e.input, "input alert_webhook");
            assert!(e.message.contains(says), "{url}: {e}");
            assert!(!e.to_string().contains("SECRETPART") && !e.to_string().contains("hooks.example"), "{e}");
        }
        assert!(from_inputs(&[("INPUT_ALERT_WEBHOOK", "http://127.0.0.1:9/hook")]).unwrap().is_some());
        let e = from_inputs(&[("INPUT_ALERT_ON", "critical")]).unwrap_err();
        assert_eq!(e.to_string(), "input alert_on: needs alert_webhook: the URL that receives the alerts");
    }

    #[test]
    fn every_outcome_name_is_a_status_the_run_reports() {
        use RotationStatus::*;
        let statuses: Vec<&str> = [Critical, Rejected, Failed, Rotated, Skipped, Planned].map(|s| s.as_str()).to_vec();
        assert_eq!(statuses, RUN_OUTCOMES);
        let verdicts: Vec<&str> = crate::status::Verdict::ALL.iter().rev().map(|v| v.as_str()).collect();
        assert_eq!(verdicts, STATUS_VERDICTS);
    }

    #[test]
    fn the_text_names_each_rotation_its_outcome_its_fix_and_the_run() {
        let env = Env::from_pairs([
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/app"),
            ("GITHUB_RUN_ID", "42"),
        ]);
        let lines = [
            Line {
                name: "a".into(),
                outcome: "critical",
                detail: Some("stored nowhere: re-authorize\nby hand".into()),
            },
            Line { name: "b".into(), outcome: "failed", detail: None },
        ];
        assert_eq!(
            text("rotate", &lines, 3, &env),
            "secret-rotator rotate in acme/app: 1 CRITICAL, 1 failed (of 3 rotations)\n\
             • a: CRITICAL — stored nowhere: re-authorize\\nby hand\n\
             • b: failed\n\
             Run: https://github.com/acme/app/actions/runs/42"
        );
        let gitlab = Env::from_pairs([("CI_JOB_URL", "https://gitlab.example.com/acme/app/-/jobs/7")]);
        assert!(
            text("status", &lines[1..], 1, &gitlab).ends_with("\nRun: https://gitlab.example.com/acme/app/-/jobs/7")
        );
        let many: Vec<Line> =
            (0..50).map(|i| Line { name: format!("r{i}"), outcome: "failed", detail: Some("x".repeat(300)) }).collect();
        let t = text("rotate", &many, 50, &env);
        assert!(t.chars().count() <= MAX_TEXT, "{}", t.chars().count());
        assert!(t.contains("more (see secret_rotator.rotations)") && t.ends_with("/actions/runs/42"), "{t}");
    }

    fn alert() -> Alert {
        from_inputs(&[("INPUT_ALERT_WEBHOOK", URL)]).unwrap().unwrap()
    }

    #[tokio::test]
    async fn one_post_with_the_text_and_the_report() {
        let fake = Fake::new();
        fake.reply(200, "ok");
        let report = serde_json::json!({ "version": 1 });
        post(&fake.http(), &alert(), serde_json::json!({ "text": "t", "secret_rotator": report })).await.unwrap();
        assert_eq!(fake.lines(), [format!("POST {URL}")]);
        assert_eq!(
            json_body(&fake.requests()[0]),
            serde_json::json!({ "text": "t", "secret_rotator": { "version": 1 } })
        );
    }

    #[tokio::test]
    async fn a_5xx_is_retried_and_a_404_is_final() {
        let fake = Fake::new();
        fake.reply(503, "").reply(200, "ok");
        assert_eq!(post(&fake.http(), &alert(), serde_json::json!({})).await.unwrap(), (200, 2));
        let fake = Fake::new();
        fake.reply(404, "no_service");
        let (why, attempts) = post(&fake.http(), &alert(), serde_json::json!({})).await.unwrap_err();
        assert_eq!((why.clone(), attempts), (Failure::Status(404), 1));
        assert!(!why.to_string().contains("hooks.example"));
    }
}
