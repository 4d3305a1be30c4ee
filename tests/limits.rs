//! GitHub's secondary rate limits as a fault: the GitHub stand-in refuses requests beyond a
//! concurrency limit or a points budget (403, `retry-after`, GitHub's message), and a fan-out
//! that exceeds them still ends with every target written, each request sent once more only for
//! each time a limit refused it.

mod common;

use std::collections::HashMap;

use common::*;
use serde_json::{json, Value};

/// A config rotating one refresh token into `n` repository secrets `S0..`.
fn fan_out(dir: &std::path::Path, gh: &GitHub, oauth_url: &str, n: usize, github_extra: &str) -> String {
    let targets: String =
        (0..n).map(|i| format!("      - github: {{ repository: acme/app, secret: S{i} }}\n")).collect();
    write_config(
        dir,
        &format!(
            r#"
github:
  token: {{ env: GH_SECRETS_TOKEN }}
  api_url: {api}
{github_extra}
rotations:
  - name: fan-out
    provider:
      type: oauth2
      token_url: {oauth}/token
      client_id: {id}
      client_secret: {{ env: CLIENT_SECRET }}
      refresh_token: {{ env: REFRESH_TOKEN }}
    targets:
{targets}"#,
            api = gh.url,
            oauth = oauth_url,
            id = BASIC_ID,
        ),
    )
}

fn run(config: &str, r1: &str) -> Run {
    Bin::actions(&["rotate", "--config", config])
        .env("GH_SECRETS_TOKEN", GH_TOKEN)
        .env("CLIENT_SECRET", BASIC_SECRET)
        .env("REFRESH_TOKEN", r1)
        .run()
}

/// (method path) -> (answered, refused by a limit).
fn counts(gh: &GitHub) -> HashMap<String, (usize, usize)> {
    let mut out: HashMap<String, (usize, usize)> = HashMap::new();
    for r in gh.requests() {
        let key = format!("{} {}", r["method"].as_str().unwrap(), r["path"].as_str().unwrap());
        let e = out.entry(key).or_default();
        if r["limited"] == Value::Bool(true) {
            e.1 += 1;
        } else {
            e.0 += 1;
        }
    }
    out
}

fn assert_all_written(gh: &GitHub, oauth: &OAuth, n: usize) {
    let first = gh.repo_secret(REPO, "S0").expect("S0 written");
    assert!(oauth.active(&first), "the stored token is the live one");
    for i in 0..n {
        assert_eq!(gh.repo_secret(REPO, &format!("S{i}")).as_deref(), Some(first.as_str()), "S{i}");
    }
}

#[test]
fn a_fan_out_beyond_the_concurrency_limit_writes_every_target() {
    let oauth = OAuth::start();
    // With 20 ms per request, a fan-out has many requests in flight at once.
    let gh = GitHub::start_with(&["--latency-ms".as_ref(), "20".as_ref()], "http");
    gh.setup(json!({ "limits": { "concurrency": 3 } }));
    let n = 24;
    let dir = tempfile::tempdir().unwrap();
    let r1 = oauth.mint(BASIC_ID);
    let run = run(&fan_out(dir.path(), &gh, &oauth.url, n, ""), &r1);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_all_written(&gh, &oauth, n);
    assert!(run.stderr.contains("GitHub's rate limit answered HTTP 403"), "{}", run.stderr);

    let counts = counts(&gh);
    let refused: usize = counts.values().map(|c| c.1).sum();
    assert!(refused > 0, "the limit was hit: {counts:?}");
    // Answered exactly once each: the key, the list of the repository's secrets (their update
    // times), the preflight's and the rotation's write per secret. Every other request was a
    // refusal by the limit.
    assert_eq!(counts["GET /repos/acme/app/actions/secrets/public-key"].0, 1, "{counts:?}");
    assert_eq!(counts["GET /repos/acme/app/actions/secrets"].0, 1, "{counts:?}");
    for i in 0..n {
        assert!(!counts.contains_key(&format!("GET /repos/acme/app/actions/secrets/S{i}")), "{counts:?}");
        assert_eq!(counts[&format!("PUT /repos/acme/app/actions/secrets/S{i}")].0, 2, "{counts:?}");
    }
    assert_eq!(run.report()["rotations"][0]["status"], "rotated");
}

#[test]
fn a_fan_out_beyond_the_points_budget_is_paced_without_a_refusal() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    // 12 secrets need 1 + 1 + 2 * 12 * 5 = 122 points (the key, the list of the repository's
    // secrets, two writes each): more than the minute's 120, so the last
    // writes must wait for the window (the reservations make them wait before the rotation).
    gh.setup(json!({ "limits": { "points": 120, "window": 60 } }));
    let n = 12;
    let dir = tempfile::tempdir().unwrap();
    let r1 = oauth.mint(BASIC_ID);
    let proxy = FaultProxy::start(&oauth.url);
    let run = run(&fan_out(dir.path(), &gh, &proxy.url, n, "  points_per_minute: 120"), &r1);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_all_written(&gh, &oauth, n);
    let counts = counts(&gh);
    assert_eq!(counts.values().map(|c| c.1).sum::<usize>(), 0, "no request went over the budget: {counts:?}");

    // The token request came after every reservation: the rotation's writes were already paced.
    let reqs = gh.requests();
    let token_at = proxy.requests().last().expect("the token request")["time"].as_f64().unwrap();
    let first_write = reqs
        .iter()
        .filter(|r| r["method"] == "PUT")
        .map(|r| r["time"].as_f64().unwrap())
        .filter(|t| *t > token_at)
        .fold(f64::INFINITY, f64::min);
    let preflight_puts = reqs.iter().filter(|r| r["method"] == "PUT" && r["time"].as_f64().unwrap() < token_at).count();
    assert_eq!(preflight_puts, n, "every preflight write came before the token request");
    assert!(first_write.is_finite(), "writes after the rotation");
}
