//! What the fuzz targets share: a scripted [`Transport`] whose answers the fuzz input chooses
//! (a valid answer for the request, a fuzzed response, or a transport error), the decoders of
//! those answers, and the invariant checks.
//!
//! Retries sleep for real (the product's backoff), so the transport keeps every input fast:
//! a response the product would retry after a wait is served with `retry-after: 0` (the retry
//! path runs, without the wait), and a transport error that the product backs off from (which
//! no header can shorten) is served at most once per input, on a request's first attempt; a
//! second one becomes `TooLarge` (final, never retried).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use async_trait::async_trait;
use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::StatusCode;
use secret_rotator::http::{retry_delay, HttpError, Request, Response, Transport};
use zeroize::Zeroizing;

/// Most answers one input is served; past that every request fails (`Tls`: final, never sent).
pub const MAX_REPLIES: usize = 64;

/// Marks the credentials a fuzzed answer issues, so a leak check can look for them.
pub const NEW_MARKER: &str = "NEWSECRET";

/// A finding already reported may be tolerated while it is unfixed, to keep fuzzing past it:
/// `SR_FUZZ_ALLOW=multiline,...` (scripts/fuzz.sh never sets it). `no-backoff` is no finding:
/// it serves no transport error the product backs off from (each costs a real 0.2-0.4 s
/// sleep), for runs that explore the rest many times faster.
pub fn allowed(finding: &str) -> bool {
    static ALLOW: OnceLock<Vec<String>> = OnceLock::new();
    ALLOW
        .get_or_init(|| {
            std::env::var("SR_FUZZ_ALLOW")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .iter()
        .any(|f| f == finding)
}

/// An error or log text must be one line: a newline in a log line on GitHub Actions can start
/// a workflow command (`::add-mask::`, `::stop-commands::`) that the text's author chose.
pub fn assert_one_line(what: &str, text: &str) {
    if !allowed("multiline") {
        assert!(!text.contains(['\n', '\r']), "{what} is not one line: {text:?}");
    }
}

/// `text` never holds `value` (raw, or as JSON would escape it).
pub fn assert_not_in(what: &str, text: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    assert!(!text.contains(value), "{what} holds a secret value {value:?}: {text}");
    let escaped = serde_json::to_string(value).unwrap_or_default();
    let escaped = escaped.trim_matches('"');
    if escaped != value {
        assert!(!text.contains(escaped), "{what} holds a secret value {value:?} (escaped): {text}");
    }
}

/// The one current-thread runtime of the process.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime")).block_on(f)
}

/// A response.
pub fn response(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Response {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            h.append(k, v);
        }
    }
    Response {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT),
        headers: h,
        body: Zeroizing::new(body.into()),
    }
}

/// A JSON response.
pub fn json(status: u16, v: serde_json::Value) -> Response {
    response(status, &[("content-type", "application/json")], serde_json::to_vec(&v).unwrap_or_default())
}

/// The secret key of the GitHub public key the canonical answers hand out (key id `fuzz-key`),
/// so a target can open what the product sealed.
pub fn github_secret_key() -> &'static crypto_box::SecretKey {
    static KEY: OnceLock<crypto_box::SecretKey> = OnceLock::new();
    KEY.get_or_init(|| crypto_box::SecretKey::from([0x5a; 32]))
}

/// The canonical GitHub public key answer.
pub fn github_key_json() -> serde_json::Value {
    let pk = github_secret_key().public_key();
    serde_json::json!({
        "key_id": "fuzz-key",
        "key": base64::engine::general_purpose::STANDARD.encode(pk.as_bytes()),
    })
}

/// Opens a sealed GitHub PUT body (`encrypted_value`) made with the canonical key.
pub fn open_github_put(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    if v.get("key_id")?.as_str()? != "fuzz-key" {
        return None;
    }
    let sealed = base64::engine::general_purpose::STANDARD.decode(v.get("encrypted_value")?.as_str()?).ok()?;
    let plain = github_secret_key().unseal(&sealed).ok()?;
    String::from_utf8(plain).ok()
}

