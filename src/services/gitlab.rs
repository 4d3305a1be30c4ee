//! The GitLab connection (`gitlab:`, `gitlab_url`, `gitlab_token`, `CI_API_V4_URL`), shared by
//! the `gitlab-token` provider and the `gitlab` target: where the API is, which token writes
//! variables, and the checks both need (project and group paths, `CI_JOB_TOKEN`).

use tokio::sync::Semaphore;
use url::Url;

use super::Service;
use crate::error::InputError;
use crate::http::{Attempted, Http, Method, Request};
use crate::inputs::{check_url, Env, Field, Fields, Owner};
use crate::log;
use crate::secret::Secret;

/// GitLab requests in flight at once.
const MAX_IN_FLIGHT: usize = 4;

const OWNER: Owner = Owner::Service("gitlab");
const URL: Field = Field::plain("gitlab_url", "GitLab instance (default: CI_SERVER_URL, else https://gitlab.com)")
    .key("url")
    .of(OWNER);
const TOKEN: Field = Field::secret(
    "gitlab_token",
    "a token that may write CI/CD variables (default: the rotated token itself with gitlab-token)",
)
.key("token")
.of(OWNER);
const TOKEN_TYPE: Field =
    Field::plain("gitlab_token_type", "how gitlab_token is sent: private-token or bearer (default: private-token)")
        .key("token_type")
        .of(OWNER);

/// A token that writes GitLab variables.
#[derive(Debug)]
pub struct Writer {
    /// The token.
    pub token: Secret,
    /// Sent as `Authorization: Bearer` (an OAuth token) instead of `PRIVATE-TOKEN`.
    pub bearer: bool,
}

/// The GitLab connection of a run.
#[derive(Debug)]
pub struct Gitlab {
    /// REST API base (`https://gitlab.example.com/api/v4`).
    pub api_url: Url,
    /// The token that writes variables; `None`: each rotation's own (rotated) GitLab token.
    pub writer: Option<Writer>,
    /// How the writer token is named in errors (`input gitlab_token`, `gitlab.token`).
    pub writer_label: String,
    in_flight: Semaphore,
}

impl Service for Gitlab {
    const KEY: &'static str = "gitlab";
    const FIELDS: &'static [Field] = &[URL, TOKEN, TOKEN_TYPE];

    fn parse(section: Option<&Fields>, inputs: &Fields) -> Result<Self, InputError> {
        if let Some(s) = section {
            s.finish(Self::FIELDS, &[])?;
        }
        let from = |f: &Field| super::setting(inputs, section, f);
        let env = inputs.env();
        let api_url = match from(&URL)? {
            Some((u, label)) => api_base(&label, &u)?,
            None => match (env.get("CI_API_V4_URL"), env.get("CI_SERVER_URL")) {
                (Some(u), _) => api_base("CI_API_V4_URL", u)?,
                (None, Some(u)) => api_base("CI_SERVER_URL", u)?,
                (None, None) => api_base("gitlab_url", "https://gitlab.com")?,
            },
        };
        let (token, writer_label) = match inputs.secret(&TOKEN)? {
            Some(t) => (Some(t), inputs.label(&TOKEN)),
            None => match section {
                Some(s) => (s.secret(&TOKEN)?, s.label(&TOKEN)),
                None => (None, inputs.label(&TOKEN)),
            },
        };
        let bearer = match from(&TOKEN_TYPE)? {
            None => false,
            Some((t, _)) if t == "private-token" => false,
            Some((t, _)) if t == "bearer" => true,
            Some((other, label)) => {
                return Err(InputError::new(label, format!("`{other}` is not valid: use private-token or bearer")))
            }
        };
        let writer = match token {
            Some(token) => {
                check_not_job_token(&writer_label, &token, env)?;
                Some(Writer { token, bearer })
            }
            None => None,
        };
        Ok(Gitlab { api_url, writer, writer_label, in_flight: Semaphore::new(MAX_IN_FLIGHT) })
    }
}

impl Gitlab {
    /// A URL under the API base.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.api_url.clone();
        url.path_segments_mut().expect("https base URL").pop_if_empty().extend(segments);
        url
    }

    /// A request authenticated with the writer token, or else with `live` (the rotated token).
    pub fn request(&self, method: Method, url: Url, live: &Secret) -> Request {
        let req = Request::new(method, url);
        match &self.writer {
            Some(w) if w.bearer => req.bearer(&w.token),
            Some(w) => req.secret_header("PRIVATE-TOKEN", w.token.clone()),
            None => req.secret_header("PRIVATE-TOKEN", live.clone()),
        }
    }

    /// Sends a request that is safe to repeat, at most [`MAX_IN_FLIGHT`] at once.
    pub async fn send(&self, http: &Http, what: &str, req: &Request) -> Attempted {
        let _permit = self.in_flight.acquire().await;
        log::debug(&format!("{} {}", req.method, req.url));
        http.send_idempotent(what, req).await
    }
}

/// The REST API base of a GitLab instance, from its URL (or an API URL).
pub fn api_base(input: &str, u: &str) -> Result<Url, InputError> {
    let trimmed = u.trim().trim_end_matches('/');
    check_url(input, trimmed)?;
    let full = if trimmed.ends_with("/api/v4") { trimmed.to_owned() } else { format!("{trimmed}/api/v4") };
    check_url(input, &full)
}

/// A GitLab project or group: a numeric id or a `group/subgroup/project` path.
pub fn check_path(input: &str, v: &str) -> Result<String, InputError> {
    let v = v.trim().trim_matches('/');
    let ok = !v.is_empty()
        && v.len() <= 1024
        && v.split('/').all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if ok {
        Ok(v.to_owned())
    } else {
        Err(InputError::new(
            input,
            format!("`{v}` is not a GitLab project or group: use its id or its path (group/project)"),
        ))
    }
}

/// CI_JOB_TOKEN cannot rotate itself nor write variables: say so before anything is sent.
pub fn check_not_job_token(input: &str, token: &Secret, env: &Env) -> Result<(), InputError> {
    let is_job_token = token.expose().starts_with("glcbt-") || env.get("CI_JOB_TOKEN") == Some(token.expose());
    if is_job_token {
        return Err(InputError::new(
            input,
            "is CI_JOB_TOKEN, which cannot rotate tokens or write CI/CD variables: use a project, group or personal \
             access token with the api scope",
        ));
    }
    Ok(())
}
