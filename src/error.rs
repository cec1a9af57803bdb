//! The one error type, its exit codes, and how it is shown.
//!
//! 0: ok. 1: the answer is no (does not fit, files drifted, unsafe).
//! 2: dbtune could not do what was asked (bad input, unreadable file, bad
//! flag) or a change to a live server failed partway.

use std::fmt;
use std::path::Path;

pub const EXIT_NO: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

/// Everything a command can fail with that a user must act on. Other
/// failures (I/O, a server's own error) travel as `anyhow` context and exit
/// 2; `main` asks [`Error::code`] and prints the Display below.
#[derive(Debug)]
pub enum Error {
    /// Bad input from the user: where (file:line when there is a file),
    /// what was wrong, and what to do.
    Input {
        location: Option<String>,
        message: String,
        hint: Option<String>,
    },
    /// The answer is "no": a set that does not fit, or committed files that
    /// differ. Its message is complete (it carries the breakdown).
    Refusal(String),
    /// A change to a live server that failed partway: what was applied before
    /// the failure is part of the message, so nothing is left unsaid when a
    /// server dies halfway through.
    LiveChange {
        message: String,
        applied: Vec<String>,
        /// Where the applied changes stand (written but not reloaded...).
        state: String,
        hint: String,
    },
}

impl Error {
    /// Bad input at `location` (file:line, or a flag).
    pub fn input(
        location: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Error::Input {
            location: Some(location.into()),
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// Bad input with no one place to point at.
    pub fn plain(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Input {
            location: None,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// A TOML error, located at the line its span starts on.
    pub fn from_toml(path: &Path, text: &str, e: &toml::de::Error, hint: &str) -> Self {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(1);
        Error::input(
            format!("{}:{line}", path.display()),
            e.message().trim().to_string(),
            hint,
        )
    }

    /// The same error with another hint (bad input only).
    pub fn with_hint(mut self, new: impl Into<String>) -> Self {
        if let Error::Input { hint, .. } = &mut self {
            *hint = Some(new.into());
        }
        self
    }

    /// Bad input placed at `at` when it has no place of its own: an
    /// unreadable include is reported at the line that includes it.
    pub fn or_at(mut self, at: &str) -> Self {
        if let Error::Input { location, .. } = &mut self {
            location.get_or_insert_with(|| at.to_string());
        }
        self
    }

    /// The process exit code this error ends a command with.
    pub fn code(&self) -> u8 {
        match self {
            Error::Refusal(_) => EXIT_NO,
            Error::Input { .. } | Error::LiveChange { .. } => EXIT_ERROR,
        }
    }

    /// What went wrong, without location or hint.
    pub fn message(&self) -> &str {
        match self {
            Error::Input { message, .. } | Error::LiveChange { message, .. } => message,
            Error::Refusal(m) => m,
        }
    }

    /// file:line (or the flag) the error is about, when there is one.
    pub fn location(&self) -> Option<&str> {
        match self {
            Error::Input { location, .. } => location.as_deref(),
            _ => None,
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Input { hint, .. } => hint.as_deref(),
            Error::LiveChange { hint, .. } => Some(hint),
            Error::Refusal(_) => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input {
                location, message, ..
            } => match location {
                Some(l) => write!(f, "{l}: {message}")?,
                None => write!(f, "{message}")?,
            },
            Error::Refusal(m) => return f.write_str(m),
            Error::LiveChange {
                message,
                applied,
                state,
                ..
            } => {
                writeln!(f, "{message}")?;
                if applied.is_empty() {
                    write!(f, "applied before the failure: nothing")?;
                } else {
                    write!(f, "applied before the failure ({state}):")?;
                    for a in applied {
                        write!(f, "\n  {a}")?;
                    }
                }
            }
        }
        if let Some(h) = self.hint() {
            write!(f, "\nhint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_says_where_what_and_what_to_do() {
        let e = Error::input("p.toml:3", "bad value", "write 8GB");
        assert_eq!(e.to_string(), "p.toml:3: bad value\nhint: write 8GB");
        assert_eq!(e.code(), EXIT_ERROR);
        let r = Error::Refusal("does not fit\n  shared_buffers 8 GiB".into());
        assert_eq!(r.to_string(), "does not fit\n  shared_buffers 8 GiB");
        assert_eq!(r.code(), EXIT_NO);
        let l = Error::LiveChange {
            message: "connection lost".into(),
            applied: vec!["postgres work_mem = 64MB".into()],
            state: "in effect".into(),
            hint: "undo with: dbtune apply --rollback s.json".into(),
        };
        assert_eq!(
            l.to_string(),
            "connection lost\napplied before the failure (in effect):\n  postgres work_mem = 64MB\n\
             hint: undo with: dbtune apply --rollback s.json"
        );
        assert_eq!(l.code(), EXIT_ERROR);
    }
}
