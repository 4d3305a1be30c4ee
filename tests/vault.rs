//! Vault and OpenBao end to end, against a real OpenBao dev server: `vault-token` rotations
//! chained with deferred revocation, `grace: 0`, a role that makes child tokens, rollback when a
//! target fails after the preflight, AppRole secret IDs (and no login token left after a failed
//! rotation), KV version 2 check-and-set with another writer in between, in a namespace, and
//! rotations of one run writing fields of one secret; a `grace: 0` token that another rotation
//! of the run authenticates with is refused.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const POLICY: &str = r#"
path "auth/token/create/ci-rotate" { capabilities = ["update"] }
path "auth/token/revoke-accessor" { capabilities = ["update"] }
path "secret/data/ci/*" { capabilities = ["create", "read", "update"] }
"#;

/// The token role and policy the README tells operators to create.
fn setup(bao: &Bao) {
    bao.policy("ci-rotate", POLICY);
    bao.root("POST", "auth/token/roles/ci-rotate", json!({ "allowed_policies": ["ci-rotate"], "orphan": true }));
}

fn first_token(bao: &Bao) -> (String, String) {
    bao.token(Some("ci-rotate"), json!({ "ttl": "1h" }))
}

/// A single rotation of `token` into the KV secret `secret/ci/app`, field `token`.
fn rotate(bao: &Bao, token: &str, grace: &str) -> Run {
    Bin::new(&["rotate"])
        .env("INPUT_PROVIDER", "vault-token")
        .env("INPUT_TARGET", "vault-kv")
        .env("INPUT_TOKEN", token)
        .env("VAULT_ADDR", &bao.addr)
        .env("INPUT_VAULT_ROLE", "ci-rotate")
        .env("INPUT_GRACE", grace)
        .env("INPUT_VAULT_KV_PATH", "ci/app")
        .env("INPUT_REPORT", "secret-rotator-report.json")
        .run()
}

fn stored(bao: &Bao) -> (String, Value, u64) {
    let (data, version) = bao.kv("secret", "ci/app").expect("the secret exists");
    (data["token"].as_str().unwrap().to_owned(), data, version)
}

fn accessor(bao: &Bao, token: &str) -> String {
    bao.lookup(token).expect("valid")["accessor"].as_str().unwrap().to_owned()
}

/// Waits out a grace of `2s` (the protocol's own clock: no timing is asserted).
fn wait_out_the_grace() {
    std::thread::sleep(Duration::from_millis(2500));
}

#[test]
fn chained_rotations_revoke_the_token_before_the_previous_once_its_grace_has_passed() {
    let bao = Bao::start();
    setup(&bao);
    let (t1, a1) = first_token(&bao);
    bao.kv_put("secret", "ci/app", json!({ "token": t1, "user": "ci" }));

    let run = rotate(&bao, &t1, "2s");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (t2, data, version) = stored(&bao);
    assert_ne!(t2, t1);
    assert_eq!(data["user"], "ci", "the secret's other fields are kept");
    assert_eq!(version, 2, "the preflight found the current value and wrote nothing; the rotation wrote once");
    let info = bao.lookup(&t2).expect("the stored token is valid");
    assert_eq!(info["orphan"], true);
    assert_eq!(info["meta"]["rotated_from"], a1.as_str());
    assert!(info["meta"]["rotated_at"].as_str().unwrap().parse::<jiff_like::Ts>().is_ok());
    assert!(bao.lookup(&t1).is_some(), "T1 stays valid during its grace");
    assert!(run.report()["rotations"][0].get("revoked").is_none());
    assert_no_leak(&run, &[&t1, &t2]);

    wait_out_the_grace();
    let run = rotate(&bao, &t2, "2s");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (t3, _, _) = stored(&bao);
    assert!(t3 != t2 && t3 != t1);
    assert_eq!(bao.lookup(&t3).unwrap()["orphan"], true);
    assert!(bao.lookup(&t1).is_none(), "T1 is revoked once its grace has passed");
    assert!(bao.lookup(&t2).is_some(), "T2 stays valid during its own grace");
    assert_eq!(run.report()["rotations"][0]["revoked"], json!([a1]), "the report lists the accessor");
    assert_no_leak(&run, &[&t1, &t2, &t3]);

    let a2 = accessor(&bao, &t2);
    wait_out_the_grace();
    let run = rotate(&bao, &t3, "2s");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (t4, _, version) = stored(&bao);
    assert_eq!(version, 4);
    assert!(bao.lookup(&t4).is_some() && bao.lookup(&t3).is_some());
    assert!(bao.lookup(&t2).is_none(), "T2 is revoked by the run after next");
    assert_eq!(run.report()["rotations"][0]["revoked"], json!([a2]));
}

