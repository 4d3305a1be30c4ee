//! Checks every module shares: URLs that may carry credentials, durations, and where a secret
//! comes from (`INPUT_*`, a file, `{ env: NAME }`).

use std::path::PathBuf;
use std::time::Duration;

use url::Url;
use zeroize::Zeroizing;

use super::env::Env;
use crate::error::InputError;
use crate::secret::Secret;

/// Where a secret comes from.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// `{ env: NAME }`: read from an environment variable.
    Env(String),
    /// `{ file: PATH }` or `--name-file PATH`: read from a file (surrounding whitespace trimmed).
    File(PathBuf),
    /// A value given directly (single-rotation mode: `INPUT_<NAME>`).
    Value(Secret),
    /// A literal string in the config file: refused.
    Literal,
    /// `{}` or `{ env, file }` together, or another shape: refused.
    Ambiguous,
}

/// Reads a secret from where its source says. Errors name the input, never the value.
/// `{ env: NAME }` is read from `env` (the environment the run was given), never from elsewhere.
pub fn resolve(input: &str, src: &SecretSource, env: &Env) -> Result<Secret, InputError> {
    let value = match src {
        SecretSource::Value(v) => v.clone(),
        SecretSource::Literal => {
            return Err(InputError::new(
                input,
                "a literal secret is refused: secrets do not belong in a committed file; use { env: NAME } or { file: PATH }",
            ))
        }
        SecretSource::Ambiguous => {
            return Err(InputError::new(input, "takes exactly one of { env: NAME } or { file: PATH }"))
        }
        SecretSource::Env(name) => env.secret(name).ok_or_else(|| {
            InputError::new(input, format!("environment variable {name} is not set or empty: set it, or point to another"))
        })?,
        SecretSource::File(path) => {
            let bytes = Zeroizing::new(
                std::fs::read(path)
                    .map_err(|e| InputError::new(input, format!("cannot read {}: {e}", path.display())))?,
            );
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| InputError::new(input, format!("file {} is not UTF-8 text", path.display())))?;
            if text.trim().is_empty() {
                return Err(InputError::new(input, format!("file {} is empty", path.display())));
            }
            Secret::new(text.trim())
        }
    };
    if value.is_empty() {
        return Err(InputError::new(input, "is empty"));
    }
    Ok(value)
}

/// A URL that may carry credentials: https, or http to a loopback host only.
pub fn check_url(input: &str, s: &str) -> Result<Url, InputError> {
    let url = Url::parse(s.trim()).map_err(|e| InputError::new(input, format!("`{s}` is not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(InputError::new(input, "must not hold credentials: pass them as secret inputs"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(InputError::new(
                input,
                format!("`{s}` uses plain http: use https (http is allowed only to loopback hosts)"),
            ))
        }
        other => return Err(InputError::new(input, format!("`{other}:` is not supported: use an https URL"))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(InputError::new(input, format!("`{s}` has no host")));
    }
    Ok(url)
}

/// True for 127.0.0.0/8, ::1 and localhost.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// `30s`, `20h`, `7d`, `1d12h`, `90m`.
pub fn parse_duration(input: &str, s: &str) -> Result<Duration, InputError> {
    let bad =
        || InputError::new(input, format!("`{s}` is not a duration: use a number and a unit, like 30s, 20h or 7d"));
    let s = s.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
    }
    if !num.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// A duration as `parse_duration` reads it, largest units first: `20h`, `2d12h`, `90s`, `0s`.
pub fn format_duration(d: Duration) -> String {
    let mut left = d.as_secs();
    if left == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, secs) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if left >= secs {
            out.push_str(&format!("{}{unit}", left / secs));
            left %= secs;
        }
    }
    out
}

/// A token pasted with a newline or a space around a word is a mistake worth naming.
pub fn check_token_text(input: &str, token: &Secret) -> Result<(), InputError> {
    if token.expose().chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InputError::new(input, "contains whitespace or control characters: pass the token alone"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn durations_round_trip(d in 0u64..400, h in 0u64..24, m in 0u64..60, s in 0u64..60) {
            let text = format!("{d}d{h}h{m}m{s}s");
            prop_assert_eq!(parse_duration("x", &text).unwrap(), Duration::from_secs(((d * 24 + h) * 60 + m) * 60 + s));
        }
    }

    proptest! {
        #[test]
        fn formatted_durations_parse_back(secs in 0u64..100_000_000) {
            let d = Duration::from_secs(secs);
            prop_assert_eq!(parse_duration("x", &format_duration(d)).unwrap(), d);
        }
    }

    #[test]
    fn durations_are_formatted_largest_units_first() {
        assert_eq!(format_duration(Duration::from_secs(60 * 3600)), "2d12h");
        assert_eq!(format_duration(Duration::from_secs(72_000)), "20h");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn env_references_read_the_given_environment() {
        let env = Env::from_pairs([("SR_TEST_ONLY_RT", "r1-from-the-given-env")]);
        assert!(std::env::var("SR_TEST_ONLY_RT").is_err());
        let s = resolve("x", &SecretSource::Env("SR_TEST_ONLY_RT".into()), &env).unwrap();
        assert_eq!(s.expose(), "r1-from-the-given-env");
        let err = resolve("x", &SecretSource::Env("SR_TEST_ONLY_MISSING".into()), &env).unwrap_err();
        assert!(err.message.contains("SR_TEST_ONLY_MISSING is not set"), "{err}");
    }

    #[test]
    fn file_secrets_are_trimmed_and_empty_files_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pem");
        std::fs::write(&p, "\n  line-one\nline-two  \n").unwrap();
        let s = resolve("x", &SecretSource::File(p.clone()), &Env::default()).unwrap();
        assert_eq!(s.expose(), "line-one\nline-two");
        std::fs::write(&p, " \n").unwrap();
        assert!(resolve("x", &SecretSource::File(p), &Env::default()).unwrap_err().message.contains("is empty"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("x", "20h").unwrap(), Duration::from_secs(72_000));
        assert_eq!(parse_duration("x", "1d12h").unwrap(), Duration::from_secs(129_600));
        assert_eq!(parse_duration("x", "30s").unwrap(), Duration::from_secs(30));
        for bad in ["", "20", "h", "2x", "-1d", "1.5h"] {
            assert!(parse_duration("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_need_https_except_loopback() {
        assert!(check_url("u", "https://example.com/token").is_ok());
        assert!(check_url("u", "http://127.0.0.1:8080/token").is_ok());
        assert!(check_url("u", "http://[::1]:8080/").is_ok());
        assert!(check_url("u", "http://localhost/").is_ok());
        assert!(check_url("u", "http://example.com/").is_err());
        assert!(check_url("u", "http://127.0.0.1.example.com/").is_err());
        assert!(check_url("u", "https://user:pw@example.com/").is_err());
        assert!(check_url("u", "ftp://example.com/").is_err());
    }
}
