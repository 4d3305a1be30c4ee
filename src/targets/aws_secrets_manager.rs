//! Target `aws-secrets-manager`: a secret of AWS Secrets Manager, written with `PutSecretValue`
//! so that AWS's version stages move as AWS documents (the new value becomes `AWSCURRENT`, the
//! one before it `AWSPREVIOUS`). Every write carries a `ClientRequestToken` derived from the
//! SHA-256 of the value written, so a repeated write of one value is a no-op at AWS: a retried
//! request makes no second version, and the preflight's re-write of the current value makes none
//! when it is already current. With `key`, one key of a JSON object secret is replaced and the
//! others are kept. The tool never creates an AWS secret.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{
    check_current, newer_than_ours, Planned, Prepared, Proof, Target, TargetContext, TargetError, TargetKind,
    ValueProblem, Written,
};
use crate::error::InputError;
use crate::http::{Http, HttpError, Response};
use crate::inputs::{Field, Fields, Owner};
use crate::secret::Secret;
use crate::services::aws::{check_region, scrub, Aws, AwsError, AwsService};

/// AWS's limit on a `SecretString`.
pub const MAX_SECRET_STRING: usize = 65536;

const OWNER: Owner = Owner::Target("aws-secrets-manager");
const SECRET_ID: Field = Field::plain(
    "aws_secret_id",
    "AWS Secrets Manager: the name or ARN of the secret that receives the rotated credential",
)
.key("secret_id")
.of(OWNER);
const REGION: Field = Field::plain(
    "aws_region",
    "AWS Secrets Manager: the secret's region (default: AWS_REGION, else AWS_DEFAULT_REGION)",
)
.key("region")
.of(OWNER);
const KEY: Field = Field::plain(
    "aws_secret_key",
    "AWS Secrets Manager: store the value under this key of the secret's JSON object, keeping its other keys",
)
.key("key")
.of(OWNER);

/// Target `aws-secrets-manager`.
pub const KIND: TargetKind = TargetKind {
    name: "aws-secrets-manager",
    key: "aws_secrets_manager",
    default_in: None,
    fields: &[SECRET_ID, REGION, KEY],
    parse,
};

const SECRETS_MANAGER: AwsService = AwsService {
    name: "secretsmanager",
    target_prefix: "secretsmanager",
    endpoint_variable: "AWS_ENDPOINT_URL_SECRETS_MANAGER",
};

/// One secret (or one key of it), as validated.
pub struct AwsSecret {
    aws: Arc<Aws>,
    secret_id: String,
    region: String,
    key: Option<String>,
}

fn parse(f: &Fields, ctx: &TargetContext) -> Result<Vec<Planned>, InputError> {
    let secret_id = f.str(&SECRET_ID)?.ok_or_else(|| {
        f.error(&SECRET_ID, "is required: the name or ARN of the AWS Secrets Manager secret that receives the value")
    })?;
    let secret_id = secret_id.trim().to_owned();
    let arn_region = check_secret_id(&f.label(&SECRET_ID), &secret_id)?;
    let given = match f.str(&REGION)? {
        Some(r) => Some(check_region(&f.label(&REGION), &r)?),
        None => None,
    };
    let key = match f.str(&KEY)? {
        Some(k) => Some(check_key(&f.label(&KEY), &k)?),
        None => None,
    };
    let aws = ctx.services.get::<Aws>()?;
    let region = match (given, arn_region) {
        (Some(r), Some(a)) if r != a => {
            return Err(f.error(&REGION, format!("is {r}, but the secret's ARN is in {a}: drop region, or fix it")))
        }
        (Some(r), _) | (None, Some(r)) => r,
        (None, None) => match &aws.default_region {
            Some((r, _)) => r.clone(),
            None => {
                return Err(f.error(
                    &REGION,
                    "is required: set it, or AWS_REGION (aws-actions/configure-aws-credentials sets it), or give the secret's ARN",
                ))
            }
        },
    };
    let secret = AwsSecret { aws, secret_id, region, key };
    check_current(f, &SECRET_ID, &secret, ctx)?;
    Ok(vec![Planned { value: ctx.value, target: Arc::new(secret) }])
}

/// A secret's name (`ci/spotify`) or ARN; returns the ARN's region.
fn check_secret_id(input: &str, id: &str) -> Result<Option<String>, InputError> {
    if let Some(rest) = id.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(6, ':').collect();
        let ok = parts.len() == 6
            && parts[0].starts_with("aws")
            && parts[1] == "secretsmanager"
            && check_region("", parts[2]).is_ok()
            && parts[3].len() == 12
            && parts[3].bytes().all(|b| b.is_ascii_digit())
            && parts[4] == "secret"
            && !parts[5].is_empty()
            && id.len() <= 2048
            && id.chars().all(|c| c.is_ascii_graphic());
        if !ok {
            return Err(InputError::new(
                input,
                format!(
                    "`{id}` is not a Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)"
                ),
            ));
        }
        return Ok(Some(parts[2].to_owned()));
    }
    let ok =
        !id.is_empty() && id.len() <= 512 && id.chars().all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
    if ok {
        Ok(None)
    } else {
        Err(InputError::new(
            input,
            format!("`{id}` is not a secret name: use 1-512 of letters, digits and /_+=.@-, or the secret's ARN"),
        ))
    }
}

