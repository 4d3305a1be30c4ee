//! The GitLab CI/CD component (`templates/rotate.yml`): valid against GitLab's CI schema, and run
//! for real with gitlab-ci-local (shell executor) through an `include: component:` resolved from a
//! git repository, its job rotating a token against the GitLab stand-in.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use common::*;
use secret_rotator::config;
use serde_json::{json, Value};

fn component() -> (Value, Value) {
    let text = std::fs::read_to_string(root().join("templates/rotate.yml")).unwrap();
    let (head, jobs) = text.split_once("\n---\n").expect("a component is two YAML documents");
    (serde_norway::from_str(head).unwrap(), serde_norway::from_str(jobs).unwrap())
}

fn spec_inputs() -> BTreeSet<String> {
    component().0["spec"]["inputs"].as_object().unwrap().keys().cloned().collect()
}

/// GitLab refuses an include whose inputs the component does not declare ("unknown input
/// arguments"); gitlab-ci-local accepts them silently, so that check is made here.
fn unknown_inputs(include_inputs: &Value) -> Vec<String> {
    let declared = spec_inputs();
    include_inputs.as_object().unwrap().keys().filter(|k| !declared.contains(*k)).cloned().collect()
}

#[test]
fn the_component_and_the_pipeline_validate_against_gitlabs_schema() {
    let text = std::fs::read_to_string(root().join("templates/rotate.yml")).unwrap();
    let (head, jobs) = text.split_once("\n---\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (h, j) = (dir.path().join("spec.yml"), dir.path().join("jobs.yml"));
    std::fs::write(&h, head).unwrap();
    std::fs::write(&j, jobs).unwrap();
    assert_schema_valid("vendor.gitlab-ci", [h, j, root().join(".gitlab-ci.yml")]);
}

#[test]
fn the_gitlab_examples_validate_and_use_declared_inputs_only() {
    let mut n = 0;
    for e in std::fs::read_dir(root().join("examples/gitlab")).unwrap() {
        let path = e.unwrap().path();
        assert_schema_valid("vendor.gitlab-ci", [&path]);
        let doc: Value = serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        // A pipeline may run the image without the component (examples/gitlab/sharded.yml).
        for include in doc["include"].as_array().into_iter().flatten() {
            assert_eq!(unknown_inputs(&include["inputs"]), Vec::<String>::new(), "{}", path.display());
            assert!(include["inputs"].get("variable_name").is_some(), "{}: the required input", path.display());
        }
        n += 1;
    }
    assert!(n >= 2);
}

#[test]
fn the_component_passes_only_inputs_the_binary_reads() {
    let (_, jobs) = component();
    let job = jobs.as_object().unwrap().values().next().unwrap();
    let binary: BTreeSet<&str> = config::table().iter().map(|s| s.input).collect();
    for key in job["variables"].as_object().unwrap().keys().filter_map(|k| k.strip_prefix("INPUT_")) {
        let name = key.to_ascii_lowercase();
        assert!(binary.contains(name.as_str()), "the component sets INPUT_{key}, which the binary does not read");
    }
    // Secrets are never inputs: they come from CI/CD variables named by *_variable inputs.
    for secret in
        ["token", "refresh_token", "client_secret", "gitlab_token", "alert_webhook", "secret_id", "vault_token"]
    {
        assert!(!spec_inputs().contains(secret), "{secret} must not be a component input");
        assert!(spec_inputs().contains(&format!("{secret}_variable")));
    }
    // The project's own pipeline includes the component with declared inputs only.
    let ci: Value = serde_norway::from_str(&std::fs::read_to_string(root().join(".gitlab-ci.yml")).unwrap()).unwrap();
    assert_eq!(unknown_inputs(&ci["include"][0]["inputs"]), Vec::<String>::new());
}

struct Consumer {
    home: tempfile::TempDir,
    dir: tempfile::TempDir,
}

fn git(dir: &Path, home: &Path, args: &[&str]) {
    let out = Command::new("git").args(args).current_dir(dir).env("HOME", home).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A consumer project whose .gitlab-ci.yml includes the component at 1.0.0 from
/// gitlab.example.com/acme/secret-rotator, served from a local bare repository.
fn consumer(include_inputs: &Value) -> Consumer {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    git(h, h, &["config", "--global", "user.email", "ci@example.com"]);
    git(h, h, &["config", "--global", "user.name", "ci"]);
    git(h, h, &["config", "--global", "init.defaultBranch", "main"]);

    let component = h.join("component");
    std::fs::create_dir_all(component.join("templates")).unwrap();
    std::fs::copy(root().join("templates/rotate.yml"), component.join("templates/rotate.yml")).unwrap();
    git(&component, h, &["init", "-q"]);
    git(&component, h, &["add", "-A"]);
    git(&component, h, &["commit", "-qm", "component"]);
    git(&component, h, &["tag", "1.0.0"]);
    let bare = h.join("secret-rotator.git");
    git(h, h, &["clone", "-q", "--bare", component.to_str().unwrap(), bare.to_str().unwrap()]);
    // gitlab-ci-local fetches components with `git archive --remote=ssh://git@HOST:22/PATH.git`.
    let rule = format!("url.{}.insteadOf", bare.display());
    git(h, h, &["config", "--global", &rule, "ssh://git@gitlab.example.com:22/acme/secret-rotator.git"]);

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pipeline = json!({
        "stages": ["deploy"],
        "include": [ { "component": "gitlab.example.com/acme/secret-rotator/rotate@1.0.0", "inputs": include_inputs } ],
    });
    std::fs::write(d.join(".gitlab-ci.yml"), serde_norway::to_string(&pipeline).unwrap()).unwrap();
    git(d, h, &["init", "-q"]);
    git(d, h, &["remote", "add", "origin", "git@gitlab.example.com:acme/app.git"]);
    git(d, h, &["add", "-A"]);
    git(d, h, &["commit", "-qm", "pipeline"]);
    Consumer { home, dir }
}

impl Consumer {
    /// gitlab-ci-local (on the Node 22 it needs), shell executor, as a scheduled pipeline.
    fn run(&self, vars: &[(&str, String)], job: Option<&str>) -> Output {
        let node = deps().join("node/node_modules");
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_secret-rotator")).parent().unwrap().to_owned();
        let path = format!("{}:{}:{}", bin_dir.display(), node.join(".bin").display(), std::env::var("PATH").unwrap());
        let mut cmd = Command::new(node.join(".bin/node"));
        cmd.arg(node.join("gitlab-ci-local/dist/index.js"))
            .args(["--force-shell-executor", "--variable", "CI_PIPELINE_SOURCE=schedule"])
            .current_dir(self.dir.path())
            .env("HOME", self.home.path())
            .env("PATH", path)
            .env("GCL_IGNORE_PREDEFINED_VARS", "CI_PIPELINE_SOURCE,CI_API_V4_URL,CI_PROJECT_ID");
        for (k, v) in vars {
            cmd.arg("--variable").arg(format!("{k}={v}"));
        }
        if let Some(j) = job {
            cmd.arg(j);
        } else {
            cmd.arg("--list");
        }
        cmd.output().unwrap()
    }
}

#[test]
fn the_component_rotates_a_token_through_a_real_include() {
    let gl = GitLab::start();
    let t1 = "glpat-component-token-00000001";
    gl.token(t1, "project", Some(GL_PROJECT), &["api"]);
    let c = consumer(&json!({ "variable_name": "ROTATED_TOKEN", "token_kind": "project", "token_owner": GL_PROJECT }));
    let out = c.run(
        &[("CI_API_V4_URL", gl.api()), ("CI_PROJECT_ID", GL_PROJECT_ID.to_string()), ("ROTATED_TOKEN", t1.to_owned())],
        Some("rotate-credential"),
    );
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{log}");
    assert!(log.contains("PASS") && log.contains("rotate-credential"), "{log}");
    let var = gl.variable(json!(["project", GL_PROJECT]), "ROTATED_TOKEN", "*").unwrap();
    let t2 = var["value"].as_str().unwrap();
    assert!(gl.active(t2) && !gl.active(t1));
    assert_eq!(var["masked"], true);
    assert!(!log.contains(t1) && !log.contains(t2), "the job log holds no token");
    // The report is kept as an artifact.
    assert!(c.dir.path().join(".gitlab-ci-local/artifacts/rotate-credential/secret-rotator-report.json").exists());
}

#[test]
fn a_status_job_through_the_component_reads_only_fails_on_an_expiring_token_and_alerts() {
    let gl = GitLab::start();
    let hook = Webhook::start();
    let t1 = "glpat-component-token-00000002";
    let expires = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(3 * 24)).to_string()[..10].to_owned();
    gl.setup(json!({ "tokens": [ { "value": t1, "kind": "project", "owner": GL_PROJECT, "scopes": ["api"], "expires_at": expires } ] }));
    gl.setup(json!({ "variables": [ { "scope": ["project", GL_PROJECT], "key": "ROTATED_TOKEN", "value": t1, "masked": true } ] }));
    let c = consumer(&json!({
        "command": "status", "job_name": "token-status", "variable_name": "ROTATED_TOKEN", "token_kind": "project",
        "token_owner": GL_PROJECT, "min_age": "20h", "alert_webhook_variable": "STATUS_HOOK",
    }));
    let vars = [
        ("CI_API_V4_URL", gl.api()),
        ("CI_PROJECT_ID", GL_PROJECT_ID.to_string()),
        ("ROTATED_TOKEN", t1.to_owned()),
        ("STATUS_HOOK", hook.hook_url()),
    ];
    let out = c.run(&vars, Some("token-status"));
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success() && log.contains("FAIL") && log.contains("token-status"), "{log}");
    assert!(log.contains("expiring") && log.contains("project 7 variable ROTATED_TOKEN"), "the table: {log}");
    assert!(gl.requests().iter().all(|r| r["method"] == "GET"), "read only: {:?}", gl.requests());
    assert!(gl.active(t1), "nothing rotated");
    let got = hook.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0]["body"]["text"].as_str().unwrap().contains("• rotated-token: expiring — "), "{got:?}");
    assert!(!log.contains(t1) && !log.contains(HOOK_TOKEN), "the job log holds no secret");
}

