//! Regression tests for the v1 defects that CONTRACT.md's "v2 additions → Fixes to v1 behaviour"
//! names. Each drives the built binary against the real OAuth2 server and the strict stand-ins,
//! and asserts what users need once the defect is fixed: exit codes, report fields, what the
//! stand-ins hold and saw, and what the OAuth server says is active.

mod common;

use common::*;
use serde_json::{json, Value};

/// The target of a rotation's report whose description ends with `secret`/`variable` name.
fn target<'a>(rot: &'a Value, name: &str) -> &'a Value {
    rot["targets"]
        .as_array()
        .expect("targets in the report")
        .iter()
        .find(|t| t["target"].as_str().is_some_and(|d| d.ends_with(name)))
        .unwrap_or_else(|| panic!("no target {name} in the report: {rot}"))
}

/// The single-rotation oauth2 inputs with the token endpoint replaced.
fn inputs_with_token_url(gh: &GitHub, token_url: String, refresh_token: &str) -> Vec<(&'static str, String)> {
    let mut inputs = oauth_inputs("", gh, refresh_token);
    inputs.retain(|(k, _)| *k != "INPUT_TOKEN_URL");
    inputs.push(("INPUT_TOKEN_URL", token_url));
    inputs
}

// --- 1. exit 3 only when the rotated credential is not stored ------------------------------

#[test]
fn a_failed_access_token_target_with_the_refresh_token_stored_is_exit_1_not_critical() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    // The preflight of an access-token target only fetches the public key, so every PUT to it
    // is a write after the rotation: all of them fail, for good.
    gh.fault(json!({ "method": "PUT", "path": "/actions/secrets/OAUTH_ACCESS_TOKEN$", "count": 100, "status": 422,
        "body": { "message": "Validation Failed", "documentation_url": "https://docs.github.com/rest", "status": "422" } }));
    let bin = Bin::actions(&["rotate"]);
    let (_key, recipient) = age_key(bin.dir());
    let run = bin
        .envs(oauth_inputs(&oauth.url, &gh, &r1))
        .env("INPUT_ACCESS_TOKEN_SECRET_NAME", "OAUTH_ACCESS_TOKEN")
        .env("INPUT_RESCUE_RECIPIENT", &recipient)
        .run();

    assert_eq!(
        run.code, 1,
        "the refresh token is stored everywhere it was asked for: a failed access-token target is exit 1, not 3; stderr: {}",
        run.stderr
    );
    let report = run.report();
    let rot = &report["rotations"][0];
    assert_eq!(rot["status"], "failed", "{rot}");
    assert_eq!(target(rot, "OAUTH_REFRESH_TOKEN")["status"], "written", "{rot}");
    assert_eq!(target(rot, "OAUTH_ACCESS_TOKEN")["status"], "failed", "{rot}");
    assert!(rot["rescue_file"].is_null(), "nothing to rescue: the credential is stored: {rot}");
    assert!(
        !run.path().join("secret-rotator-rescue-oauth-refresh-token.age").exists(),
        "no rescue file is written when the credential is stored"
    );
    assert!(!run.stderr.contains("CRITICAL"), "{}", run.stderr);

    let r2 = gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").expect("refresh token secret");
    assert_ne!(r2, r1, "the stand-in holds the NEW refresh token");
    assert!(oauth.active(&r2), "the stored refresh token is the live one");
    assert!(!oauth.active(&r1), "the old refresh token was spent by the rotation");

    let error = rot["error"].as_str().unwrap_or_else(|| panic!("the rotation names its error: {rot}"));
    assert!(error.contains("OAUTH_ACCESS_TOKEN"), "the error names the access-token target: {error}");
    assert!(error.contains("stored"), "the error says the credential is stored: {error}");
}

// --- 2. ::add-mask:: data escaped as the runner unescapes it --------------------------------

/// Lines as the runner reads a step's stdout (`StreamReader.ReadLine`: `\n`, `\r` or `\r\n`
/// ends a line; src/Runner.Sdk/ProcessInvoker.cs).
fn runner_lines(out: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = out;
    while !rest.is_empty() {
        match rest.find(['\r', '\n']) {
            Some(i) => {
                lines.push(&rest[..i]);
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
            }
            None => {
                lines.push(rest);
                rest = "";
            }
        }
    }
    lines
}

