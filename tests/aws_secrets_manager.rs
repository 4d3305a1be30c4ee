//! End to end: the built binary rotates refresh tokens at a real OAuth2 server (oidc-provider)
//! into AWS Secrets Manager, served by moto, and the results are read back with boto3. With
//! moto's IAM auth on, every request's SigV4 signature and IAM policy is checked by botocore's
//! verifier, so a passing run proves the signature right.

mod common;

use common::*;
use secret_rotator::secret::Secret;
use secret_rotator::targets::aws_secrets_manager::request_token;
use serde_json::{json, Value};

const ID: &str = "ci/spotify";

/// The usual single-rotation inputs: oauth2 into the AWS secret `ID`, reached through `moto`.
fn inputs(oauth: &OAuth, moto: &Moto, r1: &str) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("INPUT_PROVIDER", "oauth2".to_owned()),
        ("INPUT_TOKEN_URL", oauth.token_url()),
        ("INPUT_CLIENT_ID", BASIC_ID.to_owned()),
        ("INPUT_CLIENT_SECRET", BASIC_SECRET.to_owned()),
        ("INPUT_REFRESH_TOKEN", r1.to_owned()),
        ("INPUT_TARGET", "aws-secrets-manager".to_owned()),
        ("INPUT_AWS_SECRET_ID", ID.to_owned()),
        // The leak searches read what the most verbose level prints.
        ("INPUT_LOG_LEVEL", "debug".to_owned()),
    ];
    v.extend(moto.env());
    v
}

fn token_of(value: &str) -> String {
    request_token(&Secret::new(value))
}