/// RFC 3339 parsing without another dependency: enough to tell a timestamp from anything else.
mod jiff_like {
    pub struct Ts;
    impl std::str::FromStr for Ts {
        type Err = ();
        fn from_str(s: &str) -> Result<Ts, ()> {
            let b = s.as_bytes();
            let ok = s.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && s.ends_with('Z');
            if ok {
                Ok(Ts)
            } else {
                Err(())
            }
        }
    }
}

#[test]
fn a_run_within_the_grace_carries_the_earlier_token_on_and_a_later_run_revokes_it() {
    let bao = Bao::start();
    setup(&bao);
    let (t1, a1) = first_token(&bao);
    bao.kv_put("secret", "ci/app", json!({ "token": t1 }));
    let run = rotate(&bao, &t1, "2s");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (t2, _, _) = stored(&bao);
    let a2 = accessor(&bao, &t2);
    // At once again: T1's grace has not passed, so T3's meta carries it on.
    let run = rotate(&bao, &t2, "2s");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (t3, _, _) = stored(&bao);
    assert!(bao.lookup(&t1).is_some());
    let meta = &bao.lookup(&t3).unwrap()["meta"];
    assert!(meta["pending_revocation"].as_str().unwrap().starts_with(&format!("{a1}@")), "{meta}");
    wait_out_the_grace();
    let run = rotate(&bao, &t3, "2s");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(bao.lookup(&t1).is_none() && bao.lookup(&t2).is_none(), "both earlier tokens are revoked");
    let mut revoked: Vec<String> = serde_json::from_value(run.report()["rotations"][0]["revoked"].clone()).unwrap();
    revoked.sort();
    let mut want = vec![a1, a2];
    want.sort();
    assert_eq!(revoked, want);
}

#[test]
fn grace_0_revokes_the_old_token_as_soon_as_the_new_one_is_stored() {
    let bao = Bao::start();
    setup(&bao);
    let (t1, a1) = first_token(&bao);
    bao.kv_put("secret", "ci/app", json!({ "token": t1 }));
    let run = rotate(&bao, &t1, "0");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (t2, _, _) = stored(&bao);
    assert!(bao.lookup(&t1).is_none(), "revoked at once");
    assert_eq!(bao.lookup(&t2).unwrap()["orphan"], true);
    assert_eq!(run.report()["rotations"][0]["revoked"], json!([a1]));
    assert_no_leak(&run, &[&t1, &t2]);
}

#[test]
fn a_role_that_makes_child_tokens_is_refused_the_child_revoked_and_nothing_changed() {
    let bao = Bao::start();
    setup(&bao);
    bao.policy("ci-child", &POLICY.replace("auth/token/create/ci-rotate", "auth/token/create/child-role"));
    bao.root("POST", "auth/token/roles/child-role", json!({ "allowed_policies": ["ci-child"], "orphan": false }));
    let (t1, _) = bao.token(Some("child-role"), json!({ "ttl": "1h" }));
    bao.kv_put("secret", "ci/app", json!({ "token": t1 }));
    let before = bao.accessors();
    let run = Bin::new(&["rotate"])
        .env("INPUT_PROVIDER", "vault-token")
        .env("INPUT_TARGET", "vault-kv")
        .env("INPUT_TOKEN", &t1)
        .env("VAULT_ADDR", &bao.addr)
        .env("INPUT_VAULT_ROLE", "child-role")
        .env("INPUT_VAULT_KV_PATH", "ci/app")
        .env("INPUT_REPORT", "secret-rotator-report.json")
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let error = run.report()["rotations"][0]["error"].as_str().unwrap().to_owned();
    assert!(error.contains("orphan=true") && error.contains("auth/token/roles/child-role"), "{error}");
    assert!(error.contains("The child was revoked"), "{error}");
    let mut after = bao.accessors();
    let mut before = before;
    after.sort();
    before.sort();
    assert_eq!(after, before, "the child token is gone: Vault holds the same tokens as before");
    let (stored, _, version) = stored(&bao);
    assert_eq!((stored.as_str(), version), (t1.as_str(), 1), "nothing was written");
    assert!(bao.lookup(&t1).is_some());
}

