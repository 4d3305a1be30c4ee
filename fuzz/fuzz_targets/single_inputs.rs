//! `config::build` from fuzzed `INPUT_*` variables (names from `config::table()` by index, both
//! spellings, values good or arbitrary) plus `GITHUB_ACTIONS` / `GITLAB_CI` and the CI
//! variables the inputs default from. Never a panic; an error is one line; an error never
//! repeats the value of a secret input (`Kind::Secret`, 8 characters or more).
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use fuzz_support::{assert_not_in, assert_one_line};
use libfuzzer_sys::fuzz_target;
use secret_rotator::config::{self, RunOptions};
use secret_rotator::inputs::{Env, Inputs, Kind};

#[derive(Debug, Arbitrary)]
enum Value {
    Good(u8),
    Text(String),
}

#[derive(Debug, Arbitrary)]
struct Pair {
    input: u8,
    hyphens: bool,
    value: Value,
}

#[derive(Debug, Arbitrary)]
struct Input {
    github_actions: Option<bool>,
    gitlab_ci: Option<bool>,
    ci: Vec<(u8, Value)>,
    pairs: Vec<Pair>,
}

struct Files {
    paths: Vec<String>,
    dir: tempfile::TempDir,
}

/// Files `config` and `ca_file` may name (a fuzzed path never reaches the disk: it could name
/// a device that reads forever).
fn files() -> &'static Files {
    static F: OnceLock<Files> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut paths = Vec::new();
        for (name, text) in [
            (
                "rotations.yml",
                "github: { token: { env: GH } }\nrotations:\n- name: a\n  provider: { type: oauth2, token_url: 'https://auth.example', client_id: c, refresh_token: { env: RT } }\n  targets: [ { github: { repository: acme/app, secret: A } } ]\n",
            ),
            ("bad.yml", "rotations: [\n"),
            ("ca.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write");
            paths.push(p.display().to_string());
        }
        paths.push(dir.path().join("missing").display().to_string());
        Files { paths, dir }
    })
}

fn good(name: &str, i: u8) -> String {
    let v: &[&str] = match name {
        "provider" => &["oauth2", "gitlab-token", "oauth3"],
        "target" => &["github", "gitlab", "vault"],
        "name" => &["a", "My Rotation", "x-1"],
        "token_url" | "verify_url" => {
            &["https://auth.example.com/token", "http://127.0.0.1:9/t", "http://a.example/t", "a.example"]
        }
        "client_id" => &["c", " "],
        "client_secret" => &["cs-client-secret-0123", "short"],
        "client_auth" => &["basic", "post", "none", "digest"],
        "refresh_token" => &["r1-refresh-token-0123", "r1 with space", "glcbt-x"],
        "token" => &["glpat-token-0123456789", "glcbt-64_job-token-0123456789", "glpat-token\n"],
        "token_kind" => &["personal", "project", "group", "bot"],
        "token_owner" => &["acme/app", "42", "a//b"],
        "expires_in" => &["30", "30d", "0", "3651"],
        "gitlab_url" => &["https://gitlab.example.com", "http://localhost:8080/api/v4", "ftp://x"],
        "github_token" => &["ghp_token0123456789"],
        "gitlab_token" => &["glpat-writer-0123456789"],
        "gitlab_token_type" => &["private-token", "bearer", "basic"],
        "app_id" | "app_installation_id" => &["123", "0", "my-app"],
        "app_private_key" => &["not a pem key", "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----"],
        "repository" => &["acme/app", "app"],
        "environment" => &["prod", "a b"],
        "org" => &["acme"],
        "visibility" => &["all", "private", "selected", "public"],
        "selected_repositories" => &["app,api", ",", "a b"],
        "secret_name" | "access_token_secret_name" => &["TOKEN", "MY-TOKEN", "GITHUB_X", "1X"],
        "project" | "group" => &["acme/app", "42"],
        "variable_name" => &["DEPLOY_TOKEN", "bad key"],
        "masked" | "masked_and_hidden" | "protected" | "raw" | "dry_run" => &["true", "false", "maybe"],
        "environment_scope" => &["*", "production"],
        "variable_type" => &["env_var", "file", "json"],
        "min_age" => &["20h", "20", "7d"],
        "rescue_recipient" => &["ssh-ed25519 AAAA", "age1"],
        "only" => &["a", "a,b"],
        "log_format" => &["text", "json", "xml"],
        "log_level" => &["debug", "loud"],
        "timeout" => &["30s", "0s", "11m"],
        "report" => &["/tmp/r.json"],
        _ => &["x"],
    };
    v[usize::from(i) % v.len()].to_owned()
}

const CI_VARS: &[&str] =
    &["GITHUB_REPOSITORY", "GITHUB_API_URL", "CI_API_V4_URL", "CI_SERVER_URL", "CI_PROJECT_ID", "CI_JOB_TOKEN"];