/// The version ids that hold `stage`.
fn with_stage(versions: &[Value], stage: &str) -> Vec<String> {
    versions
        .iter()
        .filter(|v| v["VersionStages"].as_array().is_some_and(|s| s.iter().any(|x| x == stage)))
        .map(|v| v["VersionId"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn rotates_into_a_plain_secret_awscurrent_new_awsprevious_old() {
    let oauth = OAuth::start();
    let moto = Moto::start();
    let r1 = oauth.mint(BASIC_ID);
    moto.create_secret(ID, &r1);

    let run = Bin::actions(&["rotate"]).envs(inputs(&oauth, &moto, &r1)).run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let r2 = moto.value(ID, "AWSCURRENT").unwrap();
    assert_ne!(r2, r1);
    assert!(oauth.active(&r2) && !oauth.active(&r1), "AWSCURRENT holds the live refresh token");
    assert_eq!(moto.value(ID, "AWSPREVIOUS").as_deref(), Some(r1.as_str()), "AWSPREVIOUS keeps the old one");
    let versions = moto.versions(ID);
    assert_eq!(with_stage(&versions, "AWSCURRENT"), [token_of(&r2)], "the version id is the value's token");
    assert_eq!(with_stage(&versions, "AWSPREVIOUS"), [token_of(&r1)], "the preflight's re-write of the current value");

    let rot = &run.report()["rotations"][0];
    assert_eq!(rot["status"], "rotated");
    assert_eq!(rot["name"], "ci-spotify", "the default name comes from the secret's name");
    assert_eq!(rot["targets"][0]["kind"], "aws-secrets-manager");
    assert_eq!(rot["targets"][0]["target"], format!("AWS secret {ID} ({AWS_REGION})"));
    assert_eq!(rot["targets"][0]["status"], "written");
    assert_eq!(run.stdout.lines().next(), Some(format!("::add-mask::{r2}").as_str()));
    assert_no_leak(&run, &[&r1, &r2, BASIC_SECRET, AWS_SECRET_KEY]);

    // The next run's preflight re-writes r2, which is AWSCURRENT already: a no-op, no version.
    let before = versions.len();
    let run = Bin::actions(&["rotate"]).envs(inputs(&oauth, &moto, &r2)).run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let r3 = moto.value(ID, "AWSCURRENT").unwrap();
    assert!(oauth.active(&r3) && !oauth.active(&r2));
    assert_eq!(moto.value(ID, "AWSPREVIOUS").as_deref(), Some(r2.as_str()));
    assert_eq!(moto.versions(ID).len(), before + 1, "one new version: r3; the preflight's re-put of r2 made none");

    // A run that still holds r2 (it read the secret before the last run rotated it) stops at the
    // preflight: r2's version is AWSPREVIOUS now. It never presents the spent r2 to the upstream,
    // whose reuse detection would revoke r3 with it.
    let run = Bin::actions(&["rotate"]).envs(inputs(&oauth, &moto, &r2)).run();
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("no longer AWSCURRENT: another run has most likely rotated it"), "{}", run.stderr);
    assert!(oauth.active(&r3), "the live token survived: the stale one was never presented");
    assert_eq!(moto.value(ID, "AWSCURRENT").as_deref(), Some(r3.as_str()));
}

#[test]
fn a_key_of_a_json_secret_is_replaced_and_the_other_keys_kept() {
    let oauth = OAuth::start();
    let moto = Moto::start();
    let r1 = oauth.mint(BASIC_ID);
    let original = json!({ "client_id": "spotify-client", "refresh_token": r1, "db_password": "pw-kept-0123456789" });
    moto.create_secret(ID, &original.to_string());

    let run =
        Bin::actions(&["rotate"]).envs(inputs(&oauth, &moto, &r1)).env("INPUT_AWS_SECRET_KEY", "refresh_token").run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let current: Value = serde_json::from_str(&moto.value(ID, "AWSCURRENT").unwrap()).unwrap();
    let r2 = current["refresh_token"].as_str().unwrap().to_owned();
    assert!(oauth.active(&r2) && !oauth.active(&r1));
    assert_eq!(
        current,
        json!({ "client_id": "spotify-client", "refresh_token": r2, "db_password": "pw-kept-0123456789" })
    );
    let previous: Value = serde_json::from_str(&moto.value(ID, "AWSPREVIOUS").unwrap()).unwrap();
    assert_eq!(previous, original, "AWSPREVIOUS holds the old object");
    let rot = &run.report()["rotations"][0];
    assert_eq!(rot["targets"][0]["target"], format!("AWS secret {ID} ({AWS_REGION}) key refresh_token"));
    assert_no_leak(&run, &[&r1, &r2, "pw-kept-0123456789", BASIC_SECRET, AWS_SECRET_KEY]);

    // A secret that is not a JSON object: refused by the preflight, nothing rotated or written.
    let r = oauth.mint(BASIC_ID);
    moto.create_secret("ci/plain", &r);
    let versions = moto.versions("ci/plain").len();
    let run = Bin::actions(&["rotate"])
        .envs(inputs(&oauth, &moto, &r))
        .env("INPUT_AWS_SECRET_ID", "ci/plain")
        .env("INPUT_AWS_SECRET_KEY", "refresh_token")
        .run();
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("is not a JSON object, so key `refresh_token` cannot be set"), "{}", run.stderr);
    assert!(oauth.active(&r), "the upstream was never contacted");
    assert_eq!(moto.versions("ci/plain").len(), versions);
    assert_no_leak(&run, &[&r, BASIC_SECRET, AWS_SECRET_KEY]);
}

#[test]
fn a_write_retried_after_aws_acted_makes_no_second_version() {
    let oauth = OAuth::start();
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.url);
    let r1 = oauth.mint(BASIC_ID);
    moto.create_secret(ID, &r1);
    // Requests to AWS: DescribeSecret, the preflight's PutSecretValue, then the write's
    // PutSecretValue: moto stores it, and its answer is replaced with a 503 on the way back.
    proxy.fault(json!({ "when": "after", "method": "POST", "path": "^/$", "after": 2, "count": 1, "status": 503,
                        "body": { "__type": "ServiceUnavailable", "message": "lost" } }));
    let run = Bin::actions(&["rotate"]).envs(inputs(&oauth, &moto, &r1)).env("AWS_ENDPOINT_URL", &proxy.url).run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("HTTP 503; retry 1"), "the write was retried: {}", run.stderr);
    let log = proxy.requests();
    assert_eq!(log.len(), 4, "{log:?}");
    assert_eq!((log[2]["upstream_status"].as_u64(), log[2]["answer"].as_u64()), (Some(200), Some(503)), "{log:?}");
    assert_eq!(log[2]["json_fields"], log[3]["json_fields"]);
    let r2 = moto.value(ID, "AWSCURRENT").unwrap();
    assert!(oauth.active(&r2));
    let versions = moto.versions(ID);
    assert_eq!(versions.len(), 3, "created, preflight, one write (the retry was a no-op): {versions:?}");
    assert_eq!(with_stage(&versions, "AWSCURRENT"), [token_of(&r2)]);
    assert_eq!(run.report()["rotations"][0]["targets"][0]["attempts"], 2);
}

