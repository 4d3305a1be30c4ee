//! `status`, end to end: the built binary asks the GitHub and GitLab stand-ins (seeded update
//! times, token creation and expiry) and a real OAuth2 server behind a counting proxy, and every
//! verdict is reached, with zero writes and zero token requests, counted by the servers. The
//! table is pinned (times normalised), and it has colour only on a terminal without `NO_COLOR`.

mod common;

use std::process::Command;

use common::*;
use serde_json::{json, Value};

const DEPLOY: &str = "glpat-deploy-token-expiring-0001";
const CI_TOKEN: &str = "glpat-ci-token-young-000000001";
const WRITER: &str = "glpat-variables-writer-0000001";

/// `secs` seconds ago (negative: from now), to the second, RFC 3339.
fn ago(secs: i64) -> String {
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(secs);
    jiff::Timestamp::from_second(t.as_second()).unwrap().to_string()
}

/// The date `days` from today (UTC), as GitLab writes `expires_at`.
fn date_in(days: i64) -> String {
    ago(-days * 86_400)[..10].to_owned()
}

const H: i64 = 3600;
const D: i64 = 86_400;

struct World {
    gh: GitHub,
    gl: GitLab,
    oauth: OAuth,
    proxy: FaultProxy,
    r1: String,
}

/// The servers, seeded: GitHub secrets updated 1.5 h, 30.5 h and 5 days ago (min_age 20h, so
/// max_age 60h: ok, due, overdue); a GitLab project token that expires in 3 days (expiring), one
/// created 1.5 h ago that expires in 30 days (ok, by its own age); GitLab variables that exist.
fn world() -> World {
    let gh = GitHub::start();
    let gl = GitLab::start();
    let oauth = OAuth::start();
    let proxy = FaultProxy::start(&oauth.url);
    let r1 = oauth.mint(BASIC_ID);
    let secret = |name: &str, updated: i64| json!({ "scope": ["repo", REPO], "name": name, "value": r1, "updated_at": ago(updated) });
    gh.setup(json!({ "secrets": [secret("FRESH", H + H / 2), secret("DUE", 30 * H + H / 2), secret("STALE", 5 * D + H / 2)] }));
    let token = |value: &str, created: i64, expires_days: i64| json!({ "value": value, "kind": "project", "owner": GL_PROJECT, "scopes": ["api"], "created_at": ago(created), "expires_at": date_in(expires_days) });
    gl.setup(json!({ "tokens": [
        token(DEPLOY, 2 * D + H / 2, 3),
        token(CI_TOKEN, H + H / 2, 30),
        { "value": WRITER, "kind": "personal", "scopes": ["api"], "projects": [GL_PROJECT] },
    ]}));
    let variable = |key: &str, value: &str| json!({ "scope": ["project", GL_PROJECT], "key": key, "value": value, "masked": true });
    gl.setup(json!({ "variables": [variable("DEPLOY_TOKEN", DEPLOY), variable("CI_TOKEN", CI_TOKEN), variable("OAUTH_RT", &r1)] }));
    World { gh, gl, oauth, proxy, r1 }
}

fn oauth2(name: &str, min_age: Option<&str>, proxy: &FaultProxy, target: &str) -> String {
    let min_age = min_age.map(|m| format!("    min_age: {m}\n")).unwrap_or_default();
    format!(
        "  - name: {name}\n{min_age}    provider: {{ type: oauth2, token_url: '{}', client_id: {BASIC_ID}, client_secret: {{ env: CLIENT_SECRET }}, refresh_token: {{ env: RT }} }}\n    targets: [ {target} ]\n",
        proxy.token_url()
    )
}

fn gitlab_token(name: &str, env: &str, variable: &str) -> String {
    format!(
        "  - name: {name}\n    min_age: 20h\n    provider: {{ type: gitlab-token, token: {{ env: {env} }}, token_kind: project, token_owner: {GL_PROJECT} }}\n    targets: [ {{ gitlab: {{ project: {GL_PROJECT}, variable: {variable} }} }} ]\n"
    )
}

fn github(secret: &str) -> String {
    format!("{{ github: {{ repository: {REPO}, secret: {secret} }} }}")
}

fn config(w: &World, rotations: &[String]) -> String {
    format!(
        "github:\n  token: {{ env: GH_WRITER }}\ngitlab:\n  url: '{}'\n  token: {{ env: GL_WRITER }}\nrotations:\n{}",
        w.gl.url,
        rotations.concat()
    )
}

