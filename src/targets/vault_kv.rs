//! Target `vault-kv`: one field of a KV version 2 secret in Vault or OpenBao. Every write is a
//! read-modify-write with check-and-set: the secret's current version is read, the field set,
//! every other field kept, and the new version written with `options.cas` = that version, so a
//! concurrent writer is never overwritten: a conflict re-reads and tries again (bounded). A
//! missing secret is created with `cas: 0`. The preflight proves write access with
//! `sys/capabilities-self` and writes only when the field does not hold the current value yet.
//! Targets of one run that write fields of one secret take turns (a lock per secret), so they
//! never conflict with each other; only other writers can.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{
    check_current, newer_than_ours, Planned, Prepared, Proof, Target, TargetContext, TargetError, TargetKind,
    ValueProblem, Written,
};
use crate::error::InputError;
use crate::http::{Http, Method, Response};
use crate::inputs::{Field, Fields, Owner};
use crate::log;
use crate::secret::Secret;
use crate::services::vault::{self, Connection, KvLock, Vault};
use crate::services::Service;

const OWNER: Owner = Owner::Target("vault-kv");
const MOUNT: Field =
    Field::plain("vault_kv_mount", "vault-kv: the KV version 2 mount (default: secret)").key("mount").of(OWNER);
const PATH: Field =
    Field::plain("vault_kv_path", "vault-kv: the secret's path in the mount (ci/spotify)").key("path").of(OWNER);
const FIELD: Field = Field::plain(
    "vault_kv_field",
    "vault-kv: the field that receives the value (default: its kind: refresh_token, token or secret_id)",
)
.key("field")
.of(OWNER);

/// Check-and-set conflicts retried before a write gives up.
pub const MAX_CAS_TRIES: u32 = 5;

/// Target `vault-kv`.
pub const KIND: TargetKind =
    TargetKind { name: "vault-kv", key: "vault_kv", default_in: None, fields: &[MOUNT, PATH, FIELD], parse };

fn parse(f: &Fields, ctx: &TargetContext) -> Result<Vec<Planned>, InputError> {
    let mount = f.str(&MOUNT)?.unwrap_or_else(|| "secret".to_owned());
    let mount = check_path(&f.label(&MOUNT), &mount)?;
    let path =
        f.str(&PATH)?.ok_or_else(|| f.error(&PATH, "is required: the secret's path in the KV mount (ci/spotify)"))?;
    let path = check_path(&f.label(&PATH), &path)?;
    let field = match f.str(&FIELD)? {
        Some(field) => field,
        None => ctx.value.label(ctx.provider.kind().credential).to_owned(),
    };
    if field.is_empty() || field.len() > 256 || field.chars().any(char::is_control) {
        return Err(
            f.error(&FIELD, format!("`{field}` is not a field name: use 1-256 characters, no control characters"))
        );
    }
    let service = ctx.services.get::<Vault>()?;
    let conn = service.connection()?;
    let writer = service.writer.clone();
    if writer.is_none() && !ctx.provider.writes_to(Vault::KEY) {
        return Err(InputError::new(
            service.writer_label.clone(),
            format!(
                "is required to write Vault KV{}: a token whose policy may read, create and update {mount}/data/{path} \
                 (only a vault-token rotation against the same Vault can write with the token it rotates)",
                if ctx.rotation.is_empty() { String::new() } else { format!(" for rotation `{}`", ctx.rotation) }
            ),
        ));
    }
    let turn = service.kv_lock(&conn, &mount, &path);
    let target = VaultKv { conn, writer, mount, path, field, turn };
    check_current(f, &FIELD, &target, ctx)?;
    Ok(vec![Planned { value: ctx.value, target: Arc::new(target) }])
}

/// A mount or a secret path: `/`-separated parts, none empty, `.` or `..`.
fn check_path(input: &str, v: &str) -> Result<String, InputError> {
    let v = v.trim().trim_matches('/');
    let ok = !v.is_empty()
        && v.len() <= 1024
        && v.split('/').all(|p| {
            !p.is_empty() && p != "." && p != ".." && !p.chars().any(|c| c.is_control() || "?#*+".contains(c))
        });
    if ok {
        Ok(v.to_owned())
    } else {
        Err(InputError::new(input, format!("`{v}` is not a Vault path: use parts separated by / (ci/spotify)")))
    }
}

