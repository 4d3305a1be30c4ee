//! Two runs at once. The docs say to serialize runs (`concurrency:`, `resource_group`); a second
//! run that starts anyway must fail safe: run B, started with R1, must never re-write R1 over the
//! R2 that run A just stored (and then spend R1, which makes a provider with reuse detection
//! revoke the whole family, R2 included).

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const SECRET: &str = "OAUTH_REFRESH_TOKEN";

fn stored(gh: &GitHub) -> String {
    gh.repo_secret(REPO, SECRET).expect("the secret exists")
}

fn puts_from(gh: &GitHub, since: f64) -> usize {
    gh.requests().iter().filter(|r| r["method"] == "PUT" && r["time"].as_f64().unwrap() > since).count()
}

/// Workflow run 4711 (run B) started a minute ago: its jobs received their secrets then.
fn run_b_started_a_minute_ago(gh: &GitHub) {
    let b_started = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
    gh.setup(json!({ "runs": { "4711": { "run_started_at": b_started.to_string() } } }));
}

/// The job of run B received R1 before run A stored R2 (its workflow run started earlier):
/// B stops in its preflight, writes nothing and never presents R1.
#[test]
fn a_run_whose_secrets_predate_the_stored_value_stops_before_overwriting_it() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    run_b_started_a_minute_ago(&gh);

    let a = Bin::actions(&["rotate"]).envs(oauth_inputs(&oauth.url, &gh, &r1)).run();
    assert_eq!(a.code, 0, "run A: {}", a.stderr);
    let r2 = stored(&gh);
    assert_ne!(r2, r1);

    let before_b = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
    let b = Bin::actions(&["rotate"]).envs(oauth_inputs(&oauth.url, &gh, &r1)).env("GITHUB_RUN_ID", "4711").run();
    assert_eq!(b.code, 1, "run B fails safe: {}", b.stderr);
    let error = b.report()["rotations"][0]["error"].as_str().unwrap().to_owned();
    assert!(error.contains("another run has most likely rotated it already"), "{error}");
    assert!(error.contains("concurrency:"), "the message says how to prevent it: {error}");
    assert_eq!(puts_from(&gh, before_b), 0, "run B wrote nothing");
    assert_eq!(stored(&gh), r2, "the newer value stays");
    assert!(oauth.active(&r2), "R1 was never presented again: reuse detection would have revoked R2");
}

/// Two processes for real: B starts first (so its secrets are older), its preflight read is
/// held back until A has rotated and stored R2; B then sees the newer value and stops.
#[test]
fn two_overlapping_runs_leave_the_newer_credential_stored_and_alive() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    gh.setup(json!({ "secrets": [ { "scope": ["repo", REPO], "name": SECRET, "value": r1, "updated_at": "2026-01-01T00:00:00Z" } ] }));
    // B's first request (reading the secret before its preflight re-write) answers after 3 s.
    gh.fault(json!({ "method": "GET", "path": format!("/actions/secrets/{SECRET}$"), "count": 1, "delay": 3.0 }));
    let (b, b_dir) = Bin::actions(&["rotate"]).envs(oauth_inputs(&oauth.url, &gh, &r1)).spawn();
    let start = Instant::now();
    while !gh.requests().iter().any(|r| r["method"] == "GET") {
        assert!(start.elapsed() < Duration::from_secs(10), "run B never asked");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1100));
    let a = Bin::actions(&["rotate"]).envs(oauth_inputs(&oauth.url, &gh, &r1)).run();
    assert_eq!(a.code, 0, "run A: {}", a.stderr);
    let r2 = stored(&gh);

    let out = b.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "run B: {stderr}");
    assert!(stderr.contains("another run has most likely rotated it already"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b_dir.path().join("secret-rotator-report.json")).unwrap())
            .unwrap();
    assert_eq!(report["rotations"][0]["status"], "failed");
    assert_eq!(report["rotations"][0]["new_fingerprint"], serde_json::Value::Null, "B rotated nothing");
    assert_eq!(stored(&gh), r2);
    assert!(oauth.active(&r2), "R2 is alive: B never spent R1");
    assert!(!oauth.active(&r1));
}

/// As above, where the run has two secrets in the repository and so reads their update times
/// from one list of the repository's secrets: the list stops run B just as a secret's own read.
#[test]
fn a_listed_secret_newer_than_the_job_stops_the_run_too() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    run_b_started_a_minute_ago(&gh);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "github: {{ token: {{ env: GH }}, api_url: '{}' }}\nrotations:\n  - name: two\n    provider: {{ type: oauth2, \
             token_url: '{}/token', client_id: {BASIC_ID}, client_secret: {{ env: CS }}, refresh_token: {{ env: RT }} }}\n    \
             targets:\n      - github: {{ repository: {REPO}, secret: {SECRET} }}\n      - github: {{ repository: {REPO}, \
             secret: SECOND_COPY }}\n",
            gh.url, oauth.url
        ),
    );
    let two = |token: &str| {
        Bin::actions(&["rotate", "--config", &config]).env("GH", GH_TOKEN).env("CS", BASIC_SECRET).env("RT", token)
    };

    let a = two(&r1).run();
    assert_eq!(a.code, 0, "run A: {}", a.stderr);
    let r2 = stored(&gh);

    let before_b = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
    let b = two(&r1).env("GITHUB_RUN_ID", "4711").run();
    assert_eq!(b.code, 1, "run B fails safe: {}", b.stderr);
    let error = b.report()["rotations"][0]["error"].as_str().unwrap().to_owned();
    assert!(error.contains("another run has most likely rotated it already"), "{error}");
    let reads: Vec<String> = gh
        .requests()
        .iter()
        .filter(|r| r["method"] == "GET" && r["time"].as_f64().unwrap() > before_b)
        .map(|r| r["path"].as_str().unwrap().to_owned())
        .filter(|p| !p.ends_with("/public-key") && !p.contains("/runs/"))
        .collect();
    assert_eq!(reads, [format!("/repos/{REPO}/actions/secrets")], "one list, no secret's own read");
    assert_eq!(puts_from(&gh, before_b), 0, "run B wrote nothing");
    assert_eq!(stored(&gh), r2, "the newer value stays");
    assert!(oauth.active(&r2), "R1 was never presented again");
}
