//! Target `gitlab`: project and group CI/CD variables, created or updated with their flags.
//! When no separate writer token is given, a `gitlab-token` rotation writes with the token it
//! rotates: the current one for the preflight, the new one afterwards (the old one is revoked).

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;

use super::{
    check_current, Planned, Prepared, Proof, Stored, Target, TargetContext, TargetError, TargetKind, ValueProblem,
    Written,
};
use crate::error::InputError;
use crate::http::{Http, Method, Response};
use crate::inputs::{Field, Fields, Owner};
use crate::secret::Secret;
use crate::services::gitlab::{check_path, Gitlab};
use crate::services::Service;

const OWNER: Owner = Owner::Target("gitlab");
const VARIABLE_NAME: Field =
    Field::plain("variable_name", "the GitLab CI/CD variable that receives the rotated credential")
        .key("variable")
        .of(OWNER);
const PROJECT: Field =
    Field::plain("project", "GitLab project (id or path) whose variable is written (default: CI_PROJECT_ID)").of(OWNER);
const GROUP: Field =
    Field::plain("group", "GitLab group (id or path) whose variable is written, instead of a project").of(OWNER);
const MASKED: Field = Field::bool("masked", "GitLab: mask the variable in job logs (default: true)").of(OWNER);
const MASKED_AND_HIDDEN: Field =
    Field::bool("masked_and_hidden", "GitLab: mask and hide the variable (only when it is created; default: false)")
        .of(OWNER);
const PROTECTED: Field =
    Field::bool("protected", "GitLab: expose the variable only to protected branches and tags (default: false)")
        .of(OWNER);
const RAW: Field = Field::bool("raw", "GitLab: do not expand $ in the value (default: false)").of(OWNER);
const ENVIRONMENT_SCOPE: Field =
    Field::plain("environment_scope", "GitLab: the variable's environment scope (default: *)").of(OWNER);
const VARIABLE_TYPE: Field = Field::plain("variable_type", "GitLab: env_var or file (default: env_var)").of(OWNER);
const VARIABLE_DESCRIPTION: Field =
    Field::plain("variable_description", "GitLab: the variable's description").key("description").of(OWNER);

/// Target `gitlab`.
pub const KIND: TargetKind = TargetKind {
    name: "gitlab",
    key: "gitlab",
    default_in: Some("GITLAB_CI"),
    fields: &[
        VARIABLE_NAME,
        PROJECT,
        GROUP,
        MASKED,
        MASKED_AND_HIDDEN,
        PROTECTED,
        RAW,
        ENVIRONMENT_SCOPE,
        VARIABLE_TYPE,
        VARIABLE_DESCRIPTION,
    ],
    parse,
};

/// A GitLab project or group (id or path).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GitlabScope {
    /// Project id or `group/project` path.
    Project(String),
    /// Group id or path.
    Group(String),
}

/// GitLab's masking rules: a single line, no spaces, at least 8 characters.
fn masking_problem(value: &str) -> Option<&'static str> {
    if value.chars().count() < 8 {
        Some("is shorter than 8 characters")
    } else if value.contains(['\n', '\r']) {
        Some("is not a single line")
    } else if value.chars().any(char::is_whitespace) {
        Some("contains spaces")
    } else {
        None
    }
}

/// One variable, as validated.
pub struct GitlabVariable {
    gitlab: Arc<Gitlab>,
    scope: GitlabScope,
    key: String,
    environment_scope: String,
    masked: bool,
    masked_and_hidden: bool,
    protected: bool,
    raw: bool,
    variable_type: String,
    description: Option<String>,
}

