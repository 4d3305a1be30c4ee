//! Provider `vault-approle`: an AppRole `secret_id` is replaced by a new one of the same role,
//! whose `metadata` records `rotated_from` (the old secret ID's accessor) and `rotated_at`. The
//! new one is verified by logging in with it (and that login token revoked), or, when the role
//! limits its uses, by looking it up (a login would spend one). The old one is destroyed by
//! accessor at once (`grace: 0`) or by a later run once its overlap has passed, exactly as for
//! `vault-token`.
//!
//! The secret IDs are managed with `vault_token` (a token that may look up, create and destroy
//! this role's secret IDs). Without one, each rotation logs in with `role_id` and the current
//! `secret_id` (which spends one of its uses, where the role limits them) and manages with that
//! login's token; the check cannot look the secret ID up without spending it, so it does not.
//! Every token a login of the run created is revoked once the rotation is over, whatever its
//! outcome ([`Provider::close`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::vault_token::{connection, due, lineage, parse_grace, predecessors, Predecessor};
use super::{Checked, Provider, ProviderError, ProviderKind, Retired, Rotated};
use crate::error::InputError;
use crate::http::{Http, Method};
use crate::inputs::tls::TlsFields;
use crate::inputs::{check_token_text, Field, Fields, Owner};
use crate::log;
use crate::secret::Secret;
use crate::services::vault::{self, check_token, Connection, Vault};
use crate::services::Services;

const OWNER: Owner = Owner::Provider("vault-approle");
const MOUNT: Field =
    Field::plain("approle_mount", "vault-approle: the AppRole auth mount (default: approle)").of(OWNER);
const ROLE_NAME: Field = Field::plain("role_name", "vault-approle: the AppRole whose secret ID is rotated").of(OWNER);
const ROLE_ID: Field =
    Field::plain("role_id", "vault-approle: the role's role_id (to log in with the new secret ID)").of(OWNER);
const SECRET_ID: Field = Field::secret("secret_id", "vault-approle: the current secret_id").of(OWNER);
const VAULT_TOKEN: Field = Field::secret(
    "vault_token",
    "a token that may look up, create and destroy this role's secret IDs (default: vault.token)",
)
.config_only()
.of(OWNER);
const GRACE: Field = Field::plain(
    "grace",
    "vault-token, vault-approle: how long the old credential stays valid after the new one is stored (default: 15m)",
)
.of(OWNER);
const ADDR: Field =
    Field::plain("vault_addr", "this provider's Vault, when it differs from vault.addr").config_only().of(OWNER);
const NAMESPACE: Field =
    Field::plain("vault_namespace", "this provider's namespace, when it differs from vault.namespace")
        .config_only()
        .of(OWNER);
const TLS: TlsFields = TlsFields::of(OWNER);

/// Provider `vault-approle`.
pub const KIND: ProviderKind = ProviderKind {
    name: "vault-approle",
    fields: &[
        MOUNT,
        ROLE_NAME,
        ROLE_ID,
        SECRET_ID,
        VAULT_TOKEN,
        GRACE,
        ADDR,
        NAMESPACE,
        TLS.section,
        TLS.client_cert,
        TLS.client_key,
    ],
    credential: "secret_id",
    issues_access_token: false,
    knows_own_age: true,
    parse,
};

fn name_part(f: &Fields, field: &Field, v: &str) -> Result<String, InputError> {
    let v = v.trim().trim_matches('/');
    let ok = !v.is_empty()
        && v.len() <= 256
        && v.split('/').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
    if ok {
        Ok(v.to_owned())
    } else {
        Err(f.error(field, format!("`{v}` is not valid: use letters, digits, - _ . (and / for a nested mount)")))
    }
}