/// One field of a KV v2 secret, as validated.
pub struct VaultKv {
    conn: Arc<Connection>,
    writer: Option<Secret>,
    mount: String,
    path: String,
    field: String,
    /// Shared by every target of the run that writes this secret.
    turn: KvLock,
}

/// A JSON value whose strings are zeroized when dropped (a secret's other fields are secrets too).
struct Scrubbed(Value);

impl Drop for Scrubbed {
    fn drop(&mut self) {
        fn scrub(v: &mut Value) {
            match v {
                Value::String(s) => zeroize::Zeroize::zeroize(s),
                Value::Array(a) => a.iter_mut().for_each(scrub),
                Value::Object(m) => m.iter_mut().for_each(|(_, v)| scrub(v)),
                _ => {}
            }
        }
        scrub(&mut self.0);
    }
}

/// The secret as read: its version (0 when it never existed) and the fields of that version.
struct Current {
    version: u64,
    /// The fields (empty when the secret is missing or its latest version deleted).
    data: Scrubbed,
    /// When that version was written.
    created_time: Option<jiff::Timestamp>,
}

impl VaultKv {
    fn data_path(&self) -> String {
        format!("{}/data/{}", self.mount, self.path)
    }

    fn token<'a>(&'a self, live: &'a Secret) -> &'a Secret {
        self.writer.as_ref().unwrap_or(live)
    }

    fn err(&self, what: impl std::fmt::Display) -> TargetError {
        TargetError(format!("{}: {what}", self.describe()))
    }

    fn status_error(&self, r: &Response, what: &str) -> TargetError {
        let status = r.status.as_u16();
        self.err(format!("{what} answered HTTP {status}: {}{}", vault::message(r), vault::hint(status)))
    }

    /// Is the mount KV version 2? (As the Vault CLI asks: `sys/internal/ui/mounts/<mount>`, which
    /// the default policy allows.) Writing `data/...` into a version 1 mount would create a
    /// secret at that literal path.
    async fn check_mount(&self, http: &Http, token: &Secret) -> Result<(), TargetError> {
        let req = self.conn.request(Method::GET, &format!("sys/internal/ui/mounts/{}", self.mount), Some(token));
        let r = self.conn.send(http, "read the mount", &req).await.result.map_err(|e| self.err(e))?;
        if r.status.as_u16() != 200 {
            return Err(self.status_error(&r, "reading the mount"));
        }
        let v: Value =
            serde_json::from_slice(&r.body).map_err(|_| self.err(format!("unexpected answer: {}", r.snippet())))?;
        let d = &v["data"];
        let is_kv = d["type"].as_str().is_some_and(|t| t == "kv" || t == "generic");
        let version = d["options"]["version"].as_str().unwrap_or("1");
        let mount_path = d["path"].as_str().unwrap_or("").trim_end_matches('/');
        if !is_kv || version != "2" {
            return Err(self.err(format!(
                "the mount {} is not a KV version 2 secrets engine (type {}, version {version}): vault-kv writes KV \
                 version 2 only",
                self.mount,
                d["type"].as_str().unwrap_or("unknown")
            )));
        }
        if !mount_path.is_empty() && mount_path != self.mount {
            return Err(self.err(format!(
                "the KV mount is `{mount_path}`, not `{}`: set mount to {mount_path} and put the rest in path",
                self.mount
            )));
        }
        Ok(())
    }

