//! The README's runbook for exit 3, followed as written: the rescue file is opened with the real
//! `age -d` and piped into GitHub's own client, `gh secret set` (reading the value from stdin,
//! never from argv), against the strict GitHub stand-in over TLS; the stored value is then the
//! live refresh token, and the next rotation goes on from it.

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

/// The runbook's commands, as the README prints them (placeholders in capitals).
const OPEN_AND_STORE: &str =
    "age -d -i key.txt secret-rotator-rescue-ROTATION.age | gh secret set SECRET_NAME --repo OWNER/REPO";

#[test]
fn the_exit_3_runbook_recovers_the_credential_with_age_and_gh() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.contains(OPEN_AND_STORE), "the README's runbook shows: {OPEN_AND_STORE}");

    let (gh, ca, _tls) = GitHub::start_tls();
    gh.setup(json!({ "allow_unversioned": ["GitHub CLI "] }));
    let oauth = OAuth::start();
    let r1 = oauth.mint(BASIC_ID);
    let keys = tempfile::tempdir().unwrap();
    let (key, recipient) = age_key(keys.path());
    // The preflight's PUT goes through; the five attempts of the write after the rotation fail.
    gh.fault(json!({ "method": "PUT", "path": "/actions/secrets/OAUTH_REFRESH_TOKEN$", "after": 1, "count": 5, "status": 502 }));
    let mut inputs = oauth_inputs(&oauth.url, &gh, &r1);
    inputs.retain(|(k, _)| *k != "GITHUB_API_URL");
    let run = Bin::actions(&["rotate"])
        .envs(inputs.clone())
        .env("GITHUB_API_URL", format!("{}/api/v3", gh.url))
        .env("INPUT_CA_FILE", &ca)
        .env("INPUT_RESCUE_RECIPIENT", &recipient)
        .run();
    assert_eq!(run.code, 3, "stderr: {}", run.stderr);
    let file = run.report()["rotations"][0]["rescue_file"].as_str().unwrap().to_owned();
    assert_eq!(file, "secret-rotator-rescue-oauth-refresh-token.age");
    assert!(!oauth.active(&r1), "the old refresh token is spent");
    let failed = gh.requests().iter().filter(|r| r["method"] == "PUT" && r["status"] == 502).count();
    assert_eq!(failed, 5, "the fault is used up: the next PUT reaches the stand-in");

    // The runbook: key.txt beside the rescue file, then the one pipeline.
    std::fs::copy(&key, run.path().join("key.txt")).unwrap();
    let pipeline = OPEN_AND_STORE
        .replace("SECRET_NAME", "OAUTH_REFRESH_TOKEN")
        .replace("ROTATION", "oauth-refresh-token")
        .replace("OWNER/REPO", REPO);
    assert_eq!(pipeline, format!("age -d -i key.txt {file} | gh secret set OAUTH_REFRESH_TOKEN --repo {REPO}"));
    let home = tempfile::tempdir().unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(&pipeline)
        .current_dir(run.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", home.path())
        .env("GH_HOST", gh.url.trim_start_matches("https://"))
        .env("GH_ENTERPRISE_TOKEN", GH_TOKEN)
        .env("SSL_CERT_FILE", &ca)
        .env("GH_NO_UPDATE_NOTIFIER", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stored = gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").unwrap();
    assert!(oauth.active(&stored), "the stored value is the live refresh token");
    assert_eq!(stored, age_decrypt(&key, &run.path().join(&file)));

    // The next run goes on from it.
    inputs.retain(|(k, _)| *k != "INPUT_REFRESH_TOKEN");
    let next = Bin::actions(&["rotate"])
        .envs(inputs)
        .env("INPUT_REFRESH_TOKEN", &stored)
        .env("GITHUB_API_URL", format!("{}/api/v3", gh.url))
        .env("INPUT_CA_FILE", &ca)
        .run();
    assert_eq!(next.code, 0, "stderr: {}", next.stderr);
    assert!(!oauth.active(&stored) && oauth.active(&gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").unwrap()));
}
