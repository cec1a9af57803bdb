//! Errors callers branch on, and the exit codes they map to.
//!
//! 0: ok. 1: the answer is no (does not fit, files drifted). 2: dbtune could
//! not do what was asked (bad input, unreadable file, bad flag).

use std::fmt;
use std::path::Path;

pub const EXIT_NO: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

/// Bad input from the user: says where (file:line when there is a file),
/// what was wrong, and what to do.
#[derive(Debug)]
pub struct InputError {
    pub location: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl InputError {
    pub fn new(
        location: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        InputError {
            location: Some(location.into()),
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn plain(message: impl Into<String>, hint: impl Into<String>) -> Self {
        InputError {
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
        InputError::new(
            format!("{}:{line}", path.display()),
            e.message().trim().to_string(),
            hint,
        )
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(l) => write!(f, "{l}: {}", self.message)?,
            None => write!(f, "{}", self.message)?,
        }
        if let Some(h) = &self.hint {
            write!(f, "\nhint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InputError {}

/// The answer is "no": a set that does not fit, or committed files that
/// differ. Its message is complete (it carries the breakdown).
#[derive(Debug)]
pub struct Refusal(pub String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

/// A change to a live server that failed partway: what was applied before
/// the failure is part of the message, so nothing is left unsaid when a
/// server dies halfway through.
#[derive(Debug)]
pub struct LiveChangeFailed {
    pub message: String,
    pub applied: Vec<String>,
    /// Where the applied changes stand (written but not reloaded...).
    pub state: String,
    pub hint: String,
}

impl fmt::Display for LiveChangeFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.message)?;
        if self.applied.is_empty() {
            writeln!(f, "applied before the failure: nothing")?;
        } else {
            writeln!(f, "applied before the failure ({}):", self.state)?;
            for a in &self.applied {
                writeln!(f, "  {a}")?;
            }
        }
        write!(f, "hint: {}", self.hint)
    }
}

impl std::error::Error for LiveChangeFailed {}
