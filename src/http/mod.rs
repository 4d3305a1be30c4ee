//! The one HTTP client: TLS via rustls, https only except loopback, connect and total timeouts
//! on every request, capped response bodies, same-origin redirects only, and the retry policy
//! (backoff with jitter, `Retry-After`, GitHub's rate-limit headers).
//!
//! Modules describe a request as a [`Request`] value and send it through [`Http`], which sends
//! it through a [`Transport`]: reqwest in production, a scripted fake in unit tests
//! ([`testing::Fake`]), so each module's exact requests and the engine's order are testable
//! without a network.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use tokio::sync::watch;

use crate::log;

mod message;
#[cfg(test)]
pub mod testing;
pub mod tls;
mod transport;

pub use message::{Request, Response};
pub use reqwest::Method;
pub use tls::{ClientIdentity, UpstreamTls};
pub use transport::{Reqwest, Transport};

/// Largest response body read; anything longer is an error (no API here returns more).
pub const MAX_BODY: usize = 1024 * 1024;
/// Attempts for a retried request (the first one included).
pub const MAX_ATTEMPTS: u32 = 5;
/// Rate-limit answers a paced request may get, beyond its [`MAX_ATTEMPTS`].
pub const MAX_LIMITED: u32 = 20;
/// Longest single wait a server may ask for before a retry; longer asks end the retries.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// Attempts of an unrepeated request whose connection could not be made.
const CONNECT_ATTEMPTS: u32 = 3;
const BASE_DELAY: Duration = Duration::from_millis(400);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// A request that produced no response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    /// The connection was never made: the request surely did not reach the server.
    #[error("could not connect: {0}")]
    NotSent(String),
    /// The server's certificate was refused: the request was never sent, and retrying will not help.
    #[error(
        "TLS: {0} (for a private CA, pass it with ca_file or SSL_CERT_FILE; for a server that asks for a client \
         certificate, set client_cert and client_key)"
    )]
    Tls(String),
    /// No complete response in time: the request may have been processed.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The connection failed after the request may have been sent.
    #[error("connection failed: {0}")]
    Transport(String),
    /// The response body exceeded [`MAX_BODY`].
    #[error("response body larger than {MAX_BODY} bytes")]
    TooLarge,
    /// Retries were cut short by a termination signal.
    #[error("interrupted by a termination signal")]
    Interrupted,
}

impl HttpError {
    /// True when the request surely never reached the server.
    pub fn never_sent(&self) -> bool {
        matches!(self, HttpError::NotSent(_) | HttpError::Tls(_))
    }
}

/// The outcome of a retried request: the last result and how many attempts it took.
#[derive(Debug)]
pub struct Attempted {
    /// The final response (possibly an error status) or error.
    pub result: Result<Response, HttpError>,
    /// Attempts made.
    pub attempts: u32,
    /// Some attempt got no answer after its request may have reached the server (a timeout, a
    /// dropped connection, an oversized answer): a write may have landed whatever the last
    /// attempt says.
    pub unanswered: bool,
}

/// Set when SIGTERM/SIGINT arrives: retries stop waiting.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A shutdown flag and its trigger.
    pub fn new() -> (watch::Sender<bool>, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (tx, Shutdown(rx))
    }

    /// True once a signal arrived.
    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Sleeps for `d`; returns false when a signal cut it short.
    pub async fn sleep(&self, d: Duration) -> bool {
        let mut rx = self.0.clone();
        if *rx.borrow() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = rx.wait_for(|v| *v) => false,
        }
    }
}

/// The shared client: a transport, the retry policy, and the shutdown flag.
#[derive(Clone)]
pub struct Http {
    transport: Arc<dyn Transport>,
    shutdown: Shutdown,
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http").finish_non_exhaustive()
    }
}

impl Http {
    /// The production client.
    pub fn new(timeout: Duration, ca_pem: Option<&[u8]>, shutdown: Shutdown) -> Result<Http, String> {
        Ok(Http::with_transport(Arc::new(Reqwest::new(timeout, ca_pem)?), shutdown))
    }

    /// A client over any transport (tests pass a fake).
    pub fn with_transport(transport: Arc<dyn Transport>, shutdown: Shutdown) -> Http {
        Http { transport, shutdown }
    }

    /// The shutdown flag.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Sends one request once.
    pub async fn send(&self, req: &Request) -> Result<Response, HttpError> {
        self.transport.send(req).await
    }

