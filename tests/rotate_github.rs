//! End to end: the built binary rotates refresh tokens at a real OAuth2 server (oidc-provider,
//! with rotation and reuse detection) and writes them to the strict GitHub stand-in, which
//! opens every sealed box with libsodium.

mod common;

use common::*;
use serde_json::json;

#[test]
fn rotates_a_refresh_token_into_a_repository_secret() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);

    let run = Bin::actions(&["rotate"])
        .envs(oauth_inputs(&oauth.url, &gh, &r1))
        .env("INPUT_ACCESS_TOKEN_SECRET_NAME", "OAUTH_ACCESS_TOKEN")
        .env("INPUT_VERIFY_URL", format!("{}/me", oauth.url))
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);

    let r2 = gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").expect("secret written");
    assert_ne!(r2, r1);
    assert!(!oauth.active(&r1), "the old refresh token is dead after rotation");
    assert!(oauth.active(&r2), "the stored refresh token is the live one");
    let access = gh.repo_secret(REPO, "OAUTH_ACCESS_TOKEN").expect("access token written");

    // Masks come first on stdout, before anything else could print a value.
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], format!("::add-mask::{r2}"));
    assert_eq!(lines[1], format!("::add-mask::{access}"));

    let report = run.report();
    let rot = &report["rotations"][0];
    assert_eq!(rot["status"], "rotated");
    assert_eq!(rot["name"], "oauth-refresh-token");
    assert_eq!(rot["targets"][0]["status"], "written");
    assert_eq!(rot["targets"][1]["status"], "written");
    assert!(rot["expires_at"].as_str().unwrap().ends_with('Z'));
    let out = run.file("output");
    assert!(out.contains("rotated=true\n"), "{out}");
    assert!(out.contains(&format!("access_token={access}\n")), "{out}");
    assert!(out.contains("expires_at=20"), "{out}");
    let summary = run.file("summary.md");
    assert!(summary.contains("| oauth-refresh-token | rotated |"), "{summary}");
}

#[test]
fn chained_rotations_each_kill_the_previous_token() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let mut current = oauth.mint(BASIC_ID);
    let mut previous_fp: Option<String> = None;
    for _ in 0..3 {
        let run = Bin::actions(&["rotate"]).envs(oauth_inputs(&oauth.url, &gh, &current)).run();
        assert_eq!(run.code, 0, "stderr: {}", run.stderr);
        let next = gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").unwrap();
        assert_ne!(next, current);
        assert!(!oauth.active(&current));
        assert!(oauth.active(&next));
        let rot = &run.report()["rotations"][0];
        if let Some(fp) = &previous_fp {
            assert_eq!(&rot["old_fingerprint"], fp, "run N's old fingerprint is run N-1's new one");
        }
        previous_fp = Some(rot["new_fingerprint"].as_str().unwrap().to_owned());
        current = next;
    }
}

#[test]
fn a_target_that_refuses_writes_stops_before_the_upstream() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    let run =
        Bin::actions(&["rotate"]).envs(oauth_inputs(&oauth.url, &gh, &r1)).env("INPUT_GITHUB_TOKEN", GH_READONLY).run();
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(oauth.active(&r1), "the refresh token was never used");
    assert!(run.stderr.contains("HTTP 403"), "{}", run.stderr);
    assert!(run.stderr.contains("Secrets: read and write"), "{}", run.stderr);
    let rot = &run.report()["rotations"][0];
    assert_eq!(rot["status"], "failed");
    assert!(rot["new_fingerprint"].is_null());
    assert!(run.file("output").contains("rotated=false"));
}

#[test]
fn writes_failing_after_rotation_exit_3_with_a_rescue_file() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    // The preflight PUT passes; every later write fails.
    gh.fault(
        json!({ "method": "PUT", "path": "/secrets/OAUTH_REFRESH_TOKEN$", "after": 1, "count": 100, "status": 500 }),
    );
    let bin = Bin::actions(&["rotate"]);
    let (key, recipient) = age_key(bin.dir());
    let run = bin.envs(oauth_inputs(&oauth.url, &gh, &r1)).env("INPUT_RESCUE_RECIPIENT", &recipient).run();
    assert_eq!(run.code, 3, "stderr: {}", run.stderr);
    assert!(!oauth.active(&r1));

    let rot = &run.report()["rotations"][0];
    assert_eq!(rot["status"], "critical");
    assert_eq!(rot["targets"][0]["status"], "failed");
    assert_eq!(rot["targets"][0]["attempts"], 5, "writes are retried: {}", run.stderr);
    let rescue = run.path().join("secret-rotator-rescue-oauth-refresh-token.age");
    assert_eq!(
        rot["rescue_file"], "secret-rotator-rescue-oauth-refresh-token.age",
        "relative to the working directory"
    );
    let rescued = age_decrypt(&key, &rescue);
    assert!(oauth.active(&rescued), "the rescue file holds the live refresh token");
    assert_eq!(gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").unwrap(), r1, "the target still holds the old value");
    assert!(run.stderr.contains("age -d -i KEY"), "{}", run.stderr);
}

