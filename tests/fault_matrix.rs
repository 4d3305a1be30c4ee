//! The fault matrix: one row per fault, at every stage of a rotation, each checked against the
//! same invariants:
//! - the contract's exit code;
//! - **nothing lost**: a live credential is stored, or rescued (and the real `age -d` opens it),
//!   or, only when the upstream acted and its answer never arrived, the report says the
//!   credential may have been consumed and what to do;
//! - **nothing leaked**: no value in stdout (but `::add-mask::`), stderr, the report, the step
//!   summary or the outputs, at the most verbose log level;
//! - at most one token request.
//!
//! OAuth2 rows run against the real oidc-provider (rotation and reuse detection on) behind a
//! fault-injecting proxy, which can fail a request before the upstream sees it or lose the
//! answer after the upstream has rotated; GitHub and GitLab rows against the strict stand-ins;
//! Vault rows against a real OpenBao behind the proxy, where the old token stays valid until
//! revoked: a lost answer leaves it untouched, a failed write is rolled back, and only a failed
//! rollback is critical (their rotations write a Vault KV secret, a GitHub secret and a GitLab
//! variable); AWS Secrets Manager rows against moto behind a second fault proxy.
//! The table of results is written to `target/fault-matrix.md`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use secret_rotator::secret::Secret;
use secret_rotator::targets::aws_secrets_manager::request_token;
use serde_json::{json, Value};

const SECRET: &str = "OAUTH_REFRESH_TOKEN";
const VARIABLE: &str = "ROTATED_TOKEN";

/// Where the fault is injected.
#[derive(Clone)]
enum Fault {
    /// The token endpoint answers in the upstream's place: the upstream never sees the request.
    TokenBefore(Value),
    /// The upstream rotates, then its answer is replaced or lost.
    TokenAfter(Value),
    /// A rule of the GitHub stand-in.
    Github(Value),
    /// A rule of the GitLab stand-in.
    Gitlab(Value),
    /// A rule of the fault proxy in front of moto (AWS Secrets Manager).
    Aws(Value),
}

/// What must hold the live credential afterwards.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kept {
    /// Nothing was rotated: the stored credential is the old one, and it is alive.
    Untouched,
    /// The new credential is stored, and alive.
    Stored,
    /// The new credential is in the rescue file, and alive.
    Rescued,
    /// The upstream acted and the answer was lost: the old one is dead, and the report says so.
    MaybeConsumed,
}

#[derive(Clone, Copy)]
enum Provider {
    OAuth2,
    GitlabToken,
    VaultToken,
    /// oauth2 into an AWS Secrets Manager secret (moto behind a fault proxy).
    OAuth2IntoAws,
}

/// A signal sent once a request matching `path` (and `method`) has reached the server.
#[derive(Clone)]
struct Signal {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    /// Where the request shows up: the proxy (token endpoint) or the stand-in.
    at_proxy: bool,
}

