//! Alerts, end to end: the built binary posts to a local webhook receiver as strict as Slack's
//! (`tests/support/webhook_receiver.py`) once per alerting run, with the report and never a value;
//! not at all on success; and a receiver that is down or slow never changes the run's exit code.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Fails when any value appears in any of the places (stdout without its `::add-mask::` lines).
fn assert_no_value(places: &[(&str, String)], values: &[String]) {
    for (place, text) in places {
        let text: String = text.lines().filter(|l| !l.starts_with("::add-mask::")).collect::<Vec<_>>().join("\n");
        for v in values {
            assert!(!text.contains(v.as_str()), "{place} holds a value ({}...): {text}", &v[..v.len().min(8)]);
        }
    }
}

fn github_run(bin: Bin) -> Bin {
    bin.env("GITHUB_SERVER_URL", "https://github.com").env("GITHUB_RUN_ID", "77")
}

#[test]
fn a_critical_run_posts_one_alert_with_the_report_and_no_value() {
    let oauth = OAuth::start();
    let proxy = FaultProxy::start(&oauth.url);
    let gh = GitHub::start();
    let hook = Webhook::start();
    let r1 = oauth.mint(BASIC_ID);
    // The preflight's PUT goes through; every write after the rotation fails.
    gh.fault(json!({ "method": "PUT", "path": "/actions/secrets/OAUTH_REFRESH_TOKEN$", "after": 1, "count": 100, "status": 500 }));
    let run = github_run(Bin::actions(&["rotate"]))
        .envs(oauth_inputs(&proxy.url, &gh, &r1))
        .env("INPUT_ACCESS_TOKEN_SECRET_NAME", "OAUTH_ACCESS_TOKEN")
        .env("INPUT_ALERT_WEBHOOK", hook.hook_url())
        .env("INPUT_LOG_LEVEL", "debug")
        .run();
    assert_eq!(run.code, 3, "stderr: {}", run.stderr);

    let got = hook.received();
    assert_eq!(got.len(), 1, "one POST per alerting run: {got:?}");
    let post = &got[0];
    assert_eq!((post["status"].as_u64(), post["content_type"].as_str()), (Some(200), Some("application/json")));
    assert_eq!(post["path"], format!("/services/T0001/B0001/{HOOK_TOKEN}"));
    let text = post["body"]["text"].as_str().unwrap();
    assert!(text.starts_with("secret-rotator rotate in acme/app: 1 CRITICAL (of 1 rotation)\n"), "{text}");
    assert!(
        text.contains("\n• oauth-refresh-token: CRITICAL — the new credential could not be stored in every target"),
        "{text}"
    );
    assert!(text.contains("re-authorize by hand"), "the fix, from the error message: {text}");
    assert!(text.ends_with("\nRun: https://github.com/acme/app/actions/runs/77"), "{text}");
    assert_eq!(post["body"]["secret_rotator"], run.report(), "the report, as written to the file");
    assert_eq!(post["body"]["secret_rotator"]["rotations"][0]["status"], "critical");

    let issued = proxy.issued();
    assert!(issued.len() >= 2, "a refresh token and an access token were issued: {issued:?}");
    let mut values: Vec<String> = issued;
    values.extend([r1, BASIC_SECRET.into(), GH_TOKEN.into(), HOOK_TOKEN.into(), hook.hook_url()]);
    let places = [
        ("the alert", post["raw"].as_str().unwrap().to_owned()),
        ("stdout", run.stdout.clone()),
        ("stderr", run.stderr.clone()),
        ("the report", run.file("secret-rotator-report.json")),
        ("the summary", run.file("summary.md")),
    ];
    assert_no_value(&places, &values);
    let sent: Vec<&str> = run.stderr.lines().filter(|l| l.contains("alert")).collect();
    assert_eq!(sent, ["secret-rotator: info: alert sent: the webhook answered HTTP 200"], "{}", run.stderr);
}

