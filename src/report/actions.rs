//! GitHub Actions: `::add-mask::`, step outputs in `$GITHUB_OUTPUT`, the step summary.

use std::io::Write;
use std::path::Path;

use super::Report;
use crate::secret::Secret;

/// Tells the runner to mask `value` in every later log line. Must be printed before anything
/// else could print the value. Only meaningful (and only printed) inside GitHub Actions.
pub fn add_mask(value: &Secret) {
    let mut out = std::io::stdout().lock();
    // A value with a newline is masked line by line, as the runner masks per line.
    for line in value.expose().lines().filter(|l| !l.trim().is_empty()) {
        let _ = writeln!(out, "::add-mask::{line}");
    }
    let _ = out.flush();
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
            let tnote = t.error.as_deref().unwrap_or(note);
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
