//! The inventory for a person: an aligned table on stdout (verdicts first, worst first, coloured
//! only on a terminal and never with `NO_COLOR`), and the same table in Markdown for the step
//! summary. Times are UTC, each with how long ago (or how soon) it is.

use std::io::IsTerminal;

use jiff::Timestamp;

use super::{relative, Inventory, Row, Seen, Verdict};
use crate::inputs::Env;

const HEADERS: [&str; 7] = ["VERDICT", "ROTATION", "TARGET", "LAST UPDATE", "NEXT DUE", "EXPIRES", "NOTE"];

/// Colour on stdout: only when it is a terminal, never with `NO_COLOR` set (https://no-color.org)
/// or `TERM=dumb`. In CI, stdout is a pipe: no colour.
pub fn colour(env: &Env) -> bool {
    std::io::stdout().is_terminal() && env.get("NO_COLOR").is_none() && env.get("TERM") != Some("dumb")
}

/// The summary line: how many targets have each verdict.
pub fn summary(inv: &Inventory) -> String {
    let counts: Vec<String> = inv.counts().iter().map(|(v, n)| format!("{n} {}", v.as_str())).collect();
    let targets: usize = inv.rotations.iter().map(|e| e.targets.len()).sum();
    let plural = |n: usize, w: &str| if n == 1 { format!("{n} {w}") } else { format!("{n} {w}s") };
    format!(
        "{} ({} in {}; times in UTC)",
        counts.join(", "),
        plural(targets, "target"),
        plural(inv.rotations.len(), "rotation")
    )
}

/// Every row with its rotation's name, worst verdict first (config order among equals).
fn rows(inv: &Inventory) -> Vec<(&str, &Row)> {
    let mut rows: Vec<(&str, &Row)> =
        inv.rotations.iter().flat_map(|e| e.targets.iter().map(move |t| (e.name.as_str(), t))).collect();
    rows.sort_by_key(|(_, r)| std::cmp::Reverse(r.verdict));
    rows
}

fn when(t: Timestamp, now: Timestamp) -> String {
    format!("{} ({})", t.strftime("%Y-%m-%d %H:%M"), relative(t, now))
}

/// The cells of a row, as text.
fn cells(inv: &Inventory, name: &str, r: &Row) -> [String; 7] {
    let now = inv.checked_at;
    let every_run = inv.rotations.iter().find(|e| e.name == name).is_some_and(|e| e.min_age.is_none());
    let last = match (r.stored, r.last_update) {
        (_, Some(t)) => when(t, now),
        (Seen::Missing, _) => "missing".to_owned(),
        (Seen::Error, _) => "error".to_owned(),
        _ => "unknown".to_owned(),
    };
    let due = match r.next_due {
        Some(_) if every_run => "every run".to_owned(),
        Some(t) => when(t, now),
        None if matches!(r.stored, Seen::Missing | Seen::Error) => "-".to_owned(),
        None => "unknown".to_owned(),
    };
    let expires = r.expires_at.map(|t| when(t, now)).unwrap_or_else(|| "-".to_owned());
    [
        r.verdict.as_str().to_owned(),
        name.to_owned(),
        r.target.clone(),
        last,
        due,
        expires,
        r.note.clone().unwrap_or_default(),
    ]
}