    /// Sends a request that must reach the server at most once (a rotation: presenting a spent
    /// credential again can revoke its whole family). It is repeated only when the connection was
    /// never made, so the server surely never saw it.
    pub async fn send_unrepeated(&self, what: &str, req: &Request) -> Result<Response, HttpError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.send(req).await {
                Err(e @ HttpError::NotSent(_)) if attempt < CONNECT_ATTEMPTS => {
                    log::warn(&format!("{what}: {e}; it never received the request, retrying"));
                    if !self.shutdown.sleep(backoff(attempt)).await {
                        return Err(e);
                    }
                }
                other => return other,
            }
        }
    }

    /// Sends a request that is safe to repeat (a PUT of the same value, a GET), retrying
    /// transport failures, 5xx, 429 and GitHub's rate-limit 403s with backoff and jitter,
    /// honouring `Retry-After` and `x-ratelimit-reset`. A termination signal stops the retries.
    pub async fn send_idempotent(&self, what: &str, req: &Request) -> Attempted {
        self.send_retried(what, &|| req.clone(), |_| false).await
    }

    /// [`Http::send_idempotent`] for a request that is built anew for every attempt (`build`: a
    /// signature that holds the time it was made), where `also_retry` names the answers of a
    /// service that are worth retrying although their status says otherwise (a throttling
    /// error sent as HTTP 400).
    pub async fn send_retried(
        &self,
        what: &str,
        build: &(dyn Fn() -> Request + Sync),
        also_retry: fn(&Response) -> bool,
    ) -> Attempted {
        self.retry(what, build, also_retry, &Unpaced).await
    }

    /// [`Http::send_idempotent`], with every attempt admitted by `pace` first (a service's
    /// own limits) and its answer shown to it.
    pub async fn send_paced<P: Pace>(&self, what: &str, req: &Request, pace: &P) -> Attempted {
        self.retry(what, &|| req.clone(), |_| false, pace).await
    }

    /// The retry loop. A rate-limit answer that the pacer holds every request for is retried
    /// without counting against [`MAX_ATTEMPTS`], up to [`MAX_LIMITED`] times.
    async fn retry<P: Pace>(
        &self,
        what: &str,
        build: &(dyn Fn() -> Request + Sync),
        also_retry: fn(&Response) -> bool,
        pace: &P,
    ) -> Attempted {
        let (mut attempts, mut tries, mut limited, mut unanswered) = (0, 0, 0, false);
        loop {
            attempts += 1;
            tries += 1;
            let req = build();
            let (result, held) = match pace.admit(&req, &self.shutdown).await {
                Ok(slot) => {
                    let result = self.send(&req).await;
                    drop(slot);
                    let held = pace.observe(&result, tries);
                    (result, held)
                }
                Err(e) => return Attempted { result: Err(e), attempts, unanswered },
            };
            drop(req);
            if let Err(e) = &result {
                unanswered |= !e.never_sent() && !matches!(e, HttpError::Interrupted);
            }
            if held && limited < MAX_LIMITED {
                // The pacer waits for the limit's end before admitting anything again.
                limited += 1;
                tries -= 1;
                log::debug(&format!("{what}: a rate limit refused it; it goes again when the limit allows"));
                continue;
            }
            let wait = match &result {
                Ok(r) => retry_delay(r, tries).or_else(|| also_retry(r).then(|| backoff(tries))),
                Err(HttpError::TooLarge | HttpError::Interrupted | HttpError::Tls(_)) => None,
                Err(_) => Some(backoff(tries)),
            };
            let Some(wait) = wait else {
                return Attempted { result, attempts, unanswered };
            };
            if tries >= MAX_ATTEMPTS || wait > MAX_WAIT {
                return Attempted { result, attempts, unanswered };
            }
            let why = match &result {
                Ok(r) => format!("HTTP {}", r.status.as_u16()),
                Err(e) => e.to_string(),
            };
            log::warn(&format!("{what}: {why}; retry {tries} of {} in {:.1}s", MAX_ATTEMPTS - 1, wait.as_secs_f64()));
            if !self.shutdown.sleep(wait).await {
                let result = match result {
                    Ok(r) => Ok(r),
                    Err(_) => Err(HttpError::Interrupted),
                };
                return Attempted { result, attempts, unanswered };
            }
        }
    }
}

