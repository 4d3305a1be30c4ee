//! The container images as the runners run them. `scripts/image-test.sh` builds both with podman
//! (the Dockerfile's default target and `--target gitlab`) and runs these tests with the images in
//! `SR_IMAGE_ACTION` and `SR_IMAGE_GITLAB`; a plain `cargo test` lists them as ignored.
//!
//! The action's image is started exactly as the GitHub runner starts a docker action (`docker run
//! --workdir /github/workspace`, the four `/github/...` mounts, every declared input as `INPUT_*`,
//! the args of action.yml, the file-command paths translated), under both ways runners pass
//! `RUNNER_TEMP`, and everything it leaves is read back on the host as the runner's user, the way
//! the next step reads it. The GitLab image runs the component's own job script under its `sh`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::{json, Value};

fn image(var: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: scripts/image-test.sh builds the images and runs these tests"))
}

/// podman as `scripts/image-test.sh` runs it (root or sudo, its containers.conf), with `env` in
/// podman's own environment: a container gets a variable with `-e NAME`, as the runner passes
/// them (through sudo, the values are on `env`'s command line: test values only).
fn podman(env: &[(String, String)]) -> Command {
    let sudo = std::env::var("SR_IMAGE_SUDO").unwrap_or_default();
    let mut words = sudo.split_whitespace();
    let mut cmd = match words.next() {
        Some(first) => {
            let mut c = Command::new(first);
            c.args(words).arg("env");
            if let Ok(conf) = std::env::var("CONTAINERS_CONF") {
                c.arg(format!("CONTAINERS_CONF={conf}"));
            }
            for (k, v) in env {
                c.arg(format!("{k}={v}"));
            }
            c.arg("podman");
            c
        }
        None => {
            let mut c = Command::new("podman");
            c.envs(env.iter().map(|(k, v)| (k, v)));
            c
        }
    };
    cmd.stdin(std::process::Stdio::null());
    cmd
}

