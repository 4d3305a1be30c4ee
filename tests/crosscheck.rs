//! The GitHub stand-in is cross-checked against GitHub's reference client: `gh secret set`
//! writes through it (over HTTPS, as gh insists), and secret-rotator's requests have the same
//! shape as gh's. The same run proves `--ca-file` (a private CA, as on GitHub Enterprise Server).

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

#[test]
fn gh_and_secret_rotator_write_the_same_way() {
    let (gh, cert, _dir) = GitHub::start_tls();
    // gh 2.23 sends no X-GitHub-Api-Version header (observed: its requests carry only
    // User-Agent "GitHub CLI 2.23.0", Accept, Authorization, Content-Type, Time-Zone; go-gh
    // began sending the header in 2026, cli/cli#12680), and the stand-in refuses unversioned
    // requests. Exempt gh by its User-Agent, and only here: secret-rotator's requests in this
    // same test must still pin the version (checked below).
    gh.setup(json!({ "allow_unversioned": ["GitHub CLI "] }));
    let host = gh.url.trim_start_matches("https://").to_owned();
    let home = tempfile::tempdir().unwrap();

    let gh_cli = |args: &[&str]| {
        Command::new("gh")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("HOME", home.path())
            .env("GH_HOST", &host)
            .env("GH_ENTERPRISE_TOKEN", GH_TOKEN)
            .env("SSL_CERT_FILE", &cert)
            .env("GH_NO_UPDATE_NOTIFIER", "1")
            .output()
            .expect("gh (run scripts/test-deps.sh)")
    };
    let out = gh_cli(&["secret", "set", "FROM_GH", "--body", "value-set-by-gh", "--repo", REPO]);
    assert!(out.status.success(), "gh: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        gh.repo_secret(REPO, "FROM_GH").as_deref(),
        Some("value-set-by-gh"),
        "the stand-in opens gh's sealed box"
    );

    let oauth = OAuth::start();
    let r1 = oauth.mint(BASIC_ID);
    let mut inputs = oauth_inputs(&oauth.url, &gh, &r1);
    inputs.retain(|(k, _)| *k != "GITHUB_API_URL");
    let run = Bin::actions(&["rotate"])
        .envs(inputs)
        .env("INPUT_SECRET_NAME", "FROM_ROTATOR")
        .env("GITHUB_API_URL", format!("{}/api/v3", gh.url))
        .env("INPUT_CA_FILE", &cert)
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let stored = gh.repo_secret(REPO, "FROM_ROTATOR").unwrap();
    assert!(oauth.active(&stored));

    let reqs = gh.requests();
    let ours: Vec<&serde_json::Value> =
        reqs.iter().filter(|r| r["user_agent"].as_str().is_some_and(|ua| ua.starts_with("secret-rotator/"))).collect();
    assert!(!ours.is_empty());
    for r in &ours {
        assert_eq!(r["api_version"], "2022-11-28", "secret-rotator pins the API version: {r}");
    }
    let shape = |name: &str| -> Vec<(String, String, String)> {
        reqs.iter()
            .filter(|r| {
                r["path"].as_str().unwrap().contains(name) || r["path"].as_str().unwrap().ends_with("public-key")
            })
            .filter(|r| r["method"] == "PUT")
            .map(|r| (r["method"].to_string(), r["fields"].to_string(), r["content_type"].to_string()))
            .collect()
    };
    let by_gh = shape("FROM_GH");
    let by_us = shape("FROM_ROTATOR");
    assert_eq!(by_gh.len(), 1);
    assert_eq!(by_gh[0].1, by_us[0].1, "the same body fields as gh");
    assert!(by_us[0].2.contains("application/json"));

    // gh reads the stand-in's list of a repository's secrets (what secret-rotator reads where a
    // run has several secrets in one scope): every secret, by name, with its update date.
    let out = gh_cli(&["secret", "list", "--repo", REPO]);
    assert!(out.status.success(), "gh secret list: {}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8_lossy(&out.stdout);
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    for name in ["FROM_GH", "FROM_ROTATOR"] {
        let line = listed.lines().find(|l| l.split('\t').next() == Some(name));
        assert!(line.is_some_and(|l| l.contains(&today)), "{name} listed, updated today: {listed}");
    }
    assert!(gh
        .requests()
        .iter()
        .any(|r| r["method"] == "GET" && r["path"] == format!("/repos/{REPO}/actions/secrets")));
}

#[test]
fn an_unknown_ca_is_refused() {
    let (gh, _cert, _dir) = GitHub::start_tls();
    let run = Bin::actions(&["rotate"]).envs(oauth_inputs("http://127.0.0.1:9", &gh, "r1-current-token")).run();
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(run.stderr.to_lowercase().contains("certificate"), "{}", run.stderr);
    assert!(gh.requests().is_empty(), "no request got through TLS");
    assert!(!run.stderr.contains("retry"), "a refused certificate is not retried: {}", run.stderr);
    assert!(run.stderr.contains("ca_file"), "the error says how to fix it: {}", run.stderr);
}

#[test]
fn ssl_cert_file_is_honoured_like_ca_file() {
    let (gh, ca, _dir) = GitHub::start_tls();
    let run = Bin::actions(&["check"])
        .envs(oauth_inputs("http://127.0.0.1:9", &gh, "r1-current-token"))
        .env("SSL_CERT_FILE", &ca)
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.report()["rotations"][0]["status"], "planned");
}
