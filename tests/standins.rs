//! The test stand-ins and harness are strict, so that a test can fail where it should: GitHub's
//! stand-in refuses a request that does not pin the API version (400) and both stand-ins refuse a
//! body of a media type their API does not take (415); a bug in a stand-in's own code is recorded
//! and answered with a status no API sends, and fails the test when the stand-in is dropped;
//! `Run::file` refuses to read a file that is not there; a closed port stays closed; each GitHub
//! secret store opens only boxes sealed to its own key.

mod common;

use common::*;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{json, Value};

fn client() -> Client {
    Client::builder().timeout(std::time::Duration::from_secs(20)).build().unwrap()
}

/// A secret PUT as secret-rotator sends it, minus what each test leaves out or changes.
fn secret_put(gh: &GitHub, name: &str) -> RequestBuilder {
    client()
        .put(format!("{}/repos/{REPO}/actions/secrets/{name}", gh.url))
        .bearer_auth(GH_TOKEN)
        .header("accept", "application/vnd.github+json")
}

const BODY: &str = r#"{"encrypted_value":"c2VjcmV0","key_id":"not-the-key"}"#;

fn message(r: Response) -> String {
    let v: Value = r.json().unwrap();
    v["message"].as_str().or(v["error"].as_str()).unwrap_or_default().to_owned()
}

#[test]
fn github_refuses_a_request_without_an_api_version_with_400() {
    let gh = GitHub::start();
    let r = secret_put(&gh, "X").header("content-type", "application/json").body(BODY).send().unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let msg = message(r);
    assert!(msg.contains("X-GitHub-Api-Version") && msg.contains("must pin"), "{msg}");

    // A read is refused alike.
    let r = client()
        .get(format!("{}/repos/{REPO}/actions/secrets/public-key", gh.url))
        .bearer_auth(GH_TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // With the version, the same PUT gets past the check (to the key_id check: 422).
    let r = secret_put(&gh, "X")
        .header("x-github-api-version", "2022-11-28")
        .header("content-type", "application/json")
        .body(BODY)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 422, "{}", message(r));
    // An unknown version is refused too.
    let r = secret_put(&gh, "X").header("x-github-api-version", "2021-01-01").send().unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(gh.secrets().is_empty());
}

