//! Provider `vault-token`: a Vault or OpenBao token is replaced by an orphan successor
//! (`auth/token/create/<role>`, or `auth/token/create-orphan` with the current token's policies).
//! The old token keeps working for `grace` after the new one is stored, so jobs in flight do not
//! break; it is revoked by accessor at once (`grace: 0`) or by a later run: the successor's own
//! `meta` records `rotated_from` (the old accessor) and `rotated_at`, and the next run that holds
//! the successor revokes `rotated_from` once `rotated_at + grace` has passed. No other state.
//!
//! The old token stays valid until it is revoked, so a write that fails for good is rolled back
//! (the engine writes the old token back and [`Provider::discard`] revokes the new one).
//!
//! The lineage bookkeeping here is shared with `vault-approle`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::{Checked, Provider, ProviderError, ProviderKind, Retired, Rotated};
use crate::error::InputError;
use crate::http::{Http, HttpError, Method, Response};
use crate::inputs::tls::{given, TlsFields};
use crate::inputs::{parse_duration, Field, Fields, Owner};
use crate::log;
use crate::report::seconds;
use crate::secret::Secret;
use crate::services::vault::{self, check_token, env_defaults, parse_addr, parse_namespace, Connection, Vault};
use crate::services::{Service, Services};

const OWNER: Owner = Owner::Provider("vault-token");
const TOKEN: Field = Field::secret("token", "vault-token: the Vault token to rotate (the one CI uses)").of(OWNER);
const ROLE: Field = Field::plain(
    "vault_role",
    "vault-token: the token role the successor is created from (auth/token/create/ROLE; it must have orphan=true); \
     without it auth/token/create-orphan with the current token's policies",
)
.of(OWNER);
const TTL: Field = Field::plain(
    "ttl",
    "vault-token: the successor's TTL (720h); periodic roles decide it themselves (default: the current token's \
     creation TTL)",
)
.of(OWNER);
const GRACE: Field = Field::plain(
    "grace",
    "vault-token, vault-approle: how long the old credential stays valid after the new one is stored; revoked by the \
     next run once it has passed; 0: at once (default: 15m)",
)
.of(OWNER);
const ADDR: Field =
    Field::plain("vault_addr", "this provider's Vault, when it differs from vault.addr").config_only().of(OWNER);
const NAMESPACE: Field =
    Field::plain("vault_namespace", "this provider's namespace, when it differs from vault.namespace")
        .config_only()
        .of(OWNER);
const TLS: TlsFields = TlsFields::of(OWNER);

/// Provider `vault-token`.
pub const KIND: ProviderKind = ProviderKind {
    name: "vault-token",
    fields: &[TOKEN, ROLE, TTL, GRACE, ADDR, NAMESPACE, TLS.section, TLS.client_cert, TLS.client_key],
    credential: "token",
    issues_access_token: false,
    knows_own_age: true,
    parse,
};

/// The default overlap.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(15 * 60);
const MAX_GRACE: Duration = Duration::from_secs(31 * 86_400);
/// Earlier credentials carried in a successor's metadata, at most.
const MAX_PENDING: usize = 16;

fn parse(f: &Fields, services: &Services) -> Result<Box<dyn Provider>, InputError> {
    let token =
        f.secret(&TOKEN)?.ok_or_else(|| f.error(&TOKEN, "is required for vault-token: the Vault token to rotate"))?;
    check_token(&f.label(&TOKEN), &token)?;
    let role = match f.str(&ROLE)?.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()) {
        Some(r) if r.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) && r.len() <= 128 => Some(r),
        Some(r) => return Err(f.error(&ROLE, format!("`{r}` is not a token role name: use letters, digits, - _ ."))),
        None => None,
    };
    let ttl = match f.str(&TTL)? {
        None => None,
        Some(t) => {
            let d = parse_duration(&f.label(&TTL), &t)?;
            if d < Duration::from_secs(60) || d > Duration::from_secs(10 * 365 * 86_400) {
                return Err(f.error(&TTL, "must be between 1m and 3650d"));
            }
            Some(d)
        }
    };
    let grace = parse_grace(f, &GRACE)?;
    let (conn, shared) = connection(f, services, &ADDR, &NAMESPACE, &TLS)?;
    let grace_label = f.label(&GRACE);
    Ok(Box::new(VaultToken { conn, shared, token, role, ttl, grace, grace_label, seen: Mutex::default() }))
}

