//! The oauth2 provider's `rotate` against fuzzed token-endpoint answers (status, headers, body
//! or a transport error; more answers when it retries a request that never left).
//!
//! Invariants: never a panic; `Ok` holds a non-empty credential and access token, `changed`
//! exactly when the refresh token differs from the current one; an error is one line and never
//! holds the refresh token or the client secret; the request reaches the endpoint once (only a
//! request that never left is sent again); "not used" (`maybe_consumed: false`) is said only
//! when the request surely never left; `Rejected`/`Refused` only after a response.
#![no_main]

use std::collections::VecDeque;
use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use fuzz_support::{
    assert_not_in, assert_one_line, block_on, decode, json, Answer, Fail, Raw, Reply, Scripted, TEXT_MAGIC,
};
use libfuzzer_sys::fuzz_target;
use secret_rotator::config::{self, RunOptions};
use secret_rotator::http::{Http, Shutdown};
use secret_rotator::inputs::{Env, Inputs};
use secret_rotator::providers::ProviderError;

const REFRESH: &str = "r1-OLDREFRESH-0123456789";
const CLIENT_SECRET: &str = "cs-CLIENTSECRET-0123456789";

#[derive(Debug, Arbitrary)]
struct Opts {
    client_auth: u8,
    scope: bool,
}

fuzz_target!(|data: &[u8]| {
    fuzz_support::quiet_logs();
    // Binary: the options, then the answers; or a readable script (seed files).
    let (bytes, text) = decode(data);
    let mut u = Unstructured::new(&bytes);
    let Ok(opts) = Opts::arbitrary(&mut u) else { return };
    let mut script = if data.starts_with(TEXT_MAGIC) { text } else { VecDeque::new() };
    // The answers: mostly fuzzed responses, sometimes transport errors.
    while !data.starts_with(TEXT_MAGIC) && !u.is_empty() && script.len() < 4 {
        let r = match u8::arbitrary(&mut u).unwrap_or(0) {
            0..=31 => Fail::arbitrary(&mut u).map(Reply::Fail),
            _ => Raw::arbitrary(&mut u).map(Reply::Raw),
        };
        match r {
            Ok(r) => script.push_back(r),
            Err(_) => break,
        }
    }

    let mut vars = vec![
        ("INPUT_PROVIDER", "oauth2"),
        ("INPUT_TOKEN_URL", "http://127.0.0.1:9/token"),
        ("INPUT_CLIENT_ID", "fuzz-client"),
        ("INPUT_REFRESH_TOKEN", REFRESH),
        ("INPUT_TARGET", "github"),
        ("INPUT_SECRET_NAME", "FUZZ_REFRESH_TOKEN"),
        ("INPUT_REPOSITORY", "acme/app"),
        ("INPUT_GITHUB_TOKEN", "ghp_GITHUBTOKEN0123456789"),
        ("GITHUB_API_URL", "http://127.0.0.1:9"),
    ];
    match opts.client_auth % 3 {
        0 => vars.push(("INPUT_CLIENT_SECRET", CLIENT_SECRET)),
        1 => vars.extend([("INPUT_CLIENT_SECRET", CLIENT_SECRET), ("INPUT_CLIENT_AUTH", "post")]),
        _ => {}
    }
    if opts.scope {
        vars.push(("INPUT_SCOPE", "read write"));
    }
    let env = Env::from_pairs(vars);
    let inputs = Inputs::collect(config::table(), &Default::default(), &env);
    let plan = config::build(&inputs, &env, &RunOptions::default()).expect("the fixed inputs are valid");
    let provider = &plan.rotations[0].provider;

    let transport = Arc::new(Scripted::new(script, |_| {
        json(200, serde_json::json!({"access_token": "at-canonical-0123", "refresh_token": "NEWSECRET-canonical-0123"}))
    }));
    let (_keep, shutdown) = Shutdown::new();
    let http = Http::with_transport(transport.clone(), shutdown);
    let result = block_on(provider.rotate(&http));
    let seen = transport.seen();

    // Sent once: every attempt but the last never left.
    assert!(!seen.is_empty(), "no request");
    for s in &seen[..seen.len() - 1] {
        assert_eq!(s.answer, Answer::Failed("NotSent"), "the refresh request was sent again after {:?}", s.answer);
    }
    let last = &seen[seen.len() - 1].answer;
    match result {
        Ok(r) => {
            assert!(!r.credential.is_empty(), "an empty credential");
            assert!(r.access_token.as_ref().is_some_and(|a| !a.is_empty()), "no access token");
            assert_eq!(r.changed, r.credential.expose() != REFRESH, "changed is wrong");
            assert!(matches!(last, Answer::Status(s) if (200..300).contains(s)), "Ok after {last:?}");
        }
        Err(e) => {
            let text = e.to_string();
            assert_one_line("a token endpoint error", &text);
            assert_not_in("a token endpoint error", &text, REFRESH);
            if opts.client_auth % 3 != 2 {
                assert_not_in("a token endpoint error", &text, CLIENT_SECRET);
            }
            match &e {
                ProviderError::Failed { maybe_consumed: false, .. } => assert!(
                    matches!(last, Answer::Failed("NotSent" | "Tls")),
                    "said the refresh token was not used after {last:?}: {text}"
                ),
                ProviderError::Failed { maybe_consumed: true, .. } => assert!(
                    !matches!(last, Answer::Failed("NotSent" | "Tls")),
                    "said the refresh token may be used after {last:?}: {text}"
                ),
                ProviderError::Rejected(_) | ProviderError::Refused(_) => {
                    assert!(matches!(last, Answer::Status(_)), "{e:?} after {last:?}")
                }
            }
        }
    }
});
