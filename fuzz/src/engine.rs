//! What the two engine targets check of a finished run.

use secret_rotator::engine::Outcome;
use secret_rotator::report::{RotationStatus, TargetStatus};

use crate::{assert_not_in, Seen, NEW_MARKER};

/// Checks that hold for every run of the engine.
///
/// - the exit code is one of 0, 1, 3, 4 (2 is bad input: never from the engine);
/// - the report never holds a credential: `known` (the ones the run starts with), and every
///   value the run issued that carries the marker (a value only issued, never: a server may
///   say any text, the canonical values too, before they are anyone's credential);
/// - never lose a credential: a rotation that issued a new credential and did not store it in
///   every one of its targets is `critical`, and `critical` means one was not stored;
/// - `rotated` means every target was written (but an unchanged credential's).
pub fn check_outcome(outcome: &Outcome, credential_label: &str, known: &[&str]) {
    let code = outcome.report.exit().code();
    assert!(matches!(code, 0 | 1 | 3 | 4), "exit code {code}");
    let json = serde_json::to_string(&outcome.report).expect("the report serializes");
    for k in known {
        assert_not_in("the report", &json, k);
    }
    for s in &outcome.issued {
        if s.expose().contains(NEW_MARKER) {
            assert_not_in("the report", &json, s.expose());
        }
    }
    for r in &outcome.report.rotations {
        let changed = r.new_fingerprint.as_ref().is_some_and(|n| *n != r.old_fingerprint);
        let unstored = r.targets.iter().any(|t| t.value == credential_label && t.status != TargetStatus::Written);
        if changed && unstored {
            assert_eq!(r.status, RotationStatus::Critical, "a new credential is not stored everywhere: {json}");
        }
        if r.status == RotationStatus::Critical {
            assert!(changed && unstored, "critical, but nothing is unstored: {json}");
        }
        if r.status == RotationStatus::Rotated {
            // An unchanged credential (a provider that does not rotate it) is not written again.
            let all_written = r
                .targets
                .iter()
                .all(|t| t.status == TargetStatus::Written || (!changed && t.value == credential_label));
            assert!(all_written, "rotated, not all written: {json}");
        }
    }
}

/// The rotate request reached the upstream at most once: every attempt but the last of
/// `rotates` was answered "never sent".
pub fn check_sent_once(rotates: &[&Seen]) {
    if let Some((_, before)) = rotates.split_last() {
        for s in before {
            assert_eq!(
                s.answer,
                crate::Answer::Failed("NotSent"),
                "the rotate request was sent again after {:?}",
                s.answer
            );
        }
    }
}
