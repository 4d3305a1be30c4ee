//! End to end with GitLab: the built binary rotates GitLab access tokens (self-rotation, with
//! immediate revocation and family revocation on reuse) and writes GitLab CI/CD variables, against
//! the strict GitLab stand-in; and a real OAuth2 server's refresh token into a GitLab variable.

mod common;

use common::*;
use serde_json::json;

const T1: &str = "glpat-project-token-current-0001";

fn project_scope() -> serde_json::Value {
    json!(["project", GL_PROJECT])
}

#[test]
fn a_project_token_rotates_itself_and_writes_its_own_variable_with_the_new_token() {
    let gl = GitLab::start();
    gl.token(T1, "project", Some(GL_PROJECT), &["api"]);
    let run = Bin::new(&["rotate"]).envs(gitlab_inputs(&gl, T1)).run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);

    let var = gl.variable(project_scope(), "ROTATED_TOKEN", "*").expect("variable created");
    let t2 = var["value"].as_str().unwrap().to_owned();
    assert_ne!(t2, T1);
    assert!(gl.active(&t2), "the stored token is the live one");
    assert!(!gl.active(T1), "GitLab revoked the old token at once");
    assert_eq!(var["masked"], true, "masked by default");
    let new_record = gl.token_record(&t2);
    let expires = new_record["expires_at"].as_str().unwrap();
    let expires_ts: jiff::Timestamp = format!("{expires}T00:00:00Z").parse().unwrap();
    let days = (expires_ts.as_second() - jiff::Timestamp::now().as_second()) / 86_400;
    assert!((29..=30).contains(&days), "expires_at is sent: {expires}");

    // The preflight wrote with the old token, the write-back with the new one (the old is dead).
    let reqs = gl.requests();
    let rotate_at = reqs.iter().position(|r| r["path"].as_str().unwrap().ends_with("/self/rotate")).unwrap();
    let old_id = gl.token_record(T1)["id"].clone();
    assert!(reqs[..rotate_at]
        .iter()
        .filter(|r| r["path"].as_str().unwrap().contains("/variables"))
        .all(|r| r["token_id"] == old_id));
    let after: Vec<_> =
        reqs[rotate_at + 1..].iter().filter(|r| r["path"].as_str().unwrap().contains("/variables")).collect();
    assert!(!after.is_empty() && after.iter().all(|r| r["token_id"] == new_record["id"]), "{after:?}");
    assert_eq!(reqs.iter().filter(|r| r["path"].as_str().unwrap().ends_with("/self/rotate")).count(), 1);
    // Nothing done twice: read, create (the preflight), rotate, verify, one write.
    let calls: Vec<String> =
        reqs.iter().map(|r| format!("{} {}", r["method"].as_str().unwrap(), r["path"].as_str().unwrap())).collect();
    assert_eq!(
        calls,
        [
            "GET /personal_access_tokens/self",
            "GET /projects/7/variables/ROTATED_TOKEN",
            "POST /projects/7/variables",
            "POST /projects/acme%2Fapp/access_tokens/self/rotate",
            "GET /personal_access_tokens/self",
            "PUT /projects/7/variables/ROTATED_TOKEN",
        ]
    );
}

#[test]
fn chained_gitlab_rotations_and_a_stale_token_stops_before_the_family_is_revoked() {
    let gl = GitLab::start();
    gl.token(T1, "project", Some(GL_PROJECT), &["api"]);
    let mut current = T1.to_owned();
    for _ in 0..2 {
        let run = Bin::new(&["rotate"]).envs(gitlab_inputs(&gl, &current)).run();
        assert_eq!(run.code, 0, "stderr: {}", run.stderr);
        let next = gl.variable(project_scope(), "ROTATED_TOKEN", "*").unwrap()["value"].as_str().unwrap().to_owned();
        assert!(!gl.active(&current) && gl.active(&next));
        current = next;
    }
    // A run handed the first (revoked) token: the preflight's non-consuming lookup sees it dead
    // and stops, so the rotate request that would revoke the whole family is never sent.
    let run = Bin::new(&["rotate"]).envs(gitlab_inputs(&gl, T1)).run();
    assert_eq!(run.code, 4, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("revoked or expired"), "{}", run.stderr);
    assert!(gl.active(&current), "the live token survives");
    assert_eq!(gl.requests().iter().filter(|r| r["path"].as_str().unwrap().ends_with("/self/rotate")).count(), 2);
}