/// `ActionCommand.UnescapeData` (actions/runner src/Runner.Common/ActionCommand.cs): the
/// `_escapeDataMappings` applied in order, each a plain replace of replacement by token:
/// `%0D` -> CR, then `%0A` -> LF, then `%25` -> `%`.
fn runner_unescape_data(escaped: &str) -> String {
    escaped.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")
}

/// The `add-mask` data of a line, parsed as `ActionCommand.TryParseV2` does (leading
/// whitespace trimmed, `::NAME[ props]::DATA`), or None for a line that is no add-mask command.
fn runner_add_mask(line: &str) -> Option<String> {
    let msg = line.trim_start();
    let rest = msg.strip_prefix("::")?;
    let end = rest.find("::")?;
    let info = &rest[..end];
    let name = info.split(' ').next().unwrap_or("");
    (name == "add-mask").then(|| runner_unescape_data(&rest[end + 2..]))
}

/// Every mask the runner registers from a step's stdout (`AddMaskCommandExtension`: the whole
/// data, plus each of its lines split on CR/LF, trimmed, empty ones dropped; whitespace-only
/// data registers nothing).
fn runner_masks(stdout: &str) -> Vec<String> {
    let mut masks = Vec::new();
    for data in runner_lines(stdout).into_iter().filter_map(runner_add_mask) {
        if data.trim().is_empty() {
            continue;
        }
        masks.push(data.clone());
        masks.extend(data.split(['\r', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned));
    }
    masks
}

#[test]
fn add_mask_registers_exactly_the_new_values_even_with_percent_sequences() {
    let gh = GitHub::start();
    let new_refresh = "r2-%0A-x%25y%z-0123456789";
    let new_access = "a2-%0D%0A-%%25-%0d-100%-0123456789";
    gh.fault(json!({ "method": "POST", "path": "^/oauth/token$", "count": 1, "status": 200,
        "body": { "access_token": new_access, "refresh_token": new_refresh, "token_type": "Bearer", "expires_in": 3600 } }));
    let run = Bin::actions(&["rotate"])
        .envs(inputs_with_token_url(&gh, gh.fault_token_url(), "r1-current-refresh-token-0123456789"))
        .env("INPUT_ACCESS_TOKEN_SECRET_NAME", "OAUTH_ACCESS_TOKEN")
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").as_deref(), Some(new_refresh));
    assert_eq!(gh.repo_secret(REPO, "OAUTH_ACCESS_TOKEN").as_deref(), Some(new_access));

    let masks = runner_masks(&run.stdout);
    for value in [new_refresh, new_access] {
        let expected: Vec<&str> = if value.contains(['\r', '\n']) {
            value.split(['\r', '\n']).map(str::trim).filter(|s| !s.is_empty()).collect()
        } else {
            vec![value]
        };
        for e in expected {
            assert!(
                masks.iter().any(|m| m == e),
                "the runner registers {e:?} as a mask; it registered {masks:?} from stdout {:?}",
                run.stdout
            );
        }
    }
    for line in runner_lines(&run.stdout).into_iter().filter(|l| !l.starts_with("::add-mask::")) {
        for value in [new_refresh, new_access] {
            assert!(!line.contains(value), "a stdout line other than ::add-mask:: holds a value: {line:?}");
        }
    }
}

// --- 3. --only selects before anything is resolved -----------------------------------------

#[test]
fn only_runs_the_selected_rotation_without_the_secrets_of_the_others() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let b1 = oauth.mint(BASIC_ID);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            r#"
github:
  token: {{ env: GH_SECRETS_TOKEN }}
  api_url: {api}
rotations:
  - name: a
    provider:
      type: oauth2
      token_url: {oauth}/token
      client_id: {id}
      client_secret: {{ env: A_CLIENT_SECRET }}
      refresh_token: {{ env: A_REFRESH_TOKEN }}
    targets:
      - github: {{ repository: acme/app, secret: A_REFRESH_TOKEN }}
  - name: b
    provider:
      type: oauth2
      token_url: {oauth}/token
      client_id: {id}
      client_secret: {{ env: B_CLIENT_SECRET }}
      refresh_token: {{ env: B_REFRESH_TOKEN }}
    targets:
      - github: {{ repository: acme/app, secret: B_REFRESH_TOKEN }}
"#,
            api = gh.url,
            oauth = oauth.url,
            id = BASIC_ID
        ),
    );
    // A_CLIENT_SECRET and A_REFRESH_TOKEN are not set: rotation `a` is not selected.
    let run = Bin::actions(&["rotate", "--config", &config, "--only", "b"])
        .env("GH_SECRETS_TOKEN", GH_TOKEN)
        .env("B_CLIENT_SECRET", BASIC_SECRET)
        .env("B_REFRESH_TOKEN", &b1)
        .run();
    assert_eq!(run.code, 0, "a rotation that is not selected needs none of its secrets; stderr: {}", run.stderr);

    let b2 = gh.repo_secret(REPO, "B_REFRESH_TOKEN").expect("b's secret written");
    assert_ne!(b2, b1, "b was rotated");
    assert!(oauth.active(&b2), "b's stored refresh token is the live one");
    assert!(!oauth.active(&b1));
    assert!(gh.repo_secret(REPO, "A_REFRESH_TOKEN").is_none(), "a was not touched");

    let report = run.report();
    let rotations = report["rotations"].as_array().unwrap();
    assert_eq!(rotations.len(), 1, "the report lists only b: {report}");
    assert_eq!(rotations[0]["name"], "b");
    assert_eq!(rotations[0]["status"], "rotated");
}