fn parse(f: &Fields, services: &Services) -> Result<Box<dyn Provider>, InputError> {
    let mount = name_part(f, &MOUNT, &f.str(&MOUNT)?.unwrap_or_else(|| "approle".to_owned()))?;
    let role =
        f.str(&ROLE_NAME)?.ok_or_else(|| f.error(&ROLE_NAME, "is required for vault-approle: the AppRole's name"))?;
    let role = name_part(f, &ROLE_NAME, &role)?;
    if role.contains('/') {
        return Err(f.error(&ROLE_NAME, format!("`{role}` is not an AppRole name: no /")));
    }
    let role_id = f.str(&ROLE_ID)?.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()).ok_or_else(|| {
        f.error(&ROLE_ID, "is required for vault-approle: the role's role_id (bao read auth/approle/role/NAME/role-id)")
    })?;
    if role_id.chars().any(|c| c.is_whitespace() || c.is_control()) || role_id.len() > 512 {
        return Err(f.error(&ROLE_ID, "contains whitespace or control characters: pass the role_id alone"));
    }
    let secret_id = f
        .secret(&SECRET_ID)?
        .ok_or_else(|| f.error(&SECRET_ID, "is required for vault-approle: the current secret_id"))?;
    check_token_text(&f.label(&SECRET_ID), &secret_id)?;
    let grace = parse_grace(f, &GRACE)?;
    let (conn, _) = connection(f, services, &ADDR, &NAMESPACE, &TLS)?;
    let manager = match f.secret(&VAULT_TOKEN)? {
        Some(t) => {
            check_token(&f.label(&VAULT_TOKEN), &t)?;
            Some(t)
        }
        None => services.get::<Vault>()?.writer.clone(),
    };
    if manager.is_none() {
        log::debug("vault-approle without vault_token: each rotation logs in with the current secret ID");
    }
    Ok(Box::new(AppRole { conn, mount, role, role_id, secret_id, manager, grace, seen: Mutex::default() }))
}

#[derive(Deserialize, Debug, Clone, Default)]
struct SecretIdInfo {
    secret_id_accessor: String,
    creation_time: Option<String>,
    expiration_time: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct Data<T> {
    data: T,
}

#[derive(Deserialize)]
struct CreatedId {
    secret_id: String,
    secret_id_accessor: String,
    secret_id_ttl: Option<i64>,
    secret_id_num_uses: Option<i64>,
}

#[derive(Deserialize)]
struct LoginAuth {
    client_token: String,
}

#[derive(Deserialize)]
struct Login {
    auth: LoginAuth,
}

#[derive(Debug, Default)]
struct Seen {
    current: Option<SecretIdInfo>,
    pending: Vec<Predecessor>,
    /// The token of this run's own login (no `vault_token`), revoked once the rotation is over.
    login: Option<Secret>,
    /// Tokens of verifying logins that could not be revoked at once: tried again at the end.
    unrevoked: Vec<Secret>,
    new: Option<(String, i64)>,
    /// What the rotation retired itself (without `vault_token` it learns the lineage only then).
    retired: Retired,
    /// This run's login (no `vault_token`) may have spent the current secret ID's last use: then
    /// the old one is no longer known to be valid, and a failed write must not be rolled back.
    old_maybe_spent: bool,
}

/// The AppRole secret ID to rotate, as validated.
#[derive(Debug)]
pub struct AppRole {
    conn: Arc<Connection>,
    mount: String,
    role: String,
    role_id: String,
    secret_id: Secret,
    manager: Option<Secret>,
    grace: Duration,
    seen: Mutex<Seen>,
}

fn failed(message: String) -> ProviderError {
    ProviderError::Failed { message, maybe_consumed: false }
}

/// A zero or missing time (`0001-01-01T00:00:00Z`: never expires) is none.
fn time(t: Option<&str>) -> Option<jiff::Timestamp> {
    t.and_then(|t| t.parse::<jiff::Timestamp>().ok()).filter(|t| t.as_second() > 0)
}

impl AppRole {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self, tail: &str) -> String {
        format!("auth/{}/role/{}/{tail}", self.mount, self.role)
    }

    /// Looks a secret ID up with `manager` (never spends a use): `None` when Vault does not know it.
    async fn lookup(&self, http: &Http, manager: &Secret, secret_id: &Secret) -> Result<Option<SecretIdInfo>, String> {
        let req = self
            .conn
            .request(Method::POST, &self.path("secret-id/lookup"), Some(manager))
            .json(serde_json::json!({ "secret_id": secret_id.expose() }));
        let r = self.conn.send(http, "AppRole secret-id lookup", &req).await.result.map_err(|e| e.to_string())?;
        match r.status.as_u16() {
            200 => serde_json::from_slice::<Data<SecretIdInfo>>(&r.body)
                .map(|d| Some(d.data))
                .map_err(|_| "the secret-id lookup answered with an unexpected body".to_owned()),
            204 | 404 => Ok(None),
            status => Err(format!(
                "the secret-id lookup answered HTTP {status}: {}{}",
                vault::message(&r),
                hint(status, "update on auth/<mount>/role/<role>/secret-id/lookup")
            )),
        }
    }

