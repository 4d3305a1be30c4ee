//! The Vault (or OpenBao) connection (`vault:`, `vault_addr`, `vault_namespace`, `vault_token`,
//! TLS), shared by the `vault-token` and `vault-approle` providers and the `vault-kv` target.
//! Unset settings are taken from the environment the way the Vault CLI takes them:
//! `VAULT_ADDR`, `VAULT_NAMESPACE`, `VAULT_CACERT`, `VAULT_CLIENT_CERT`, `VAULT_CLIENT_KEY`.
//! https only, except to loopback. Vault's errors (`{"errors": [...]}`) are shown on one line,
//! scrubbed of every known secret.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use url::Url;

use super::Service;
use crate::error::InputError;
use crate::http::{Attempted, Http, Method, Request, Response, UpstreamTls};
use crate::inputs::tls::{given, TlsDefaults, TlsFields};
use crate::inputs::{check_url, Env, Field, Fields, Owner};
use crate::log;
use crate::secret::{redact, Secret};

const OWNER: Owner = Owner::Service("vault");
const ADDR: Field = Field::plain("vault_addr", "Vault/OpenBao address (default: VAULT_ADDR)").key("addr").of(OWNER);
const NAMESPACE: Field =
    Field::plain("vault_namespace", "Vault namespace, sent as X-Vault-Namespace (default: VAULT_NAMESPACE)")
        .key("namespace")
        .of(OWNER);
const TOKEN: Field = Field::secret(
    "vault_token",
    "a Vault token that writes vault-kv targets (and manages vault-approle secret IDs); default: a vault-token \
     rotation writes with the token it rotates",
)
.key("token")
.of(OWNER);
const CA_CERT: Field =
    Field::plain("vault_ca_cert", "PEM CA certificates (path) Vault is verified against (default: VAULT_CACERT)")
        .input_only()
        .of(OWNER);
const TLS: TlsFields = TlsFields::of(OWNER);

/// How Vault is reached: its address, namespace and TLS settings.
#[derive(Debug)]
pub struct Connection {
    /// The address (`https://vault.example.com:8200`), without `/v1`.
    pub addr: Url,
    /// `X-Vault-Namespace`, if any.
    pub namespace: Option<String>,
    /// Its own CA and client certificate, if any.
    pub tls: Option<Arc<UpstreamTls>>,
}

impl Connection {
    /// `<addr>/v1/<path>`, each `/`-separated part of `path` one URL segment.
    pub fn url(&self, path: &str) -> Url {
        let mut url = self.addr.clone();
        {
            let mut segments = url.path_segments_mut().expect("an http(s) address");
            segments.pop_if_empty().push("v1");
            segments.extend(path.split('/').filter(|s| !s.is_empty()));
        }
        url
    }

    /// A request to `path` authenticated with `token` (or none, for a login).
    pub fn request(&self, method: Method, path: &str, token: Option<&Secret>) -> Request {
        let mut req = Request::new(method, self.url(path)).header("x-vault-request", "true").tls(self.tls.as_ref());
        if let Some(ns) = &self.namespace {
            req = req.header("x-vault-namespace", ns.clone());
        }
        if let Some(t) = token {
            req = req.secret_header("x-vault-token", t.clone());
        }
        req
    }

    /// Sends a request that is safe to repeat (reads, check-and-set writes, revocations).
    pub async fn send(&self, http: &Http, what: &str, req: &Request) -> Attempted {
        log::debug(&format!("{} {}", req.method, req.url));
        http.send_idempotent(what, req).await
    }

    /// Two connections reach the same Vault namespace.
    pub fn same_as(&self, other: &Connection) -> bool {
        self.addr == other.addr && self.namespace == other.namespace
    }

    /// How this Vault is named in messages: its address, and namespace.
    pub fn describe(&self) -> String {
        let addr = self.addr.as_str().trim_end_matches('/');
        match &self.namespace {
            Some(ns) => format!("{addr} (namespace {ns})"),
            None => addr.to_owned(),
        }
    }
}