fn parse(f: &Fields, ctx: &TargetContext) -> Result<Vec<Planned>, InputError> {
    let key = f.str(&VARIABLE_NAME)?.ok_or_else(|| {
        f.error(
            &VARIABLE_NAME,
            if f.is_inputs() {
                "is required: name the variable that receives the rotated credential"
            } else {
                "is required: the variable's key"
            },
        )
    })?;
    let key_ok = !key.is_empty() && key.len() <= 255 && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !key_ok {
        return Err(f.error(
            &VARIABLE_NAME,
            format!("`{key}` is not a valid variable key: use 1-255 of letters, digits and _"),
        ));
    }
    let project = match (f.str(&PROJECT)?, f.is_set(&GROUP)) {
        (None, false) if f.is_inputs() => f.env().get("CI_PROJECT_ID").map(str::to_owned),
        (p, _) => p,
    };
    let scope = match (project, f.str(&GROUP)?) {
        (Some(p), None) => GitlabScope::Project(check_path(&f.label(&PROJECT), &p)?),
        (None, Some(g)) => GitlabScope::Group(check_path(&f.label(&GROUP), &g)?),
        (Some(_), Some(_)) => return Err(f.error(&GROUP, "and project are both set: set one of them")),
        (None, None) => {
            return Err(f.error(&PROJECT, "is required (id or path; default CI_PROJECT_ID in GitLab CI), or set group"))
        }
    };
    let masked = f.bool(&MASKED)?;
    let masked_and_hidden = f.bool(&MASKED_AND_HIDDEN)?.unwrap_or(false);
    let protected = f.bool(&PROTECTED)?.unwrap_or(false);
    let raw = f.bool(&RAW)?.unwrap_or(false);
    let environment_scope = f.str(&ENVIRONMENT_SCOPE)?.unwrap_or_else(|| "*".to_owned());
    if environment_scope.trim().is_empty()
        || environment_scope.len() > 255
        || environment_scope.chars().any(char::is_control)
    {
        return Err(f.error(
            &ENVIRONMENT_SCOPE,
            format!(
                "`{environment_scope}` is not an environment scope: use * or an environment name (wildcards allowed)"
            ),
        ));
    }
    let variable_type = f.str(&VARIABLE_TYPE)?.unwrap_or_else(|| "env_var".to_owned());
    if variable_type != "env_var" && variable_type != "file" {
        return Err(f.error(&VARIABLE_TYPE, format!("`{variable_type}` is not valid: use env_var or file")));
    }
    let description = f.str(&VARIABLE_DESCRIPTION)?.filter(|d| !d.is_empty());
    if description.as_ref().is_some_and(|d| d.chars().count() > 255) {
        return Err(f.error(&VARIABLE_DESCRIPTION, "is longer than GitLab's 255 characters"));
    }
    if masked_and_hidden && masked == Some(false) {
        return Err(f.error(&MASKED, "is false but masked_and_hidden is true: a hidden variable is always masked"));
    }
    let gitlab = ctx.services.get::<Gitlab>()?;
    if gitlab.writer.is_none() && !ctx.provider.writes_to(Gitlab::KEY) {
        return Err(InputError::new(
            gitlab.writer_label.clone(),
            format!(
                "is required to write GitLab variables{}: a project, group or personal access token with the api \
                 scope (only a gitlab-token rotation can write with the token it rotates)",
                if ctx.rotation.is_empty() { String::new() } else { format!(" for rotation `{}`", ctx.rotation) }
            ),
        ));
    }
    let variable = GitlabVariable {
        gitlab,
        scope,
        key,
        environment_scope,
        masked: masked.unwrap_or(true) || masked_and_hidden,
        masked_and_hidden,
        protected,
        raw,
        variable_type,
        description,
    };
    check_current(f, &MASKED, &variable, ctx)?;
    Ok(vec![Planned { value: ctx.value, target: Arc::new(variable) }])
}

/// One write request's outcome, over its attempts.
struct Sent {
    attempts: u32,
    result: Result<Response, TargetError>,
    /// Some attempt got no answer after its request may have reached GitLab.
    unanswered: bool,
}

#[derive(Deserialize)]
struct Variable {
    #[serde(default)]
    hidden: bool,
}

impl GitlabVariable {
    fn collection(&self) -> url::Url {
        match &self.scope {
            GitlabScope::Project(p) => self.gitlab.url(&["projects", p, "variables"]),
            GitlabScope::Group(g) => self.gitlab.url(&["groups", g, "variables"]),
        }
    }

    /// GitLab's masking rules apply when the value is masked.
    fn is_masked(&self) -> bool {
        self.masked || self.masked_and_hidden
    }

    /// The variable's URL, with `filter[environment_scope]` so that a key defined for several
    /// environments is read and updated only in ours.
    fn item(&self) -> url::Url {
        let mut url = self.collection();
        url.path_segments_mut().expect("https base URL").push(&self.key);
        url.query_pairs_mut().append_pair("filter[environment_scope]", &self.environment_scope);
        url
    }

