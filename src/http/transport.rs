//! The seam between the modules and the network: [`Transport`], and its production
//! implementation over reqwest and rustls (timeouts, capped bodies, same-origin redirects,
//! failures classified by type).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderValue};
use zeroize::Zeroizing;

use super::message::HeaderText;
use super::{HttpError, Request, Response, MAX_BODY};
use crate::secret::redact;

/// Sends one request once and reads its response (body capped at [`MAX_BODY`]). The seam
/// between the modules and the network.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends `req` once.
    async fn send(&self, req: &Request) -> Result<Response, HttpError>;
}

/// The production transport: reqwest with rustls. Requests of an upstream with its own TLS
/// settings (a client certificate, its own CA) go through a client built for them, once.
#[derive(Debug)]
pub struct Reqwest {
    client: reqwest::Client,
    timeout: Duration,
    ca_pem: Option<Vec<u8>>,
    per_upstream: Mutex<HashMap<u64, reqwest::Client>>,
}

impl Reqwest {
    /// Builds the client. `ca_pem` adds CA certificates to the system's (`SSL_CERT_FILE` is
    /// honoured by the platform verifier).
    pub fn new(timeout: Duration, ca_pem: Option<&[u8]>) -> Result<Reqwest, String> {
        let client = Self::builder(timeout, ca_pem)?
            .build()
            .map_err(|e| format!("cannot set up HTTPS (is a CA bundle installed? set SSL_CERT_FILE): {e}"))?;
        Ok(Reqwest { client, timeout, ca_pem: ca_pem.map(<[u8]>::to_vec), per_upstream: Mutex::default() })
    }

    fn builder(timeout: Duration, ca_pem: Option<&[u8]>) -> Result<reqwest::ClientBuilder, String> {
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
        Ok(builder)
    }

    /// The client for this request: the run's, or the one built for its upstream's TLS settings.
    fn client(&self, req: &Request) -> Result<reqwest::Client, HttpError> {
        let Some(tls) = &req.tls else { return Ok(self.client.clone()) };
        let mut clients = self.per_upstream.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&tls.id()) {
            return Ok(c.clone());
        }
        // An upstream with its own CA is verified against it alone (as the Vault CLI does).
        let base = if tls.has_ca() { None } else { self.ca_pem.as_deref() };
        let client = Self::builder(self.timeout, base)
            .and_then(|b| tls.apply(b))
            .and_then(|b| b.build().map_err(|e| error_chain(&e)))
            .map_err(|e| HttpError::Tls(format!("cannot set up this upstream's TLS settings: {}", redact(&e))))?;
        clients.insert(tls.id(), client.clone());
        Ok(client)
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
        let mut builder = self.client(req)?.request(req.method.clone(), req.url.clone());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

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
}
