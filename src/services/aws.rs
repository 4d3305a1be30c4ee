//! The AWS connection every AWS target of a run shares: credentials from the standard
//! environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`: what
//! aws-actions/configure-aws-credentials sets), the default region (`AWS_REGION`, else
//! `AWS_DEFAULT_REGION`), endpoint overrides (`AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`;
//! plain http only to loopback), and SigV4-signed JSON 1.1 requests sent through the run's
//! [`Http`], re-signed for every attempt, with AWS's throttling errors retried.

use std::sync::Arc;

use tokio::sync::Semaphore;
use url::Url;
use zeroize::Zeroizing;

use super::Service;
use crate::error::InputError;
use crate::http::{Attempted, Http, Request, Response};
use crate::inputs::{check_token_text, check_url, Env, Field, Fields};
use crate::log::{self, one_line};
use crate::secret::{redact, Secret};

mod sigv4;

/// AWS requests in flight at once.
const MAX_IN_FLIGHT: usize = 4;
/// The JSON 1.1 protocol's content type.
pub const JSON_1_1: &str = "application/x-amz-json-1.1";

/// One AWS service, as the requests to it are addressed and signed.
#[derive(Debug)]
pub struct AwsService {
    /// The signing name and endpoint prefix (`secretsmanager`).
    pub name: &'static str,
    /// The prefix of its `X-Amz-Target` (`secretsmanager`).
    pub target_prefix: &'static str,
    /// Its own endpoint override variable (`AWS_ENDPOINT_URL_SECRETS_MANAGER`).
    pub endpoint_variable: &'static str,
}

/// The credentials, each value kept as a [`Secret`].
#[derive(Debug)]
struct Credentials {
    access_key_id: Secret,
    secret_access_key: Secret,
    session_token: Option<Secret>,
}

