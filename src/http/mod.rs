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

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::StatusCode;
use tokio::sync::watch;
use url::Url;
use zeroize::{Zeroize, Zeroizing};

use crate::log;
use crate::secret::{redact, Secret};

#[cfg(test)]
pub mod testing;

pub use reqwest::Method;

/// Largest response body read; anything longer is an error (no API here returns more).
pub const MAX_BODY: usize = 1024 * 1024;
/// Attempts for a retried request (the first one included).
pub const MAX_ATTEMPTS: u32 = 5;
/// Longest single wait a server may ask for before a retry; longer asks end the retries.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// Attempts of an unrepeated request whose connection could not be made.
const CONNECT_ATTEMPTS: u32 = 3;
const BASE_DELAY: Duration = Duration::from_millis(400);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

#[derive(Clone)]
enum HeaderText {
    Plain(String),
    /// A header that carries a credential: marked sensitive on the wire, never printed.
    Secret(Secret),
}

/// A request body: its bytes are zeroized when the last copy is dropped.
#[derive(Clone)]
struct Body {
    content_type: &'static str,
    bytes: Arc<Zeroizing<Vec<u8>>>,
}

/// One HTTP request, described before it is sent (and possibly sent again, unchanged).
#[derive(Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The URL.
    pub url: Url,
    headers: Vec<(&'static str, HeaderText)>,
    body: Option<Body>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(k, v)| match v {
                HeaderText::Plain(v) => format!("{k}: {v}"),
                HeaderText::Secret(_) => format!("{k}: [redacted]"),
            })
            .collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url.as_str())
            .field("headers", &headers)
            .field("body_bytes", &self.body.as_ref().map(|b| b.bytes.len()))
            .finish()
    }
}

/// Zeroizes every string of a JSON value (one that held a secret and has been serialized).
fn scrub_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(scrub_json),
        serde_json::Value::Object(m) => m.iter_mut().for_each(|(_, v)| scrub_json(v)),
        _ => {}
    }
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: Url) -> Self {
        Request { method, url, headers: Vec::new(), body: None }
    }

    /// `GET url`.
    pub fn get(url: Url) -> Self {
        Request::new(Method::GET, url)
    }

    /// `POST url`.
    pub fn post(url: Url) -> Self {
        Request::new(Method::POST, url)
    }

    /// `PUT url`.
    pub fn put(url: Url) -> Self {
        Request::new(Method::PUT, url)
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, HeaderText::Plain(value.into())));
        self
    }

    /// Adds a header whose value is a credential: sent marked sensitive, never printed.
    pub fn secret_header(mut self, name: &'static str, value: Secret) -> Self {
        self.headers.push((name, HeaderText::Secret(value)));
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &Secret) -> Self {
        let value = Secret::new(format!("Bearer {}", token.expose()));
        self.secret_header("authorization", value)
    }

    /// A JSON body. The value is serialized into zeroizing memory, then its strings are zeroized.
    pub fn json(mut self, mut value: serde_json::Value) -> Self {
        let bytes = Zeroizing::new(serde_json::to_vec(&value).unwrap_or_default());
        scrub_json(&mut value);
        self.body = Some(Body { content_type: "application/json", bytes: Arc::new(bytes) });
        self
    }

    /// An `application/x-www-form-urlencoded` body.
    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        let mut text = Zeroizing::new(String::new());
        {
            let mut ser = url::form_urlencoded::Serializer::new(&mut *text);
            for (k, v) in pairs {
                ser.append_pair(k, v);
            }
        }
        let bytes = Zeroizing::new(text.as_bytes().to_vec());
        self.body = Some(Body { content_type: "application/x-www-form-urlencoded", bytes: Arc::new(bytes) });
        self
    }

    /// A header's value (a credential included: for transports and tests).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| match v {
            HeaderText::Plain(v) => v.as_str(),
            HeaderText::Secret(s) => s.expose(),
        })
    }

    /// True when the header carries a credential.
    pub fn is_sensitive(&self, name: &str) -> bool {
        self.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case(name) && matches!(v, HeaderText::Secret(_)))
    }

    /// The body's bytes and content type.
    pub fn body(&self) -> Option<(&'static str, &[u8])> {
        self.body.as_ref().map(|b| (b.content_type, b.bytes.as_slice()))
    }
}

/// A response with its body read (and capped).
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Zeroizing<Vec<u8>>,
}

impl Response {
    /// The body as text, shortened and scrubbed of every known secret, for error messages.
    pub fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let cut: String = one_line.chars().take(300).collect();
        redact(&cut)
    }

    /// What an API says went wrong: its JSON `message` (GitHub, GitLab; a string or a
    /// field-by-field object) or `error`, else the body's start; scrubbed of every known secret.
    pub fn message(&self) -> String {
        let v: Option<serde_json::Value> = serde_json::from_slice(&self.body).ok();
        match v.as_ref().and_then(|v| v.get("message").or_else(|| v.get("error"))) {
            Some(serde_json::Value::String(s)) => redact(s),
            Some(other) => redact(&other.to_string()),
            None => self.snippet(),
        }
    }
}

/// A request that produced no response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    /// The connection was never made: the request surely did not reach the server.
    #[error("could not connect: {0}")]
    NotSent(String),
    /// The server's certificate was refused: the request was never sent, and retrying will not help.
    #[error("TLS: {0} (for a private CA, pass it with ca_file or SSL_CERT_FILE)")]
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

/// Sends one request once and reads its response (body capped at [`MAX_BODY`]). The seam
/// between the modules and the network.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends `req` once.
    async fn send(&self, req: &Request) -> Result<Response, HttpError>;
}