#[derive(Clone)]
struct Row {
    name: String,
    provider: Provider,
    faults: Vec<Fault>,
    signal: Option<Signal>,
    env: Vec<(&'static str, String)>,
    /// Check the new access token at the upstream's `/me` (through the proxy).
    verify: bool,
    exit: i32,
    kept: Kept,
}

fn row(name: impl Into<String>, faults: Vec<Fault>, exit: i32, kept: Kept) -> Row {
    Row { name: name.into(), provider: Provider::OAuth2, faults, signal: None, env: vec![], verify: false, exit, kept }
}

fn status(code: u16) -> Value {
    json!({ "path": "^/token$", "method": "POST", "status": code, "body": { "error": "server_error" } })
}

/// A fault rule: `base` (where it matches) with `rule`'s keys (what it does) added over it.
fn merged(base: Value, rule: &Value) -> Value {
    let mut r = base;
    r.as_object_mut().unwrap().extend(rule.as_object().unwrap().clone());
    r
}

fn token(rule: Value) -> Value {
    merged(json!({ "path": "^/token$", "method": "POST" }), &rule)
}

fn put(after: u32, count: u32, rule: Value) -> Value {
    merged(json!({ "method": "PUT", "path": format!("/secrets/{SECRET}$"), "after": after, "count": count }), &rule)
}

fn key(count: u32, rule: Value) -> Value {
    merged(json!({ "method": "GET", "path": "/secrets/public-key$", "count": count }), &rule)
}

fn rows() -> Vec<Row> {
    use Fault::*;
    use Kept::*;
    let mut rows = Vec::new();
    let secondary = json!({ "status": 403, "headers": { "retry-after": "1" }, "body": { "message": "You have exceeded a secondary rate limit." } });
    let timeout = || ("INPUT_TIMEOUT", "2s".to_owned());

    // The token endpoint fails before the upstream acts: the old token is untouched.
    for code in [500, 502, 503, 504] {
        rows.push(row(
            format!("token {code}, before the upstream acts"),
            vec![TokenBefore(status(code))],
            1,
            Untouched,
        ));
    }
    let before: Vec<(&str, Value, i32, Kept)> = vec![
        (
            "token 429 with retry-after",
            json!({ "status": 429, "headers": { "retry-after": "1" }, "body": { "error": "slow_down" } }),
            1,
            Untouched,
        ),
        ("token invalid_grant", json!({ "status": 400, "body": { "error": "invalid_grant" } }), 4, Untouched),
        ("token invalid_client", json!({ "status": 401, "body": { "error": "invalid_client" } }), 1, Untouched),
        ("token answers HTML", json!({ "status": 200, "raw": "<html><body>Sign in</body></html>" }), 1, Untouched),
        ("token answers truncated JSON", json!({ "status": 200, "raw": "{\"access_token\":\"a2-trunc" }), 1, Untouched),
        (
            "token answers without access_token",
            json!({ "status": 200, "body": { "refresh_token": "r-forged-0123456789", "token_type": "Bearer" } }),
            1,
            Untouched,
        ),
        (
            "token answers without refresh_token (a provider that does not rotate)",
            json!({ "status": 200, "body": { "access_token": "a-only-0123456789", "token_type": "Bearer" } }),
            0,
            Untouched,
        ),
        ("token answer over the 1 MiB cap", json!({ "oversize": true }), 1, Untouched),
        (
            "token redirect to another origin",
            json!({ "redirect": true, "location": "http://127.0.0.2:9/token" }),
            1,
            Untouched,
        ),
        ("token connection dropped", json!({ "drop": true }), 1, Untouched),
    ];
    for (name, rule, exit, kept) in before {
        rows.push(row(format!("{name}, before the upstream acts"), vec![TokenBefore(token(rule))], exit, kept));
    }
    let mut r =
        row("token timeout, before the upstream acts", vec![TokenBefore(token(json!({ "delay": 4 })))], 1, Untouched);
    r.env.push(timeout());
    rows.push(r);

    // The upstream rotates, then its answer is lost or garbled: the report must say so.
    for code in [500, 502, 503, 504, 429] {
        rows.push(row(
            format!("token {code} after the upstream rotated"),
            vec![TokenAfter(token(json!({ "status": code, "body": { "error": "server_error" } })))],
            1,
            MaybeConsumed,
        ));
    }
    let after: Vec<(&str, Value, i32)> = vec![
        (
            "token invalid_grant after the upstream rotated",
            json!({ "status": 400, "body": { "error": "invalid_grant" } }),
            4,
        ),
        ("token HTML after the upstream rotated", json!({ "status": 200, "raw": "<html>oops</html>" }), 1),
        ("token answer truncated after the upstream rotated", json!({ "truncate": 20 }), 1),
        (
            "token answer without access_token after the upstream rotated",
            json!({ "status": 200, "body": { "token_type": "Bearer" } }),
            1,
        ),
        ("token answer over the cap after the upstream rotated", json!({ "oversize": true }), 1),
        (
            "token redirect after the upstream rotated",
            json!({ "redirect": true, "location": "http://127.0.0.2:9/token" }),
            1,
        ),
        ("token connection dropped after the upstream rotated", json!({ "drop": true }), 1),
    ];
    for (name, rule, exit) in after {
        rows.push(row(name, vec![TokenAfter(token(rule))], exit, MaybeConsumed));
    }
    let mut r = row(
        "token timeout after the upstream rotated",
        vec![TokenAfter(token(json!({ "delay": 4 })))],
        1,
        MaybeConsumed,
    );
    r.env.push(timeout());
    rows.push(r);

    // The public key: the preflight cannot prove the target, nothing is rotated; or it recovers.
    for (name, rule, exit, kept) in [
        ("public key 500", key(100, json!({ "status": 500 })), 1, Untouched),
        ("public key 502", key(100, json!({ "status": 502 })), 1, Untouched),
        (
            "public key 403",
            key(
                100,
                json!({ "status": 403, "body": { "message": "Resource not accessible by personal access token" } }),
            ),
            1,
            Untouched,
        ),
        ("public key 404", key(100, json!({ "status": 404, "body": { "message": "Not Found" } })), 1, Untouched),
        ("public key connection dropped", key(100, json!({ "drop": true })), 1, Untouched),
        (
            "public key 429 twice, then served",
            key(2, json!({ "status": 429, "headers": { "retry-after": "1" } })),
            0,
            Stored,
        ),
        ("public key secondary rate limit once", key(1, secondary.clone()), 0, Stored),
        ("public key 500 twice, then served", key(2, json!({ "status": 500 })), 0, Stored),
    ] {
        rows.push(row(name, vec![Github(rule)], exit, kept));
    }
    let mut r = row("public key timeout once, then served", vec![Github(key(1, json!({ "delay": 4 })))], 0, Stored);
    r.env.push(timeout());
    rows.push(r);

    // The preflight write: refused, nothing is rotated; or it recovers.
    for (name, rule, exit, kept) in [
        ("preflight PUT 500", put(0, 100, json!({ "status": 500 })), 1, Untouched),
        (
            "preflight PUT 403",
            put(
                0,
                100,
                json!({ "status": 403, "body": { "message": "Resource not accessible by personal access token" } }),
            ),
            1,
            Untouched,
        ),
        ("preflight PUT 404", put(0, 100, json!({ "status": 404, "body": { "message": "Not Found" } })), 1, Untouched),
        ("preflight PUT 422", put(0, 100, json!({ "status": 422, "body": { "message": "Bad key_id" } })), 1, Untouched),
        ("preflight PUT connection dropped", put(0, 100, json!({ "drop": true })), 1, Untouched),
        (
            "preflight PUT 429 twice, then written",
            put(0, 2, json!({ "status": 429, "headers": { "retry-after": "1" } })),
            0,
            Stored,
        ),
        ("preflight PUT secondary rate limit once", put(0, 1, secondary.clone()), 0, Stored),
    ] {
        rows.push(row(name, vec![Github(rule)], exit, kept));
    }
    let mut r =
        row("preflight PUT timeout once, then written", vec![Github(put(0, 1, json!({ "delay": 4 })))], 0, Stored);
    r.env.push(timeout());
    rows.push(r);

    // The write after the rotation: retried; when it fails for good, the new token is rescued.
    for (name, rule, exit, kept) in [
        ("write PUT 500", put(1, 100, json!({ "status": 500 })), 3, Rescued),
        ("write PUT 502", put(1, 100, json!({ "status": 502 })), 3, Rescued),
        (
            "write PUT 403",
            put(
                1,
                100,
                json!({ "status": 403, "body": { "message": "Resource not accessible by personal access token" } }),
            ),
            3,
            Rescued,
        ),
        ("write PUT 404", put(1, 100, json!({ "status": 404, "body": { "message": "Not Found" } })), 3, Rescued),
        ("write PUT 422", put(1, 100, json!({ "status": 422, "body": { "message": "Bad key_id" } })), 3, Rescued),
        ("write PUT connection dropped", put(1, 100, json!({ "drop": true })), 3, Rescued),
        (
            "write PUT 429 twice, then written",
            put(1, 2, json!({ "status": 429, "headers": { "retry-after": "1" } })),
            0,
            Stored,
        ),
        ("write PUT secondary rate limit once", put(1, 1, secondary.clone()), 0, Stored),
        ("write PUT 503 three times, then written", put(1, 3, json!({ "status": 503 })), 0, Stored),
    ] {
        rows.push(row(name, vec![Github(rule)], exit, kept));
    }
    let mut r = row("write PUT timeout every time", vec![Github(put(1, 100, json!({ "delay": 4 })))], 3, Rescued);
    r.env.push(timeout());
    rows.push(r);
    let mut r = row("write PUT timeout once, then written", vec![Github(put(1, 1, json!({ "delay": 4 })))], 0, Stored);
    r.env.push(timeout());
    rows.push(r);
    let mut r = row(
        "access-token write fails for good, the refresh token stored",
        vec![Github(
            json!({ "method": "PUT", "path": "/secrets/OAUTH_ACCESS_TOKEN$", "count": 100, "status": 422, "body": { "message": "no" } }),
        )],
        1,
        Stored,
    );
    r.env.push(("INPUT_ACCESS_TOKEN_SECRET_NAME", "OAUTH_ACCESS_TOKEN".to_owned()));
    rows.push(r);

    // Signals at each stage.
    for sig in ["TERM", "INT"] {
        let mut r = row(
            format!("SIG{sig} during the preflight write"),
            vec![Github(put(0, 1, json!({ "delay": 2 })))],
            1,
            Untouched,
        );
        r.signal = Some(Signal { name: sig, method: "PUT", path: SECRET, at_proxy: false });
        rows.push(r);
        let mut r = row(
            format!("SIG{sig} while the token request is in flight"),
            vec![TokenAfter(token(json!({ "delay": 2 })))],
            0,
            Stored,
        );
        r.signal = Some(Signal { name: sig, method: "POST", path: "/token", at_proxy: true });
        rows.push(r);
        let mut r = row(
            format!("SIG{sig} while a write waits to be retried"),
            vec![Github(put(1, 100, json!({ "status": 503, "headers": { "retry-after": "30" } })))],
            3,
            Rescued,
        );
        r.signal = Some(Signal { name: sig, method: "PUT", path: SECRET, at_proxy: false });
        rows.push(r);
        let mut r =
            row(format!("SIG{sig} during the write"), vec![Github(put(1, 1, json!({ "delay": 2 })))], 0, Stored);
        r.signal = Some(Signal { name: sig, method: "PUT", path: SECRET, at_proxy: false });
        rows.push(r);
        let mut r = row(
            format!("SIG{sig} during verify_url"),
            vec![TokenBefore(json!({ "method": "GET", "path": "^/me$", "delay": 2 }))],
            0,
            Stored,
        );
        r.signal = Some(Signal { name: sig, method: "GET", path: "/me", at_proxy: true });
        r.verify = true;
        rows.push(r);
        let mut r = Row {
            provider: Provider::GitlabToken,
            ..row(
                format!("SIG{sig} during GitLab's token check"),
                vec![Gitlab(json!({ "method": "GET", "path": "/personal_access_tokens/self$", "delay": 2 }))],
                1,
                Untouched,
            )
        };
        r.signal = Some(Signal { name: sig, method: "GET", path: "/personal_access_tokens/self", at_proxy: false });
        rows.push(r);
    }

    // GitLab: a token that rotates itself into its own variable.
    let gl = |name: &str, rule: Value, exit: i32, kept: Kept| Row {
        provider: Provider::GitlabToken,
        ..row(name, vec![Gitlab(rule)], exit, kept)
    };
    rows.push(gl(
        "GitLab rotate 503 (not rotated)",
        json!({ "method": "POST", "path": "/self/rotate$", "status": 503 }),
        1,
        Untouched,
    ));
    rows.push(gl(
        "GitLab rotate 500 (not rotated)",
        json!({ "method": "POST", "path": "/self/rotate$", "status": 500 }),
        1,
        Untouched,
    ));
    rows.push(gl("GitLab token lookup 401", json!({ "method": "GET", "path": "/personal_access_tokens/self$", "count": 1, "status": 401, "body": { "message": "401 Unauthorized" } }), 4, Untouched));
    rows.push(gl(
        "GitLab variable write 500 for good",
        json!({ "method": "PUT", "path": format!("/variables/{VARIABLE}$"), "after": 1, "count": 100, "status": 500 }),
        3,
        Rescued,
    ));
    rows.push(gl(
        "GitLab variable write dropped for good",
        json!({ "method": "PUT", "path": format!("/variables/{VARIABLE}$"), "after": 1, "count": 100, "drop": true }),
        3,
        Rescued,
    ));
    for (name, rule) in [
        ("GitLab rotation answer dropped after GitLab rotated", json!({ "drop": true })),
        (
            "GitLab rotation answer 502 after GitLab rotated",
            json!({ "status": 502, "body": { "message": "502 Bad Gateway" } }),
        ),
    ] {
        let rule = merged(json!({ "method": "POST", "path": "/self/rotate$" }), &rule);
        rows.push(Row { provider: Provider::GitlabToken, ..row(name, vec![TokenAfter(rule)], 1, MaybeConsumed) });
    }
    rows.extend(vault_rows());
    rows.push(gl(
        "GitLab variable write 502 once, then written",
        json!({ "method": "PUT", "path": format!("/variables/{VARIABLE}$"), "after": 1, "count": 1, "status": 502 }),
        0,
        Stored,
    ));

    // AWS Secrets Manager: requests are DescribeSecret, the preflight's PutSecretValue, then the
    // write's PutSecretValue (all POST /, told apart by their order).
    let aws = |name: &str, after: u32, count: u32, rule: Value, exit: i32, kept: Kept| Row {
        provider: Provider::OAuth2IntoAws,
        ..row(
            name,
            vec![Aws(merged(json!({ "method": "POST", "path": "^/$", "after": after, "count": count }), &rule))],
            exit,
            kept,
        )
    };
    let denied = json!({ "status": 400, "body": { "__type": "AccessDeniedException", "message": "User: arn:aws:sts::123456789012:assumed-role/ci/x is not authorized to perform: secretsmanager:PutSecretValue" } });
    let throttled = json!({ "status": 400, "body": { "__type": "ThrottlingException", "message": "Rate exceeded" } });
    rows.push(aws("AWS DescribeSecret 500 for good", 0, 100, json!({ "status": 500 }), 1, Untouched));
    rows.push(aws("AWS preflight PutSecretValue denied", 1, 100, denied.clone(), 1, Untouched));
    rows.push(aws("AWS preflight PutSecretValue throttled once, then written", 1, 1, throttled.clone(), 0, Stored));
    rows.push(aws("AWS write throttled twice, then written", 2, 2, throttled.clone(), 0, Stored));
    rows.push(aws("AWS write 503 three times, then written", 2, 3, json!({ "status": 503 }), 0, Stored));
    rows.push(aws(
        "AWS write answer lost after AWS stored it, retried as a no-op",
        2,
        1,
        json!({ "when": "after", "drop": true }),
        0,
        Stored,
    ));
    rows.push(aws("AWS write denied for good", 2, 100, denied, 3, Rescued));
    rows.push(aws("AWS write throttled for good", 2, 100, throttled, 3, Rescued));
    rows.push(aws("AWS write 500 for good", 2, 100, json!({ "status": 500 }), 3, Rescued));
    rows.push(aws("AWS write connection dropped for good", 2, 100, json!({ "drop": true }), 3, Rescued));
    let mut r = aws("AWS write timeout once, then written", 2, 1, json!({ "delay": 4 }), 0, Stored);
    r.env.push(timeout());
    rows.push(r);
    rows
}

const VAULT_SECRET: &str = "VAULT_TOKEN";
/// The token that writes the Vault rows' GitLab variable.
const GL_WRITER: &str = "glpat-matrix-writer-0123456789";

fn vault(name: &str, faults: Vec<Fault>, exit: i32, kept: Kept) -> Row {
    Row { provider: Provider::VaultToken, ..row(format!("vault: {name}"), faults, exit, kept) }
}

/// Vault rows: every fault where a credential could be lost (the create call's answer, a target
/// that fails after the preflight, a rollback that fails too, a verification that fails).
fn vault_rows() -> Vec<Row> {
    use Fault::*;
    use Kept::*;
    let create = |rule: Value| merged(json!({ "method": "POST", "path": "/v1/auth/token/create/ci-rotate$" }), &rule);
    let kv = |rule: Value| merged(json!({ "method": "POST", "path": "/v1/secret/data/ci/app$" }), &rule);
    let gh_put = |rule: Value| {
        merged(json!({ "method": "PUT", "path": format!("/secrets/{VAULT_SECRET}$"), "after": 1, "count": 100 }), &rule)
    };
    let gl_put = |count: u32, rule: Value| {
        merged(
            json!({ "method": "PUT", "path": format!("/variables/{VAULT_SECRET}$"), "after": 1, "count": count }),
            &rule,
        )
    };
    let mut rows = vec![
        vault(
            "token create 502, before Vault acts",
            vec![TokenBefore(create(json!({ "status": 502, "body": { "errors": ["bad gateway"] } })))],
            1,
            Untouched,
        ),
        vault(
            "token create refused (403)",
            vec![TokenBefore(create(json!({ "status": 403, "body": { "errors": ["permission denied"] } })))],
            1,
            Untouched,
        ),
        vault(
            "token create answer dropped after Vault created the token",
            vec![TokenAfter(create(json!({ "drop": true })))],
            1,
            Untouched,
        ),
        vault(
            "token create answer 500 after Vault created the token",
            vec![TokenAfter(create(json!({ "status": 500, "body": { "errors": ["internal error"] } })))],
            1,
            Untouched,
        ),
        vault(
            "token create answer truncated after Vault created the token",
            vec![TokenAfter(create(json!({ "truncate": 30 })))],
            1,
            Untouched,
        ),
        vault(
            "verification of the new token fails: it is revoked, nothing written",
            vec![TokenBefore(
                json!({ "method": "GET", "path": "/v1/auth/token/lookup-self$", "after": 1, "count": 10, "status": 500, "body": { "errors": ["internal error"] } }),
            )],
            1,
            Untouched,
        ),
        vault(
            "GitHub write refused after the preflight: rolled back",
            vec![Github(gh_put(
                json!({ "status": 403, "body": { "message": "Resource not accessible by integration" } }),
            ))],
            1,
            Untouched,
        ),
        vault("GitHub write 500 for good: rolled back", vec![Github(gh_put(json!({ "status": 500 })))], 1, Untouched),
        // The write of the new token lands but its answer is lost (the retry and the rollback's
        // re-write are refused): the secret may hold the new token, so it must stay valid.
        vault(
            "GitHub write lands, its answer lost, then refused: the new token kept and rescued",
            vec![
                Github(merged(
                    json!({ "method": "PUT", "path": format!("/secrets/{VAULT_SECRET}$"), "after": 1, "count": 1 }),
                    &json!({ "lose_answer": true }),
                )),
                Github(gh_put(
                    json!({ "status": 403, "body": { "message": "Resource not accessible by integration" } }),
                )),
            ],
            3,
            Rescued,
        ),
        // The same with a GitLab variable: its update lands, the answer is lost, the retry and
        // the rollback's re-write are answered 403.
        vault(
            "GitLab variable write lands, its answer lost, then refused: the new token kept and rescued",
            vec![
                Gitlab(gl_put(1, json!({ "lose_answer": true }))),
                Gitlab(gl_put(100, json!({ "status": 403, "body": { "message": "403 Forbidden" } }))),
            ],
            3,
            Rescued,
        ),
        vault(
            "GitHub write fails and the KV rollback fails too: rescued",
            vec![
                Github(gh_put(
                    json!({ "status": 403, "body": { "message": "Resource not accessible by integration" } }),
                )),
                TokenBefore(kv(
                    json!({ "after": 1, "count": 100, "status": 403, "body": { "errors": ["permission denied"] } }),
                )),
            ],
            3,
            Rescued,
        ),
        vault(
            "KV write 502 once, then written",
            vec![TokenBefore(kv(json!({ "count": 1, "status": 502, "body": { "errors": ["bad gateway"] } })))],
            0,
            Stored,
        ),
        vault(
            "KV write refused for good: rolled back",
            vec![TokenBefore(kv(json!({ "count": 100, "status": 403, "body": { "errors": ["permission denied"] } })))],
            1,
            Untouched,
        ),
    ];
    let mut r = vault(
        "token create timeout after Vault created the token",
        vec![TokenAfter(create(json!({ "delay": 4 })))],
        1,
        Untouched,
    );
    r.env.push(("INPUT_TIMEOUT", "2s".to_owned()));
    rows.push(r);
    rows
}

fn run_vault_row(row: &Row) -> Outcome {
    let bao = Bao::start();
    bao.policy(
        "ci-rotate",
        "path \"auth/token/create/ci-rotate\" { capabilities = [\"update\"] }\n\
         path \"auth/token/revoke-accessor\" { capabilities = [\"update\"] }\n\
         path \"secret/data/ci/*\" { capabilities = [\"create\", \"read\", \"update\"] }\n",
    );
    bao.root("POST", "auth/token/roles/ci-rotate", json!({ "allowed_policies": ["ci-rotate"], "orphan": true }));
    let (t1, _) = bao.token(Some("ci-rotate"), json!({ "ttl": "1h" }));
    bao.kv_put("secret", "ci/app", json!({ "token": t1 }));
    let gh = GitHub::start();
    gh.setup(json!({ "secrets": [ { "scope": ["repo", REPO], "name": VAULT_SECRET, "value": t1, "updated_at": "2026-01-01T00:00:00Z" } ] }));
    let gl = GitLab::start();
    gl.token(GL_WRITER, "project", Some(GL_PROJECT), &["api"]);
    gl.setup(
        json!({ "variables": [ { "scope": ["project", GL_PROJECT], "key": VAULT_SECRET, "value": t1, "masked": true } ] }),
    );
    let proxy = FaultProxy::start(&bao.addr);
    for f in &row.faults {
        match f {
            Fault::TokenBefore(rule) => proxy.fault(merged(json!({ "when": "before" }), rule)),
            Fault::TokenAfter(rule) => proxy.fault(merged(json!({ "when": "after" }), rule)),
            Fault::Github(rule) => gh.fault(rule.clone()),
            Fault::Gitlab(rule) => gl.fault(rule.clone()),
            Fault::Aws(_) => unreachable!(),
        }
    }
    let bin = Bin::actions(&["rotate", "--config", "c.yml"]);
    let (age_id, recipient) = age_key(bin.dir());
    let config = format!(
        "github: {{ token: {{ env: GH }} }}\ngitlab: {{ url: '{}', token: {{ env: GLW }} }}\nvault: {{ addr: '{}' }}\n\
         rescue_recipient: {recipient}\nrotations:\n\
         - name: ci-vault\n  provider: {{ type: vault-token, token: {{ env: T1 }}, vault_role: ci-rotate, grace: 0 }}\n  targets:\n\
         \x20 - vault_kv: {{ path: ci/app }}\n\
         \x20 - github: {{ repository: {REPO}, secret: {VAULT_SECRET} }}\n\
         \x20 - gitlab: {{ project: {GL_PROJECT}, variable: {VAULT_SECRET} }}\n",
        gl.url, proxy.url
    );
    std::fs::write(bin.dir().join("c.yml"), config).unwrap();
    let bin = bin
        .env("GH", GH_TOKEN)
        .env("GLW", GL_WRITER)
        .env("T1", &t1)
        .env("GITHUB_API_URL", &gh.url)
        .env("INPUT_LOG_LEVEL", "debug")
        .env("RUNNER_DEBUG", "1")
        .envs(row.env.clone());
    let (exit, stdout, stderr, dir) = run_bin(bin, None, &|_| false);
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("secret-rotator-report.json")).unwrap_or_default(),
    )
    .unwrap_or(Value::Null);
    let rotation = &report["rotations"][0];
    let in_kv = bao.kv("secret", "ci/app").and_then(|(d, _)| d["token"].as_str().map(str::to_owned));
    let in_gh = gh.repo_secret(REPO, VAULT_SECRET);
    let in_gl = gl
        .variable(json!(["project", GL_PROJECT]), VAULT_SECRET, "*")
        .and_then(|v| v["value"].as_str().map(str::to_owned));
    let rescued = rotation["rescue_file"]
        .as_str()
        .map(|f| age_decrypt(&age_id, &dir.path().join(Path::new(f).file_name().unwrap())));
    let alive = |t: &str| bao.lookup(t).is_some();
    let issued = proxy.issued();
    // Whatever a target holds must be valid: a target left holding a revoked token locks its
    // pipeline out.
    let all_alive = [&in_kv, &in_gh, &in_gl].iter().all(|t| t.as_deref().is_some_and(alive));
    let kept = match row.kept {
        Kept::Untouched
            if in_kv.as_deref() == Some(&t1)
                && in_gh.as_deref() == Some(&t1)
                && in_gl.as_deref() == Some(&t1)
                && alive(&t1) =>
        {
            match issued.iter().find(|t| **t != t1 && alive(t)) {
                // A token whose answer never arrived lives until its TTL: nobody can hold it.
                Some(_) if rotation["new_fingerprint"].is_string() => Err("a new token stayed valid".to_owned()),
                _ => Ok(()),
            }
        }
        Kept::Stored if in_kv.as_deref().is_some_and(|s| s != t1 && alive(s)) && in_kv == in_gh && in_kv == in_gl => {
            Ok(())
        }
        Kept::Rescued
            if rescued.as_deref().is_some_and(alive) && rotation["status"] == "critical" && alive(&t1) && all_alive =>
        {
            Ok(())
        }
        other => Err(format!(
            "expected {other:?}: KV holds the old token {}, GitHub {}, GitLab {}, old alive {}, every target's \
             token alive {all_alive}, rescued {}",
            in_kv.as_deref() == Some(&t1),
            in_gh.as_deref() == Some(&t1),
            in_gl.as_deref() == Some(&t1),
            alive(&t1),
            rescued.is_some()
        )),
    };
    gh.take_errors();
    let mut values = vec![t1.clone(), GH_TOKEN.to_owned(), GL_WRITER.to_owned()];
    values.extend(issued);
    let mut leaked = leaks(dir.path(), &stdout, &stderr, &values);
    for (place, text) in [
        ("stdout", stdout.lines().filter(|l| !l.starts_with("::add-mask::")).collect::<Vec<_>>().join("\n")),
        ("stderr", stderr.clone()),
    ] {
        if !vault_token_like(&text).is_empty() {
            leaked.push(format!("{place} holds something shaped like a Vault token"));
        }
    }
    let creates = proxy.requests().iter().filter(|r| r["path"] == "/v1/auth/token/create/ci-rotate").count();
    Outcome { exit, kept, leaked, token_requests: creates }
}