/// The AWS connection of a run.
#[derive(Debug)]
pub struct Aws {
    credentials: Credentials,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`, validated, with the variable it came from.
    pub default_region: Option<(String, &'static str)>,
    /// Endpoint overrides: (`AWS_ENDPOINT_URL_<SERVICE>` variable, URL), then `AWS_ENDPOINT_URL`.
    endpoints: Vec<(String, Url)>,
    general_endpoint: Option<Url>,
    in_flight: Semaphore,
}

/// The services whose endpoint override variables are read.
const KNOWN_SERVICES: &[&str] = &["AWS_ENDPOINT_URL_SECRETS_MANAGER"];

impl Service for Aws {
    const KEY: &'static str = "aws";
    const FIELDS: &'static [Field] = &[];

    fn parse(section: Option<&Fields>, inputs: &Fields) -> Result<Self, InputError> {
        if let Some(s) = section {
            s.finish(Self::FIELDS, &[])?;
        }
        let env = inputs.env();
        let credentials = credentials(env)?;
        let default_region = match (env.get("AWS_REGION"), env.get("AWS_DEFAULT_REGION")) {
            (Some(r), _) => Some((check_region("AWS_REGION", r)?, "AWS_REGION")),
            (None, Some(r)) => Some((check_region("AWS_DEFAULT_REGION", r)?, "AWS_DEFAULT_REGION")),
            (None, None) => None,
        };
        let ignore = env.is_true("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
        let mut endpoints = Vec::new();
        let mut general_endpoint = None;
        if !ignore {
            for var in KNOWN_SERVICES {
                if let Some(u) = env.get(var) {
                    endpoints.push(((*var).to_owned(), endpoint(var, u)?));
                }
            }
            if let Some(u) = env.get("AWS_ENDPOINT_URL") {
                general_endpoint = Some(endpoint("AWS_ENDPOINT_URL", u)?);
            }
        }
        Ok(Aws { credentials, default_region, endpoints, general_endpoint, in_flight: Semaphore::new(MAX_IN_FLIGHT) })
    }
}

fn credentials(env: &Env) -> Result<Credentials, InputError> {
    const HOW: &str = "an AWS target reads its credentials from the standard environment: AWS_ACCESS_KEY_ID, \
                       AWS_SECRET_ACCESS_KEY and, with temporary credentials, AWS_SESSION_TOKEN (in GitHub Actions, \
                       aws-actions/configure-aws-credentials sets them)";
    let access_key_id = env
        .secret("AWS_ACCESS_KEY_ID")
        .ok_or_else(|| InputError::new("AWS_ACCESS_KEY_ID", format!("is not set: {HOW}")))?;
    let id = access_key_id.expose();
    if id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(InputError::new(
            "AWS_ACCESS_KEY_ID",
            "is not an access key id (letters and digits, like AKIA... or ASIA...): set it alone, without quotes or spaces",
        ));
    }
    let secret_access_key = env
        .secret("AWS_SECRET_ACCESS_KEY")
        .ok_or_else(|| InputError::new("AWS_SECRET_ACCESS_KEY", format!("is not set: {HOW}")))?;
    check_token_text("AWS_SECRET_ACCESS_KEY", &secret_access_key)?;
    let session_token = env.secret("AWS_SESSION_TOKEN");
    if let Some(t) = &session_token {
        check_token_text("AWS_SESSION_TOKEN", t)?;
    }
    Ok(Credentials { access_key_id, secret_access_key, session_token })
}

fn endpoint(var: &str, u: &str) -> Result<Url, InputError> {
    let url = check_url(var, u.trim())?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(InputError::new(var, format!("`{u}` has a query or fragment: give the endpoint's base URL")));
    }
    Ok(url)
}

/// An AWS region: `eu-west-1`, `us-gov-west-1`, `cn-north-1`.
pub fn check_region(input: &str, r: &str) -> Result<String, InputError> {
    let r = r.trim();
    let parts: Vec<&str> = r.split('-').collect();
    let ok = r.len() <= 32
        && parts.len() >= 3
        && parts[0].len() >= 2
        && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].len() <= 2
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty();
    if ok {
        Ok(r.to_owned())
    } else {
        Err(InputError::new(input, format!("`{r}` is not an AWS region: use one like eu-west-1 or us-east-1")))
    }
}

/// What AWS said went wrong: its error code (without a namespace) and message, from a JSON
/// error (`__type`, `message`), the `X-Amzn-ErrorType` header, or an XML `ErrorResponse`
/// (as some AWS front ends and moto's IAM checks answer). The message is one line, scrubbed of
/// every known secret, and shortened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// `ResourceNotFoundException`.
    pub code: String,
    /// AWS's own words.
    pub message: String,
}

fn clean_code(raw: &str) -> String {
    // `com.amazonaws.secretsmanager#ResourceNotFoundException`, `ThrottlingException:http://...`
    let c = raw.rsplit('#').next().unwrap_or(raw);
    let c = c.split(':').next().unwrap_or(c);
    c.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '.').take(100).collect()
}

fn clean_message(raw: &str) -> String {
    let text: String = one_line(&redact(raw)).chars().take(300).collect();
    text
}

fn xml_element<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let start = body.find(&format!("<{name}>"))? + name.len() + 2;
    let len = body[start..].find(&format!("</{name}>"))?;
    Some(&body[start..start + len])
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

impl AwsError {
    /// The error in an AWS answer, if it holds one.
    pub fn of(r: &Response) -> Option<AwsError> {
        let header = r.headers.get("x-amzn-errortype").and_then(|v| v.to_str().ok()).map(clean_code);
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_slice::<serde_json::Value>(&r.body) {
            let text = |k: &str| m.get(k).and_then(serde_json::Value::as_str);
            let code = text("__type").or_else(|| text("code")).or_else(|| text("Code")).map(clean_code).or(header);
            let message = text("message").or_else(|| text("Message")).unwrap_or("");
            return code.filter(|c| !c.is_empty()).map(|code| AwsError { code, message: clean_message(message) });
        }
        let body = String::from_utf8_lossy(&r.body);
        if let Some(code) = xml_element(&body, "Code") {
            let message = xml_element(&body, "Message").map(xml_unescape).unwrap_or_default();
            let code = clean_code(&xml_unescape(code));
            if !code.is_empty() {
                return Some(AwsError { code, message: clean_message(&message) });
            }
        }
        header.filter(|c| !c.is_empty()).map(|code| AwsError { code, message: String::new() })
    }