fn ok(out: &Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn inspect(image: &str) -> Value {
    let out = podman(&[]).args(["image", "inspect", image]).output().unwrap();
    let v: Value = serde_json::from_str(&ok(&out, "podman image inspect")).unwrap();
    v[0].clone()
}

/// Every path in an image (its layers, nothing a container adds): path -> (type, octal mode).
fn image_files(image: &str) -> BTreeMap<String, (char, String)> {
    let mnt = ok(&podman(&[]).args(["image", "mount", image]).output().unwrap(), "podman image mount");
    let mnt = mnt.trim();
    let out = as_root("find").arg(mnt).args(["-mindepth", "1", "-printf", "%y %m %P\\n"]).output().unwrap();
    let listing = ok(&out, "find");
    ok(&podman(&[]).args(["image", "unmount", image]).output().unwrap(), "podman image unmount");
    listing
        .lines()
        .map(|l| {
            let mut it = l.splitn(3, ' ');
            let (t, m, p) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
            (p.to_owned(), (t.chars().next().unwrap(), m.to_owned()))
        })
        .collect()
}

/// A file of an image, read through a mount.
fn image_file(image: &str, path: &str) -> Vec<u8> {
    let mnt = ok(&podman(&[]).args(["image", "mount", image]).output().unwrap(), "podman image mount");
    let out = as_root("cat").arg(Path::new(mnt.trim()).join(path)).output().unwrap();
    ok(&podman(&[]).args(["image", "unmount", image]).output().unwrap(), "podman image unmount");
    assert!(out.status.success(), "{path} in the image: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn is_static_elf(bytes: &[u8]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bin");
    std::fs::write(&f, bytes).unwrap();
    let out = Command::new("readelf").arg("-lW").arg(&f).output().expect("readelf (binutils)");
    let text = ok(&out, "readelf");
    (text.contains("Elf file type is EXEC") || text.contains("Elf file type is DYN")) && !text.contains("INTERP")
}

#[test]
#[ignore = "needs the images: scripts/image-test.sh builds them and runs this"]
fn the_action_image_holds_only_the_binary_and_the_ca_bundle() {
    let img = image("SR_IMAGE_ACTION");
    let files = image_files(&img);
    let kinds: BTreeMap<&str, char> = files.iter().map(|(p, (kind, _))| (p.as_str(), *kind)).collect();
    let expected = BTreeMap::from([
        ("etc", 'd'),
        ("etc/ssl", 'd'),
        ("etc/ssl/certs", 'd'),
        ("etc/ssl/certs/ca-certificates.crt", 'f'),
        ("secret-rotator", 'f'),
    ]);
    assert_eq!(kinds, expected, "the image holds the binary and a CA bundle, nothing else");
    assert_eq!(files["secret-rotator"].1, "555");
    assert_eq!(files["etc/ssl/certs/ca-certificates.crt"].1, "644");

    let bin = image_file(&img, "secret-rotator");
    assert!(is_static_elf(&bin), "the binary needs no loader and no libc");
    let bundle = String::from_utf8(image_file(&img, "etc/ssl/certs/ca-certificates.crt")).unwrap();
    let certs = bundle.matches("-----BEGIN CERTIFICATE-----").count();
    assert!(certs > 100, "a full public CA bundle, not {certs} certificates");

    let config = &inspect(&img)["Config"];
    assert_eq!(config["Entrypoint"], json!(["/secret-rotator"]), "{config}");
    // GitHub requires a docker action to run as the image's default user, root.
    assert!(config["User"].as_str().unwrap_or("").is_empty(), "runs as root: {config}");
    assert_eq!(config["Labels"]["org.opencontainers.image.title"], "secret-rotator");
}

#[test]
#[ignore = "needs the images: scripts/image-test.sh builds them and runs this"]
fn the_gitlab_image_is_busybox_with_the_same_binary() {
    let (img, action) = (image("SR_IMAGE_GITLAB"), image("SR_IMAGE_ACTION"));
    let files = image_files(&img);
    for p in ["usr/local/bin/secret-rotator", "etc/ssl/certs/ca-certificates.crt", "bin/sh", "bin/busybox"] {
        assert!(files.contains_key(p), "{p} is in the GitLab image");
    }
    assert_eq!(files["usr/local/bin/secret-rotator"].1, "555");
    assert!(
        image_file(&img, "usr/local/bin/secret-rotator") == image_file(&action, "secret-rotator"),
        "the same binary as the action's image"
    );
    let config = &inspect(&img)["Config"];
    // GitLab starts the image's entrypoint with the job's shell: there must be none but the shell.
    assert!(config["Entrypoint"].is_null() || config["Entrypoint"] == json!([]), "{config}");
    let path = config["Env"].as_array().unwrap().iter().filter_map(Value::as_str).find(|e| e.starts_with("PATH="));
    assert!(path.is_some_and(|p| p.contains("/usr/local/bin")), "secret-rotator is on PATH: {config}");
}

// --- the action's image, as the GitHub runner runs it ------------------------------------------

/// How the runner passes `RUNNER_TEMP` into a docker action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Temp {
    /// Older runners: the host's path, not mounted (actions/runner#1984).
    Unmounted,
    /// Newer runners: mounted at /github/runner_temp and the variable translated.
    Mounted,
}

const GUID: &str = "6f8e2b1c-9d4a-4c3e-8b7f-1a2b3c4d5e6f";
const RUN_ID: &str = "4711";

/// One job on a hosted runner, seen from the host: /home/runner/work with the workspace and
/// RUNNER_TEMP, all owned by the runner's user, as the runner lays them out.
struct Job {
    dir: tempfile::TempDir,
}

