//! Secrets never reach the screen, a CI log or a file they do not belong
//! to. Whether a value is secret is decided by the setting's name in its
//! format (`requirepass` in redis.conf, `primary_conninfo` in
//! postgresql.conf, a `[databases]` entry in pgbouncer.ini), and a value
//! that mixes secret and plain parts (a connection string) is parsed as
//! the client library parses it, never searched for a substring.
//!
//! Every value read from a file or a server reaches output through
//! [`Value`] (owned) or [`show`] (borrowed): both mask what is secret and
//! escape control characters, so a value can neither leak a password nor
//! drive the terminal. What the user typed on the command line (a URL with
//! its password) is shown through [`url`].

use std::borrow::Cow;
use std::fmt;

use serde::{Serialize, Serializer};

use crate::service::Scope;

/// What replaces a secret.
pub const MASK: &str = "***";

/// What a setting's value holds, as far as secrecy goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holds {
    /// Nothing secret.
    Plain,
    /// The whole value is secret (a password, a passphrase command).
    Secret,
    /// A libpq connection string (keyword/value or URI): its password is.
    Conninfo,
    /// Redis ACL rules (`user` lines): `>pw`, `<pw`, `#hash`, `!hash` are.
    AclRules,
}

impl Holds {
    /// Whether the value carries credentials: apply never changes such a
    /// setting, and a snapshot never records one.
    pub fn is_credential(self) -> bool {
        self != Holds::Plain
    }
}

/// Words in a setting's name that mean its value is a credential, for the
/// names no catalog lists (an extension's `myext.api_token`, a stray line).
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "apikey",
    "api_key",
    "api-key",
];

/// Settings whose name holds one of [`SECRET_WORDS`] but whose value is
/// no secret: a hash method, a boolean.
const NOT_SECRET: &[(Scope, &str)] = &[
    (Scope::Postgres, "password_encryption"),
    (Scope::Postgres, "ssl_passphrase_command_supports_reload"),
    (Scope::Postgres, "md5_password_warnings"),
];

/// What the value of `name` holds in the format of `scope`.
pub fn holds(scope: Scope, name: &str) -> Holds {
    let lower = name.to_ascii_lowercase();
    if NOT_SECRET.contains(&(scope, lower.as_str())) {
        return Holds::Plain;
    }
    let by_name = match scope {
        Scope::Postgres => match lower.as_str() {
            "primary_conninfo" => Some(Holds::Conninfo),
            "ssl_passphrase_command" => Some(Holds::Secret),
            _ => None,
        },
        Scope::Redis => match lower.as_str() {
            "requirepass" | "masterauth" | "tls-key-file-pass" | "tls-client-key-file-pass" => {
                Some(Holds::Secret)
            }
            "user" => Some(Holds::AclRules),
            // `sentinel auth-pass <master> <password>` and friends.
            "sentinel" => Some(Holds::Secret),
            _ => None,
        },
        // pgbouncer.ini keys are `section.key`: a [databases] entry is a
        // connection string that may carry `password=`.
        Scope::Pgbouncer if lower.starts_with("databases.") => Some(Holds::Conninfo),
        _ => None,
    };
    by_name.unwrap_or_else(|| {
        if SECRET_WORDS.iter().any(|w| lower.contains(w)) {
            Holds::Secret
        } else {
            Holds::Plain
        }
    })
}

/// `raw` as it may be shown, for a value that holds `holds`.
pub fn masked(holds: Holds, raw: &str) -> String {
    let masked: Cow<str> = match holds {
        Holds::Plain => Cow::Borrowed(raw),
        Holds::Secret if raw.is_empty() => Cow::Borrowed(""),
        Holds::Secret => Cow::Borrowed(MASK),
        Holds::Conninfo => Cow::Owned(conninfo(raw)),
        Holds::AclRules => Cow::Owned(acl_rules(raw)),
    };
    escape_controls(&masked).into_owned()
}

/// The value of setting `name` (in `scope`'s format) as it may be shown.
pub fn show(scope: Scope, name: &str, raw: &str) -> String {
    masked(holds(scope, name), raw)
}

