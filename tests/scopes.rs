//! Environment and organization secrets, GitHub App authentication, and config-file runs with
//! many rotations and many targets.

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

#[test]
fn environment_secret() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    let run = Bin::actions(&["rotate"]).envs(oauth_inputs(&oauth.url, &gh, &r1)).env("INPUT_ENVIRONMENT", "prod").run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let r2 = gh.secret(&json!(["env", REPO, "prod"]), "OAUTH_REFRESH_TOKEN").unwrap();
    assert!(oauth.active(&r2));
    assert_eq!(
        run.report()["rotations"][0]["targets"][0]["target"],
        "acme/app environment prod secret OAUTH_REFRESH_TOKEN"
    );
}

#[test]
fn organization_secret_visible_to_selected_repositories() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    let run = Bin::actions(&["rotate"])
        .envs(oauth_inputs(&oauth.url, &gh, &r1))
        .env("INPUT_ORG", "acme")
        .env("INPUT_VISIBILITY", "selected")
        .env("INPUT_SELECTED_REPOSITORIES", "app, api")
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let meta = gh.secret_meta(&json!(["org", "acme"]), "OAUTH_REFRESH_TOKEN").unwrap();
    assert_eq!(meta["visibility"], "selected");
    assert_eq!(meta["selected"], json!([4242, 4343]));
    assert!(oauth.active(meta["value"].as_str().unwrap()));
    // Repository ids are resolved once per run, not once per write.
    let lookups = gh.requests().iter().filter(|r| r["path"] == "/repos/acme/app").count();
    assert_eq!(lookups, 1);
}

#[test]
fn github_app_in_a_config_file_with_many_rotations() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("app.pem");
    let ok = Command::new("openssl").args(["genrsa", "-traditional", "-out"]).arg(&key).arg("2048").output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let public = Command::new("openssl").args(["rsa", "-pubout", "-in"]).arg(&key).output().unwrap();
    gh.setup(json!({ "apps": { "777": { "public_key": String::from_utf8(public.stdout).unwrap(), "installations": { "acme": 9001 } } } }));

    let (a, b, c) = (oauth.mint(BASIC_ID), oauth.mint(BASIC_ID), oauth.mint(BASIC_ID));
    let config = format!(
        r#"
github:
  app: {{ id: 777, private_key: {{ file: {key} }} }}
  api_url: {api}
  max_concurrency: 3
rotations:
  - name: spotify-ci
    provider:
      type: oauth2
      token_url: {oauth}/token
      client_id: {id}
      client_secret: {{ env: CLIENT_SECRET }}
      refresh_token: {{ env: TOKEN_A }}
    verify: {{ url: {oauth}/me }}
    targets:
      - github: {{ repository: acme/app, secret: SPOTIFY_REFRESH_TOKEN }}
      - github: {{ repository: acme/app, environment: prod, secret: SPOTIFY_REFRESH_TOKEN }}
      - github: {{ repository: acme/api, secret: SPOTIFY_REFRESH_TOKEN }}
      - github: {{ org: acme, visibility: all, secret: SPOTIFY_REFRESH_TOKEN }}
      - github: {{ repository: acme/app, secret: SPOTIFY_ACCESS_TOKEN }}
        value: access_token
  - name: second
    provider:
      type: oauth2
      token_url: {oauth}/token
      client_id: {id}
      client_secret: {{ env: CLIENT_SECRET }}
      refresh_token: {{ env: TOKEN_B }}
    targets:
      - github: {{ repository: acme/web, secret: SECOND_TOKEN }}
  - name: not-this-time
    provider:
      type: oauth2
      token_url: {oauth}/token
      client_id: {id}
      client_secret: {{ env: CLIENT_SECRET }}
      refresh_token: {{ env: TOKEN_C }}
    targets:
      - github: {{ repository: acme/web, secret: THIRD_TOKEN }}
"#,
        key = key.display(),
        api = gh.url,
        oauth = oauth.url,
        id = BASIC_ID
    );
    let path = dir.path().join("rotations.yml");
    std::fs::write(&path, config).unwrap();
    let run = Bin::actions(&["rotate", "--config", path.to_str().unwrap(), "--only", "spotify-ci,second"])
        .env("CLIENT_SECRET", BASIC_SECRET)
        .env("TOKEN_A", &a)
        .env("TOKEN_B", &b)
        .env("TOKEN_C", &c)
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let report = run.report();
    assert_eq!(report["rotations"].as_array().unwrap().len(), 2, "--only selects rotations");
    assert!(oauth.active(&c), "an unselected rotation is not touched");

    let a2 = gh.repo_secret(REPO, "SPOTIFY_REFRESH_TOKEN").unwrap();
    assert!(oauth.active(&a2));
    assert_eq!(gh.secret(&json!(["env", REPO, "prod"]), "SPOTIFY_REFRESH_TOKEN").unwrap(), a2);
    assert_eq!(gh.repo_secret("acme/api", "SPOTIFY_REFRESH_TOKEN").unwrap(), a2);
    assert_eq!(gh.secret(&json!(["org", "acme"]), "SPOTIFY_REFRESH_TOKEN").unwrap(), a2);
    assert!(gh.repo_secret(REPO, "SPOTIFY_ACCESS_TOKEN").is_some());
    assert!(oauth.active(&gh.repo_secret("acme/web", "SECOND_TOKEN").unwrap()));

    let reqs = gh.requests();
    let count = |path: &str| reqs.iter().filter(|r| r["path"] == path).count();
    assert_eq!(
        count("/orgs/acme/installation") + count("/repos/acme/app/installation"),
        1,
        "one installation token per owner"
    );
    assert_eq!(count("/app/installations/9001/access_tokens"), 1);
    assert_eq!(count("/repos/acme/app/actions/secrets/public-key"), 1, "public key fetched once per scope");
    assert_eq!(count("/repos/acme/app/environments/prod/secrets/public-key"), 1);
    assert_eq!(count("/orgs/acme/actions/secrets/public-key"), 1);
}

#[test]
fn check_proves_writability_without_using_the_token() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    let run = Bin::new(&["check"])
        .envs(oauth_inputs(&oauth.url, &gh, &r1))
        .env("INPUT_TARGET", "github")
        .env("INPUT_REPOSITORY", "acme/nope")
        .run();
    assert_eq!(run.code, 1, "an unknown repository fails the preflight: {}", run.stderr);
    assert!(run.stderr.contains("HTTP 404"), "{}", run.stderr);
    assert!(oauth.active(&r1));
}