/// What Vault said went wrong, on one line: its `errors` (without the "1 error occurred" framing),
/// else its warnings, else the body's start; scrubbed of every known secret.
pub fn message(r: &Response) -> String {
    let v: Option<serde_json::Value> = serde_json::from_slice(&r.body).ok();
    let list = |key: &str| -> Vec<String> {
        v.as_ref()
            .and_then(|v| v.get(key))
            .and_then(|e| e.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str()).map(clean).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    };
    let errors = list("errors");
    let text = if !errors.is_empty() {
        errors.join("; ")
    } else if !list("warnings").is_empty() {
        list("warnings").join("; ")
    } else if v.is_some() || r.body.is_empty() {
        "(no error text)".to_owned()
    } else {
        r.snippet()
    };
    log::one_line(&redact(&text))
}

/// `1 error occurred:\n\t* permission denied\n\n` -> `permission denied`.
fn clean(s: &str) -> String {
    let lines: Vec<&str> = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| !(l.ends_with("occurred:") && l.split_whitespace().nth(1).is_some_and(|w| w.starts_with("error"))))
        .map(|l| l.trim_start_matches("* ").trim())
        .collect();
    lines.join("; ")
}

/// A Vault error status with what it usually means.
pub fn hint(status: u16) -> &'static str {
    match status {
        403 => " (permission denied: the token's policies do not allow this path, or the token is invalid)",
        404 => " (not found: check the mount, the path and the namespace)",
        503 => " (Vault is sealed or in standby)",
        _ => "",
    }
}

/// The Vault connection of a run.
#[derive(Debug)]
pub struct Vault {
    addr: Option<Url>,
    namespace: Option<String>,
    tls: Option<Arc<UpstreamTls>>,
    /// The token that writes `vault-kv` targets; `None`: a `vault-token` rotation's own.
    pub writer: Option<Secret>,
    /// How the writer token is named in errors (`input vault_token`, `vault.token`).
    pub writer_label: String,
    addr_label: String,
    connection: std::sync::OnceLock<Arc<Connection>>,
    /// One lock per KV secret written in the run (see [`Vault::kv_lock`]).
    kv_locks: Mutex<HashMap<String, KvLock>>,
}

/// Held while a KV secret is read and written with check-and-set.
pub type KvLock = Arc<tokio::sync::Mutex<()>>;

impl Service for Vault {
    const KEY: &'static str = "vault";
    const FIELDS: &'static [Field] = &[ADDR, NAMESPACE, TOKEN, CA_CERT, TLS.section, TLS.client_cert, TLS.client_key];

    fn parse(section: Option<&Fields>, inputs: &Fields) -> Result<Self, InputError> {
        if let Some(s) = section {
            s.finish(Self::FIELDS, &[])?;
        }
        let from = |f: &Field| super::setting(inputs, section, f);
        let env = inputs.env();
        let (addr, addr_label) = match from(&ADDR)? {
            Some((a, label)) => (Some(parse_addr(&label, &a)?), label),
            None => match env.get("VAULT_ADDR") {
                Some(a) => (Some(parse_addr("VAULT_ADDR", a)?), "VAULT_ADDR".to_owned()),
                None => (None, inputs.label(&ADDR)),
            },
        };
        let namespace = match from(&NAMESPACE)? {
            Some((ns, label)) => parse_namespace(&label, &ns)?,
            None => match env.get("VAULT_NAMESPACE") {
                Some(ns) => parse_namespace("VAULT_NAMESPACE", ns)?,
                None => None,
            },
        };
        let (writer, writer_label) = match inputs.secret(&TOKEN)? {
            Some(t) => (Some(t), inputs.label(&TOKEN)),
            None => match section {
                Some(s) => (s.secret(&TOKEN)?, s.label(&TOKEN)),
                None => (None, inputs.label(&TOKEN)),
            },
        };
        if let Some(w) = &writer {
            check_token(&writer_label, w)?;
        }
        // Inputs first, then the section, then the Vault CLI's variables.
        let mut tls = given(inputs, &TLS, Some(&CA_CERT))?;
        if tls.is_empty() {
            if let Some(s) = section {
                tls = given(s, &TLS, None)?;
            }
        }
        let tls = tls.resolve(env_defaults(env))?;
        Ok(Vault {
            addr,
            namespace,
            tls,
            writer,
            writer_label,
            addr_label,
            connection: Default::default(),
            kv_locks: Mutex::default(),
        })
    }
}

