//! Mutual TLS against a real OpenBao listener that requires and verifies client certificates
//! (`tls_require_and_verify_client_cert`), with a throw-away CA made by openssl: a rotation works
//! with `client_cert`/`client_key`, and with the Vault CLI's `VAULT_CLIENT_CERT`/`VAULT_CLIENT_KEY`
//! and `VAULT_CACERT`; without a client certificate it fails clearly, having changed nothing.

mod common;

use common::*;
use serde_json::json;

const POLICY: &str = r#"
path "auth/token/create/ci-rotate" { capabilities = ["update"] }
path "auth/token/revoke-accessor" { capabilities = ["update"] }
path "secret/data/ci/*" { capabilities = ["create", "read", "update"] }
"#;

fn setup(bao: &Bao) -> String {
    bao.policy("ci-rotate", POLICY);
    bao.root("POST", "auth/token/roles/ci-rotate", json!({ "allowed_policies": ["ci-rotate"], "orphan": true }));
    let (t1, _) = bao.token(Some("ci-rotate"), json!({ "ttl": "1h" }));
    bao.kv_put("secret", "ci/app", json!({ "token": t1 }));
    t1
}

fn bin(bao: &Bao, token: &str) -> Bin {
    Bin::new(&["rotate"])
        .env("INPUT_PROVIDER", "vault-token")
        .env("INPUT_TARGET", "vault-kv")
        .env("INPUT_TOKEN", token)
        .env("INPUT_VAULT_ADDR", bao.tls_addr.as_ref().unwrap())
        .env("INPUT_VAULT_ROLE", "ci-rotate")
        .env("INPUT_VAULT_KV_PATH", "ci/app")
        .env("INPUT_REPORT", "secret-rotator-report.json")
}

fn stored(bao: &Bao) -> String {
    bao.kv("secret", "ci/app").unwrap().0["token"].as_str().unwrap().to_owned()
}

#[test]
fn a_rotation_presents_the_client_certificate_from_inputs_or_the_vault_variables() {
    let pki = TestPki::new();
    let bao = Bao::start_tls(&pki);
    let t1 = setup(&bao);
    let key = std::fs::read_to_string(&pki.client_key).unwrap();

    // Inputs: client_cert (a path), client_key (the PEM, a secret input), vault_ca_cert.
    let run = bin(&bao, &t1)
        .env("INPUT_CLIENT_CERT", &pki.client_cert)
        .env("INPUT_CLIENT_KEY", &key)
        .env("INPUT_VAULT_CA_CERT", &pki.ca)
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let t2 = stored(&bao);
    assert_ne!(t2, t1);
    assert!(bao.lookup(&t2).is_some());
    assert_no_leak(&run, &[&t1, &t2, key.trim()]);

    // The Vault CLI's variables.
    let run = bin(&bao, &t2)
        .env("VAULT_CLIENT_CERT", &pki.client_cert)
        .env("VAULT_CLIENT_KEY", &pki.client_key)
        .env("VAULT_CACERT", &pki.ca)
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let t3 = stored(&bao);
    assert!(t3 != t2 && bao.lookup(&t3).is_some());
}

#[test]
fn without_a_client_certificate_the_rotation_fails_clearly_and_changes_nothing() {
    let pki = TestPki::new();
    let bao = Bao::start_tls(&pki);
    let t1 = setup(&bao);
    let run = bin(&bao, &t1).env("VAULT_CACERT", &pki.ca).run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let error = run.report()["rotations"][0]["error"].as_str().unwrap().to_owned();
    assert!(error.contains("nothing was changed"), "{error}");
    assert!(error.to_lowercase().contains("certificate") || error.contains("TLS"), "{error}");
    assert_eq!(stored(&bao), t1);
    assert!(bao.lookup(&t1).is_some());

    // The server's CA unknown: refused as a TLS failure, not retried as a network error.
    let run = bin(&bao, &t1).env("VAULT_CLIENT_CERT", &pki.client_cert).env("VAULT_CLIENT_KEY", &pki.client_key).run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("TLS"), "{}", run.stderr);
}

#[test]
fn a_config_file_sets_the_client_certificate_in_the_vault_section() {
    let pki = TestPki::new();
    let bao = Bao::start_tls(&pki);
    let t1 = setup(&bao);
    let config = format!(
        "vault:\n  addr: '{}'\n  tls: {{ client_cert: '{}', client_key: {{ file: '{}' }}, ca_cert: '{}' }}\n\
         rotations:\n- name: ci-vault\n  provider: {{ type: vault-token, token: {{ env: T1 }}, vault_role: ci-rotate }}\n  \
         targets:\n  - vault_kv: {{ path: ci/app }}\n",
        bao.tls_addr.as_ref().unwrap(),
        pki.client_cert.display(),
        pki.client_key.display(),
        pki.ca.display()
    );
    let b = Bin::new(&["rotate", "--config", "c.yml"]);
    std::fs::write(b.dir().join("c.yml"), config).unwrap();
    let run = b.env("T1", &t1).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_ne!(stored(&bao), t1);
}