/// What one row found.
struct Outcome {
    exit: i32,
    kept: Result<(), String>,
    leaked: Vec<String>,
    token_requests: usize,
}

fn leaks(run_dir: &Path, stdout: &str, stderr: &str, values: &[String]) -> Vec<String> {
    let read = |name: &str| std::fs::read_to_string(run_dir.join(name)).unwrap_or_default();
    let stdout_rest: String = stdout.lines().filter(|l| !l.starts_with("::add-mask::")).collect::<Vec<_>>().join("\n");
    let outputs: String =
        read("output").lines().filter(|l| !l.starts_with("access_token=")).collect::<Vec<_>>().join("\n");
    let places = [
        ("stdout", stdout_rest),
        ("stderr", stderr.to_owned()),
        ("report", read("secret-rotator-report.json")),
        ("summary", read("summary.md")),
        ("outputs", outputs),
    ];
    let mut found = Vec::new();
    for (place, text) in &places {
        for v in values.iter().filter(|v| v.len() >= 8) {
            if text.contains(v.as_str()) {
                found.push(format!("{place} holds a value"));
            }
        }
    }
    found
}

/// Runs the binary, sending the row's signal once its request has arrived.
fn run_bin(
    bin: Bin,
    signal: Option<&Signal>,
    seen: &dyn Fn(&Signal) -> bool,
) -> (i32, String, String, tempfile::TempDir) {
    let (child, dir) = bin.spawn();
    if let Some(sig) = signal {
        let start = Instant::now();
        while !seen(sig) {
            assert!(start.elapsed() < Duration::from_secs(30), "the request before SIG{} never came", sig.name);
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        let ok = Command::new("kill").arg(format!("-{}", sig.name)).arg(child.id().to_string()).status().unwrap();
        assert!(ok.success());
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        dir,
    )
}

fn seen(requests: &[Value], sig: &Signal) -> bool {
    requests.iter().any(|r| r["method"] == sig.method && r["path"].as_str().unwrap_or("").contains(sig.path))
}

fn run_oauth_row(row: &Row, oauth: &OAuth) -> Outcome {
    let proxy = FaultProxy::start(&oauth.url);
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    gh.setup(json!({ "secrets": [ { "scope": ["repo", REPO], "name": SECRET, "value": r1, "updated_at": "2026-01-01T00:00:00Z" } ] }));
    for f in &row.faults {
        match f {
            Fault::TokenBefore(rule) => proxy.fault(merged(json!({ "when": "before" }), rule)),
            Fault::TokenAfter(rule) => proxy.fault(merged(json!({ "when": "after" }), rule)),
            Fault::Github(rule) => gh.fault(rule.clone()),
            Fault::Gitlab(_) | Fault::Aws(_) => unreachable!(),
        }
    }
    let bin = Bin::actions(&["rotate"]);
    let (age_id, recipient) = age_key(bin.dir());
    let bin = bin
        .envs(oauth_inputs(&proxy.url, &gh, &r1))
        .env("INPUT_RESCUE_RECIPIENT", &recipient)
        .env("INPUT_LOG_LEVEL", "debug")
        .env("RUNNER_DEBUG", "1")
        .envs(row.env.clone());
    let bin = if row.verify { bin.env("INPUT_VERIFY_URL", format!("{}/me", proxy.url)) } else { bin };
    let watch = |sig: &Signal| if sig.at_proxy { seen(&proxy.requests(), sig) } else { seen(&gh.requests(), sig) };
    let (exit, stdout, stderr, dir) = run_bin(bin, row.signal.as_ref(), &watch);
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("secret-rotator-report.json")).unwrap_or_default(),
    )
    .unwrap_or(Value::Null);
    let rotation = &report["rotations"][0];
    let error = rotation["error"].as_str().unwrap_or("").to_owned();
    let stored = gh.repo_secret(REPO, SECRET);
    let rescued = rotation["rescue_file"]
        .as_str()
        .map(|f| age_decrypt(&age_id, &dir.path().join(Path::new(f).file_name().unwrap())));

    let alive = |t: &str| oauth.active(t);
    let kept = match row.kept {
        Kept::Untouched => match &stored {
            Some(s) if *s == r1 && alive(&r1) => Ok(()),
            other => Err(format!(
                "the old token should be stored and alive (stored: {}, alive: {})",
                other.as_deref() == Some(&r1),
                alive(&r1)
            )),
        },
        Kept::Stored => match &stored {
            Some(s) if *s != r1 && alive(s) => Ok(()),
            _ => Err("a new, live token should be stored".to_owned()),
        },
        Kept::Rescued => match &rescued {
            Some(t) if alive(t) && rotation["status"] == "critical" => Ok(()),
            _ => Err(format!("the rescue file should hold the live token (status {})", rotation["status"])),
        },
        Kept::MaybeConsumed => {
            let lower = error.to_lowercase();
            let says = (lower.contains("may") || lower.contains("revoked")) && lower.contains("re-authorize");
            if alive(&r1) {
                Err("the upstream should have rotated (the old token is dead)".to_owned())
            } else if !says {
                Err(format!("the report should say the token may be consumed and what to do: {error}"))
            } else {
                Ok(())
            }
        }
    };
    let mut values: Vec<String> = vec![r1.clone(), BASIC_SECRET.to_owned(), GH_TOKEN.to_owned()];
    values.extend(proxy.issued());
    values.extend(stored);
    values.extend(rescued);
    let token_requests = proxy.requests().iter().filter(|r| r["path"] == "/token").count();
    Outcome { exit, kept, leaked: leaks(dir.path(), &stdout, &stderr, &values), token_requests }
}

