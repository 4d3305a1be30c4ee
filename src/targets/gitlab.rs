//! Target `gitlab`: project and group CI/CD variables, created or updated with their flags.
//! When no separate writer token is given, a `gitlab-token` rotation writes with the token it
//! rotates: the current one for the preflight, the new one afterwards (the old one is revoked).

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::{Target, TargetError, Written};
use crate::config::plan::{masking_problem, GitlabScope, GitlabSettings, GitlabVariable};
use crate::http::{Attempted, Http, Response};
use crate::log;
use crate::secret::Secret;

/// GitLab requests in flight at once.
const MAX_IN_FLIGHT: usize = 4;

/// The shared GitLab client.
pub struct GitlabClient {
    http: Http,
    settings: GitlabSettings,
    in_flight: Semaphore,
}

impl GitlabClient {
    /// A client for one run. Makes no request.
    pub fn new(http: Http, settings: GitlabSettings) -> Self {
        GitlabClient { http, settings, in_flight: Semaphore::new(MAX_IN_FLIGHT) }
    }

    async fn send(&self, what: &str, build: impl Fn() -> reqwest::RequestBuilder) -> Attempted {
        let _permit = self.in_flight.acquire().await;
        self.http.send_idempotent(what, build).await
    }

    /// A request authenticated with the writer token, or else with `live` (the rotated token).
    fn request(&self, method: reqwest::Method, url: url::Url, live: &Secret) -> reqwest::RequestBuilder {
        let req = self.http.client().request(method, url);
        match &self.settings.writer {
            Some(w) if w.bearer => req.bearer_auth(w.token.expose()),
            Some(w) => req.header("PRIVATE-TOKEN", w.token.expose()),
            None => req.header("PRIVATE-TOKEN", live.expose()),
        }
    }
}

#[derive(Deserialize)]
struct Variable {
    #[serde(default)]
    hidden: bool,
}

/// One variable.
pub struct GitlabTarget {
    client: Arc<GitlabClient>,
    var: GitlabVariable,
}

impl GitlabTarget {
    /// A target on the shared client.
    pub fn new(client: Arc<GitlabClient>, var: GitlabVariable) -> Self {
        GitlabTarget { client, var }
    }

    fn collection(&self) -> url::Url {
        let mut url = self.client.settings.api_url.clone();
        {
            let mut segs = url.path_segments_mut().expect("https base URL");
            segs.pop_if_empty();
            match &self.var.scope {
                GitlabScope::Project(p) => segs.extend(["projects", p]),
                GitlabScope::Group(g) => segs.extend(["groups", g]),
            };
            segs.push("variables");
        }
        url
    }

    /// The variable's URL, with `filter[environment_scope]` so that a key defined for several
    /// environments is read and updated only in ours.
    fn item(&self) -> url::Url {
        let mut url = self.collection();
        url.path_segments_mut().expect("https base URL").push(&self.var.key);
        url.query_pairs_mut().append_pair("filter[environment_scope]", &self.var.environment_scope);
        url
    }

    fn fields(&self, value: &Secret) -> serde_json::Value {
        let mut body = serde_json::json!({
            "value": value.expose(),
            "protected": self.var.protected,
            "raw": self.var.raw,
            "variable_type": self.var.variable_type,
            "environment_scope": self.var.environment_scope,
        });
        if !self.var.masked_and_hidden {
            body["masked"] = self.var.masked.into();
        }
        if let Some(d) = &self.var.description {
            body["description"] = d.clone().into();
        }
        body
    }