pub mod engine;

// ----- what the fuzz input says the server answers -----

/// One answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// What a well-behaved server answers this request (the target decides).
    Canonical,
    /// A fuzzed response.
    Raw(Raw),
    /// A transport error.
    Fail(Fail),
}

impl<'a> Arbitrary<'a> for Reply {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        // An exhausted input reads zeros: that is Canonical, so a short input runs to the end.
        Ok(match u8::arbitrary(u)? {
            0..=99 => Reply::Canonical,
            100..=111 => Reply::Fail(Fail::arbitrary(u)?),
            _ => Reply::Raw(Raw::arbitrary(u)?),
        })
    }
}

/// Decodes the rest of the input as a script of answers.
pub fn script(u: &mut Unstructured<'_>) -> VecDeque<Reply> {
    let mut out = VecDeque::new();
    while !u.is_empty() && out.len() < MAX_REPLIES {
        match Reply::arbitrary(u) {
            Ok(r) => out.push_back(r),
            Err(_) => break,
        }
    }
    out
}

/// A transport error.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Fail {
    /// Connection never made.
    NotSent,
    /// Certificate refused.
    Tls,
    /// No response in time.
    Timeout,
    /// Connection broke after sending.
    Transport,
    /// Body over the cap.
    TooLarge,
    /// A termination signal.
    Interrupted,
}

impl Fail {
    fn error(self) -> HttpError {
        match self {
            Fail::NotSent => HttpError::NotSent("fuzz: connection refused".into()),
            Fail::Tls => HttpError::Tls("fuzz: unknown issuer".into()),
            Fail::Timeout => HttpError::Timeout(Duration::from_secs(30)),
            Fail::Transport => HttpError::Transport("fuzz: connection reset".into()),
            Fail::TooLarge => HttpError::TooLarge,
            Fail::Interrupted => HttpError::Interrupted,
        }
    }

    /// True when the product backs off (a real sleep) before trying again.
    fn backs_off(self) -> bool {
        matches!(self, Fail::NotSent | Fail::Timeout | Fail::Transport)
    }
}

/// A status code: mostly ones the product tells apart, sometimes any.
#[derive(Debug, Clone, Copy)]
pub struct Status(pub u16);

const STATUSES: &[u16] =
    &[200, 201, 204, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 504, 301, 302, 304, 418, 202, 299, 599];

impl<'a> Arbitrary<'a> for Status {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let sel = u8::arbitrary(u)?;
        if sel < 224 {
            Ok(Status(STATUSES[usize::from(sel) % STATUSES.len()]))
        } else {
            Ok(Status(100 + u16::arbitrary(u)? % 900))
        }
    }
}

/// A fuzzed response.
#[derive(Debug, Clone, Arbitrary)]
pub struct Raw {
    /// Status.
    pub status: Status,
    /// A few headers.
    pub headers: Vec<(HName, HValue)>,
    /// The body.
    pub body: Body,
}

/// A header name.
#[derive(Debug, Clone, Arbitrary)]
pub enum HName {
    /// `retry-after`
    RetryAfter,
    /// `x-ratelimit-remaining`
    Remaining,
    /// `x-ratelimit-reset`
    Reset,
    /// `content-type`
    ContentType,
    /// Any other.
    Other(String),
}

/// A header value.
#[derive(Debug, Clone, Arbitrary)]
pub enum HValue {
    /// A small number.
    Small(u8),
    /// Any number.
    Number(u64),
    /// An HTTP date.
    Date(DateChoice),
    /// Any text.
    Text(String),
}

/// Dates that matter: past, far future, nonsense.
#[derive(Debug, Clone, Arbitrary)]
pub enum DateChoice {
    /// In the past.
    Past,
    /// Far in the future.
    Future,
    /// Invalid.
    Bad,
}