/// A setting's value that knows whether it is secret: printed, formatted
/// and serialized masked; [`Value::expose`] gives the raw value to the one
/// place that needs it (the server, or the file it belongs to).
#[derive(Clone, PartialEq, Eq)]
pub struct Value {
    holds: Holds,
    raw: String,
}

impl Value {
    pub fn new(scope: Scope, name: &str, raw: impl Into<String>) -> Self {
        Value {
            holds: holds(scope, name),
            raw: raw.into(),
        }
    }

    /// The raw value: for the server or the file it belongs to, never for
    /// a person.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    pub fn holds(&self) -> Holds {
        self.holds
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&masked(self.holds, &self.raw))
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", masked(self.holds, &self.raw))
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // JSON escapes control characters itself: mask only.
        match self.holds {
            Holds::Plain => s.serialize_str(&self.raw),
            h => s.serialize_str(&masked(h, &self.raw)),
        }
    }
}

/// A name read from a file (a directive, a parameter) as it may be shown.
/// A line that is not `name value` (`TOKEN=ghp_...` from an included .env
/// file) would otherwise be echoed whole: the part from the first `=` on
/// is not shown, nor anything past 64 characters.
pub fn name(raw: &str) -> String {
    let (head, cut) = match raw.find('=') {
        Some(i) => (&raw[..i], true),
        None => (raw, false),
    };
    let mut out: String = head.chars().take(64).collect();
    let long = head.chars().count() > 64;
    if cut {
        out.push_str("=...");
    } else if long {
        out.push_str("...");
    }
    escape_controls(&out).into_owned()
}

/// Control characters as visible escapes (`\u{1b}`), so that nothing read
/// from a file, a snapshot or a server moves the cursor, rings the bell,
/// retitles the terminal or starts a new line in a report.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Keywords of a libpq connection string (and query parameters of a
/// URL) whose value is a secret: libpq's `password` and `sslpassword`
/// (the client key's passphrase), and redis-rs's `pass` of a unix-socket
/// URL.
const CONNINFO_SECRETS: &[&str] = &["password", "sslpassword", "pass"];

fn secret_key(key: &str) -> bool {
    CONNINFO_SECRETS.iter().any(|k| key.eq_ignore_ascii_case(k))
}

/// A libpq connection string with its passwords masked: a URI
/// (`postgresql://...`) or keyword/value pairs, parsed as libpq parses
/// them (`conninfo_parse`). A string libpq would refuse is masked whole
/// from the point it stops making sense.
pub fn conninfo(s: &str) -> String {
    conninfo_parts(s).0
}

/// [`conninfo`], and the secret values it masked (as written, and
/// unquoted), for text that may quote them elsewhere.
fn conninfo_parts(s: &str) -> (String, Vec<String>) {
    let trimmed = s.trim_start();
    if trimmed.starts_with("postgresql://") || trimmed.starts_with("postgres://") {
        return url_parts(s);
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut secrets = Vec::new();
    let mut i = 0;
    let ws = |c: u8| c.is_ascii_whitespace();
    while i < b.len() {
        let start = i;
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        let key_start = i;
        while i < b.len() && b[i] != b'=' && !ws(b[i]) {
            i += 1;
        }
        let key = &s[key_start..i];
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        if key.is_empty() && i >= b.len() {
            out.push_str(&s[start..]);
            break;
        }
        if i >= b.len() || b[i] != b'=' {
            // libpq: missing "=" after the keyword. Show up to here.
            out.push_str(&s[start..key_start]);
            out.push_str(MASK);
            secrets.push(s[key_start..].trim().to_string());
            return (out, secrets);
        }
        i += 1;
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        out.push_str(&s[start..i]);
        let value_start = i;
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            let mut closed = false;
            while i < b.len() {
                match b[i] {
                    b'\\' => i += 2,
                    b'\'' => {
                        i += 1;
                        closed = true;
                        break;
                    }
                    _ => i += 1,
                }
            }
            if !closed {
                // An unterminated quote: libpq refuses the string.
                out.push_str(MASK);
                secrets.push(s[value_start..].to_string());
                return (out, secrets);
            }
        } else {
            while i < b.len() && !ws(b[i]) {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
        }
        let i_end = i.min(b.len());
        let value = &s[value_start..i_end];
        if secret_key(key) {
            out.push_str(MASK);
            secrets.push(value.to_string());
            let bare = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\''));
            let unquoted = bare
                .unwrap_or(value)
                .replace("\\'", "'")
                .replace("\\\\", "\\");
            secrets.push(unquoted);
        } else {
            out.push_str(value);
        }
        i = i_end;
    }
    (out, secrets)
}

