//! How a live setting is changed: ALTER SYSTEM and a reload, CONFIG SET
//! and CONFIG REWRITE, each with its own timeout.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, Result};

use super::state::*;
use super::*;

/// `"name"` for SQL.
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `'value'` for SQL.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// What postgresql.auto.conf holds for these names (last entry wins);
/// needs pg_file_settings, which superusers can read.
pub async fn pg_auto_conf(
    c: &tokio_postgres::Client,
    names: &[String],
    t: Duration,
) -> Result<BTreeMap<String, String>> {
    let rows = pg_query(
        c,
        "SELECT name, setting FROM pg_file_settings WHERE sourcefile LIKE '%postgresql.auto.conf' AND name = ANY($1) ORDER BY seqno",
        &[&names],
        t,
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                r.get::<_, Option<String>>(1).unwrap_or_default(),
            )
        })
        .collect())
}

/// Parameters whose value is a list PostgreSQL quotes element by element
/// (GUC_LIST_QUOTE, asked of the servers 13-18), and whether an unquoted
/// element is an identifier (folded to lower case, ends at a space) or a
/// file name (kept as written, may hold spaces). ALTER SYSTEM SET with
/// one string quotes it whole as one element: `'a, b'` becomes the
/// library `"a, b"` and the server does not start again.
const LIST_QUOTE: &[(&str, ListOf)] = &[
    ("search_path", ListOf::Identifiers),
    ("temp_tablespaces", ListOf::Identifiers),
    ("shared_preload_libraries", ListOf::Files),
    ("local_preload_libraries", ListOf::Files),
    ("session_preload_libraries", ListOf::Files),
    ("oauth_validator_libraries", ListOf::Files),
    ("unix_socket_directories", ListOf::Files),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListOf {
    /// SplitIdentifierString.
    Identifiers,
    /// SplitDirectoriesString.
    Files,
}

fn list_of(name: &str) -> Option<ListOf> {
    let lower = name.to_ascii_lowercase();
    LIST_QUOTE
        .iter()
        .find(|(n, _)| *n == lower)
        .map(|(_, kind)| *kind)
}

/// A list value split into its elements as PostgreSQL splits it
/// (varlena.c): commas between elements, a double-quoted element keeps
/// its case, commas and spaces (`""` is a quote). None when PostgreSQL
/// would refuse the list.
fn split_list(value: &str, kind: ListOf) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = value.trim_start();
    if rest.is_empty() {
        return Some(out);
    }
    loop {
        if let Some(q) = rest.strip_prefix('"') {
            let mut elem = String::new();
            let mut chars = q.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) if q[i + 1..].starts_with('"') => {
                        elem.push('"');
                        chars.next();
                    }
                    Some((i, '"')) => break i + 1,
                    Some((_, c)) => elem.push(c),
                    None => return None,
                }
            };
            out.push(elem);
            rest = q[end..].trim_start();
        } else {
            let end = match kind {
                ListOf::Identifiers => rest.find(|c: char| c == ',' || c.is_whitespace()),
                ListOf::Files => rest.find(','),
            }
            .unwrap_or(rest.len());
            let elem = rest[..end].trim_end();
            if elem.is_empty() {
                return None;
            }
            out.push(match kind {
                ListOf::Identifiers => elem.to_lowercase(),
                ListOf::Files => elem.to_string(),
            });
            rest = rest[end..].trim_start();
        }
        match rest.strip_prefix(',') {
            Some(r) => rest = r.trim_start(),
            None if rest.is_empty() => return Some(out),
            None => return None,
        }
    }
}

/// What ALTER SYSTEM SET is given for `value`: one string, or for a
/// list parameter each element as its own string (which is how the
/// server quotes them one by one). An empty list cannot be given: the
/// server would write `""`, a list of one empty name it then refuses.
pub fn alter_args(name: &str, value: &str) -> Result<Vec<String>, String> {
    if value.contains('\n') {
        // PostgreSQL's own rule: postgresql.auto.conf has no place for it.
        return Err(format!(
            "ALTER SYSTEM refuses a value with a newline for `{name}`; set it in postgresql.conf by hand"
        ));
    }
    let Some(kind) = list_of(name) else {
        return Ok(vec![value.to_string()]);
    };
    match split_list(value, kind) {
        Some(elems) if elems.is_empty() => Err(format!(
            "ALTER SYSTEM cannot set `{name}` to an empty list (PostgreSQL would write '\"\"', a \
             name it cannot load or find); set it in postgresql.conf by hand"
        )),
        Some(elems) => Ok(elems),
        None => Err(format!(
            "`{name}` = {} is not a list PostgreSQL reads (unbalanced quotes or an empty element)",
            crate::secret::escape_controls(value)
        )),
    }
}

