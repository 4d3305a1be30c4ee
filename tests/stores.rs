//! GitHub's three secret stores (Actions, Dependabot, Codespaces), each with its own public key,
//! in one rotation beside a GitLab variable; organization secrets that keep the visibility and
//! repositories they have.

mod common;

use common::*;
use serde_json::json;

const WRITER: &str = "glpat-writer-token-0000000001";

#[test]
fn one_rotation_writes_every_store_and_a_gitlab_variable() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let gl = GitLab::start();
    gl.token(WRITER, "project", Some(GL_PROJECT), &["api"]);
    // An org Dependabot secret shared with acme/api only, and an org Codespaces secret visible
    // to all: a write that names no visibility keeps them.
    gh.setup(json!({ "secrets": [
        { "scope": ["org", "acme", "dependabot"], "name": "SPOTIFY_REFRESH_TOKEN", "value": "old-value-0000",
          "updated_at": "2026-01-01T00:00:00Z", "visibility": "selected", "selected": [4343] },
        { "scope": ["org", "acme", "codespaces"], "name": "SPOTIFY_REFRESH_TOKEN", "value": "old-value-0000",
          "updated_at": "2026-01-01T00:00:00Z", "visibility": "all" },
    ] }));
    let r1 = oauth.mint(BASIC_ID);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            r#"
github:
  token: {{ env: GH_SECRETS_TOKEN }}
  api_url: {api}
gitlab:
  url: {gitlab}
  token: {{ env: GL_WRITER }}
rotations:
  - name: spotify
    provider:
      type: oauth2
      token_url: {oauth}/token
      client_id: {id}
      client_secret: {{ env: CLIENT_SECRET }}
      refresh_token: {{ env: REFRESH_TOKEN }}
    targets:
      - github: {{ repository: acme/app, secret: SPOTIFY_REFRESH_TOKEN }}
      - github: {{ repository: acme/app, store: dependabot, secret: SPOTIFY_REFRESH_TOKEN }}
      - github: {{ repository: acme/app, store: codespaces, secret: SPOTIFY_REFRESH_TOKEN }}
      - github: {{ org: acme, store: dependabot, secret: SPOTIFY_REFRESH_TOKEN }}
      - github: {{ org: acme, store: codespaces, secret: SPOTIFY_REFRESH_TOKEN }}
      - github: {{ org: acme, store: actions, visibility: private, secret: SPOTIFY_REFRESH_TOKEN }}
      - gitlab: {{ project: {project}, variable: SPOTIFY_REFRESH_TOKEN }}
"#,
            api = gh.url,
            gitlab = gl.url,
            oauth = oauth.url,
            id = BASIC_ID,
            project = GL_PROJECT,
        ),
    );
    let run = Bin::actions(&["rotate", "--config", &config])
        .env("GH_SECRETS_TOKEN", GH_TOKEN)
        .env("GL_WRITER", WRITER)
        .env("CLIENT_SECRET", BASIC_SECRET)
        .env("REFRESH_TOKEN", &r1)
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let report = run.report();
    let described: Vec<_> =
        report["rotations"][0]["targets"].as_array().unwrap().iter().map(|t| t["target"].clone()).collect();
    assert_eq!(
        described,
        [
            "acme/app secret SPOTIFY_REFRESH_TOKEN",
            "acme/app Dependabot secret SPOTIFY_REFRESH_TOKEN",
            "acme/app Codespaces secret SPOTIFY_REFRESH_TOKEN",
            "org acme Dependabot secret SPOTIFY_REFRESH_TOKEN",
            "org acme Codespaces secret SPOTIFY_REFRESH_TOKEN",
            "org acme secret SPOTIFY_REFRESH_TOKEN",
            "project acme/app variable SPOTIFY_REFRESH_TOKEN",
        ]
    );

    // Every store holds the new token: the stand-in opened each sealed box with the private key
    // of the store whose key_id was sent, and the stores' keys differ.
    let r2 = gh.repo_secret(REPO, "SPOTIFY_REFRESH_TOKEN").expect("Actions secret");
    assert!(oauth.active(&r2) && !oauth.active(&r1));
    for scope in [
        json!(["repo", REPO, "dependabot"]),
        json!(["repo", REPO, "codespaces"]),
        json!(["org", "acme", "dependabot"]),
        json!(["org", "acme", "codespaces"]),
        json!(["org", "acme"]),
    ] {
        assert_eq!(gh.secret(&scope, "SPOTIFY_REFRESH_TOKEN").as_deref(), Some(r2.as_str()), "{scope}");
    }
    let v = gl.variable(json!(["project", GL_PROJECT]), "SPOTIFY_REFRESH_TOKEN", "*").expect("GitLab variable");
    assert_eq!(v["value"], r2.as_str());
    let key_ids: std::collections::HashSet<_> = gh
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/public-key"))
        .map(|r| r["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(key_ids.len(), 6, "one key per scope and store, each fetched once: {key_ids:?}");

    // Who may read the org secrets is what it was; the configured visibility is what was asked.
    let dependabot = gh.secret_meta(&json!(["org", "acme", "dependabot"]), "SPOTIFY_REFRESH_TOKEN").unwrap();
    assert_eq!((dependabot["visibility"].clone(), dependabot["selected"].clone()), (json!("selected"), json!([4343])));
    let codespaces = gh.secret_meta(&json!(["org", "acme", "codespaces"]), "SPOTIFY_REFRESH_TOKEN").unwrap();
    assert_eq!(codespaces["visibility"], "all");
    let actions = gh.secret_meta(&json!(["org", "acme"]), "SPOTIFY_REFRESH_TOKEN").unwrap();
    assert_eq!(actions["visibility"], "private");
}

#[test]
fn a_dependabot_secret_from_the_action_inputs() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    let run = Bin::actions(&["rotate"])
        .envs(oauth_inputs(&oauth.url, &gh, &r1))
        .env("INPUT_GITHUB_STORE", "dependabot")
        .env("INPUT_ACCESS_TOKEN_SECRET_NAME", "OAUTH_ACCESS_TOKEN")
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let scope = json!(["repo", REPO, "dependabot"]);
    let r2 = gh.secret(&scope, "OAUTH_REFRESH_TOKEN").expect("Dependabot secret");
    assert!(oauth.active(&r2));
    assert!(gh.secret(&scope, "OAUTH_ACCESS_TOKEN").is_some(), "the access token goes to the same store");
    assert!(gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").is_none(), "no Actions secret was written");
}

#[test]
fn a_token_that_may_not_write_dependabot_secrets_fails_the_preflight_with_its_permission() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    let run = Bin::actions(&["rotate"])
        .envs(oauth_inputs(&oauth.url, &gh, &r1))
        .env("INPUT_GITHUB_TOKEN", GH_READONLY)
        .env("INPUT_GITHUB_STORE", "dependabot")
        .run();
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("Dependabot secrets: read and write"), "{}", run.stderr);
    assert!(oauth.active(&r1), "the refresh token was not spent");
}