/// A body: raw bytes, or JSON of the shapes the product reads, with fuzzed fields.
#[derive(Debug, Clone, Arbitrary)]
pub enum Body {
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A small JSON value.
    Json(Json),
    /// An OAuth2 token response.
    OAuthToken {
        /// `access_token`
        access_token: Option<Tok>,
        /// `refresh_token`
        refresh_token: Option<Tok>,
        /// `expires_in`
        expires_in: Option<Scalar>,
        /// `token_type`
        token_type: Option<String>,
    },
    /// An OAuth2 error response.
    OAuthError {
        /// `error`
        error: ErrorCode,
        /// `error_description`
        description: Option<Echo>,
        /// `error_uri`
        uri: Option<Echo>,
    },
    /// A GitHub public key.
    GithubKey {
        /// `key_id`
        key_id: Option<String>,
        /// `key`
        key: KeyChoice,
    },
    /// `{"message": ...}` (GitHub, GitLab errors), or `{"error": ...}`.
    Message {
        /// Under `error` rather than `message`.
        as_error: bool,
        /// The text.
        text: Echo,
    },
    /// A GitLab token (lookup or rotation).
    GitlabToken {
        /// `active`
        active: Option<bool>,
        /// `revoked`
        revoked: Option<bool>,
        /// `scopes`
        scopes: Vec<Scope>,
        /// `created_at`
        created_at: Option<Stamp>,
        /// `expires_at`
        expires_at: Option<Stamp>,
        /// `token`
        token: Option<Tok>,
    },
    /// A GitLab variable.
    GitlabVariable {
        /// `hidden`
        hidden: Option<Scalar>,
    },
    /// A GitHub secret's metadata.
    SecretMeta {
        /// `updated_at`
        updated_at: Stamp,
    },
    /// A GitHub repository.
    RepoId {
        /// `id`
        id: Scalar,
    },
}

/// Text a server might echo: the current credential, a new one, GitLab's key phrases, anything.
#[derive(Debug, Clone, Arbitrary)]
pub enum Echo {
    /// The credential the request carried.
    Current,
    /// `{"message":"404 Variable Not Found"}`
    VariableNotFound,
    /// `has already been taken`
    Taken,
    /// `rate limit`
    RateLimit,
    /// Anything.
    Text(String),
}

/// An OAuth2 error code.
#[derive(Debug, Clone, Arbitrary)]
pub enum ErrorCode {
    /// `invalid_grant`
    InvalidGrant,
    /// `invalid_client`
    InvalidClient,
    /// `unauthorized_client`
    UnauthorizedClient,
    /// `invalid_scope`
    InvalidScope,
    /// Anything.
    Other(String),
}

/// A GitLab scope.
#[derive(Debug, Clone, Arbitrary)]
pub enum Scope {
    /// `api`
    Api,
    /// `self_rotate`
    SelfRotate,
    /// `read_api`
    ReadApi,
    /// Anything.
    Other(String),
}

/// A key in a public-key answer.
#[derive(Debug, Clone, Arbitrary)]
pub enum KeyChoice {
    /// The canonical key.
    Ours,
    /// 32 bytes, base64.
    Bytes([u8; 32]),
    /// Bytes of any length, base64.
    AnyBytes(Vec<u8>),
    /// Any text.
    Text(String),
}

/// A timestamp field.
#[derive(Debug, Clone, Arbitrary)]
pub enum Stamp {
    /// Long ago.
    Old,
    /// A moment ago... or in the future.
    Future,
    /// A date without a time.
    DateOnly,
    /// Anything.
    Text(String),
}

impl Stamp {
    fn text(&self) -> String {
        match self {
            Stamp::Old => "2020-01-01T00:00:00Z".into(),
            Stamp::Future => "2999-01-01T00:00:00Z".into(),
            Stamp::DateOnly => "2030-06-01".into(),
            Stamp::Text(s) => s.clone(),
        }
    }
}