/// What postgresql.auto.conf holds after ALTER SYSTEM SET `name` with
/// `args` (flatten_set_variable_args): for a list parameter each element
/// quoted as an identifier when it must be, joined by `, `; else the
/// arguments joined. This is what the next restart reads.
pub fn auto_conf_value(name: &str, args: &[String]) -> String {
    let quoted = list_of(name).is_some();
    args.iter()
        .map(|a| {
            let simple = a.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && a.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
            if quoted && !simple {
                format!("\"{}\"", a.replace('"', "\"\""))
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn pg_alter(
    c: &tokio_postgres::Client,
    name: &str,
    value: Option<&str>,
    t: Duration,
) -> Result<()> {
    let sql = match value {
        Some(v) => {
            let args = alter_args(name, v).map_err(|e| anyhow!("{e}"))?;
            let list: Vec<String> = args.iter().map(|a| literal(a)).collect();
            format!("ALTER SYSTEM SET {} = {}", ident(name), list.join(", "))
        }
        None => format!("ALTER SYSTEM RESET {}", ident(name)),
    };
    timed("ALTER SYSTEM", t, async {
        c.batch_execute(&sql)
            .await
            .map_err(|e| anyhow!("`{sql}` failed: {}", conn::pg_error_text(&e)))
    })
    .await
}

pub async fn pg_reload(c: &tokio_postgres::Client, t: Duration) -> Result<()> {
    pg_query(c, "SELECT pg_reload_conf()", &[], t).await?;
    // The reload is asynchronous: give the postmaster a moment to re-read.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

pub async fn redis_config_set(
    con: &mut redis::aio::MultiplexedConnection,
    name: &str,
    value: &str,
    t: Duration,
) -> Result<(), String> {
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("SET").arg(name).arg(value);
    match tokio::time::timeout(t, cmd.query_async::<()>(con)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", t.as_secs())),
    }
}

pub async fn redis_rewrite(con: &mut redis::aio::MultiplexedConnection, t: Duration) -> Result<()> {
    timed("CONFIG REWRITE", t, async {
        redis::cmd("CONFIG")
            .arg("REWRITE")
            .query_async::<()>(con)
            .await
            .map_err(|e| anyhow!("CONFIG REWRITE failed: {e}"))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_list_parameter_is_given_element_by_element() {
        assert_eq!(
            alter_args(
                "shared_preload_libraries",
                "pg_stat_statements, auto_explain"
            )
            .unwrap(),
            strings(&["pg_stat_statements", "auto_explain"])
        );
        assert_eq!(
            alter_args("search_path", "\"$user\", Public,\"My \"\"S\", x").unwrap(),
            strings(&["$user", "public", "My \"S", "x"])
        );
        assert_eq!(
            alter_args("shared_preload_libraries", "$libdir/my lib ,b").unwrap(),
            strings(&["$libdir/my lib", "b"])
        );
        assert_eq!(
            alter_args("work_mem", "4MB, x").unwrap(),
            strings(&["4MB, x"])
        );
        assert!(alter_args("search_path", "").is_err());
        assert!(alter_args("search_path", "a,,b").is_err());
        assert!(alter_args("search_path", "\"a").is_err());
        // What postgresql.auto.conf then holds, as ALTER SYSTEM writes it.
        assert_eq!(
            auto_conf_value("search_path", &strings(&["$user", "public", "My \"S"])),
            "\"$user\", public, \"My \"\"S\""
        );
        assert_eq!(
            auto_conf_value("shared_preload_libraries", &strings(&["a, b"])),
            "\"a, b\""
        );
        assert_eq!(auto_conf_value("work_mem", &strings(&["4MB"])), "4MB");
    }
}