#[test]
fn a_missing_secret_fails_the_preflight_and_the_upstream_is_never_contacted() {
    let oauth = OAuth::start();
    let moto = Moto::start();
    let r1 = oauth.mint(BASIC_ID);
    for command in ["rotate", "check"] {
        let run = Bin::actions(&[command]).envs(inputs(&oauth, &moto, &r1)).run();
        assert_eq!(run.code, 1, "{command}: stderr: {}", run.stderr);
        assert!(run.stderr.contains("preflight failed, nothing was rotated"), "{}", run.stderr);
        assert!(run.stderr.contains("secret-rotator does not create AWS secrets"), "{}", run.stderr);
        assert!(
            run.stderr.contains(&format!("`aws secretsmanager create-secret --name {ID} --region {AWS_REGION}`")),
            "{}",
            run.stderr
        );
        assert_eq!(run.report()["rotations"][0]["targets"][0]["status"], "failed");
        assert_no_leak(&run, &[&r1, BASIC_SECRET, AWS_SECRET_KEY]);
    }
    assert!(oauth.active(&r1), "the refresh token was never spent");
    assert!(moto.call("secretsmanager", "describe_secret", json!({ "SecretId": ID })).is_err(), "nothing created");
}

#[test]
fn check_proves_access_without_writing() {
    let oauth = OAuth::start();
    let moto = Moto::start();
    let r1 = oauth.mint(BASIC_ID);
    moto.create_secret(ID, &r1);
    let run = Bin::actions(&["check"]).envs(inputs(&oauth, &moto, &r1)).run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.report()["rotations"][0]["targets"][0]["status"], "planned");
    assert_eq!(moto.versions(ID).len(), 1, "nothing written");
    assert!(oauth.active(&r1));

    // min_age reads DescribeSecret's LastChangedDate: a secret changed just now is fresh.
    let run = Bin::actions(&["rotate"]).envs(inputs(&oauth, &moto, &r1)).env("INPUT_MIN_AGE", "1h").run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.report()["rotations"][0]["status"], "skipped");
    assert_eq!(moto.versions(ID).len(), 1);
    assert!(oauth.active(&r1));
}

