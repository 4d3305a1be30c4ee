//! GitHub Actions: `::add-mask::`, step outputs in `$GITHUB_OUTPUT`, the step summary.

use std::io::Write;
use std::path::Path;

use super::Report;
use crate::secret::Secret;

/// Tells the runner to mask `value` in every later log line. Must be printed before anything
/// else could print the value. Only meaningful (and only printed) inside GitHub Actions.
pub fn add_mask(value: &Secret) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(mask_commands(value).as_bytes());
    let _ = out.flush();
}

/// The `::add-mask::` lines for a value: one per line of it (the runner masks line by line),
/// each escaped as the runner unescapes command data, so the mask it registers is the value.
pub fn mask_commands(value: &Secret) -> String {
    let mut text = String::new();
    for line in value.expose().lines().filter(|l| !l.trim().is_empty()) {
        text.push_str("::add-mask::");
        text.push_str(&escape_data(line));
        text.push('\n');
    }
    text
}

/// Workflow command data escaping, as the runner undoes it: `%` first, then CR and LF.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Appends `name=value` pairs to the `$GITHUB_OUTPUT` file, with a heredoc delimiter for values
/// that hold a newline.
pub fn write_outputs(path: &Path, pairs: &[(&str, &str)]) -> std::io::Result<()> {
    let mut text = String::new();
    for (name, value) in pairs {
        if value.contains('\n') || value.contains('\r') {
            let delim = format!("ghadelimiter_{}", random_hex());
            text.push_str(&format!("{name}<<{delim}\n{value}\n{delim}\n"));
        } else {
            text.push_str(&format!("{name}={value}\n"));
        }
    }
    append(path, &text)
}

fn random_hex() -> String {
    use crypto_box::aead::rand_core::RngCore;
    format!("{:016x}", crypto_box::aead::OsRng.next_u64())
}

/// Appends to a file the runner gave us (created if missing).
pub fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().append(true).create(true).open(path)?;
    f.write_all(text.as_bytes())
}

/// The Markdown table for `$GITHUB_STEP_SUMMARY`.
pub fn summary(report: &Report) -> String {
    let mut s = String::from("### secret-rotator\n\n");
    if report.dry_run {
        s.push_str("Dry run: nothing was rotated.\n\n");
    }
    s.push_str("| rotation | status | target | target status | attempts | note |\n|---|---|---|---|---|---|\n");
    for r in &report.rotations {
        let note = r.error.as_deref().unwrap_or("");
        if r.targets.is_empty() {
            s.push_str(&format!("| {} | {} | | | | {} |\n", cell(&r.name), r.status.as_str(), cell(note)));
        }
        for (i, t) in r.targets.iter().enumerate() {
            let (name, status, note) = if i == 0 { (r.name.as_str(), r.status.as_str(), note) } else { ("", "", "") };
            let tnote = t.error.as_deref().or(t.note.as_deref()).unwrap_or(note);
            s.push_str(&format!(
                "| {} | {} | {} ({}) | {} | {} | {} |\n",
                cell(name),
                status,
                cell(&t.target),
                t.value,
                t.status.as_str(),
                t.attempts,
                cell(tnote)
            ));
        }
        if let Some(f) = &r.rescue_file {
            s.push_str(&format!(
                "\n**{}**: the new credential is in the rescue file `{}` (decrypt with `age -d -i KEY {}`).\n",
                cell(&r.name),
                f,
                f
            ));
        }
    }
    let fps: Vec<String> = report
        .rotations
        .iter()
        .filter_map(|r| r.new_fingerprint.as_ref().map(|n| format!("`{}`: {} → {}", r.name, r.old_fingerprint, n)))
        .collect();
    if !fps.is_empty() {
        s.push_str("\nFingerprints: ");
        s.push_str(&fps.join(", "));
        s.push('\n');
    }
    crate::secret::redact(&s)
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runner's `ActionCommand` unescaping of command data.
    fn runner_unescape(s: &str) -> String {
        s.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")
    }

    #[test]
    fn masks_survive_the_runners_unescaping() {
        for value in ["r2-%0A-x%25y%z-0123456789", "%%0D%0A%", "plain-value-0123", "100%-sure-\rvalue"] {
            let commands = mask_commands(&Secret::new(value));
            let registered: Vec<String> = commands
                .lines()
                .map(|l| runner_unescape(l.strip_prefix("::add-mask::").expect("a mask command")))
                .collect();
            let expected: Vec<&str> = value.lines().collect();
            assert_eq!(registered, expected, "{value:?}");
        }
    }

    #[test]
    fn multiline_outputs_use_a_delimiter() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        write_outputs(&p, &[("a", "1"), ("b", "x\ny")]).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("a=1\nb<<ghadelimiter_"), "{text}");
        assert!(text.contains("\nx\ny\nghadelimiter_"), "{text}");
    }
}