#[test]
fn rotating_a_revoked_token_revokes_the_family_in_the_stand_in() {
    // The behaviour the preflight protects against, checked on the stand-in itself.
    let gl = GitLab::start();
    gl.token(T1, "personal", None, &["api"]);
    let c = reqwest::blocking::Client::new();
    let rotate = |t: &str| {
        c.post(format!("{}/personal_access_tokens/self/rotate", gl.api())).header("PRIVATE-TOKEN", t).send().unwrap()
    };
    let r = rotate(T1);
    assert_eq!(r.status().as_u16(), 200);
    let t2 = r.json::<serde_json::Value>().unwrap()["token"].as_str().unwrap().to_owned();
    assert_eq!(rotate(T1).status().as_u16(), 401);
    assert!(!gl.active(&t2), "reusing a revoked token revoked the newest too");
}

#[test]
fn an_expiry_beyond_the_instance_maximum_is_refused_clearly_and_nothing_is_rotated() {
    let gl = GitLab::start();
    gl.setup(json!({ "max_lifetime_days": 20 }));
    gl.token(T1, "project", Some(GL_PROJECT), &["api"]);
    let run = Bin::new(&["rotate"]).envs(gitlab_inputs(&gl, T1)).run();
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("maximum token lifetime"), "{}", run.stderr);
    assert!(run.stderr.contains("lower expires_in"), "{}", run.stderr);
    assert!(gl.active(T1));
    let run = Bin::new(&["rotate"]).envs(gitlab_inputs(&gl, T1)).env("INPUT_EXPIRES_IN", "14").run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
}

#[test]
fn personal_and_group_tokens() {
    let gl = GitLab::start();
    gl.token("glpat-personal-token-000000001", "personal", None, &["api"]);
    let run = Bin::new(&["rotate"])
        .envs(gitlab_inputs(&gl, "glpat-personal-token-000000001"))
        .env("INPUT_TOKEN_KIND", "personal")
        .env("INPUT_TOKEN_OWNER", "")
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert!(!gl.active("glpat-personal-token-000000001"));

    gl.token("glpat-group-token-00000000001", "group", Some("acme"), &["api"]);
    let run = Bin::new(&["rotate"])
        .envs(gitlab_inputs(&gl, "glpat-group-token-00000000001"))
        .env("INPUT_TOKEN_KIND", "group")
        .env("INPUT_TOKEN_OWNER", "3")
        .env("INPUT_VARIABLE_NAME", "GROUP_TOKEN")
        .env("CI_PROJECT_ID", "")
        .env("INPUT_GROUP", "acme")
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let v = gl.variable(json!(["group", "acme"]), "GROUP_TOKEN", "*").unwrap();
    assert!(gl.active(v["value"].as_str().unwrap()));
}

#[test]
fn a_token_that_cannot_rotate_itself_fails_the_preflight() {
    let gl = GitLab::start();
    gl.token(T1, "project", Some(GL_PROJECT), &["read_api"]);
    let run = Bin::new(&["rotate"]).envs(gitlab_inputs(&gl, T1)).run();
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("needs api or self_rotate"), "{}", run.stderr);
    assert!(gl.active(T1));
}

#[test]
fn min_age_uses_the_tokens_own_age() {
    let gl = GitLab::start();
    gl.token(T1, "project", Some(GL_PROJECT), &["api"]);
    let run = Bin::new(&["rotate"]).envs(gitlab_inputs(&gl, T1)).env("INPUT_MIN_AGE", "1d").run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("skipped"), "{}", run.stderr);
    assert!(gl.active(T1), "a young token is not rotated");
    assert!(gl.variables().is_empty(), "a skipped rotation writes nothing");

    gl.setup(json!({ "tokens": [ { "value": "glpat-old-token-0000000000001", "kind": "project", "owner": GL_PROJECT, "scopes": ["api"], "created_at": "2020-01-01T00:00:00.000Z" } ] }));
    let run = Bin::new(&["rotate"])
        .envs(gitlab_inputs(&gl, "glpat-old-token-0000000000001"))
        .env("INPUT_MIN_AGE", "1d")
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert!(!gl.active("glpat-old-token-0000000000001"));
}