#[test]
fn the_component_rotates_an_oauth2_refresh_token_through_a_real_include() {
    // The gitlab-token inputs with defaults (token_kind, expires_in) must not reach an oauth2
    // rotation: the binary refuses inputs that do not apply to its provider.
    let oauth = OAuth::start();
    let gl = GitLab::start();
    let writer = "glpat-component-writer-0000001";
    gl.token(writer, "personal", None, &["api"]);
    let r1 = oauth.mint(BASIC_ID);
    let c = consumer(&json!({
        "provider": "oauth2",
        "token_url": oauth.token_url(),
        "client_id": BASIC_ID,
        "client_secret_variable": "OAUTH_CLIENT_SECRET",
        "gitlab_token_variable": "VARIABLE_WRITER",
        "variable_name": "OAUTH_REFRESH_TOKEN",
    }));
    let out = c.run(
        &[
            ("CI_API_V4_URL", gl.api()),
            ("CI_PROJECT_ID", GL_PROJECT_ID.to_string()),
            ("OAUTH_REFRESH_TOKEN", r1.clone()),
            ("OAUTH_CLIENT_SECRET", BASIC_SECRET.to_owned()),
            ("VARIABLE_WRITER", writer.to_owned()),
        ],
        Some("rotate-credential"),
    );
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{log}");
    let var =
        gl.variable(json!(["project", GL_PROJECT]), "OAUTH_REFRESH_TOKEN", "*").expect("the variable was written");
    let r2 = var["value"].as_str().unwrap();
    assert!(oauth.active(r2) && !oauth.active(&r1), "the variable holds the live, rotated refresh token");
    assert!(!log.contains(&r1) && !log.contains(r2) && !log.contains(BASIC_SECRET), "the job log holds no secret");
}

