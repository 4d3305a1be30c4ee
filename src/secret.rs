//! The one type that holds a credential: redacted when printed, zeroized when dropped.
//!
//! Every value that is created is also registered with a process-wide redactor, so that text
//! from anywhere (a server's error message, a log line, the report) can be scrubbed of it as
//! a last line of defence before it is written out.

use std::fmt;
use std::sync::Mutex;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A credential. `Debug` prints `[redacted]`; there is no `Display` and no `Serialize`.
/// The value is reachable only through [`Secret::expose`], used where a request body,
/// header or sealed box is built.
#[derive(Clone)]
pub struct Secret(SecretString);

/// Values shorter than this are not worth redacting in free text (they would mangle
/// ordinary words); no real credential is that short.
const MIN_REDACT_LEN: usize = 6;

static KNOWN: Mutex<Vec<Zeroizing<String>>> = Mutex::new(Vec::new());

impl Secret {
    /// Wraps a value and registers it with the redactor.
    pub fn new(value: impl Into<String>) -> Self {
        let value: String = value.into();
        if value.len() >= MIN_REDACT_LEN {
            let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
            if !known.iter().any(|k| k.as_str() == value) {
                known.push(Zeroizing::new(value.clone()));
            }
        }
        Secret(SecretString::from(value))
    }

    /// The value itself. Call only where it must leave the process (a request, a sealed box).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Length of the value in bytes.
    pub fn len(&self) -> usize {
        self.expose().len()
    }

    /// True when the value is empty.
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }

    /// `sha256:` and the first 12 hex digits of the value's SHA-256: correlates runs
    /// (run 2's old fingerprint is run 1's new one) without revealing the value.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.expose().as_bytes());
        let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// True when both hold the same value.
    pub fn same_as(&self, other: &Secret) -> bool {
        self.expose() == other.expose()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Replaces every registered secret value in `text` with `[redacted]`.
pub fn redact(text: &str) -> String {
    let known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_owned();
    // Longest first, so a value that contains another is removed whole.
    let mut values: Vec<&str> = known.iter().map(|k| k.as_str()).collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for v in values {
        if out.contains(v) {
            out = out.replace(v, "[redacted]");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hunter2-very-secret");
        let printed = format!("{s:?} {:?}", Some(&s));
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("[redacted]"));
    }

    #[test]
    fn fingerprint_is_sha256_prefix() {
        // sha256("abc") = ba7816bf8f01cfea...
        assert_eq!(Secret::new("abc").fingerprint(), "sha256:ba7816bf8f01");
    }

    #[test]
    fn redact_scrubs_registered_values() {
        let _s = Secret::new("tok-5f2a9c1e");
        let msg = redact("server said: token tok-5f2a9c1e is invalid");
        assert_eq!(msg, "server said: token [redacted] is invalid");
    }

    #[test]
    fn redact_prefers_longest_value() {
        let _a = Secret::new("abcdefgh");
        let _b = Secret::new("abcdefgh-ijkl");
        assert_eq!(redact("x abcdefgh-ijkl y"), "x [redacted] y");
    }
}