/// The production transport: reqwest with rustls.
#[derive(Debug)]
pub struct Reqwest {
    client: reqwest::Client,
    timeout: Duration,
}

impl Reqwest {
    /// Builds the client. `ca_pem` adds CA certificates to the system's (`SSL_CERT_FILE` is
    /// honoured by the platform verifier).
    pub fn new(timeout: Duration, ca_pem: Option<&[u8]>) -> Result<Reqwest, String> {
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            let same_origin = attempt.previous().last().is_some_and(|prev| prev.origin() == attempt.url().origin());
            if attempt.previous().len() >= 5 || !same_origin {
                // Not followed: the 3xx comes back as the response, and no header travels on.
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("secret-rotator/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .redirect(redirects)
            .pool_idle_timeout(Duration::from_secs(30));
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("CA file: {e}"))?;
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot set up HTTPS (is a CA bundle installed? set SSL_CERT_FILE): {e}"))?;
        Ok(Reqwest { client, timeout })
    }

    fn build(&self, req: &Request) -> Result<reqwest::RequestBuilder, HttpError> {
        let mut headers = HeaderMap::new();
        for (name, value) in &req.headers {
            let (text, sensitive) = match value {
                HeaderText::Plain(v) => (v.as_str(), false),
                HeaderText::Secret(s) => (s.expose(), true),
            };
            let mut v = HeaderValue::from_str(text)
                .map_err(|_| HttpError::NotSent(format!("the {name} header holds characters HTTP does not allow")))?;
            v.set_sensitive(sensitive);
            headers.append(*name, v);
        }
        let mut builder = self.client.request(req.method.clone(), req.url.clone());
        if let Some(body) = &req.body {
            headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static(body.content_type));
            builder = builder.body(body.bytes.to_vec());
        }
        Ok(builder.headers(headers))
    }

    fn classify(&self, e: &reqwest::Error) -> HttpError {
        let text = redact(&error_chain(e));
        if e.is_connect() && is_tls_failure(e) {
            HttpError::Tls(text)
        } else if e.is_connect() {
            HttpError::NotSent(text)
        } else if e.is_timeout() {
            HttpError::Timeout(self.timeout)
        } else {
            HttpError::Transport(text)
        }
    }
}

/// True when the error chain holds a rustls error: the certificate or handshake was refused.
fn is_tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        // An io::Error hides its inner error from `source()` (and may wrap another io::Error).
        let mut inner: &(dyn std::error::Error + 'static) = err;
        loop {
            if inner.downcast_ref::<rustls::Error>().is_some() {
                return true;
            }
            match inner.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
                Some(next) => inner = next,
                None => break,
            }
        }
        cur = err.source();
    }
    false
}

#[async_trait]
impl Transport for Reqwest {
    async fn send(&self, req: &Request) -> Result<Response, HttpError> {
        let mut resp = self.build(req)?.send().await.map_err(|e| self.classify(&e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let mut body = Zeroizing::new(Vec::new());
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY {
                        return Err(HttpError::TooLarge);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(self.classify(&e)),
            }
        }
        Ok(Response { status, headers, body })
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
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = self.send(req).await;
            let wait = match &result {
                Ok(r) => retry_delay(r, attempts),
                Err(HttpError::TooLarge | HttpError::Interrupted | HttpError::Tls(_)) => None,
                Err(_) => Some(backoff(attempts)),
            };
            let Some(wait) = wait else {
                return Attempted { result, attempts };
            };
            if attempts >= MAX_ATTEMPTS || wait > MAX_WAIT {
                return Attempted { result, attempts };
            }
            let why = match &result {
                Ok(r) => format!("HTTP {}", r.status.as_u16()),
                Err(e) => e.to_string(),
            };
            log::warn(&format!(
                "{what}: {why}; retry {attempts} of {} in {:.1}s",
                MAX_ATTEMPTS - 1,
                wait.as_secs_f64()
            ));
            if !self.shutdown.sleep(wait).await {
                let result = match result {
                    Ok(r) => Ok(r),
                    Err(_) => Err(HttpError::Interrupted),
                };
                return Attempted { result, attempts };
            }
        }
    }
}

/// The error and its sources on one line (reqwest's top-level message alone says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
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
    use reqwest::header::HeaderValue;

    fn resp(status: u16, headers: &[(&'static str, &str)], body: &str) -> Response {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers: h,
            body: Zeroizing::new(body.as_bytes().to_vec()),
        }
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
    fn tls_failures_are_found_by_type_however_deeply_wrapped() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let nested = std::io::Error::other(std::io::Error::new(std::io::ErrorKind::InvalidData, tls));
        assert!(is_tls_failure(&nested));
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "certificate mentioned in text");
        assert!(!is_tls_failure(&refused), "the words of a message do not decide");
    }

    #[test]
    fn credential_headers_go_on_the_wire_marked_sensitive() {
        let transport = Reqwest::new(Duration::from_secs(5), None).unwrap();
        let req = Request::post("https://api.example.com/x".parse().unwrap())
            .header("accept", "application/json")
            .secret_header("PRIVATE-TOKEN", Secret::new("glpat-0123456789"))
            .bearer(&Secret::new("tok-0123456789"))
            .json(serde_json::json!({ "value": "v" }));
        let built = transport.build(&req).unwrap().build().unwrap();
        let h = built.headers();
        assert!(h["private-token"].is_sensitive());
        assert!(h["authorization"].is_sensitive());
        assert!(!h["accept"].is_sensitive());
        assert_eq!(h["content-type"], "application/json");
        assert!(!format!("{req:?}").contains("0123456789"), "{req:?}");
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