#[test]
fn variable_flags_environment_scopes_and_hidden_variables() {
    let gl = GitLab::start();
    gl.token(T1, "project", Some(GL_PROJECT), &["api"]);
    gl.setup(json!({ "variables": [
        { "scope": ["project", GL_PROJECT], "key": "ROTATED_TOKEN", "value": T1, "environment_scope": "production", "masked": true },
        { "scope": ["project", GL_PROJECT], "key": "ROTATED_TOKEN", "value": "staging-value-unchanged", "environment_scope": "staging" },
    ] }));
    let run = Bin::new(&["rotate"])
        .envs(gitlab_inputs(&gl, T1))
        .env("INPUT_ENVIRONMENT_SCOPE", "production")
        .env("INPUT_PROTECTED", "true")
        .env("INPUT_RAW", "true")
        .env("INPUT_VARIABLE_TYPE", "file")
        .env("INPUT_VARIABLE_DESCRIPTION", "rotated by secret-rotator")
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let prod = gl.variable(project_scope(), "ROTATED_TOKEN", "production").unwrap();
    assert!(gl.active(prod["value"].as_str().unwrap()));
    assert_eq!(
        (prod["protected"].clone(), prod["raw"].clone(), prod["variable_type"].clone()),
        (json!(true), json!(true), json!("file"))
    );
    assert_eq!(prod["description"], "rotated by secret-rotator");
    assert_eq!(gl.variable(project_scope(), "ROTATED_TOKEN", "staging").unwrap()["value"], "staging-value-unchanged");

    // masked_and_hidden on a variable that exists without it: refused before rotating.
    let t = prod["value"].as_str().unwrap().to_owned();
    let run = Bin::new(&["rotate"])
        .envs(gitlab_inputs(&gl, &t))
        .env("INPUT_ENVIRONMENT_SCOPE", "production")
        .env("INPUT_MASKED_AND_HIDDEN", "true")
        .run();
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("only be set when GitLab creates"), "{}", run.stderr);
    assert!(gl.active(&t));

    // ... and honoured when the variable is new.
    let run = Bin::new(&["rotate"])
        .envs(gitlab_inputs(&gl, &t))
        .env("INPUT_VARIABLE_NAME", "HIDDEN_TOKEN")
        .env("INPUT_MASKED_AND_HIDDEN", "true")
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let hidden = gl.variable(project_scope(), "HIDDEN_TOKEN", "*").unwrap();
    assert_eq!((hidden["hidden"].clone(), hidden["masked"].clone()), (json!(true), json!(true)));
    assert!(gl.active(hidden["value"].as_str().unwrap()));
    assert_eq!(hidden["writes"], 2, "created by the preflight, updated with the new token");
}

#[test]
fn writes_failing_after_the_rotation_exit_3_and_the_rescued_token_is_live() {
    let gl = GitLab::start();
    gl.token(T1, "project", Some(GL_PROJECT), &["api"]);
    // The preflight creates the variable (POST); every write after the rotation (PUT) fails.
    gl.fault(json!({ "method": "PUT", "path": "/variables/ROTATED_TOKEN$", "count": 100, "status": 502 }));
    let bin = Bin::new(&["rotate"]);
    let (key, recipient) = age_key(bin.dir());
    let run = bin
        .envs(gitlab_inputs(&gl, T1))
        .env("INPUT_RESCUE_RECIPIENT", &recipient)
        .env("INPUT_REPORT", "report.json")
        .run();
    assert_eq!(run.code, 3, "stderr: {}", run.stderr);
    let rescued = age_decrypt(&key, &run.path().join("secret-rotator-rescue-rotated-token.age"));
    assert!(gl.active(&rescued), "the rescue file holds the live token");
    assert!(!gl.active(T1));
    let report = run.report_at(run.path().join("report.json"));
    assert_eq!(report["rotations"][0]["status"], "critical");
    assert_eq!(report["rotations"][0]["targets"][0]["value"], "token");
}