/// A credential a server issues.
#[derive(Debug, Clone, Arbitrary)]
pub enum Tok {
    /// `NEWSECRET` and a suffix: a leak check looks for these.
    Marked(String),
    /// The credential the request carried (a provider that does not rotate).
    Current,
    /// Empty.
    Empty,
    /// Anything.
    Text(String),
}

impl Tok {
    fn text(&self, current: &str) -> String {
        match self {
            Tok::Marked(s) => format!("{NEW_MARKER}-{s}"),
            Tok::Current => current.to_owned(),
            Tok::Empty => String::new(),
            Tok::Text(s) => s.clone(),
        }
    }
}

/// A JSON scalar.
#[derive(Debug, Clone, Arbitrary)]
pub enum Scalar {
    /// null
    Null,
    /// a boolean
    Bool(bool),
    /// an integer
    Int(i64),
    /// a large unsigned
    U64(u64),
    /// a float
    Float(f64),
    /// text
    Str(String),
}

impl Scalar {
    fn value(&self) -> serde_json::Value {
        match self {
            Scalar::Null => serde_json::Value::Null,
            Scalar::Bool(b) => (*b).into(),
            Scalar::Int(i) => (*i).into(),
            Scalar::U64(i) => (*i).into(),
            Scalar::Float(f) => serde_json::Number::from_f64(*f).map(Into::into).unwrap_or(serde_json::Value::Null),
            Scalar::Str(s) => s.clone().into(),
        }
    }
}

/// A small JSON value.
#[derive(Debug, Clone, Arbitrary)]
pub enum Json {
    /// A scalar.
    Scalar(Scalar),
    /// A list of scalars.
    List(Vec<Scalar>),
    /// An object of scalars, keyed by names the product reads or any.
    Object(Vec<(Key, Scalar)>),
}

/// A JSON key.
#[derive(Debug, Clone, Arbitrary)]
pub enum Key {
    /// A key some answer has.
    Known(u8),
    /// Any.
    Other(String),
}

const KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "expires_in",
    "token_type",
    "error",
    "error_description",
    "message",
    "key_id",
    "key",
    "token",
    "active",
    "revoked",
    "scopes",
    "created_at",
    "expires_at",
    "hidden",
    "updated_at",
    "id",
];