#[test]
fn the_unversioned_exemption_is_only_for_the_user_agent_named() {
    let gh = GitHub::start();
    gh.setup(json!({ "allow_unversioned": ["GitHub CLI "] }));
    let key = |ua: &str| {
        client()
            .get(format!("{}/repos/{REPO}/actions/secrets/public-key", gh.url))
            .bearer_auth(GH_TOKEN)
            .header("user-agent", ua)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(key("GitHub CLI 2.23.0"), 200);
    assert_eq!(key("another-client/1.0"), 400);
    assert_eq!(key("not GitHub CLI 2.23.0"), 400, "a prefix of the User-Agent, not a substring");
}

#[test]
fn github_refuses_a_body_that_is_not_json_with_415() {
    let gh = GitHub::start();
    let put = |content_type: Option<&str>| {
        let mut req = secret_put(&gh, "X").header("x-github-api-version", "2022-11-28").body(BODY);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req.send().unwrap()
    };
    for ct in [Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("application/vnd.github+json"), None]
    {
        let r = put(ct);
        assert_eq!(r.status().as_u16(), 415, "{ct:?}");
        assert!(message(r).contains("Unsupported Media Type"), "{ct:?}");
    }
    // application/json, with or without parameters, is taken (and then checked: 422 for the key).
    for ct in ["application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"] {
        assert_eq!(put(Some(ct)).status().as_u16(), 422, "{ct}");
    }
    // A request without a body needs no content type.
    let r = client()
        .get(format!("{}/repos/{REPO}/actions/secrets/public-key", gh.url))
        .bearer_auth(GH_TOKEN)
        .header("x-github-api-version", "2022-11-28")
        .header("content-type", "text/plain")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[test]
fn gitlab_refuses_a_body_that_is_neither_json_nor_a_form_with_415() {
    let gl = GitLab::start();
    let token = "glpat-standins-token-000001";
    gl.token(token, "project", Some(GL_PROJECT), &["api"]);
    let post = |content_type: Option<&str>, body: &str| {
        let mut req = client()
            .post(format!("{}/projects/{GL_PROJECT_ID}/variables", gl.api()))
            .header("private-token", token)
            .body(body.to_owned());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req.send().unwrap()
    };
    for ct in [Some("text/plain"), Some("multipart/form-data; boundary=x"), None] {
        let r = post(ct, r#"{"key":"A","value":"v"}"#);
        assert_eq!(r.status().as_u16(), 415, "{ct:?}");
        let msg = message(r);
        assert!(msg.contains("is not supported"), "{ct:?}: {msg}");
    }
    assert!(gl.variables().is_empty(), "nothing was created from a refused body");
    assert_eq!(post(Some("application/json; charset=utf-8"), r#"{"key":"A","value":"v"}"#).status().as_u16(), 201);
    assert_eq!(post(Some("application/x-www-form-urlencoded"), "key=B&value=v").status().as_u16(), 201);
    let keys: Vec<Value> = gl.variables().into_iter().map(|v| v["key"].clone()).collect();
    assert_eq!(keys, vec![json!("A"), json!("B")]);
    // A JSON body that is not an object is the client's error, not the stand-in's.
    assert_eq!(post(Some("application/json"), "[1]").status().as_u16(), 400);
}

#[test]
fn an_exception_in_the_github_standin_is_recorded_and_not_a_plain_500() {
    let gh = GitHub::start();
    gh.fault(json!({ "method": "PUT", "path": "/secrets/X$", "count": 1, "raise": "boom in a handler" }));
    let r = secret_put(&gh, "X")
        .header("x-github-api-version", "2022-11-28")
        .header("content-type", "application/json")
        .body(BODY)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 599, "not a status a real API sends, nor a retryable 500");
    let text = r.text().unwrap();
    assert!(text.starts_with("STAND-IN BUG"), "{text}");
    let reqs = gh.requests();
    assert_eq!(reqs.last().unwrap()["status"], 599, "the request log says so too");
    let errors = gh.take_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let tb = errors[0]["traceback"].as_str().unwrap();
    assert!(tb.contains("Traceback") && tb.contains("RuntimeError") && tb.contains("boom in a handler"), "{tb}");
    assert_eq!(errors[0]["method"], "PUT");
    // Taken: the stand-in is clean again, and still answers.
    assert!(gh.take_errors().is_empty());
    let r = secret_put(&gh, "X").header("x-github-api-version", "2022-11-28").json(&json!({})).send().unwrap();
    assert_eq!(r.status().as_u16(), 422);
}

#[test]
fn an_exception_in_the_gitlab_standin_is_recorded_and_not_a_plain_500() {
    let gl = GitLab::start();
    gl.fault(json!({ "path": "/personal_access_tokens/self$", "count": 1, "raise": "gitlab handler bug" }));
    let r = client().get(format!("{}/personal_access_tokens/self", gl.api())).send().unwrap();
    assert_eq!(r.status().as_u16(), 599);
    assert!(r.text().unwrap().starts_with("STAND-IN BUG"));
    let errors = gl.take_errors();
    assert_eq!(errors.len(), 1);
    assert!(errors[0]["traceback"].as_str().unwrap().contains("gitlab handler bug"));
}

#[test]
#[should_panic(expected = "STAND-IN BUG: the GitHub stand-in raised 1 exception(s)")]
fn a_github_standin_error_left_at_drop_fails_the_test() {
    let gh = GitHub::start();
    gh.fault(json!({ "path": "public-key$", "count": 1, "raise": "left for the drop check" }));
    let r = client()
        .get(format!("{}/repos/{REPO}/actions/secrets/public-key", gh.url))
        .bearer_auth(GH_TOKEN)
        .header("x-github-api-version", "2022-11-28")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 599);
    drop(gh); // panics: the test that saw the bug cannot pass
}

#[test]
#[should_panic(expected = "STAND-IN BUG: the GitLab stand-in raised 1 exception(s)")]
fn a_gitlab_standin_error_left_at_drop_fails_the_test() {
    let gl = GitLab::start();
    gl.fault(json!({ "path": "/variables$", "count": 1, "raise": "left for the drop check" }));
    let r = client().get(format!("{}/projects/{GL_PROJECT_ID}/variables", gl.api())).send().unwrap();
    assert_eq!(r.status().as_u16(), 599);
}

#[test]
#[should_panic(expected = "the run has no readable file no-such-output")]
fn run_file_panics_on_a_missing_file() {
    let run = Bin::new(&["--version"]).run();
    assert_eq!(run.code, 0);
    let _ = run.file("no-such-output");
}

#[test]
fn run_file_if_exists_tells_absence_from_presence() {
    let run = Bin::actions(&["rotate", "--no-such-flag"]).run();
    assert_eq!(run.code, 2);
    assert_eq!(run.file_if_exists("no-such-output"), None);
    std::fs::write(run.path().join("present"), "text").unwrap();
    assert_eq!(run.file_if_exists("present").as_deref(), Some("text"));
    assert_eq!(run.file("present"), "text");
}

#[test]
fn a_closed_port_refuses_connections_while_held() {
    let closed = ClosedPort::start();
    let err = std::net::TcpStream::connect(("127.0.0.1", closed.port)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(std::net::TcpListener::bind(("127.0.0.1", closed.port)).is_err(), "nobody else can take the port");
}

/// A box sealed to `store`'s public key of acme/app, with that key's id.
fn sealed_for(gh: &GitHub, store: &str, value: &[u8]) -> (String, String) {
    use base64::Engine as _;
    let key: Value = client()
        .get(format!("{}/repos/{REPO}/{store}/secrets/public-key", gh.url))
        .bearer_auth(GH_TOKEN)
        .header("x-github-api-version", "2022-11-28")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let pk: [u8; 32] = b64.decode(key["key"].as_str().unwrap()).unwrap().try_into().unwrap();
    let sealed = crypto_box::PublicKey::from(pk).seal(&mut crypto_box::aead::OsRng, value).unwrap();
    (key["key_id"].as_str().unwrap().to_owned(), b64.encode(sealed))
}

#[test]
fn each_github_store_opens_only_boxes_sealed_to_its_own_key() {
    let gh = GitHub::start();
    let (actions_id, actions_box) = sealed_for(&gh, "actions", b"value-for-actions");
    let (dependabot_id, dependabot_box) = sealed_for(&gh, "dependabot", b"value-for-dependabot");
    assert_ne!(actions_id, dependabot_id, "each store has its own key");
    let put = |key_id: &str, sealed: &str| {
        client()
            .put(format!("{}/repos/{REPO}/dependabot/secrets/X", gh.url))
            .bearer_auth(GH_TOKEN)
            .header("x-github-api-version", "2022-11-28")
            .json(&json!({ "encrypted_value": sealed, "key_id": key_id }))
            .send()
            .unwrap()
    };
    let r = put(&actions_id, &actions_box);
    assert_eq!(r.status().as_u16(), 422);
    assert!(message(r).contains("key_id does not match"));
    let r = put(&dependabot_id, &actions_box);
    assert_eq!(r.status().as_u16(), 422, "the Actions box does not open with the Dependabot key");
    assert!(message(r).contains("Could not decrypt"));
    assert_eq!(put(&dependabot_id, &dependabot_box).status().as_u16(), 201);
    assert_eq!(gh.secret(&json!(["repo", REPO, "dependabot"]), "X").as_deref(), Some("value-for-dependabot"));
    assert_eq!(gh.repo_secret(REPO, "X"), None, "nothing reached the Actions store");
}