/// `grace`: a duration, or `0` for none.
pub(super) fn parse_grace(f: &Fields, field: &Field) -> Result<Duration, InputError> {
    let Some(text) = f.str(field)? else { return Ok(DEFAULT_GRACE) };
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    let d = parse_duration(&f.label(field), &text)?;
    if d > MAX_GRACE {
        return Err(f.error(field, "must be at most 31d: the old credential's overlap, not its lifetime"));
    }
    Ok(d)
}

/// The provider's Vault: the `vault:` connection, or (in a config file) its own address,
/// namespace or TLS settings over it. True when it is the `vault:` connection itself.
pub(super) fn connection(
    f: &Fields,
    services: &Services,
    addr: &Field,
    namespace: &Field,
    tls: &TlsFields,
) -> Result<(Arc<Connection>, bool), InputError> {
    let service = services.get::<Vault>()?;
    if f.is_inputs() {
        return Ok((service.connection()?, true));
    }
    let own_addr = match f.str(addr)? {
        Some(a) => Some(parse_addr(&f.label(addr), &a)?),
        None => None,
    };
    let own_ns = match f.str(namespace)? {
        Some(ns) => Some(parse_namespace(&f.label(namespace), &ns)?),
        None => None,
    };
    let own_tls = given(f, tls, None)?;
    let own_tls = if own_tls.is_empty() { None } else { Some(own_tls.resolve(env_defaults(f.env()))?) };
    let conn = service.with(own_addr, own_ns, own_tls)?;
    let shared = service.connection().is_ok_and(|s| s.same_as(&conn));
    Ok((conn, shared))
}

/// An earlier credential, to revoke once its overlap has passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Predecessor {
    /// Its accessor (never the credential).
    pub accessor: String,
    /// When it was replaced.
    pub since: jiff::Timestamp,
}

pub(super) const ROTATED_FROM: &str = "rotated_from";
pub(super) const ROTATED_AT: &str = "rotated_at";
pub(super) const PENDING: &str = "pending_revocation";

/// The predecessors a credential's metadata names: `rotated_from` at `rotated_at`, and any
/// earlier ones still pending (`pending_revocation`: `accessor@time,...`).
pub(super) fn predecessors(meta: &BTreeMap<String, String>) -> Vec<Predecessor> {
    let at = |t: &str| t.trim().parse::<jiff::Timestamp>().ok();
    let mut out = Vec::new();
    if let (Some(a), Some(t)) = (meta.get(ROTATED_FROM), meta.get(ROTATED_AT).and_then(|t| at(t))) {
        if !a.is_empty() {
            out.push(Predecessor { accessor: a.clone(), since: t });
        }
    }
    for entry in meta.get(PENDING).map(String::as_str).unwrap_or("").split(',') {
        if let Some((a, t)) = entry.split_once('@') {
            if let (false, Some(t)) = (a.trim().is_empty(), at(t)) {
                out.push(Predecessor { accessor: a.trim().to_owned(), since: t });
            }
        }
    }
    out
}