/// A URL (`postgres://`, `postgresql://`, `redis://`, `rediss://`,
/// `redis+unix://`...) with its password masked: a `password=`,
/// `sslpassword=` or `pass=` query parameter first (its value may hold an
/// unencoded `@`), then the user-info, which ends at the last `@` left,
/// so a password holding an unencoded `@`, `/`, `#` or `?` stays hidden
/// (at worst a host is hidden too). A URL whose "port" is not a number
/// and that has no `@` (`postgres://u:pw`) is masked after the colon.
pub fn url(s: &str) -> String {
    url_parts(s).0
}

/// [`url`], and the secret values it masked.
fn url_parts(s: &str) -> (String, Vec<String>) {
    let mut secrets = Vec::new();
    let Some(scheme_end) = s.find("://").map(|i| i + 3) else {
        // `user:pw@host`, typed without a scheme.
        let out = match s.rfind('@') {
            Some(at) => match s[..at].split_once(':') {
                Some((user, pw)) => {
                    secrets.push(pw.to_string());
                    format!("{user}:{MASK}{}", &s[at..])
                }
                None => s.to_string(),
            },
            None => s.to_string(),
        };
        return (escape_controls(&out).into_owned(), secrets);
    };
    let (scheme, rest) = s.split_at(scheme_end);
    let rest = query_passwords(rest, &mut secrets);
    let out = match rest.rfind('@') {
        Some(at) => {
            let (userinfo, tail) = rest.split_at(at);
            let user = match userinfo.split_once(':') {
                Some((user, pw)) => {
                    secrets.push(pw.to_string());
                    format!("{user}:{MASK}")
                }
                None => userinfo.to_string(),
            };
            format!("{scheme}{user}{tail}")
        }
        None => {
            let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (auth, tail) = rest.split_at(auth_end);
            let auth = match auth.rsplit_once(':') {
                Some((host, port))
                    if !auth.starts_with('[')
                        && !port.is_empty()
                        && !port.chars().all(|c| c.is_ascii_digit() || c == ',') =>
                {
                    secrets.push(port.to_string());
                    format!("{host}:{MASK}")
                }
                _ => auth.to_string(),
            };
            format!("{scheme}{auth}{tail}")
        }
    };
    (escape_controls(&out).into_owned(), secrets)
}

/// `rest` of a URL with the value of every secret query parameter
/// (`?password=`, `&sslpassword=`, `&pass=`) masked, wherever it stands
/// (a password before it may hold an unencoded `?`). A value runs to the
/// next `&` that starts another `key=`, or a `#`, or the end.
fn query_passwords(rest: &str, secrets: &mut Vec<String>) -> String {
    let mut out = String::with_capacity(rest.len());
    let mut i = 0;
    while let Some(off) = rest[i..].find(['?', '&']) {
        let sep = i + off;
        out.push_str(&rest[i..=sep]);
        let after = &rest[sep + 1..];
        let key_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if !(secret_key(&after[..key_len]) && after[key_len..].starts_with('=')) {
            i = sep + 1;
            continue;
        }
        let value_start = sep + 1 + key_len + 1;
        let mut end = rest.len();
        let mut j = value_start;
        while let Some(o) = rest[j..].find(['&', '#']) {
            let at = j + o;
            let next = &rest[at + 1..];
            let starts_key = next.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            if rest.as_bytes()[at] == b'#' || starts_key {
                end = at;
                break;
            }
            j = at + 1;
        }
        out.push_str(&after[..=key_len]);
        out.push_str(MASK);
        secrets.push(rest[value_start..end].to_string());
        i = end;
    }
    out.push_str(&rest[i..]);
    out
}

