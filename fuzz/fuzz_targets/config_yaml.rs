//! `config::from_yaml`, twice per input:
//! 1. the bytes as text (when UTF-8): never a panic; an error is one line;
//! 2. the bytes as a structured config (the `arbitrary` crate) whose secret fields hold
//!    `SECRETMARKER0123` in every shape (a literal, quoted, in a list, beside `env:`, a duplicate
//!    key, a file or a variable that holds it): never a panic, one line, and no error ever
//!    repeats the marker.
#![no_main]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use fuzz_support::{assert_not_in, assert_one_line};
use libfuzzer_sys::fuzz_target;
use secret_rotator::config;
use secret_rotator::inputs::{Env, Inputs};

const MARKER: &str = "SECRETMARKER0123";

struct World {
    files: Vec<String>,
    recipient: String,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut files = Vec::new();
        for (name, content) in [
            ("marker", format!("{MARKER}\n").into_bytes()),
            (
                "marker-lines",
                format!("-----BEGIN RSA PRIVATE KEY-----\n{MARKER}\n-----END RSA PRIVATE KEY-----\n").into_bytes(),
            ),
            ("empty", b"  \n".to_vec()),
            ("binary", vec![0xff, 0xfe, b'S', 0x80]),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, content).expect("write");
            files.push(p.display().to_string());
        }
        files.push(dir.path().display().to_string()); // a directory
        files.push(dir.path().join("missing").display().to_string());
        let recipient = age::x25519::Identity::generate().to_public().to_string();
        World { files, recipient, _dir: dir }
    })
}

/// The variables `{ env: NAME }` may name.
const ENV_NAMES: &[&str] = &["RT", "CS", "GH", "GL", "MARKER", "MARKER_WS", "MARKER_JOB", "EMPTY", "UNSET"];

fn env(globals: u8) -> Env {
    let mut pairs: Vec<(&str, &str)> = vec![
        ("RT", "r1-good-refresh-0123"),
        ("CS", "cs-good-secret-0123"),
        ("GH", "ghp_goodtoken0123456"),
        ("GL", "glpat-goodtoken0123"),
        ("MARKER", MARKER),
        ("MARKER_WS", " SECRETMARKER0123 two words\n"),
        ("MARKER_JOB", "glcbt-SECRETMARKER0123"),
        ("EMPTY", ""),
        ("CI_JOB_TOKEN", "SECRETMARKER0123"),
    ];
    // The variables the seed configs (README, examples, tests) name, so they parse deep.
    for name in [
        "GH_SECRETS_TOKEN",
        "SECRETS_WRITER_TOKEN",
        "SPOTIFY_CLIENT_SECRET",
        "SPOTIFY_REFRESH_TOKEN",
        "CRM_CLIENT_SECRET",
        "CRM_REFRESH_TOKEN",
        "DEPLOY_TOKEN",
        "GITLAB_VARIABLES_TOKEN",
        "CLIENT_SECRET",
        "REFRESH_TOKEN",
        "TOKEN_A",
        "A_CLIENT_SECRET",
        "A_REFRESH_TOKEN",
        "B_CLIENT_SECRET",
        "B_REFRESH_TOKEN",
    ] {
        pairs.push((name, "seed-value-0123456789"));
    }
    // Global inputs that apply with a config file, as the fuzz input chooses.
    if globals & 1 != 0 {
        pairs.push(("INPUT_GITHUB_TOKEN", MARKER));
    }
    if globals & 2 != 0 {
        pairs.push(("INPUT_GITLAB_TOKEN", "SECRETMARKER0123-gl"));
    }
    if globals & 4 != 0 {
        pairs.push(("INPUT_TIMEOUT", "5s"));
    }
    if globals & 8 != 0 {
        pairs.push(("CI_SERVER_URL", "https://gitlab.example.com"));
    }
    if globals & 16 != 0 {
        pairs.push(("GITHUB_API_URL", "http://127.0.0.1:9"));
    }
    Env::from_pairs(pairs)
}

// ----- the structured config -----

/// A plain value: a good one for its key (by index), or any YAML value.
#[derive(Debug, Arbitrary)]
enum Plain {
    Good(u8),
    Text(String),
    Number(i64),
    Bool(bool),
    Null,
    List(Vec<String>),
}