#[test]
fn a_target_that_fails_after_the_preflight_is_rolled_back_and_the_new_token_revoked() {
    let bao = Bao::start();
    setup(&bao);
    let gh = GitHub::start();
    let (t1, _) = first_token(&bao);
    bao.kv_put("secret", "ci/app", json!({ "token": t1 }));
    gh.setup(json!({ "secrets": [ { "scope": ["repo", REPO], "name": "VAULT_TOKEN", "value": t1, "updated_at": "2026-01-01T00:00:00Z" } ] }));
    // The preflight's PUT goes through; every later one is refused.
    gh.fault(json!({ "method": "PUT", "path": "/secrets/VAULT_TOKEN$", "after": 1, "count": 10, "status": 403, "body": { "message": "Resource not accessible by integration" } }));
    let config = format!(
        "github: {{ token: {{ env: GH }} }}\nvault: {{ addr: '{}' }}\nrotations:\n\
         - name: ci-vault\n  provider: {{ type: vault-token, token: {{ env: T1 }}, vault_role: ci-rotate, grace: 0 }}\n  targets:\n\
         \x20 - vault_kv: {{ path: ci/app }}\n\
         \x20 - github: {{ repository: {REPO}, secret: VAULT_TOKEN }}\n",
        bao.addr
    );
    let bin = Bin::new(&["rotate", "--config", "c.yml", "--report", "secret-rotator-report.json"]);
    std::fs::write(bin.dir().join("c.yml"), config).unwrap();
    let run = bin.env("GH", GH_TOKEN).env("T1", &t1).env("GITHUB_API_URL", &gh.url).run();
    assert_eq!(run.code, 1, "failed, not critical: {}", run.stderr);
    let rotation = &run.report()["rotations"][0];
    assert_eq!(rotation["status"], "failed");
    let error = rotation["error"].as_str().unwrap();
    assert!(error.contains("rolled back") && error.contains("stays valid") && error.contains("was revoked"), "{error}");
    // The KV secret held T2 for a moment (version 2), then T1 again (version 3).
    let (now, _, version) = stored(&bao);
    assert_eq!((now.as_str(), version), (t1.as_str(), 3));
    let (_, v2) = bao.with_token("GET", "secret/data/ci/app?version=2", BAO_ROOT, None);
    let t2 = v2["data"]["data"]["token"].as_str().unwrap().to_owned();
    assert_ne!(t2, t1);
    assert!(bao.lookup(&t2).is_none(), "the new token is revoked");
    assert!(bao.lookup(&t1).is_some(), "the old token stays valid (grace 0 revokes only after a full success)");
    assert_eq!(gh.repo_secret(REPO, "VAULT_TOKEN").as_deref(), Some(t1.as_str()));
    assert_eq!(rotation["targets"][0]["note"], "rolled back: holds the old value again");
    assert!(rotation["rescue_file"].is_null());
    gh.take_errors();
    assert_no_leak(&run, &[&t1, &t2]);
}

const APPROLE_MANAGER: &str = r#"
path "auth/approle/role/ci/secret-id" { capabilities = ["update"] }
path "auth/approle/role/ci/secret-id/lookup" { capabilities = ["update"] }
path "auth/approle/role/ci/secret-id-accessor/destroy" { capabilities = ["update"] }
path "secret/data/ci/*" { capabilities = ["create", "read", "update"] }
"#;

