//! Exit codes and the input error that every validation step returns.

use std::fmt;

use crate::log::one_line;

/// The documented exit codes. Ordered by severity when several rotations end differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every rotation succeeded, was skipped as fresh, or (dry run) would succeed.
    Ok = 0,
    /// A rotation failed safely; the stored credential is untouched.
    Failed = 1,
    /// Bad input or config; nothing was contacted.
    BadInput = 2,
    /// The upstream issued a new credential that could not be stored in every target.
    Critical = 3,
    /// The upstream rejected the current credential (revoked, expired, or already used).
    Rejected = 4,
}

impl Exit {
    /// Severity rank: 3, then 4, then 1, then 2, then 0.
    fn rank(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::BadInput => 1,
            Exit::Failed => 2,
            Exit::Rejected => 3,
            Exit::Critical => 4,
        }
    }

    /// The more severe of two outcomes.
    pub fn worst(self, other: Exit) -> Exit {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// A bad input: names the input and says how to fix it. Exit code 2; nothing was contacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The input as the user spelled it (`token_url`, `rotations[0].provider.token_url`).
    pub input: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl InputError {
    /// A new error for `input`.
    pub fn new(input: impl Into<String>, message: impl Into<String>) -> Self {
        InputError { input: input.into(), message: message.into() }
    }
}

impl fmt::Display for InputError {
    /// One line, always: a value quoted in the message (a YAML string holding a newline) is
    /// shown with its control characters escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", one_line(&self.input), one_line(&self.message))
    }
}

impl std::error::Error for InputError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_error_is_one_line_whatever_it_quotes() {
        // Found by fuzzing the config file: `http: { timeout: "1\n2" }`.
        let e = InputError::new("http.timeout", "`1\n2\r\t` is not a duration");
        assert_eq!(e.to_string(), "http.timeout: `1\\n2\\r\\t` is not a duration");
        assert_eq!(e.to_string().lines().count(), 1);
    }

    #[test]
    fn severity_order_is_critical_rejected_failed_badinput_ok() {
        let order = [Exit::Ok, Exit::BadInput, Exit::Failed, Exit::Rejected, Exit::Critical];
        for (i, a) in order.iter().enumerate() {
            for (j, b) in order.iter().enumerate() {
                let expect = if i >= j { *a } else { *b };
                assert_eq!(a.worst(*b), expect, "{a:?} vs {b:?}");
            }
        }
    }
}