/// The Vault CLI's TLS variables, as defaults.
pub fn env_defaults(env: &Env) -> TlsDefaults {
    let path = |k: &str| env.get(k).map(|v| (k.to_owned(), PathBuf::from(v)));
    TlsDefaults {
        client_cert: path("VAULT_CLIENT_CERT"),
        client_key: path("VAULT_CLIENT_KEY"),
        ca_cert: path("VAULT_CACERT"),
    }
}

impl Vault {
    /// The connection, or an error naming the address to set.
    pub fn connection(&self) -> Result<Arc<Connection>, InputError> {
        let Some(addr) = &self.addr else {
            return Err(InputError::new(
                self.addr_label.clone(),
                "is required: the Vault or OpenBao address (https://vault.example.com:8200), or set VAULT_ADDR",
            ));
        };
        Ok(self
            .connection
            .get_or_init(|| {
                Arc::new(Connection { addr: addr.clone(), namespace: self.namespace.clone(), tls: self.tls.clone() })
            })
            .clone())
    }

    /// The lock of the KV secret `<mount>/<path>` at `conn` (its address and namespace), one for
    /// every target of the run that writes a field of it: they take turns at the read and
    /// check-and-set write instead of racing each other's version.
    pub fn kv_lock(&self, conn: &Connection, mount: &str, path: &str) -> KvLock {
        let key = format!("{}\n{}\n{mount}\n{path}", conn.addr, conn.namespace.as_deref().unwrap_or(""));
        self.kv_locks.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default().clone()
    }

    /// A connection with some of its settings replaced (a provider's own address, namespace or TLS).
    pub fn with(
        &self,
        addr: Option<Url>,
        namespace: Option<Option<String>>,
        tls: Option<Option<Arc<UpstreamTls>>>,
    ) -> Result<Arc<Connection>, InputError> {
        if addr.is_none() && namespace.is_none() && tls.is_none() {
            return self.connection();
        }
        let addr = match addr {
            Some(a) => a,
            None => self.connection()?.addr.clone(),
        };
        Ok(Arc::new(Connection {
            addr,
            namespace: namespace.unwrap_or_else(|| self.namespace.clone()),
            tls: tls.unwrap_or_else(|| self.tls.clone()),
        }))
    }
}

/// A Vault address: https (http only to loopback), no path beyond `/`.
pub fn parse_addr(input: &str, s: &str) -> Result<Url, InputError> {
    let trimmed = s.trim().trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/v1").unwrap_or(trimmed);
    let url = check_url(input, trimmed)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(InputError::new(input, format!("`{s}` has a query or fragment: give the address alone")));
    }
    Ok(url)
}

/// A namespace path (`team/ci`): letters, digits, `-`, `_`, `.`, separated by `/`.
pub fn parse_namespace(input: &str, s: &str) -> Result<Option<String>, InputError> {
    let v = s.trim().trim_matches('/');
    if v.is_empty() {
        return Ok(None);
    }
    let ok = v.len() <= 512
        && v.split('/').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
    if !ok {
        return Err(InputError::new(
            input,
            format!("`{v}` is not a Vault namespace: use its path, like team or team/ci (letters, digits, - _ .)"),
        ));
    }
    Ok(Some(v.to_owned()))
}