    fn fields(&self, value: &Secret) -> serde_json::Value {
        let mut body = serde_json::json!({
            "value": value.expose(),
            "protected": self.protected,
            "raw": self.raw,
            "variable_type": self.variable_type,
            "environment_scope": self.environment_scope,
        });
        if !self.masked_and_hidden {
            body["masked"] = self.masked.into();
        }
        if let Some(d) = &self.description {
            body["description"] = d.clone().into();
        }
        body
    }

    async fn get(&self, http: &Http, live: &Secret) -> Result<Option<Variable>, TargetError> {
        let req = self.gitlab.request(Method::GET, self.item(), live);
        let r = self
            .gitlab
            .send(http, "read variable", &req)
            .await
            .result
            .map_err(|e| TargetError(format!("{}: {e}", self.describe())))?;
        match r.status.as_u16() {
            200 => serde_json::from_slice(&r.body)
                .map(Some)
                .map_err(|_| TargetError(format!("{}: unexpected answer: {}", self.describe(), r.snippet()))),
            404 if is_missing_variable(&r) => Ok(None),
            _ => Err(status_error(&r, "read", &self.describe())),
        }
    }

    /// Reading the collection proves access to a variable that does not exist yet.
    async fn list(&self, http: &Http, live: &Secret) -> Result<(), TargetError> {
        let mut url = self.collection();
        url.query_pairs_mut().append_pair("per_page", "1");
        let req = self.gitlab.request(Method::GET, url, live);
        let r = self
            .gitlab
            .send(http, "list variables", &req)
            .await
            .result
            .map_err(|e| TargetError(format!("{}: {e}", self.describe())))?;
        if r.status.is_success() {
            Ok(())
        } else {
            Err(status_error(&r, "list variables", &self.describe()))
        }
    }

    /// Creates the variable (POST to the collection).
    async fn create(&self, http: &Http, value: &Secret, live: &Secret) -> Sent {
        let mut body = self.fields(value);
        body["key"] = self.key.clone().into();
        if self.masked_and_hidden {
            body["masked_and_hidden"] = true.into();
        }
        self.send_json(http, Method::POST, self.collection(), body, live).await
    }

    /// Updates the variable in its environment scope (PUT).
    async fn update(&self, http: &Http, value: &Secret, live: &Secret) -> Sent {
        self.send_json(http, Method::PUT, self.item(), self.fields(value), live).await
    }

    async fn send_json(
        &self,
        http: &Http,
        method: Method,
        url: url::Url,
        body: serde_json::Value,
        live: &Secret,
    ) -> Sent {
        let req = self.gitlab.request(method, url, live).json(body);
        let at = self.gitlab.send(http, &format!("write {}", self.describe()), &req).await;
        Sent {
            attempts: at.attempts,
            result: at.result.map_err(|e| TargetError(format!("{}: {e}", self.describe()))),
            unanswered: at.unanswered,
        }
    }

    /// Updates, or creates when missing. `known_missing`: the preflight has just read that the
    /// variable does not exist, so the update that could only answer 404 is skipped.
    ///
    /// A failed upsert is `unanswered` when any attempt of any of its sends got no answer: that
    /// attempt may have stored the value, whatever the later attempts were answered (a lost
    /// update answer, then a 403).
    async fn upsert(&self, http: &Http, value: &Secret, live: &Secret, known_missing: bool) -> Written {
        let (mut attempts, mut unanswered) = (0, false);
        let mut tally = |s: Sent| {
            attempts += s.attempts;
            unanswered |= s.unanswered;
            s.result
        };
        let mut r = None;
        if !known_missing {
            match tally(self.update(http, value, live).await) {
                Ok(u) if u.status.as_u16() == 404 && is_missing_variable(&u) => {}
                other => r = Some(other),
            }
        }
        let r = match r {
            Some(r) => r,
            None => match tally(self.create(http, value, live).await) {
                // An earlier attempt's create went through: update what it made.
                Ok(c) if c.status.as_u16() == 400 && is_taken(&c) => tally(self.update(http, value, live).await),
                other => other,
            },
        };
        let result = match r {
            Ok(r) if r.status.is_success() => Ok(()),
            Ok(r) => Err(status_error(&r, "write", &self.describe())),
            Err(e) => Err(e),
        };
        // A transport error on the last attempt is unanswered too (the retry loop counts it,
        // unless the request was surely never sent).
        let unanswered = unanswered && result.is_err();
        Written { attempts, result, unanswered }
    }

