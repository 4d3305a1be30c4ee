//! Faults never lose a credential and never print one: token-endpoint failures, rate limits on
//! writes, a kill signal during the writes, and a leak search over everything a run prints.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn single_write_only(gh: &GitHub, value: &str) {
    let meta = gh.secret_meta(&json!(["repo", REPO]), "OAUTH_REFRESH_TOKEN").unwrap();
    assert_eq!(meta["value"], value, "the target holds the current value");
    assert_eq!(meta["writes"], 1, "only the preflight wrote");
}

#[test]
fn token_endpoint_faults_exit_1_and_store_nothing_new() {
    let gh = GitHub::start();
    let cases = [
        (
            "502",
            json!({ "method": "POST", "path": "^/oauth/token$", "count": 1, "status": 502, "raw": "bad gateway" }),
            "may have been consumed",
        ),
        (
            "garbage",
            json!({ "method": "POST", "path": "^/oauth/token$", "count": 1, "status": 200, "raw": "<html>ok</html>" }),
            "not a token response",
        ),
        (
            "no access token",
            json!({ "method": "POST", "path": "^/oauth/token$", "count": 1, "status": 200, "body": { "token_type": "bearer" } }),
            "without an access_token",
        ),
        (
            "429",
            json!({ "method": "POST", "path": "^/oauth/token$", "count": 1, "status": 429, "raw": "slow down", "headers": { "retry-after": "1" } }),
            "HTTP 429",
        ),
        (
            "huge body",
            json!({ "method": "POST", "path": "^/oauth/token$", "count": 1, "status": 200, "raw": "x".repeat(2 << 20) }),
            "larger than",
        ),
        (
            "timeout",
            json!({ "method": "POST", "path": "^/oauth/token$", "count": 1, "delay": 3, "status": 200, "body": {} }),
            "timed out",
        ),
    ];
    for (name, rule, expect) in cases {
        let gh = GitHub::start();
        gh.fault(rule);
        let current = format!("r1-current-{name}").replace(' ', "-");
        let mut inputs = oauth_inputs("", &gh, &current);
        inputs.retain(|(k, _)| *k != "INPUT_TOKEN_URL");
        let start = Instant::now();
        let run = Bin::actions(&["rotate"])
            .envs(inputs)
            .env("INPUT_TOKEN_URL", gh.fault_token_url())
            .env("INPUT_TIMEOUT", "1s")
            .run();
        assert_eq!(run.code, 1, "{name}: stderr: {}", run.stderr);
        assert!(run.stderr.contains(expect), "{name}: {}", run.stderr);
        let posts = gh.requests().iter().filter(|r| r["path"] == "/oauth/token").count();
        assert_eq!(posts, 1, "{name}: the rotate request is sent once");
        single_write_only(&gh, &current);
        assert_eq!(run.report()["rotations"][0]["status"], "failed");
        assert!(start.elapsed() < Duration::from_secs(10));
    }
    drop(gh);
}

#[test]
fn an_unreachable_token_endpoint_is_retried_and_the_token_kept() {
    let gh = GitHub::start();
    // A port where nothing listens, held so that no parallel test's server can take it.
    let closed = ClosedPort::start();
    let port = closed.port;
    let mut inputs = oauth_inputs("", &gh, "r1-current-token");
    inputs.retain(|(k, _)| *k != "INPUT_TOKEN_URL");
    let run =
        Bin::actions(&["rotate"]).envs(inputs).env("INPUT_TOKEN_URL", format!("http://127.0.0.1:{port}/token")).run();
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("the refresh token was not used"), "{}", run.stderr);
    assert_eq!(run.stderr.matches("never received the request, retrying").count(), 2, "{}", run.stderr);
}

#[test]
fn rate_limited_writes_are_retried_as_github_asks() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    gh.fault(json!({ "method": "PUT", "path": "/secrets/OAUTH_REFRESH_TOKEN$", "after": 1, "count": 1, "status": 403,
        "body": { "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again." },
        "headers": { "retry-after": "1" } }));
    gh.fault(json!({ "method": "PUT", "path": "/secrets/OAUTH_REFRESH_TOKEN$", "after": 1, "count": 1, "status": 429, "headers": { "retry-after": "0" } }));
    let run = Bin::actions(&["rotate"]).envs(oauth_inputs(&oauth.url, &gh, &r1)).run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let rot = &run.report()["rotations"][0];
    assert_eq!(rot["targets"][0]["attempts"], 3, "{}", run.stderr);
    let r2 = gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").unwrap();
    assert!(oauth.active(&r2));
}