// --- 4. settings of a system no selected rotation uses are never validated -----------------

#[test]
fn a_github_only_run_ignores_gitlab_environment_variables() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    let run = Bin::actions(&["rotate"])
        .envs(oauth_inputs(&oauth.url, &gh, &r1))
        .env("CI_SERVER_URL", "http://gitlab.example.com")
        .env("CI_API_V4_URL", "http://gitlab.example.com/api/v4")
        .run();
    assert_eq!(run.code, 0, "CI_SERVER_URL / CI_API_V4_URL are not used by a GitHub-only run; stderr: {}", run.stderr);
    let r2 = gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").expect("secret written");
    assert_ne!(r2, r1);
    assert!(oauth.active(&r2));
    assert!(!oauth.active(&r1));
    assert_eq!(run.report()["rotations"][0]["status"], "rotated");
}

#[test]
fn a_github_only_config_ignores_its_unused_gitlab_section() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            r#"
github:
  token: {{ env: GH_SECRETS_TOKEN }}
  api_url: {api}
gitlab:
  url: http://gitlab.example.com
  token: {{ env: UNSET_VAR }}
rotations:
  - name: github-only
    provider:
      type: oauth2
      token_url: {oauth}/token
      client_id: {id}
      client_secret: {{ env: CLIENT_SECRET }}
      refresh_token: {{ env: REFRESH_TOKEN }}
    targets:
      - github: {{ repository: acme/app, secret: OAUTH_REFRESH_TOKEN }}
"#,
            api = gh.url,
            oauth = oauth.url,
            id = BASIC_ID
        ),
    );
    let run = Bin::actions(&["rotate", "--config", &config])
        .env("GH_SECRETS_TOKEN", GH_TOKEN)
        .env("CLIENT_SECRET", BASIC_SECRET)
        .env("REFRESH_TOKEN", &r1)
        .run();
    assert_eq!(run.code, 0, "the gitlab: section is used by no rotation; stderr: {}", run.stderr);
    let r2 = gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").expect("secret written");
    assert_ne!(r2, r1);
    assert!(oauth.active(&r2));
    assert_eq!(run.report()["rotations"][0]["status"], "rotated");
}

// --- 5. check and --dry-run change nothing ----------------------------------------------------