#[test]
fn a_failed_rotation_request_is_not_repeated() {
    let gl = GitLab::start();
    gl.token(T1, "project", Some(GL_PROJECT), &["api"]);
    gl.fault(json!({ "method": "POST", "path": "/self/rotate$", "count": 5, "status": 503 }));
    let run = Bin::new(&["rotate"]).envs(gitlab_inputs(&gl, T1)).run();
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("may have rotated the token"), "{}", run.stderr);
    assert_eq!(gl.requests().iter().filter(|r| r["path"].as_str().unwrap().ends_with("/self/rotate")).count(), 1);
}

#[test]
fn an_oauth_refresh_token_into_a_gitlab_variable_with_a_writer_token() {
    let oauth = OAuth::start();
    let gl = GitLab::start();
    gl.token("glpat-writer-token-0000000001", "project", Some(GL_PROJECT), &["api"]);
    let r1 = oauth.mint(BASIC_ID);
    let run = Bin::new(&["rotate"])
        .env("GITLAB_CI", "true")
        .env("CI_API_V4_URL", gl.api())
        .env("CI_PROJECT_ID", GL_PROJECT_ID.to_string())
        .env("INPUT_PROVIDER", "oauth2")
        .env("INPUT_TOKEN_URL", oauth.token_url())
        .env("INPUT_CLIENT_ID", BASIC_ID)
        .env("INPUT_CLIENT_SECRET", BASIC_SECRET)
        .env("INPUT_REFRESH_TOKEN", &r1)
        .env("INPUT_GITLAB_TOKEN", "glpat-writer-token-0000000001")
        .env("INPUT_GITLAB_TOKEN_TYPE", "bearer")
        .env("INPUT_VARIABLE_NAME", "SPOTIFY_REFRESH_TOKEN")
        .env("INPUT_PROTECTED", "true")
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let v = gl.variable(project_scope(), "SPOTIFY_REFRESH_TOKEN", "*").unwrap();
    assert!(oauth.active(v["value"].as_str().unwrap()));
    assert!(!oauth.active(&r1));
    assert!(gl.active("glpat-writer-token-0000000001"), "the writer token is not rotated");
    let writer_id = gl.token_record("glpat-writer-token-0000000001")["id"].clone();
    let writes: Vec<_> = gl.requests().into_iter().filter(|r| r["method"] == "PUT" || r["method"] == "POST").collect();
    assert!(!writes.is_empty() && writes.iter().all(|r| r["token_id"] == writer_id), "the writer token (bearer) wrote");
}

#[test]
fn a_gitlab_token_into_a_github_secret() {
    let gl = GitLab::start();
    let gh = GitHub::start();
    gl.token("glpat-personal-token-000000002", "personal", None, &["self_rotate"]);
    let run = Bin::new(&["rotate"])
        .env("GITLAB_CI", "")
        .env("INPUT_PROVIDER", "gitlab-token")
        .env("INPUT_TOKEN", "glpat-personal-token-000000002")
        .env("INPUT_GITLAB_URL", &gl.url)
        .env("INPUT_TARGET", "github")
        .env("INPUT_REPOSITORY", REPO)
        .env("INPUT_SECRET_NAME", "GITLAB_TOKEN")
        .env("INPUT_GITHUB_TOKEN", GH_TOKEN)
        .env("GITHUB_API_URL", &gh.url)
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let stored = gh.repo_secret(REPO, "GITLAB_TOKEN").unwrap();
    assert!(gl.active(&stored), "a self_rotate-scoped token rotated itself");
}

#[test]
fn no_gitlab_token_is_ever_printed() {
    let gl = GitLab::start();
    gl.token(T1, "project", Some(GL_PROJECT), &["api"]);
    let run = Bin::new(&["rotate"])
        .envs(gitlab_inputs(&gl, T1))
        .env("INPUT_LOG_LEVEL", "debug")
        .env("INPUT_LOG_FORMAT", "json")
        .env("INPUT_REPORT", "report.json")
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let t2 = gl.variable(project_scope(), "ROTATED_TOKEN", "*").unwrap()["value"].as_str().unwrap().to_owned();
    assert!(run.stderr.lines().count() >= 5, "debug logging is on");
    for (place, text) in [("stdout", &run.stdout), ("stderr", &run.stderr), ("report", &run.file("report.json"))] {
        assert!(!text.contains(T1) && !text.contains(&t2), "a token leaked into {place}");
    }
    assert!(!run.stdout.contains("::add-mask::"), "GitLab has no add-mask: printing one would leak the value");
}