fn every_verdict(w: &World) -> String {
    config(
        w,
        &[
            oauth2("fresh", Some("20h"), &w.proxy, &github("FRESH")),
            oauth2("due", Some("20h"), &w.proxy, &github("DUE")),
            oauth2("stale", Some("20h"), &w.proxy, &github("STALE")),
            gitlab_token("deploy-token", "DEPLOY", "DEPLOY_TOKEN"),
            gitlab_token("ci-token", "CI_TOKEN_ENV", "CI_TOKEN"),
            oauth2("never-stored", Some("20h"), &w.proxy, &github("NEVER_STORED")),
            oauth2("oauth-in-gitlab", None, &w.proxy, "{ gitlab: { project: acme/app, variable: OAUTH_RT } }"),
        ],
    )
}

fn status(w: &World, yaml: &str, bin: Bin) -> Run {
    let path = bin.dir().join("rotations.yml");
    std::fs::write(&path, yaml).unwrap();
    bin.env("GITHUB_API_URL", &w.gh.url).env("INPUT_CONFIG", &path).envs(env(w)).run()
}

fn env(w: &World) -> Vec<(&'static str, String)> {
    vec![
        ("GH_WRITER", GH_TOKEN.into()),
        ("GL_WRITER", WRITER.into()),
        ("CLIENT_SECRET", BASIC_SECRET.into()),
        ("RT", w.r1.clone()),
        ("DEPLOY", DEPLOY.into()),
        ("CI_TOKEN_ENV", CI_TOKEN.into()),
    ]
}