impl Job {
    fn new() -> Job {
        let job = Job { dir: tempfile::tempdir().unwrap() };
        for d in ["_temp/_github_home", "_temp/_github_workflow", "_temp/_runner_file_commands", "app/app"] {
            std::fs::create_dir_all(job.dir.path().join(d)).unwrap();
        }
        std::fs::write(job.temp().join("_github_workflow/event.json"), "{}\n").unwrap();
        // The runner creates each step's file-command files, empty, before the step starts.
        for f in FILE_COMMANDS {
            std::fs::write(job.file_command(f.1), "").unwrap();
        }
        chown_to_runner(job.dir.path());
        job
    }

    fn temp(&self) -> PathBuf {
        self.dir.path().join("_temp")
    }

    fn workspace(&self) -> PathBuf {
        self.dir.path().join("app/app")
    }

    fn file_command(&self, prefix: &str) -> PathBuf {
        self.temp().join("_runner_file_commands").join(format!("{prefix}_{GUID}"))
    }

    /// A file in the workspace, as an earlier step (a checkout) leaves it.
    fn put(&self, rel: &str, content: &[u8]) {
        let path = self.workspace().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        chown_to_runner(self.dir.path());
    }

    /// What the next step, on the host as the runner's user, finds in a file command's file.
    fn read_file_command(&self, prefix: &str) -> String {
        read_as_runner(&self.file_command(prefix)).unwrap()
    }

    /// The step outputs, parsed as the runner parses `$GITHUB_OUTPUT`.
    fn outputs(&self) -> BTreeMap<String, String> {
        parse_outputs(&self.read_file_command("set_output"))
    }

    fn names_in(&self, dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }
}

/// (variable, file prefix) of the runner's file commands.
const FILE_COMMANDS: [(&str, &str); 5] = [
    ("GITHUB_OUTPUT", "set_output"),
    ("GITHUB_STEP_SUMMARY", "step_summary"),
    ("GITHUB_ENV", "set_env"),
    ("GITHUB_PATH", "add_path"),
    ("GITHUB_STATE", "save_state"),
];

fn parse_outputs(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            out.insert(name.to_owned(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            out.insert(name.to_owned(), value.to_owned());
        } else {
            panic!("not an output line: {line:?}");
        }
    }
    out
}

fn action_yml() -> Value {
    serde_norway::from_str(&std::fs::read_to_string(root().join("action.yml")).unwrap()).unwrap()
}