impl Json {
    fn value(&self) -> serde_json::Value {
        match self {
            Json::Scalar(s) => s.value(),
            Json::List(items) => items.iter().map(Scalar::value).collect(),
            Json::Object(pairs) => pairs
                .iter()
                .map(|(k, v)| {
                    let k = match k {
                        Key::Known(i) => KEYS[usize::from(*i) % KEYS.len()].to_owned(),
                        Key::Other(s) => s.clone(),
                    };
                    (k, v.value())
                })
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
}

impl Echo {
    fn text(&self, current: &str) -> String {
        match self {
            Echo::Current => format!("bad credential {current}"),
            Echo::VariableNotFound => "404 Variable Not Found".into(),
            Echo::Taken => "key has already been taken".into(),
            Echo::RateLimit => "You have exceeded a secondary rate limit".into(),
            Echo::Text(s) => s.clone(),
        }
    }
}

fn opt<T>(v: &Option<T>, f: impl Fn(&T) -> serde_json::Value) -> Option<serde_json::Value> {
    v.as_ref().map(f)
}

impl Body {
    /// The body's bytes; `current` is the credential the request carried.
    pub fn bytes(&self, current: &str) -> Vec<u8> {
        use serde_json::{json, Map, Value};
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        };
        match self {
            Body::Bytes(b) => return b.clone(),
            Body::Json(j) => return serde_json::to_vec(&j.value()).unwrap_or_default(),
            Body::OAuthToken { access_token, refresh_token, expires_in, token_type } => {
                put("access_token", opt(access_token, |t| t.text(current).into()));
                put("refresh_token", opt(refresh_token, |t| t.text(current).into()));
                put("expires_in", opt(expires_in, Scalar::value));
                put("token_type", opt(token_type, |t| t.clone().into()));
            }
            Body::OAuthError { error, description, uri } => {
                let code = match error {
                    ErrorCode::InvalidGrant => "invalid_grant".to_owned(),
                    ErrorCode::InvalidClient => "invalid_client".to_owned(),
                    ErrorCode::UnauthorizedClient => "unauthorized_client".to_owned(),
                    ErrorCode::InvalidScope => "invalid_scope".to_owned(),
                    ErrorCode::Other(s) => s.clone(),
                };
                put("error", Some(code.into()));
                put("error_description", opt(description, |d| d.text(current).into()));
                put("error_uri", opt(uri, |d| d.text(current).into()));
            }
            Body::GithubKey { key_id, key } => {
                let key = match key {
                    KeyChoice::Ours => return serde_json::to_vec(&github_key_json()).unwrap_or_default(),
                    KeyChoice::Bytes(b) => base64::engine::general_purpose::STANDARD.encode(b),
                    KeyChoice::AnyBytes(b) => base64::engine::general_purpose::STANDARD.encode(b),
                    KeyChoice::Text(t) => t.clone(),
                };
                put("key_id", opt(key_id, |k| k.clone().into()));
                put("key", Some(key.into()));
            }
            Body::Message { as_error, text } => {
                put(if *as_error { "error" } else { "message" }, Some(text.text(current).into()));
            }
            Body::GitlabToken { active, revoked, scopes, created_at, expires_at, token } => {
                put("active", opt(active, |b| (*b).into()));
                put("revoked", opt(revoked, |b| (*b).into()));
                let scopes: Vec<Value> = scopes
                    .iter()
                    .map(|s| match s {
                        Scope::Api => "api".into(),
                        Scope::SelfRotate => "self_rotate".into(),
                        Scope::ReadApi => "read_api".into(),
                        Scope::Other(s) => s.clone().into(),
                    })
                    .collect();
                put("scopes", Some(scopes.into()));
                put("created_at", opt(created_at, |s| s.text().into()));
                put("expires_at", opt(expires_at, |s| s.text().into()));
                put("token", opt(token, |t| t.text(current).into()));
            }
            Body::GitlabVariable { hidden } => {
                put("key", Some("VAR".into()));
                put("hidden", opt(hidden, Scalar::value));
            }
            Body::SecretMeta { updated_at } => {
                put("name", Some("SECRET".into()));
                put("updated_at", Some(updated_at.text().into()));
            }
            Body::RepoId { id } => put("id", Some(id.value())),
        }
        serde_json::to_vec(&json!(m)).unwrap_or_default()
    }
}

impl Raw {
    fn render(&self, current: &str) -> Response {
        let mut headers = HeaderMap::new();
        for (name, value) in self.headers.iter().take(6) {
            let name = match name {
                HName::RetryAfter => HeaderName::from_static("retry-after"),
                HName::Remaining => HeaderName::from_static("x-ratelimit-remaining"),
                HName::Reset => HeaderName::from_static("x-ratelimit-reset"),
                HName::ContentType => HeaderName::from_static("content-type"),
                HName::Other(s) => match HeaderName::from_bytes(s.as_bytes()) {
                    Ok(n) => n,
                    Err(_) => continue,
                },
            };
            let value = match value {
                HValue::Small(n) => n.to_string(),
                HValue::Number(n) => n.to_string(),
                HValue::Date(DateChoice::Past) => "Sun, 06 Nov 1994 08:49:37 GMT".into(),
                HValue::Date(DateChoice::Future) => "Fri, 31 Dec 2999 23:59:59 GMT".into(),
                HValue::Date(DateChoice::Bad) => "Sun, 32 Foo 1994 99:99:99 GMT".into(),
                HValue::Text(t) => t.clone(),
            };
            if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
                headers.append(name, v);
            }
        }
        Response {
            status: StatusCode::from_u16(self.status.0).unwrap_or(StatusCode::IM_A_TEAPOT),
            headers,
            body: Zeroizing::new(self.body.bytes(current)),
        }
    }
}