fn run_gitlab_row(row: &Row) -> Outcome {
    let gl = GitLab::start();
    let t1 = "glpat-matrix-current-0123456789";
    gl.token(t1, "project", Some(GL_PROJECT), &["api"]);
    gl.setup(
        json!({ "variables": [ { "scope": ["project", GL_PROJECT], "key": VARIABLE, "value": t1, "masked": true } ] }),
    );
    // Faults after GitLab acted go through a proxy in front of the stand-in.
    let proxy = FaultProxy::start(&gl.url);
    for f in &row.faults {
        match f {
            Fault::Gitlab(rule) => gl.fault(rule.clone()),
            Fault::TokenAfter(rule) => proxy.fault(merged(json!({ "when": "after" }), rule)),
            _ => unreachable!(),
        }
    }
    let bin = Bin::new(&["rotate"]);
    let (age_id, recipient) = age_key(bin.dir());
    let bin = bin
        .envs(gitlab_inputs(&gl, t1))
        .env("CI_API_V4_URL", format!("{}/api/v4", proxy.url))
        .env("INPUT_RESCUE_RECIPIENT", &recipient)
        .env("INPUT_LOG_LEVEL", "debug")
        .env("INPUT_REPORT", "secret-rotator-report.json");
    let watch = |sig: &Signal| seen(&gl.requests(), sig);
    let (exit, stdout, stderr, dir) = run_bin(bin, row.signal.as_ref(), &watch);
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("secret-rotator-report.json")).unwrap_or_default(),
    )
    .unwrap_or(Value::Null);
    let rotation = &report["rotations"][0];
    let stored =
        gl.variable(json!(["project", GL_PROJECT]), VARIABLE, "*").and_then(|v| v["value"].as_str().map(str::to_owned));
    let rescued = rotation["rescue_file"]
        .as_str()
        .map(|f| age_decrypt(&age_id, &dir.path().join(Path::new(f).file_name().unwrap())));
    let error = rotation["error"].as_str().unwrap_or("").to_lowercase();
    let kept = match row.kept {
        Kept::MaybeConsumed if !gl.active(t1) && error.contains("may have rotated") && error.contains("by hand") => {
            Ok(())
        }
        Kept::Untouched if stored.as_deref() == Some(t1) && gl.active(t1) => Ok(()),
        Kept::Stored if stored.as_deref().is_some_and(|s| s != t1 && gl.active(s)) => Ok(()),
        Kept::Rescued if rescued.as_deref().is_some_and(|t| gl.active(t)) => Ok(()),
        other => Err(format!(
            "expected {other:?}: stored {:?}, rescued {}",
            stored.as_deref().map(|s| s == t1),
            rescued.is_some()
        )),
    };
    let mut values = vec![t1.to_owned()];
    values.extend(gl.tokens().iter().filter_map(|t| t["value"].as_str().map(str::to_owned)));
    let rotate_requests =
        gl.requests().iter().filter(|r| r["path"].as_str().unwrap_or("").ends_with("/self/rotate")).count();
    Outcome { exit, kept, leaked: leaks(dir.path(), &stdout, &stderr, &values), token_requests: rotate_requests }
}