/// AppRole `ci` (secret IDs with `num_uses` uses, 0: unlimited) and a manager token.
fn approle(bao: &Bao, num_uses: u32) -> (String, String, String) {
    bao.root("POST", "sys/auth/approle", json!({ "type": "approle" }));
    bao.policy("approle-manager", APPROLE_MANAGER);
    bao.root("POST", "auth/approle/role/ci", json!({ "token_policies": ["default"], "secret_id_num_uses": num_uses }));
    let role_id =
        bao.root("GET", "auth/approle/role/ci/role-id", Value::Null)["data"]["role_id"].as_str().unwrap().to_owned();
    let secret_id =
        bao.root("POST", "auth/approle/role/ci/secret-id", json!({}))["data"]["secret_id"].as_str().unwrap().to_owned();
    let (manager, _) = bao.token(None, json!({ "policies": ["approle-manager"], "ttl": "1h" }));
    (role_id, secret_id, manager)
}

fn logs_in(bao: &Bao, role_id: &str, secret_id: &str) -> bool {
    let (status, _) =
        bao.with_token("POST", "auth/approle/login", "", Some(json!({ "role_id": role_id, "secret_id": secret_id })));
    status == 200
}

fn rotate_approle(bao: &Bao, role_id: &str, secret_id: &str, manager: &str, grace: &str) -> Run {
    Bin::new(&["rotate"])
        .env("INPUT_PROVIDER", "vault-approle")
        .env("INPUT_TARGET", "vault-kv")
        .env("INPUT_ROLE_NAME", "ci")
        .env("INPUT_ROLE_ID", role_id)
        .env("INPUT_SECRET_ID", secret_id)
        .env("INPUT_VAULT_TOKEN", manager)
        .env("INPUT_GRACE", grace)
        .env("VAULT_ADDR", &bao.addr)
        .env("INPUT_VAULT_KV_PATH", "ci/approle")
        .env("INPUT_REPORT", "secret-rotator-report.json")
        .run()
}

#[test]
fn an_approle_secret_id_is_replaced_by_one_that_logs_in_and_the_old_one_destroyed_now_or_after_the_grace() {
    let bao = Bao::start();
    let (role_id, s1, manager) = approle(&bao, 0);
    bao.kv_put("secret", "ci/approle", json!({ "secret_id": s1 }));

    let run = rotate_approle(&bao, &role_id, &s1, &manager, "0");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s2 = bao.kv("secret", "ci/approle").unwrap().0["secret_id"].as_str().unwrap().to_owned();
    assert_ne!(s2, s1);
    assert!(logs_in(&bao, &role_id, &s2), "the new secret ID logs in");
    assert!(!logs_in(&bao, &role_id, &s1), "the old one is destroyed at once with grace 0");
    assert_eq!(run.report()["rotations"][0]["revoked"].as_array().unwrap().len(), 1);
    assert_no_leak(&run, &[&s1, &s2, &manager]);

    // Deferred: the old one works through its grace, and the next run destroys it.
    let run = rotate_approle(&bao, &role_id, &s2, &manager, "2s");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s3 = bao.kv("secret", "ci/approle").unwrap().0["secret_id"].as_str().unwrap().to_owned();
    assert!(logs_in(&bao, &role_id, &s2), "still valid in its grace");
    let meta = bao.root("POST", "auth/approle/role/ci/secret-id/lookup", json!({ "secret_id": s3 }))["data"]
        ["metadata"]
        .clone();
    assert!(meta["rotated_from"].is_string() && meta["rotated_at"].is_string(), "{meta}");
    wait_out_the_grace();
    let run = rotate_approle(&bao, &role_id, &s3, &manager, "2s");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!logs_in(&bao, &role_id, &s2), "destroyed by the next run once its grace has passed");
    assert_eq!(run.report()["rotations"][0]["revoked"], json!([meta["rotated_from"]]));
}