// ----- the transport -----

/// What a request was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A response with this status.
    Status(u16),
    /// A transport error.
    Failed(&'static str),
}

/// A request as the transport saw it, and its answer.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The full URL.
    pub url: String,
    /// The URL's path.
    pub path: String,
    /// `PRIVATE-TOKEN`
    pub private_token: Option<String>,
    /// `Authorization`
    pub authorization: Option<String>,
    /// The body.
    pub body: Option<Vec<u8>>,
    /// The answer.
    pub answer: Answer,
    /// The body of the answer.
    pub answer_body: Vec<u8>,
}

impl Seen {
    /// True when answered with a 2xx.
    pub fn ok(&self) -> bool {
        matches!(self.answer, Answer::Status(s) if (200..300).contains(&s))
    }

    /// The credential the request carried (`PRIVATE-TOKEN`, or a bearer token).
    pub fn credential(&self) -> Option<&str> {
        self.private_token.as_deref().or_else(|| self.authorization.as_deref()?.strip_prefix("Bearer "))
    }
}

type Canon = Box<dyn Fn(&Request) -> Response + Send + Sync>;

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    served: usize,
    backoff_spent: bool,
    streak: HashMap<String, u32>,
    seen: Vec<Seen>,
}

/// A transport that answers from a script, falling back to canonical answers when the script
/// runs out, and records every request.
pub struct Scripted {
    state: Mutex<State>,
    canon: Canon,
}

impl Scripted {
    /// A transport over `script`; `canon` answers `Reply::Canonical`.
    pub fn new(script: VecDeque<Reply>, canon: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Self {
        Scripted { state: Mutex::new(State { script, ..State::default() }), canon: Box::new(canon) }
    }

    /// Every request seen, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).seen.clone()
    }
}

fn fail_name(e: &HttpError) -> &'static str {
    match e {
        HttpError::NotSent(_) => "NotSent",
        HttpError::Tls(_) => "Tls",
        HttpError::Timeout(_) => "Timeout",
        HttpError::Transport(_) => "Transport",
        HttpError::TooLarge => "TooLarge",
        HttpError::Interrupted => "Interrupted",
    }
}

#[async_trait]
impl Transport for Scripted {
    async fn send(&self, req: &Request) -> Result<Response, HttpError> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.served += 1;
        let credential = req
            .header_value("private-token")
            .or_else(|| req.header_value("authorization").and_then(|a| a.strip_prefix("Bearer ")))
            .unwrap_or("")
            .to_owned();
        let key = format!("{} {}", req.method, req.url);
        let result = if st.served > MAX_REPLIES {
            Err(HttpError::Tls("fuzz: reply cap reached".into()))
        } else {
            match st.script.pop_front().unwrap_or(Reply::Canonical) {
                Reply::Canonical => Ok((self.canon)(req)),
                Reply::Raw(r) => Ok(r.render(&credential)),
                Reply::Fail(f) if f.backs_off() => {
                    let first_attempt = st.streak.get(&key).copied().unwrap_or(0) == 0;
                    if st.backoff_spent || !first_attempt || allowed("no-backoff") {
                        Err(HttpError::TooLarge)
                    } else {
                        st.backoff_spent = true;
                        Err(f.error())
                    }
                }
                Reply::Fail(f) => Err(f.error()),
            }
        };
        // A response the product would wait for: the same, without the wait.
        let result = result.map(|mut r| {
            if retry_delay(&r, 1).is_some_and(|d| !d.is_zero()) {
                r.headers.insert("retry-after", HeaderValue::from_static("0"));
            }
            r
        });
        let retried = match &result {
            Ok(r) => retry_delay(r, 1).is_some(),
            Err(e) => matches!(e, HttpError::NotSent(_) | HttpError::Timeout(_) | HttpError::Transport(_)),
        };
        let streak = st.streak.entry(key).or_default();
        *streak = if retried { *streak + 1 } else { 0 };
        let (answer, answer_body) = match &result {
            Ok(r) => (Answer::Status(r.status.as_u16()), r.body.to_vec()),
            Err(e) => (Answer::Failed(fail_name(e)), Vec::new()),
        };
        st.seen.push(Seen {
            method: req.method.to_string(),
            url: req.url.to_string(),
            path: req.url.path().to_owned(),
            private_token: req.header_value("private-token").map(str::to_owned),
            authorization: req.header_value("authorization").map(str::to_owned),
            body: req.body().map(|(_, b)| b.to_vec()),
            answer,
            answer_body,
        });
        result
    }
}