/// The parts of `raw` (a value that holds `holds`) that are secret, as
/// they may appear on their own in other text (a server's message that
/// quotes one argument): the whole value when it is a secret, the
/// passwords of a connection string or of ACL rules. `args` are the
/// value's arguments as the server split them, when known.
pub fn secrets_in(holds: Holds, raw: &str, args: Option<&[String]>) -> Vec<String> {
    let mut out = match holds {
        Holds::Plain => Vec::new(),
        Holds::Secret => {
            let mut v = vec![raw.to_string()];
            v.extend(args.into_iter().flatten().cloned());
            v.extend(raw.split_whitespace().map(str::to_string));
            v
        }
        Holds::Conninfo => conninfo_parts(raw).1,
        Holds::AclRules => {
            let mut v = acl_passwords(raw);
            for a in args.into_iter().flatten() {
                if let Some(pw) = a.strip_prefix(['>', '<', '#', '!']) {
                    v.push(a.clone());
                    v.push(pw.to_string());
                }
            }
            v
        }
    };
    out.retain(|s| !s.is_empty());
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// Redis ACL rules (a `user` line's arguments, joined by spaces as the
/// reader keeps them) with every password and password hash masked. The
/// quotes are gone by then, so a password with a space cannot be told
/// from the next rule: words after a password that are not ACL rules are
/// taken as part of it.
fn acl_rules(s: &str) -> String {
    acl_walk(s).0
}

/// The passwords and hashes of ACL rules, each whole (words joined).
fn acl_passwords(s: &str) -> Vec<String> {
    acl_walk(s).1
}

fn acl_walk(s: &str) -> (String, Vec<String>) {
    let is_rule = |w: &str| {
        w.starts_with(['~', '%', '&', '+', '-', '>', '<', '#', '!', '('])
            || [
                "on",
                "off",
                "nopass",
                "resetpass",
                "reset",
                "allkeys",
                "allchannels",
                "allcommands",
                "nocommands",
                "resetkeys",
                "resetchannels",
                "sanitize-payload",
                "skip-sanitize-payload",
                "clearselectors",
            ]
            .contains(&w.to_ascii_lowercase().as_str())
    };
    let mut out = Vec::new();
    let mut secrets: Vec<String> = Vec::new();
    let mut in_secret = false;
    for w in s.split(' ') {
        if w.starts_with(['>', '<', '#', '!']) {
            out.push(format!("{}{MASK}", &w[..1]));
            secrets.push(w[1..].to_string());
            in_secret = true;
        } else if in_secret && !is_rule(w) {
            // still the password
            if let Some(last) = secrets.last_mut() {
                last.push(' ');
                last.push_str(w);
            }
        } else {
            in_secret = false;
            out.push(w.to_string());
        }
    }
    (out.join(" "), secrets)
}

/// The parts of one command-line argument that may carry a password and
/// be echoed on their own: the argument, and what follows an `=` in it
/// (`--config=mine=postgres://...`), each with its masked form, when
/// masking changes it.
fn secret_parts(arg: &str) -> Vec<(String, String)> {
    let mut parts = vec![arg];
    parts.extend(arg.match_indices('=').map(|(i, _)| &arg[i + 1..]));
    parts
        .into_iter()
        .filter(|p| p.len() > 3)
        .filter_map(|p| {
            let shown = if p.contains("://") || p.contains('@') {
                url(p)
            } else if p.to_ascii_lowercase().contains("password") {
                conninfo(p)
            } else {
                return None;
            };
            (shown != *p && shown.contains(MASK)).then(|| (p.to_string(), shown))
        })
        .collect()
}

/// `text` with every command-line argument (or its part after an `=`)
/// that carries a password replaced, whole, by its masked form: for
/// messages that echo what the user typed (clap's errors, a URL given
/// where a path goes). Whole arguments only: a short password is never
/// searched for inside other words.
pub fn args_masked(text: &str) -> Cow<'_, str> {
    type Found = (Vec<(String, String)>, Vec<String>);
    static FOUND: std::sync::OnceLock<Found> = std::sync::OnceLock::new();
    let (parts, passwords) = FOUND.get_or_init(|| {
        // Lossily, as a message shows an argument that is not UTF-8: its
        // password is masked all the same.
        let args: Vec<String> = std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let mut parts: Vec<(String, String)> = args.iter().flat_map(|a| secret_parts(a)).collect();
        parts.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        let mut passwords: Vec<String> = args
            .iter()
            .flat_map(|a| passwords_in(a))
            .filter(|p| p.chars().count() >= MIN_SEARCHED)
            .collect();
        passwords.sort_by_key(|p| std::cmp::Reverse(p.len()));
        (parts, passwords)
    });
    let mut out = Cow::Borrowed(text);
    for (part, shown) in parts {
        if out.contains(part.as_str()) {
            out = Cow::Owned(out.replace(part.as_str(), shown));
        }
    }
    // An argument echoed after the system rewrote it (a URL given as a
    // path, printed canonical): its password, where it stands as a word.
    for pw in passwords {
        if out.contains(pw.as_str()) {
            out = Cow::Owned(replace_word(&out, pw));
        }
    }
    out
}

