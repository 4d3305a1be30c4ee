//! The requests secret-rotator sends to GitHub are valid against GitHub's own OpenAPI
//! description (@octokit/openapi), served by Prism as a validating mock. Prism answers a request
//! that breaks the schema with 422, which would fail the run.

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

fn prism_inputs(oauth: &OAuth, prism: &Prism, token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("INPUT_PROVIDER", "oauth2".into()),
        ("INPUT_TOKEN_URL", oauth.token_url()),
        ("INPUT_CLIENT_ID", BASIC_ID.into()),
        ("INPUT_CLIENT_SECRET", BASIC_SECRET.into()),
        ("INPUT_REFRESH_TOKEN", token.into()),
        ("INPUT_GITHUB_TOKEN", GH_TOKEN.into()),
        ("INPUT_SECRET_NAME", "OAUTH_REFRESH_TOKEN".into()),
        ("GITHUB_API_URL", prism.url.clone()),
    ]
}

#[test]
fn every_github_request_matches_the_openapi_description() {
    let prism = Prism::start();
    let oauth = OAuth::start();

    // Prism really validates: a PUT without key_id is refused.
    let bad = reqwest::blocking::Client::new()
        .put(format!("{}/repos/acme/app/actions/secrets/X", prism.url))
        .bearer_auth("t")
        .json(&json!({ "encrypted_value": "c2VjcmV0" }))
        .send()
        .unwrap();
    assert_eq!(bad.status().as_u16(), 422);

    let variants: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "repository secret, access token, min_age",
            vec![("INPUT_ACCESS_TOKEN_SECRET_NAME", "OAUTH_ACCESS_TOKEN"), ("INPUT_MIN_AGE", "20h")],
        ),
        (
            "environment secret, the workflow run's start read",
            vec![("INPUT_ENVIRONMENT", "prod"), ("GITHUB_RUN_ID", "42")],
        ),
        (
            "organization secret, selected repositories",
            vec![("INPUT_ORG", "acme"), ("INPUT_VISIBILITY", "selected"), ("INPUT_SELECTED_REPOSITORIES", "app,api")],
        ),
        ("organization secret, all repositories", vec![("INPUT_ORG", "acme"), ("INPUT_VISIBILITY", "all")]),
        ("organization secret, its visibility kept", vec![("INPUT_ORG", "acme")]),
        (
            "Dependabot repository secret, access token",
            vec![("INPUT_GITHUB_STORE", "dependabot"), ("INPUT_ACCESS_TOKEN_SECRET_NAME", "OAUTH_ACCESS_TOKEN")],
        ),
        (
            "Dependabot organization secret, its visibility kept",
            vec![("INPUT_GITHUB_STORE", "dependabot"), ("INPUT_ORG", "acme")],
        ),
        (
            "Dependabot organization secret, selected repositories",
            vec![
                ("INPUT_GITHUB_STORE", "dependabot"),
                ("INPUT_ORG", "acme"),
                ("INPUT_VISIBILITY", "selected"),
                ("INPUT_SELECTED_REPOSITORIES", "app"),
            ],
        ),
        ("Codespaces repository secret", vec![("INPUT_GITHUB_STORE", "codespaces")]),
        (
            "Codespaces organization secret, its visibility kept",
            vec![("INPUT_GITHUB_STORE", "codespaces"), ("INPUT_ORG", "acme")],
        ),
    ];
    for (name, extra) in variants {
        let r1 = oauth.mint(BASIC_ID);
        let mut bin = Bin::actions(&["rotate"]).envs(prism_inputs(&oauth, &prism, &r1));
        for (k, v) in extra {
            bin = bin.env(k, v);
        }
        let run = bin.run();
        assert_eq!(run.code, 0, "{name}: stderr: {}\nprism: {}", run.stderr, prism.log());
        assert_eq!(run.report()["rotations"][0]["status"], "rotated", "{name}");
    }

    // Two secrets of one repository in each of two stores: their update times come from one list
    // of the scope's secrets.
    let dir = tempfile::tempdir().unwrap();
    let targets: String = ["actions", "dependabot"]
        .iter()
        .flat_map(|store| {
            ["LISTED_A", "LISTED_B"]
                .map(|name| format!("      - github: {{ repository: acme/app, secret: {name}, store: {store} }}\n"))
        })
        .collect();
    let config = write_config(
        dir.path(),
        &format!(
            "github: {{ token: {{ env: GH }}, api_url: '{}' }}\nrotations:\n  - name: listed\n    provider: {{ type: oauth2, \
             token_url: '{}', client_id: {BASIC_ID}, client_secret: {{ env: CS }}, refresh_token: {{ env: RT }} }}\n    \
             targets:\n{targets}",
            prism.url,
            oauth.token_url()
        ),
    );
    let run = Bin::actions(&["rotate", "--config", &config])
        .env("GH", GH_TOKEN)
        .env("CS", BASIC_SECRET)
        .env("RT", oauth.mint(BASIC_ID))
        .run();
    assert_eq!(run.code, 0, "listed: stderr: {}\nprism: {}", run.stderr, prism.log());

    // GitHub App: installation lookup and installation token.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("app.pem");
    let ok = Command::new("openssl").args(["genrsa", "-traditional", "-out"]).arg(&key).arg("2048").output().unwrap();
    assert!(ok.status.success());
    let r1 = oauth.mint(BASIC_ID);
    let mut inputs = prism_inputs(&oauth, &prism, &r1);
    inputs.retain(|(k, _)| *k != "INPUT_GITHUB_TOKEN");
    let run = Bin::actions(&["rotate"])
        .envs(inputs)
        .env("INPUT_APP_ID", "777")
        .env("INPUT_APP_PRIVATE_KEY", std::fs::read_to_string(&key).unwrap())
        .run();
    assert_eq!(run.code, 0, "app: stderr: {}\nprism: {}", run.stderr, prism.log());

    let log = prism.log();
    assert!(log.contains("put /repos/acme/app/actions/secrets/OAUTH_REFRESH_TOKEN"), "{log}");
    assert!(log.contains("put /orgs/acme/actions/secrets/OAUTH_REFRESH_TOKEN"), "{log}");
    // The spec's example org secrets are `selected` (Actions, Dependabot): keeping that visibility
    // reads their repositories and sends them back.
    assert!(log.contains("get /orgs/acme/dependabot/secrets/OAUTH_REFRESH_TOKEN/repositories"), "{log}");
    assert!(log.contains("get /orgs/acme/actions/secrets/OAUTH_REFRESH_TOKEN/repositories"), "{log}");
    for store in ["dependabot", "codespaces"] {
        assert!(log.contains(&format!("put /repos/acme/app/{store}/secrets/OAUTH_REFRESH_TOKEN")), "{log}");
        assert!(log.contains(&format!("put /orgs/acme/{store}/secrets/OAUTH_REFRESH_TOKEN")), "{log}");
        assert!(log.contains(&format!("get /orgs/acme/{store}/secrets/public-key")), "{log}");
    }
    assert!(log.contains("get /repos/acme/app/actions/secrets "), "{log}");
    assert!(log.contains("get /repos/acme/app/dependabot/secrets "), "{log}");
    assert!(log.contains("post /app/installations/"), "{log}");
    assert!(log.contains("get /repos/acme/app/actions/runs/42"), "{log}");
    assert!(!log.contains("VIOLATIONS"), "{log}");
}