#[test]
fn check_spends_no_use_of_a_single_use_secret_id() {
    let bao = Bao::start();
    let (role_id, s1, manager) = approle(&bao, 1);
    bao.kv_put("secret", "ci/approle", json!({ "secret_id": s1 }));
    let run = Bin::new(&["check"])
        .env("INPUT_PROVIDER", "vault-approle")
        .env("INPUT_TARGET", "vault-kv")
        .env("INPUT_ROLE_NAME", "ci")
        .env("INPUT_ROLE_ID", &role_id)
        .env("INPUT_SECRET_ID", &s1)
        .env("INPUT_VAULT_TOKEN", &manager)
        .env("VAULT_ADDR", &bao.addr)
        .env("INPUT_VAULT_KV_PATH", "ci/approle")
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let left = bao.root("POST", "auth/approle/role/ci/secret-id/lookup", json!({ "secret_id": s1 }))["data"]
        ["secret_id_num_uses"]
        .clone();
    assert_eq!(left, 1, "the check spent no use");
    assert!(logs_in(&bao, &role_id, &s1), "its one use is still there");
    assert!(!logs_in(&bao, &role_id, &s1), "and it was the only one");
}

#[test]
fn a_single_use_secret_id_rotates_and_its_successor_is_verified_without_spending_its_use() {
    let bao = Bao::start();
    let (role_id, s1, manager) = approle(&bao, 1);
    bao.kv_put("secret", "ci/approle", json!({ "secret_id": s1 }));
    let run = rotate_approle(&bao, &role_id, &s1, &manager, "0");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s2 = bao.kv("secret", "ci/approle").unwrap().0["secret_id"].as_str().unwrap().to_owned();
    assert!(logs_in(&bao, &role_id, &s2), "the new secret ID still has its one use");
}

#[test]
fn another_writer_between_the_read_and_the_write_is_never_overwritten_in_a_namespace() {
    let bao = Bao::start();
    bao.root("POST", "sys/namespaces/team", json!({}));
    let ns = |method: &str, path: &str, body: Value| -> Value {
        let r = reqwest::blocking::Client::new()
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), format!("{}/v1/{path}", bao.addr))
            .header("X-Vault-Token", BAO_ROOT)
            .header("X-Vault-Namespace", "team")
            .json(&body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().unwrap_or(Value::Null)
    };
    ns("POST", "sys/mounts/secret", json!({ "type": "kv", "options": { "version": "2" } }));
    ns("PUT", "sys/policies/acl/ci-rotate", json!({ "policy": POLICY }));
    ns("POST", "auth/token/roles/ci-rotate", json!({ "allowed_policies": ["ci-rotate"], "orphan": true }));
    let t1 = ns("POST", "auth/token/create/ci-rotate", json!({ "ttl": "1h" }))["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    ns("POST", "secret/data/ci/app", json!({ "data": { "token": t1, "user": "ci" } }));

    // A proxy holds the rotation's write back until another writer has changed the secret.
    let proxy = FaultProxy::start(&bao.addr);
    proxy.fault(
        json!({ "method": "POST", "path": "^/v1/secret/data/ci/app$", "when": "before", "delay": 2, "count": 1 }),
    );
    let bin = Bin::new(&["rotate"])
        .env("INPUT_PROVIDER", "vault-token")
        .env("INPUT_TARGET", "vault-kv")
        .env("INPUT_TOKEN", &t1)
        .env("VAULT_ADDR", &proxy.url)
        .env("VAULT_NAMESPACE", "team")
        .env("INPUT_VAULT_ROLE", "ci-rotate")
        .env("INPUT_VAULT_KV_PATH", "ci/app")
        .env("INPUT_REPORT", "secret-rotator-report.json");
    let (child, dir) = bin.spawn();
    let start = std::time::Instant::now();
    while !proxy.requests().iter().any(|r| r["method"] == "POST" && !r["fault"].is_null()) {
        assert!(start.elapsed() < Duration::from_secs(30), "the write never came");
        std::thread::sleep(Duration::from_millis(20));
    }
    ns("POST", "secret/data/ci/app", json!({ "data": { "token": t1, "user": "ci", "added": "by another writer" } }));
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("check-and-set"), "the conflict was seen and retried: {stderr}");
    let v = ns("GET", "secret/data/ci/app", Value::Null);
    let data = &v["data"]["data"];
    assert_eq!(data["added"], "by another writer", "the other writer's change is kept");
    assert_eq!(data["user"], "ci");
    assert_ne!(data["token"], t1.as_str());
    assert_eq!(v["data"]["metadata"]["version"], 3, "1: ours, 2: the other writer, 3: the rotation");
    let posts =
        proxy.requests().iter().filter(|r| r["path"] == "/v1/secret/data/ci/app" && r["method"] == "POST").count();
    assert_eq!(posts, 2, "the stale write, then the retry");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("secret-rotator-report.json")).unwrap()).unwrap();
    assert_eq!(report["rotations"][0]["status"], "rotated");
    assert!(report["rotations"][0]["targets"][0]["target"].as_str().unwrap().contains("namespace team"));
}

