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

pub async fn pg_alter(
    c: &tokio_postgres::Client,
    name: &str,
    value: Option<&str>,
    t: Duration,
) -> Result<()> {
    let sql = match value {
        Some(v) => format!("ALTER SYSTEM SET {} = {}", ident(name), literal(v)),
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