    /// Refuses what GitLab cannot do to an existing variable.
    fn check_existing(&self, v: &Variable) -> Result<(), TargetError> {
        if self.masked_and_hidden && !v.hidden {
            return Err(TargetError(format!(
                "{}: masked_and_hidden can only be set when GitLab creates a variable, and this one exists without \
                 it: delete it in GitLab so it is created hidden, or set masked_and_hidden to false",
                self.describe()
            )));
        }
        if v.hidden && !self.is_masked() {
            return Err(TargetError(format!(
                "{}: the variable is hidden, and GitLab cannot unmask a hidden variable: set masked to true",
                self.describe()
            )));
        }
        Ok(())
    }
}

/// GitLab answers 404 both for a missing variable and for a project the token cannot see; its
/// message tells them apart.
fn is_missing_variable(r: &Response) -> bool {
    r.message().contains("Variable Not Found")
}

/// GitLab's 400 when a variable with this key and environment scope exists already.
fn is_taken(r: &Response) -> bool {
    r.message().contains("has already been taken")
}

#[async_trait]
impl Target for GitlabVariable {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self) -> String {
        let scope = match &self.scope {
            GitlabScope::Project(p) => format!("project {p}"),
            GitlabScope::Group(g) => format!("group {g}"),
        };
        if self.environment_scope == "*" {
            format!("{scope} variable {}", self.key)
        } else {
            format!("{scope} variable {} (environment {})", self.key, self.environment_scope)
        }
    }

    fn name_hint(&self) -> String {
        self.key.clone()
    }

    fn check_value(&self, value: &Secret) -> Result<(), ValueProblem> {
        match masking_problem(value.expose()) {
            Some(problem) if self.is_masked() => Err(ValueProblem {
                problem: format!(
                    "{problem}, so GitLab cannot mask it (masked values are a single line, without spaces, of 8 \
                     characters or more)"
                ),
                fix: ": set masked to false",
            }),
            _ => Ok(()),
        }
    }

    fn without_update_time(&self) -> Option<&'static str> {
        Some(
            "is not supported with a GitLab variable target: GitLab keeps no update time for variables (a \
             gitlab-token rotation uses the token's own age)",
        )
    }

    async fn updated_at(&self, _http: &Http, _live: &Secret) -> Result<Option<jiff::Timestamp>, TargetError> {
        // GitLab keeps no update time for variables; validation refuses min_age with them.
        Ok(None)
    }

    async fn stored(&self, http: &Http, live: &Secret) -> Result<Stored, TargetError> {
        // No update time, but whether the variable exists is one read away.
        Ok(match self.get(http, live).await? {
            Some(_) => Stored::NoUpdateTime,
            None => Stored::Missing,
        })
    }

    async fn preflight(&self, http: &Http, proof: Proof<'_>) -> Result<Prepared, TargetError> {
        // GitLab keeps no update time for variables: an older value cannot be told from a newer one.
        let Proof { current, live, dry_run, .. } = proof;
        let existing = self.get(http, live).await?;
        if let Some(v) = &existing {
            self.check_existing(v)?;
        }
        match (current, existing) {
            // A dry run creates nothing (a hidden variable could never be unhidden again).
            (_, None) if dry_run => self.list(http, live).await.map(|()| Prepared::WouldCreate),
            (Some(value), existing) => {
                self.upsert(http, value, live, existing.is_none()).await.result.map(|()| Prepared::Ready)
            }
            (None, Some(_)) => Ok(Prepared::Ready),
            (None, None) => self.list(http, live).await.map(|()| Prepared::Ready),
        }
    }

    async fn write(&self, http: &Http, value: &Secret, live: &Secret) -> Written {
        self.upsert(http, value, live, false).await
    }
}