fn good(key: &str, i: u8) -> Vec<String> {
    let r = world().recipient.clone();
    let v: &[&str] = match key {
        "name" => &["a", "b", "spotify-ci", "x-1", "A"],
        "min_age" => &["20h", "7d", "1d12h", "30s", "20"],
        "token_url" => &["https://auth.example.com/token", "http://127.0.0.1:9/token", "http://auth.example.com/t"],
        "client_id" => &["c", "my-client", " "],
        "client_auth" => &["basic", "post", "none", "digest"],
        "scope" => &["read", "playlist-read-private"],
        "token_kind" => &["personal", "project", "group", "bot"],
        "token_owner" => &["acme/app", "42", "acme//app"],
        "expires_in" => &["30", "30d", "0", "3651"],
        "gitlab_url" | "url" => &["https://gitlab.example.com", "http://localhost:8080/api/v4", "gitlab.example.com"],
        "repository" => &["acme/app", "app", "acme/app/x"],
        "environment" => &["prod", "a b"],
        "org" => &["acme", "-acme"],
        "visibility" => &["all", "private", "selected", "public"],
        "secret" => &["SPOTIFY_REFRESH_TOKEN", "X", "GITHUB_X", "1X", "MY-TOKEN"],
        "project" | "group" => &["acme/app", "42", "acme"],
        "variable" => &["DEPLOY_TOKEN", "X", "bad key"],
        "environment_scope" => &["*", "production", ""],
        "variable_type" => &["env_var", "file", "json"],
        "description" => &["rotated nightly"],
        "value" => &["refresh_token", "access_token", "token"],
        "api_url" => &["https://github.example.com/api/v3", "http://127.0.0.1:9", "ftp://x"],
        "max_concurrency" => &["4", "0", "17"],
        "token_type" => &["private-token", "bearer", "basic"],
        "id" | "installation_id" => &["123", "0", "my-app"],
        "timeout" => &["30s", "0s", "11m", "2m"],
        "verify" => &["https://api.example.com/me", "http://api.example.com/me"],
        _ => &["x"],
    };
    let mut out: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    if key == "rescue_recipient" {
        out = vec![r, "ssh-ed25519 AAAA".into()];
    }
    let n = out.len();
    vec![out.swap_remove(usize::from(i) % n)]
}

