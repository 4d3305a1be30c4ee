//! A scripted transport for unit tests: answers requests in order from a script and keeps
//! every request it saw, so a test asserts the exact method, URL, headers and body.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::StatusCode;
use zeroize::Zeroizing;

use super::{Http, HttpError, Request, Response, Shutdown, Transport};

/// The fake transport.
#[derive(Default)]
pub struct Fake {
    script: Mutex<VecDeque<Result<Response, HttpError>>>,
    seen: Mutex<Vec<Request>>,
}

/// A response with this status, JSON (or text) body and headers.
pub fn response(status: u16, body: &str, headers: &[(&'static str, &str)]) -> Response {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(HeaderName::from_static(k), HeaderValue::from_str(v).unwrap());
    }
    Response {
        status: StatusCode::from_u16(status).unwrap(),
        headers: h,
        body: Zeroizing::new(body.as_bytes().to_vec()),
    }
}

impl Fake {
    /// An empty script.
    pub fn new() -> Arc<Fake> {
        Arc::new(Fake::default())
    }

    /// Answers the next request with `status` and `body`.
    pub fn reply(&self, status: u16, body: &str) -> &Self {
        self.script.lock().unwrap().push_back(Ok(response(status, body, &[])));
        self
    }

    /// Answers the next request with a full response.
    pub fn respond(&self, r: Response) -> &Self {
        self.script.lock().unwrap().push_back(Ok(r));
        self
    }

    /// Fails the next request with a transport error.
    pub fn fail(&self, e: HttpError) -> &Self {
        self.script.lock().unwrap().push_back(Err(e));
        self
    }

    /// Every request seen, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }

    /// `METHOD url` of every request seen, in order.
    pub fn lines(&self) -> Vec<String> {
        self.requests().iter().map(|r| format!("{} {}", r.method, r.url)).collect()
    }

    /// A client over this script (a shutdown that never fires).
    pub fn http(self: &Arc<Self>) -> Http {
        let (tx, shutdown) = Shutdown::new();
        std::mem::forget(tx);
        Http::with_transport(self.clone(), shutdown)
    }
}

/// The JSON body of a request.
pub fn json_body(r: &Request) -> serde_json::Value {
    let (ctype, bytes) = r.body().expect("a body");
    assert_eq!(ctype, "application/json");
    serde_json::from_slice(bytes).unwrap()
}

/// The form body of a request, as pairs.
pub fn form_body(r: &Request) -> Vec<(String, String)> {
    let (ctype, bytes) = r.body().expect("a body");
    assert_eq!(ctype, "application/x-www-form-urlencoded");
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

#[async_trait]
impl Transport for Fake {
    async fn send(&self, req: &Request) -> Result<Response, HttpError> {
        self.seen.lock().unwrap().push(req.clone());
        self.script.lock().unwrap().pop_front().unwrap_or_else(|| panic!("unexpected request: {req:?}"))
    }
}