/// A service's own limits on its requests (GitHub's secondary rate limits): each attempt waits
/// for `admit`, holds its slot while in flight, and its answer goes to `observe`.
#[async_trait::async_trait]
pub trait Pace: Send + Sync {
    /// Held while the attempt is in flight.
    type Slot: Send;
    /// Waits until the next attempt of `req` may start.
    async fn admit(&self, req: &Request, shutdown: &Shutdown) -> Result<Self::Slot, HttpError>;
    /// Learns from an attempt's answer; true when it was a limit answer that the pacer now
    /// holds every request for (so the retry needs no wait of its own).
    fn observe(&self, result: &Result<Response, HttpError>, attempt: u32) -> bool;
}

/// No limits of a service's own.
pub struct Unpaced;

#[async_trait::async_trait]
impl Pace for Unpaced {
    type Slot = ();
    async fn admit(&self, _req: &Request, _shutdown: &Shutdown) -> Result<(), HttpError> {
        Ok(())
    }
    fn observe(&self, _result: &Result<Response, HttpError>, _attempt: u32) -> bool {
        false
    }
}

/// How long to wait before retrying this response, or `None` when it is final.
pub fn retry_delay(r: &Response, attempt: u32) -> Option<Duration> {
    let status = r.status.as_u16();
    let retry_after = r.headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
    let remaining = header_u64(&r.headers, "x-ratelimit-remaining");
    let reset = header_u64(&r.headers, "x-ratelimit-reset");
    let rate_limited = status == 429
        || (status == 403
            && (retry_after.is_some()
                || remaining == Some(0)
                || String::from_utf8_lossy(&r.body).to_ascii_lowercase().contains("rate limit")));
    if rate_limited {
        if let Some(d) = retry_after {
            return Some(d);
        }
        if remaining == Some(0) {
            if let Some(reset) = reset {
                let now = jiff::Timestamp::now().as_second().max(0) as u64;
                return Some(Duration::from_secs(reset.saturating_sub(now) + 1));
            }
        }
        // GitHub: a secondary rate limit without a header asks for at least a minute.
        return Some(if status == 403 { Duration::from_secs(60) } else { backoff(attempt) });
    }
    match status {
        500 | 502 | 503 | 504 => Some(retry_after.unwrap_or_else(|| backoff(attempt))),
        _ => None,
    }
}

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// `Retry-After`: seconds, or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    let secs = when.as_second() - now.as_second();
    Some(Duration::from_secs(secs.max(0) as u64))
}

/// Exponential backoff with jitter: half the step fixed, half random.
pub fn backoff(attempt: u32) -> Duration {
    let step = BASE_DELAY.saturating_mul(1 << attempt.saturating_sub(1).min(6)).min(MAX_BACKOFF);
    let half = step / 2;
    let jitter = half.mul_f64(random_unit());
    half + jitter
}

fn random_unit() -> f64 {
    use crypto_box::aead::rand_core::RngCore;
    let n = crypto_box::aead::OsRng.next_u32();
    f64::from(n) / f64::from(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, headers: &[(&'static str, &str)], body: &str) -> Response {
        testing::response(status, body, headers)
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn which_responses_are_retried() {
        assert_eq!(retry_delay(&resp(429, &[("retry-after", "3")], ""), 1), Some(Duration::from_secs(3)));
        assert_eq!(retry_delay(&resp(403, &[("retry-after", "2")], ""), 1), Some(Duration::from_secs(2)));
        assert_eq!(
            retry_delay(&resp(403, &[], "You have exceeded a secondary rate limit"), 1),
            Some(Duration::from_secs(60))
        );
        assert!(retry_delay(&resp(503, &[], ""), 1).is_some());
        assert_eq!(retry_delay(&resp(403, &[], "Resource not accessible by integration"), 1), None);
        assert_eq!(retry_delay(&resp(404, &[], ""), 1), None);
        assert_eq!(retry_delay(&resp(422, &[], ""), 1), None);
        assert_eq!(retry_delay(&resp(201, &[], ""), 1), None);
    }

    #[test]
    fn rate_limit_reset_is_waited_for() {
        let reset = (jiff::Timestamp::now().as_second() + 5).to_string();
        let d =
            retry_delay(&resp(403, &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &reset)], ""), 1).unwrap();
        assert!(d >= Duration::from_secs(4) && d <= Duration::from_secs(7), "{d:?}");
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        for attempt in 1..10 {
            let d = backoff(attempt);
            assert!(d <= MAX_BACKOFF, "{d:?}");
            assert!(d >= BASE_DELAY / 2, "{d:?}");
        }
        assert!(backoff(4) >= Duration::from_millis(1600));
    }
}