fn quote(s: &str) -> String {
    // A JSON string is a YAML flow scalar: any text, safely.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

impl Plain {
    fn yaml(&self, key: &str) -> String {
        match self {
            Plain::Good(i) => quote(&good(key, *i)[0]),
            Plain::Text(s) => quote(s),
            Plain::Number(n) => n.to_string(),
            Plain::Bool(b) => b.to_string(),
            Plain::Null => "null".into(),
            Plain::List(items) => format!("[{}]", items.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ")),
        }
    }
}

/// A secret field's value: a reference, or the marker in some shape.
#[derive(Debug, Arbitrary)]
enum SecretY {
    Env(u8),
    EnvNamed(String),
    File(u8),
    Literal(Shape),
    Both(u8, u8),
    EnvBeside(u8, Shape),
    InList(Shape),
    Nested(Shape),
    Number(i64),
    Empty,
    Unterminated,
}

/// How the marker is written.
#[derive(Debug, Arbitrary)]
enum Shape {
    Plain,
    Quoted,
    Around(String, String),
    Block,
    Tagged,
}

impl Shape {
    fn yaml(&self) -> String {
        match self {
            Shape::Plain => MARKER.to_owned(),
            Shape::Quoted => format!("'{MARKER}'"),
            Shape::Around(a, b) => quote(&format!("{a}{MARKER}{b}")),
            Shape::Block => format!("\"{MARKER}\\n{MARKER}\""),
            Shape::Tagged => format!("!secret {MARKER}"),
        }
    }
}

impl SecretY {
    fn yaml(&self) -> String {
        let w = world();
        let env_name = |i: &u8| ENV_NAMES[usize::from(*i) % ENV_NAMES.len()];
        let file = |i: &u8| quote(&w.files[usize::from(*i) % w.files.len()]);
        match self {
            SecretY::Env(i) => format!("{{ env: {} }}", env_name(i)),
            SecretY::EnvNamed(n) => format!("{{ env: {} }}", quote(n)),
            SecretY::File(i) => format!("{{ file: {} }}", file(i)),
            SecretY::Literal(s) => s.yaml(),
            SecretY::Both(e, f) => format!("{{ env: {}, file: {} }}", env_name(e), file(f)),
            SecretY::EnvBeside(e, s) => format!("{{ env: {}, value: {} }}", env_name(e), s.yaml()),
            SecretY::InList(s) => format!("[{}]", s.yaml()),
            SecretY::Nested(s) => format!("{{ value: {} }}", s.yaml()),
            SecretY::Number(n) => n.to_string(),
            SecretY::Empty => "{}".into(),
            SecretY::Unterminated => format!("\"{MARKER}"),
        }
    }
}

/// A secret key, written once, or twice (a duplicate key).
#[derive(Debug, Arbitrary)]
struct SecretField {
    value: SecretY,
    duplicate: Option<SecretY>,
}

#[derive(Debug, Arbitrary)]
struct GithubY {
    token: Option<SecretField>,
    app: Option<(Option<Plain>, Option<SecretField>, Option<Plain>)>,
    api_url: Option<Plain>,
    max_concurrency: Option<Plain>,
    extra: Option<String>,
}

#[derive(Debug, Arbitrary)]
struct GitlabY {
    url: Option<Plain>,
    token: Option<SecretField>,
    token_type: Option<Plain>,
}

#[derive(Debug, Arbitrary)]
enum ProviderY {
    OAuth2 {
        token_url: Option<Plain>,
        client_id: Option<Plain>,
        client_secret: Option<SecretField>,
        client_auth: Option<Plain>,
        scope: Option<Plain>,
        refresh_token: Option<SecretField>,
    },
    GitlabToken {
        token: Option<SecretField>,
        token_kind: Option<Plain>,
        token_owner: Option<Plain>,
        expires_in: Option<Plain>,
        gitlab_url: Option<Plain>,
    },
    Other(Plain),
    NotAMapping(Plain),
}

#[derive(Debug, Arbitrary)]
enum TargetY {
    Github {
        repository: Option<Plain>,
        environment: Option<Plain>,
        org: Option<Plain>,
        visibility: Option<Plain>,
        selected_repositories: Option<Plain>,
        secret: Option<Plain>,
    },
    Gitlab {
        project: Option<Plain>,
        group: Option<Plain>,
        variable: Option<Plain>,
        masked: Option<Plain>,
        masked_and_hidden: Option<Plain>,
        protected: Option<Plain>,
        raw: Option<Plain>,
        environment_scope: Option<Plain>,
        variable_type: Option<Plain>,
        description: Option<Plain>,
    },
    Both,
    Neither,
}

#[derive(Debug, Arbitrary)]
struct TargetEntry {
    target: TargetY,
    value: Option<Plain>,
}

#[derive(Debug, Arbitrary)]
struct RotationY {
    name: Option<Plain>,
    min_age: Option<Plain>,
    provider: Option<ProviderY>,
    verify: Option<Plain>,
    rescue_recipient: Option<Plain>,
    targets: Vec<TargetEntry>,
    extra: Option<String>,
}

#[derive(Debug, Arbitrary)]
struct ConfigY {
    globals: u8,
    github: Option<GithubY>,
    gitlab: Option<GitlabY>,
    rescue_recipient: Option<Plain>,
    timeout: Option<Plain>,
    rotations: Vec<RotationY>,
    only: Vec<u8>,
    dry_run: bool,
}

struct Out(String);

impl Out {
    fn plain(&mut self, indent: usize, key: &str, v: &Option<Plain>) {
        if let Some(v) = v {
            let _ = writeln!(self.0, "{:indent$}{key}: {}", "", v.yaml(key));
        }
    }
    fn secret(&mut self, indent: usize, key: &str, v: &Option<SecretField>) {
        if let Some(f) = v {
            let _ = writeln!(self.0, "{:indent$}{key}: {}", "", f.value.yaml());
            if let Some(d) = &f.duplicate {
                let _ = writeln!(self.0, "{:indent$}{key}: {}", "", d.yaml());
            }
        }
    }
    fn line(&mut self, indent: usize, text: &str) {
        let _ = writeln!(self.0, "{:indent$}{text}", "");
    }
}

impl ConfigY {
    fn yaml(&self) -> String {
        let mut o = Out(String::new());
        if let Some(g) = &self.github {
            o.line(0, "github:");
            o.secret(2, "token", &g.token);
            if let Some((id, key, inst)) = &g.app {
                o.line(2, "app:");
                o.plain(4, "id", id);
                o.secret(4, "private_key", key);
                o.plain(4, "installation_id", inst);
            }
            o.plain(2, "api_url", &g.api_url);
            o.plain(2, "max_concurrency", &g.max_concurrency);
            if let Some(k) = &g.extra {
                o.line(2, &format!("{}: 1", quote(k)));
            }
        }
        if let Some(g) = &self.gitlab {
            o.line(0, "gitlab:");
            o.plain(2, "url", &g.url);
            o.secret(2, "token", &g.token);
            o.plain(2, "token_type", &g.token_type);
        }
        o.plain(0, "rescue_recipient", &self.rescue_recipient);
        if self.timeout.is_some() {
            o.line(0, "http:");
            o.plain(2, "timeout", &self.timeout);
        }
        o.line(0, "rotations:");
        if self.rotations.is_empty() {
            o.line(2, "[]");
        }
        for r in self.rotations.iter().take(4) {
            o.line(2, "- targets:");
            if r.targets.is_empty() {
                o.line(6, "[]");
            }
            for t in r.targets.iter().take(4) {
                match &t.target {
                    TargetY::Github { repository, environment, org, visibility, selected_repositories, secret } => {
                        o.line(6, "- github:");
                        o.plain(10, "repository", repository);
                        o.plain(10, "environment", environment);
                        o.plain(10, "org", org);
                        o.plain(10, "visibility", visibility);
                        o.plain(10, "selected_repositories", selected_repositories);
                        o.plain(10, "secret", secret);
                    }
                    TargetY::Gitlab {
                        project,
                        group,
                        variable,
                        masked,
                        masked_and_hidden,
                        protected,
                        raw,
                        environment_scope,
                        variable_type,
                        description,
                    } => {
                        o.line(6, "- gitlab:");
                        o.plain(10, "project", project);
                        o.plain(10, "group", group);
                        o.plain(10, "variable", variable);
                        o.plain(10, "masked", masked);
                        o.plain(10, "masked_and_hidden", masked_and_hidden);
                        o.plain(10, "protected", protected);
                        o.plain(10, "raw", raw);
                        o.plain(10, "environment_scope", environment_scope);
                        o.plain(10, "variable_type", variable_type);
                        o.plain(10, "description", description);
                    }
                    TargetY::Both => o.line(
                        6,
                        "- { github: { repository: acme/app, secret: B }, gitlab: { project: x, variable: B } }",
                    ),
                    TargetY::Neither => o.line(6, "- {}"),
                }
                o.plain(8, "value", &t.value);
            }
            o.plain(4, "name", &r.name);
            o.plain(4, "min_age", &r.min_age);
            o.plain(4, "rescue_recipient", &r.rescue_recipient);
            if let Some(v) = &r.verify {
                o.line(4, &format!("verify: {{ url: {} }}", v.yaml("verify")));
            }
            if let Some(k) = &r.extra {
                o.line(4, &format!("{}: 1", quote(k)));
            }
            match &r.provider {
                None => {}
                Some(ProviderY::Other(p)) => o.line(4, &format!("provider: {{ type: {} }}", p.yaml("type"))),
                Some(ProviderY::NotAMapping(p)) => o.line(4, &format!("provider: {}", p.yaml("provider"))),
                Some(ProviderY::OAuth2 { token_url, client_id, client_secret, client_auth, scope, refresh_token }) => {
                    o.line(4, "provider:");
                    o.line(6, "type: oauth2");
                    o.plain(6, "token_url", token_url);
                    o.plain(6, "client_id", client_id);
                    o.secret(6, "client_secret", client_secret);
                    o.plain(6, "client_auth", client_auth);
                    o.plain(6, "scope", scope);
                    o.secret(6, "refresh_token", refresh_token);
                }
                Some(ProviderY::GitlabToken { token, token_kind, token_owner, expires_in, gitlab_url }) => {
                    o.line(4, "provider:");
                    o.line(6, "type: gitlab-token");
                    o.secret(6, "token", token);
                    o.plain(6, "token_kind", token_kind);
                    o.plain(6, "token_owner", token_owner);
                    o.plain(6, "expires_in", expires_in);
                    o.plain(6, "gitlab_url", gitlab_url);
                }
            }
        }
        o.0
    }
}

fn check(text: &str, env: &Env, only: &[String], dry_run: bool, marker: bool) {
    let inputs = Inputs::collect(config::table(), &HashMap::new(), env);
    if let Err(e) = config::from_yaml(text, "fuzz.yml", &inputs, env, only, dry_run) {
        let shown = e.to_string();
        assert_one_line("a config error", &shown);
        if marker {
            assert_not_in("a config error", &shown, MARKER);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // 1. The bytes as they are. A `{ file: }` secret is read: never a device that reads forever.
    if let Ok(text) = std::str::from_utf8(data) {
        if !["dev/", "proc/", "sys/"].iter().any(|d| text.contains(d)) {
            check(text, &env(0), &[], false, false);
        }
    }
    // 2. The bytes as a structured config with the marker in secret positions.
    let mut u = Unstructured::new(data);
    if let Ok(cfg) = ConfigY::arbitrary(&mut u) {
        let yaml = cfg.yaml();
        let only: Vec<String> =
            cfg.only.iter().take(2).map(|i| ["a", "b", "zzz"][usize::from(*i) % 3].to_owned()).collect();
        check(&yaml, &env(cfg.globals), &only, cfg.dry_run, true);
    }
});