/// The successor's metadata: `rotated_from` the current accessor, `rotated_at` now, the
/// predecessors still pending, and every other key of the current metadata kept. Without an
/// accessor (an AppRole secret ID its login used up: gone, nothing to revoke) neither of the
/// first two (Vault refuses an empty metadata value).
pub(super) fn lineage(
    current: &BTreeMap<String, String>,
    accessor: &str,
    pending: &[Predecessor],
) -> BTreeMap<String, String> {
    let mut meta = current.clone();
    if accessor.is_empty() {
        meta.remove(ROTATED_FROM);
        meta.remove(ROTATED_AT);
    } else {
        meta.insert(ROTATED_FROM.to_owned(), accessor.to_owned());
        meta.insert(ROTATED_AT.to_owned(), now_text());
    }
    let pending: Vec<String> =
        pending.iter().take(MAX_PENDING).map(|p| format!("{}@{}", p.accessor, seconds(p.since))).collect();
    if pending.is_empty() {
        meta.remove(PENDING);
    } else {
        meta.insert(PENDING.to_owned(), pending.join(","));
    }
    meta
}

fn now_text() -> String {
    seconds(jiff::Timestamp::now()).to_string()
}

/// True once `p`'s overlap has passed.
pub(super) fn due(p: &Predecessor, grace: Duration) -> bool {
    let grace = jiff::SignedDuration::try_from(grace).unwrap_or(jiff::SignedDuration::MAX);
    jiff::Timestamp::now().duration_since(p.since) >= grace
}

/// What `lookup-self` says about a token (its `id`, the token itself, is not read).
#[derive(Deserialize, Debug, Clone, Default)]
struct TokenInfo {
    accessor: String,
    creation_time: Option<i64>,
    creation_ttl: Option<i64>,
    expire_time: Option<String>,
    explicit_max_ttl: Option<i64>,
    display_name: Option<String>,
    #[serde(default)]
    meta: Option<BTreeMap<String, String>>,
    num_uses: Option<i64>,
    orphan: Option<bool>,
    period: Option<i64>,
    #[serde(default)]
    policies: Vec<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Lookup {
    data: TokenInfo,
}

#[derive(Deserialize)]
struct CreateAuth {
    client_token: String,
    accessor: String,
    orphan: bool,
    lease_duration: Option<i64>,
}

#[derive(Deserialize)]
struct Created {
    auth: CreateAuth,
}

/// What this run learned: the current token (from the check), the predecessors still to revoke,
/// and the successor's accessor.
#[derive(Debug, Default)]
struct Seen {
    current: Option<TokenInfo>,
    pending: Vec<Predecessor>,
    new_accessor: Option<String>,
}

/// The token to rotate, as validated.
#[derive(Debug)]
pub struct VaultToken {
    conn: Arc<Connection>,
    /// True when `conn` is the run's `vault:` connection (vault-kv targets there may use the token).
    shared: bool,
    token: Secret,
    role: Option<String>,
    ttl: Option<Duration>,
    grace: Duration,
    /// How `grace` is named in errors (`rotations[0].provider.grace`).
    grace_label: String,
    seen: Mutex<Seen>,
}

fn failed(message: String) -> ProviderError {
    ProviderError::Failed { message, maybe_consumed: false }
}

impl VaultToken {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn lookup(&self, http: &Http, token: &Secret) -> Result<Response, HttpError> {
        let req = self.conn.request(Method::GET, "auth/token/lookup-self", Some(token));
        self.conn.send(http, "Vault token lookup", &req).await.result
    }

    /// Revokes a token by accessor with `with`: true when it was revoked now, false when Vault
    /// no longer knows it (revoked or expired already).
    async fn revoke_accessor(&self, http: &Http, accessor: &str, with: &Secret) -> Result<bool, String> {
        let req = self
            .conn
            .request(Method::POST, "auth/token/revoke-accessor", Some(with))
            .json(serde_json::json!({ "accessor": accessor }));
        let r = self.conn.send(http, "Vault revoke-accessor", &req).await.result.map_err(|e| e.to_string())?;
        let status = r.status.as_u16();
        let message = vault::message(&r);
        // OpenBao: 200 with the warning "No token found with this accessor"; Vault: 400 "invalid accessor".
        let gone = message.contains("No token found") || (status == 400 && message.contains("invalid accessor"));
        if gone {
            return Ok(false);
        }
        if r.status.is_success() {
            return Ok(true);
        }
        Err(format!("HTTP {status}: {message}{}", vault::hint(status)))
    }