/// Runs the action's image as the runner runs a docker action: `inputs` by input name (the
/// others empty or their action.yml default), `env` the step's `env:`.
fn run_action(job: &Job, temp: Temp, api_url: &str, inputs: &[(&str, String)], env: &[(&str, String)]) -> Output {
    let action = action_yml();
    let declared = action["inputs"].as_object().unwrap();
    let value = |name: &str| -> String {
        if let Some((_, v)) = inputs.iter().find(|(n, _)| *n == name) {
            return v.clone();
        }
        declared[name].get("default").and_then(Value::as_str).unwrap_or("").to_owned()
    };
    for (name, _) in inputs {
        assert!(declared.contains_key(*name), "{name} is not an input of action.yml");
    }
    let mut vars: Vec<(String, String)> = Vec::new();
    for (k, v) in env {
        vars.push((k.to_string(), v.clone()));
    }
    // GitHub passes every declared input, upper-cased, empty when unset.
    for name in declared.keys() {
        vars.push((format!("INPUT_{}", name.to_ascii_uppercase()), value(name)));
    }
    let host = |p: PathBuf| p.display().to_string();
    let runner_temp = match temp {
        Temp::Unmounted => host(job.temp()),
        Temp::Mounted => "/github/runner_temp".to_owned(),
    };
    for (k, v) in [
        ("HOME", "/github/home".to_owned()),
        ("CI", "true".to_owned()),
        ("GITHUB_ACTIONS", "true".to_owned()),
        ("GITHUB_JOB", "rotate".to_owned()),
        ("GITHUB_REF", "refs/heads/main".to_owned()),
        ("GITHUB_REF_NAME", "main".to_owned()),
        ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567".to_owned()),
        ("GITHUB_REPOSITORY", REPO.to_owned()),
        ("GITHUB_REPOSITORY_OWNER", "acme".to_owned()),
        ("GITHUB_RUN_ID", RUN_ID.to_owned()),
        ("GITHUB_RUN_NUMBER", "12".to_owned()),
        ("GITHUB_RUN_ATTEMPT", "1".to_owned()),
        ("GITHUB_ACTOR", "octocat".to_owned()),
        ("GITHUB_WORKFLOW", "rotate".to_owned()),
        ("GITHUB_EVENT_NAME", "schedule".to_owned()),
        ("GITHUB_EVENT_PATH", "/github/workflow/event.json".to_owned()),
        ("GITHUB_SERVER_URL", "https://github.com".to_owned()),
        ("GITHUB_API_URL", api_url.to_owned()),
        ("GITHUB_WORKSPACE", "/github/workspace".to_owned()),
        ("GITHUB_ACTION", "rotate".to_owned()),
        ("RUNNER_OS", "Linux".to_owned()),
        ("RUNNER_ARCH", "X64".to_owned()),
        ("RUNNER_NAME", "GitHub Actions 2".to_owned()),
        ("RUNNER_ENVIRONMENT", "github-hosted".to_owned()),
        ("RUNNER_TOOL_CACHE", "/opt/hostedtoolcache".to_owned()),
        ("RUNNER_WORKSPACE", host(job.dir.path().join("app"))),
        ("RUNNER_TEMP", runner_temp),
    ] {
        vars.push((k.to_owned(), v));
    }
    for (var, prefix) in FILE_COMMANDS {
        vars.push((var.to_owned(), format!("/github/file_commands/{prefix}_{GUID}")));
    }

    let mut cmd = podman(&vars);
    cmd.args(["run", "--rm", "--network", "host", "--workdir", "/github/workspace"]);
    let mount = |host: PathBuf, container: &str| format!("{}:{container}", host.display());
    cmd.arg("-v").arg(mount(job.temp().join("_github_home"), "/github/home"));
    cmd.arg("-v").arg(mount(job.temp().join("_github_workflow"), "/github/workflow"));
    cmd.arg("-v").arg(mount(job.temp().join("_runner_file_commands"), "/github/file_commands"));
    cmd.arg("-v").arg(mount(job.workspace(), "/github/workspace"));
    if temp == Temp::Mounted {
        cmd.arg("-v").arg(mount(job.temp(), "/github/runner_temp"));
    }
    for (k, _) in &vars {
        cmd.arg("-e").arg(k);
    }
    cmd.arg(image("SR_IMAGE_ACTION"));
    // The args of action.yml, with their `${{ inputs.NAME }}` expressions evaluated.
    for arg in action["runs"]["args"].as_array().unwrap() {
        let mut a = arg.as_str().unwrap().to_owned();
        while let Some(start) = a.find("${{ inputs.") {
            let end = start + a[start..].find("}}").unwrap() + 2;
            let name = a[start + "${{ inputs.".len()..end - 2].trim().to_owned();
            a.replace_range(start..end, &value(&name));
        }
        cmd.arg(a);
    }
    cmd.output().unwrap()
}

fn log_of(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// No value appears in what the step printed, except in `::add-mask::` lines.
fn assert_no_leak(out: &Output, values: &[&str]) {
    let (stdout, stderr) = log_of(out);
    let printed: String = stdout.lines().filter(|l| !l.starts_with("::add-mask::")).collect::<Vec<_>>().join("\n");
    for v in values {
        assert!(!printed.contains(v) && !stderr.contains(v), "a secret value was printed:\n{stdout}\n{stderr}");
    }
}

/// The workflow run the step belongs to (`GITHUB_RUN_ID`), started a minute ago.
fn github_with_run(gh: &GitHub) {
    let started = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
    gh.setup(json!({ "runs": { RUN_ID: { "run_started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ").to_string() } } }));
}