#[test]
fn sigterm_during_writes_rescues_the_new_token() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    // After the preflight, writes fail and GitHub asks to wait 30 s: the runner cancels the job.
    gh.fault(json!({ "method": "PUT", "path": "/secrets/OAUTH_REFRESH_TOKEN$", "after": 1, "count": 100, "status": 503, "headers": { "retry-after": "30" } }));
    let bin = Bin::actions(&["rotate"]);
    let (key, recipient) = age_key(bin.dir());
    let (child, dir) = bin.envs(oauth_inputs(&oauth.url, &gh, &r1)).env("INPUT_RESCUE_RECIPIENT", &recipient).spawn();
    let start = Instant::now();
    while !gh.requests().iter().any(|r| r["method"] == "PUT" && r["status"] == 503) {
        assert!(start.elapsed() < Duration::from_secs(20), "the write never happened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = Instant::now();
    let status = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(killed.elapsed() < Duration::from_secs(10), "the run ended promptly after SIGTERM");
    assert_eq!(out.status.code(), Some(3), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let rescue = dir.path().join("secret-rotator-rescue-oauth-refresh-token.age");
    let rescued = age_decrypt(&key, &rescue);
    assert!(oauth.active(&rescued), "the rescued value is the live refresh token");
    assert!(!oauth.active(&r1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    assert!(!stderr.contains(&rescued));
}

#[test]
fn no_value_is_ever_printed_at_the_most_verbose_level() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    let run = Bin::actions(&["rotate"])
        .envs(oauth_inputs(&oauth.url, &gh, &r1))
        .env("INPUT_ACCESS_TOKEN_SECRET_NAME", "OAUTH_ACCESS_TOKEN")
        .env("INPUT_VERIFY_URL", format!("{}/me", oauth.url))
        .env("INPUT_LOG_LEVEL", "debug")
        .env("INPUT_LOG_FORMAT", "json")
        .env("RUNNER_DEBUG", "1")
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let r2 = gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").unwrap();
    let access = gh.repo_secret(REPO, "OAUTH_ACCESS_TOKEN").unwrap();
    assert!(run.stderr.lines().count() >= 5, "debug logging is on: {}", run.stderr);
    for line in run.stderr.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
    }
    let values = [r1.as_str(), r2.as_str(), access.as_str(), BASIC_SECRET, GH_TOKEN];
    let stdout_rest: String =
        run.stdout.lines().filter(|l| !l.starts_with("::add-mask::")).collect::<Vec<_>>().join("\n");
    let outputs_rest: String =
        run.file("output").lines().filter(|l| !l.starts_with("access_token=")).collect::<Vec<_>>().join("\n");
    let places = [
        ("stdout", stdout_rest),
        ("stderr", run.stderr.clone()),
        ("report", run.file("secret-rotator-report.json")),
        ("summary", run.file("summary.md")),
        ("outputs", outputs_rest),
    ];
    for (place, text) in &places {
        assert!(!text.is_empty() || *place == "stdout", "{place} is empty");
        for v in values {
            assert!(!text.contains(v), "a secret value leaked into {place}");
        }
    }
    let masks: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("::add-mask::")).collect();
    assert_eq!(masks, vec![format!("::add-mask::{r2}"), format!("::add-mask::{access}")]);
}

#[test]
fn redirects_are_followed_only_within_the_same_origin() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let elsewhere = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    let key_path = "/repos/acme/app/actions/secrets/public-key";
    let redirect = |to: &GitHub| {
        json!({ "method": "GET", "path": key_path, "count": 1, "status": 307,
                "headers": { "location": format!("{}{key_path}", to.url) } })
    };

    // Same origin: followed.
    gh.fault(redirect(&gh));
    let run = Bin::actions(&["check"]).envs(oauth_inputs(&oauth.url, &gh, &r1)).run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);

    // Another origin: not followed, so the token never travels there.
    gh.fault(redirect(&elsewhere));
    let run = Bin::actions(&["rotate"]).envs(oauth_inputs(&oauth.url, &gh, &r1)).run();
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("HTTP 307"), "{}", run.stderr);
    assert!(elsewhere.requests().is_empty(), "nothing reached the other host");
    assert!(oauth.active(&r1));
}

#[test]
fn proxy_variables_are_honoured() {
    let gh = GitHub::start();
    let closed = ClosedPort::start();
    let proxy = format!("http://127.0.0.1:{}", closed.port);
    let base = || Bin::actions(&["check"]).envs(oauth_inputs("http://127.0.0.1:9", &gh, "r1-current-token"));
    // Through a proxy that is down: the request goes to the proxy, and fails.
    let run = base().env("HTTP_PROXY", &proxy).env("HTTPS_PROXY", &proxy).run();
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(gh.requests().is_empty(), "the request went to the proxy, not straight to the server");
    // NO_PROXY exempts the host.
    let run = base().env("HTTP_PROXY", &proxy).env("NO_PROXY", "127.0.0.1").run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert!(!gh.requests().is_empty());
}

/// Found by fuzzing the token response: a server's `error_description` holding a newline was
/// logged as it was, so its second line could be read by the runner as a workflow command.
#[test]
fn a_servers_text_can_never_start_a_workflow_command() {
    let gh = GitHub::start();
    gh.fault(json!({ "method": "POST", "path": "^/oauth/token$", "count": 1, "status": 400,
        "body": { "error": "invalid_grant", "error_description": "bad grant\n::add-mask::x\n::stop-commands::y" } }));
    let mut inputs = oauth_inputs("http://unused", &gh, "r1-current-0123456789");
    inputs.retain(|(k, _)| *k != "INPUT_TOKEN_URL");
    let run = Bin::actions(&["rotate"])
        .envs(inputs)
        .env("INPUT_TOKEN_URL", gh.fault_token_url())
        .env("INPUT_LOG_LEVEL", "debug")
        .run();
    assert_eq!(run.code, 4, "{}", run.stderr);
    for line in run.stdout.lines().chain(run.stderr.lines()) {
        assert!(!line.starts_with("::") || line.starts_with("::error title=secret-rotator::"), "{line}");
    }
    assert!(run.stderr.contains("bad grant\\n::add-mask::x"), "the text is kept, escaped: {}", run.stderr);
}