#[test]
fn with_iam_auth_on_right_credentials_pass_and_wrong_ones_fail_clearly() {
    let oauth = OAuth::start();
    let moto = Moto::start();
    let writer = moto.user("rotator", &["secretsmanager:DescribeSecret", "secretsmanager:PutSecretValue"]);
    let reader = moto.user("reader", &["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]);
    let session = moto.role_session(
        "rotator-role",
        &["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"],
    );
    let r1 = oauth.mint(BASIC_ID);
    moto.create_secret(ID, &r1);
    moto.create_secret("ci/json", &json!({ "refresh_token": "unused", "other": "kept-0123456789" }).to_string());
    moto.auth_on();
    let creds =
        |id: &str, key: &str| vec![("AWS_ACCESS_KEY_ID", id.to_owned()), ("AWS_SECRET_ACCESS_KEY", key.to_owned())];

    // The README's policy for a plain secret: DescribeSecret and PutSecretValue. Moto recomputes
    // every signature with botocore: this run passing proves ours right.
    let run = Bin::actions(&["rotate"]).envs(inputs(&oauth, &moto, &r1)).envs(creds(&writer.0, &writer.1)).run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let r2 = moto.value(ID, "AWSCURRENT").unwrap();
    assert!(oauth.active(&r2) && !oauth.active(&r1));
    assert_no_leak(&run, &[&r1, &r2, BASIC_SECRET, &writer.1]);

    let versions = moto.versions(ID).len();
    let refused = |extra: Vec<(&'static str, String)>, says: &str| {
        let run = Bin::actions(&["rotate"]).envs(inputs(&oauth, &moto, &r2)).envs(extra).run();
        assert_eq!(run.code, 1, "{says}: stderr: {}", run.stderr);
        assert!(run.stderr.contains("preflight failed, nothing was rotated"), "{}", run.stderr);
        assert!(run.stderr.contains(says), "expected `{says}`: {}", run.stderr);
        assert!(oauth.active(&r2), "{says}: the upstream was never contacted");
        assert_eq!(moto.versions(ID).len(), versions, "{says}: nothing written");
        run
    };
    // A wrong secret key: the signature does not match.
    let wrong = writer.1.replace(|c: char| c.is_ascii_alphabetic(), "x");
    let run = refused(creds(&writer.0, &wrong), "AWS refused the request's signature (SignatureDoesNotMatch");
    assert_no_leak(&run, &[&r2, &wrong, &writer.1]);
    // A user whose policy lacks PutSecretValue: denied, and the action is named.
    let run = refused(creds(&reader.0, &reader.1), "PutSecretValue was denied");
    assert!(run.stderr.contains("allow secretsmanager:PutSecretValue"), "{}", run.stderr);
    // Temporary credentials with a wrong session token.
    let mut bad_session = creds(&session.0, &session.1);
    bad_session.push(("AWS_SESSION_TOKEN", format!("{}x", session.2)));
    refused(bad_session, "AWS does not recognize the credentials");

    // Temporary credentials, the session token signed with the request: a rotation into a key.
    let mut good_session = creds(&session.0, &session.1);
    good_session.push(("AWS_SESSION_TOKEN", session.2.clone()));
    let run = Bin::actions(&["rotate"])
        .envs(inputs(&oauth, &moto, &r2))
        .envs(good_session)
        .env("INPUT_AWS_SECRET_ID", "ci/json")
        .env("INPUT_AWS_SECRET_KEY", "refresh_token")
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let current: Value = serde_json::from_str(&moto.value("ci/json", "AWSCURRENT").unwrap()).unwrap();
    let r3 = current["refresh_token"].as_str().unwrap().to_owned();
    assert!(oauth.active(&r3) && !oauth.active(&r2));
    assert_eq!(current["other"], "kept-0123456789");
    assert_no_leak(&run, &[&r2, &r3, BASIC_SECRET, &session.1, &session.2]);
}

#[test]
fn one_rotation_into_a_github_secret_and_an_aws_secret_from_a_config_file() {
    let oauth = OAuth::start();
    let moto = Moto::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    moto.create_secret(ID, &json!({ "refresh_token": r1, "user": "ci" }).to_string());
    gh.setup(json!({ "secrets": [ { "scope": ["repo", REPO], "name": "SPOTIFY_REFRESH_TOKEN", "value": r1, "updated_at": "2026-01-01T00:00:00Z" } ] }));
    let config = format!(
        "github:\n  token: {{ env: GH_TOKEN }}\nrotations:\n  - name: spotify\n    provider:\n      type: oauth2\n      token_url: {}\n      client_id: {BASIC_ID}\n      client_secret: {{ env: CLIENT_SECRET }}\n      refresh_token: {{ env: RT }}\n    targets:\n      - github: {{ repository: {REPO}, secret: SPOTIFY_REFRESH_TOKEN }}\n      - aws_secrets_manager: {{ secret_id: {ID}, region: {AWS_REGION}, key: refresh_token }}\n",
        oauth.token_url()
    );
    let bin = Bin::actions(&["rotate", "--config", "rotations.yml"]);
    std::fs::write(bin.dir().join("rotations.yml"), config).unwrap();
    let mut env = moto.env();
    env.retain(|(k, _)| *k != "AWS_REGION");
    let run = bin
        .envs(env)
        .env("GITHUB_API_URL", &gh.url)
        .env("GH_TOKEN", GH_TOKEN)
        .env("CLIENT_SECRET", BASIC_SECRET)
        .env("RT", &r1)
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let r2 = gh.repo_secret(REPO, "SPOTIFY_REFRESH_TOKEN").unwrap();
    assert!(oauth.active(&r2));
    let current: Value = serde_json::from_str(&moto.value(ID, "AWSCURRENT").unwrap()).unwrap();
    assert_eq!(current, json!({ "refresh_token": r2, "user": "ci" }));
    let targets = &run.report()["rotations"][0]["targets"];
    assert_eq!(targets[1]["kind"], "aws-secrets-manager");
    assert_eq!(targets[1]["status"], "written");
    assert_no_leak(&run, &[&r1, &r2, BASIC_SECRET, GH_TOKEN, AWS_SECRET_KEY]);
}

#[test]
fn aws_settings_are_never_read_by_a_run_without_an_aws_target() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    gh.setup(json!({ "secrets": [ { "scope": ["repo", REPO], "name": "OAUTH_REFRESH_TOKEN", "value": r1, "updated_at": "2026-01-01T00:00:00Z" } ] }));
    let run = Bin::actions(&["check"])
        .envs(oauth_inputs(&oauth.url, &gh, &r1))
        .env("AWS_REGION", "not-a-region")
        .env("AWS_ACCESS_KEY_ID", "\"quoted\"")
        .env("AWS_ENDPOINT_URL", "http://aws.example.com")
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
}
