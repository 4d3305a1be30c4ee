//! `reuse_grace`: against django-oauth-toolkit with `REFRESH_TOKEN_GRACE_PERIOD_SECONDS`, a token
//! answer lost after the provider rotated is asked for once more with the same token inside the
//! window, and the credential survives; without the setting the request is never repeated.

mod common;

use common::*;
use serde_json::json;

const SECRET: &str = "OAUTH_REFRESH_TOKEN";

fn dot_inputs(proxy: &FaultProxy, gh: &GitHub, r1: &str) -> Vec<(&'static str, String)> {
    vec![
        ("INPUT_PROVIDER", "oauth2".into()),
        ("INPUT_TOKEN_URL", proxy.token_url()),
        ("INPUT_CLIENT_ID", DOT_ID.into()),
        ("INPUT_CLIENT_SECRET", DOT_SECRET.into()),
        ("INPUT_REFRESH_TOKEN", r1.into()),
        ("INPUT_GITHUB_TOKEN", GH_TOKEN.into()),
        ("INPUT_SECRET_NAME", SECRET.into()),
        ("GITHUB_API_URL", gh.url.clone()),
    ]
}

fn token_requests(proxy: &FaultProxy) -> usize {
    proxy.requests().iter().filter(|r| r["path"] == "/token").count()
}

#[test]
fn a_lost_answer_inside_the_providers_grace_period_is_recovered() {
    let dot = Dot::start(60);
    let proxy = FaultProxy::start(&dot.url);
    let gh = GitHub::start();
    let r1 = dot.mint();
    // The provider rotates R1 into R2, and the answer is lost on its way back.
    proxy.fault(json!({ "method": "POST", "path": "^/token$", "when": "after", "drop": true }));
    let run = Bin::actions(&["rotate"]).envs(dot_inputs(&proxy, &gh, &r1)).env("INPUT_REUSE_GRACE", "30s").run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("retrying once with the same refresh token"), "{}", run.stderr);
    assert_eq!(token_requests(&proxy), 2, "the lost request and one retry");
    let r2 = gh.repo_secret(REPO, SECRET).unwrap();
    assert_ne!(r2, r1);
    assert!(dot.live(&r2), "the stored token is the provider's live one");
    let state = dot.state(&r2);
    assert_eq!(state["family_live"], 1, "one live token in the family: nothing was revoked or forked: {state}");
    // And it keeps working: the next run rotates it normally.
    let next = Bin::actions(&["rotate"]).envs(dot_inputs(&proxy, &gh, &r2)).env("INPUT_REUSE_GRACE", "30s").run();
    assert_eq!(next.code, 0, "{}", next.stderr);
}

#[test]
fn without_reuse_grace_a_lost_answer_is_never_asked_for_again() {
    let dot = Dot::start(60);
    let proxy = FaultProxy::start(&dot.url);
    let gh = GitHub::start();
    let r1 = dot.mint();
    proxy.fault(json!({ "method": "POST", "path": "^/token$", "when": "after", "drop": true }));
    let run = Bin::actions(&["rotate"]).envs(dot_inputs(&proxy, &gh, &r1)).run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(token_requests(&proxy), 1);
    let error = run.report()["rotations"][0]["error"].as_str().unwrap().to_owned();
    assert!(error.contains("may no longer be valid") && error.contains("re-authorize"), "{error}");
}

#[test]
fn a_refusal_is_never_retried_even_with_reuse_grace() {
    let dot = Dot::start(60);
    let proxy = FaultProxy::start(&dot.url);
    let gh = GitHub::start();
    let r1 = dot.mint();
    proxy.fault(json!({ "method": "POST", "path": "^/token$", "status": 400, "body": { "error": "invalid_grant" } }));
    let run = Bin::actions(&["rotate"]).envs(dot_inputs(&proxy, &gh, &r1)).env("INPUT_REUSE_GRACE", "30s").run();
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert_eq!(token_requests(&proxy), 1);
    assert!(dot.live(&r1), "the provider never saw the request");
}