fn oauth_action_inputs(oauth: &str, r1: &str) -> Vec<(&'static str, String)> {
    vec![
        ("provider", "oauth2".to_owned()),
        ("token_url", format!("{oauth}/token")),
        ("client_id", BASIC_ID.to_owned()),
        ("client_secret", BASIC_SECRET.to_owned()),
        ("refresh_token", r1.to_owned()),
        ("github_token", GH_TOKEN.to_owned()),
        ("secret_name", "OAUTH_REFRESH_TOKEN".to_owned()),
    ]
}

fn rotates_and_the_next_step_finds_everything(temp: Temp) {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    github_with_run(&gh);
    let r1 = oauth.mint(BASIC_ID);
    let job = Job::new();
    let mut inputs = oauth_action_inputs(&oauth.url, &r1);
    inputs.push(("access_token_secret_name", "OAUTH_ACCESS_TOKEN".to_owned()));
    let out = run_action(&job, temp, &gh.url, &inputs, &[]);
    let (stdout, stderr) = log_of(&out);
    assert_eq!(out.status.code(), Some(0), "{temp:?}: {stdout}\n{stderr}");
    assert!(!stderr.contains("cannot write"), "{stderr}");

    // The rotation: GitHub holds the new refresh token (its sealed box opened by libsodium), which
    // is live at the OAuth server; the old one is dead.
    let r2 = gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").expect("the secret was written");
    assert!(oauth.active(&r2) && !oauth.active(&r1));
    let access = gh.repo_secret(REPO, "OAUTH_ACCESS_TOKEN").expect("the access token was written");
    assert!(stdout.starts_with(&format!("::add-mask::{r2}\n")), "the new value is masked first: {stdout}");
    assert_no_leak(&out, &[&r1, &r2, &access, BASIC_SECRET, GH_TOKEN]);

    // The next step, on the host as the runner's user.
    let outputs = job.outputs();
    assert_eq!(outputs["rotated"], "true");
    assert_eq!(outputs["access_token"], access);
    assert!(outputs["expires_at"].parse::<jiff::Timestamp>().is_ok(), "{outputs:?}");
    assert_eq!(outputs["report"], "secret-rotator-report.json");
    // `report` names the file relative to the workspace, where a host step (working directory:
    // the workspace) opens it.
    let report_path = job.workspace().join(&outputs["report"]);
    let report = read_as_runner(&report_path).unwrap_or_else(|e| panic!("the next step cannot read the report: {e}"));
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["rotations"][0]["status"], "rotated", "{report}");
    assert!(!report.to_string().contains(&r2));
    let summary = job.read_file_command("step_summary");
    assert!(summary.contains("| oauth-refresh-token | rotated |"), "{summary}");
    assert!(!summary.contains(&r2));
    for prefix in ["set_env", "add_path", "save_state"] {
        assert_eq!(job.read_file_command(prefix), "", "the action writes nothing to {prefix}");
    }
    // Nothing else is left anywhere: the workspace holds the report, RUNNER_TEMP only the
    // runner's own folders (a report there would be lost to the host on older runners).
    assert_eq!(job.names_in(&job.workspace()), ["secret-rotator-report.json"]);
    assert_eq!(job.names_in(&job.temp()), ["_github_home", "_github_workflow", "_runner_file_commands"]);
    assert_eq!(job.names_in(&job.temp().join("_github_home")), Vec::<String>::new());
}

#[test]
#[ignore = "needs the images: scripts/image-test.sh builds them and runs this"]
fn rotates_as_an_older_runner_runs_it_with_runner_temp_unmounted() {
    rotates_and_the_next_step_finds_everything(Temp::Unmounted);
}

#[test]
#[ignore = "needs the images: scripts/image-test.sh builds them and runs this"]
fn rotates_as_a_newer_runner_runs_it_with_runner_temp_mounted() {
    rotates_and_the_next_step_finds_everything(Temp::Mounted);
}