    /// Logs in with `secret_id` (spends one of its uses where the role limits them): the token,
    /// or Vault's refusal (its status and message).
    async fn login(&self, http: &Http, secret_id: &Secret) -> Result<Result<Secret, (u16, String)>, String> {
        let req = self
            .conn
            .request(Method::POST, &format!("auth/{}/login", self.mount), None)
            .json(serde_json::json!({ "role_id": self.role_id, "secret_id": secret_id.expose() }));
        let r = http.send_unrepeated("AppRole login", &req).await.map_err(|e| e.to_string())?;
        if !r.status.is_success() {
            return Ok(Err((r.status.as_u16(), vault::message(&r))));
        }
        serde_json::from_slice::<Login>(&r.body)
            .map(|l| Ok(Secret::new(l.auth.client_token)))
            .map_err(|_| "the AppRole login answered without a token".to_owned())
    }

    async fn revoke_self(&self, http: &Http, token: &Secret) -> Result<(), String> {
        let req = self.conn.request(Method::POST, "auth/token/revoke-self", Some(token));
        let r = self.conn.send(http, "Vault revoke-self", &req).await.result.map_err(|e| e.to_string())?;
        if r.status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}: {}", r.status.as_u16(), vault::message(&r)))
        }
    }

    /// Destroys a secret ID by accessor: true when it was destroyed now, false when Vault no
    /// longer knows it.
    async fn destroy(&self, http: &Http, manager: &Secret, accessor: &str) -> Result<bool, String> {
        let req = self
            .conn
            .request(Method::POST, &self.path("secret-id-accessor/destroy"), Some(manager))
            .json(serde_json::json!({ "secret_id_accessor": accessor }));
        let r = self.conn.send(http, "AppRole secret-id destroy", &req).await.result.map_err(|e| e.to_string())?;
        let status = r.status.as_u16();
        let message = vault::message(&r);
        if message.contains("failed to find accessor entry") {
            return Ok(false);
        }
        if r.status.is_success() {
            return Ok(true);
        }
        Err(format!(
            "HTTP {status}: {message}{}",
            hint(status, "update on auth/<mount>/role/<role>/secret-id-accessor/destroy")
        ))
    }

    /// The token that manages secret IDs: `vault_token`, or this run's login.
    async fn manager(&self, http: &Http) -> Result<Secret, ProviderError> {
        if let Some(m) = &self.manager {
            return Ok(m.clone());
        }
        if let Some(t) = self.seen().login.clone() {
            return Ok(t);
        }
        let what = format!("AppRole login at {}", self.conn.describe());
        let token = match self.login(http, &self.secret_id).await {
            Err(e) => return Err(failed(format!("{what}: {e}; nothing was changed"))),
            Ok(Err((status, message))) if status == 400 || status == 403 => {
                return Err(ProviderError::Rejected(format!(
                    "{what} answered HTTP {status}: {message}: the secret ID is destroyed, expired or used up (or \
                     role_id is wrong). Create a new secret ID by hand and store it"
                )))
            }
            Ok(Err((status, message))) => {
                return Err(failed(format!("{what} answered HTTP {status}: {message}; nothing was changed")))
            }
            Ok(Ok(t)) => t,
        };
        log::warn("vault-approle: logged in with the current secret ID (this spends one of its uses where the role limits them); set vault_token to avoid it");
        self.seen().login = Some(token.clone());
        Ok(token)
    }

    /// Destroys every predecessor whose overlap has passed; keeps the others pending.
    async fn retire_due(&self, http: &Http, manager: &Secret) -> Retired {
        let pending = std::mem::take(&mut self.seen().pending);
        let mut retired = Retired::default();
        let mut left = Vec::new();
        for p in pending {
            if !due(&p, self.grace) {
                left.push(p);
                continue;
            }
            match self.destroy(http, manager, &p.accessor).await {
                Ok(false) => {
                    log::debug(&format!("the secret ID before this one (accessor {}) is gone already", p.accessor))
                }
                Ok(true) => {
                    log::info(&format!(
                        "destroyed the secret ID before this one (accessor {}): its grace has passed",
                        p.accessor
                    ));
                    retired.revoked.push(p.accessor.clone());
                }
                Err(e) => {
                    retired.failed.push(format!(
                        "the earlier secret ID (accessor {}) could not be destroyed ({e}); the next run tries again, or \
                         destroy it by hand: bao write {} secret_id_accessor={}",
                        p.accessor,
                        self.path("secret-id-accessor/destroy"),
                        p.accessor
                    ));
                    left.push(p);
                }
            }
        }
        self.seen().pending = left;
        retired
    }

    /// Revokes every token this run's logins created and still holds (its own login's, and any
    /// verifying login's that could not be revoked at once).
    async fn log_out(&self, http: &Http, retired: &mut Retired) {
        let tokens: Vec<Secret> = {
            let mut seen = self.seen();
            let login = seen.login.take();
            login.into_iter().chain(std::mem::take(&mut seen.unrevoked)).collect()
        };
        for t in tokens {
            if let Err(e) = self.revoke_self(http, &t).await {
                retired.failed.push(format!(
                    "a token of this run's AppRole login could not be revoked ({e}); it expires with the role's token \
                     TTL"
                ));
            }
        }
    }
}

