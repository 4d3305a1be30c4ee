//! The one type that holds a credential: redacted when printed, zeroized when dropped.
//!
//! Every value that is created is also registered with a process-wide redactor, so that text
//! from anywhere (a server's error message, a log line, the report) can be scrubbed of it as
//! a last line of defence before it is written out. The redactor holds only weak references:
//! it knows exactly the secrets that are alive, and forgets (and the value is zeroized) as soon
//! as the last copy of a secret is dropped, so it never grows beyond what the run holds.

use std::fmt;
use std::sync::{Arc, Mutex, Weak};

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// A credential. `Debug` prints `[redacted]`; there is no `Display` and no `Serialize`.
/// The value is reachable only through [`Secret::expose`], used where a request body,
/// header or sealed box is built. Clones share one zeroizing allocation.
#[derive(Clone)]
pub struct Secret(Arc<SecretString>);

/// Values shorter than this are not worth redacting in free text (they would mangle
/// ordinary words); no real credential is that short.
const MIN_REDACT_LEN: usize = 6;

static KNOWN: Mutex<Vec<Weak<SecretString>>> = Mutex::new(Vec::new());

fn known() -> std::sync::MutexGuard<'static, Vec<Weak<SecretString>>> {
    KNOWN.lock().unwrap_or_else(|e| e.into_inner())
}

impl Secret {
    /// Wraps a value and registers it with the redactor.
    pub fn new(value: impl Into<String>) -> Self {
        let inner = Arc::new(SecretString::from(value.into()));
        if inner.expose_secret().len() >= MIN_REDACT_LEN {
            let mut known = known();
            known.retain(|w| w.strong_count() > 0);
            known.push(Arc::downgrade(&inner));
        }
        Secret(inner)
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

    /// True when both hold the same value, compared in constant time (the time taken tells
    /// nothing of where two values of one length differ).
    pub fn same_as(&self, other: &Secret) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.expose().as_bytes().ct_eq(other.expose().as_bytes()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Replaces every live secret value in `text` with `[redacted]`.
pub fn redact(text: &str) -> String {
    redact_among(&known(), text)
}

/// [`redact`] for a panic message: a panic may come while this thread holds the list of secrets
/// (waiting for it would never end), and then the whole message is withheld.
pub fn redact_panic(text: &str) -> String {
    match KNOWN.try_lock() {
        Ok(known) => redact_among(&known, text),
        Err(std::sync::TryLockError::Poisoned(known)) => redact_among(&known.into_inner(), text),
        Err(std::sync::TryLockError::WouldBlock) => "[withheld: the secrets were being registered]".to_owned(),
    }
}

fn redact_among(known: &[Weak<SecretString>], text: &str) -> String {
    let live: Vec<Arc<SecretString>> = known.iter().filter_map(Weak::upgrade).collect();
    let mut values: Vec<&str> = live.iter().map(|s| s.expose_secret()).collect();
    // Longest first, so a value that contains another is removed whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = text.to_owned();
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
    fn a_panic_message_is_redacted() {
        let s = Secret::new("tok-panic-7c1d");
        let caught = std::panic::catch_unwind(|| panic!("bug while holding {}", s.expose())).unwrap_err();
        let message = caught.downcast_ref::<String>().unwrap();
        // Another test's thread may be registering a secret just now: then it is withheld.
        let shown = redact_panic(message);
        assert!(shown == "bug while holding [redacted]" || shown.starts_with("[withheld"), "{shown}");
        let _held = known();
        assert!(!redact_panic(message).contains("tok-panic"), "withheld while the list is held");
    }

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
    fn values_compare_by_value_not_by_copy() {
        let a = Secret::new("s.shared-token-0123456789");
        assert!(a.same_as(&Secret::new("s.shared-token-0123456789")), "two copies of one value");
        assert!(!a.same_as(&Secret::new("s.shared-token-0123456780")), "one byte apart");
        assert!(!a.same_as(&Secret::new("s.shared-token")), "a prefix");
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

    #[test]
    fn the_redactor_forgets_dropped_secrets_and_stays_bounded() {
        let kept = Secret::new("kept-value-0123456789");
        for i in 0..10_000 {
            let s = Secret::new(format!("short-lived-{i:05}-abcdef"));
            let _copy = s.clone();
        }
        // Other tests run beside this one and hold a few secrets of their own.
        assert!(known().len() < 100, "{} entries", known().len());
        assert_eq!(redact("x short-lived-00042-abcdef y"), "x short-lived-00042-abcdef y");
        assert_eq!(redact("kept-value-0123456789"), "[redacted]");
        drop(kept);
    }
}