fn ci_good(name: &str, i: u8) -> String {
    let v: &[&str] = match name {
        "GITHUB_REPOSITORY" => &["acme/app", "app"],
        "GITHUB_API_URL" => &["https://api.github.com", "http://127.0.0.1:9", "http://github.example.com"],
        "CI_API_V4_URL" | "CI_SERVER_URL" => &["https://gitlab.example.com/api/v4", "http://gitlab.example.com"],
        "CI_PROJECT_ID" => &["42", "a b"],
        _ => &["glpat-token-0123456789", "glcbt-job"],
    };
    v[usize::from(i) % v.len()].to_owned()
}

/// The variables an input spells.
fn vars(input: &Input) -> Vec<(String, String)> {
    let table = config::table();
    let mut out = Vec::new();
    if let Some(b) = input.github_actions {
        out.push(("GITHUB_ACTIONS".to_owned(), b.to_string()));
    }
    if let Some(b) = input.gitlab_ci {
        out.push(("GITLAB_CI".to_owned(), b.to_string()));
    }
    for (i, v) in input.ci.iter().take(6) {
        let name = CI_VARS[usize::from(*i) % CI_VARS.len()];
        let value = match v {
            Value::Good(g) => ci_good(name, *g),
            Value::Text(t) => t.clone(),
        };
        out.push((name.to_owned(), value));
    }
    for p in input.pairs.iter().take(24) {
        let field = table[usize::from(p.input) % table.len()];
        let upper = field.input.to_ascii_uppercase();
        let var = if p.hyphens { format!("INPUT_{}", upper.replace('_', "-")) } else { format!("INPUT_{upper}") };
        let value = match (&p.value, field.input) {
            (_, "config" | "ca_file") => {
                let g = match &p.value {
                    Value::Good(g) => *g,
                    Value::Text(t) => t.len() as u8,
                };
                let f = files();
                let _ = &f.dir;
                f.paths[usize::from(g) % f.paths.len()].clone()
            }
            (Value::Good(g), name) => good(name, *g),
            (Value::Text(t), _) => t.clone(),
        };
        out.push((var, value));
    }
    out
}

/// Seeds are readable: `#!env`, then `NAME=VALUE` lines (`\\n` in a value is a newline).
const ENV_MAGIC: &[u8] = b"#!env\n";

fn text_vars(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .take(40)
        .map(|(k, v)| {
            let v = if k.starts_with("INPUT_CONFIG") || k.starts_with("INPUT_CA_FILE") {
                let f = files();
                f.paths[v.len() % f.paths.len()].clone()
            } else {
                v.replace("\\n", "\n")
            };
            (k.to_owned(), v)
        })
        .collect()
}

/// The next letter or digit (wrapping), anything else unchanged.
fn shift(c: char) -> char {
    match c {
        'z' => 'a',
        'Z' => 'A',
        '9' => '0',
        'a'..='y' | 'A'..='Y' | '0'..='8' => char::from(c as u8 + 1),
        other => other,
    }
}

/// The error `build` gives for these variables, if any.
fn error(vars: &[(String, String)]) -> Option<String> {
    let env = Env::from_pairs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let inputs = Inputs::collect(config::table(), &HashMap::new(), &env);
    config::build(&inputs, &env, &RunOptions::default()).err().map(|e| e.to_string())
}

fuzz_target!(|data: &[u8]| {
    let vars = match data.strip_prefix(ENV_MAGIC) {
        Some(text) => text_vars(&String::from_utf8_lossy(text)),
        None => match Input::arbitrary(&mut Unstructured::new(data)) {
            Ok(input) => vars(&input),
            Err(_) => return,
        },
    };
    let Some(err) = error(&vars) else { return };
    assert_one_line("an input error", &err);
    // Which variables hold a secret input, by either spelling.
    let secret_vars: Vec<String> = config::table()
        .into_iter()
        .filter(|f| f.kind == Kind::Secret)
        .flat_map(|f| {
            let upper = f.input.to_ascii_uppercase();
            [format!("INPUT_{upper}"), format!("INPUT_{}", upper.replace('_', "-"))]
        })
        .collect();
    for (i, (k, v)) in vars.iter().enumerate() {
        let value = v.trim();
        if !secret_vars.contains(k) || value.chars().count() < 8 || !err.contains(value) {
            continue;
        }
        // The error holds the value: an echo, or the same text given in a plain input, or words
        // that happen to be the same? Text that another variable holds too is no evidence. Else
        // the same input with the value changed (same shape: each letter and digit shifted, so
        // every check takes the same path) tells: an echo repeats the changed value.
        if vars.iter().enumerate().any(|(j, (_, o))| j != i && o.contains(value)) {
            continue;
        }
        let shifted: String = v.chars().map(shift).collect();
        let mut changed = vars.clone();
        changed[i].1 = shifted.clone();
        if let Some(err2) = error(&changed) {
            assert_not_in(&format!("the input error (secret {k})"), &err2, shifted.trim());
        }
    }
});