#[test]
#[ignore = "needs the images: scripts/image-test.sh builds them and runs this"]
fn a_rescue_file_is_found_and_decrypted_by_the_next_step() {
    let oauth = OAuth::start();
    let gh = GitHub::start();
    github_with_run(&gh);
    let r1 = oauth.mint(BASIC_ID);
    // After the preflight every write of the refresh token fails, for good.
    gh.fault(json!({ "method": "PUT", "path": "/secrets/OAUTH_REFRESH_TOKEN$", "after": 1, "count": 100, "status": 422,
        "body": { "message": "Validation Failed", "documentation_url": "https://docs.github.com/rest", "status": "422" } }));
    let job = Job::new();
    let (key, recipient) = age_key(job.dir.path());
    chown_to_runner(job.dir.path());
    let mut inputs = oauth_action_inputs(&oauth.url, &r1);
    inputs.push(("rescue_recipient", recipient));
    let out = run_action(&job, Temp::Unmounted, &gh.url, &inputs, &[]);
    let (stdout, stderr) = log_of(&out);
    assert_eq!(out.status.code(), Some(3), "stored nowhere: exit 3\n{stdout}\n{stderr}");

    let outputs = job.outputs();
    assert_eq!(outputs["rotated"], "false");
    let report: Value =
        serde_json::from_str(&read_as_runner(&job.workspace().join(&outputs["report"])).unwrap()).unwrap();
    let rescue = report["rotations"][0]["rescue_file"].as_str().expect("the report names the rescue file").to_owned();
    assert_eq!(rescue, "secret-rotator-rescue-oauth-refresh-token.age");
    assert!(stderr.contains(&format!("rescued to {rescue} ")), "the log names it relative to the workspace: {stderr}");
    let summary = job.read_file_command("step_summary");
    assert!(summary.contains(&format!("`{rescue}`")), "{summary}");
    // The operator's recovery, on the host as the runner's user: the file the log names decrypts
    // to the live refresh token.
    let dec = as_runner("age").arg("-d").arg("-i").arg(&key).arg(job.workspace().join(&rescue)).output().unwrap();
    let rescued = ok(&dec, "age -d as the runner's user");
    assert!(oauth.active(&rescued) && !oauth.active(&r1), "the rescued value is the live refresh token");
    assert_no_leak(&out, &[&r1, &rescued, BASIC_SECRET, GH_TOKEN]);
}

// --- TLS through a private CA ---------------------------------------------------------------

/// How the step trusts the GitHub API's private CA (a GitHub Enterprise Server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ca {
    /// `env: SSL_CERT_FILE: certs/ghes-ca.pem` on the step.
    SslCertFile,
    /// `with: ca_file: certs/ghes-ca.pem`.
    Input,
    /// Neither.
    Missing,
}