#[test]
fn check_and_a_dry_run_change_nothing_in_vault() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let bao = Bao::start_audited(&audit);
    setup(&bao);
    let (t1, a1) = first_token(&bao);
    bao.kv_put("secret", "ci/app", json!({ "token": t1 }));
    for args in [&["check"][..], &["rotate", "--dry-run"][..]] {
        let run = Bin::new(args)
            .env("INPUT_PROVIDER", "vault-token")
            .env("INPUT_TARGET", "vault-kv")
            .env("INPUT_TOKEN", &t1)
            .env("VAULT_ADDR", &bao.addr)
            .env("INPUT_VAULT_ROLE", "ci-rotate")
            .env("INPUT_GRACE", "0")
            .env("INPUT_VAULT_KV_PATH", "ci/new")
            .run();
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("would create") || run.stderr.contains("preflight"), "{}", run.stderr);
    }
    // Every request the token made, from Vault's own audit log: reads only, and the one
    // read-only POST that proves write access.
    let text = std::fs::read_to_string(&audit).unwrap();
    let ours: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == "request" && e["auth"]["accessor"] == a1.as_str())
        .map(|e| {
            (e["request"]["operation"].as_str().unwrap().to_owned(), e["request"]["path"].as_str().unwrap().to_owned())
        })
        .collect();
    assert!(ours.iter().any(|(_, p)| p == "auth/token/lookup-self"), "{ours:?}");
    for (op, path) in &ours {
        assert!(op == "read" || path == "sys/capabilities-self", "check or a dry run sent {op} {path}");
    }
    assert!(bao.kv("secret", "ci/new").is_none(), "nothing was created");
    assert!(bao.lookup(&t1).is_some());
    assert_eq!(bao.accessors().len(), 2, "no token was made (root's and T1)");
}

/// Two rotations whose KV targets are both written with the `vault:` token, T1: `ci-token`
/// rotates T1 itself (with `grace`), `other` rotates T2.
fn shared_token_config(bao: &Bao, grace: &str, parallel: u32) -> String {
    format!(
        "vault: {{ addr: '{}', token: {{ env: T1 }} }}\nparallel_rotations: {parallel}\nrotations:\n\
         - name: ci-token\n  provider: {{ type: vault-token, token: {{ env: T1 }}, vault_role: ci-rotate, grace: {grace} }}\n  targets: [ {{ vault_kv: {{ path: ci/app }} }} ]\n\
         - name: other\n  provider: {{ type: vault-token, token: {{ env: T2 }}, vault_role: ci-rotate }}\n  targets: [ {{ vault_kv: {{ path: ci/other }} }} ]\n",
        bao.addr
    )
}

fn run_config(config: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let mut args = vec!["rotate", "--config", "c.yml", "--report", "secret-rotator-report.json"];
    args.extend_from_slice(extra);
    let mut bin = Bin::new(&args);
    std::fs::write(bin.dir().join("c.yml"), config).unwrap();
    for (k, v) in env {
        bin = bin.env(k, v);
    }
    bin.run()
}