#[test]
fn a_successful_run_sends_none_and_a_rejected_one_does_from_gitlab() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let hook = Webhook::start();
    let r1 = oauth.mint(BASIC_ID);
    let gitlab_job = |bin: Bin| {
        bin.env("INPUT_TARGET", "github")
            .env("GITHUB_REPOSITORY", REPO)
            .env("GITLAB_CI", "true")
            .env("CI_PROJECT_PATH", "acme/ops")
            .env("CI_JOB_URL", "https://gitlab.example.com/acme/ops/-/jobs/991")
            .env("INPUT_ALERT_WEBHOOK", hook.hook_url())
    };
    let run = gitlab_job(Bin::new(&["rotate"])).envs(oauth_inputs(&oauth.url, &gh, &r1)).run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(hook.requests(), Vec::<Value>::new(), "no alert on success");
    assert!(!run.stderr.contains("alert"), "{}", run.stderr);
    let r2 = gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").unwrap();

    // The spent token again (a stale copy): the provider refuses it, and revokes the family.
    let run = gitlab_job(Bin::new(&["rotate"])).envs(oauth_inputs(&oauth.url, &gh, &r1)).run();
    assert_eq!(run.code, 4, "stderr: {}", run.stderr);
    let got = hook.received();
    assert_eq!(got.len(), 1, "{got:?}");
    let text = got[0]["body"]["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "secret-rotator rotate in acme/ops: 1 rejected (of 1 rotation)\n• oauth-refresh-token: rejected — "
        ),
        "{text}"
    );
    assert!(text.ends_with("\nRun: https://gitlab.example.com/acme/ops/-/jobs/991"), "{text}");
    assert_eq!(got[0]["body"]["secret_rotator"]["rotations"][0]["status"], "rejected");
    let values = [r1, r2, BASIC_SECRET.into(), GH_TOKEN.into(), HOOK_TOKEN.into()];
    assert_no_value(&[("the alert", got[0]["raw"].as_str().unwrap().to_owned()), ("stderr", run.stderr)], &values);
}

#[test]
fn alert_on_chooses_the_outcomes() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let hook = Webhook::start();
    let r1 = oauth.mint(BASIC_ID);
    let run = Bin::actions(&["rotate"])
        .envs(oauth_inputs(&oauth.url, &gh, &r1))
        .env("INPUT_ALERT_WEBHOOK", hook.hook_url())
        .env("INPUT_ALERT_ON", "rotated")
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let got = hook.received();
    assert_eq!(got.len(), 1);
    assert!(got[0]["body"]["text"].as_str().unwrap().contains("• oauth-refresh-token: rotated"), "{got:?}");

    // A failed preflight is not `critical`: with on = critical, nothing is sent.
    let r2 = gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").unwrap();
    let run = Bin::actions(&["rotate"])
        .envs(oauth_inputs(&oauth.url, &gh, &r2))
        .env("INPUT_GITHUB_TOKEN", GH_READONLY)
        .env("INPUT_ALERT_WEBHOOK", hook.hook_url())
        .env("INPUT_ALERT_ON", "critical")
        .run();
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert_eq!(hook.received().len(), 1, "no second alert");
    // `check` alerts on its failures as well (the default on).
    let run = Bin::actions(&["check"])
        .envs(oauth_inputs(&oauth.url, &gh, &r2))
        .env("INPUT_GITHUB_TOKEN", GH_READONLY)
        .env("INPUT_ALERT_WEBHOOK", hook.hook_url())
        .run();
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    let got = hook.received();
    assert_eq!(got.len(), 2);
    assert!(
        got[1]["body"]["text"].as_str().unwrap().starts_with("secret-rotator check in acme/app: 1 failed"),
        "{got:?}"
    );
    assert!(oauth.active(&r2), "check spent nothing");
}