fn tls_run(ca: Ca) {
    let oauth = OAuth::start();
    // The token endpoint behind a proxy that records every request: proof of what reached it.
    let proxy = FaultProxy::start(&oauth.url);
    let (gh, ca_pem, _ca_dir) = GitHub::start_tls();
    github_with_run(&gh);
    let r1 = oauth.mint(BASIC_ID);
    let job = Job::new();
    job.put("certs/ghes-ca.pem", &std::fs::read(&ca_pem).unwrap());
    let mut inputs = oauth_action_inputs(&proxy.url, &r1);
    let mut env = Vec::new();
    match ca {
        Ca::SslCertFile => env.push(("SSL_CERT_FILE", "certs/ghes-ca.pem".to_owned())),
        Ca::Input => inputs.push(("ca_file", "certs/ghes-ca.pem".to_owned())),
        Ca::Missing => {}
    }
    let out = run_action(&job, Temp::Mounted, &gh.url, &inputs, &env);
    let (stdout, stderr) = log_of(&out);
    if ca == Ca::Missing {
        assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(stderr.contains("certificate"), "the log says the certificate was refused: {stderr}");
        assert!(proxy.requests().is_empty(), "the token endpoint was never contacted: {:?}", proxy.requests());
        assert!(oauth.active(&r1), "the refresh token is not spent");
        assert!(gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").is_none());
        assert_eq!(job.outputs()["rotated"], "false");
        assert_no_leak(&out, &[&r1, BASIC_SECRET, GH_TOKEN]);
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{ca:?}: {stdout}\n{stderr}");
    let r2 = gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").expect("written over TLS");
    assert!(oauth.active(&r2) && !oauth.active(&r1));
    assert_eq!(proxy.requests().len(), 1, "one rotate request");
    assert_eq!(job.outputs()["rotated"], "true");
    assert_no_leak(&out, &[&r1, &r2, BASIC_SECRET, GH_TOKEN]);
}

#[test]
#[ignore = "needs the images: scripts/image-test.sh builds them and runs this"]
fn tls_to_a_private_ca_works_through_ssl_cert_file() {
    tls_run(Ca::SslCertFile);
}

#[test]
#[ignore = "needs the images: scripts/image-test.sh builds them and runs this"]
fn tls_to_a_private_ca_works_through_the_ca_file_input() {
    tls_run(Ca::Input);
}

#[test]
#[ignore = "needs the images: scripts/image-test.sh builds them and runs this"]
fn without_the_private_ca_tls_is_refused_and_nothing_is_lost() {
    tls_run(Ca::Missing);
}

// --- the GitLab image with the component's job script ----------------------------------------

/// The component's job, its `$[[ inputs.NAME ]]` interpolated as GitLab does (in the parsed
/// YAML's strings, from `inputs` and the spec's defaults): (variables, script, artifact paths).
fn component_job(inputs: &Value) -> (Vec<(String, String)>, String, Vec<String>) {
    let text = std::fs::read_to_string(root().join("templates/rotate.yml")).unwrap();
    let (head, jobs) = text.split_once("\n---\n").unwrap();
    let spec: Value = serde_norway::from_str(head).unwrap();
    let spec = &spec["spec"]["inputs"];
    for k in inputs.as_object().unwrap().keys() {
        assert!(spec.get(k).is_some(), "{k} is not an input of the component");
    }
    let input = |name: &str| -> String {
        match inputs.get(name).or_else(|| spec[name].get("default")) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => panic!("the input {name} is required"),
        }
    };
    let interpolate = |s: &str| -> String {
        let mut s = s.to_owned();
        while let Some(start) = s.find("$[[ inputs.") {
            let end = start + s[start..].find("]]").unwrap() + 2;
            let name = s[start + "$[[ inputs.".len()..end - 2].trim().to_owned();
            s.replace_range(start..end, &input(&name));
        }
        s
    };
    fn walk(v: &Value, f: &dyn Fn(&str) -> String) -> Value {
        match v {
            Value::String(s) => Value::String(f(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| walk(x, f)).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (f(k), walk(x, f))).collect()),
            other => other.clone(),
        }
    }
    let jobs = walk(&serde_norway::from_str::<Value>(jobs).unwrap(), &interpolate);
    let job = jobs.as_object().unwrap().values().next().unwrap();
    let vars = job["variables"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), v)
        })
        .collect();
    let script: Vec<&str> = job["script"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    let artifacts =
        job["artifacts"]["paths"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_owned()).collect();
    (vars, script.join("\n"), artifacts)
}

