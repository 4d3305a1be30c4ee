//! Sharding a config across jobs: the example config (examples/shards/github-rotations.yml), its
//! URLs pointed at the servers here, run as two shards at once (`--only`), each job given only its
//! own rotation's secrets, as the matrix in examples/github/sharded.yml does.

mod common;

use common::*;
use serde_json::json;
use serde_norway::Value;

/// The example config with its token endpoints and GitHub API pointed at the servers here.
fn example_config(dir: &std::path::Path, oauth: &OAuth, gh: &GitHub) -> String {
    let text = std::fs::read_to_string(root().join("examples/shards/github-rotations.yml")).unwrap();
    let mut doc: Value = serde_norway::from_str(&text).unwrap();
    doc["github"]["api_url"] = Value::from(gh.url.clone());
    for r in doc["rotations"].as_sequence_mut().unwrap() {
        let provider = &mut r["provider"];
        provider["token_url"] = Value::from(oauth.token_url());
        let post = provider.get("client_auth").and_then(Value::as_str) == Some("post");
        provider["client_id"] = Value::from(if post { POST_ID } else { BASIC_ID });
    }
    write_config(dir, &serde_norway::to_string(&doc).unwrap())
}

#[test]
fn two_shards_of_one_config_run_at_once_each_with_only_its_own_secrets() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let dir = tempfile::tempdir().unwrap();
    let config = example_config(dir.path(), &oauth, &gh);
    let (spotify, crm) = (oauth.mint(BASIC_ID), oauth.mint(POST_ID));

    let shard = |only: &str, secrets: Vec<(&'static str, String)>| {
        let bin = Bin::actions(&["rotate", "--config", &config, "--only", only])
            .env("SECRETS_WRITER_TOKEN", GH_TOKEN)
            .envs(secrets);
        std::thread::spawn(move || bin.run())
    };
    let a = shard(
        "spotify-ci",
        vec![("SPOTIFY_CLIENT_SECRET", BASIC_SECRET.into()), ("SPOTIFY_REFRESH_TOKEN", spotify.clone())],
    );
    let b = shard("crm", vec![("CRM_CLIENT_SECRET", POST_SECRET.into()), ("CRM_REFRESH_TOKEN", crm.clone())]);
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    assert_eq!(a.code, 0, "shard spotify-ci: {}", a.stderr);
    assert_eq!(b.code, 0, "shard crm: {}", b.stderr);

    let names = |run: &Run| -> Vec<String> {
        run.report()["rotations"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(&a), ["spotify-ci"]);
    assert_eq!(names(&b), ["crm"]);

    let spotify2 = gh.repo_secret(REPO, "SPOTIFY_REFRESH_TOKEN").expect("written by its shard");
    assert_eq!(gh.secret(&json!(["repo", REPO, "dependabot"]), "SPOTIFY_REFRESH_TOKEN"), Some(spotify2.clone()));
    let crm2 = gh.secret(&json!(["org", "acme"]), "CRM_REFRESH_TOKEN").expect("written by its shard");
    assert!(oauth.active(&spotify2) && oauth.active(&crm2));
    assert!(!oauth.active(&spotify) && !oauth.active(&crm));
}

#[test]
fn a_shard_without_the_other_shards_secrets_is_refused_only_for_its_own() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let dir = tempfile::tempdir().unwrap();
    let config = example_config(dir.path(), &oauth, &gh);
    // The crm shard given the spotify shard's secrets: refused (exit 2), naming its own missing one.
    let run = Bin::actions(&["rotate", "--config", &config, "--only", "crm"])
        .env("SECRETS_WRITER_TOKEN", GH_TOKEN)
        .env("SPOTIFY_CLIENT_SECRET", BASIC_SECRET)
        .env("SPOTIFY_REFRESH_TOKEN", oauth.mint(BASIC_ID))
        .run();
    assert_eq!(run.code, 2, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("rotations[1].provider.client_secret"), "{}", run.stderr);
    assert!(gh.requests().is_empty(), "nothing contacted");
}