    async fn read(&self, http: &Http, token: &Secret) -> Result<Current, TargetError> {
        let req = self.conn.request(Method::GET, &self.data_path(), Some(token));
        let r = self.conn.send(http, "read the secret", &req).await.result.map_err(|e| self.err(e))?;
        let status = r.status.as_u16();
        if status != 200 && status != 404 {
            return Err(self.status_error(&r, "reading the secret"));
        }
        let body = Scrubbed(serde_json::from_slice(&r.body).unwrap_or(Value::Null));
        let meta = &body.0["data"]["metadata"];
        let version = meta["version"].as_u64();
        if status == 404 && version.is_none() {
            // Never written (Vault answers `{"errors":[]}`).
            return Ok(Current { version: 0, data: Scrubbed(Value::Object(Map::new())), created_time: None });
        }
        let Some(version) = version else {
            // The body of a secret read is never quoted: its other fields are secrets too.
            return Err(self.err(format!(
                "the answer (not shown: it may hold secrets) has no version: is {} a KV version 2 mount?",
                self.mount
            )));
        };
        let created_time = meta["created_time"].as_str().and_then(|t| t.parse().ok());
        let mut body = body;
        let data = match body.0["data"]["data"].take() {
            Value::Object(m) => Value::Object(m),
            // The latest version is deleted or destroyed: it holds nothing.
            _ => Value::Object(Map::new()),
        };
        Ok(Current { version, data: Scrubbed(data), created_time })
    }

    fn holds(&self, current: &Current, value: &Secret) -> bool {
        current.data.0.get(&self.field).and_then(Value::as_str) == Some(value.expose())
    }

    /// Read, set the field, write with check-and-set; a conflict re-reads (bounded).
    async fn upsert(&self, http: &Http, value: &Secret, token: &Secret) -> Written {
        let (mut attempts, mut unanswered) = (0, false);
        for round in 1..=MAX_CAS_TRIES {
            // From the read to the write, no other target of this run writes this secret.
            let turn = self.turn.lock().await;
            let current = match self.read(http, token).await {
                Ok(c) => c,
                Err(e) => return Written { attempts, result: Err(e), unanswered },
            };
            if self.holds(&current, value) {
                // An earlier attempt landed, or the value is there already.
                return Written { attempts, result: Ok(()), unanswered: false };
            }
            let mut data = Scrubbed(current.data.0.clone());
            if let Value::Object(m) = &mut data.0 {
                m.insert(self.field.clone(), Value::String(value.expose().to_owned()));
            }
            let body = serde_json::json!({ "options": { "cas": current.version }, "data": data.0.clone() });
            let req = self.conn.request(Method::POST, &self.data_path(), Some(token)).json(body);
            let at = self.conn.send(http, &format!("write {}", self.describe()), &req).await;
            attempts += at.attempts;
            unanswered |= at.unanswered;
            let r = match at.result {
                Ok(r) => r,
                Err(e) => return Written { unanswered, attempts, result: Err(self.err(e)) },
            };
            if r.status.is_success() {
                return Written { attempts, result: Ok(()), unanswered: false };
            }
            if r.status.as_u16() == 400 && vault::message(&r).contains("check-and-set") {
                drop(turn);
                log::warn(&format!(
                    "{}: another writer changed the secret since it was read (check-and-set, try {round} of \
                     {MAX_CAS_TRIES}): reading it again",
                    self.describe()
                ));
                // Another process's writer that met this one may meet it again: a jittered pause
                // lets one of them through first.
                if round < MAX_CAS_TRIES && !http.shutdown().sleep(crate::http::backoff(round)).await {
                    return Written {
                        attempts,
                        result: Err(self.err("interrupted by a termination signal")),
                        unanswered,
                    };
                }
                continue;
            }
            return Written { attempts, result: Err(self.status_error(&r, "the write")), unanswered };
        }
        Written {
            attempts,
            result: Err(self.err(format!(
                "other writers changed the secret {MAX_CAS_TRIES} times while it was being written (check-and-set): \
                 nothing was overwritten; run again when they are done"
            ))),
            unanswered,
        }
    }

    /// Proves write access without writing: the token's capabilities on the secret's path.
    async fn can_write(&self, http: &Http, token: &Secret, exists: bool) -> Result<(), TargetError> {
        let path = self.data_path();
        let req = self
            .conn
            .request(Method::POST, "sys/capabilities-self", Some(token))
            .json(serde_json::json!({ "paths": [path] }));
        let r = self.conn.send(http, "read capabilities", &req).await.result.map_err(|e| self.err(e))?;
        if r.status.as_u16() != 200 {
            return Err(self.status_error(&r, "sys/capabilities-self"));
        }
        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let caps: Vec<&str> = v["data"][&path]
            .as_array()
            .or_else(|| v[&path].as_array())
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let needed = if exists { "update" } else { "create" };
        if caps.contains(&"root") || (caps.contains(&needed) && caps.contains(&"read")) {
            return Ok(());
        }
        Err(self.err(format!(
            "the token may not {} {path} (its capabilities there: {}); its policy needs read, create and update on it",
            if exists { "update" } else { "create" },
            if caps.is_empty() { "none".to_owned() } else { caps.join(", ") }
        )))
    }
}