/// A run whose preflight fails (exit 1) with its alert going to `webhook`; waits at most 60 s.
fn failing_run_alerting(webhook: &str) -> (i32, String) {
    let gh = GitHub::start();
    let bin = Bin::actions(&["rotate"])
        .envs(oauth_inputs("http://127.0.0.1:9", &gh, "r1-never-used-0123456789"))
        .env("INPUT_GITHUB_TOKEN", GH_READONLY)
        .env("INPUT_ALERT_WEBHOOK", webhook)
        .env("INPUT_TIMEOUT", "2m");
    let (mut child, _dir) = bin.spawn();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the run did not end: the alert's budget did not hold");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn a_receiver_that_is_down_or_slow_never_changes_the_exit_code() {
    let closed = ClosedPort::start();
    let down = format!("http://127.0.0.1:{}/services/T0001/B0001/{HOOK_TOKEN}", closed.port);
    let (code, stderr) = failing_run_alerting(&down);
    assert_eq!(code, 1, "the run's own exit code: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("alert")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("secret-rotator: error: alert not sent: the webhook could not be reached ("),
        "{stderr}"
    );
    assert!(lines[0].ends_with("attempts); the exit code is unchanged"), "{stderr}");
    assert_no_value(&[("stderr", stderr)], &[HOOK_TOKEN.into(), format!("127.0.0.1:{}", closed.port)]);

    let hook = Webhook::start();
    hook.fault(json!({ "method": "POST", "path": "/services/", "count": 100, "delay": 120, "status": 200 }));
    let (code, stderr) = failing_run_alerting(&hook.hook_url());
    assert_eq!(code, 1, "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("alert")).collect();
    assert_eq!(
        lines,
        ["secret-rotator: error: alert not sent: no answer from the webhook within 5 s; the exit code is unchanged"],
        "{stderr}"
    );
    assert_no_value(&[("stderr", stderr)], &[HOOK_TOKEN.into(), hook.url.clone()]);

    // A 5xx is retried inside the budget.
    let hook = Webhook::start();
    hook.fault(json!({ "method": "POST", "path": "/services/", "count": 1, "status": 503 }));
    let (code, stderr) = failing_run_alerting(&hook.hook_url());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("info: alert sent: the webhook answered HTTP 200 (2 attempts)"), "{stderr}");
    assert_eq!(hook.received().len(), 1);
    assert_eq!(hook.requests().len(), 2);
}

#[test]
fn status_alerts_on_overdue_and_expiring_only() {
    let gh = GitHub::start();
    let hook = Webhook::start();
    let stamp = |secs: i64| {
        let t = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(secs);
        jiff::Timestamp::from_second(t.as_second()).unwrap().to_string()
    };
    let seed = |name: &str, ago: i64| json!({ "scope": ["repo", REPO], "name": name, "value": "r1-stored-0123456789", "updated_at": stamp(ago) });
    gh.setup(json!({ "secrets": [seed("FRESH", 3600), seed("STALE", 10 * 86_400)] }));
    let status = |secret: &str| {
        Bin::actions(&["status"])
            .envs(oauth_inputs("http://127.0.0.1:9", &gh, "r1-stored-0123456789"))
            .env("INPUT_SECRET_NAME", secret)
            .env("INPUT_MIN_AGE", "1d")
            .env("INPUT_ALERT_WEBHOOK", hook.hook_url())
            .run()
    };
    let run = status("FRESH");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(hook.requests(), Vec::<Value>::new());
    let run = status("STALE");
    assert_eq!(run.code, 1, "{}", run.stdout);
    let got = hook.received();
    assert_eq!(got.len(), 1);
    let body = &got[0]["body"];
    let text = body["text"].as_str().unwrap();
    assert!(text.starts_with("secret-rotator status in acme/app: 1 overdue (of 1 rotation)\n• stale: overdue — acme/app secret STALE: last rotated 10d ago, longer ago than max_age (3d)"), "{text}");
    assert_eq!(body["secret_rotator"]["command"], "status");
    assert_eq!(body["secret_rotator"], run.report());
    assert!(gh.requests().iter().all(|r| r["method"] == "GET"));
}

#[test]
fn the_receiver_refuses_what_slack_refuses() {
    // The receiver the tests above rely on: a malformed alert would be refused, not counted.
    let hook = Webhook::start();
    let c = reqwest::blocking::Client::new();
    let post = |body: &str, ctype: &str| {
        let r = c.post(hook.hook_url()).header("content-type", ctype).body(body.to_owned()).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(post(r#"{"text": "hello"}"#, "application/json"), (200, "ok".to_owned()));
    assert_eq!(post(r#"{"secret_rotator": {}}"#, "application/json"), (400, "no_text".to_owned()));
    assert_eq!(post(r#"{"text": "  "}"#, "application/json"), (400, "no_text".to_owned()));
    assert_eq!(post("[1]", "application/json"), (400, "invalid_payload".to_owned()));
    assert_eq!(post("text=hello", "application/x-www-form-urlencoded").0, 415);
    let kept: Vec<u64> = hook.received().iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(kept, [200, 400, 400, 400], "every JSON POST is kept with its answer");
}