fn run_aws_row(row: &Row, oauth: &OAuth) -> Outcome {
    const ID: &str = "ci/matrix";
    let moto = Moto::start();
    let aws_proxy = FaultProxy::start(&moto.url);
    let token_proxy = FaultProxy::start(&oauth.url);
    let r1 = oauth.mint(BASIC_ID);
    moto.create_secret(ID, &r1);
    for f in &row.faults {
        match f {
            Fault::Aws(rule) => aws_proxy.fault(rule.clone()),
            _ => unreachable!(),
        }
    }
    let bin = Bin::actions(&["rotate"]);
    let (age_id, recipient) = age_key(bin.dir());
    let bin = bin
        .env("INPUT_PROVIDER", "oauth2")
        .env("INPUT_TOKEN_URL", token_proxy.token_url())
        .env("INPUT_CLIENT_ID", BASIC_ID)
        .env("INPUT_CLIENT_SECRET", BASIC_SECRET)
        .env("INPUT_REFRESH_TOKEN", &r1)
        .envs(moto.env())
        .env("AWS_ENDPOINT_URL", &aws_proxy.url)
        .env("INPUT_TARGET", "aws-secrets-manager")
        .env("INPUT_AWS_SECRET_ID", ID)
        .env("INPUT_RESCUE_RECIPIENT", &recipient)
        .env("INPUT_LOG_LEVEL", "debug")
        .env("RUNNER_DEBUG", "1")
        .envs(row.env.clone());
    let (exit, stdout, stderr, dir) = run_bin(bin, None, &|_| false);
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("secret-rotator-report.json")).unwrap_or_default(),
    )
    .unwrap_or(Value::Null);
    let rotation = &report["rotations"][0];
    let stored = moto.value(ID, "AWSCURRENT");
    let rescued = rotation["rescue_file"]
        .as_str()
        .map(|f| age_decrypt(&age_id, &dir.path().join(Path::new(f).file_name().unwrap())));
    let alive = |t: &str| oauth.active(t);
    let kept = match row.kept {
        Kept::Untouched if stored.as_deref() == Some(r1.as_str()) && alive(&r1) => Ok(()),
        Kept::Stored if stored.as_deref().is_some_and(|s| s != r1 && alive(s)) => Ok(()),
        Kept::Rescued if rescued.as_deref().is_some_and(alive) && rotation["status"] == "critical" => Ok(()),
        other => Err(format!(
            "expected {other:?}: stored is the old one {:?}, rescued {}, status {}",
            stored.as_deref().map(|s| s == r1),
            rescued.is_some(),
            rotation["status"]
        )),
    };
    // One version per value written (created, the preflight's, the write's): a retried write
    // adds none, and the current version is the one the new value's token names.
    let versions = moto.versions(ID);
    let current_id = versions
        .iter()
        .find(|v| v["VersionStages"].as_array().is_some_and(|s| s.iter().any(|x| x == "AWSCURRENT")))
        .and_then(|v| v["VersionId"].as_str().map(str::to_owned));
    let kept = kept.and_then(|()| match (&stored, row.kept) {
        _ if versions.len() > 3 => Err(format!("{} versions: a retry made a second one", versions.len())),
        (Some(s), Kept::Stored) if current_id.as_deref() != Some(request_token(&Secret::new(s.as_str())).as_str()) => {
            Err("the current version is not the new value's token".to_owned())
        }
        _ => Ok(()),
    });
    let mut values: Vec<String> = vec![r1.clone(), BASIC_SECRET.to_owned(), AWS_SECRET_KEY.to_owned()];
    values.extend(token_proxy.issued());
    values.extend(stored);
    values.extend(rescued);
    let token_requests = token_proxy.requests().iter().filter(|r| r["path"] == "/token").count();
    Outcome { exit, kept, leaked: leaks(dir.path(), &stdout, &stderr, &values), token_requests }
}