/// Nothing was written anywhere and no token was requested: every GitHub and GitLab request was
/// a GET, no secret or variable counts a write, the token endpoint (behind the proxy) saw
/// nothing, and the refresh token is still live.
fn assert_read_only(w: &World) {
    let methods = |reqs: Vec<Value>| reqs.iter().map(|r| r["method"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    let gh = methods(w.gh.requests());
    assert!(gh.iter().all(|m| m == "GET"), "GitHub: {gh:?}");
    let gl = methods(w.gl.requests());
    assert!(gl.iter().all(|m| m == "GET"), "GitLab: {gl:?}");
    assert!(w.gh.secrets().iter().all(|s| s["writes"] == 0), "{:?}", w.gh.secrets());
    assert!(w.gl.variables().iter().all(|v| v["writes"] == 0), "{:?}", w.gl.variables());
    assert_eq!(w.proxy.requests(), Vec::<Value>::new(), "no request reached the token endpoint");
    assert!(w.oauth.active(&w.r1), "the refresh token was not spent");
    assert!(w.gl.active(DEPLOY) && w.gl.active(CI_TOKEN), "no GitLab token was rotated");
}

/// Dates and clock times replaced by placeholders of the same width (the alignment stays).
fn normalise(text: &str) -> String {
    let pattern = "dddd-dd-dd dd:dd";
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let window: String = chars[i..chars.len().min(i + pattern.len())].iter().collect();
        let matches = window.len() == pattern.len()
            && window.chars().zip(pattern.chars()).all(|(c, p)| if p == 'd' { c.is_ascii_digit() } else { c == p });
        if matches {
            out.push_str("YYYY-MM-DD hh:mm");
            i += pattern.len();
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn every_verdict_with_zero_writes_and_zero_token_requests() {
    let w = world();
    let run = status(&w, &every_verdict(&w), Bin::actions(&["status"]));
    assert_eq!(run.code, 1, "exit 1: not every verdict is ok or due; stderr: {}", run.stderr);
    assert_read_only(&w);
    // What was read: the repository's secrets once (one list for its four secrets); each GitLab
    // token's `self` and each variable once.
    let paths = |reqs: Vec<Value>| {
        let mut p: Vec<String> = reqs.iter().map(|r| r["path"].as_str().unwrap().to_owned()).collect();
        p.sort();
        p
    };
    assert_eq!(paths(w.gh.requests()), ["/repos/acme/app/actions/secrets"]);
    assert_eq!(
        paths(w.gl.requests()),
        [
            "/personal_access_tokens/self",
            "/personal_access_tokens/self",
            "/projects/acme%2Fapp/variables/CI_TOKEN",
            "/projects/acme%2Fapp/variables/DEPLOY_TOKEN",
            "/projects/acme%2Fapp/variables/OAUTH_RT",
        ]
    );

    let report = run.report();
    assert_eq!(report["command"], "status");
    assert_eq!(report["verdict"], "expiring", "the worst verdict");
    let verdicts: Vec<(String, String)> = report["rotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r["verdict"].as_str().unwrap().to_owned()))
        .collect();
    let expect = [
        ("fresh", "ok"),
        ("due", "due"),
        ("stale", "overdue"),
        ("deploy-token", "expiring"),
        ("ci-token", "ok"),
        ("never-stored", "unknown"),
        ("oauth-in-gitlab", "unknown"),
    ];
    assert_eq!(verdicts, expect.map(|(n, v)| (n.to_owned(), v.to_owned())));
    let rot = |name: &str| report["rotations"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap().clone();
    // The report's shape, on one rotation of each provider.
    let fresh = rot("fresh");
    assert_eq!(fresh["fingerprint"].as_str().unwrap().len(), "sha256:".len() + 12);
    assert_eq!(
        (fresh["min_age"].as_str(), fresh["max_age"].as_str(), fresh["warn_before"].as_str()),
        (Some("20h"), Some("2d12h"), Some("7d"))
    );
    let t = &fresh["targets"][0];
    assert_eq!(
        (t["kind"].as_str(), t["stored"].as_str(), t["value"].as_str()),
        (Some("github"), Some("updated"), Some("refresh_token"))
    );
    let last: jiff::Timestamp = t["last_update"].as_str().unwrap().parse().unwrap();
    let due: jiff::Timestamp = t["next_due"].as_str().unwrap().parse().unwrap();
    assert_eq!(due.as_second() - last.as_second(), 20 * H, "next due = last update + min_age");
    assert_eq!(fresh["expires_at"], Value::Null, "a refresh token's expiry cannot be known without spending it");
    let deploy = rot("deploy-token");
    assert_eq!(deploy["expires_at"].as_str().unwrap(), format!("{}T00:00:00Z", date_in(3)));
    assert_eq!(deploy["targets"][0]["stored"], "exists", "GitLab keeps no update time, but the variable is there");
    assert_eq!(deploy["targets"][0]["last_update"], Value::Null);
    let ci = rot("ci-token");
    let (created, due): (jiff::Timestamp, jiff::Timestamp) = (
        ci["created_at"].as_str().unwrap().parse().unwrap(),
        ci["targets"][0]["next_due"].as_str().unwrap().parse().unwrap(),
    );
    assert_eq!(due.as_second() - created.as_second(), 20 * H, "due from the token's own age");
    assert_eq!(rot("never-stored")["targets"][0]["stored"], "missing");
    assert!(rot("oauth-in-gitlab")["targets"][0]["note"]
        .as_str()
        .unwrap()
        .contains("cannot tell the refresh_token's age"));

    // The table on stdout: not a terminal, so no escape codes; the same table in the summary.
    assert!(!run.stdout.contains('\x1b'), "{}", run.stdout);
    insta::assert_snapshot!("status_table", normalise(&run.stdout));
    let summary = run.file("summary.md");
    assert!(
        summary.starts_with("### secret-rotator status\n\n1 expiring, 1 overdue, 2 unknown, 1 due, 2 ok"),
        "{summary}"
    );
    assert!(
        summary.contains("| **expiring** | deploy-token | project acme/app variable DEPLOY_TOKEN | unknown |"),
        "{summary}"
    );
    assert_eq!(run.file("output"), "rotated=false\nreport=secret-rotator-report.json\n");
    assert!(run.stderr.contains("status: 1 expiring, 1 overdue, 2 unknown, 1 due, 2 ok"), "{}", run.stderr);
}

#[test]
fn exit_0_when_every_verdict_is_ok_or_due() {
    let w = world();
    let yaml = config(
        &w,
        &[
            oauth2("fresh", Some("20h"), &w.proxy, &github("FRESH")),
            oauth2("due", Some("20h"), &w.proxy, &github("DUE")),
            gitlab_token("ci-token", "CI_TOKEN_ENV", "CI_TOKEN"),
        ],
    );
    let run = status(&w, &yaml, Bin::new(&["status", "--report", "inventory.json"]));
    assert_eq!(run.code, 0, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert_read_only(&w);
    assert_eq!(run.report_at(run.path().join("inventory.json"))["verdict"], "due");
    // --only selects as for rotate; max_age and warn_before are rotation settings.
    let yaml = yaml.replace("  - name: due\n    min_age: 20h\n", "  - name: due\n    min_age: 20h\n    max_age: 30h\n");
    let run = status(&w, &yaml, Bin::new(&["status", "--only", "due"]));
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("overdue  due "), "{}", run.stdout);
    assert!(!run.stdout.contains("fresh"), "{}", run.stdout);
    let yaml = config(
        &w,
        &[gitlab_token("ci-token", "CI_TOKEN_ENV", "CI_TOKEN")
            .replace("min_age: 20h", "min_age: 20h\n    warn_before: 31d")],
    );
    let run = status(&w, &yaml, Bin::new(&["status"]));
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("expiring  ci-token"), "{}", run.stdout);
}

#[test]
fn a_single_rotation_from_inputs() {
    let w = world();
    let run = Bin::new(&["status"])
        .env("INPUT_TARGET", "github")
        .env("GITHUB_REPOSITORY", REPO)
        .envs(oauth_inputs(&w.proxy.url, &w.gh, &w.r1))
        .env("INPUT_SECRET_NAME", "STALE")
        .env("INPUT_MIN_AGE", "1d")
        .env("INPUT_MAX_AGE", "7d")
        .run();
    assert_eq!(run.code, 0, "5 days old: due, not yet overdue with max_age 7d; {}", run.stdout);
    assert!(run.stdout.contains("due      stale     acme/app secret STALE"), "{}", run.stdout);
    assert_read_only(&w);
}

#[test]
fn a_rejected_credential_is_exit_4_as_for_rotate() {
    let w = world();
    // Someone rotated the deploy token elsewhere: GitLab has revoked the one this job holds.
    let c = reqwest::blocking::Client::new();
    let r = c
        .post(format!("{}/projects/acme%2Fapp/access_tokens/self/rotate", w.gl.api()))
        .header("PRIVATE-TOKEN", DEPLOY)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let yaml = config(
        &w,
        &[
            gitlab_token("deploy-token", "DEPLOY", "DEPLOY_TOKEN"),
            oauth2("fresh", Some("20h"), &w.proxy, &github("FRESH")),
        ],
    );
    let run = status(&w, &yaml, Bin::new(&["status", "--report", "r.json"]));
    assert_eq!(run.code, 4, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    let report = run.report_at(run.path().join("r.json"));
    let rot = &report["rotations"][0];
    assert_eq!((rot["verdict"].as_str(), rot["problem"].as_str()), (Some("unknown"), Some("rejected")));
    assert!(rot["error"].as_str().unwrap().contains("Create a new token by hand"), "{rot}");
    assert!(run.stderr.contains("error: [deploy-token] GitLab rejected the token"), "{}", run.stderr);
    assert_eq!(report["rotations"][1]["verdict"], "ok");
}

/// Runs the binary on a pseudo-terminal (Python's `pty`), as a person at a terminal would; returns
/// what the terminal showed.
fn on_a_terminal(w: &World, yaml: &str, extra: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rotations.yml");
    std::fs::write(&path, yaml).unwrap();
    let script = "import os, pty, sys\n\
        pid, fd = pty.fork()\n\
        if pid == 0:\n    os.execv(sys.argv[1], sys.argv[1:])\n\
        out = b''\n\
        while True:\n    try:\n        chunk = os.read(fd, 65536)\n    except OSError:\n        break\n    if not chunk:\n        break\n    out += chunk\n\
        os.waitpid(pid, 0)\n\
        sys.stdout.write(out.decode('utf-8', 'replace'))\n";
    let mut cmd = Command::new(deps().join("venv/bin/python"));
    cmd.arg("-c").arg(script).arg(env!("CARGO_BIN_EXE_secret-rotator")).args(["status", "--config"]).arg(&path);
    cmd.env_clear()
        .current_dir(dir.path())
        .env("PATH", std::env::var("PATH").unwrap())
        .env("GITHUB_API_URL", &w.gh.url);
    cmd.envs(env(w));
    cmd.envs(extra.iter().copied());
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let w = world();
    let yaml = config(
        &w,
        &[
            oauth2("fresh", Some("20h"), &w.proxy, &github("FRESH")),
            oauth2("stale", Some("20h"), &w.proxy, &github("STALE")),
        ],
    );
    let tty = on_a_terminal(&w, &yaml, &[("TERM", "xterm")]);
    assert!(tty.contains("\x1b[31moverdue\x1b[0m  stale"), "{tty:?}");
    assert!(tty.contains("\x1b[32mok\x1b[0m       fresh"), "{tty:?}");
    for (k, v) in [("NO_COLOR", "1"), ("TERM", "dumb")] {
        let plain = on_a_terminal(&w, &yaml, &[("TERM", "xterm"), (k, v)]);
        assert!(plain.contains("overdue  stale") && !plain.contains('\x1b'), "{k}={v}: {plain:?}");
    }
    let piped = status(&w, &yaml, Bin::new(&["status"]));
    assert!(piped.stdout.contains("overdue  stale") && !piped.stdout.contains('\x1b'), "{:?}", piped.stdout);
}