#[test]
fn a_reused_refresh_token_exits_4_and_writes_nothing_new() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    let stolen = oauth.refresh(&r1); // someone else used R1 first
    let r2 = stolen["refresh_token"].as_str().unwrap().to_owned();
    let run = Bin::actions(&["rotate"]).envs(oauth_inputs(&oauth.url, &gh, &r1)).run();
    assert_eq!(run.code, 4, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("invalid_grant"), "{}", run.stderr);
    assert!(run.stderr.contains("already used"), "{}", run.stderr);
    assert!(run.stderr.contains("Re-authorize"), "{}", run.stderr);
    assert!(!oauth.active(&r2), "reuse detection revoked the whole family");
    let rot = &run.report()["rotations"][0];
    assert_eq!(rot["status"], "rejected");
    assert!(rot["new_fingerprint"].is_null());
    // Only the preflight re-write of the current value reached the target.
    let meta = gh.secret_meta(&json!(["repo", REPO]), "OAUTH_REFRESH_TOKEN").unwrap();
    assert_eq!(meta["value"], r1.as_str());
    assert_eq!(meta["writes"], 1);
}

#[test]
fn min_age_skips_a_fresh_secret() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    gh.setup(json!({ "secrets": [ { "scope": ["repo", REPO], "name": "OAUTH_REFRESH_TOKEN", "value": r1 } ] }));
    let run = Bin::actions(&["rotate"]).envs(oauth_inputs(&oauth.url, &gh, &r1)).env("INPUT_MIN_AGE", "20h").run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.report()["rotations"][0]["status"], "skipped");
    assert!(oauth.active(&r1));
    assert!(gh.requests().iter().all(|r| r["method"] == "GET"), "a skipped rotation writes nothing");

    // An old secret is rotated.
    gh.setup(json!({ "secrets": [ { "scope": ["repo", REPO], "name": "OAUTH_REFRESH_TOKEN", "value": r1, "updated_at": "2020-01-01T00:00:00Z" } ] }));
    let run = Bin::actions(&["rotate"]).envs(oauth_inputs(&oauth.url, &gh, &r1)).env("INPUT_MIN_AGE", "20h").run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.report()["rotations"][0]["status"], "rotated");
}

#[test]
fn dry_run_and_check_rotate_nothing() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    for args in [&["rotate", "--dry-run"][..], &["check"][..]] {
        let run = Bin::actions(args).envs(oauth_inputs(&oauth.url, &gh, &r1)).run();
        assert_eq!(run.code, 0, "stderr: {}", run.stderr);
        let report = run.report();
        assert_eq!(report["dry_run"], true);
        assert_eq!(report["rotations"][0]["status"], "planned");
        assert_eq!(report["rotations"][0]["targets"][0]["status"], "planned");
        assert!(oauth.active(&r1));
    }
}

#[test]
fn client_auth_post_and_public_clients() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(POST_ID);
    let run = Bin::actions(&["rotate"])
        .envs(oauth_inputs(&oauth.url, &gh, &r1))
        .env("INPUT_CLIENT_ID", POST_ID)
        .env("INPUT_CLIENT_SECRET", POST_SECRET)
        .env("INPUT_CLIENT_AUTH", "post")
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);

    let p1 = oauth.mint("ci-public");
    let run = Bin::actions(&["rotate"])
        .envs(oauth_inputs(&oauth.url, &gh, &p1))
        .env("INPUT_CLIENT_ID", "ci-public")
        .env_remove_secret()
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_ne!(gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").unwrap(), p1);
}

#[test]
fn wrong_client_secret_fails_safely() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    let run = Bin::actions(&["rotate"])
        .envs(oauth_inputs(&oauth.url, &gh, &r1))
        .env("INPUT_CLIENT_SECRET", "not-the-right-secret")
        .run();
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("invalid_client"), "{}", run.stderr);
    assert!(oauth.active(&r1), "the refresh token was not consumed");
}

#[test]
fn a_failed_verification_still_stores_the_new_token_and_exits_1() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    gh.fault(json!({ "method": "GET", "path": "^/verify$", "count": 5, "status": 401 }));
    let run = Bin::actions(&["rotate"])
        .envs(oauth_inputs(&oauth.url, &gh, &r1))
        .env("INPUT_VERIFY_URL", format!("{}/verify", gh.url))
        .run();
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("verification failed"), "{}", run.stderr);
    let r2 = gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").unwrap();
    assert_ne!(r2, r1);
    assert!(oauth.active(&r2), "the old token is spent, so the new one was stored anyway");
    let rot = &run.report()["rotations"][0];
    assert_eq!(rot["status"], "failed");
    assert_eq!(rot["targets"][0]["status"], "written");
}

#[test]
fn a_provider_that_does_not_rotate_keeps_the_current_token() {
    let gh = GitHub::start();
    gh.fault(json!({ "method": "POST", "path": "^/oauth/token$", "count": 1, "status": 200,
        "body": { "access_token": "a2-new-access-token", "token_type": "Bearer", "expires_in": 3600 } }));
    let mut inputs = oauth_inputs("", &gh, "r1-never-rotates");
    inputs.retain(|(k, _)| *k != "INPUT_TOKEN_URL");
    let run = Bin::actions(&["rotate"])
        .envs(inputs)
        .env("INPUT_TOKEN_URL", gh.fault_token_url())
        .env("INPUT_ACCESS_TOKEN_SECRET_NAME", "OAUTH_ACCESS_TOKEN")
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let meta = gh.secret_meta(&json!(["repo", REPO]), "OAUTH_REFRESH_TOKEN").unwrap();
    assert_eq!(meta["value"], "r1-never-rotates");
    assert_eq!(meta["writes"], 1, "only the preflight wrote the unchanged refresh token");
    assert_eq!(gh.repo_secret(REPO, "OAUTH_ACCESS_TOKEN").unwrap(), "a2-new-access-token");
    let rot = &run.report()["rotations"][0];
    assert_eq!(rot["old_fingerprint"], rot["new_fingerprint"]);
    assert_eq!(rot["targets"][0]["status"], "skipped");
    assert_eq!(rot["targets"][1]["status"], "written");
}
