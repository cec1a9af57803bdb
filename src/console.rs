//! Where output goes: data to stdout, messages to stderr, both through
//! here. A command-line argument that carries a password and is echoed
//! (a URL given as a path) shows masked, matched whole; nothing printed
//! can drive the terminal (control characters other than newline and tab
//! are shown as escapes; only dbtune's own colour codes pass, when colour
//! is on); a closed stdout ends the program quietly as ripgrep does, and
//! a stderr that cannot be written (closed, `/dev/full`) is not a crash:
//! the exit code still says what happened.

use std::io::{self, Write};

/// A message for stderr (`note: ...`, progress), formatted like
/// `format!`.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::console::message(&format!($($arg)*))
    };
}

/// Writes data to stdout. A reader that went away (`dbtune ... | head`)
/// ends the program at once with exit 0 and no message, as ripgrep does:
/// the reader chose to stop reading.
pub fn print(text: &str) -> io::Result<()> {
    write_data(text, false)
}

/// Like [`print`], keeping the ANSI colour codes dbtune itself added (a
/// report painted for a terminal); any other control sequence is escaped.
pub fn print_colored(text: &str) -> io::Result<()> {
    write_data(text, true)
}

fn write_data(text: &str, sgr: bool) -> io::Result<()> {
    let text = crate::secret::args_masked(text);
    let clean = terminal_safe(&text, sgr);
    let mut out = io::stdout().lock();
    match out.write_all(clean.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => quiet_exit(),
        other => other,
    }
}

/// A closed pipe is the reader's choice, not an error: exit at once, as
/// a program killed by SIGPIPE would, but without the noise.
fn quiet_exit() -> ! {
    std::process::exit(0)
}

/// One line to stderr; if stderr cannot be written, nothing is.
pub fn message(text: &str) {
    let text = crate::secret::args_masked(text);
    let clean = terminal_safe(&text, false);
    let mut err = io::stderr().lock();
    let _ = err.write_all(clean.as_bytes());
    let _ = err.write_all(b"\n");
}

/// `text` with control characters other than `\n` and `\t` escaped;
/// with `sgr`, colour sequences (`ESC [ digits;... m`) pass.
pub fn terminal_safe(text: &str, sgr: bool) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(bad) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '\x1b' && sgr {
            if let Some(len) = sgr_len(rest) {
                out.push_str(&rest[..len]);
                rest = &rest[len..];
                continue;
            }
        }
        if bad(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    std::borrow::Cow::Owned(out)
}

/// The length of a colour sequence at the start of `s`: `ESC [`, digits
/// and semicolons, `m`.
fn sgr_len(s: &str) -> Option<usize> {
    let body = s.strip_prefix("\x1b[")?;
    let n = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    (body.as_bytes().get(n) == Some(&b'm')).then_some(2 + n + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_sequences_are_escaped_but_colour_may_pass() {
        assert_eq!(terminal_safe("a\nb\tc", false), "a\nb\tc");
        assert_eq!(
            terminal_safe("x\x1b]0;title\x07y", false),
            "x\\u{1b}]0;title\\u{7}y"
        );
        assert_eq!(
            terminal_safe("\x1b[1;31merror\x1b[0m", true),
            "\x1b[1;31merror\x1b[0m"
        );
        assert_eq!(terminal_safe("\x1b[1;31m", false), "\\u{1b}[1;31m");
        // Only colour: a cursor move is escaped even with colour on.
        assert_eq!(terminal_safe("\x1b[2J", true), "\\u{1b}[2J");
        assert_eq!(terminal_safe("\r", true), "\\u{d}");
    }
}