// ----- a readable script, for seeds -----

/// A script may be written as text (seed files are): `#!script`, an optional `opts: HEX` line
/// (the bytes the target decodes its plan options from), then answers separated by `---` lines.
/// An answer is `=` (canonical), `!NotSent` (or another [`Fail`]), or a status line, header
/// lines, a blank line and the body.
pub const TEXT_MAGIC: &[u8] = b"#!script\n";

/// The plan-option bytes and the script of an input, in either encoding.
pub fn decode(data: &[u8]) -> (Vec<u8>, VecDeque<Reply>) {
    if let Some(rest) = data.strip_prefix(TEXT_MAGIC) {
        return text_script(&String::from_utf8_lossy(rest));
    }
    (data.to_vec(), VecDeque::new())
}

fn text_script(text: &str) -> (Vec<u8>, VecDeque<Reply>) {
    let mut opts = Vec::new();
    let mut replies = VecDeque::new();
    let mut rest = text;
    if let Some(r) = rest.strip_prefix("opts:") {
        let (line, tail) = r.split_once('\n').unwrap_or((r, ""));
        let hex: Vec<u8> = line.trim().bytes().collect();
        opts = hex
            .chunks(2)
            .filter_map(|c| std::str::from_utf8(c).ok().and_then(|s| u8::from_str_radix(s, 16).ok()))
            .collect();
        rest = tail;
    }
    for chunk in rest.split("\n---\n").take(MAX_REPLIES) {
        let chunk = chunk.trim_start_matches('\n');
        if chunk.is_empty() {
            continue;
        }
        let (head, body) = chunk.split_once("\n\n").unwrap_or((chunk, ""));
        let mut lines = head.lines();
        let first = lines.next().unwrap_or("").trim();
        let reply = match first {
            "=" => Reply::Canonical,
            "!NotSent" => Reply::Fail(Fail::NotSent),
            "!Tls" => Reply::Fail(Fail::Tls),
            "!Timeout" => Reply::Fail(Fail::Timeout),
            "!Transport" => Reply::Fail(Fail::Transport),
            "!TooLarge" => Reply::Fail(Fail::TooLarge),
            "!Interrupted" => Reply::Fail(Fail::Interrupted),
            status => Reply::Raw(Raw {
                status: Status(status.parse().unwrap_or(200)),
                headers: lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (HName::Other(k.trim().to_owned()), HValue::Text(v.trim().to_owned())))
                    .collect(),
                body: Body::Bytes(body.as_bytes().to_vec()),
            }),
        };
        replies.push_back(reply);
    }
    (opts, replies)
}

/// Logs at error level only: the engine logs every stage, which would flood a fuzzing run's
/// output (an error line per failed rotation still prints).
pub fn quiet_logs() {
    secret_rotator::log::init(secret_rotator::log::Format::Text, secret_rotator::log::Level::Error);
}