#[test]
fn a_missing_input_fails_and_an_unknown_one_is_caught() {
    // Missing: variable_name has no default, so GitLab (and gitlab-ci-local) refuse the include.
    let c = consumer(&json!({ "token_kind": "project", "token_owner": GL_PROJECT }));
    let out = c.run(&[], None);
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(log.contains("`variable_name` input: required value has not been provided"), "{log}");
    assert!(!log.contains("rotate-credential "), "no job is created: {log}");

    // Unknown: GitLab refuses an include with an input the component does not declare, but
    // gitlab-ci-local accepts it silently, so the spec is checked here as GitLab would.
    let inputs =
        json!({ "variable_name": "ROTATED_TOKEN", "token_kind": "project", "token_owner": GL_PROJECT, "expire_in": 7 });
    let c = consumer(&inputs);
    let out = c.run(&[], None);
    assert!(out.status.success(), "gitlab-ci-local accepts the unknown input");
    assert_eq!(unknown_inputs(&inputs), vec!["expire_in".to_owned()]);
}

#[test]
fn the_sharded_example_makes_a_job_per_shard_each_in_its_own_environment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(root().join("examples/gitlab/sharded.yml"), d.join(".gitlab-ci.yml")).unwrap();
    git(d, d, &["init", "-q"]);
    git(d, d, &["add", "-A"]);
    git(d, d, &["-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "pipeline"]);
    let node = deps().join("node/node_modules");
    let out = Command::new(node.join(".bin/node"))
        .arg(node.join("gitlab-ci-local/dist/index.js"))
        .args(["--list", "--variable", "CI_PIPELINE_SOURCE=schedule"])
        .current_dir(d)
        .env("HOME", d)
        .env("GCL_IGNORE_PREDEFINED_VARS", "CI_PIPELINE_SOURCE")
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{list}{}", String::from_utf8_lossy(&out.stderr));
    let jobs: Vec<Vec<&str>> =
        list.lines().filter(|l| l.starts_with("rotate: [")).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(jobs.len(), 2, "{list}");
    for (job, shard) in jobs.iter().zip(["spotify-ci", "deploy-token"]) {
        assert_eq!(job[1], format!("[{shard}]"), "{list}");
        assert!(job.contains(&format!("rotate/{shard}").as_str()), "its own environment: {list}");
    }
}

#[test]
fn the_component_rotates_into_aws_secrets_manager() {
    let oauth = OAuth::start();
    let moto = Moto::start();
    let r1 = oauth.mint(BASIC_ID);
    moto.create_secret("ci/spotify", &r1);
    let inputs = json!({
        "provider": "oauth2", "token_url": oauth.token_url(), "client_id": BASIC_ID,
        "client_secret_variable": "SPOTIFY_CLIENT_SECRET", "variable_name": "SPOTIFY_REFRESH_TOKEN",
        "target": "aws-secrets-manager", "aws_secret_id": "ci/spotify", "aws_region": AWS_REGION,
    });
    assert_eq!(unknown_inputs(&inputs), Vec::<String>::new());
    let c = consumer(&inputs);
    let mut vars: Vec<(&str, String)> =
        vec![("SPOTIFY_REFRESH_TOKEN", r1.clone()), ("SPOTIFY_CLIENT_SECRET", BASIC_SECRET.to_owned())];
    vars.extend(moto.env());
    let out = c.run(&vars, Some("rotate-credential"));
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{log}");
    let r2 = moto.value("ci/spotify", "AWSCURRENT").unwrap();
    assert!(oauth.active(&r2) && !oauth.active(&r1));
    assert_eq!(moto.value("ci/spotify", "AWSPREVIOUS").as_deref(), Some(r1.as_str()));
    for v in [r1.as_str(), r2.as_str(), BASIC_SECRET, AWS_SECRET_KEY] {
        assert!(!log.contains(v), "the job log holds a secret value");
    }
}