/// GitLab's answer, with what it usually means.
fn status_error(r: &Response, what: &str, target: &str) -> TargetError {
    super::status_error(r, what, target, |status| match status {
        401 => " (the token is invalid, expired or revoked)",
        403 => {
            " (the token may not write CI/CD variables: it needs the api scope and the Maintainer role; CI_JOB_TOKEN \
             cannot write variables)"
        }
        404 => " (not found: check the project or group, and that the token can see it)",
        409 => " (several variables have this key: set environment_scope to the one to write)",
        _ => "",
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::http::testing::{json_body, Fake};
    use crate::http::HttpError;
    use crate::inputs::{Env, Inputs};
    use crate::services::Service;

    fn variable(masked_and_hidden: bool) -> GitlabVariable {
        let env = Env::from_pairs([
            ("INPUT_GITLAB_TOKEN", "glpat-writer-0123456789"),
            ("CI_API_V4_URL", "https://gl.example.com/api/v4"),
        ]);
        let inputs = Inputs::collect(crate::config::table(), &HashMap::new(), &env);
        let gitlab = Arc::new(Gitlab::parse(None, &Fields::inputs(&inputs, &env)).unwrap());
        GitlabVariable {
            gitlab,
            scope: GitlabScope::Project("acme/app".into()),
            key: "MY_TOKEN".into(),
            environment_scope: "prod".into(),
            masked: true,
            masked_and_hidden,
            protected: true,
            raw: false,
            variable_type: "env_var".into(),
            description: Some("rotated".into()),
        }
    }

    const ITEM: &str =
        "https://gl.example.com/api/v4/projects/acme%2Fapp/variables/MY_TOKEN?filter%5Benvironment_scope%5D=prod";

    #[tokio::test]
    async fn a_write_updates_in_its_environment_scope_or_creates() {
        let v = variable(false);
        let fake = Fake::new();
        fake.reply(404, r#"{"message":"404 Variable Not Found"}"#).reply(201, "{}");
        v.write(&fake.http(), &Secret::new("r2-new-0123"), &Secret::new("unused-live")).await.result.unwrap();
        assert_eq!(
            fake.lines(),
            [format!("PUT {ITEM}"), "POST https://gl.example.com/api/v4/projects/acme%2Fapp/variables".to_owned()]
        );
        let sent = fake.requests();
        assert_eq!(sent[0].header_value("PRIVATE-TOKEN"), Some("glpat-writer-0123456789"));
        assert!(sent[0].is_sensitive("PRIVATE-TOKEN"));
        assert_eq!(
            json_body(&sent[1]),
            serde_json::json!({
                "key": "MY_TOKEN", "value": "r2-new-0123", "masked": true, "protected": true, "raw": false,
                "variable_type": "env_var", "environment_scope": "prod", "description": "rotated",
            })
        );
    }

    const COLLECTION: &str = "https://gl.example.com/api/v4/projects/acme%2Fapp/variables";

    /// A write whose first attempt got no answer may have landed, whatever came after; a write
    /// refused on every attempt did not.
    #[tokio::test(start_paused = true)]
    async fn a_lost_answer_then_a_refusal_may_have_landed() {
        let v = variable(false);
        let (value, live) = (Secret::new("r2-new-0123"), Secret::new("unused-live"));
        let forbidden = r#"{"message":"403 Forbidden"}"#;

        let fake = Fake::new();
        fake.fail(HttpError::Transport("connection closed before message completed".into())).reply(403, forbidden);
        let w = v.write(&fake.http(), &value, &live).await;
        assert!(w.result.unwrap_err().0.contains("HTTP 403"));
        assert_eq!((w.attempts, w.unanswered), (2, true));
        assert_eq!(fake.lines(), [format!("PUT {ITEM}"), format!("PUT {ITEM}")]);

        // The same when the later attempts are all answered 5xx, until the retries run out.
        let fake = Fake::new();
        fake.fail(HttpError::Transport("connection closed before message completed".into()));
        for _ in 1..crate::http::MAX_ATTEMPTS {
            fake.reply(502, r#"{"message":"502 Bad Gateway"}"#);
        }
        let w = v.write(&fake.http(), &value, &live).await;
        assert!(w.result.unwrap_err().0.contains("HTTP 502"));
        assert_eq!((w.attempts, w.unanswered), (crate::http::MAX_ATTEMPTS, true));

        let fake = Fake::new();
        fake.reply(403, forbidden);
        let w = v.write(&fake.http(), &value, &live).await;
        assert!(w.result.is_err());
        assert_eq!((w.attempts, w.unanswered), (1, false));

        // A connection that was never made: the request never reached GitLab.
        let fake = Fake::new();
        for _ in 0..crate::http::MAX_ATTEMPTS {
            fake.fail(HttpError::NotSent("connection refused".into()));
        }
        let w = v.write(&fake.http(), &value, &live).await;
        assert!(w.result.is_err());
        assert!(!w.unanswered);
    }

    /// The answer lost is the create's: its retry finds the key taken, and the update of what
    /// it made is refused. The variable may hold the value.
    #[tokio::test(start_paused = true)]
    async fn a_lost_create_answer_counts_over_the_update_after_it() {
        let v = variable(false);
        let fake = Fake::new();
        fake.reply(404, r#"{"message":"404 Variable Not Found"}"#)
            .fail(HttpError::Timeout(std::time::Duration::from_secs(30)))
            .reply(400, r#"{"message":{"key":["(MY_TOKEN) has already been taken"]}}"#)
            .reply(403, r#"{"message":"403 Forbidden"}"#);
        let w = v.write(&fake.http(), &Secret::new("r2-new-0123"), &Secret::new("unused-live")).await;
        assert!(w.result.is_err());
        assert_eq!((w.attempts, w.unanswered), (4, true));
        assert_eq!(
            fake.lines(),
            [format!("PUT {ITEM}"), format!("POST {COLLECTION}"), format!("POST {COLLECTION}"), format!("PUT {ITEM}")]
        );

        // Written in the end: nothing to roll back, whatever an attempt lost.
        let fake = Fake::new();
        fake.fail(HttpError::Transport("connection reset".into())).reply(200, "{}");
        let w = v.write(&fake.http(), &Secret::new("r2-new-0123"), &Secret::new("unused-live")).await;
        w.result.unwrap();
        assert!(!w.unanswered);
    }

    #[tokio::test]
    async fn a_dry_run_preflight_creates_no_missing_hidden_variable() {
        let v = variable(true);
        let fake = Fake::new();
        fake.reply(404, r#"{"message":"404 Variable Not Found"}"#).reply(200, "[]");
        let current = Secret::new("r1-current-0123");
        let proof =
            Proof { current: Some(&current), live: &current, dry_run: true, received_at: jiff::Timestamp::now() };
        let prepared = v.preflight(&fake.http(), proof).await.unwrap();
        assert_eq!(prepared, Prepared::WouldCreate);
        assert_eq!(
            fake.lines(),
            [
                format!("GET {ITEM}"),
                "GET https://gl.example.com/api/v4/projects/acme%2Fapp/variables?per_page=1".to_owned()
            ]
        );
    }

    #[tokio::test]
    async fn a_hidden_variable_cannot_be_made_from_an_existing_one() {
        let v = variable(true);
        let fake = Fake::new();
        fake.reply(200, r#"{"key":"MY_TOKEN","hidden":false}"#);
        let current = Secret::new("r1-current-0123");
        let proof =
            Proof { current: Some(&current), live: &current, dry_run: false, received_at: jiff::Timestamp::now() };
        let e = v.preflight(&fake.http(), proof).await.unwrap_err();
        assert!(e.0.contains("masked_and_hidden can only be set when GitLab creates a variable"), "{e}");
        assert_eq!(fake.requests().len(), 1, "nothing written");
    }

    #[tokio::test]
    async fn status_reads_whether_the_variable_exists_and_writes_nothing() {
        let v = variable(false);
        let fake = Fake::new();
        fake.reply(200, r#"{"key":"MY_TOKEN","hidden":false}"#).reply(404, r#"{"message":"404 Variable Not Found"}"#);
        let live = Secret::new("unused-live-0123");
        assert_eq!(v.stored(&fake.http(), &live).await.unwrap(), Stored::NoUpdateTime);
        assert_eq!(v.stored(&fake.http(), &live).await.unwrap(), Stored::Missing);
        assert_eq!(fake.lines(), [format!("GET {ITEM}"), format!("GET {ITEM}")]);
    }

    #[test]
    fn masking_rules() {
        assert_eq!(masking_problem("short"), Some("is shorter than 8 characters"));
        assert_eq!(masking_problem("two\nlines-value"), Some("is not a single line"));
        assert_eq!(masking_problem("with a space"), Some("contains spaces"));
        assert_eq!(masking_problem("glpat-0123456789"), None);
    }
}
