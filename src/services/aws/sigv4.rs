//! AWS Signature Version 4 (header form): the canonical request, the string to sign, the signing
//! key derived from the secret access key, and the `Authorization` header. Tested against AWS's
//! published SigV4 test suite, and end to end against moto, whose verifier is botocore's.
//!
//! The key material and the canonical request (which holds a session token) live in zeroizing
//! memory.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// The algorithm name in the string to sign and the `Authorization` header.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// One request, as far as the signature covers it.
pub struct Signable<'a> {
    /// `POST`.
    pub method: &'a str,
    /// The canonical URI: the URL's path, already percent-encoded (`/`).
    pub path: &'a str,
    /// The canonical query string (empty here: the JSON protocols send none).
    pub query: &'a str,
    /// The headers that are signed, in any case and order (`host` included).
    pub headers: &'a [(&'a str, &'a str)],
    /// The body's exact bytes.
    pub body: &'a [u8],
}

/// Who signs, for what, when.
pub struct Scope<'a> {
    /// `20150830T123600Z`.
    pub date_time: &'a str,
    /// `us-east-1`.
    pub region: &'a str,
    /// The signing name of the service (`secretsmanager`).
    pub service: &'a str,
}

impl Scope<'_> {
    fn date(&self) -> &str {
        self.date_time.get(..8).unwrap_or(self.date_time)
    }

    /// `20150830/us-east-1/service/aws4_request`.
    pub fn credential_scope(&self) -> String {
        format!("{}/{}/{}/aws4_request", self.date(), self.region, self.service)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hmac(key: &[u8], data: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    Zeroizing::new(mac.finalize().into_bytes().to_vec())
}

/// A header value as SigV4 canonicalizes it: trimmed, inner runs of spaces made one.
fn canonical_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The canonical request and the signed-headers list (`host;x-amz-date`).
pub fn canonical_request(s: &Signable) -> (Zeroizing<String>, String) {
    let mut headers: Vec<(String, String)> =
        s.headers.iter().map(|(k, v)| (k.trim().to_ascii_lowercase(), canonical_value(v))).collect();
    // A stable sort keeps the order of repeated headers, whose values are joined with commas.
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let mut canonical_headers = String::new();
    let mut names: Vec<&str> = Vec::new();
    for (name, value) in &headers {
        if names.last() == Some(&name.as_str()) {
            canonical_headers.pop();
            canonical_headers.push(',');
        } else {
            canonical_headers.push_str(name);
            canonical_headers.push(':');
            names.push(name);
        }
        canonical_headers.push_str(value);
        canonical_headers.push('\n');
    }
    let signed = names.join(";");
    let text =
        format!("{}\n{}\n{}\n{}\n{}\n{}", s.method, s.path, s.query, canonical_headers, signed, sha256_hex(s.body));
    // The headers' text held a session token; the copy is scrubbed when dropped.
    let _scrub = Zeroizing::new(canonical_headers);
    (Zeroizing::new(text), signed)
}

/// The string to sign for a canonical request.
pub fn string_to_sign(scope: &Scope, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        scope.date_time,
        scope.credential_scope(),
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The signature: HMAC-SHA256 of the string to sign under the key derived from the secret
/// access key, the date, the region and the service.
pub fn signature(secret_access_key: &str, scope: &Scope, string_to_sign: &str) -> String {
    let key = Zeroizing::new(format!("AWS4{secret_access_key}"));
    let k_date = hmac(key.as_bytes(), scope.date().as_bytes());
    let k_region = hmac(&k_date, scope.region.as_bytes());
    let k_service = hmac(&k_region, scope.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    hex(&hmac(&k_signing, string_to_sign.as_bytes()))
}

/// The `Authorization` header's value for a request.
pub fn authorization(access_key_id: &str, secret_access_key: &str, scope: &Scope, s: &Signable) -> Zeroizing<String> {
    let (canonical, signed) = canonical_request(s);
    let sts = string_to_sign(scope, &canonical);
    let signature = signature(secret_access_key, scope, &sts);
    Zeroizing::new(format!(
        "{ALGORITHM} Credential={access_key_id}/{}, SignedHeaders={signed}, Signature={signature}",
        scope.credential_scope()
    ))
}

#[cfg(test)]
mod tests {
    //! Known answers from AWS's Signature Version 4 test suite (as kept in `awslabs/aws-c-auth`,
    //! `tests/aws-signing-test-suite/v4`): credentials `AKIDEXAMPLE`, region `us-east-1`,
    //! service `service`, 2015-08-30T12:36:00Z. Each case checks the canonical request, and the
    //! signature (so the string to sign and the key derivation) against the suite's files.

    use super::*;

    const KEY_ID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const DATE: &str = "20150830T123600Z";
    const SCOPE: Scope = Scope { date_time: DATE, region: "us-east-1", service: "service" };
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const STS_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

    struct Case {
        name: &'static str,
        method: &'static str,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
        canonical: String,
        string_to_sign: Option<&'static str>,
        signature: &'static str,
    }

    fn cases() -> Vec<Case> {
        vec![
            Case {
                name: "get-vanilla",
                method: "GET",
                headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Date", DATE)],
                body: "",
                canonical: format!("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:{DATE}\n\nhost;x-amz-date\n{EMPTY_SHA256}"),
                string_to_sign: None,
                signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            },
            Case {
                name: "post-vanilla",
                method: "POST",
                headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Date", DATE)],
                body: "",
                canonical: format!("POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:{DATE}\n\nhost;x-amz-date\n{EMPTY_SHA256}"),
                string_to_sign: None,
                signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            },
            Case {
                name: "post-header-key-sort",
                method: "POST",
                headers: &[("Host", "example.amazonaws.com"), ("My-Header1", "value1"), ("X-Amz-Date", DATE)],
                body: "",
                canonical: format!("POST\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nx-amz-date:{DATE}\n\nhost;my-header1;x-amz-date\n{EMPTY_SHA256}"),
                string_to_sign: Some("AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65"),
                signature: "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
            },
            Case {
                name: "post-header-value-case",
                method: "POST",
                headers: &[("Host", "example.amazonaws.com"), ("My-Header1", "VALUE1"), ("X-Amz-Date", DATE)],
                body: "",
                canonical: format!("POST\n/\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\nx-amz-date:{DATE}\n\nhost;my-header1;x-amz-date\n{EMPTY_SHA256}"),
                string_to_sign: None,
                signature: "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
            },
            Case {
                name: "get-header-value-trim",
                method: "GET",
                headers: &[
                    ("Host", "example.amazonaws.com"),
                    ("My-Header1", " value1"),
                    ("My-Header2", " \"a   b   c\""),
                    ("X-Amz-Date", DATE),
                ],
                body: "",
                canonical: format!("GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:{DATE}\n\nhost;my-header1;my-header2;x-amz-date\n{EMPTY_SHA256}"),
                string_to_sign: None,
                signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
            },
            Case {
                name: "get-header-key-duplicate",
                method: "GET",
                headers: &[
                    ("Host", "example.amazonaws.com"),
                    ("My-Header1", "value2"),
                    ("My-Header1", "value2"),
                    ("My-Header1", "value1"),
                    ("X-Amz-Date", DATE),
                ],
                body: "",
                canonical: format!("GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:{DATE}\n\nhost;my-header1;x-amz-date\n{EMPTY_SHA256}"),
                string_to_sign: None,
                signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
            },
            Case {
                // The body is signed through its SHA-256, here also sent as x-amz-content-sha256.
                name: "post-x-www-form-urlencoded",
                method: "POST",
                headers: &[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Host", "example.amazonaws.com"),
                    ("Content-Length", "13"),
                    ("X-Amz-Date", DATE),
                    ("x-amz-content-sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"),
                ],
                body: "Param1=value1",
                canonical: format!("POST\n/\n\ncontent-length:13\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\nx-amz-date:{DATE}\n\ncontent-length;content-type;host;x-amz-content-sha256;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"),
                string_to_sign: Some("AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nb1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb"),
                signature: "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
            },
            Case {
                // Temporary credentials: the session token is a signed header.
                name: "post-sts-header-before",
                method: "POST",
                headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Security-Token", STS_TOKEN), ("X-Amz-Date", DATE)],
                body: "",
                canonical: format!("POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:{DATE}\nx-amz-security-token:{STS_TOKEN}\n\nhost;x-amz-date;x-amz-security-token\n{EMPTY_SHA256}"),
                string_to_sign: Some("AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nc237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6"),
                signature: "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
            },
        ]
    }

    #[test]
    fn the_aws_sigv4_test_suite() {
        for c in cases() {
            let s = Signable { method: c.method, path: "/", query: "", headers: c.headers, body: c.body.as_bytes() };
            let (canonical, signed) = canonical_request(&s);
            assert_eq!(canonical.as_str(), c.canonical, "{}: canonical request", c.name);
            let sts = string_to_sign(&SCOPE, &canonical);
            if let Some(expected) = c.string_to_sign {
                assert_eq!(sts, expected, "{}: string to sign", c.name);
            }
            assert_eq!(signature(SECRET, &SCOPE, &sts), c.signature, "{}: signature", c.name);
            let auth = authorization(KEY_ID, SECRET, &SCOPE, &s);
            assert_eq!(
                auth.as_str(),
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={signed}, Signature={}",
                    c.signature
                ),
                "{}: authorization header",
                c.name
            );
        }
    }

    #[test]
    fn a_wrong_secret_key_gives_another_signature() {
        let s = Signable {
            method: "POST",
            path: "/",
            query: "",
            headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Date", DATE)],
            body: b"",
        };
        let (canonical, _) = canonical_request(&s);
        let sts = string_to_sign(&SCOPE, &canonical);
        assert_ne!(
            signature("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ", &SCOPE, &sts),
            signature(SECRET, &SCOPE, &sts)
        );
    }
}
