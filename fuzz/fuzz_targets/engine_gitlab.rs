//! The whole engine, `engine::run`, for a gitlab-token rotation into a GitLab CI/CD variable,
//! over a server whose every answer the fuzz input chooses. The first bytes choose the plan:
//! token kind (personal, project, group), a separate writer token (none, PRIVATE-TOKEN,
//! bearer), project or group variable, `min_age`, masked / masked_and_hidden, environment
//! scope, a dry run.
//!
//! Invariants (besides `fuzz_support::engine::check_outcome`): the rotate request is sent once
//! (GitLab revokes the whole family when a rotated token rotates again); never in a dry run,
//! after a failed check or preflight, or a skip; once GitLab has answered the rotation, the old
//! token (revoked by then) is never presented again; a variable reported written was last
//! written with the new token's value.
#![no_main]

use std::sync::{Arc, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use fuzz_support::engine::{check_outcome, check_sent_once};
use fuzz_support::{block_on, decode, json, script, Scripted, TEXT_MAGIC};
use libfuzzer_sys::fuzz_target;
use secret_rotator::config::{self, RunOptions};
use secret_rotator::engine::{self, Context};
use secret_rotator::http::{Http, Method, Request, Response, Shutdown};
use secret_rotator::inputs::{Env, Inputs};
use secret_rotator::report::{RotationStatus, TargetStatus};

const TOKEN: &str = "glpat-OLDTOKEN-0123456789";
const WRITER: &str = "glpat-WRITER-0123456789";
const NEW_TOKEN: &str = "glpat-NEWSECRET-canonical-0123";

#[derive(Debug, Arbitrary)]
struct Opts {
    token_kind: u8,
    writer: u8,
    group_target: bool,
    min_age: bool,
    masking: u8,
    environment_scope: bool,
    dry_run: bool,
}

fn canonical(req: &Request) -> Response {
    let path = req.url.path();
    let token_info = serde_json::json!({
        "active": true, "revoked": false, "scopes": ["api"],
        "created_at": "2020-01-01T00:00:00Z", "expires_at": "2030-01-01",
    });
    match req.method.clone() {
        Method::GET if path.ends_with("/personal_access_tokens/self") => json(200, token_info),
        Method::POST if path.ends_with("/self/rotate") => json(
            200,
            serde_json::json!({"token": NEW_TOKEN, "active": true, "scopes": ["api"], "expires_at": "2030-01-01"}),
        ),
        Method::GET if path.ends_with("/variables") => json(200, serde_json::json!([])),
        Method::GET if path.contains("/variables/") => {
            json(200, serde_json::json!({"key": "DEPLOY_TOKEN", "hidden": false, "masked": true}))
        }
        Method::PUT if path.contains("/variables/") => json(200, serde_json::json!({"key": "DEPLOY_TOKEN"})),
        Method::POST if path.ends_with("/variables") => json(201, serde_json::json!({"key": "DEPLOY_TOKEN"})),
        _ => json(404, serde_json::json!({"message": "404 Not Found"})),
    }
}

fn rescue_dir() -> std::path::PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("tempdir")).path().to_owned()
}