fn paint(v: Verdict, text: &str) -> String {
    let code = match v {
        Verdict::Ok => "32",
        Verdict::Due => "36",
        Verdict::Unknown => "33",
        Verdict::Overdue => "31",
        Verdict::Expiring => "1;31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// The table for a terminal (or a log): a summary line, then aligned columns.
pub fn text(inv: &Inventory, colour: bool) -> String {
    let rows: Vec<(Verdict, [String; 7])> = rows(inv).into_iter().map(|(n, r)| (r.verdict, cells(inv, n, r))).collect();
    let mut widths = HEADERS.map(str::len);
    for (_, c) in &rows {
        for (w, cell) in widths.iter_mut().zip(c) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 7], verdict: Option<Verdict>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let last = i == cells.len() - 1;
            let padded = if last { (*cell).to_owned() } else { format!("{cell:<w$}  ", w = widths[i]) };
            match (i, verdict) {
                (0, Some(v)) if colour => {
                    out.push_str(&paint(v, cell));
                    out.push_str(&padded[cell.len()..]);
                }
                _ => out.push_str(&padded),
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = format!("secret-rotator status: {}\n\n", summary(inv));
    out.push_str(&line(HEADERS, None));
    for (v, c) in &rows {
        out.push_str(&line(c.each_ref().map(String::as_str), Some(*v)));
    }
    crate::secret::redact(&out)
}

/// The same table in Markdown, for `$GITHUB_STEP_SUMMARY`.
pub fn markdown(inv: &Inventory) -> String {
    let mut s = format!("### secret-rotator status\n\n{}\n\n", summary(inv));
    s.push_str(&format!("| {} |\n", HEADERS.map(|h| h.to_ascii_lowercase()).join(" | ")));
    s.push_str(&format!("|{}\n", "---|".repeat(HEADERS.len())));
    for (name, r) in rows(inv) {
        let mut c = cells(inv, name, r).map(|c| c.replace('|', "\\|").replace('\n', " "));
        if r.verdict.exit().code() != 0 {
            c[0] = format!("**{}**", c[0]);
        }
        s.push_str(&format!("| {} |\n", c.join(" | ")));
    }
    crate::secret::redact(&s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Entry, Seen};

    fn inventory() -> Inventory {
        let now: Timestamp = "2026-03-10T12:00:00Z".parse().unwrap();
        let row = |target: &str, verdict, last: Option<&str>, note: Option<&str>| Row {
            kind: "github".into(),
            target: target.into(),
            value: "refresh_token".into(),
            verdict,
            stored: if last.is_some() { Seen::Updated } else { Seen::Exists },
            last_update: last.map(|l| l.parse().unwrap()),
            rotated_at: last.map(|l| l.parse().unwrap()),
            next_due: last.map(|l| l.parse::<Timestamp>().unwrap() + jiff::SignedDuration::from_hours(20)),
            expires_at: None,
            note: note.map(str::to_owned),
        };
        let entry = |name: &str, targets: Vec<Row>| Entry {
            name: name.into(),
            provider: "oauth2".into(),
            verdict: targets.iter().map(|t| t.verdict).max().unwrap(),
            fingerprint: "sha256:000000000000".into(),
            min_age: Some("20h".into()),
            max_age: Some("2d12h".into()),
            warn_before: "7d".into(),
            created_at: None,
            expires_at: None,
            problem: None,
            error: None,
            targets,
        };
        Inventory {
            version: 1,
            command: "status",
            checked_at: now,
            verdict: Verdict::Overdue,
            rotations: vec![
                entry("a", vec![row("acme/app secret A", Verdict::Ok, Some("2026-03-10T10:00:00Z"), None)]),
                entry(
                    "b",
                    vec![row("acme/app secret B", Verdict::Overdue, Some("2026-03-01T12:00:00Z"), Some("late | very"))],
                ),
            ],
        }
    }

    #[test]
    fn worst_first_aligned_and_plain_without_colour() {
        let t = text(&inventory(), false);
        assert_eq!(
            t,
            "secret-rotator status: 1 overdue, 1 ok (2 targets in 2 rotations; times in UTC)\n\n\
             VERDICT  ROTATION  TARGET             LAST UPDATE                NEXT DUE                   EXPIRES  NOTE\n\
             overdue  b         acme/app secret B  2026-03-01 12:00 (9d ago)  2026-03-02 08:00 (8d ago)  -        late | very\n\
             ok       a         acme/app secret A  2026-03-10 10:00 (2h ago)  2026-03-11 06:00 (in 18h)  -\n"
        );
        assert!(!t.contains('\x1b'));
    }

    #[test]
    fn colour_paints_the_verdict_only_and_keeps_the_alignment() {
        let plain = text(&inventory(), false);
        let coloured = text(&inventory(), true);
        assert!(coloured.contains("\x1b[31moverdue\x1b[0m  b "), "{coloured}");
        assert!(coloured.contains("\x1b[32mok\x1b[0m       a "), "{coloured}");
        let stripped = coloured.replace("\x1b[31m", "").replace("\x1b[32m", "").replace("\x1b[0m", "");
        assert_eq!(stripped, plain);
    }

    #[test]
    fn markdown_escapes_cells_and_marks_what_needs_attention() {
        let m = markdown(&inventory());
        assert!(m.contains("| verdict | rotation | target | last update | next due | expires | note |\n|---|---|---|---|---|---|---|\n"), "{m}");
        assert!(m.contains("| **overdue** | b | acme/app secret B | 2026-03-01 12:00 (9d ago) |"), "{m}");
        assert!(m.contains("| late \\| very |"), "{m}");
        assert!(m.contains("| ok | a |"), "{m}");
    }

    #[test]
    fn no_colour_with_no_color_or_a_dumb_terminal() {
        // The test's stdout is captured (not a terminal) either way; the variables alone decide too.
        assert!(!colour(&Env::from_pairs([("NO_COLOR", "1")])));
        assert!(!colour(&Env::from_pairs([("TERM", "dumb")])));
    }
}
