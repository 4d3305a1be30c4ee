//! Rotations of one config run concurrently (`parallel_rotations`): the report keeps the
//! config's order, a failed rotation does not stop the others, the exit code is the most severe
//! outcome, and two rotations that write one target are refused before anything is contacted.

mod common;

use common::*;
use serde_json::Value;

/// A config of `tokens.len()` oauth2 rotations `r0..`, each into its own secret `S0..`.
fn config(dir: &std::path::Path, gh: &GitHub, oauth: &OAuth, n: usize, extra: &str) -> String {
    let mut text = format!("github:\n  token: {{ env: GH_SECRETS_TOKEN }}\n  api_url: {}\n{extra}rotations:\n", gh.url);
    for i in 0..n {
        text.push_str(&format!(
            "  - name: r{i}\n    provider: {{ type: oauth2, token_url: {}, client_id: {BASIC_ID}, client_secret: {{ env: CS }}, refresh_token: {{ env: RT{i} }} }}\n    targets:\n      - github: {{ repository: acme/app, secret: S{i} }}\n",
            oauth.token_url()
        ));
    }
    write_config(dir, &text)
}

/// For each rotation, when its first and last request reached the stand-in: (name, first, last).
fn spans(gh: &GitHub, n: usize) -> Vec<(f64, f64)> {
    let reqs = gh.requests();
    (0..n)
        .map(|i| {
            let path = format!("/repos/acme/app/actions/secrets/S{i}");
            let times: Vec<f64> =
                reqs.iter().filter(|r| r["path"] == path.as_str()).map(|r| r["time"].as_f64().unwrap()).collect();
            (times.iter().copied().fold(f64::INFINITY, f64::min), times.iter().copied().fold(0.0, f64::max))
        })
        .collect()
}

fn run_config(config: &str, oauth: &OAuth, n: usize) -> (Run, Vec<String>) {
    let tokens: Vec<String> = (0..n).map(|_| oauth.mint(BASIC_ID)).collect();
    let mut bin =
        Bin::actions(&["rotate", "--config", config]).env("GH_SECRETS_TOKEN", GH_TOKEN).env("CS", BASIC_SECRET);
    for (i, t) in tokens.iter().enumerate() {
        bin = bin.env(&format!("RT{i}"), t);
    }
    (bin.run(), tokens)
}

fn names(run: &Run) -> Vec<String> {
    run.report()["rotations"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn rotations_run_at_once_and_the_report_keeps_the_config_order() {
    let n = 6;
    let oauth = OAuth::start();
    // 50 ms per request: a rotation's requests take long enough for the others to start meanwhile.
    let gh = GitHub::start_with(&["--latency-ms".as_ref(), "50".as_ref()], "http");
    let dir = tempfile::tempdir().unwrap();
    let (run, tokens) = run_config(&config(dir.path(), &gh, &oauth, n, "parallel_rotations: 3\n"), &oauth, n);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(names(&run), (0..n).map(|i| format!("r{i}")).collect::<Vec<_>>(), "the config's order");
    for (i, t) in tokens.iter().enumerate() {
        let stored = gh.repo_secret(REPO, &format!("S{i}")).unwrap();
        assert!(oauth.active(&stored) && !oauth.active(t), "r{i} rotated and stored");
    }
    // Three at once: r1 and r2 begin before r0 has finished, and none of r3.. before one of the first
    // three has (the order of requests at the server, not a timing).
    let s = spans(&gh, n);
    assert!(s[1].0 < s[0].1 && s[2].0 < s[0].1, "r1 and r2 overlap r0: {s:?}");
    let first_done = s[..3].iter().map(|x| x.1).fold(f64::INFINITY, f64::min);
    assert!(s[3..].iter().all(|x| x.0 > first_done), "at most three at once: {s:?}");

    // parallel_rotations: 1 is one after another.
    let gh = GitHub::start();
    let (run, _) = run_config(&config(dir.path(), &gh, &oauth, 3, "parallel_rotations: 1\n"), &oauth, 3);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let s = spans(&gh, 3);
    assert!(s[0].1 < s[1].0 && s[1].1 < s[2].0, "one after another: {s:?}");
}

#[test]
fn a_failed_rotation_does_not_stop_the_others_and_the_exit_code_is_the_most_severe() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &gh, &oauth, 3, "");
    let tokens: Vec<String> = (0..3).map(|_| oauth.mint(BASIC_ID)).collect();
    // r0: a spent refresh token (rejected, exit 4); r1: its secret's preflight fails (exit 1); r2: fine.
    let spent = tokens[0].clone();
    assert!(oauth.refresh(&spent)["refresh_token"].is_string());
    gh.fault(serde_json::json!({ "method": "PUT", "path": "/secrets/S1$", "count": 10, "status": 500 }));
    let run = Bin::actions(&["rotate", "--config", &config])
        .env("GH_SECRETS_TOKEN", GH_TOKEN)
        .env("CS", BASIC_SECRET)
        .env("RT0", &spent)
        .env("RT1", &tokens[1])
        .env("RT2", &tokens[2])
        .run();
    assert_eq!(run.code, 4, "the most severe outcome (rejected) wins; stderr: {}", run.stderr);
    let report = run.report();
    let statuses: Vec<&Value> = report["rotations"].as_array().unwrap().iter().map(|r| &r["status"]).collect();
    assert_eq!(statuses, ["rejected", "failed", "rotated"]);
    assert!(oauth.active(&tokens[1]), "r1's token was not spent: its preflight failed");
    let r2 = gh.repo_secret(REPO, "S2").unwrap();
    assert!(oauth.active(&r2), "r2 rotated in spite of the others");
}

#[test]
fn two_rotations_writing_one_target_are_refused_before_anything_is_contacted() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let dir = tempfile::tempdir().unwrap();
    let text =
        std::fs::read_to_string(config(dir.path(), &gh, &oauth, 2, "")).unwrap().replace("secret: S1", "secret: S0");
    let config = write_config(dir.path(), &text);
    let (run, tokens) = run_config(&config, &oauth, 2);
    assert_eq!(run.code, 2, "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("rotations[1].targets: acme/app secret S0 is written twice in one run"),
        "{}",
        run.stderr
    );
    assert!(gh.requests().is_empty());
    assert!(tokens.iter().all(|t| oauth.active(t)));
}