#[test]
fn a_token_that_grace_0_revokes_mid_run_may_not_authenticate_another_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let bao = Bao::start_audited(&audit);
    setup(&bao);
    let (t1, _) = first_token(&bao);
    let (t2, _) = first_token(&bao);
    bao.kv_put("secret", "ci/app", json!({ "token": t1 }));
    bao.kv_put("secret", "ci/other", json!({ "token": t2 }));
    let audited = || std::fs::read_to_string(&audit).unwrap().lines().count();

    // grace 0 would revoke T1 while `other` still writes with it: refused before anything is sent,
    // whatever the parallelism.
    for parallel in [2, 1] {
        let seen = audited();
        let run = run_config(&shared_token_config(&bao, "0", parallel), &[], &[("T1", &t1), ("T2", &t2)]);
        assert_eq!(run.code, 2, "parallel {parallel}: {}", run.stderr);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {}", run.stderr);
        let line = lines[0];
        assert!(line.contains("rotations[0].provider.grace") && line.contains("`ci-token`"), "{line}");
        assert!(line.contains("`other`") && line.contains("a token of its own") && line.contains("grace"), "{line}");
        assert_eq!(audited(), seen, "nothing was sent to Vault");
        assert_no_leak(&run, &[&t1, &t2]);
    }
    assert_eq!(stored(&bao).0, t1);
    assert!(bao.lookup(&t1).is_some());

    // With a grace T1 stays valid through the run: both rotate.
    let run = run_config(&shared_token_config(&bao, "10m", 2), &[], &[("T1", &t1), ("T2", &t2)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (t1b, _, _) = stored(&bao);
    let t2b = bao.kv("secret", "ci/other").unwrap().0["token"].as_str().unwrap().to_owned();
    assert!(t1b != t1 && t2b != t2);
    assert!(bao.lookup(&t1).is_some(), "T1 is in its grace");

    // grace 0 when only the rotation's own target uses the token: revoked after every write.
    let run = run_config(&shared_token_config(&bao, "0", 2), &["--only", "ci-token"], &[("T1", &t1b)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (t1c, _, _) = stored(&bao);
    assert_ne!(t1c, t1b);
    assert!(bao.lookup(&t1b).is_none(), "revoked at once");
    assert!(bao.lookup(&t1c).is_some());
}

/// What the token of an AppRole login may do: manage the secret IDs of its own role.
const APPROLE_SELF: &str = r#"
path "auth/approle/role/ci/secret-id" { capabilities = ["update"] }
path "auth/approle/role/ci/secret-id/lookup" { capabilities = ["update"] }
path "auth/approle/role/ci/secret-id-accessor/destroy" { capabilities = ["update"] }
"#;

/// A new secret ID of role `ci`.
fn new_secret_id(bao: &Bao) -> String {
    bao.root("POST", "auth/approle/role/ci/secret-id", json!({}))["data"]["secret_id"].as_str().unwrap().to_owned()
}

/// An AppRole rotation without `vault_token` (it logs in with the current secret ID) into the
/// GitHub secret `secret`.
fn rotate_approle_by_login(bao: &Bao, gh: &GitHub, role_id: &str, secret_id: &str, secret: &str) -> Run {
    let config = format!(
        "github: {{ token: {{ env: GH }} }}\nvault: {{ addr: '{}' }}\nrotations:\n\
         - name: ci-approle\n  provider: {{ type: vault-approle, role_name: ci, role_id: {role_id}, secret_id: {{ env: SID }} }}\n  targets: [ {{ github: {{ repository: {REPO}, secret: {secret} }} }} ]\n",
        bao.addr
    );
    run_config(&config, &[], &[("GH", GH_TOKEN), ("SID", secret_id), ("GITHUB_API_URL", &gh.url)])
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn an_approle_rotation_that_fails_leaves_no_login_token_alive() {
    let bao = Bao::start();
    let gh = GitHub::start();
    bao.root("POST", "sys/auth/approle", json!({ "type": "approle" }));
    bao.policy("approle-self", APPROLE_SELF);
    bao.root("POST", "auth/approle/role/ci", json!({ "token_policies": ["default"] }));
    let role_id =
        bao.root("GET", "auth/approle/role/ci/role-id", Value::Null)["data"]["role_id"].as_str().unwrap().to_owned();
    let put = |name: &str, value: &str| {
        gh.setup(json!({ "secrets": [ { "scope": ["repo", REPO], "name": name, "value": value, "updated_at": "2026-01-01T00:00:00Z" } ] }))
    };

    // The login's token may not create secret IDs: the rotation fails after the login.
    let s1 = new_secret_id(&bao);
    put("SID_REFUSED", &s1);
    let before = sorted(bao.accessors());
    let run = rotate_approle_by_login(&bao, &gh, &role_id, &s1, "SID_REFUSED");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("logged in with the current secret ID"), "the run logged in: {}", run.stderr);
    let error = run.report()["rotations"][0]["error"].as_str().unwrap().to_owned();
    assert!(error.contains("refused to create a secret ID"), "{error}");
    assert_eq!(sorted(bao.accessors()), before, "the login's token is revoked");
    assert!(logs_in(&bao, &role_id, &s1), "the secret ID is unchanged and valid");
    assert_no_leak(&run, &[&s1]);

    // A single-use secret ID: the login spends it, so a write that fails cannot be rolled back
    // (critical); the login's token is revoked all the same.
    bao.root("POST", "auth/approle/role/ci", json!({ "token_policies": ["approle-self"], "secret_id_num_uses": 1 }));
    let s2 = new_secret_id(&bao);
    put("SID_CRITICAL", &s2);
    gh.fault(json!({ "method": "PUT", "path": "/secrets/SID_CRITICAL$", "after": 1, "count": 10, "status": 403, "body": { "message": "Resource not accessible by integration" } }));
    let before = sorted(bao.accessors());
    let run = rotate_approle_by_login(&bao, &gh, &role_id, &s2, "SID_CRITICAL");
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("logged in with the current secret ID"), "{}", run.stderr);
    assert_eq!(sorted(bao.accessors()), before, "the login's token is revoked");
    assert!(run.report()["rotations"][0].get("not_revoked").is_none(), "{}", run.report());

    // Unlimited uses: the new secret ID is verified by a login, then the write fails and is
    // rolled back; neither login's token is left.
    bao.root("POST", "auth/approle/role/ci", json!({ "token_policies": ["approle-self"], "secret_id_num_uses": 0 }));
    let s3 = new_secret_id(&bao);
    put("SID_ROLLBACK", &s3);
    gh.fault(json!({ "method": "PUT", "path": "/secrets/SID_ROLLBACK$", "after": 1, "count": 10, "status": 403, "body": { "message": "Resource not accessible by integration" } }));
    let before = sorted(bao.accessors());
    let run = rotate_approle_by_login(&bao, &gh, &role_id, &s3, "SID_ROLLBACK");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(sorted(bao.accessors()), before, "the logins' tokens are revoked");
    assert!(logs_in(&bao, &role_id, &s3), "the old secret ID stays valid");
    gh.take_errors();
}

#[test]
fn rotations_writing_their_own_keys_of_one_kv_secret_at_once_never_contend() {
    const N: usize = 12;
    let bao = Bao::start();
    setup(&bao);
    let (writer, _) = bao.token(None, json!({ "policies": ["ci-rotate"], "ttl": "1h" }));
    let tokens: Vec<String> = (0..N).map(|_| first_token(&bao).0).collect();
    let mut data = json!({ "keep": "me" });
    for (i, t) in tokens.iter().enumerate() {
        data[format!("token_{i}")] = json!(t);
    }
    bao.kv_put("secret", "ci/shared", data);

    let mut config =
        format!("vault: {{ addr: '{}', token: {{ env: WRITER }} }}\nparallel_rotations: {N}\nrotations:\n", bao.addr);
    for i in 0..N {
        config.push_str(&format!(
            "- name: token-{i}\n  provider: {{ type: vault-token, token: {{ env: T{i} }}, vault_role: ci-rotate }}\n  targets: [ {{ vault_kv: {{ path: ci/shared, field: token_{i} }} }} ]\n"
        ));
    }
    let names: Vec<String> = (0..N).map(|i| format!("T{i}")).collect();
    let mut env: Vec<(&str, &str)> = names.iter().map(String::as_str).zip(tokens.iter().map(String::as_str)).collect();
    env.push(("WRITER", &writer));
    let run = run_config(&config, &[], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("check-and-set"), "rotations of one run never race each other: {}", run.stderr);
    let (data, version) = bao.kv("secret", "ci/shared").unwrap();
    assert_eq!(data["keep"], "me", "the other field is kept");
    for (i, old) in tokens.iter().enumerate() {
        let new = data[format!("token_{i}")].as_str().unwrap();
        assert_ne!(new, old, "token_{i} holds its new token");
        assert!(bao.lookup(new).is_some(), "token_{i}'s new token is valid");
    }
    assert_eq!(version, 1 + N as u64, "each rotation wrote once, none over another");
}
