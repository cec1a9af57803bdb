//! The one error type, its exit codes, and how it is shown.
//!
//! 0: ok. 1: the answer is no (does not fit, files drifted, unsafe).
//! 2: dbtune could not do what was asked (bad input, unreadable file, bad
//! flag) or a change to a live server failed partway.

use std::fmt;
use std::path::Path;

pub const EXIT_NO: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

/// Where bad input is: the file as the user named it, the line when there
/// is one, and the setting when the problem is one value. Shown as
/// `file:line`; JSON gives each part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub file: String,
    pub line: Option<usize>,
    pub setting: Option<String>,
}

impl Place {
    /// A whole file (it cannot be read, say).
    pub fn file(file: impl fmt::Display) -> Place {
        Place {
            file: file.to_string(),
            line: None,
            setting: None,
        }
    }

    /// A line of a file.
    pub fn line(file: impl fmt::Display, line: usize) -> Place {
        Place {
            line: Some(line),
            ..Place::file(file)
        }
    }

    /// The same place, about one setting.
    pub fn setting(mut self, name: impl Into<String>) -> Place {
        self.setting = Some(name.into());
        self
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}", self.file),
            None => f.write_str(&self.file),
        }
    }
}

/// Everything a command can fail with that a user must act on. Other
/// failures (I/O, a server's own error) travel as `anyhow` context and exit
/// 2; `main` asks [`Error::code`] and prints the Display below.
#[derive(Debug)]
pub enum Error {
    /// Bad input from the user: where (when there is a file), what was
    /// wrong, and what to do.
    Input {
        place: Option<Place>,
        message: String,
        hint: Option<String>,
    },
    /// The answer is "no": a set that does not fit, a change a server
    /// would refuse. Its message is complete (it carries the breakdown);
    /// the hint says what to change.
    Refusal {
        message: String,
        hint: Option<String>,
    },
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
    /// Bad input at `place`.
    pub fn input(place: Place, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Input {
            place: Some(place),
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// Bad input with no one place to point at.
    pub fn plain(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Input {
            place: None,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// A refusal: the answer is no (what to change: [`Error::with_hint`]).
    pub fn refusal(message: impl Into<String>) -> Self {
        let message: String = message.into();
        Error::Refusal {
            message: message.trim_end_matches('\n').to_string(),
            hint: None,
        }
    }

    /// A TOML error, located at the line its span starts on.
    pub fn from_toml(path: &Path, text: &str, e: &toml::de::Error, hint: &str) -> Self {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(1);
        Error::input(
            Place::line(path.display(), line),
            e.message().trim().to_string(),
            hint,
        )
    }

    /// The same error with another hint.
    pub fn with_hint(mut self, new: impl Into<String>) -> Self {
        if let Error::Input { hint, .. } | Error::Refusal { hint, .. } = &mut self {
            *hint = Some(new.into());
        }
        self
    }

    /// Bad input placed at `at` when it has no place of its own: an
    /// unreadable include is reported at the line that includes it.
    pub fn or_at(mut self, at: Place) -> Self {
        if let Error::Input { place, .. } = &mut self {
            place.get_or_insert(at);
        }
        self
    }

    /// The process exit code this error ends a command with.
    pub fn code(&self) -> u8 {
        match self {
            Error::Refusal { .. } => EXIT_NO,
            Error::Input { .. } | Error::LiveChange { .. } => EXIT_ERROR,
        }
    }

    /// What went wrong, without place or hint.
    pub fn message(&self) -> &str {
        match self {
            Error::Input { message, .. }
            | Error::LiveChange { message, .. }
            | Error::Refusal { message, .. } => message,
        }
    }

    /// The file, line and setting the error is about, when there is one.
    pub fn place(&self) -> Option<&Place> {
        match self {
            Error::Input { place, .. } => place.as_ref(),
            _ => None,
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Input { hint, .. } | Error::Refusal { hint, .. } => hint.as_deref(),
            Error::LiveChange { hint, .. } => Some(hint),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input { place, message, .. } => match place {
                Some(p) => write!(f, "{p}: {message}")?,
                None => write!(f, "{message}")?,
            },
            Error::Refusal { message, .. } => f.write_str(message)?,
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
        let e = Error::input(
            Place::line("p.toml", 3).setting("ram"),
            "bad value",
            "write 8GB",
        );
        assert_eq!(e.to_string(), "p.toml:3: bad value\nhint: write 8GB");
        assert_eq!(e.code(), EXIT_ERROR);
        assert_eq!(e.place().and_then(|p| p.setting.as_deref()), Some("ram"));
        let r = Error::refusal("does not fit\n  shared_buffers 8 GiB\n").with_hint("lower it");
        assert_eq!(
            r.to_string(),
            "does not fit\n  shared_buffers 8 GiB\nhint: lower it"
        );
        assert_eq!(r.code(), EXIT_NO);
        assert_eq!(Place::file("a.conf").to_string(), "a.conf");
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