    async fn get(&self, live: &Secret) -> Result<Option<Variable>, TargetError> {
        let url = self.item();
        log::debug(&format!("GET {url}"));
        let r = self
            .client
            .send("read variable", || self.client.request(reqwest::Method::GET, url.clone(), live))
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

    /// Creates the variable (POST to the collection).
    async fn create(&self, value: &Secret, live: &Secret) -> (u32, Result<Response, TargetError>) {
        let mut body = self.fields(value);
        body["key"] = self.var.key.clone().into();
        if self.var.masked_and_hidden {
            body["masked_and_hidden"] = true.into();
        }
        self.send_json(reqwest::Method::POST, self.collection(), &body, live).await
    }

    /// Updates the variable in its environment scope (PUT).
    async fn update(&self, value: &Secret, live: &Secret) -> (u32, Result<Response, TargetError>) {
        self.send_json(reqwest::Method::PUT, self.item(), &self.fields(value), live).await
    }

    async fn send_json(
        &self,
        method: reqwest::Method,
        url: url::Url,
        body: &serde_json::Value,
        live: &Secret,
    ) -> (u32, Result<Response, TargetError>) {
        log::debug(&format!("{method} {url}"));
        let at = self
            .client
            .send(&format!("write {}", self.describe()), || {
                self.client.request(method.clone(), url.clone(), live).json(body)
            })
            .await;
        (at.attempts, at.result.map_err(|e| TargetError(format!("{}: {e}", self.describe()))))
    }

    /// Updates, or creates when missing. `known_missing`: the preflight has just read that the
    /// variable does not exist, so the update that could only answer 404 is skipped.
    async fn upsert(&self, value: &Secret, live: &Secret, known_missing: bool) -> Written {
        let mut attempts = 0;
        let mut r = None;
        if !known_missing {
            let (a, updated) = self.update(value, live).await;
            attempts += a;
            match updated {
                Ok(u) if u.status.as_u16() == 404 && is_missing_variable(&u) => {}
                other => r = Some(other),
            }
        }
        let r = match r {
            Some(r) => r,
            None => {
                let (a, created) = self.create(value, live).await;
                attempts += a;
                match created {
                    // An earlier attempt's create went through: update what it made.
                    Ok(c)
                        if c.status.as_u16() == 400
                            && String::from_utf8_lossy(&c.body).contains("already been taken") =>
                    {
                        let (a, again) = self.update(value, live).await;
                        attempts += a;
                        again
                    }
                    other => other,
                }
            }
        };
        let result = match r {
            Ok(r) if r.status.is_success() => Ok(()),
            Ok(r) => Err(status_error(&r, "write", &self.describe())),
            Err(e) => Err(e),
        };
        Written { attempts, result }
    }
}

/// GitLab answers 404 both for a missing variable and for a project the token cannot see.
fn is_missing_variable(r: &Response) -> bool {
    String::from_utf8_lossy(&r.body).contains("Variable Not Found")
}

#[async_trait]
impl Target for GitlabTarget {
    fn kind(&self) -> &'static str {
        "gitlab"
    }

    fn describe(&self) -> String {
        self.var.describe()
    }

    fn check_value(&self, value: &Secret) -> Result<(), String> {
        if self.var.is_masked() {
            if let Some(problem) = masking_problem(value.expose()) {
                return Err(format!("the new value {problem}, so GitLab would refuse it as a masked variable"));
            }
        }
        Ok(())
    }

    async fn updated_at(&self, _live: &Secret) -> Result<Option<jiff::Timestamp>, TargetError> {
        // GitLab keeps no update time for variables; validation refuses min_age with them.
        Ok(None)
    }

    async fn preflight(&self, current: Option<&Secret>, live: &Secret) -> Result<(), TargetError> {
        let existing = self.get(live).await?;
        if let Some(v) = &existing {
            if self.var.masked_and_hidden && !v.hidden {
                return Err(TargetError(format!(
                    "{}: masked_and_hidden can only be set when GitLab creates a variable, and this one exists without \
                     it: delete it in GitLab so it is created hidden, or set masked_and_hidden to false",
                    self.describe()
                )));
            }
            if v.hidden && !self.var.is_masked() {
                return Err(TargetError(format!(
                    "{}: the variable is hidden, and GitLab cannot unmask a hidden variable: set masked to true",
                    self.describe()
                )));
            }
        }
        match (current, existing) {
            (Some(value), existing) => self.upsert(value, live, existing.is_none()).await.result,
            (None, Some(_)) => Ok(()),
            // Not created yet and its value unknown: reading the collection proves access.
            (None, None) => {
                let mut url = self.collection();
                url.query_pairs_mut().append_pair("per_page", "1");
                let r = self
                    .client
                    .send("list variables", || self.client.request(reqwest::Method::GET, url.clone(), live))
                    .await
                    .result
                    .map_err(|e| TargetError(format!("{}: {e}", self.describe())))?;
                if r.status.is_success() {
                    Ok(())
                } else {
                    Err(status_error(&r, "list variables", &self.describe()))
                }
            }
        }
    }

    async fn write(&self, value: &Secret, live: &Secret) -> Written {
        self.upsert(value, live, false).await
    }
}

/// GitLab's answer, with what it usually means.
fn status_error(r: &Response, what: &str, target: &str) -> TargetError {
    super::status_error(r, what, target, |status| {
        match status {
        401 => " (the token is invalid, expired or revoked)",
        403 => " (the token may not write CI/CD variables: it needs the api scope and the Maintainer role; CI_JOB_TOKEN cannot write variables)",
        404 => " (not found: check the project or group, and that the token can see it)",
        409 => " (several variables have this key: set environment_scope to the one to write)",
        _ => "",
    }
    })
}
