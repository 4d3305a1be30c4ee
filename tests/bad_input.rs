//! Bad input: each case exits 2 with one line that names the input and says how to fix it,
//! and nothing is contacted (the stand-in serves both the token endpoint and the GitHub API
//! here, and must see zero requests). The lines are pinned in a snapshot.

mod common;

use common::*;

struct Case {
    name: &'static str,
    args: Vec<&'static str>,
    set: Vec<(&'static str, String)>,
    unset: Vec<&'static str>,
    config: Option<&'static str>,
    names: &'static str,
    gitlab: bool,
    vault: bool,
    aws: bool,
}

fn case(name: &'static str, names: &'static str) -> Case {
    Case {
        name,
        args: vec!["rotate"],
        set: vec![],
        unset: vec![],
        config: None,
        names,
        gitlab: false,
        vault: false,
        aws: false,
    }
}

/// A case whose base inputs are a vault-token rotation into a Vault KV secret (the Vault address
/// is the stand-in's, which must see no request).
fn vault_case(name: &'static str, names: &'static str) -> Case {
    Case { vault: true, ..case(name, names) }
}

/// The same for a vault-approle rotation.
fn approle_case(name: &'static str, names: &'static str) -> Case {
    vault_case(name, names)
        .set("INPUT_PROVIDER", "vault-approle")
        .unset("INPUT_TOKEN")
        .set("INPUT_ROLE_NAME", "ci")
        .set("INPUT_ROLE_ID", "role-id-0123")
        .set("INPUT_SECRET_ID", "secret-id-valid-0123456789")
        .set("INPUT_VAULT_TOKEN", "s.writer-token-0123456789abcd")
}

/// A case whose base inputs are an oauth2 rotation into an AWS Secrets Manager secret, with AWS
/// pointed at the stand-in (which must see no request).
fn aws_case(name: &'static str, names: &'static str) -> Case {
    Case { aws: true, ..case(name, names) }
}

/// A case whose base inputs are a gitlab-token rotation into a GitLab variable.
fn gl_case(name: &'static str, names: &'static str) -> Case {
    Case { gitlab: true, ..case(name, names) }
}

impl Case {
    fn set(mut self, k: &'static str, v: impl Into<String>) -> Case {
        self.set.push((k, v.into()));
        self
    }
    fn unset(mut self, k: &'static str) -> Case {
        self.unset.push(k);
        self.set.retain(|(name, _)| *name != k);
        self
    }
    fn args(mut self, a: &[&'static str]) -> Case {
        self.args = a.to_vec();
        self
    }
    fn config(mut self, yaml: &'static str) -> Case {
        self.config = Some(yaml);
        self
    }
}

#[test]
fn bad_inputs_exit_2_with_one_clear_line_and_contact_nothing() {
    let gh = GitHub::start();
    let gl = GitLab::start();
    let big = "r".repeat(48 * 1024 + 1);
    let cases = vec![
        case("no provider", "input provider").unset("INPUT_PROVIDER"),
        case("unknown provider", "input provider").set("INPUT_PROVIDER", "oauth3"),
        case("no token_url", "input token_url").unset("INPUT_TOKEN_URL"),
        case("plain http to a remote host", "input token_url").set("INPUT_TOKEN_URL", "http://auth.example.com/token"),
        case("token_url not a URL", "input token_url").set("INPUT_TOKEN_URL", "auth.example.com/token"),
        case("credentials in the URL", "input token_url").set("INPUT_TOKEN_URL", "https://u:p@auth.example.com/token"),
        case("no client_id", "input client_id").unset("INPUT_CLIENT_ID"),
        case("unknown client_auth", "input client_auth").set("INPUT_CLIENT_AUTH", "digest"),
        case("reuse_grace beyond an hour", "input reuse_grace").set("INPUT_REUSE_GRACE", "2h"),
        case("reuse_grace not a duration", "input reuse_grace").set("INPUT_REUSE_GRACE", "30"),
        case("basic without a secret", "input client_secret").unset("INPUT_CLIENT_SECRET").set("INPUT_CLIENT_AUTH", "basic"),
        case("none with a secret", "input client_auth").set("INPUT_CLIENT_AUTH", "none"),
        case("no refresh_token", "input refresh_token").unset("INPUT_REFRESH_TOKEN"),
        case("refresh token over 48 KB", "input secret_name").set("INPUT_REFRESH_TOKEN", big.clone()),
        case("refresh token file missing", "input refresh_token")
            .unset("INPUT_REFRESH_TOKEN")
            .args(&["rotate", "--refresh-token-file", "/nonexistent/refresh-token"]),
        case("secret as a flag", "--refresh-token").args(&["rotate", "--refresh-token=should-never-be-echoed"]),
        case("no secret_name", "input secret_name").unset("INPUT_SECRET_NAME"),
        case("secret name with a dash", "input secret_name").set("INPUT_SECRET_NAME", "MY-TOKEN"),
        case("secret name GITHUB_", "input secret_name").set("INPUT_SECRET_NAME", "GITHUB_REFRESH"),
        case("secret name starting with a digit", "input secret_name").set("INPUT_SECRET_NAME", "1TOKEN"),
        case("access token secret name invalid", "input access_token_secret_name").set("INPUT_ACCESS_TOKEN_SECRET_NAME", "ACCESS TOKEN"),
        case("repository without owner", "input repository").set("INPUT_REPOSITORY", "app"),
        case("org and repository", "input org").set("INPUT_ORG", "acme").set("INPUT_REPOSITORY", "acme/app"),
        case("visibility on a repository secret", "input visibility").set("INPUT_VISIBILITY", "all"),
        case("unknown visibility", "input visibility").set("INPUT_ORG", "acme").set("INPUT_VISIBILITY", "public"),
        case("selected without repositories", "input selected_repositories").set("INPUT_ORG", "acme").set("INPUT_VISIBILITY", "selected"),
        case("environment on an org secret", "input environment").set("INPUT_ORG", "acme").set("INPUT_ENVIRONMENT", "prod"),
        case("unknown secret store", "input github_store").set("INPUT_GITHUB_STORE", "secrets"),
        case("Dependabot store for an environment", "input github_store")
            .set("INPUT_GITHUB_STORE", "dependabot")
            .set("INPUT_ENVIRONMENT", "prod"),
        case("selected repositories without a visibility", "input selected_repositories")
            .set("INPUT_ORG", "acme")
            .set("INPUT_SELECTED_REPOSITORIES", "app"),
        case("one GitHub secret spelled in two cases", "rotations[0].targets").config(
            "github:\n  token: { env: GH_SECRETS_TOKEN }\nrotations:\n  - name: a\n    provider: { type: oauth2, token_url: 'https://auth.example.com/token', client_id: c, refresh_token: { env: RT } }\n    targets: [ { github: { repository: acme/app, secret: X } }, { github: { repository: Acme/App, secret: x } } ]\n",
        ),
        case("parallel_rotations zero", "parallel_rotations").config("parallel_rotations: 0\nrotations: []\n"),
        case("parallel_rotations beyond 16", "parallel_rotations").config("parallel_rotations: 17\nrotations: []\n"),
        case("parallel_rotations not a number", "parallel_rotations").config("parallel_rotations: many\nrotations: []\n"),
        case("github.max_concurrency beyond 32", "github.max_concurrency").config(
            "github:\n  token: { env: GH_SECRETS_TOKEN }\n  max_concurrency: 33\nrotations:\n  - name: a\n    provider: { type: oauth2, token_url: 'https://auth.example.com/token', client_id: c, refresh_token: { env: RT } }\n    targets: [ { github: { repository: acme/app, secret: X } } ]\n",
        ),
        case("github.points_per_minute below two writes", "github.points_per_minute").config(
            "github:\n  token: { env: GH_SECRETS_TOKEN }\n  points_per_minute: 5\nrotations:\n  - name: a\n    provider: { type: oauth2, token_url: 'https://auth.example.com/token', client_id: c, refresh_token: { env: RT } }\n    targets: [ { github: { repository: acme/app, secret: X } } ]\n",
        ),
        case("unknown store in config", "rotations[0].targets[0].github.store").config(
            "github:\n  token: { env: GH_SECRETS_TOKEN }\nrotations:\n  - name: a\n    provider: { type: oauth2, token_url: 'https://auth.example.com/token', client_id: c, refresh_token: { env: RT } }\n    targets: [ { github: { repository: acme/app, store: Dependabot, secret: X } } ]\n",
        ),
        case("min_age without a unit", "input min_age").set("INPUT_MIN_AGE", "20"),
        case("bad rescue recipient", "input rescue_recipient").set("INPUT_RESCUE_RECIPIENT", "ssh-ed25519 AAAA"),
        case("no github_token", "input github_token").unset("INPUT_GITHUB_TOKEN"),
        case("github_token and app_id", "input app_id").set("INPUT_APP_ID", "123"),
        case("app id not numeric", "input app_id").unset("INPUT_GITHUB_TOKEN").set("INPUT_APP_ID", "my-app"),
        case("app key not PEM", "input app_private_key")
            .unset("INPUT_GITHUB_TOKEN")
            .set("INPUT_APP_ID", "123")
            .set("INPUT_APP_PRIVATE_KEY", "not a pem key"),
        case("unknown target", "input target").set("INPUT_TARGET", "vault"),
        case("verify_url over plain http", "input verify_url").set("INPUT_VERIFY_URL", "http://api.example.com/me"),
        case("GITHUB_API_URL over plain http", "GITHUB_API_URL").set("GITHUB_API_URL", "http://github.example.com/api/v3"),
        case("bad name", "input name").set("INPUT_NAME", "My Rotation"),
        case("bad log_format", "input log_format").set("INPUT_LOG_FORMAT", "xml"),
        case("bad dry_run", "input dry_run").set("INPUT_DRY_RUN", "maybe"),
        case("zero timeout", "input timeout").set("INPUT_TIMEOUT", "0s"),
        case("missing ca_file", "input ca_file").set("INPUT_CA_FILE", "/nonexistent/ca.pem"),
        case("only without config", "input only").set("INPUT_ONLY", "a"),
        case("config file missing", "input config").args(&["rotate", "--config", "/nonexistent/rotations.yml"]),
        case("config with rotation inputs", "input provider").config("rotations: []\n"),
        case("literal secret in config", "rotations[0].provider.refresh_token").config(
            "github:\n  token: { env: GH_SECRETS_TOKEN }\nrotations:\n  - name: a\n    provider: { type: oauth2, token_url: 'https://auth.example.com/token', client_id: c, refresh_token: 'sup3r-s3cret-literal' }\n    targets: [ { github: { repository: acme/app, secret: X } } ]\n",
        ),
        case("unknown key in config", "rotations[0].provder").config(
            "rotations:\n  - name: a\n    provder: { type: oauth2 }\n",
        ),
        case("a quoted value holding a newline stays on one line", "http.timeout").config("http:\n  timeout: \"1\\n2\"\nrotations: []\n"),
        case("duplicate rotation names", "rotations[1].name").config(
            "github:\n  token: { env: GH_SECRETS_TOKEN }\nrotations:\n  - name: a\n    provider: { type: oauth2, token_url: 'https://auth.example.com/token', client_id: c, refresh_token: { env: RT } }\n    targets: [ { github: { repository: acme/app, secret: X } } ]\n  - name: a\n    provider: { type: oauth2, token_url: 'https://auth.example.com/token', client_id: c, refresh_token: { env: RT } }\n    targets: [ { github: { repository: acme/app, secret: Y } } ]\n",
        ),
        case("config secret from an unset variable", "rotations[0].provider.refresh_token").config(
            "github:\n  token: { env: GH_SECRETS_TOKEN }\nrotations:\n  - name: a\n    provider: { type: oauth2, token_url: 'https://auth.example.com/token', client_id: c, refresh_token: { env: NOT_SET_ANYWHERE } }\n    targets: [ { github: { repository: acme/app, secret: X } } ]\n",
        ),
        case("only names an unknown rotation", "input only").args(&["rotate", "--only", "zzz"]).config(
            "github:\n  token: { env: GH_SECRETS_TOKEN }\nrotations:\n  - name: a\n    provider: { type: oauth2, token_url: 'https://auth.example.com/token', client_id: c, refresh_token: { env: RT } }\n    targets: [ { github: { repository: acme/app, secret: X } } ]\n",
        ),
        case("access token only: the refresh token would be lost", "rotations[0].targets").config(
            "github:\n  token: { env: GH_SECRETS_TOKEN }\nrotations:\n  - name: a\n    provider: { type: oauth2, token_url: 'https://auth.example.com/token', client_id: c, refresh_token: { env: RT } }\n    targets: [ { github: { repository: acme/app, secret: X }, value: access_token } ]\n",
        ),
        gl_case("no token", "input token").unset("INPUT_TOKEN"),
        gl_case("CI_JOB_TOKEN as the token", "input token").set("INPUT_TOKEN", "glcbt-64_job-token-0123456789"),
        gl_case("job token by value", "input token").set("CI_JOB_TOKEN", "glpat-valid-token-0000000001"),
        gl_case("unknown token_kind", "input token_kind").set("INPUT_TOKEN_KIND", "deploy"),
        gl_case("project token without owner", "input token_owner").unset("INPUT_TOKEN_OWNER"),
        gl_case("personal token with an owner", "input token_owner").set("INPUT_TOKEN_KIND", "personal"),
        gl_case("token_owner not a path", "input token_owner").set("INPUT_TOKEN_OWNER", "acme//app"),
        gl_case("expires_in not a number", "input expires_in").set("INPUT_EXPIRES_IN", "a month"),
        gl_case("expires_in zero", "input expires_in").set("INPUT_EXPIRES_IN", "0"),
        gl_case("gitlab_url over plain http", "input gitlab_url").set("INPUT_GITLAB_URL", "http://gitlab.example.com"),
        gl_case("gitlab_token is a job token", "input gitlab_token").set("INPUT_GITLAB_TOKEN", "glcbt-64_job-token-0123456789"),
        gl_case("bad gitlab_token_type", "gitlab_token_type").set("INPUT_GITLAB_TOKEN_TYPE", "basic"),
        gl_case("no variable_name", "input variable_name").unset("INPUT_VARIABLE_NAME"),
        gl_case("variable_name with a dash", "input variable_name").set("INPUT_VARIABLE_NAME", "MY-TOKEN"),
        gl_case("project and group", "input group").set("INPUT_PROJECT", "acme/app").set("INPUT_GROUP", "acme"),
        gl_case("no project outside GitLab CI", "input project").unset("CI_PROJECT_ID"),
        gl_case("group not a path", "input group").unset("CI_PROJECT_ID").set("INPUT_GROUP", "acme app"),
        gl_case("masked not a bool", "input masked").set("INPUT_MASKED", "yes"),
        gl_case("masked_and_hidden not a bool", "input masked_and_hidden").set("INPUT_MASKED_AND_HIDDEN", "1"),
        gl_case("hidden but not masked", "input masked").set("INPUT_MASKED_AND_HIDDEN", "true").set("INPUT_MASKED", "false"),
        gl_case("protected not a bool", "input protected").set("INPUT_PROTECTED", "on"),
        gl_case("raw not a bool", "input raw").set("INPUT_RAW", "no"),
        gl_case("environment_scope too long", "input environment_scope").set("INPUT_ENVIRONMENT_SCOPE", "e".repeat(256)),
        gl_case("unknown variable_type", "input variable_type").set("INPUT_VARIABLE_TYPE", "secret"),
        gl_case("description too long", "input variable_description").set("INPUT_VARIABLE_DESCRIPTION", "d".repeat(256)),
        gl_case("a token GitLab cannot mask", "input masked").set("INPUT_TOKEN", "short12"),
        gl_case("verify_url with gitlab-token", "input verify_url").set("INPUT_VERIFY_URL", "https://gitlab.example.com/api/v4/user"),
        gl_case("an oauth2 input with gitlab-token", "input client_id").set("INPUT_CLIENT_ID", "x"),
        gl_case("a github input with target gitlab", "input secret_name").set("INPUT_SECRET_NAME", "X"),
        case("a gitlab input with target github", "input variable_name").set("INPUT_VARIABLE_NAME", "X"),
        case("a gitlab-token input with oauth2", "input token").set("INPUT_TOKEN", "glpat-valid-token-0000000001"),
        case("oauth2 into GitLab without a writer token", "input gitlab_token")
            .set("INPUT_TARGET", "gitlab")
            .unset("INPUT_SECRET_NAME")
            .set("INPUT_VARIABLE_NAME", "X")
            .set("INPUT_PROJECT", "acme/app"),
        case("min_age with a GitLab variable", "input min_age")
            .set("INPUT_TARGET", "gitlab")
            .unset("INPUT_SECRET_NAME")
            .set("INPUT_VARIABLE_NAME", "X")
            .set("INPUT_PROJECT", "acme/app")
            .set("INPUT_GITLAB_TOKEN", "glpat-writer-token-0000000001")
            .set("INPUT_MIN_AGE", "20h"),
        case("max_age not a duration", "input max_age").set("INPUT_MAX_AGE", "3 days"),
        case("max_age zero", "input max_age").set("INPUT_MAX_AGE", "0s"),
        case("max_age not longer than min_age", "input max_age").set("INPUT_MIN_AGE", "20h").set("INPUT_MAX_AGE", "20h"),
        case("warn_before not a duration", "input warn_before").set("INPUT_WARN_BEFORE", "soon"),
        case("max_age with a GitLab variable", "input max_age")
            .set("INPUT_TARGET", "gitlab")
            .unset("INPUT_SECRET_NAME")
            .set("INPUT_VARIABLE_NAME", "X")
            .set("INPUT_PROJECT", "acme/app")
            .set("INPUT_GITLAB_TOKEN", "glpat-writer-token-0000000001")
            .set("INPUT_MAX_AGE", "3d"),
        case("status with a bad max_age", "input max_age").args(&["status"]).set("INPUT_MAX_AGE", "a week"),
        case("alert_webhook over plain http", "input alert_webhook")
            .set("INPUT_ALERT_WEBHOOK", "http://hooks.example.com/services/T0/B0/should-never-be-echoed"),
        case("alert_webhook not a URL", "input alert_webhook")
            .set("INPUT_ALERT_WEBHOOK", "hooks.example.com/services/should-never-be-echoed"),
        case("alert_webhook with a password", "input alert_webhook")
            .set("INPUT_ALERT_WEBHOOK", "https://user:should-never-be-echoed@hooks.example.com/x"),
        case("alert_on an unknown outcome", "input alert_on")
            .set("INPUT_ALERT_WEBHOOK", "https://hooks.example.com/services/should-never-be-echoed")
            .set("INPUT_ALERT_ON", "critical,sometimes"),
        case("alert_on without a webhook", "input alert_on").set("INPUT_ALERT_ON", "failed"),
        case("alert webhook as a flag", "--alert-webhook").args(&["rotate", "--alert-webhook", "should-never-be-echoed"]),
        case("alert without a webhook in config", "alert.webhook").config("alert:\n  on: [critical]\nrotations: []\n"),
        case("literal alert webhook in config", "alert.webhook")
            .config("alert:\n  webhook: 'https://hooks.example.com/services/should-never-be-echoed'\nrotations: []\n"),
        case("unknown alert key in config", "alert.channel")
            .config("alert:\n  webhook: { env: RT }\n  channel: ops\nrotations: []\n"),
        case("alert on an unknown outcome in config", "alert.on")
            .config("alert:\n  webhook: { env: HOOK }\n  on: [critical, overdew]\nrotations: []\n"),
        case("warn_before in config not a duration", "rotations[0].warn_before").config(
            "github:\n  token: { env: GH_SECRETS_TOKEN }\nrotations:\n  - name: a\n    warn_before: 1 week\n    provider: { type: oauth2, token_url: 'https://auth.example.com/token', client_id: c, refresh_token: { env: RT } }\n    targets: [ { github: { repository: acme/app, secret: X } } ]\n",
        ),
        vault_case("vault-token without a token", "input token").unset("INPUT_TOKEN"),
        vault_case("a batch token", "input token").set("INPUT_TOKEN", "hvb.batch-token-0123456789abcdef"),
        vault_case("a token with a newline", "input token").set("INPUT_TOKEN", "s.first-line\ns.second"),
        vault_case("no Vault address", "input vault_addr").unset("VAULT_ADDR"),
        vault_case("VAULT_ADDR plain http to a remote host", "VAULT_ADDR").set("VAULT_ADDR", "http://vault.example.com:8200"),
        vault_case("vault_addr not a URL", "input vault_addr").set("INPUT_VAULT_ADDR", "vault.example.com:8200"),
        vault_case("vault_addr with a query", "input vault_addr").set("INPUT_VAULT_ADDR", "https://vault.example.com/?x=1"),
        vault_case("a namespace with a space", "input vault_namespace").set("INPUT_VAULT_NAMESPACE", "team ci"),
        vault_case("VAULT_NAMESPACE invalid", "VAULT_NAMESPACE").set("VAULT_NAMESPACE", "team//ci"),
        vault_case("a token role with a slash", "input vault_role").set("INPUT_VAULT_ROLE", "ci/rotate"),
        vault_case("ttl under a minute", "input ttl").set("INPUT_TTL", "30s"),
        vault_case("ttl without a unit", "input ttl").set("INPUT_TTL", "720"),
        vault_case("grace without a unit", "input grace").set("INPUT_GRACE", "15"),
        vault_case("grace over 31 days", "input grace").set("INPUT_GRACE", "60d"),
        vault_case("no KV path", "input vault_kv_path").unset("INPUT_VAULT_KV_PATH"),
        vault_case("a KV path with ..", "input vault_kv_path").set("INPUT_VAULT_KV_PATH", "ci/../admin"),
        vault_case("a KV mount with a wildcard", "input vault_kv_mount").set("INPUT_VAULT_KV_MOUNT", "secret*"),
        vault_case("a KV field with a control character", "input vault_kv_field").set("INPUT_VAULT_KV_FIELD", "to\u{7}ken"),
        vault_case("a KV input with target github", "input vault_kv_path").set("INPUT_TARGET", "github"),
        vault_case("client_cert without client_key", "input client_cert").set("INPUT_CLIENT_CERT", "/nonexistent/client.pem"),
        vault_case("client_key without client_cert", "input client_key")
            .set("INPUT_CLIENT_KEY", "-----BEGIN PRIVATE KEY-----\nsup3r-s3cret\n-----END PRIVATE KEY-----"),
        vault_case("client_cert file missing", "input client_cert")
            .set("INPUT_CLIENT_CERT", "/nonexistent/client.pem")
            .set("INPUT_CLIENT_KEY", "-----BEGIN PRIVATE KEY-----\nsup3r-s3cret\n-----END PRIVATE KEY-----"),
        vault_case("client_cert holds no certificate", "input client_cert")
            .set("INPUT_CLIENT_CERT", "/etc/hostname")
            .set("INPUT_CLIENT_KEY", "-----BEGIN PRIVATE KEY-----\nsup3r-s3cret\n-----END PRIVATE KEY-----"),
        vault_case("VAULT_CLIENT_CERT without VAULT_CLIENT_KEY", "VAULT_CLIENT_CERT").set("VAULT_CLIENT_CERT", "/nonexistent/c.pem"),
        vault_case("VAULT_CACERT missing", "VAULT_CACERT").set("VAULT_CACERT", "/nonexistent/ca.pem"),
        vault_case("vault_ca_cert holds no certificate", "input vault_ca_cert").set("INPUT_VAULT_CA_CERT", "/etc/hostname"),
        vault_case("a vault-token input with oauth2", "input vault_role")
            .set("INPUT_VAULT_ROLE", "ci-rotate")
            .set("INPUT_PROVIDER", "oauth2")
            .set("INPUT_TARGET", "github")
            .unset("INPUT_TOKEN"),
        approle_case("approle without role_name", "input role_name").unset("INPUT_ROLE_NAME"),
        approle_case("approle without role_id", "input role_id").unset("INPUT_ROLE_ID"),
        approle_case("approle without secret_id", "input secret_id").unset("INPUT_SECRET_ID"),
        approle_case("approle mount with a space", "input approle_mount").set("INPUT_APPROLE_MOUNT", "app role"),
        approle_case("approle role name with a slash", "input role_name").set("INPUT_ROLE_NAME", "ci/x"),
        approle_case("approle into KV without a writer token", "input vault_token").unset("INPUT_VAULT_TOKEN"),
        approle_case("a vault-token input with approle", "input ttl").set("INPUT_TTL", "1h"),
        case("tls_client_auth without a client certificate", "input client_auth")
            .unset("INPUT_CLIENT_SECRET")
            .set("INPUT_CLIENT_AUTH", "tls_client_auth"),
        case("tls_client_auth with a client secret", "input client_auth").set("INPUT_CLIENT_AUTH", "tls_client_auth"),
        gl_case("client_cert with gitlab-token", "input client_cert").set("INPUT_CLIENT_CERT", "/nonexistent/c.pem"),
        case("config: an unknown vault_kv key", "rotations[0].targets[0].vault_kv.feild").config(
            "vault: { addr: 'https://vault.example.com', token: { env: RT } }\nrotations:\n- name: a\n  provider: { type: vault-token, token: { env: RT } }\n  targets:\n  - vault_kv: { path: ci/app, feild: token }\n",
        ),
        case("config: a literal client key", "vault.tls.client_key").config(
            "vault: { addr: 'https://vault.example.com', tls: { client_cert: c.pem, client_key: 'sup3r-s3cret' } }\nrotations:\n- name: a\n  provider: { type: vault-token, token: { env: RT } }\n  targets:\n  - vault_kv: { path: ci/app }\n",
        ),
        case("config: grace 0 revokes a token another rotation writes with", "rotations[0].provider.grace").config(
            "vault: { addr: 'https://vault.example.com', token: { env: RT } }\nrotations:\n- name: ci-token\n  provider: { type: vault-token, token: { env: RT }, grace: 0 }\n  targets:\n  - vault_kv: { path: ci/app }\n- name: other\n  provider: { type: vault-token, token: { env: GH_SECRETS_TOKEN } }\n  targets:\n  - vault_kv: { path: ci/other }\n",
        ),
        case("config: an unknown tls key", "rotations[0].provider.tls.cert").config(
            "github: { token: { env: GH_SECRETS_TOKEN } }\nrotations:\n- name: a\n  provider: { type: oauth2, token_url: 'https://auth.example.com/token', client_id: c, refresh_token: { env: RT }, tls: { cert: c.pem } }\n  targets:\n  - github: { repository: acme/app, secret: A }\n",
        ),
        case("config: a provider's vault_addr over plain http", "rotations[0].provider.vault_addr").config(
            "vault: { token: { env: RT } }\nrotations:\n- name: a\n  provider: { type: vault-token, token: { env: RT }, vault_addr: 'http://vault.example.com' }\n  targets:\n  - vault_kv: { path: ci/app }\n",
        ),
        aws_case("no aws_secret_id", "input aws_secret_id").unset("INPUT_AWS_SECRET_ID"),
        aws_case("aws_secret_id with a space", "input aws_secret_id").set("INPUT_AWS_SECRET_ID", "ci/my token"),
        aws_case("aws_secret_id an ARN of another service", "input aws_secret_id").set("INPUT_AWS_SECRET_ID", "arn:aws:s3:::bucket/key"),
        aws_case("aws_region not a region", "input aws_region").set("INPUT_AWS_REGION", "Europe"),
        aws_case("no region anywhere", "input aws_region").unset("AWS_REGION"),
        aws_case("aws_region and the ARN's region differ", "input aws_region")
            .set("INPUT_AWS_SECRET_ID", "arn:aws:secretsmanager:us-east-1:123456789012:secret:ci/spotify-AbCdEf")
            .set("INPUT_AWS_REGION", "eu-west-1"),
        aws_case("aws_secret_key with a control character", "input aws_secret_key").set("INPUT_AWS_SECRET_KEY", "refresh\ttoken"),
        aws_case("AWS_ACCESS_KEY_ID not set", "AWS_ACCESS_KEY_ID").unset("AWS_ACCESS_KEY_ID"),
        aws_case("AWS_ACCESS_KEY_ID quoted", "AWS_ACCESS_KEY_ID").set("AWS_ACCESS_KEY_ID", "\"AKIAIOSFODNN7EXAMPLE\""),
        aws_case("AWS_SECRET_ACCESS_KEY not set", "AWS_SECRET_ACCESS_KEY").unset("AWS_SECRET_ACCESS_KEY"),
        aws_case("AWS_SESSION_TOKEN with a space", "AWS_SESSION_TOKEN").set("AWS_SESSION_TOKEN", "FwoGZXIvYXdz EXAMPLE"),
        aws_case("AWS_REGION not a region", "AWS_REGION").set("AWS_REGION", "eu-west"),
        aws_case("AWS_ENDPOINT_URL over plain http", "AWS_ENDPOINT_URL").set("AWS_ENDPOINT_URL", "http://aws.example.com"),
        aws_case("AWS_ENDPOINT_URL_SECRETS_MANAGER not a URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER")
            .set("AWS_ENDPOINT_URL_SECRETS_MANAGER", "secretsmanager.local"),
        aws_case("refresh token over 64 KB for AWS", "input aws_secret_id").set("INPUT_REFRESH_TOKEN", "r".repeat(65537)),
        aws_case("a github input with target aws-secrets-manager", "input secret_name").set("INPUT_SECRET_NAME", "X"),
        case("an aws input with target github", "input aws_region").set("INPUT_AWS_REGION", "eu-west-1"),
        case("aws target entry without secret_id", "rotations[0].targets[0].aws_secrets_manager.secret_id").config(
            "rotations:\n  - name: a\n    provider: { type: oauth2, token_url: 'https://auth.example.com/token', client_id: c, refresh_token: { env: RT } }\n    targets: [ { aws_secrets_manager: { region: eu-west-1 } } ]\n",
        ),
        case("unknown key in an aws target entry", "rotations[0].targets[0].aws_secrets_manager.secret").config(
            "rotations:\n  - name: a\n    provider: { type: oauth2, token_url: 'https://auth.example.com/token', client_id: c, refresh_token: { env: RT } }\n    targets: [ { aws_secrets_manager: { secret: ci/x, region: eu-west-1 } } ]\n",
        ),
        case("two keys of one AWS secret in one run", "rotations[0].targets").config(
            "rotations:\n  - name: a\n    provider: { type: oauth2, token_url: 'https://auth.example.com/token', client_id: c, refresh_token: { env: RT } }\n    targets:\n      - aws_secrets_manager: { secret_id: ci/x, region: eu-west-1, key: refresh_token }\n      - aws_secrets_manager: { secret_id: ci/x, region: eu-west-1, key: access_token }\n        value: access_token\n",
        ),
    ];
    assert!(cases.len() >= 20);

    let mut snapshot = String::new();
    for c in &cases {
        let mut bin = Bin::actions(&c.args);
        let cfg_dir = tempfile::tempdir().unwrap();
        let dir = cfg_dir.path().to_owned();
        let mut inputs = oauth_inputs("", &gh, "r1-valid-refresh-token");
        inputs.retain(|(k, _)| *k != "INPUT_TOKEN_URL");
        inputs.push(("INPUT_TOKEN_URL", gh.fault_token_url()));
        if c.gitlab {
            inputs = gitlab_inputs(&gl, "glpat-valid-token-0000000001");
            inputs.push(("INPUT_TARGET", "gitlab".into()));
        }
        if c.vault {
            inputs = vec![
                ("INPUT_PROVIDER", "vault-token".into()),
                ("INPUT_TARGET", "vault-kv".into()),
                ("INPUT_TOKEN", "s.valid-token-0123456789abcd".into()),
                ("VAULT_ADDR", gh.url.clone()),
                ("INPUT_VAULT_KV_PATH", "ci/app".into()),
            ];
        }
        if c.aws {
            inputs.retain(|(k, _)| *k != "INPUT_SECRET_NAME");
            inputs.extend(aws_inputs(&gh));
        }
        if let Some(yaml) = c.config {
            let path = dir.join("rotations.yml");
            std::fs::write(&path, yaml).unwrap();
            let mut args = c.args.clone();
            let p: &'static str = Box::leak(path.display().to_string().into_boxed_str());
            args.extend(["--config", p]);
            bin = Bin::actions(&args);
            bin = bin
                .envs(aws_inputs(&gh).into_iter().filter(|(k, _)| k.starts_with("AWS_")))
                .env("GH_SECRETS_TOKEN", GH_TOKEN)
                .env("RT", "r1-valid-refresh-token")
                .env("GITHUB_API_URL", &gh.url)
                .env("HOOK", "https://hooks.example.com/services/should-never-be-echoed");
            if c.name == "config with rotation inputs" {
                bin = bin.env("INPUT_PROVIDER", "oauth2");
            }
        } else if c.args.contains(&"--config") {
            bin = bin.env("GITHUB_API_URL", &gh.url);
        } else {
            for (k, v) in inputs {
                if !c.unset.contains(&k) {
                    bin = bin.env(k, v);
                }
            }
        }
        for (k, v) in &c.set {
            bin = bin.env(k, v);
        }
        let run = bin.run();
        assert_eq!(run.code, 2, "{}: exit {} stderr: {}", c.name, run.code, run.stderr);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{}: one line expected: {}", c.name, run.stderr);
        let line = lines[0];
        assert!(line.starts_with("secret-rotator: error: "), "{}: {line}", c.name);
        assert!(line.contains(c.names), "{}: `{line}` does not name `{}`", c.name, c.names);
        assert!(!line.contains("should-never-be-echoed") && !line.contains("sup3r-s3cret"), "{}: {line}", c.name);
        assert!(run.stdout.starts_with("::error title=secret-rotator::"), "{}: annotation: {}", c.name, run.stdout);
        assert_eq!(run.file("output"), "rotated=false\n", "{}: rotated is set on failure too", c.name);
        let line = line.replace(&dir.display().to_string(), "<tmp>");
        snapshot.push_str(&format!("{}\n  {}\n", c.name, line));
    }
    assert!(gh.requests().is_empty(), "bad input contacted a server: {:?}", gh.requests());
    assert!(gl.requests().is_empty(), "bad input contacted GitLab: {:?}", gl.requests());
    insta::assert_snapshot!(snapshot);
}

/// AWS target inputs and a valid AWS environment, its endpoint the stand-in (so any request to
/// AWS would be seen there).
fn aws_inputs(gh: &GitHub) -> Vec<(&'static str, String)> {
    vec![
        ("INPUT_TARGET", "aws-secrets-manager".into()),
        ("INPUT_AWS_SECRET_ID", "ci/spotify".into()),
        ("AWS_ACCESS_KEY_ID", AWS_KEY_ID.into()),
        ("AWS_SECRET_ACCESS_KEY", AWS_SECRET_KEY.into()),
        ("AWS_REGION", AWS_REGION.into()),
        ("AWS_ENDPOINT_URL", gh.url.clone()),
    ]
}

#[test]
fn cli_usage_errors_exit_2() {
    let run = Bin::new(&["rotate", "--no-such-flag"]).run();
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--no-such-flag"));
    let run = Bin::new(&[]).run();
    assert_eq!(run.code, 2, "no subcommand prints usage and exits 2");
    let run = Bin::new(&["--version"]).run();
    assert_eq!(run.code, 0);
    assert_eq!(run.stdout.trim(), format!("secret-rotator {}", env!("CARGO_PKG_VERSION")));
}