    /// Revokes a token with itself (the default policy allows `revoke-self`).
    async fn revoke_self(&self, http: &Http, token: &Secret) -> Result<(), String> {
        let req = self.conn.request(Method::POST, "auth/token/revoke-self", Some(token));
        let r = self.conn.send(http, "Vault revoke-self", &req).await.result.map_err(|e| e.to_string())?;
        if r.status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}: {}", r.status.as_u16(), vault::message(&r)))
        }
    }

    /// Revokes the new token: with itself, else by accessor with the current one.
    async fn revoke_new(&self, http: &Http, token: &Secret, accessor: &str) -> Result<(), String> {
        match self.revoke_self(http, token).await {
            Ok(()) => Ok(()),
            Err(first) => self.revoke_accessor(http, accessor, &self.token).await.map(drop).map_err(|second| {
                format!(
                    "{first}; by accessor: {second}. Revoke it by hand: bao token revoke -accessor {accessor} (or vault \
                     token revoke -accessor {accessor})"
                )
            }),
        }
    }

    fn create_body(&self, current: &TokenInfo, meta: BTreeMap<String, String>) -> serde_json::Value {
        let mut body = serde_json::json!({ "meta": meta });
        let ttl = self.ttl.map(|d| d.as_secs() as i64).or(current.creation_ttl.filter(|t| *t > 0));
        if let Some(ttl) = ttl {
            body["ttl"] = format!("{ttl}s").into();
        }
        if let Some(name) = current.display_name.as_deref().map(|n| n.strip_prefix("token-").unwrap_or(n)) {
            if !name.is_empty() && name != "token" && name != "root" {
                body["display_name"] = name.into();
            }
        }
        if self.role.is_none() {
            let policies: Vec<&String> = current.policies.iter().filter(|p| *p != "default").collect();
            body["policies"] = serde_json::json!(policies);
            if !current.policies.iter().any(|p| p == "default") {
                body["no_default_policy"] = true.into();
            }
            if let Some(p) = current.period.filter(|p| *p > 0) {
                body["period"] = format!("{p}s").into();
            }
            if let Some(m) = current.explicit_max_ttl.filter(|m| *m > 0) {
                body["explicit_max_ttl"] = format!("{m}s").into();
            }
        }
        body
    }

    fn create_path(&self) -> String {
        match &self.role {
            Some(r) => format!("auth/token/create/{r}"),
            None => "auth/token/create-orphan".to_owned(),
        }
    }
}

fn rejected(status: u16, message: &str) -> ProviderError {
    ProviderError::Rejected(format!(
        "Vault refused the token (HTTP {status}: {message}): it is expired, revoked or unknown (or has no policy \
         allowing auth/token/lookup-self, which the default policy gives). Create a new token by hand and store it"
    ))
}

/// A Unix time or an RFC 3339 text as a timestamp.
fn timestamp(unix: Option<i64>, text: Option<&str>) -> Option<jiff::Timestamp> {
    unix.and_then(|s| jiff::Timestamp::from_second(s).ok()).or_else(|| text.and_then(|t| t.parse().ok()))
}