#[async_trait]
impl Target for VaultKv {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self) -> String {
        format!("Vault {} secret {}/{} field {}", self.conn.describe(), self.mount, self.path, self.field)
    }

    fn name_hint(&self) -> String {
        self.path.rsplit('/').next().unwrap_or(&self.path).to_owned()
    }

    fn authenticates_with(&self) -> Vec<&Secret> {
        self.writer.iter().collect()
    }

    fn check_value(&self, _value: &Secret) -> Result<(), ValueProblem> {
        Ok(())
    }

    async fn updated_at(&self, http: &Http, live: &Secret) -> Result<Option<jiff::Timestamp>, TargetError> {
        let current = self.read(http, self.token(live)).await?;
        Ok(if current.data.0.get(&self.field).is_some() { current.created_time } else { None })
    }

    async fn preflight(&self, http: &Http, proof: Proof<'_>) -> Result<Prepared, TargetError> {
        let token = self.token(proof.live);
        self.check_mount(http, token).await?;
        let current = self.read(http, token).await?;
        let exists = current.version > 0;
        let Some(value) = proof.current else {
            // A value not known yet: prove access only.
            self.can_write(http, token, exists).await?;
            return Ok(if exists || !proof.dry_run { Prepared::Ready } else { Prepared::WouldCreate });
        };
        if self.holds(&current, value) {
            self.can_write(http, token, true).await?;
            return Ok(Prepared::Ready);
        }
        if let Some(at) = current.created_time.filter(|_| current.data.0.get(&self.field).is_some()) {
            if at > proof.received_at {
                return Err(newer_than_ours(&self.describe(), at, proof.received_at));
            }
        }
        if proof.dry_run {
            self.can_write(http, token, exists).await?;
            return Ok(if exists { Prepared::Ready } else { Prepared::WouldCreate });
        }
        self.upsert(http, value, token).await.result.map(|()| Prepared::Ready)
    }

    async fn write(&self, http: &Http, value: &Secret, live: &Secret) -> Written {
        self.upsert(http, value, self.token(live)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::testing::{json_body, Fake};

    fn kv(namespace: Option<&str>) -> VaultKv {
        VaultKv {
            conn: Arc::new(Connection {
                addr: "https://vault.example.com:8200".parse().unwrap(),
                namespace: namespace.map(str::to_owned),
                tls: None,
            }),
            writer: Some(Secret::new("s.writer-token-0123456789")),
            mount: "secret".into(),
            path: "ci/app".into(),
            field: "token".into(),
            turn: KvLock::default(),
        }
    }

    const DATA: &str = "https://vault.example.com:8200/v1/secret/data/ci/app";

    fn version(n: u64, fields: &str) -> String {
        format!(
            r#"{{"data":{{"data":{fields},"metadata":{{"version":{n},"created_time":"2026-01-01T00:00:00Z","deletion_time":"","destroyed":false}}}}}}"#
        )
    }

    #[tokio::test]
    async fn a_write_keeps_other_fields_and_retries_a_cas_conflict() {
        let t = kv(Some("team/ci"));
        let fake = Fake::new();
        fake.reply(200, &version(3, r#"{"token":"s.old-0123456789","user":"ci"}"#));
        fake.reply(400, r#"{"errors":["check-and-set parameter did not match the current version"]}"#);
        fake.reply(200, &version(4, r#"{"token":"s.old-0123456789","user":"ci","other":"x"}"#));
        fake.reply(200, r#"{"data":{"version":5}}"#);
        let w = t.write(&fake.http(), &Secret::new("s.new-0123456789"), &Secret::new("s.live-unused")).await;
        w.result.unwrap();
        assert_eq!(
            fake.lines(),
            [format!("GET {DATA}"), format!("POST {DATA}"), format!("GET {DATA}"), format!("POST {DATA}")]
        );
        let sent = fake.requests();
        assert_eq!(
            json_body(&sent[1]),
            serde_json::json!({ "options": { "cas": 3 }, "data": { "token": "s.new-0123456789", "user": "ci" } })
        );
        assert_eq!(
            json_body(&sent[3]),
            serde_json::json!({ "options": { "cas": 4 }, "data": { "token": "s.new-0123456789", "user": "ci", "other": "x" } })
        );
        assert!(sent.iter().all(|r| r.header_value("x-vault-namespace") == Some("team/ci")));
        assert!(sent.iter().all(|r| r.header_value("x-vault-token") == Some("s.writer-token-0123456789")));
    }

    #[tokio::test]
    async fn a_missing_secret_is_created_with_cas_0_and_a_dry_run_creates_nothing() {
        let t = kv(None);
        let fake = Fake::new();
        fake.reply(404, r#"{"errors":[]}"#).reply(200, r#"{"data":{"version":1}}"#);
        t.write(&fake.http(), &Secret::new("s.new-0123456789"), &Secret::new("s.live-unused")).await.result.unwrap();
        assert_eq!(
            json_body(&fake.requests()[1]),
            serde_json::json!({ "options": { "cas": 0 }, "data": { "token": "s.new-0123456789" } })
        );

        let fake = Fake::new();
        fake.reply(200, r#"{"data":{"type":"kv","options":{"version":"2"},"path":"secret/"}}"#);
        fake.reply(404, r#"{"errors":[]}"#);
        fake.reply(200, r#"{"data":{"secret/data/ci/app":["create","read","update"]}}"#);
        let current = Secret::new("s.current-0123456789");
        let proof =
            Proof { current: Some(&current), live: &current, dry_run: true, received_at: jiff::Timestamp::now() };
        assert_eq!(t.preflight(&fake.http(), proof).await.unwrap(), Prepared::WouldCreate);
        assert_eq!(
            fake.lines(),
            [
                "GET https://vault.example.com:8200/v1/sys/internal/ui/mounts/secret".to_owned(),
                format!("GET {DATA}"),
                "POST https://vault.example.com:8200/v1/sys/capabilities-self".to_owned(),
            ]
        );
    }

    #[tokio::test]
    async fn a_preflight_that_finds_the_current_value_writes_nothing_and_a_kv_v1_mount_is_refused() {
        let t = kv(None);
        let fake = Fake::new();
        fake.reply(200, r#"{"data":{"type":"kv","options":{"version":"2"},"path":"secret/"}}"#);
        fake.reply(200, &version(2, r#"{"token":"s.current-0123456789"}"#));
        fake.reply(200, r#"{"data":{"secret/data/ci/app":["read","update"]}}"#);
        let current = Secret::new("s.current-0123456789");
        let proof =
            Proof { current: Some(&current), live: &current, dry_run: false, received_at: jiff::Timestamp::now() };
        assert_eq!(t.preflight(&fake.http(), proof).await.unwrap(), Prepared::Ready);
        assert!(fake.lines().iter().all(|l| !l.starts_with("POST https://vault.example.com:8200/v1/secret")));

        let fake = Fake::new();
        fake.reply(200, r#"{"data":{"type":"kv","options":{"version":"1"},"path":"secret/"}}"#);
        let e = t.preflight(&fake.http(), proof).await.unwrap_err();
        assert!(e.0.contains("not a KV version 2"), "{e}");
        assert_eq!(fake.requests().len(), 1, "nothing else was sent");
    }

    #[tokio::test]
    async fn cas_conflicts_are_bounded() {
        let t = kv(None);
        let fake = Fake::new();
        for n in 0..MAX_CAS_TRIES {
            fake.reply(200, &version(u64::from(n) + 1, r#"{"token":"s.old-0123456789"}"#));
            fake.reply(400, r#"{"errors":["check-and-set parameter did not match the current version"]}"#);
        }
        let w = t.write(&fake.http(), &Secret::new("s.new-0123456789"), &Secret::new("s.live-unused")).await;
        assert!(w.result.unwrap_err().0.contains("nothing was overwritten"));
        assert_eq!(fake.requests().len(), 2 * MAX_CAS_TRIES as usize);
    }
}
