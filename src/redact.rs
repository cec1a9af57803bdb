//! Passwords never reach the screen. Two layers: `redact` hides the
//! password of anything shaped like a connection string (URL userinfo,
//! `password=` parameters, `user:pw@host`), and `scrub` removes, from any
//! text about to be printed, every password the command line and the
//! environment carry, whatever shape it was given in.

use std::sync::OnceLock;

const MASK: &str = "***";

/// `scheme://user:pw@host/db?password=pw` -> `scheme://user:***@host/db?password=***`;
/// `user:pw@host` -> `user:***@host`; `... password=pw ...` -> `password=***`.
/// A URL whose "port" is not a number (`postgres://u:pw`) is masked after
/// the colon: it is more likely a password given without a host.
pub fn redact(s: &str) -> String {
    let s = redact_params(s);
    match s.find("://") {
        Some(i) => {
            let (scheme, rest) = s.split_at(i + 3);
            let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (auth, tail) = rest.split_at(auth_end);
            format!("{scheme}{}{tail}", redact_authority(auth, true))
        }
        None if s.contains('@') => {
            // `user:pw@host`, with no scheme.
            let at = s.rfind('@').unwrap_or(0);
            let (userinfo, host) = s.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:{MASK}{host}"),
                None => s,
            }
        }
        None => s,
    }
}

fn redact_authority(auth: &str, url: bool) -> String {
    if let Some(at) = auth.rfind('@') {
        let (userinfo, host) = auth.split_at(at);
        return match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{MASK}{host}"),
            None => auth.to_string(),
        };
    }
    // No '@': host[:port]. A non-numeric port is a password in disguise.
    if url && !auth.starts_with('[') {
        if let Some((host, port)) = auth.rsplit_once(':') {
            if !port.is_empty() && !port.chars().all(|c| c.is_ascii_digit()) {
                return format!("{host}:{MASK}");
            }
        }
    }
    auth.to_string()
}

/// `password=...` as a URL query parameter or a conninfo keyword.
fn redact_params(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = find_password_key(rest) {
        let (head, tail) = rest.split_at(i + "password=".len());
        out.push_str(head);
        out.push_str(MASK);
        let end = if let Some(q) = tail.strip_prefix('\'') {
            // conninfo quoting: 'a b', with \' and \\ escapes
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((j, c)) = chars.next() {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '\'' => {
                        end = j + 1;
                        break;
                    }
                    _ => {}
                }
            }
            1 + end
        } else {
            tail.find(['&', ' ', '#', '\t', '\n']).unwrap_or(tail.len())
        };
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn find_password_key(s: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("password=") {
        let at = from + i;
        let before = lower[..at].chars().last();
        if before.is_none_or(|c| matches!(c, '?' | '&' | ' ' | '\t' | '\'' | '"')) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The passwords inside one argument, in every shape `redact` knows.
fn secrets_in(arg: &str) -> Vec<String> {
    let mut out = Vec::new();
    // password=...
    let mut rest = arg;
    while let Some(i) = find_password_key(rest) {
        let tail = &rest[i + "password=".len()..];
        let end = tail.find(['&', ' ', '#']).unwrap_or(tail.len());
        let v = tail[..end].trim_matches('\'');
        out.push(v.to_string());
        rest = &tail[end..];
    }
    let auth = match arg.find("://") {
        Some(i) => {
            let r = &arg[i + 3..];
            &r[..r.find(['/', '?', '#']).unwrap_or(r.len())]
        }
        None => arg,
    };
    if let Some(at) = auth.rfind('@') {
        if let Some((_, pw)) = auth[..at].split_once(':') {
            out.push(pw.to_string());
            if let Some(decoded) = percent_decode(pw) {
                out.push(decoded);
            }
        }
    } else if arg.contains("://") {
        if let Some((_, port)) = auth.rsplit_once(':') {
            if !port.chars().all(|c| c.is_ascii_digit()) {
                out.push(port.to_string());
            }
        }
    }
    out.retain(|s| s.chars().count() >= 2);
    out
}

fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return None;
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Every password this process was given: in its arguments (URLs,
/// `user:pw@host`, `password=`), PGPASSWORD and REDIS_URL.
fn secrets() -> &'static [String] {
    static SECRETS: OnceLock<Vec<String>> = OnceLock::new();
    SECRETS.get_or_init(|| {
        let mut out: Vec<String> = std::env::args()
            .skip(1)
            .flat_map(|a| secrets_in(&a))
            .collect();
        if let Ok(pw) = std::env::var("PGPASSWORD") {
            if pw.chars().count() >= 2 {
                out.push(pw);
            }
        }
        if let Ok(url) = std::env::var("REDIS_URL") {
            out.extend(secrets_in(&url));
        }
        // Longest first, so a password containing another is masked whole.
        out.sort_by_key(|s| std::cmp::Reverse(s.len()));
        out.dedup();
        out
    })
}

/// `text` with every known password masked: for anything printed.
pub fn scrub(text: &str) -> String {
    let mut s = redact_params(text);
    for secret in secrets() {
        if s.contains(secret.as_str()) {
            s = s.replace(secret.as_str(), MASK);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_of_password_is_masked() {
        for (input, want) in [
            (
                "postgres://app:s3cret@db:5432/app",
                "postgres://app:***@db:5432/app",
            ),
            (
                "redis://:pw@127.0.0.1:6379/0",
                "redis://:***@127.0.0.1:6379/0",
            ),
            ("postgres://app@db/app", "postgres://app@db/app"),
            (
                "postgres://db/app?user=x&password=hunter2&sslmode=require",
                "postgres://db/app?user=x&password=***&sslmode=require",
            ),
            ("u:PW@127.0.0.1", "u:***@127.0.0.1"),
            (":PW@127.0.0.1:6379", ":***@127.0.0.1:6379"),
            ("postgres://u:PW", "postgres://u:***"),
            (
                "postgres://127.0.0.1:5432/db",
                "postgres://127.0.0.1:5432/db",
            ),
            (
                "host=db password='a b' user=x",
                "host=db password=*** user=x",
            ),
            ("host=db password=abc", "host=db password=***"),
        ] {
            assert_eq!(redact(input), want, "{input}");
            for s in secrets_in(input) {
                assert!(!redact(input).contains(&s), "{input}: {s}");
            }
        }
    }

    #[test]
    fn secrets_are_found_in_arguments() {
        assert_eq!(secrets_in("postgres://u:PW@h/db"), vec!["PW"]);
        assert_eq!(secrets_in("u:P%40W@h"), vec!["P%40W", "P@W"]);
        assert_eq!(secrets_in("postgres://u:PW"), vec!["PW"]);
        assert!(secrets_in("postgres://h:5432/db").is_empty());
    }
}