#[async_trait]
impl Provider for VaultToken {
    fn kind(&self) -> &'static ProviderKind {
        &KIND
    }

    fn current(&self) -> &Secret {
        &self.token
    }

    fn writes_to(&self, service: &str) -> bool {
        self.shared && service == Vault::KEY
    }

    fn authenticates_with(&self) -> Vec<&Secret> {
        vec![&self.token]
    }

    fn revoked_in_run(&self) -> Option<(&Secret, &str)> {
        self.grace.is_zero().then_some((&self.token, self.grace_label.as_str()))
    }

    fn old_stays_valid(&self) -> bool {
        true
    }

    async fn check(&self, http: &Http) -> Result<Checked, ProviderError> {
        let r = self
            .lookup(http, &self.token)
            .await
            .map_err(|e| failed(format!("Vault token lookup at {}: {e}; nothing was changed", self.conn.describe())))?;
        let status = r.status.as_u16();
        match status {
            200 => {}
            401 | 403 => return Err(rejected(status, &vault::message(&r))),
            _ => {
                return Err(ProviderError::Refused(format!(
                    "Vault token lookup answered HTTP {status}: {}{}",
                    vault::message(&r),
                    vault::hint(status)
                )))
            }
        }
        let info = serde_json::from_slice::<Lookup>(&r.body)
            .map_err(|_| ProviderError::Refused("Vault token lookup answered with an unexpected body".to_owned()))?
            .data;
        if info.kind.as_deref() == Some("batch") {
            return Err(ProviderError::Refused(
                "the token is a batch token, which cannot be rotated (it has no accessor and cannot be revoked): use a \
                 service token"
                    .to_owned(),
            ));
        }
        if info.num_uses.is_some_and(|n| n > 0) {
            return Err(ProviderError::Refused(format!(
                "the token is limited to {} more uses, and every request spends one: rotate a token without num_uses",
                info.num_uses.unwrap_or(0)
            )));
        }
        let checked = Checked {
            created_at: timestamp(info.creation_time, None),
            expires_at: info.expire_time.as_deref().and_then(|t| t.parse().ok()),
        };
        let mut seen = self.seen();
        seen.pending = predecessors(info.meta.as_ref().unwrap_or(&BTreeMap::new()));
        seen.current = Some(info);
        Ok(checked)
    }

    async fn retire_expired(&self, http: &Http) -> Retired {
        let pending = std::mem::take(&mut self.seen().pending);
        let mut retired = Retired::default();
        let mut left = Vec::new();
        for p in pending {
            if !due(&p, self.grace) {
                left.push(p);
                continue;
            }
            match self.revoke_accessor(http, &p.accessor, &self.token).await {
                Ok(false) => {
                    log::debug(&format!("the token before this one (accessor {}) is gone already", p.accessor))
                }
                Ok(true) => {
                    log::info(&format!(
                        "revoked the token before this one (accessor {}): its grace has passed",
                        p.accessor
                    ));
                    retired.revoked.push(p.accessor.clone());
                }
                Err(e) => {
                    retired.failed.push(format!(
                        "the earlier token (accessor {}) could not be revoked ({e}); the next run tries again, or revoke \
                         it by hand: bao token revoke -accessor {}; the token's policy needs update on \
                         auth/token/revoke-accessor",
                        p.accessor, p.accessor
                    ));
                    left.push(p);
                }
            }
        }
        self.seen().pending = left;
        retired
    }

    async fn rotate(&self, http: &Http) -> Result<Rotated, ProviderError> {
        let (current, pending) = {
            let seen = self.seen();
            (seen.current.clone().unwrap_or_default(), seen.pending.clone())
        };
        if current.accessor.is_empty() {
            return Err(failed("the token was not looked up before the rotation; nothing was changed".to_owned()));
        }
        let meta = lineage(current.meta.as_ref().unwrap_or(&BTreeMap::new()), &current.accessor, &pending);
        let path = self.create_path();
        let req = self.conn.request(Method::POST, &path, Some(&self.token)).json(self.create_body(&current, meta));
        let what = format!("Vault {path}");
        let r = http.send_unrepeated(&what, &req).await.map_err(|e| {
            if e.never_sent() {
                failed(format!("{what}: {e}; nothing was changed"))
            } else {
                failed(format!(
                    "{what}: {e}; Vault may have created a successor that this run never received (it expires with its \
                     TTL). The current token was not revoked and stays valid"
                ))
            }
        })?;
        let status = r.status.as_u16();
        if !r.status.is_success() {
            let message = format!(
                "Vault refused to create the successor token ({what} answered HTTP {status}: {}){}; the current token \
                 is unchanged and valid",
                vault::message(&r),
                match (status, &self.role) {
                    (403, Some(role)) => format!(
                        ". The token's policy needs update on auth/token/create/{role}, and the role must allow its \
                         policies"
                    ),
                    (403, None) =>
                        ". The token's policy needs update on auth/token/create-orphan (or set vault_role)".to_owned(),
                    (400, _) => ". Check the role's allowed policies and TTLs".to_owned(),
                    _ => String::new(),
                }
            );
            return Err(if r.status.is_server_error() { failed(message) } else { ProviderError::Refused(message) });
        }
        let created = serde_json::from_slice::<Created>(&r.body).map_err(|_| {
            failed(format!(
                "{what} answered HTTP {status} without a token: Vault may have created one that this run cannot use \
                 (it expires with its TTL); the current token is unchanged and valid"
            ))
        })?;
        let auth = created.auth;
        let new = Secret::new(auth.client_token);
        if !auth.orphan {
            let cleanup = self.revoke_new(http, &new, &auth.accessor).await;
            let role = self.role.as_deref().unwrap_or("ROLE");
            return Err(ProviderError::Refused(format!(
                "Vault created a child token, not an orphan: it would die with its parent when the old token is \
                 revoked. {} Set orphan=true on the role: bao write auth/token/roles/{role} orphan=true (or vault \
                 write ...); the current token is unchanged and valid",
                match cleanup {
                    Ok(()) => "The child was revoked.".to_owned(),
                    Err(e) => format!("The child could not be revoked: {e}."),
                }
            )));
        }
        self.seen().new_accessor = Some(auth.accessor.clone());
        let expires_at = auth
            .lease_duration
            .filter(|d| *d > 0)
            .and_then(|d| jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_secs(d)).ok());
        Ok(Rotated { credential: new, changed: true, access_token: None, expires_at })
    }

    async fn verify(&self, http: &Http, rotated: &Rotated) -> Result<(), String> {
        let r = self.lookup(http, &rotated.credential).await.map_err(|e| format!("Vault token lookup: {e}"))?;
        if r.status.as_u16() != 200 {
            return Err(format!(
                "the new token does not work: lookup-self answered HTTP {}: {}",
                r.status.as_u16(),
                vault::message(&r)
            ));
        }
        let info =
            serde_json::from_slice::<Lookup>(&r.body).map_err(|_| "unexpected lookup-self body".to_owned())?.data;
        let (expected, old) = {
            let seen = self.seen();
            (seen.new_accessor.clone(), seen.current.as_ref().map(|c| c.accessor.clone()))
        };
        if Some(&info.accessor) != expected.as_ref() {
            return Err("lookup-self with the new token answered for another token".to_owned());
        }
        if info.orphan != Some(true) {
            return Err("Vault reports the new token is not an orphan".to_owned());
        }
        if info.meta.as_ref().and_then(|m| m.get(ROTATED_FROM)) != old.as_ref() {
            return Err(
                "the new token's meta does not record rotated_from: set the role so that meta is kept".to_owned()
            );
        }
        Ok(())
    }

    async fn finish(&self, http: &Http, _rotated: &Rotated) -> Retired {
        let mut retired = Retired::default();
        if !self.grace.is_zero() {
            return retired;
        }
        let accessor = self.seen().current.as_ref().map(|c| c.accessor.clone()).unwrap_or_default();
        // grace 0: the old token revokes itself (the default policy allows it).
        match self.revoke_self(http, &self.token).await {
            Ok(()) => retired.revoked.push(accessor),
            Err(e) => retired.failed.push(format!(
                "the old token (accessor {accessor}) could not be revoked ({e}); the next run revokes it (the new token's \
                 meta names it), or revoke it by hand: bao token revoke -accessor {accessor}"
            )),
        }
        retired
    }

    async fn discard(&self, http: &Http, rotated: &Rotated) -> Result<Retired, String> {
        let accessor = self.seen().new_accessor.clone().unwrap_or_default();
        self.revoke_new(http, &rotated.credential, &accessor).await?;
        Ok(Retired { revoked: vec![accessor], failed: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::testing::{json_body, Fake};

    fn provider(role: Option<&str>, grace: Duration) -> VaultToken {
        VaultToken {
            conn: Arc::new(Connection {
                addr: "https://vault.example.com:8200".parse().unwrap(),
                namespace: Some("team".into()),
                tls: None,
            }),
            shared: true,
            token: Secret::new("s.current-token-0123456789"),
            role: role.map(str::to_owned),
            ttl: None,
            grace,
            grace_label: "input grace".into(),
            seen: Mutex::default(),
        }
    }

    fn lookup(accessor: &str, meta: &str) -> String {
        format!(
            r#"{{"data":{{"id":"s.current-token-0123456789","accessor":"{accessor}","creation_time":1767225600,"creation_ttl":2592000,"expire_time":"2026-02-01T00:00:00Z","display_name":"token-ci","meta":{meta},"num_uses":0,"orphan":true,"policies":["ci","default"],"type":"service"}}}}"#
        )
    }

    const BASE: &str = "https://vault.example.com:8200/v1";

    #[tokio::test]
    async fn check_rotate_verify_and_the_lineage_in_meta() {
        let p = provider(Some("ci-rotate"), DEFAULT_GRACE);
        let fake = Fake::new();
        fake.reply(200, &lookup("acc-1", r#"{"team":"x"}"#));
        fake.reply(200, r#"{"auth":{"client_token":"s.new-token-0123456789","accessor":"acc-2","orphan":true,"lease_duration":3600}}"#);
        let http = fake.http();
        let checked = p.check(&http).await.unwrap();
        assert_eq!(checked.created_at.unwrap().to_string(), "2026-01-01T00:00:00Z");
        assert_eq!(checked.expires_at.unwrap().to_string(), "2026-02-01T00:00:00Z");
        let rotated = p.rotate(&http).await.unwrap();
        assert_eq!(rotated.credential.expose(), "s.new-token-0123456789");
        let sent = fake.requests();
        assert_eq!(
            fake.lines(),
            [format!("GET {BASE}/auth/token/lookup-self"), format!("POST {BASE}/auth/token/create/ci-rotate")]
        );
        let body = json_body(&sent[1]);
        assert_eq!(body["meta"]["rotated_from"], "acc-1");
        assert_eq!(body["meta"]["team"], "x", "other meta is kept");
        assert!(body["meta"]["rotated_at"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok());
        assert_eq!(body["ttl"], "2592000s", "the current token's creation TTL");
        assert_eq!(body["display_name"], "ci");
        assert!(body.get("policies").is_none(), "a role decides the policies");
        assert!(sent.iter().all(|r| r.header_value("x-vault-namespace") == Some("team")));

        let fake = Fake::new();
        let meta =
            format!(r#"{{"rotated_from":"acc-1","rotated_at":"{}"}}"#, body["meta"]["rotated_at"].as_str().unwrap());
        fake.reply(200, &lookup("acc-2", &meta).replace("s.current-token", "s.new-token"));
        p.verify(&fake.http(), &rotated).await.unwrap();
        assert_eq!(fake.requests()[0].header_value("x-vault-token"), Some("s.new-token-0123456789"));
    }

    #[tokio::test]
    async fn without_a_role_the_successor_gets_the_current_policies_from_create_orphan() {
        let p = provider(None, DEFAULT_GRACE);
        let fake = Fake::new();
        fake.reply(200, &lookup("acc-1", "null"));
        fake.reply(200, r#"{"auth":{"client_token":"s.new-token-0123456789","accessor":"acc-2","orphan":true}}"#);
        let http = fake.http();
        p.check(&http).await.unwrap();
        p.rotate(&http).await.unwrap();
        assert_eq!(fake.lines()[1], format!("POST {BASE}/auth/token/create-orphan"));
        let body = json_body(&fake.requests()[1]);
        assert_eq!(body["policies"], serde_json::json!(["ci"]));
        assert!(body.get("no_default_policy").is_none());
    }

    #[tokio::test]
    async fn a_child_token_is_revoked_and_the_rotation_refused() {
        let p = provider(Some("child-role"), DEFAULT_GRACE);
        let fake = Fake::new();
        fake.reply(200, &lookup("acc-1", "null"));
        fake.reply(200, r#"{"auth":{"client_token":"s.child-token-0123456789","accessor":"acc-c","orphan":false}}"#);
        fake.reply(204, "");
        let http = fake.http();
        p.check(&http).await.unwrap();
        let e = p.rotate(&http).await.unwrap_err();
        assert!(matches!(e, ProviderError::Refused(_)), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("orphan=true")
                && text.contains("auth/token/roles/child-role")
                && text.contains("The child was revoked"),
            "{text}"
        );
        assert_eq!(fake.lines()[2], format!("POST {BASE}/auth/token/revoke-self"));
        assert_eq!(fake.requests()[2].header_value("x-vault-token"), Some("s.child-token-0123456789"));
    }

    #[tokio::test]
    async fn predecessors_are_revoked_once_their_grace_has_passed_and_the_rest_carried() {
        let p = provider(Some("ci-rotate"), Duration::from_secs(600));
        let old = seconds(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(3600));
        let recent = seconds(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60));
        let meta = format!(r#"{{"rotated_from":"acc-1","rotated_at":"{recent}","pending_revocation":"acc-0@{old}"}}"#);
        let fake = Fake::new();
        fake.reply(200, &lookup("acc-2", &meta));
        fake.reply(204, "");
        fake.reply(200, r#"{"auth":{"client_token":"s.new-token-0123456789","accessor":"acc-3","orphan":true}}"#);
        let http = fake.http();
        p.check(&http).await.unwrap();
        let retired = p.retire_expired(&http).await;
        assert_eq!(retired.revoked, ["acc-0"]);
        assert_eq!(json_body(&fake.requests()[1]), serde_json::json!({ "accessor": "acc-0" }));
        p.rotate(&http).await.unwrap();
        let body = json_body(&fake.requests()[2]);
        assert_eq!(body["meta"]["rotated_from"], "acc-2");
        assert_eq!(body["meta"]["pending_revocation"], format!("acc-1@{recent}"), "still in its grace: carried on");
    }

    #[tokio::test]
    async fn grace_0_revokes_the_old_token_once_stored() {
        let p = provider(Some("ci-rotate"), Duration::ZERO);
        let fake = Fake::new();
        fake.reply(200, &lookup("acc-1", "null")).reply(204, "");
        let http = fake.http();
        p.check(&http).await.unwrap();
        let rotated = Rotated {
            credential: Secret::new("s.new-token-0123456789"),
            changed: true,
            access_token: None,
            expires_at: None,
        };
        let retired = p.finish(&http, &rotated).await;
        assert_eq!(retired.revoked, ["acc-1"]);
        assert_eq!(fake.lines()[1], format!("POST {BASE}/auth/token/revoke-self"));
        assert_eq!(fake.requests()[1].header_value("x-vault-token"), Some("s.current-token-0123456789"));
    }

    #[tokio::test]
    async fn a_lost_create_response_leaves_the_current_token_valid() {
        let p = provider(Some("ci-rotate"), DEFAULT_GRACE);
        let fake = Fake::new();
        fake.reply(200, &lookup("acc-1", "null"));
        fake.fail(HttpError::Timeout(Duration::from_secs(30)));
        let http = fake.http();
        p.check(&http).await.unwrap();
        let e = p.rotate(&http).await.unwrap_err();
        assert!(matches!(e, ProviderError::Failed { maybe_consumed: false, .. }), "{e:?}");
        assert_eq!(fake.requests().len(), 2, "sent once");
    }

    #[test]
    fn lineage_round_trips() {
        let now = seconds(jiff::Timestamp::now());
        let pending = vec![Predecessor { accessor: "a0".into(), since: now }];
        let meta = lineage(&BTreeMap::new(), "a1", &pending);
        let back = predecessors(&meta);
        assert_eq!(back[0].accessor, "a1");
        assert_eq!(back[1..], pending[..]);
    }
}
