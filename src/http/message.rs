//! The messages: a [`Request`] described before it is sent (its credentials marked, its body
//! in zeroizing memory), and a [`Response`] read whole.

use std::fmt;
use std::sync::Arc;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use url::Url;
use zeroize::{Zeroize, Zeroizing};

use super::tls::UpstreamTls;
use super::Method;
use crate::secret::{redact, Secret};

#[derive(Clone)]
pub(super) enum HeaderText {
    Plain(String),
    /// A header that carries a credential: marked sensitive on the wire, never printed.
    Secret(Secret),
}

/// A request body: its bytes are zeroized when the last copy is dropped.
#[derive(Clone)]
pub(super) struct Body {
    pub(super) content_type: &'static str,
    pub(super) bytes: Arc<Zeroizing<Vec<u8>>>,
}

/// One HTTP request, described before it is sent (and possibly sent again, unchanged).
#[derive(Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The URL.
    pub url: Url,
    pub(super) headers: Vec<(&'static str, HeaderText)>,
    pub(super) body: Option<Body>,
    /// The upstream's own TLS settings (client certificate, CA), when it has any.
    pub(super) tls: Option<Arc<UpstreamTls>>,
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
        Request { method, url, headers: Vec::new(), body: None, tls: None }
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

    /// Sends it with the upstream's own TLS settings (a client certificate, its CA), if any.
    pub fn tls(mut self, tls: Option<&Arc<UpstreamTls>>) -> Self {
        self.tls = tls.cloned();
        self
    }

    /// The upstream TLS settings it is sent with.
    pub fn upstream_tls(&self) -> Option<&UpstreamTls> {
        self.tls.as_deref()
    }

    /// A body of bytes already serialized (a signed request signs these exact bytes), sent with
    /// `content_type`.
    pub fn body_bytes(mut self, content_type: &'static str, bytes: Arc<Zeroizing<Vec<u8>>>) -> Self {
        self.body = Some(Body { content_type, bytes });
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