/// `examples/configs/every-store.yml`, its URLs pointed at the servers here: one rotation writes
/// the same refresh token to GitHub's three stores, a GitLab variable and one key of an AWS
/// Secrets Manager secret, in one run.
#[test]
fn the_every_store_example_writes_one_credential_to_all_five_kinds_of_place() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let gl = GitLab::start();
    let moto = Moto::start();
    gl.token(WRITER, "project", Some(GL_PROJECT), &["api"]);
    moto.create_secret("ci/spotify", r#"{"refresh_token":"old-value-0000","client_id":"kept"}"#);
    let text = std::fs::read_to_string(root().join("examples/configs/every-store.yml")).unwrap();
    let mut doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    doc["github"]["api_url"] = gh.url.clone().into();
    doc["gitlab"]["url"] = gl.url.clone().into();
    let rotation = &mut doc["rotations"][0];
    rotation["provider"]["token_url"] = oauth.token_url().into();
    rotation["provider"]["client_id"] = BASIC_ID.into();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &serde_norway::to_string(&doc).unwrap());
    let r1 = oauth.mint(BASIC_ID);
    let run = Bin::actions(&["rotate", "--config", &config])
        .env("SECRETS_WRITER_TOKEN", GH_TOKEN)
        .env("VARIABLES_WRITER_TOKEN", WRITER)
        .env("SPOTIFY_CLIENT_SECRET", BASIC_SECRET)
        .env("SPOTIFY_REFRESH_TOKEN", &r1)
        .envs(moto.env())
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let r2 = gh.repo_secret(REPO, "SPOTIFY_REFRESH_TOKEN").expect("Actions secret");
    assert!(oauth.active(&r2) && !oauth.active(&r1));
    for scope in
        [json!(["repo", REPO, "dependabot"]), json!(["repo", REPO, "codespaces"]), json!(["org", "acme", "dependabot"])]
    {
        assert_eq!(gh.secret(&scope, "SPOTIFY_REFRESH_TOKEN").as_deref(), Some(r2.as_str()), "{scope}");
    }
    let v = gl.variable(json!(["project", GL_PROJECT]), "SPOTIFY_REFRESH_TOKEN", "*").expect("GitLab variable");
    assert_eq!(v["value"], r2.as_str());
    let aws: serde_json::Value = serde_json::from_str(&moto.value("ci/spotify", "AWSCURRENT").unwrap()).unwrap();
    assert_eq!(aws, json!({ "refresh_token": r2, "client_id": "kept" }));
    let targets = run.report()["rotations"][0]["targets"].as_array().unwrap().len();
    assert_eq!(targets, 6);
    assert_no_leak(&run, &[&r1, &r2, BASIC_SECRET, GH_TOKEN, WRITER, AWS_SECRET_KEY]);
}