fn hint(status: u16, needs: &str) -> String {
    if status == 403 {
        format!(" (the managing token's policy needs {needs})")
    } else {
        String::new()
    }
}

#[async_trait]
impl Provider for AppRole {
    fn kind(&self) -> &'static ProviderKind {
        &KIND
    }

    fn current(&self) -> &Secret {
        &self.secret_id
    }

    fn authenticates_with(&self) -> Vec<&Secret> {
        self.manager.iter().collect()
    }

    fn old_stays_valid(&self) -> bool {
        !self.seen().old_maybe_spent
    }

    async fn check(&self, http: &Http) -> Result<Checked, ProviderError> {
        let Some(manager) = &self.manager else {
            log::info("vault-approle without vault_token: the secret ID is not checked (only a login could, and it would spend a use)");
            return Ok(Checked::default());
        };
        let info = self
            .lookup(http, manager, &self.secret_id)
            .await
            .map_err(|e| failed(format!("{} at {}; nothing was changed", e, self.conn.describe())))?;
        let Some(info) = info else {
            return Err(ProviderError::Rejected(format!(
                "Vault does not know the secret ID of role {}: it is destroyed, expired or used up. Create a new one by \
                 hand (bao write -f {}) and store it",
                self.role,
                self.path("secret-id")
            )));
        };
        let checked = Checked {
            created_at: time(info.creation_time.as_deref()),
            expires_at: time(info.expiration_time.as_deref()),
        };
        let mut seen = self.seen();
        seen.pending = predecessors(info.metadata.as_ref().unwrap_or(&BTreeMap::new()));
        seen.current = Some(info);
        Ok(checked)
    }

    async fn retire_expired(&self, http: &Http) -> Retired {
        match &self.manager {
            Some(m) => self.retire_due(http, m).await,
            // Without vault_token the lineage is learned in the rotation, which retires then.
            None => Retired::default(),
        }
    }

    async fn rotate(&self, http: &Http) -> Result<Rotated, ProviderError> {
        let manager = self.manager(http).await?;
        let mut unknown_predecessor = None;
        if self.manager.is_none() {
            // Logged in: now the current secret ID can be looked up, and its predecessors retired.
            match self.lookup(http, &manager, &self.secret_id).await {
                Ok(Some(info)) => {
                    let mut seen = self.seen();
                    seen.pending = predecessors(info.metadata.as_ref().unwrap_or(&BTreeMap::new()));
                    seen.current = Some(info);
                }
                Ok(None) => {
                    log::warn("the current secret ID was used up by this run's login: a failed write cannot be rolled back to it");
                    self.seen().old_maybe_spent = true;
                }
                Err(e) => {
                    log::warn(&format!(
                        "the current secret ID could not be looked up ({e}): it may be used up, so a failed write is not rolled back to it"
                    ));
                    let mut seen = self.seen();
                    seen.old_maybe_spent = true;
                    // Unknown, it cannot be named as the new one's predecessor: no later run destroys it.
                    unknown_predecessor = Some(format!(
                        "the previous secret ID (not looked up: {e}) is not recorded as the new one's predecessor, so no \
                         later run destroys it: destroy it by hand once no job uses it (bao write {} secret_id=...)",
                        self.path("secret-id/destroy")
                    ));
                }
            }
            let retired = self.retire_due(http, &manager).await;
            self.seen().retired.extend(retired);
        }
        let (current, pending) = {
            let seen = self.seen();
            (seen.current.clone().unwrap_or_default(), seen.pending.clone())
        };
        let meta =
            lineage(current.metadata.as_ref().unwrap_or(&BTreeMap::new()), &current.secret_id_accessor, &pending);
        let meta_text = serde_json::to_string(&meta).unwrap_or_default();
        let path = self.path("secret-id");
        let req =
            self.conn.request(Method::POST, &path, Some(&manager)).json(serde_json::json!({ "metadata": meta_text }));
        let what = format!("Vault {path}");
        let r = http.send_unrepeated(&what, &req).await.map_err(|e| {
            if e.never_sent() {
                failed(format!("{what}: {e}; nothing was changed"))
            } else {
                failed(format!(
                    "{what}: {e}; Vault may have created a secret ID that this run never received (it expires with the \
                     role's secret_id_ttl). The current secret ID was not destroyed and stays valid"
                ))
            }
        })?;
        let status = r.status.as_u16();
        if !r.status.is_success() {
            let message = format!(
                "Vault refused to create a secret ID ({what} answered HTTP {status}: {}){}; the current secret ID is \
                 unchanged and valid",
                vault::message(&r),
                hint(status, &format!("update on {path}"))
            );
            return Err(if r.status.is_server_error() { failed(message) } else { ProviderError::Refused(message) });
        }
        let created = serde_json::from_slice::<Data<CreatedId>>(&r.body)
            .map_err(|_| {
                failed(format!(
                    "{what} answered HTTP {status} without a secret ID; the current one is unchanged and valid"
                ))
            })?
            .data;
        let mut seen = self.seen();
        seen.new = Some((created.secret_id_accessor.clone(), created.secret_id_num_uses.unwrap_or(0)));
        seen.retired.failed.extend(unknown_predecessor);
        drop(seen);
        let expires_at = created
            .secret_id_ttl
            .filter(|t| *t > 0)
            .and_then(|t| jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_secs(t)).ok());
        Ok(Rotated { credential: Secret::new(created.secret_id), changed: true, access_token: None, expires_at })
    }

    async fn verify(&self, http: &Http, rotated: &Rotated) -> Result<(), String> {
        let (accessor, uses) = self.seen().new.clone().unwrap_or_default();
        if uses > 0 {
            // A login would spend one of its few uses: look it up instead.
            let manager = self.manager(http).await.map_err(|e| e.to_string())?;
            return match self.lookup(http, &manager, &rotated.credential).await? {
                Some(info) if info.secret_id_accessor == accessor => {
                    log::info(&format!(
                        "the new secret ID is limited to {uses} uses: verified by lookup, not by a login"
                    ));
                    Ok(())
                }
                _ => Err("Vault does not know the new secret ID".to_owned()),
            };
        }
        match self.login(http, &rotated.credential).await? {
            Ok(token) => {
                if self.revoke_self(http, &token).await.is_err() {
                    // Tried again, and reported, when the rotation is over.
                    self.seen().unrevoked.push(token);
                }
                Ok(())
            }
            Err((status, message)) => Err(format!("a login with the new secret ID answered HTTP {status}: {message}")),
        }
    }

    async fn finish(&self, http: &Http, _rotated: &Rotated) -> Retired {
        let mut retired = std::mem::take(&mut self.seen().retired);
        if self.grace.is_zero() {
            let accessor = self.seen().current.as_ref().map(|c| c.secret_id_accessor.clone()).unwrap_or_default();
            match self.manager(http).await {
                Ok(m) if !accessor.is_empty() => match self.destroy(http, &m, &accessor).await {
                    Ok(true) => retired.revoked.push(accessor),
                    Ok(false) => {}
                    Err(e) => retired.failed.push(format!(
                        "the old secret ID (accessor {accessor}) could not be destroyed ({e}); the next run destroys it \
                         (the new one's metadata names it)"
                    )),
                },
                Ok(_) => retired.failed.push("the old secret ID's accessor is unknown (used up by the login?): nothing to destroy".to_owned()),
                Err(e) => retired.failed.push(format!("the old secret ID could not be destroyed: {e}")),
            }
        }
        retired
    }

    async fn discard(&self, http: &Http, _rotated: &Rotated) -> Result<Retired, String> {
        let (accessor, _) = self.seen().new.clone().unwrap_or_default();
        let manager = self.manager(http).await.map_err(|e| e.to_string())?;
        self.destroy(http, &manager, &accessor).await.map_err(|e| {
            format!(
                "{e}; destroy it by hand: bao write {} secret_id_accessor={accessor}",
                self.path("secret-id-accessor/destroy")
            )
        })?;
        Ok(Retired { revoked: vec![accessor], failed: Vec::new() })
    }

    async fn close(&self, http: &Http) -> Retired {
        let mut retired = std::mem::take(&mut self.seen().retired);
        self.log_out(http, &mut retired).await;
        retired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::testing::{json_body, Fake};

    fn approle(manager: bool, grace: Duration) -> AppRole {
        AppRole {
            conn: Arc::new(Connection {
                addr: "https://vault.example.com".parse().unwrap(),
                namespace: None,
                tls: None,
            }),
            mount: "approle".into(),
            role: "ci".into(),
            role_id: "role-id-0123".into(),
            secret_id: Secret::new("secret-id-current-0123456789"),
            manager: manager.then(|| Secret::new("s.manager-token-0123456789")),
            grace,
            seen: Mutex::default(),
        }
    }

    const BASE: &str = "https://vault.example.com/v1/auth/approle";

    #[tokio::test]
    async fn check_looks_up_without_a_login_and_rotate_records_the_lineage() {
        let a = approle(true, Duration::ZERO);
        let fake = Fake::new();
        fake.reply(200, r#"{"data":{"secret_id_accessor":"acc-1","creation_time":"2026-01-01T00:00:00Z","expiration_time":"0001-01-01T00:00:00Z","metadata":{},"secret_id_num_uses":1}}"#);
        fake.reply(200, r#"{"data":{"secret_id":"secret-id-new-0123456789","secret_id_accessor":"acc-2","secret_id_ttl":0,"secret_id_num_uses":1}}"#);
        fake.reply(200, r#"{"data":{"secret_id_accessor":"acc-2","metadata":{}}}"#);
        fake.reply(204, "");
        let http = fake.http();
        let checked = a.check(&http).await.unwrap();
        assert_eq!(checked.created_at.unwrap().to_string(), "2026-01-01T00:00:00Z");
        assert_eq!(checked.expires_at, None, "the zero time is no expiry");
        let rotated = a.rotate(&http).await.unwrap();
        a.verify(&http, &rotated).await.unwrap();
        let retired = a.finish(&http, &rotated).await;
        assert_eq!(retired.revoked, ["acc-1"]);
        assert_eq!(
            fake.lines(),
            [
                format!("POST {BASE}/role/ci/secret-id/lookup"),
                format!("POST {BASE}/role/ci/secret-id"),
                format!("POST {BASE}/role/ci/secret-id/lookup"),
                format!("POST {BASE}/role/ci/secret-id-accessor/destroy"),
            ],
            "no login: the new secret ID has one use, a login would spend it"
        );
        let sent = fake.requests();
        let meta: BTreeMap<String, String> =
            serde_json::from_str(json_body(&sent[1])["metadata"].as_str().unwrap()).unwrap();
        assert_eq!(meta["rotated_from"], "acc-1");
        assert_eq!(json_body(&sent[3]), serde_json::json!({ "secret_id_accessor": "acc-1" }));
        assert!(sent.iter().all(|r| r.header_value("x-vault-token") == Some("s.manager-token-0123456789")));
    }

    #[tokio::test]
    async fn an_unknown_secret_id_is_rejected() {
        let a = approle(true, DEFAULT);
        let fake = Fake::new();
        fake.reply(204, "");
        let e = a.check(&fake.http()).await.unwrap_err();
        assert!(matches!(e, ProviderError::Rejected(_)), "{e:?}");
    }

    const DEFAULT: Duration = super::super::vault_token::DEFAULT_GRACE;

    #[tokio::test]
    async fn a_login_that_used_up_the_current_secret_id_means_no_rollback_to_it() {
        let a = approle(false, DEFAULT);
        assert!(a.old_stays_valid(), "until a login spends it");
        let fake = Fake::new();
        let http = fake.http();
        fake.reply(200, r#"{"auth":{"client_token":"s.login-token-0123456789"}}"#);
        // The lookup after the login finds nothing: the login took the secret ID's last use.
        fake.reply(204, "");
        fake.reply(
            200,
            r#"{"data":{"secret_id":"secret-id-new-0123456789","secret_id_accessor":"acc-2","secret_id_num_uses":0}}"#,
        );
        a.rotate(&http).await.unwrap();
        assert!(!a.old_stays_valid(), "a failed write must be rescued, not rolled back to a dead secret ID");
        let meta: BTreeMap<String, String> =
            serde_json::from_str(json_body(&fake.requests()[2])["metadata"].as_str().unwrap()).unwrap();
        assert!(!meta.contains_key("rotated_from"), "no predecessor to name (Vault refuses an empty value): {meta:?}");
    }

    #[tokio::test]
    async fn a_predecessor_that_cannot_be_looked_up_is_reported_for_destroying_by_hand() {
        let a = approle(false, DEFAULT);
        let fake = Fake::new();
        let http = fake.http();
        fake.reply(200, r#"{"auth":{"client_token":"s.login-token-0123456789"}}"#);
        fake.reply(403, r#"{"errors":["permission denied"]}"#);
        fake.reply(
            200,
            r#"{"data":{"secret_id":"secret-id-new-0123456789","secret_id_accessor":"acc-2","secret_id_num_uses":0}}"#,
        );
        a.rotate(&http).await.unwrap();
        let failed = a.seen().retired.failed.clone();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(
            failed[0].contains("no later run destroys it") && failed[0].contains("secret-id/destroy"),
            "{failed:?}"
        );
        assert!(!failed[0].contains("secret-id-current"), "never the value");
    }

    #[tokio::test]
    async fn without_vault_token_the_rotation_logs_in_once_and_logs_out() {
        let a = approle(false, DEFAULT);
        let fake = Fake::new();
        let http = fake.http();
        assert_eq!(a.check(&http).await.unwrap().created_at, None);
        assert!(fake.requests().is_empty(), "the check spends nothing");
        fake.reply(200, r#"{"auth":{"client_token":"s.login-token-0123456789"}}"#);
        fake.reply(200, r#"{"data":{"secret_id_accessor":"acc-1","metadata":{}}}"#);
        fake.reply(
            200,
            r#"{"data":{"secret_id":"secret-id-new-0123456789","secret_id_accessor":"acc-2","secret_id_num_uses":0}}"#,
        );
        fake.reply(200, r#"{"auth":{"client_token":"s.verify-token-0123456789"}}"#);
        fake.reply(204, "");
        fake.reply(204, "");
        let rotated = a.rotate(&http).await.unwrap();
        a.verify(&http, &rotated).await.unwrap();
        a.finish(&http, &rotated).await;
        assert!(a.close(&http).await.failed.is_empty());
        assert_eq!(
            fake.lines(),
            [
                format!("POST {BASE}/login"),
                format!("POST {BASE}/role/ci/secret-id/lookup"),
                format!("POST {BASE}/role/ci/secret-id"),
                format!("POST {BASE}/login"),
                "POST https://vault.example.com/v1/auth/token/revoke-self".to_owned(),
                "POST https://vault.example.com/v1/auth/token/revoke-self".to_owned(),
            ]
        );
        let sent = fake.requests();
        assert_eq!(json_body(&sent[3])["secret_id"], "secret-id-new-0123456789");
        assert_eq!(sent[4].header_value("x-vault-token"), Some("s.verify-token-0123456789"));
        assert_eq!(sent[5].header_value("x-vault-token"), Some("s.login-token-0123456789"));
    }
}