/// `args` on an oauth2 rotation whose GitHub secret does not exist yet: nothing is created,
/// the refresh token is unused, and the report says the target would be created.
fn github_plan_creates_nothing(args: &[&str]) {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    assert!(gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").is_none());
    let run = Bin::actions(args).envs(oauth_inputs(&oauth.url, &gh, &r1)).run();
    assert_eq!(run.code, 0, "{args:?}: stderr: {}", run.stderr);

    assert!(
        gh.secret_meta(&json!(["repo", REPO]), "OAUTH_REFRESH_TOKEN").is_none(),
        "{args:?} created the missing secret: {:?}",
        gh.secrets().iter().map(|s| (s["scope"].clone(), s["name"].clone(), s["writes"].clone())).collect::<Vec<_>>()
    );
    let puts: Vec<Value> = gh
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "PUT" && r["path"].as_str().unwrap_or("").ends_with("/secrets/OAUTH_REFRESH_TOKEN"))
        .collect();
    assert!(puts.is_empty(), "{args:?} sent a PUT to the secret: {puts:?}");
    assert!(oauth.active(&r1), "{args:?}: the refresh token is still active");

    let report = run.report();
    assert_eq!(report["dry_run"], true);
    let rot = &report["rotations"][0];
    assert_eq!(rot["status"], "planned", "{rot}");
    let t = target(rot, "OAUTH_REFRESH_TOKEN");
    assert_eq!(t["status"], "planned", "{t}");
    assert_eq!(t["note"], "would create", "{args:?}: the report says the missing target would be created: {t}");

    // Not used: the refresh token still rotates (a spent one would be invalid_grant).
    let by_hand = oauth.refresh(&r1);
    assert!(by_hand["refresh_token"].is_string(), "{args:?}: the refresh token was used: {by_hand}");
}

#[test]
fn check_creates_no_missing_github_secret_and_reports_would_create() {
    github_plan_creates_nothing(&["check"]);
}

#[test]
fn dry_run_creates_no_missing_github_secret_and_reports_would_create() {
    github_plan_creates_nothing(&["rotate", "--dry-run"]);
}

#[test]
fn check_creates_no_missing_hidden_gitlab_variable_and_reports_would_create() {
    const T1: &str = "glpat-project-token-current-0001";
    let gl = GitLab::start();
    gl.token(T1, "project", Some(GL_PROJECT), &["api"]);
    let project = json!(["project", GL_PROJECT]);
    assert!(gl.variable(project.clone(), "ROTATED_TOKEN", "*").is_none());
    let run = Bin::new(&["check"])
        .envs(gitlab_inputs(&gl, T1))
        .env("INPUT_MASKED_AND_HIDDEN", "true")
        .env("INPUT_REPORT", "report.json")
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);

    let reqs = gl.requests();
    let posts: Vec<&Value> = reqs
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"].as_str().unwrap_or("").ends_with("/variables"))
        .collect();
    assert!(posts.is_empty(), "check sent a POST to the variables collection: {posts:?}");
    assert!(
        gl.variable(project, "ROTATED_TOKEN", "*").is_none(),
        "check created the missing variable: {:?}",
        gl.variables().iter().map(|v| (v["scope"].clone(), v["key"].clone(), v["hidden"].clone())).collect::<Vec<_>>()
    );
    assert!(gl.active(T1), "the token is still active");
    assert!(
        !reqs.iter().any(|r| r["path"].as_str().unwrap_or("").ends_with("/self/rotate")),
        "check never rotates: {reqs:?}"
    );

    let report = run.report_at(run.path().join("report.json"));
    let rot = &report["rotations"][0];
    assert_eq!(rot["status"], "planned", "{rot}");
    let t = target(rot, "ROTATED_TOKEN");
    assert_eq!(t["status"], "planned", "{t}");
    assert_eq!(t["note"], "would create", "the report says the missing variable would be created: {t}");
}

// --- files a container action leaves for the next step, which runs on the host -------------