    /// True for AWS's throttling errors (sent as HTTP 400 by the JSON services), which are
    /// retried with backoff like a 429.
    pub fn is_throttling(&self) -> bool {
        matches!(
            self.code.as_str(),
            "Throttling"
                | "ThrottlingException"
                | "ThrottledException"
                | "RequestThrottledException"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "BandwidthLimitExceeded"
                | "SlowDown"
                | "PriorRequestNotComplete"
                | "RequestTimeout"
                | "RequestTimeoutException"
        )
    }
}

/// Retries AWS's throttling answers (the status says 400).
fn throttled(r: &Response) -> bool {
    r.status.is_client_error() && AwsError::of(r).is_some_and(|e| e.is_throttling())
}

/// The SigV4 timestamp: `20150830T123600Z`.
fn amz_date(now: jiff::Timestamp) -> String {
    now.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// The `Host` header the transport sends for a URL (the port only when it is not the default).
fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

impl Aws {
    /// Where a service's requests go in `region`: its override, the general override, or AWS.
    pub fn endpoint(&self, service: &AwsService, region: &str) -> Url {
        if let Some((_, u)) = self.endpoints.iter().find(|(v, _)| v == service.endpoint_variable) {
            return u.clone();
        }
        if let Some(u) = &self.general_endpoint {
            return u.clone();
        }
        let domain = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
        Url::parse(&format!("https://{}.{region}.{domain}/", service.name)).expect("a valid region makes a valid URL")
    }

    /// True when the credentials are temporary (a session token is set).
    pub fn has_session_token(&self) -> bool {
        self.credentials.session_token.is_some()
    }

    /// A JSON 1.1 request for `operation`, signed at `now`.
    pub fn sign(
        &self,
        service: &AwsService,
        url: &Url,
        region: &str,
        operation: &str,
        body: &Arc<Zeroizing<Vec<u8>>>,
        now: jiff::Timestamp,
    ) -> Request {
        let date = amz_date(now);
        let target = format!("{}.{operation}", service.target_prefix);
        let host = host_header(url);
        let c = &self.credentials;
        let mut signed: Vec<(&str, &str)> =
            vec![("content-type", JSON_1_1), ("host", &host), ("x-amz-date", &date), ("x-amz-target", &target)];
        if let Some(t) = &c.session_token {
            signed.push(("x-amz-security-token", t.expose()));
        }
        let path = if url.path().is_empty() { "/" } else { url.path() };
        let scope = sigv4::Scope { date_time: &date, region, service: service.name };
        let signable = sigv4::Signable { method: "POST", path, query: "", headers: &signed, body: body.as_slice() };
        let authorization =
            sigv4::authorization(c.access_key_id.expose(), c.secret_access_key.expose(), &scope, &signable);
        let mut req =
            Request::post(url.clone()).header("x-amz-date", date.clone()).header("x-amz-target", target.clone());
        if let Some(t) = &c.session_token {
            req = req.secret_header("x-amz-security-token", t.clone());
        }
        req.secret_header("authorization", Secret::new(authorization.as_str())).body_bytes(JSON_1_1, body.clone())
    }

    /// Sends `operation` with a JSON body (its strings are zeroized once serialized), retrying
    /// transport failures, 5xx and throttling with backoff; each attempt is signed anew. AWS's
    /// JSON writes are safe to repeat when they carry a client request token.
    pub async fn send(
        &self,
        http: &Http,
        what: &str,
        service: &AwsService,
        region: &str,
        operation: &str,
        mut body: serde_json::Value,
    ) -> Attempted {
        let bytes = Arc::new(Zeroizing::new(serde_json::to_vec(&body).unwrap_or_default()));
        scrub(&mut body);
        let url = self.endpoint(service, region);
        let _permit = self.in_flight.acquire().await;
        log::debug(&format!("POST {url} {}.{operation}", service.target_prefix));
        let build = || self.sign(service, &url, region, operation, &bytes, jiff::Timestamp::now());
        http.send_retried(what, &build, throttled).await
    }
}

/// Zeroizes every string of a JSON value that held a secret.
pub fn scrub(v: &mut serde_json::Value) {
    use zeroize::Zeroize;
    match v {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(scrub),
        serde_json::Value::Object(m) => m.iter_mut().for_each(|(_, v)| scrub(v)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::http::testing::response;
    use crate::inputs::Inputs;

    fn aws(pairs: &[(&str, &str)]) -> Result<Aws, InputError> {
        let env = Env::from_pairs(pairs.iter().copied());
        let inputs = Inputs::collect(crate::config::table(), &HashMap::new(), &env);
        Aws::parse(None, &Fields::inputs(&inputs, &env))
    }

    const SM: AwsService = AwsService {
        name: "secretsmanager",
        target_prefix: "secretsmanager",
        endpoint_variable: "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    };

    #[test]
    fn credentials_region_and_endpoints_come_from_the_standard_variables() {
        let keys = [("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE0123"), ("AWS_SECRET_ACCESS_KEY", "s3cr3t/key+0123")];
        let a = aws(&keys).unwrap();
        assert_eq!(a.default_region, None);
        assert_eq!(a.endpoint(&SM, "eu-west-1").as_str(), "https://secretsmanager.eu-west-1.amazonaws.com/");
        assert_eq!(a.endpoint(&SM, "cn-north-1").as_str(), "https://secretsmanager.cn-north-1.amazonaws.com.cn/");
        assert!(!a.has_session_token());

        let mut env = keys.to_vec();
        env.extend([
            ("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEXAMPLE"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_REGION", "eu-central-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
        ]);
        let a = aws(&env).unwrap();
        assert_eq!(a.default_region, Some(("eu-central-1".to_owned(), "AWS_REGION")));
        assert_eq!(a.endpoint(&SM, "eu-west-1").as_str(), "http://127.0.0.1:4566/");
        assert!(a.has_session_token());
        env.push(("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://localhost:5000/"));
        assert_eq!(aws(&env).unwrap().endpoint(&SM, "eu-west-1").as_str(), "http://localhost:5000/");
        env.push(("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"));
        assert_eq!(
            aws(&env).unwrap().endpoint(&SM, "eu-west-1").as_str(),
            "https://secretsmanager.eu-west-1.amazonaws.com/"
        );
    }

    #[test]
    fn bad_settings_name_their_variable() {
        let err = aws(&[("AWS_SECRET_ACCESS_KEY", "x")]).unwrap_err();
        assert_eq!(err.input, "AWS_ACCESS_KEY_ID");
        assert!(err.message.contains("configure-aws-credentials"), "{err}");
        let err = aws(&[("AWS_ACCESS_KEY_ID", "AKIA0123")]).unwrap_err();
        assert_eq!(err.input, "AWS_SECRET_ACCESS_KEY");
        let err = aws(&[("AWS_ACCESS_KEY_ID", "\"AKIA0123\""), ("AWS_SECRET_ACCESS_KEY", "x")]).unwrap_err();
        assert_eq!(err.input, "AWS_ACCESS_KEY_ID");
        let base = [("AWS_ACCESS_KEY_ID", "AKIA0123"), ("AWS_SECRET_ACCESS_KEY", "k")];
        let with = |k: &'static str, v: &'static str| {
            let mut e = base.to_vec();
            e.push((k, v));
            aws(&e).unwrap_err()
        };
        assert_eq!(with("AWS_SESSION_TOKEN", "two words").input, "AWS_SESSION_TOKEN");
        assert_eq!(with("AWS_REGION", "Europe").input, "AWS_REGION");
        assert_eq!(with("AWS_ENDPOINT_URL", "http://aws.example.com").input, "AWS_ENDPOINT_URL");
        assert!(with("AWS_ENDPOINT_URL_SECRETS_MANAGER", "ftp://x").message.contains("not supported"));
    }

    #[test]
    fn regions() {
        for ok in ["eu-west-1", "us-gov-west-1", "cn-north-1", "ap-southeast-5", "il-central-1", "eusc-de-east-1"] {
            assert!(check_region("r", ok).is_ok(), "{ok}");
        }
        for bad in ["", "eu", "eu-west", "EU-WEST-1", "eu-west-1a", "eu_west_1", "eu--1", "https://x"] {
            assert!(check_region("r", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_are_read_from_json_xml_or_the_header() {
        let json = response(
            400,
            r#"{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","Message":"Secrets Manager can't find the specified secret."}"#,
            &[],
        );
        let e = AwsError::of(&json).unwrap();
        assert_eq!(e.code, "ResourceNotFoundException");
        assert_eq!(e.message, "Secrets Manager can't find the specified secret.");
        let throttled = response(400, r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#, &[]);
        assert!(AwsError::of(&throttled).unwrap().is_throttling());
        assert!(super::throttled(&throttled));
        let xml = response(
            403,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<ErrorResponse><Errors><Error><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/w is not authorized to perform: secretsmanager:PutSecretValue &amp; more</Message><Type>Sender</Type></Error></Errors></ErrorResponse>",
            &[],
        );
        let e = AwsError::of(&xml).unwrap();
        assert_eq!(e.code, "AccessDenied");
        assert!(e.message.ends_with("secretsmanager:PutSecretValue & more"), "{}", e.message);
        assert!(!super::throttled(&xml));
        let header_only = response(503, "", &[("x-amzn-errortype", "ServiceUnavailableException:http://internal/")]);
        assert_eq!(AwsError::of(&header_only).unwrap().code, "ServiceUnavailableException");
        assert_eq!(AwsError::of(&response(502, "<html>Bad Gateway</html>", &[])), None);
        // A message never carries a live secret, nor a second line.
        let _s = Secret::new("r1-leaked-into-a-message");
        let echo = response(
            400,
            r#"{"__type":"InvalidRequestException","message":"bad r1-leaked-into-a-message\nline two"}"#,
            &[],
        );
        assert_eq!(AwsError::of(&echo).unwrap().message, "bad [redacted]\\nline two");
    }

    #[test]
    fn a_signed_request_carries_its_target_date_token_and_signature_marked_sensitive() {
        let a = aws(&[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            ("AWS_SESSION_TOKEN", "session-token-0123456789"),
        ])
        .unwrap();
        let url = Url::parse("http://127.0.0.1:4566/").unwrap();
        let body = Arc::new(Zeroizing::new(br#"{"SecretId":"ci/x"}"#.to_vec()));
        let now: jiff::Timestamp = "2015-08-30T12:36:00Z".parse().unwrap();
        let req = a.sign(&SM, &url, "us-east-1", "DescribeSecret", &body, now);
        assert_eq!(req.header_value("x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(req.header_value("x-amz-target"), Some("secretsmanager.DescribeSecret"));
        assert_eq!(req.header_value("x-amz-security-token"), Some("session-token-0123456789"));
        assert!(req.is_sensitive("x-amz-security-token") && req.is_sensitive("authorization"));
        assert_eq!(req.body(), Some((JSON_1_1, body.as_slice())));
        // The signature over exactly these headers, computed by the signer on its own.
        let signed = [
            ("content-type", JSON_1_1),
            ("host", "127.0.0.1:4566"),
            ("x-amz-date", "20150830T123600Z"),
            ("x-amz-target", "secretsmanager.DescribeSecret"),
            ("x-amz-security-token", "session-token-0123456789"),
        ];
        let expected = sigv4::authorization(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            &sigv4::Scope { date_time: "20150830T123600Z", region: "us-east-1", service: "secretsmanager" },
            &sigv4::Signable { method: "POST", path: "/", query: "", headers: &signed, body: body.as_slice() },
        );
        assert_eq!(req.header_value("authorization"), Some(expected.as_str()));
        assert!(expected.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/secretsmanager/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature="
        ));
        assert!(!format!("{req:?}").contains("session-token"), "{req:?}");
    }
}