#[test]
fn every_fault_at_every_stage_loses_nothing_and_leaks_nothing() {
    let rows = rows();
    assert!(rows.len() >= 40, "{} rows", rows.len());
    let oauth = OAuth::start();
    let results: Vec<(Row, Outcome)> = std::thread::scope(|s| {
        let chunks: Vec<Vec<Row>> = (0..4).map(|i| rows.iter().skip(i).step_by(4).cloned().collect()).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let oauth = &oauth;
                s.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|row| {
                            let out = match row.provider {
                                Provider::OAuth2 => run_oauth_row(&row, oauth),
                                Provider::GitlabToken => run_gitlab_row(&row),
                                Provider::VaultToken => run_vault_row(&row),
                                Provider::OAuth2IntoAws => run_aws_row(&row, oauth),
                            };
                            (row, out)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    // The table in the rows' order (the threads took every fourth row each).
    let mut results = results;
    results.sort_by_key(|(row, _)| rows.iter().position(|r| r.name == row.name));

    let mut table =
        String::from("| case | exit (expected) | credential | leaked | token requests |\n|---|---|---|---|---|\n");
    let (mut wrong_exit, mut lost, mut leaked, mut repeated) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for (row, out) in &results {
        let exit_ok = out.exit == row.exit;
        wrong_exit += usize::from(!exit_ok);
        lost += usize::from(out.kept.is_err());
        leaked += usize::from(!out.leaked.is_empty());
        repeated += usize::from(out.token_requests > 1);
        table.push_str(&format!(
            "| {} | {} ({}) | {:?}: {} | {} | {} |\n",
            row.name,
            out.exit,
            row.exit,
            row.kept,
            if out.kept.is_ok() { "ok" } else { "LOST" },
            if out.leaked.is_empty() { "no" } else { "YES" },
            out.token_requests
        ));
        if !exit_ok || out.kept.is_err() || !out.leaked.is_empty() || out.token_requests > 1 {
            failures.push(format!(
                "{}: exit {} (expected {}); {:?}; leaks {:?}; {} token requests",
                row.name, out.exit, row.exit, out.kept, out.leaked, out.token_requests
            ));
        }
    }
    let totals = format!(
        "fault matrix: {} cases, {lost} lost, {leaked} leaked, {wrong_exit} wrong exit codes, {repeated} repeated token requests",
        results.len()
    );
    table.push_str(&format!("\n{totals}\n"));
    std::fs::write(root().join("target/fault-matrix.md"), &table).unwrap();
    println!("{totals}");
    assert!(failures.is_empty(), "{totals}\n{}", failures.join("\n"));
}