/// A container action runs as root in a workspace that belongs to the runner's user, and the
/// next step (`actions/upload-artifact`, a `run:` script) runs on the host as that user: the
/// report and a rescue file, both mode 0600, must be readable by it.
#[test]
fn the_report_and_a_rescue_file_written_as_root_are_readable_by_the_workspace_owner() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    // After the preflight every write of the refresh token fails, for good: the new one is rescued.
    gh.fault(json!({ "method": "PUT", "path": "/secrets/OAUTH_REFRESH_TOKEN$", "after": 1, "count": 100, "status": 422,
        "body": { "message": "Validation Failed", "documentation_url": "https://docs.github.com/rest", "status": "422" } }));
    let job = tempfile::tempdir().unwrap();
    let ws = job.path().join("workspace");
    std::fs::create_dir(&ws).unwrap();
    let output = job.path().join("set_output");
    std::fs::write(&output, "").unwrap();
    let (key, recipient) = age_key(job.path());
    chown_to_runner(job.path());

    let mut cmd = as_root("env");
    cmd.arg("-i").current_dir(&ws);
    let env = [
        ("GITHUB_ACTIONS", "true".to_owned()),
        ("GITHUB_REPOSITORY", REPO.to_owned()),
        ("GITHUB_WORKSPACE", ws.display().to_string()),
        ("GITHUB_OUTPUT", output.display().to_string()),
        ("INPUT_RESCUE_RECIPIENT", recipient),
    ];
    for (k, v) in oauth_inputs(&oauth.url, &gh, &r1).into_iter().chain(env) {
        cmd.arg(format!("{k}={v}"));
    }
    let out = cmd.arg(env!("CARGO_BIN_EXE_secret-rotator")).arg("rotate").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stored nowhere, rescued: {stderr}");

    let report = ws.join("secret-rotator-report.json");
    let text = read_as_runner(&report).unwrap_or_else(|e| panic!("the next step cannot read the report: {e}"));
    let report_json: Value = serde_json::from_str(&text).unwrap();
    let rescue = report_json["rotations"][0]["rescue_file"].as_str().expect("a rescue file in the report").to_owned();
    assert_eq!(rescue, "secret-rotator-rescue-oauth-refresh-token.age", "named relative to the workspace");
    let dec = as_runner("age").arg("-d").arg("-i").arg(&key).arg(ws.join(&rescue)).output().unwrap();
    assert!(
        dec.status.success(),
        "the next step cannot decrypt the rescue file: {}",
        String::from_utf8_lossy(&dec.stderr)
    );
    let rescued = String::from_utf8(dec.stdout).unwrap();
    assert!(oauth.active(&rescued) && !oauth.active(&r1), "the rescued value is the live refresh token");

    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for file in [report, ws.join(&rescue)] {
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{} stays private", file.display());
        assert_eq!(
            (meta.uid(), meta.gid()),
            (RUNNER_UID, RUNNER_UID),
            "{} belongs to the workspace's owner",
            file.display()
        );
    }
}

/// An explicit `report` path inside the workspace is named relative to it in the `report`
/// output: the container's `/github/workspace` is another path on the host.
#[test]
fn an_explicit_report_path_in_the_workspace_is_named_relative_to_it() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    let bin = Bin::actions(&["check"]);
    let ws = bin.dir().to_owned();
    std::fs::create_dir(ws.join("out")).unwrap();
    let run = bin
        .envs(oauth_inputs(&oauth.url, &gh, &r1))
        .env("GITHUB_WORKSPACE", &ws)
        .env("INPUT_REPORT", ws.join("out/report.json"))
        .run();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let outputs = run.file("output");
    assert!(outputs.contains("report=out/report.json\n"), "{outputs}");
    assert_eq!(run.report_at(ws.join("out/report.json"))["rotations"][0]["name"], "oauth-refresh-token");
}

/// A report that cannot be written (its folder does not exist in the container: a host path) is
/// named by no output: the `report` output is empty rather than a path to nothing.
#[test]
fn a_report_that_cannot_be_written_is_not_named_in_the_outputs() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    let bin = Bin::actions(&["check"]);
    let missing = bin.dir().join("home/runner/work/_temp/report.json");
    let run = bin.envs(oauth_inputs(&oauth.url, &gh, &r1)).env("INPUT_REPORT", &missing).run();
    assert_eq!(run.code, 0, "the run itself succeeded: {}", run.stderr);
    assert!(run.stderr.contains(&format!("cannot write the report to {}", missing.display())), "{}", run.stderr);
    let outputs = run.file("output");
    assert!(outputs.contains("\nreport=\n"), "{outputs}");
}
