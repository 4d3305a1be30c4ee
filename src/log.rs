//! Logs on stderr: text or JSON lines. Every message passes through the redactor, so a value
//! that reached a message by mistake (a server echoing a token) is still not printed.

use std::io::Write;
use std::sync::OnceLock;

use crate::secret::redact;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `secret-rotator: info: [rotation] message`
    Text,
    /// One JSON object a line.
    Json,
}

/// Log level, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed.
    Error,
    /// Something is off but the run goes on.
    Warn,
    /// What the run does.
    Info,
    /// Every request.
    Debug,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }

    /// Parses `error`, `warn`, `info`, `debug`.
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "error" => Level::Error,
            "warn" => Level::Warn,
            "info" => Level::Info,
            "debug" => Level::Debug,
            _ => return None,
        })
    }
}

static SETTINGS: OnceLock<(Format, Level)> = OnceLock::new();

/// Sets the format and level once, at start.
pub fn init(format: Format, level: Level) {
    let _ = SETTINGS.set((format, level));
}

fn settings() -> (Format, Level) {
    *SETTINGS.get().unwrap_or(&(Format::Text, Level::Info))
}

/// Logs a message, optionally about one rotation.
pub fn log(level: Level, rotation: Option<&str>, message: &str) {
    let (format, max) = settings();
    if level > max {
        return;
    }
    let _ = std::io::stderr().lock().write_all(render(format, level, rotation, message).as_bytes());
}

/// Text with its control characters escaped (`\n` shown as `\\n`): one line, always. A
/// server's text quoted in a message (an `error_description` with a newline) can then never
/// begin a line of its own, where the CI runner would read it as a workflow command
/// (`::add-mask::`, `::stop-commands::`).
pub fn one_line(text: &str) -> String {
    text.chars().flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect()
}

/// One log line: redacted, on one line, newline-terminated.
fn render(format: Format, level: Level, rotation: Option<&str>, message: &str) -> String {
    let message = one_line(&redact(message));
    match format {
        Format::Text => match rotation {
            Some(r) => format!("secret-rotator: {}: [{r}] {message}\n", level.as_str()),
            None => format!("secret-rotator: {}: {message}\n", level.as_str()),
        },
        Format::Json => {
            let mut obj = serde_json::Map::new();
            obj.insert("time".into(), jiff::Timestamp::now().to_string().into());
            obj.insert("level".into(), level.as_str().into());
            if let Some(r) = rotation {
                obj.insert("rotation".into(), r.into());
            }
            obj.insert("message".into(), message.into());
            format!("{}\n", serde_json::Value::Object(obj))
        }
    }
}

/// Error about the run.
pub fn error(message: &str) {
    log(Level::Error, None, message)
}
/// Warning about the run.
pub fn warn(message: &str) {
    log(Level::Warn, None, message)
}
/// Information about the run.
pub fn info(message: &str) {
    log(Level::Info, None, message)
}
/// Debug detail.
pub fn debug(message: &str) {
    log(Level::Debug, None, message)
}

/// Information about one rotation.
pub fn info_in(rotation: &str, message: &str) {
    log(Level::Info, Some(rotation), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_one_line_whatever_a_server_put_in_it() {
        // Found by fuzzing the token response: an `error_description` holding a newline.
        let text = "token endpoint answered HTTP 400 invalid_grant: bad grant\n::add-mask::x";
        for format in [Format::Text, Format::Json] {
            let line = render(format, Level::Error, Some("demo"), text);
            assert_eq!(line.lines().count(), 1, "{line}");
            assert!(line.ends_with('\n'));
            assert!(!line.lines().any(|l| l.starts_with("::")), "{line}");
        }
        assert_eq!(one_line("a\r\nb\u{1b}[31m"), "a\\r\\nb\\u{1b}[31m");
    }
}