/// A password typed on the command line is searched for in output only
/// when it is at least this long, and only as a whole word: a short or
/// common one ("on") would otherwise rewrite unrelated text.
const MIN_SEARCHED: usize = 6;

/// The passwords a URL or connection-string argument carries.
fn passwords_in(arg: &str) -> Vec<String> {
    let mut out = Vec::new();
    let part = arg
        .find("postgres")
        .or_else(|| arg.find("redis"))
        .map_or(arg, |i| &arg[i..]);
    if let Some(scheme_end) = part.find("://").map(|i| i + 3) {
        let rest = &part[scheme_end..];
        if let Some(at) = rest.rfind('@') {
            if let Some((_, pw)) = rest[..at].split_once(':') {
                out.push(pw.to_string());
            }
        }
    }
    for kv in arg.split(['&', '?', ' ']) {
        if let Some((k, v)) = kv.split_once('=') {
            if secret_key(k) {
                out.push(v.trim_matches('\'').to_string());
            }
        }
    }
    out
}

/// `text` with `word` masked wherever neither neighbour is a letter, a
/// digit or `_`.
fn replace_word(text: &str, word: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + word.len()..].chars().next();
        let bounded = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        out.push_str(&rest[..i]);
        out.push_str(if bounded(before) && bounded(after) {
            MASK
        } else {
            word
        });
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_secret_by_name_in_their_format() {
        assert_eq!(holds(Scope::Redis, "requirepass"), Holds::Secret);
        assert_eq!(holds(Scope::Redis, "masterauth"), Holds::Secret);
        assert_eq!(holds(Scope::Redis, "user"), Holds::AclRules);
        assert_eq!(holds(Scope::Redis, "maxmemory"), Holds::Plain);
        assert_eq!(holds(Scope::Postgres, "primary_conninfo"), Holds::Conninfo);
        assert_eq!(holds(Scope::Postgres, "work_mem"), Holds::Plain);
        assert_eq!(holds(Scope::Postgres, "myext.api_token"), Holds::Secret);
        assert_eq!(holds(Scope::Pgbouncer, "databases.app"), Holds::Conninfo);
        assert_eq!(holds(Scope::Pgbouncer, "pgbouncer.pool_mode"), Holds::Plain);
        // The same name means nothing secret in another format.
        assert_eq!(holds(Scope::Postgres, "user"), Holds::Plain);
    }

    #[test]
    fn settings_that_merely_name_a_password_are_not_masked() {
        for name in [
            "password_encryption",
            "ssl_passphrase_command_supports_reload",
            "md5_password_warnings",
        ] {
            assert_eq!(holds(Scope::Postgres, name), Holds::Plain, "{name}");
        }
        assert_eq!(
            show(Scope::Postgres, "password_encryption", "scram-sha-256"),
            "scram-sha-256"
        );
        assert_eq!(
            holds(Scope::Postgres, "ssl_passphrase_command"),
            Holds::Secret
        );
        assert_eq!(holds(Scope::Postgres, "myext.password"), Holds::Secret);
    }

    #[test]
    fn sslpassword_and_spaced_or_tabbed_passwords_are_masked() {
        for (input, want) in [
            (
                "host=db sslpassword=keypass user=x",
                "host=db sslpassword=*** user=x",
            ),
            (
                "host=db\tpassword\t=\tpw1 user=x",
                "host=db\tpassword\t=\t*** user=x",
            ),
            ("host=db password =  pw1", "host=db password =  ***"),
            (
                "postgresql://u@db/app?sslpassword=keypass&sslmode=require",
                "postgresql://u@db/app?sslpassword=***&sslmode=require",
            ),
        ] {
            assert_eq!(conninfo(input), want, "{input}");
        }
        assert_eq!(
            conninfo_parts("host=db password = 'a b\\' c'").1,
            vec!["'a b\\' c'".to_string(), "a b' c".to_string()]
        );
    }

    #[test]
    fn conninfo_passwords_are_masked_by_parsing_not_searching() {
        for (input, want) in [
            ("host=db password=pw user=x", "host=db password=*** user=x"),
            (
                "host=db password = 'a b\\' c' user=x",
                "host=db password = *** user=x",
            ),
            ("password=pw", "password=***"),
            ("host=db PASSWORD=pw", "host=db PASSWORD=***"),
            // not a password: a value that merely contains the word
            (
                "application_name=password=x host=db",
                "application_name=password=x host=db",
            ),
            ("host=db password='unterminated", "host=db password=***"),
            ("host=db junk", "host=db ***"),
            (
                "postgresql://rep:pw@primary:5432/db",
                "postgresql://rep:***@primary:5432/db",
            ),
            ("", ""),
        ] {
            assert_eq!(conninfo(input), want, "{input}");
        }
    }

    #[test]
    fn url_passwords_with_unencoded_delimiters_stay_hidden() {
        for (input, want) in [
            (
                "postgres://app:s3cret@db:5432/app",
                "postgres://app:***@db:5432/app",
            ),
            (
                "postgres://postgres:a#Pw@db/app",
                "postgres://postgres:***@db/app",
            ),
            (
                "postgres://postgres:a/b@db/app",
                "postgres://postgres:***@db/app",
            ),
            ("postgres://u:p?w@db/app", "postgres://u:***@db/app"),
            (
                "redis://:pw@127.0.0.1:6379/0",
                "redis://:***@127.0.0.1:6379/0",
            ),
            ("redis://default:pw@h:6379", "redis://default:***@h:6379"),
            ("postgres://app@db/app", "postgres://app@db/app"),
            ("postgres://u:PW", "postgres://u:***"),
            ("u:PW@127.0.0.1", "u:***@127.0.0.1"),
            (":PW@127.0.0.1:6379", ":***@127.0.0.1:6379"),
            (
                "postgres://127.0.0.1:5432/db",
                "postgres://127.0.0.1:5432/db",
            ),
            (
                "postgres://h1:5432,h2:5433/db",
                "postgres://h1:5432,h2:5433/db",
            ),
            (
                "postgres://db/app?user=x&password=hunter2&sslmode=require",
                "postgres://db/app?user=x&password=***&sslmode=require",
            ),
            // An `@` in a query password is not the user-info's end.
            (
                "postgres://db/app?password=p@ss",
                "postgres://db/app?password=***",
            ),
            (
                "postgres://db/app?password=p@ss&sslmode=require",
                "postgres://db/app?password=***&sslmode=require",
            ),
            (
                "postgres://db/app?password=a&b@c",
                "postgres://db/app?password=***",
            ),
            (
                "redis+unix://user:pw@/run/redis.sock",
                "redis+unix://user:***@/run/redis.sock",
            ),
            (
                "redis+unix://:pw@/run/redis.sock?db=1",
                "redis+unix://:***@/run/redis.sock?db=1",
            ),
            (
                "redis+unix:///run/redis.sock?db=1&pass=pw&user=u",
                "redis+unix:///run/redis.sock?db=1&pass=***&user=u",
            ),
            (
                "unix:///run/redis.sock?pass=p@w",
                "unix:///run/redis.sock?pass=***",
            ),
        ] {
            assert_eq!(url(input), want, "{input}");
        }
    }

    #[test]
    fn arguments_carrying_a_password_are_found_whole_and_after_equals() {
        let parts = secret_parts("mine=postgres://u:pw@h/db");
        assert!(parts.contains(&(
            "postgres://u:pw@h/db".to_string(),
            "postgres://u:***@h/db".to_string()
        )));
        assert!(secret_parts("u:PW@127.0.0.1")
            .contains(&("u:PW@127.0.0.1".to_string(), "u:***@127.0.0.1".to_string())));
        assert!(secret_parts("--format=json").is_empty());
        assert!(secret_parts("/etc/postgresql/15/main").is_empty());
        assert!(secret_parts("8GiB").is_empty());
    }

    #[test]
    fn a_typed_password_is_searched_only_as_a_whole_word() {
        assert_eq!(
            replace_word("/tmp/x/postgres:/u:Sup3rPW@h/db", "Sup3rPW"),
            "/tmp/x/postgres:/u:***@h/db"
        );
        assert_eq!(replace_word("pg_version", "version"), "pg_version");
        assert_eq!(replace_word("a versions b", "version"), "a versions b");
        assert_eq!(
            passwords_in("mine=postgres://u:pw1234@h/db"),
            vec!["pw1234"]
        );
        assert_eq!(passwords_in("host=h password=abcdef"), vec!["abcdef"]);
    }

    #[test]
    fn acl_rules_hide_passwords_and_hashes() {
        assert_eq!(
            acl_rules("alice on >s3cret #abcd ~* +@all"),
            "alice on >*** #*** ~* +@all"
        );
        // The reader keeps the arguments joined, without their quotes.
        assert_eq!(acl_rules("bob on >a b ~* +@all"), "bob on >*** ~* +@all");
        assert_eq!(
            secrets_in(Holds::AclRules, "bob on >p a s s ~*", None),
            vec!["p a s s".to_string()]
        );
        // With Redis's own split, a quoted password is one argument.
        let args: Vec<String> = ["bob", "on", ">p a s s", "~*"].map(String::from).into();
        let found = secrets_in(Holds::AclRules, "bob on >p a s s ~*", Some(&args));
        assert_eq!(found[0], ">p a s s");
        assert!(found.contains(&"p a s s".to_string()));
    }

    #[test]
    fn values_mask_in_display_debug_and_json() {
        let v = Value::new(Scope::Redis, "requirepass", "hunter2");
        assert_eq!(v.to_string(), MASK);
        assert_eq!(format!("{v:?}"), "\"***\"");
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"***\"");
        assert_eq!(v.expose(), "hunter2");
        let p = Value::new(Scope::Redis, "maxmemory", "1gb");
        assert_eq!(p.to_string(), "1gb");
        let evil = Value::new(Scope::Postgres, "work_mem", "4MB\x1b]0;pwned\x07");
        assert_eq!(evil.to_string(), "4MB\\u{1b}]0;pwned\\u{7}");
        assert_eq!(
            serde_json::to_string(&evil).unwrap(),
            "\"4MB\\u001b]0;pwned\\u0007\""
        );
    }

    #[test]
    fn a_name_never_echoes_what_follows_an_equals_sign() {
        assert_eq!(name("secret_token=ghp_abc"), "secret_token=...");
        assert_eq!(name("maxmemory"), "maxmemory");
        assert_eq!(name(&"x".repeat(80)), format!("{}...", "x".repeat(64)));
        assert_eq!(name("a\nb"), "a\\u{a}b");
    }
}