fn check_key(input: &str, key: &str) -> Result<String, InputError> {
    if key.is_empty() || key.chars().count() > 256 || key.chars().any(char::is_control) {
        return Err(InputError::new(input, "is not a JSON key: use 1-256 characters, without control characters"));
    }
    Ok(key.to_owned())
}

/// The `ClientRequestToken` of a value: a UUID (version 4 in shape) made of the first 16 bytes
/// of its SHA-256. One value always gets the same token, so writing it again is a no-op at AWS
/// (for a plain secret the version id starts with the report's fingerprint).
pub fn request_token(secret_string: &Secret) -> String {
    let d = Sha256::digest(secret_string.expose().as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// What `DescribeSecret` tells.
struct Described {
    last_changed: Option<jiff::Timestamp>,
    deleted: bool,
    has_current: bool,
    /// The staged versions: id and stages.
    stages: std::collections::HashMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeAnswer {
    last_changed_date: Option<serde_json::Value>,
    created_date: Option<serde_json::Value>,
    deleted_date: Option<serde_json::Value>,
    #[serde(default)]
    version_ids_to_stages: std::collections::HashMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutAnswer {
    version_stages: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ValueAnswer {
    secret_string: Option<String>,
    secret_binary: Option<serde_json::Value>,
}

/// An AWS timestamp: epoch seconds (a JSON number, possibly fractional), or text.
fn timestamp(v: &serde_json::Value) -> Option<jiff::Timestamp> {
    match v {
        serde_json::Value::Number(n) => jiff::Timestamp::from_millisecond((n.as_f64()? * 1000.0).round() as i64).ok(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// What a write needs from the read before it: the secret's current value (with `key`).
enum Current {
    /// Not read (no `key`: the value is the whole secret).
    Unread,
    /// The secret has no current value yet (created without one).
    Empty,
    /// The current `SecretString`.
    Value(Secret),
}

impl AwsSecret {
    async fn call(
        &self,
        http: &Http,
        operation: &str,
        body: serde_json::Value,
    ) -> (u32, Result<Response, TargetError>, bool) {
        let what = format!("{} {operation}", self.describe());
        let at = self.aws.send(http, &what, &SECRETS_MANAGER, &self.region, operation, body).await;
        (at.attempts, at.result.map_err(|e| self.transport_error(operation, &e)), at.unanswered)
    }

    fn transport_error(&self, operation: &str, e: &HttpError) -> TargetError {
        TargetError(format!("{}: {operation}: {e}", self.describe()))
    }

    /// `DescribeSecret`: `None` when the secret does not exist.
    async fn describe_secret(&self, http: &Http) -> Result<Option<Described>, TargetError> {
        let (_, r, _) = self.call(http, "DescribeSecret", serde_json::json!({ "SecretId": self.secret_id })).await;
        let r = r?;
        if !r.status.is_success() {
            return match AwsError::of(&r) {
                Some(e) if e.code == "ResourceNotFoundException" => Ok(None),
                _ => Err(self.aws_error("DescribeSecret", &r)),
            };
        }
        let a: DescribeAnswer = serde_json::from_slice(&r.body).map_err(|_| self.unexpected("DescribeSecret", &r))?;
        Ok(Some(Described {
            last_changed: a.last_changed_date.as_ref().or(a.created_date.as_ref()).and_then(timestamp),
            deleted: a.deleted_date.as_ref().is_some_and(|d| !d.is_null()),
            has_current: a.version_ids_to_stages.values().any(|stages| stages.iter().any(|s| s == "AWSCURRENT")),
            stages: a.version_ids_to_stages,
        }))
    }

    /// `GetSecretValue` of `AWSCURRENT` (passed explicitly: moto answers a stale version without it).
    async fn get_current(&self, http: &Http) -> Result<Current, TargetError> {
        let body = serde_json::json!({ "SecretId": self.secret_id, "VersionStage": "AWSCURRENT" });
        let (_, r, _) = self.call(http, "GetSecretValue", body).await;
        let r = r?;
        if !r.status.is_success() {
            return match AwsError::of(&r) {
                // The secret is missing, or has no current value: DescribeSecret tells which.
                Some(e) if e.code == "ResourceNotFoundException" => match self.describe_secret(http).await? {
                    Some(d) if !d.has_current => Ok(Current::Empty),
                    Some(_) => Err(self.aws_error("GetSecretValue", &r)),
                    None => Err(self.missing()),
                },
                _ => Err(self.aws_error("GetSecretValue", &r)),
            };
        }
        let a: ValueAnswer = serde_json::from_slice(&r.body).map_err(|_| self.unexpected("GetSecretValue", &r))?;
        match (a.secret_string, a.secret_binary) {
            (Some(s), _) => Ok(Current::Value(Secret::new(s))),
            (None, Some(_)) => Err(TargetError(format!(
                "{}: the secret holds binary data (SecretBinary), not a JSON object, so key `{}` cannot be set in it: \
                 drop key to store the credential as the whole value",
                self.describe(),
                self.key.as_deref().unwrap_or_default()
            ))),
            (None, None) => Ok(Current::Empty),
        }
    }

    /// The `SecretString` to write: the value itself, or (with `key`) the current JSON object
    /// with that key set and every other key kept.
    fn secret_string(&self, value: &Secret, current: &Current) -> Result<Secret, TargetError> {
        let Some(key) = &self.key else { return Ok(value.clone()) };
        let mut object = self.object(key, current)?;
        object.insert(key.clone(), serde_json::Value::String(value.expose().to_owned()));
        let mut object = serde_json::Value::Object(object);
        let text = Secret::new(serde_json::to_string(&object).unwrap_or_default());
        scrub(&mut object);
        Ok(text)
    }

    /// `PutSecretValue` of `secret_string` with the token derived from it: retried as the
    /// service allows; a repeat of a write that went through is a no-op at AWS.
    async fn put(&self, http: &Http, secret_string: &Secret) -> Written {
        if secret_string.len() > MAX_SECRET_STRING {
            return Written {
                attempts: 0,
                result: Err(TargetError(format!(
                    "{}: the new SecretString is {} bytes, over AWS's 65536-byte limit",
                    self.describe(),
                    secret_string.len()
                ))),
                unanswered: false,
            };
        }
        let token = request_token(secret_string);
        let body = serde_json::json!({
            "SecretId": self.secret_id,
            "SecretString": secret_string.expose(),
            "ClientRequestToken": token,
        });
        let (attempts, r, unanswered) = self.call(http, "PutSecretValue", body).await;
        let result = match r {
            Ok(r) if r.status.is_success() => match serde_json::from_slice::<PutAnswer>(&r.body) {
                Ok(a) if a.version_stages.as_ref().is_none_or(|s| s.iter().any(|s| s == "AWSCURRENT")) => Ok(()),
                // The version exists already (the same token and value: AWS ignored the request)
                // but is not the current one: a value written back (a rollback) must be current.
                Ok(_) => self.make_current(http, &token).await,
                Err(_) => Err(self.unexpected("PutSecretValue", &r)),
            },
            Ok(r) => Err(self.aws_error("PutSecretValue", &r)),
            Err(e) => Err(e),
        };
        Written { attempts, result, unanswered }
    }

    /// Moves `AWSCURRENT` to the version `token` (AWS moves `AWSPREVIOUS` to the one it leaves).
    async fn make_current(&self, http: &Http, token: &str) -> Result<(), TargetError> {
        let described = self
            .describe_secret(http)
            .await?
            .ok_or_else(|| TargetError(format!("{}: the secret was deleted during the write", self.describe())))?;
        let current = described
            .stages
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
            .map(|(id, _)| id.clone());
        let mut body = serde_json::json!({
            "SecretId": self.secret_id,
            "VersionStage": "AWSCURRENT",
            "MoveToVersionId": token,
        });
        if let Some(current) = current.filter(|c| c != token) {
            body["RemoveFromVersionId"] = current.into();
        }
        let (_, r, _) = self.call(http, "UpdateSecretVersionStage", body).await;
        match r? {
            r if r.status.is_success() => Ok(()),
            r => Err(self.aws_error("UpdateSecretVersionStage", &r)),
        }
    }

    /// Reads what the write needs, then writes `value`.
    async fn write_value(&self, http: &Http, value: &Secret) -> Written {
        let current = match &self.key {
            None => Current::Unread,
            Some(_) => match self.get_current(http).await {
                Ok(c) => c,
                Err(e) => return Written { attempts: 0, result: Err(e), unanswered: false },
            },
        };
        match self.secret_string(value, &current) {
            Ok(s) => self.put(http, &s).await,
            Err(e) => Written { attempts: 0, result: Err(e), unanswered: false },
        }
    }

    /// The current value as a JSON object (empty when the secret has no value yet).
    fn object(&self, key: &str, current: &Current) -> Result<serde_json::Map<String, serde_json::Value>, TargetError> {
        match current {
            Current::Value(s) => match serde_json::from_str::<serde_json::Value>(s.expose()) {
                Ok(serde_json::Value::Object(m)) => Ok(m),
                Ok(mut other) => {
                    scrub(&mut other);
                    Err(self.not_an_object(key))
                }
                Err(_) => Err(self.not_an_object(key)),
            },
            Current::Empty | Current::Unread => Ok(serde_json::Map::new()),
        }
    }

    fn missing(&self) -> TargetError {
        let value = if self.key.is_some() {
            "no value needed: the preflight sets the key in an empty JSON object"
        } else {
            "no value needed: the preflight writes the current credential"
        };
        TargetError(format!(
            "{}: the secret does not exist (or these credentials cannot see it). secret-rotator does not create AWS \
             secrets: create it once with `aws secretsmanager create-secret --name {} --region {}` ({value}), then run again",
            self.describe(),
            self.secret_id,
            self.region
        ))
    }

    fn not_an_object(&self, key: &str) -> TargetError {
        TargetError(format!(
            "{}: the secret's value is not a JSON object, so key `{key}` cannot be set in it (its other keys would be \
             lost): drop key to store the credential as the whole value, or make the value a JSON object",
            self.describe()
        ))
    }

    fn unexpected(&self, operation: &str, r: &Response) -> TargetError {
        TargetError(format!(
            "{}: {operation} answered HTTP {} with a body that is not the service's: {}",
            self.describe(),
            r.status.as_u16(),
            if self.key.is_some() && operation == "GetSecretValue" { "(not shown)".to_owned() } else { r.snippet() }
        ))
    }

    /// An AWS error answer as one line: what failed, AWS's words, and how to fix it.
    fn aws_error(&self, operation: &str, r: &Response) -> TargetError {
        let d = self.describe();
        let status = r.status.as_u16();
        let Some(e) = AwsError::of(r) else {
            return TargetError(format!("{d}: {operation} answered HTTP {status}: {}", r.snippet()));
        };
        let said = if e.message.is_empty() { e.code.clone() } else { format!("{}: {}", e.code, e.message) };
        let text = match e.code.as_str() {
            "ResourceNotFoundException" => return self.missing(),
            "AccessDeniedException" | "AccessDenied" => format!(
                "{operation} was denied ({said}): allow secretsmanager:{operation} on this secret to the credentials' \
                 IAM identity (see the README's AWS Secrets Manager section for the policy)"
            ),
            "ExpiredTokenException" | "ExpiredToken" | "RequestExpired" => format!(
                "the AWS credentials have expired ({said}): get fresh ones before this step (with \
                 aws-actions/configure-aws-credentials, a longer role-duration-seconds)"
            ),
            "UnrecognizedClientException" | "InvalidClientTokenId" => format!(
                "AWS does not recognize the credentials ({said}): AWS_ACCESS_KEY_ID is unknown, or AWS_SESSION_TOKEN \
                 is wrong or missing (temporary credentials need their session token)"
            ),
            "InvalidSignatureException" | "SignatureDoesNotMatch" | "IncompleteSignatureException" => format!(
                "AWS refused the request's signature ({said}): AWS_SECRET_ACCESS_KEY does not belong to \
                 AWS_ACCESS_KEY_ID, or this machine's clock is off by more than 5 minutes"
            ),
            "DecryptionFailure" => format!(
                "AWS cannot decrypt the secret ({said}): allow kms:Decrypt on the secret's KMS key to the credentials"
            ),
            "EncryptionFailure" => format!(
                "AWS cannot encrypt the new value ({said}): allow kms:GenerateDataKey on the secret's KMS key to the \
                 credentials"
            ),
            c if e.is_throttling() => {
                format!("{operation} was throttled by AWS ({c}) and retries did not get through: run again later")
            }
            _ => format!("{operation} answered HTTP {status}, {said}"),
        };
        TargetError(format!("{d}: {text}"))
    }
}

#[async_trait]
impl Target for AwsSecret {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self) -> String {
        match &self.key {
            Some(k) => format!("AWS secret {} ({}) key {k}", self.secret_id, self.region),
            None => format!("AWS secret {} ({})", self.secret_id, self.region),
        }
    }

    fn name_hint(&self) -> String {
        let name = match self.secret_id.split_once(":secret:") {
            Some((_, n)) if self.secret_id.starts_with("arn:") => n,
            _ => &self.secret_id,
        };
        let hint: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
        let hint = hint.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-");
        hint.chars().take(64).collect::<String>().trim_end_matches('-').to_owned()
    }

    /// One secret holds one value of a run: two keys of one secret would be two read-modify-writes
    /// of the same object, the second undoing the first.
    fn identity(&self) -> String {
        format!("{} {} {}", KIND.name, self.region, self.secret_id)
    }

    fn check_value(&self, value: &Secret) -> Result<(), ValueProblem> {
        if value.len() > MAX_SECRET_STRING {
            return Err(ValueProblem {
                problem: format!("is {} bytes, over AWS Secrets Manager's 65536-byte SecretString limit", value.len()),
                fix: ": it cannot be stored there",
            });
        }
        Ok(())
    }

    async fn updated_at(&self, http: &Http, _live: &Secret) -> Result<Option<jiff::Timestamp>, TargetError> {
        Ok(self.describe_secret(http).await?.and_then(|d| d.last_changed))
    }

    async fn preflight(&self, http: &Http, proof: Proof<'_>) -> Result<Prepared, TargetError> {
        let described = self.describe_secret(http).await?.ok_or_else(|| self.missing())?;
        if described.deleted {
            return Err(TargetError(format!(
                "{}: the secret is scheduled for deletion: restore it (`aws secretsmanager restore-secret --secret-id {} \
                 --region {}`) or point to another",
                self.describe(),
                self.secret_id,
                self.region
            )));
        }
        if let Some(at) = described.last_changed {
            if at > proof.received_at {
                return Err(newer_than_ours(&self.describe(), at, proof.received_at));
            }
        }
        // The version this tool wrote the current value as, now behind another: a newer value
        // is current, whenever this job read its own.
        if let (None, Some(value)) = (&self.key, proof.current) {
            let stale =
                described.stages.get(&request_token(value)).is_some_and(|s| !s.iter().any(|s| s == "AWSCURRENT"));
            if stale {
                return Err(TargetError(format!(
                    "{}: this job's credential was stored there and is no longer AWSCURRENT: another run has most \
                     likely rotated it already, and re-writing the value this job holds would put an older credential \
                     over the newer one. Nothing was written or rotated. Make sure two runs cannot overlap (GitHub: \
                     concurrency:; GitLab: resource_group), and give each run the secret's AWSCURRENT value",
                    self.describe()
                )));
            }
        }
        // With key: read the current object (proves read access, and that it is an object).
        let current = match &self.key {
            None => Current::Unread,
            Some(_) if !described.has_current => Current::Empty,
            Some(_) => self.get_current(http).await?,
        };
        let next = match proof.current {
            Some(value) => self.secret_string(value, &current)?,
            None => {
                if let Some(key) = &self.key {
                    scrub(&mut serde_json::Value::Object(self.object(key, &current)?));
                }
                return Ok(Prepared::Ready);
            }
        };
        if proof.dry_run {
            // AWS cannot prove write access without a write: a dry run proves access and shape only.
            return Ok(Prepared::Ready);
        }
        self.put(http, &next).await.result.map(|()| Prepared::Ready)
    }

    async fn write(&self, http: &Http, value: &Secret, _live: &Secret) -> Written {
        self.write_value(http, value).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::http::testing::{response, Fake};
    use crate::inputs::{Env, Inputs};
    use crate::services::Service;

    fn aws() -> Arc<Aws> {
        let env = Env::from_pairs([
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            ("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEXAMPLE-session-token"),
        ]);
        let inputs = Inputs::collect(crate::config::table(), &HashMap::new(), &env);
        Arc::new(Aws::parse(None, &Fields::inputs(&inputs, &env)).unwrap())
    }

    fn secret(key: Option<&str>) -> AwsSecret {
        AwsSecret {
            aws: aws(),
            secret_id: "ci/spotify".into(),
            region: "eu-west-1".into(),
            key: key.map(str::to_owned),
        }
    }

    const URL: &str = "POST https://secretsmanager.eu-west-1.amazonaws.com/";

    fn body(r: &crate::http::Request) -> serde_json::Value {
        let (ctype, bytes) = r.body().expect("a body");
        assert_eq!(ctype, "application/x-amz-json-1.1");
        serde_json::from_slice(bytes).unwrap()
    }

    fn targets(fake: &Fake) -> Vec<String> {
        fake.requests().iter().map(|r| r.header_value("x-amz-target").unwrap_or("-").to_owned()).collect()
    }

    fn described(last_changed: f64, current: bool) -> String {
        let stages = if current { r#"{"v1":["AWSCURRENT"]}"# } else { "{}" };
        format!(
            r#"{{"ARN":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:ci/spotify-AbCdEf","Name":"ci/spotify","LastChangedDate":{last_changed},"VersionIdsToStages":{stages}}}"#
        )
    }

    #[test]
    fn the_request_token_is_a_uuid_from_the_values_sha256() {
        // sha256("abc") = ba7816bf 8f01 cfea 4141 40de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(request_token(&Secret::new("abc")), "ba7816bf-8f01-4fea-8141-40de5dae2223");
        let t = request_token(&Secret::new("r2-new-refresh-token"));
        assert_eq!(t.len(), 36);
        assert_eq!(t, request_token(&Secret::new("r2-new-refresh-token")), "one value, one token");
        assert_ne!(t, request_token(&Secret::new("r3-new-refresh-token")));
        assert!(t.starts_with(&Secret::new("r2-new-refresh-token").fingerprint()["sha256:".len()..][..8]));
    }

    #[tokio::test]
    async fn a_write_is_one_signed_put_secret_value_with_the_derived_token() {
        let t = secret(None);
        let fake = Fake::new();
        fake.reply(200, r#"{"ARN":"arn:x","Name":"ci/spotify","VersionId":"v2","VersionStages":["AWSCURRENT"]}"#);
        let value = Secret::new("r2-new-refresh-token");
        let w = t.write(&fake.http(), &value, &value).await;
        w.result.unwrap();
        assert_eq!(w.attempts, 1);
        assert_eq!(fake.lines(), [URL]);
        let sent = &fake.requests()[0];
        assert_eq!(sent.header_value("x-amz-target"), Some("secretsmanager.PutSecretValue"));
        let date = sent.header_value("x-amz-date").unwrap();
        assert!(date.len() == 16 && date.ends_with('Z') && date.as_bytes()[8] == b'T', "{date}");
        let auth = sent.header_value("authorization").unwrap();
        assert!(auth.starts_with(&format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{}/eu-west-1/secretsmanager/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=",
            &date[..8]
        )));
        assert!(sent.is_sensitive("authorization") && sent.is_sensitive("x-amz-security-token"));
        assert_eq!(sent.header_value("x-amz-security-token"), Some("FwoGZXIvYXdzEXAMPLE-session-token"));
        assert_eq!(
            body(sent),
            serde_json::json!({
                "SecretId": "ci/spotify",
                "SecretString": "r2-new-refresh-token",
                "ClientRequestToken": request_token(&value),
            })
        );
    }

    #[tokio::test]
    async fn a_value_written_back_to_a_version_it_had_is_made_current_again() {
        // A rollback writes the old value back: its version (same token, same value) exists, so
        // AWS ignores the put and leaves AWSCURRENT on the new value; the stage is moved by hand.
        let t = secret(None);
        let old = Secret::new("r1-old-refresh-token");
        let token = request_token(&old);
        let fake = Fake::new();
        fake.reply(
            200,
            &format!(r#"{{"ARN":"arn:x","Name":"ci/spotify","VersionId":"{token}","VersionStages":["AWSPREVIOUS"]}}"#),
        );
        fake.reply(
            200,
            &format!(
                r#"{{"ARN":"arn:x","Name":"ci/spotify","LastChangedDate":1764590000,"VersionIdsToStages":{{"{token}":["AWSPREVIOUS"],"v-new":["AWSCURRENT"]}}}}"#
            ),
        );
        fake.reply(200, r#"{"ARN":"arn:x","Name":"ci/spotify"}"#);
        t.write(&fake.http(), &old, &old).await.result.unwrap();
        let targets: Vec<_> =
            fake.requests().iter().map(|r| r.header_value("x-amz-target").unwrap().to_owned()).collect();
        assert_eq!(
            targets,
            [
                "secretsmanager.PutSecretValue",
                "secretsmanager.DescribeSecret",
                "secretsmanager.UpdateSecretVersionStage"
            ]
        );
        assert_eq!(
            body(&fake.requests()[2]),
            serde_json::json!({
                "SecretId": "ci/spotify",
                "VersionStage": "AWSCURRENT",
                "MoveToVersionId": token,
                "RemoveFromVersionId": "v-new",
            })
        );
    }

    #[tokio::test]
    async fn throttling_and_5xx_are_retried_each_attempt_signed_anew() {
        let t = secret(None);
        let fake = Fake::new();
        fake.reply(400, r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#)
            .reply(500, r#"{"__type":"InternalServiceError","message":"oops"}"#)
            .reply(200, "{}");
        let value = Secret::new("r2-new-refresh-token");
        let w = t.write(&fake.http(), &value, &value).await;
        w.result.unwrap();
        assert_eq!(w.attempts, 3);
        let sent = fake.requests();
        assert!(sent.iter().all(|r| body(r) == body(&sent[0])), "the same body, so the same token, every time");
    }

    #[tokio::test]
    async fn a_key_replaces_one_member_and_keeps_the_others() {
        let t = secret(Some("refresh_token"));
        let fake = Fake::new();
        fake.reply(200, r#"{"Name":"ci/spotify","VersionStages":["AWSCURRENT"],"SecretString":"{\"client_id\":\"c-1\",\"refresh_token\":\"r1-old\",\"n\":7}"}"#)
            .reply(200, "{}");
        let value = Secret::new("r2-new-refresh-token");
        t.write(&fake.http(), &value, &value).await.result.unwrap();
        assert_eq!(targets(&fake), ["secretsmanager.GetSecretValue", "secretsmanager.PutSecretValue"]);
        let sent = fake.requests();
        assert_eq!(body(&sent[0]), serde_json::json!({ "SecretId": "ci/spotify", "VersionStage": "AWSCURRENT" }));
        let put = body(&sent[1]);
        let string = put["SecretString"].as_str().unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(string).unwrap(),
            serde_json::json!({ "client_id": "c-1", "refresh_token": "r2-new-refresh-token", "n": 7 })
        );
        assert_eq!(put["ClientRequestToken"], request_token(&Secret::new(string)), "the token of the whole new string");
    }

    #[tokio::test]
    async fn a_key_in_a_secret_that_is_not_a_json_object_is_refused_before_anything_is_written() {
        let t = secret(Some("refresh_token"));
        for current in [r#""r1-plain-text""#, r#""[1,2]""#] {
            let fake = Fake::new();
            fake.reply(200, &described(1.0, true))
                .reply(200, &format!(r#"{{"Name":"ci/spotify","SecretString":{current}}}"#));
            let value = Secret::new("r1-current-token");
            let proof =
                Proof { current: Some(&value), live: &value, dry_run: false, received_at: jiff::Timestamp::now() };
            let e = t.preflight(&fake.http(), proof).await.unwrap_err();
            assert!(e.0.contains("is not a JSON object, so key `refresh_token` cannot be set"), "{e}");
            assert!(!e.0.contains("r1-plain-text"), "the value is never shown: {e}");
            assert_eq!(targets(&fake), ["secretsmanager.DescribeSecret", "secretsmanager.GetSecretValue"]);
        }
    }

    #[tokio::test]
    async fn the_preflight_re_puts_the_current_value_and_a_dry_run_only_reads() {
        let t = secret(None);
        let value = Secret::new("r1-current-token");
        let fake = Fake::new();
        fake.reply(200, &described(1_700_000_000.5, true)).reply(200, "{}");
        let proof = Proof { current: Some(&value), live: &value, dry_run: false, received_at: jiff::Timestamp::now() };
        assert_eq!(t.preflight(&fake.http(), proof).await.unwrap(), Prepared::Ready);
        assert_eq!(targets(&fake), ["secretsmanager.DescribeSecret", "secretsmanager.PutSecretValue"]);
        assert_eq!(body(&fake.requests()[1])["ClientRequestToken"], request_token(&value));

        let fake = Fake::new();
        fake.reply(200, &described(1_700_000_000.5, true));
        let proof = Proof { dry_run: true, ..proof };
        assert_eq!(t.preflight(&fake.http(), proof).await.unwrap(), Prepared::Ready);
        assert_eq!(targets(&fake), ["secretsmanager.DescribeSecret"], "a dry run writes nothing");

        let fake = Fake::new();
        fake.reply(200, &described(1_700_000_000.5, true));
        let proof = Proof { current: None, dry_run: false, ..proof };
        assert_eq!(t.preflight(&fake.http(), proof).await.unwrap(), Prepared::Ready);
        assert_eq!(targets(&fake), ["secretsmanager.DescribeSecret"], "an access token target: access only");
    }

    #[tokio::test]
    async fn a_secret_changed_after_this_job_received_its_secrets_is_not_overwritten() {
        let t = secret(None);
        let value = Secret::new("r1-current-token");
        let received_at: jiff::Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let fake = Fake::new();
        fake.reply(200, &described((received_at.as_second() + 5) as f64, true));
        let proof = Proof { current: Some(&value), live: &value, dry_run: false, received_at };
        let e = t.preflight(&fake.http(), proof).await.unwrap_err();
        assert!(e.0.contains("another run has most likely rotated it already"), "{e}");
        assert_eq!(fake.requests().len(), 1, "nothing written");
    }

    #[tokio::test]
    async fn a_value_this_tool_stored_that_is_no_longer_current_is_not_written_again() {
        let t = secret(None);
        let value = Secret::new("r1-current-token");
        let mine = request_token(&value);
        let stages = format!(r#"{{"{mine}":["AWSPREVIOUS"],"v2":["AWSCURRENT"]}}"#);
        let fake = Fake::new();
        fake.reply(200, &described(1.0, true).replace(r#"{"v1":["AWSCURRENT"]}"#, &stages));
        let proof = Proof { current: Some(&value), live: &value, dry_run: true, received_at: jiff::Timestamp::now() };
        let e = t.preflight(&fake.http(), proof).await.unwrap_err();
        assert!(e.0.contains("this job's credential was stored there and is no longer AWSCURRENT"), "{e}");
        assert_eq!(fake.requests().len(), 1, "nothing written");
    }

    #[tokio::test]
    async fn a_missing_secret_fails_the_preflight_with_the_command_that_creates_it() {
        let t = secret(None);
        let fake = Fake::new();
        fake.respond(response(
            400,
            r#"{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}"#,
            &[],
        ));
        let value = Secret::new("r1-current-token");
        let proof = Proof { current: Some(&value), live: &value, dry_run: true, received_at: jiff::Timestamp::now() };
        let e = t.preflight(&fake.http(), proof).await.unwrap_err();
        assert!(e.0.contains("secret-rotator does not create AWS secrets"), "{e}");
        assert!(e.0.contains("`aws secretsmanager create-secret --name ci/spotify --region eu-west-1`"), "{e}");
    }

    #[tokio::test]
    async fn a_key_of_a_secret_without_a_value_starts_an_object() {
        let t = secret(Some("refresh_token"));
        let fake = Fake::new();
        fake.reply(200, &described(1.0, false)).reply(200, "{}");
        let value = Secret::new("r1-current-token");
        let proof = Proof { current: Some(&value), live: &value, dry_run: false, received_at: jiff::Timestamp::now() };
        t.preflight(&fake.http(), proof).await.unwrap();
        assert_eq!(targets(&fake), ["secretsmanager.DescribeSecret", "secretsmanager.PutSecretValue"]);
        assert_eq!(body(&fake.requests()[1])["SecretString"], r#"{"refresh_token":"r1-current-token"}"#);
    }

    #[tokio::test]
    async fn aws_errors_are_one_clear_line() {
        let t = secret(None);
        let cases = [
            (
                400,
                r#"{"__type":"AccessDeniedException","Message":"User: arn:aws:sts::1:assumed-role/ci is not authorized to perform: secretsmanager:PutSecretValue"}"#,
                "PutSecretValue was denied (AccessDeniedException: User: arn:aws:sts::1:assumed-role/ci is not authorized to perform: secretsmanager:PutSecretValue): allow secretsmanager:PutSecretValue",
            ),
            (
                403,
                "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error></ErrorResponse>",
                "AWS_SECRET_ACCESS_KEY does not belong to AWS_ACCESS_KEY_ID",
            ),
            (400, r#"{"__type":"UnrecognizedClientException","message":"The security token included in the request is invalid."}"#, "AWS_SESSION_TOKEN is wrong or missing"),
            (400, r#"{"__type":"ExpiredTokenException","message":"The security token included in the request is expired"}"#, "the AWS credentials have expired"),
            (
                400,
                r#"{"__type":"InvalidRequestException","message":"You can't perform this operation on the secret because it was marked for deletion."}"#,
                "PutSecretValue answered HTTP 400, InvalidRequestException: You can't perform this operation on the secret because it was marked for deletion.",
            ),
            (502, "<html><body>Bad Gateway</body></html>", "PutSecretValue answered HTTP 502: <html><body>Bad Gateway</body></html>"),
        ];
        for (status, text, expected) in cases {
            let fake = Fake::new();
            for _ in 0..crate::http::MAX_ATTEMPTS {
                fake.reply(status, text);
            }
            let value = Secret::new("r2-new-refresh-token");
            let e = t.write(&fake.http(), &value, &value).await.result.unwrap_err();
            assert!(e.0.starts_with("AWS secret ci/spotify (eu-west-1): "), "{e}");
            assert!(e.0.contains(expected), "{e}\n  expected: {expected}");
            assert_eq!(e.0.lines().count(), 1);
            let tries = if status == 502 { crate::http::MAX_ATTEMPTS as usize } else { 1 };
            assert_eq!(fake.requests().len(), tries, "{expected}: only 5xx and throttling are retried");
        }
    }

    #[test]
    fn names_arns_keys_and_hints() {
        assert_eq!(check_secret_id("s", "ci/spotify").unwrap(), None);
        assert_eq!(
            check_secret_id("s", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ci/spotify-AbCdEf").unwrap(),
            Some("eu-west-1".to_owned())
        );
        for bad in
            ["", "ci spotify", "ci/spötify", "arn:aws:s3:::bucket", "arn:aws:secretsmanager:eu-west-1:123:secret:x"]
        {
            assert!(check_secret_id("s", bad).is_err(), "{bad}");
        }
        assert!(check_key("k", "refresh_token").is_ok());
        assert!(check_key("k", "").is_err() && check_key("k", "a\nb").is_err());
        let mut t = secret(None);
        assert_eq!(t.name_hint(), "ci-spotify");
        t.secret_id = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/CRM_token-AbCdEf".into();
        assert_eq!(t.name_hint(), "prod-crm-token-abcdef");
        assert_eq!(t.identity(), secret(Some("k")).identity().replace("ci/spotify", &t.secret_id));
    }

    #[test]
    fn values_over_64_kb_are_refused() {
        let t = secret(None);
        assert!(t.check_value(&Secret::new("x".repeat(MAX_SECRET_STRING))).is_ok());
        let p = t.check_value(&Secret::new("x".repeat(MAX_SECRET_STRING + 1))).unwrap_err();
        assert_eq!(p.problem, "is 65537 bytes, over AWS Secrets Manager's 65536-byte SecretString limit");
    }

    #[test]
    fn timestamps_are_epoch_seconds_or_text() {
        assert_eq!(timestamp(&serde_json::json!(1.523477145713e9)).unwrap().as_millisecond(), 1_523_477_145_713);
        assert_eq!(timestamp(&serde_json::json!("2026-12-01T10:00:00Z")).unwrap().as_second(), 1_796_119_200);
        assert_eq!(timestamp(&serde_json::json!(null)), None);
    }
}