/// Runs the component's job in the GitLab image as the Docker executor does: the project at
/// /builds/acme/app (the working directory), the job's variables, GitLab's predefined variables
/// and the project's CI/CD variables in the environment, the script under the image's `sh`.
fn run_component(project_dir: &Path, inputs: &Value, cicd: &[(&str, &str)], gl: &GitLab) -> (Output, Vec<String>) {
    let (vars, script, artifacts) = component_job(inputs);
    let mut env = vars;
    for (k, v) in [
        ("CI", "true".to_owned()),
        ("GITLAB_CI", "true".to_owned()),
        ("CI_SERVER_URL", gl.url.clone()),
        ("CI_API_V4_URL", gl.api()),
        ("CI_PROJECT_ID", GL_PROJECT_ID.to_string()),
        ("CI_PROJECT_PATH", GL_PROJECT.to_owned()),
        ("CI_PROJECT_DIR", "/builds/acme/app".to_owned()),
        ("CI_PIPELINE_SOURCE", "schedule".to_owned()),
        ("CI_JOB_NAME", "rotate-credential".to_owned()),
        ("CI_JOB_ID", "981".to_owned()),
    ] {
        env.push((k.to_owned(), v));
    }
    for (k, v) in cicd {
        env.push((k.to_string(), v.to_string()));
    }
    let mut cmd = podman(&env);
    cmd.args(["run", "--rm", "--network", "host", "--workdir", "/builds/acme/app", "-v"]);
    cmd.arg(format!("{}:/builds/acme/app", project_dir.display()));
    for (k, _) in &env {
        cmd.arg("-e").arg(k);
    }
    cmd.arg(image("SR_IMAGE_GITLAB")).args(["sh", "-e", "-c", &script]);
    (cmd.output().unwrap(), artifacts)
}

#[test]
#[ignore = "needs the images: scripts/image-test.sh builds them and runs this"]
fn the_gitlab_image_runs_the_components_job_script_for_a_gitlab_token() {
    let gl = GitLab::start();
    let t1 = "glpat-image-token-000000000001";
    gl.token(t1, "project", Some(GL_PROJECT), &["api"]);
    let project = tempfile::tempdir().unwrap();
    let inputs = json!({ "variable_name": "ROTATED_TOKEN", "token_kind": "project", "token_owner": GL_PROJECT });
    let (out, artifacts) = run_component(project.path(), &inputs, &[("ROTATED_TOKEN", t1)], &gl);
    let (stdout, stderr) = log_of(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");

    let var = gl.variable(json!(["project", GL_PROJECT]), "ROTATED_TOKEN", "*").expect("the variable was written");
    let t2 = var["value"].as_str().unwrap().to_owned();
    assert!(t2 != t1 && gl.active(&t2) && !gl.active(t1), "the variable holds the live, rotated token");
    assert_eq!(var["masked"], true);
    assert_no_leak(&out, &[t1, &t2]);
    // The job's artifacts, as the runner collects them from the project directory.
    assert!(artifacts.contains(&"secret-rotator-report.json".to_owned()));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(project.path().join("secret-rotator-report.json")).unwrap())
            .unwrap();
    assert_eq!(report["rotations"][0]["status"], "rotated", "{report}");
}

#[test]
#[ignore = "needs the images: scripts/image-test.sh builds them and runs this"]
fn the_gitlab_image_runs_the_components_job_script_for_an_oauth2_refresh_token() {
    let oauth = OAuth::start();
    let gl = GitLab::start();
    let writer = "glpat-variable-writer-00000001";
    gl.token(writer, "personal", None, &["api"]);
    let r1 = oauth.mint(BASIC_ID);
    let project = tempfile::tempdir().unwrap();
    let inputs = json!({
        "provider": "oauth2",
        "token_url": oauth.token_url(),
        "client_id": BASIC_ID,
        "client_secret_variable": "OAUTH_CLIENT_SECRET",
        "gitlab_token_variable": "VARIABLE_WRITER",
        "variable_name": "OAUTH_REFRESH_TOKEN",
    });
    let cicd =
        [("OAUTH_REFRESH_TOKEN", r1.as_str()), ("OAUTH_CLIENT_SECRET", BASIC_SECRET), ("VARIABLE_WRITER", writer)];
    let (out, _) = run_component(project.path(), &inputs, &cicd, &gl);
    let (stdout, stderr) = log_of(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let var =
        gl.variable(json!(["project", GL_PROJECT]), "OAUTH_REFRESH_TOKEN", "*").expect("the variable was written");
    let r2 = var["value"].as_str().unwrap().to_owned();
    assert!(oauth.active(&r2) && !oauth.active(&r1), "the variable holds the live, rotated refresh token");
    assert_no_leak(&out, &[&r1, &r2, BASIC_SECRET, writer]);
}
