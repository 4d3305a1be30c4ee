//! `http::parse_retry_after` and `http::retry_delay` over fuzzed header values, statuses and
//! bodies: never a panic, and every delay is finite and bounded (a server cannot make the
//! product wait past `MAX_WAIT`... or, when it asks for longer, the caller stops retrying).
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use fuzz_support::response;
use libfuzzer_sys::fuzz_target;
use secret_rotator::http::{parse_retry_after, retry_delay};

#[derive(Debug, Arbitrary)]
struct Input {
    status: u16,
    retry_after: Option<String>,
    remaining: Option<String>,
    reset: Option<String>,
    rate_limit_body: bool,
    body: String,
    attempt: u32,
}

fuzz_target!(|data: &[u8]| {
    // The bytes as one header value.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(d) = parse_retry_after(text) {
            assert!(d.as_secs_f64().is_finite());
        }
    }
    let Ok(i) = Input::arbitrary(&mut Unstructured::new(data)) else { return };
    let status = 100 + i.status % 900;
    let mut headers = Vec::new();
    if let Some(v) = &i.retry_after {
        headers.push(("retry-after", v.as_str()));
        if let Some(d) = parse_retry_after(v) {
            assert!(d.as_secs_f64().is_finite());
        }
    }
    if let Some(v) = &i.remaining {
        headers.push(("x-ratelimit-remaining", v.as_str()));
    }
    if let Some(v) = &i.reset {
        headers.push(("x-ratelimit-reset", v.as_str()));
    }
    let body = if i.rate_limit_body { format!("{} API rate limit exceeded", i.body) } else { i.body.clone() };
    let r = response(status, &headers, body.into_bytes());
    if let Some(d) = retry_delay(&r, i.attempt) {
        assert!(d.as_secs_f64().is_finite(), "{d:?}");
        // Only 429, 403 and 5xx are ever retried.
        assert!(status == 429 || status == 403 || matches!(status, 500 | 502 | 503 | 504), "{status} retried");
    }
    if !(matches!(status, 403 | 429 | 500 | 502 | 503 | 504)) {
        assert_eq!(retry_delay(&r, i.attempt), None, "{status}");
    }
});