fuzz_target!(|data: &[u8]| {
    fuzz_support::quiet_logs();
    // Binary: the plan options, then the answers; or a readable script (seed files).
    let (bytes, text) = decode(data);
    let mut u = Unstructured::new(&bytes);
    let Ok(opts) = Opts::arbitrary(&mut u) else { return };
    let script = if data.starts_with(TEXT_MAGIC) { text } else { script(&mut u) };

    let mut vars = vec![
        ("INPUT_PROVIDER", "gitlab-token"),
        ("INPUT_TOKEN", TOKEN),
        ("INPUT_TARGET", "gitlab"),
        ("INPUT_VARIABLE_NAME", "DEPLOY_TOKEN"),
        ("CI_API_V4_URL", "http://127.0.0.1:9/api/v4"),
    ];
    match opts.token_kind % 3 {
        0 => vars.push(("INPUT_TOKEN_KIND", "personal")),
        1 => vars.extend([("INPUT_TOKEN_KIND", "project"), ("INPUT_TOKEN_OWNER", "acme/app")]),
        _ => vars.extend([("INPUT_TOKEN_KIND", "group"), ("INPUT_TOKEN_OWNER", "acme")]),
    }
    match opts.writer % 3 {
        0 => {}
        1 => vars.push(("INPUT_GITLAB_TOKEN", WRITER)),
        _ => vars.extend([("INPUT_GITLAB_TOKEN", WRITER), ("INPUT_GITLAB_TOKEN_TYPE", "bearer")]),
    }
    vars.push(if opts.group_target { ("INPUT_GROUP", "acme") } else { ("INPUT_PROJECT", "acme/app") });
    match opts.masking % 3 {
        0 => {}
        1 => vars.push(("INPUT_MASKED", "false")),
        _ => vars.push(("INPUT_MASKED_AND_HIDDEN", "true")),
    }
    if opts.environment_scope {
        vars.push(("INPUT_ENVIRONMENT_SCOPE", "production"));
    }
    if opts.min_age {
        vars.push(("INPUT_MIN_AGE", "20h"));
    }
    if opts.dry_run {
        vars.push(("INPUT_DRY_RUN", "true"));
    }
    let env = Env::from_pairs(vars);
    let inputs = Inputs::collect(config::table(), &Default::default(), &env);
    let plan = config::build(&inputs, &env, &RunOptions::default()).expect("the fixed inputs are valid");

    let transport = Arc::new(Scripted::new(script, canonical));
    let (_keep, shutdown) = Shutdown::new();
    let http = Http::with_transport(transport.clone(), shutdown);
    let mask = |_: &secret_rotator::secret::Secret| {};
    let ctx = Context { http: &http, mask: &mask, rescue_dir: rescue_dir(), received_at: jiff::Timestamp::now() };
    let outcome = block_on(engine::run(&plan, &ctx));
    let seen = transport.seen();

    // GitLab answered the rotation with the very token it rotated (revoked by then), and the run
    // took it as new: a finding (fuzz/README.md, same-token); tolerated, such a run is not checked.
    if outcome.issued.first().is_some_and(|s| s.expose() == TOKEN) {
        if fuzz_support::allowed("same-token") {
            return;
        }
        panic!(
            "GitLab answered the rotation with the token it rotated, and the run went on with it: {}",
            serde_json::to_string(&outcome.report).unwrap_or_default()
        );
    }

    // The run's own secrets (a server may say any other text, the unused writer token's too).
    let writer = (opts.writer % 3 != 0).then_some(WRITER);
    check_outcome(&outcome, "token", &[Some(TOKEN), writer].into_iter().flatten().collect::<Vec<_>>());

    let rep = &outcome.report.rotations[0];
    let rotates: Vec<_> = seen.iter().filter(|s| s.method == "POST" && s.path.ends_with("/self/rotate")).collect();
    check_sent_once(&rotates);
    let preflight_failed = rep.error.as_deref().is_some_and(|e| e.starts_with("preflight failed"));
    if opts.dry_run || preflight_failed || matches!(rep.status, RotationStatus::Skipped | RotationStatus::Planned) {
        assert!(rotates.is_empty(), "the token was rotated: dry run {}, status {:?}", opts.dry_run, rep.status);
    }

    // Once GitLab answered the rotation, the old token is revoked: it is never presented again.
    if let Some(at) = seen.iter().position(|s| s.method == "POST" && s.path.ends_with("/self/rotate") && s.ok()) {
        for s in &seen[at + 1..] {
            assert_ne!(s.credential(), Some(TOKEN), "the revoked token was presented again: {} {}", s.method, s.url);
        }
    }

    // A variable reported written was last written (accepted) with the new token.
    let credential = outcome.issued.first().map(|s| s.expose().to_owned());
    for t in rep.targets.iter().filter(|t| t.status == TargetStatus::Written) {
        let last = seen
            .iter()
            .rev()
            .find(|s| (s.method == "PUT" || s.method == "POST") && s.path.contains("/variables") && s.ok());
        let last = last.unwrap_or_else(|| panic!("{} reported written, but no write was accepted", t.target));
        let body: serde_json::Value =
            serde_json::from_slice(last.body.as_deref().unwrap_or_default()).unwrap_or_default();
        assert_eq!(
            body.get("value").and_then(|v| v.as_str()).map(str::to_owned),
            credential,
            "{} holds another value than it should",
            t.target
        );
    }
});
