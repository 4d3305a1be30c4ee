//! The whole engine, `engine::run`, for an oauth2 rotation into GitHub secrets, over a server
//! whose every answer the fuzz input chooses (a valid answer, a fuzzed response, or a transport
//! error). The first bytes choose the plan: client auth, an access-token secret, `min_age`,
//! `verify_url`, a dry run, and the secret's scope (repository, environment, org, org with
//! selected repositories).
//!
//! Invariants (besides `fuzz_support::engine::check_outcome`): the refresh request is sent
//! once; never in a dry run, never after a failed preflight or a skip; a target reported
//! written holds exactly the value it should (the canonical key's sealed boxes are opened).
#![no_main]

use std::sync::{Arc, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use fuzz_support::engine::{check_outcome, check_sent_once};
use fuzz_support::{block_on, decode, github_key_json, json, open_github_put, response, script, Scripted, TEXT_MAGIC};
use libfuzzer_sys::fuzz_target;
use secret_rotator::config::{self, RunOptions};
use secret_rotator::engine::{self, Context};
use secret_rotator::http::{Http, Method, Request, Response, Shutdown};
use secret_rotator::inputs::{Env, Inputs};
use secret_rotator::report::{RotationStatus, TargetStatus};

const REFRESH: &str = "r1-OLDREFRESH-0123456789";
const CLIENT_SECRET: &str = "cs-CLIENTSECRET-0123456789";
const GITHUB_TOKEN: &str = "ghp_GITHUBTOKEN0123456789";
const NEW_REFRESH: &str = "NEWSECRET-canonical-refresh-0123";
const NEW_ACCESS: &str = "NEWSECRET-canonical-access-0123";

#[derive(Debug, Arbitrary)]
struct Opts {
    client_auth: u8,
    access_secret: bool,
    min_age: bool,
    verify: bool,
    dry_run: bool,
    scope: u8,
}

fn canonical(req: &Request) -> Response {
    let path = req.url.path();
    match (req.method.clone(), path) {
        (Method::POST, "/token") => json(
            200,
            serde_json::json!({"access_token": NEW_ACCESS, "refresh_token": NEW_REFRESH, "expires_in": 3600, "token_type": "bearer"}),
        ),
        (Method::GET, p) if p.ends_with("/secrets/public-key") => json(200, github_key_json()),
        (Method::PUT, p) if p.contains("/secrets/") => response(201, &[], Vec::new()),
        (Method::GET, p) if p.contains("/secrets/") => {
            json(200, serde_json::json!({"name": "X", "updated_at": "2020-01-01T00:00:00Z"}))
        }
        (Method::GET, "/repos/acme/app") => json(200, serde_json::json!({"id": 1})),
        (Method::GET, "/repos/acme/api") => json(200, serde_json::json!({"id": 2})),
        (Method::GET, "/verify") => json(200, serde_json::json!({})),
        _ => json(404, serde_json::json!({"message": "Not Found"})),
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
        ("INPUT_PROVIDER", "oauth2"),
        ("INPUT_TOKEN_URL", "http://127.0.0.1:9/token"),
        ("INPUT_CLIENT_ID", "fuzz-client"),
        ("INPUT_REFRESH_TOKEN", REFRESH),
        ("INPUT_TARGET", "github"),
        ("INPUT_SECRET_NAME", "FUZZ_REFRESH_TOKEN"),
        ("INPUT_GITHUB_TOKEN", GITHUB_TOKEN),
        ("GITHUB_API_URL", "http://127.0.0.1:9"),
    ];
    match opts.client_auth % 3 {
        0 => vars.push(("INPUT_CLIENT_SECRET", CLIENT_SECRET)),
        1 => vars.extend([("INPUT_CLIENT_SECRET", CLIENT_SECRET), ("INPUT_CLIENT_AUTH", "post")]),
        _ => {}
    }
    match opts.scope % 4 {
        0 => vars.push(("INPUT_REPOSITORY", "acme/app")),
        1 => vars.extend([("INPUT_REPOSITORY", "acme/app"), ("INPUT_ENVIRONMENT", "prod")]),
        2 => vars.push(("INPUT_ORG", "acme")),
        _ => vars.extend([
            ("INPUT_ORG", "acme"),
            ("INPUT_VISIBILITY", "selected"),
            ("INPUT_SELECTED_REPOSITORIES", "app,api"),
        ]),
    }
    if opts.access_secret {
        vars.push(("INPUT_ACCESS_TOKEN_SECRET_NAME", "FUZZ_ACCESS_TOKEN"));
    }
    if opts.min_age {
        vars.push(("INPUT_MIN_AGE", "20h"));
    }
    if opts.verify {
        vars.push(("INPUT_VERIFY_URL", "http://127.0.0.1:9/verify"));
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

    // The run's own secrets (a server may say any other text, an unused client secret's too).
    let client_secret = (opts.client_auth % 3 != 2).then_some(CLIENT_SECRET);
    let known: Vec<&str> = [Some(REFRESH), client_secret, Some(GITHUB_TOKEN)].into_iter().flatten().collect();
    check_outcome(&outcome, "refresh_token", &known);

    let rep = &outcome.report.rotations[0];
    let rotates: Vec<_> = seen.iter().filter(|s| s.method == "POST" && s.path == "/token").collect();
    check_sent_once(&rotates);
    let preflight_failed = rep.error.as_deref().is_some_and(|e| e.starts_with("preflight failed"));
    if opts.dry_run || preflight_failed || matches!(rep.status, RotationStatus::Skipped | RotationStatus::Planned) {
        assert!(rotates.is_empty(), "the refresh token was used: dry run {}, status {:?}", opts.dry_run, rep.status);
    }

    // A target reported written holds its value: the last sealed box it accepted opens to it.
    let credential = outcome.issued.first().map(|s| s.expose().to_owned());
    let access = outcome.access_tokens.first().cloned().flatten().map(|s| s.expose().to_owned());
    for t in rep.targets.iter().filter(|t| t.status == TargetStatus::Written) {
        let name = t.target.rsplit(' ').next().unwrap_or_default();
        let suffix = format!("/secrets/{name}");
        let last = seen.iter().rev().find(|s| s.method == "PUT" && s.path.ends_with(&suffix) && s.ok());
        let last = last.unwrap_or_else(|| panic!("{} reported written, but no write was accepted", t.target));
        let Some(plain) = last.body.as_deref().and_then(open_github_put) else { continue };
        let want = if t.value == "access_token" { access.clone() } else { credential.clone() };
        assert_eq!(Some(plain), want, "{} holds another value than it should", t.target);
    }
});