/// A token pasted with whitespace, or something that is not a Vault token, is named before
/// anything is sent.
pub fn check_token(input: &str, token: &Secret) -> Result<(), InputError> {
    crate::inputs::check_token_text(input, token)?;
    let t = token.expose();
    if t.starts_with("hvb.") || t.starts_with("b.") {
        return Err(InputError::new(
            input,
            "is a batch token, which cannot create or revoke tokens: use a service token (hvs. or s.)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::testing::response;

    #[test]
    fn vault_errors_are_one_line_without_framing() {
        let r = response(403, r#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#, &[]);
        assert_eq!(message(&r), "permission denied");
        let r = response(400, r#"{"errors":["check-and-set parameter did not match the current version"]}"#, &[]);
        assert_eq!(message(&r), "check-and-set parameter did not match the current version");
        let r = response(200, r#"{"data":null,"warnings":["No token found with this accessor"]}"#, &[]);
        assert_eq!(message(&r), "No token found with this accessor");
        let r = response(502, "<html>bad\ngateway</html>", &[]);
        assert_eq!(message(&r), "<html>bad gateway</html>");
        let _s = Secret::new("s.echoed-token-0123456789");
        let r = response(400, r#"{"errors":["token s.echoed-token-0123456789 is bad"]}"#, &[]);
        assert_eq!(message(&r), "token [redacted] is bad");
    }

    #[test]
    fn urls_requests_and_namespaces() {
        let c = Connection {
            addr: parse_addr("a", "https://vault.example.com:8200/").unwrap(),
            namespace: Some("team/ci".into()),
            tls: None,
        };
        assert_eq!(c.url("secret/data/ci/app").as_str(), "https://vault.example.com:8200/v1/secret/data/ci/app");
        let req = c.request(Method::GET, "auth/token/lookup-self", Some(&Secret::new("s.current-0123456789")));
        assert_eq!(req.header_value("x-vault-namespace"), Some("team/ci"));
        assert_eq!(req.header_value("x-vault-token"), Some("s.current-0123456789"));
        assert!(req.is_sensitive("x-vault-token"));
        assert!(!req.is_sensitive("x-vault-namespace"));
        assert_eq!(parse_addr("a", "http://127.0.0.1:8200/v1").unwrap().as_str(), "http://127.0.0.1:8200/");
        assert!(parse_addr("a", "http://vault.example.com:8200").is_err());
        assert_eq!(parse_namespace("n", "/team/ci/").unwrap().as_deref(), Some("team/ci"));
        assert!(parse_namespace("n", "team ci").is_err());
    }

    #[test]
    fn targets_of_one_kv_secret_share_one_lock() {
        let env = Env::from_pairs([("VAULT_ADDR", "https://vault.example.com")]);
        let inputs = crate::inputs::Inputs::default();
        let v = Vault::parse(None, &Fields::inputs(&inputs, &env)).unwrap();
        let c = v.connection().unwrap();
        let other_ns = v.with(None, Some(Some("team".into())), None).unwrap();
        let a = v.kv_lock(&c, "secret", "ci/app");
        assert!(Arc::ptr_eq(&a, &v.kv_lock(&c, "secret", "ci/app")), "one secret, one lock");
        assert!(!Arc::ptr_eq(&a, &v.kv_lock(&c, "secret", "ci/api")));
        assert!(!Arc::ptr_eq(&a, &v.kv_lock(&c, "kv", "ci/app")));
        assert!(!Arc::ptr_eq(&a, &v.kv_lock(&other_ns, "secret", "ci/app")), "another namespace, another secret");
    }

    #[test]
    fn the_vault_cli_variables_are_the_defaults() {
        let env = Env::from_pairs([("VAULT_ADDR", "https://vault.example.com"), ("VAULT_NAMESPACE", "team")]);
        let inputs = crate::inputs::Inputs::default();
        let v = Vault::parse(None, &Fields::inputs(&inputs, &env)).unwrap();
        let c = v.connection().unwrap();
        assert_eq!(c.describe(), "https://vault.example.com (namespace team)");
        let env = Env::from_pairs([("VAULT_ADDR", "http://vault.example.com")]);
        let e = Vault::parse(None, &Fields::inputs(&inputs, &env)).unwrap_err();
        assert_eq!(e.input, "VAULT_ADDR");
        let env = Env::default();
        let v = Vault::parse(None, &Fields::inputs(&inputs, &env)).unwrap();
        assert_eq!(v.connection().unwrap_err().input, "input vault_addr");
    }
}
