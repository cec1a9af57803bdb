//! Connections to live servers: targets from URLs or the usual environment
//! variables, TLS with rustls honouring `sslmode`, a timeout on connecting
//! and on every query, and passwords never shown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error as TlsError, SignatureScheme};
use tokio_postgres::config::{Host, SslMode};

use crate::error::Error;

/// A server to talk to, with its URL shown without the password.
#[derive(Clone, Debug)]
pub enum Target {
    Postgres {
        config: Box<tokio_postgres::Config>,
        tls: TlsMode,
        /// A CA file to trust (`sslrootcert`, else PGSSLROOTCERT).
        root_cert: Option<String>,
        shown: String,
    },
    Redis {
        url: String,
        shown: String,
    },
}

impl Target {
    pub fn shown(&self) -> &str {
        match self {
            Target::Postgres { shown, .. } | Target::Redis { shown, .. } => shown,
        }
    }

    /// Whether the server runs on this machine (so its RAM is ours).
    pub fn is_local(&self) -> bool {
        let local = |h: &str| {
            h == "localhost"
                || h.starts_with("127.")
                || h == "::1"
                || h == "[::1]"
                || h.starts_with('/')
        };
        match self {
            Target::Postgres { config, .. } => config.get_hosts().iter().all(|h| match h {
                Host::Tcp(name) => local(name),
                Host::Unix(_) => true,
            }),
            Target::Redis { url, .. } => url::host(url).is_none_or(local),
        }
    }
}

/// `sslmode` as libpq spells it; tokio-postgres knows only the first three.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A URL as it may be shown: its password masked.
pub use crate::secret::url as redact;

mod url {
    /// The host of `scheme://[user[:pw]@]host[:port]/...`.
    pub fn host(url: &str) -> Option<&str> {
        let rest = &url[url.find("://")? + 3..];
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let hostport = rest[..auth_end].rsplit('@').next()?;
        if hostport.starts_with('[') {
            return hostport
                .split(']')
                .next()
                .map(|h| h.trim_start_matches('['));
        }
        let h = hostport.split(':').next()?;
        (!h.is_empty()).then_some(h)
    }
}

/// The `sslmode` values libpq accepts, spelled as libpq spells them.
pub const SSLMODES: &str = "disable, allow, prefer, require, verify-ca, verify-full";

/// `sslmode` as libpq reads it: exact, lowercase, hyphenated. Anything
/// else is an error, never a silent fallback to plain text.
pub fn tls_mode(v: &str, from: &str) -> Result<TlsMode, Error> {
    Ok(match v {
        "disable" | "allow" => TlsMode::Disable,
        "prefer" => TlsMode::Prefer,
        "require" => TlsMode::Require,
        "verify-ca" => TlsMode::VerifyCa,
        "verify-full" => TlsMode::VerifyFull,
        _ => {
            return Err(Error::plain(
                format!("invalid sslmode `{}` in {from}", v.escape_debug()),
                format!(
                    "sslmode is one of {SSLMODES} (lowercase, with hyphens, as libpq spells them)"
                ),
            ))
        }
    })
}

/// Parses one target URL.
pub fn parse_target(s: &str) -> Result<Target> {
    let shown = redact(s);
    if s.starts_with("redis://") || s.starts_with("rediss://") {
        redis::Client::open(s).map_err(|e| {
            Error::plain(
                format!(
                    "invalid Redis URL `{shown}`: {}",
                    e.to_string().replace(s, &shown)
                ),
                "write it as redis://[:password@]host:port[/db]",
            )
        })?;
        return Ok(Target::Redis {
            url: s.to_string(),
            shown,
        });
    }
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        let (clean, params) = take_tls_params(s)?;
        let mut config: tokio_postgres::Config =
            clean.parse().map_err(|e: tokio_postgres::Error| {
                Error::plain(
                    format!(
                        "invalid PostgreSQL URL `{shown}`: {}",
                        e.to_string().replace(s, &shown)
                    ),
                    "write it as postgres://user[:password]@host:port/dbname[?sslmode=require]",
                )
            })?;
        if config.get_password().is_none() {
            if let Some(pw) = password_for(&config) {
                config.password(pw);
            }
        }
        let tls = match params.sslmode.as_deref() {
            Some(m) => tls_mode(m, "the URL")?,
            None => match env_sslmode()? {
                Some(m) => m,
                None => TlsMode::Prefer,
            },
        };
        return Ok(Target::Postgres {
            config: Box::new(config),
            tls,
            root_cert: params.sslrootcert.or_else(|| {
                std::env::var("PGSSLROOTCERT")
                    .ok()
                    .filter(|v| !v.is_empty())
            }),
            shown,
        });
    }
    Err(Error::plain(
        format!("`{shown}` is not a server URL"),
        "targets are postgres://... or redis://... (rediss:// for TLS)",
    )
    .into())
}

/// PGSSLMODE, checked like a URL's sslmode.
fn env_sslmode() -> Result<Option<TlsMode>, Error> {
    match std::env::var("PGSSLMODE") {
        Ok(v) if !v.is_empty() => tls_mode(&v, "PGSSLMODE").map(Some),
        _ => Ok(None),
    }
}

/// The TLS parameters dbtune handles itself, taken out of a URL's query.
#[derive(Debug, Default, PartialEq)]
struct TlsParams {
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

/// Removes `sslmode` and `sslrootcert` from a URL's query (tokio-postgres
/// knows only three sslmodes and no sslrootcert); client certificates are
/// refused rather than silently ignored.
fn take_tls_params(url: &str) -> Result<(String, TlsParams), Error> {
    let Some((base, q)) = url.split_once('?') else {
        return Ok((url.to_string(), TlsParams::default()));
    };
    let mut params = TlsParams::default();
    let mut kept = Vec::new();
    for kv in q.split('&') {
        match kv.split_once('=') {
            Some(("sslmode", v)) => params.sslmode = Some(v.to_string()),
            Some(("sslrootcert", v)) => params.sslrootcert = Some(v.to_string()),
            Some(("sslcert" | "sslkey" | "sslpassword", _)) => {
                return Err(Error::plain(
                    "client certificates (sslcert, sslkey) are not supported by dbtune",
                    "authenticate with a password (PGPASSWORD or the URL) or use a local socket",
                ))
            }
            _ => kept.push(kv),
        }
    }
    let clean = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((clean, params))
}

/// Targets from the environment when none are given: PGHOST, PGPORT,
/// PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE (any of them), and REDIS_URL.
pub fn env_targets() -> Result<Vec<Target>> {
    let mut out = Vec::new();
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if [
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGPASSWORD",
        "PGSSLMODE",
    ]
    .iter()
    .any(|k| var(k).is_some())
    {
        let mut c = tokio_postgres::Config::new();
        let host = var("PGHOST").unwrap_or_else(|| "/var/run/postgresql".into());
        c.host(&host);
        if let Some(p) = var("PGPORT") {
            c.port(p.parse().map_err(|_| {
                Error::plain(
                    format!("PGPORT `{p}` is not a port"),
                    "set PGPORT to a number",
                )
            })?);
        }
        let user = var("PGUSER")
            .or_else(|| var("USER"))
            .unwrap_or_else(|| "postgres".into());
        c.user(&user);
        let db = var("PGDATABASE").unwrap_or_else(|| user.clone());
        c.dbname(&db);
        if let Some(pw) = password_for(&c) {
            c.password(pw);
        }
        let tls = env_sslmode()?.unwrap_or(TlsMode::Prefer);
        let port = var("PGPORT").unwrap_or_else(|| "5432".into());
        out.push(Target::Postgres {
            config: Box::new(c),
            tls,
            root_cert: var("PGSSLROOTCERT"),
            shown: redact(&format!(
                "postgres://{user}@{host}:{port}/{db} (from PG* variables)"
            )),
        });
    }
    if let Some(url) = var("REDIS_URL") {
        out.push(parse_target(&url)?);
    }
    Ok(out)
}

/// The password libpq would use for a connection whose URL gives none:
/// PGPASSWORD, else the first matching line of the password file
/// (PGPASSFILE, else ~/.pgpass), which libpq skips when group or others
/// may read it.
fn password_for(config: &tokio_postgres::Config) -> Option<Vec<u8>> {
    if let Some(pw) = std::env::var_os("PGPASSWORD").filter(|v| !v.is_empty()) {
        return Some(pw.into_encoded_bytes());
    }
    let file = match std::env::var_os("PGPASSFILE").filter(|v| !v.is_empty()) {
        Some(f) => std::path::PathBuf::from(f),
        None => std::path::PathBuf::from(std::env::var_os("HOME")?).join(".pgpass"),
    };
    let meta = std::fs::metadata(&file).ok()?;
    {
        use std::os::unix::fs::PermissionsExt;
        if !meta.is_file() {
            return None;
        }
        if meta.permissions().mode() & 0o077 != 0 {
            crate::note!(
                "warning: password file `{}` has group or world access and is ignored, as libpq \
                 ignores it; permissions should be u=rw (0600) or less",
                file.display()
            );
            return None;
        }
    }
    let text = crate::input::read_text(&file, "password file", crate::input::MAX_CONFIG).ok()?;
    // libpq: a socket connection matches the host name `localhost`.
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        _ => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or_default();
    let db = config.get_dbname().unwrap_or(user);
    pgpass_lookup(&text, &host, &port, db, user).map(String::into_bytes)
}

/// The password of the first `host:port:database:user:password` line
/// that matches, as libpq's passwordFromFile reads it: a field that is
/// exactly `*` matches anything (an escaped `\*` is a star); `\:` and
/// `\\` are a colon and a backslash; the password ends at the next
/// colon that is not escaped (a trailing `:` is not part of it).
fn pgpass_lookup(text: &str, host: &str, port: &str, db: &str, user: &str) -> Option<String> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        // Each field's text and whether it was a bare `*`.
        let mut fields: Vec<(String, bool)> = Vec::new();
        let mut field = String::new();
        let mut escaped_any = false;
        let mut chars = line.chars();
        let mut ended = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        field.push(n);
                        escaped_any = true;
                    }
                }
                ':' => {
                    let star = field == "*" && !escaped_any;
                    fields.push((std::mem::take(&mut field), star));
                    escaped_any = false;
                    if fields.len() == 5 {
                        ended = true;
                        break;
                    }
                }
                _ => field.push(c),
            }
        }
        if !ended {
            let star = field == "*" && !escaped_any;
            fields.push((field, star));
        }
        if fields.len() < 5 {
            continue;
        }
        let matches = |(f, star): &(String, bool), v: &str| *star || f == v;
        if matches(&fields[0], host)
            && matches(&fields[1], port)
            && matches(&fields[2], db)
            && matches(&fields[3], user)
        {
            return Some(fields[4].0.clone());
        }
    }
    None
}

/// The two checks libpq makes short of verify-full: `sslmode=require`
/// encrypts without checking who is at the other end (`chain` None), and
/// `verify-ca` checks the chain against the roots but not the host name.
/// Signatures are always checked with the provider's algorithms.
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end: &CertificateDer<'_>,
        inter: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // rustls checks the chain first and the name last: a name error
        // means the chain is good, which is all verify-ca asks. Newer
        // webpki reports it with its context, so both variants count.
        match chain.verify_server_cert(end, inter, name, ocsp, now) {
            Err(TlsError::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(m, c, d, algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(m, c, d, algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn rustls_config(mode: TlsMode, root_cert: Option<&str>) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // A CA the user points at, as libpq's sslrootcert.
    if let Some(path) = root_cert {
        use rustls::pki_types::pem::PemObject;
        let pem = crate::input::read_bytes(
            std::path::Path::new(path),
            "root certificate (sslrootcert)",
            crate::input::MAX_DOCUMENT,
        )?;
        let mut any = false;
        for der in CertificateDer::pem_slice_iter(&pem) {
            let der = der.with_context(|| format!("sslrootcert `{path}` is not PEM"))?;
            roots
                .add(der)
                .map_err(|e| anyhow!("sslrootcert `{path}`: {e}"))?;
            any = true;
        }
        if !any {
            return Err(Error::plain(
                format!("sslrootcert `{path}` holds no certificate"),
                "point it at the PEM file of the CA that signed the server's certificate",
            )
            .into());
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("TLS setup: {e}"))?;
    let roots = Arc::new(roots);
    Ok(match mode {
        TlsMode::VerifyFull => builder.with_root_certificates(roots).with_no_client_auth(),
        TlsMode::VerifyCa => {
            let chain = rustls::client::WebPkiServerVerifier::builder_with_provider(
                roots,
                provider.clone(),
            )
            .build()
            .map_err(|e| anyhow!("TLS setup: {e}"))?;
            let verifier = Lenient {
                chain: Some(chain),
                provider,
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth()
        }
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Lenient {
                chain: None,
                provider,
            }))
            .with_no_client_auth(),
    })
}

/// A connected PostgreSQL client; the connection task runs beside it.
pub async fn connect_postgres(
    config: &tokio_postgres::Config,
    tls: TlsMode,
    root_cert: Option<&str>,
    shown: &str,
    timeout: Duration,
) -> Result<tokio_postgres::Client> {
    let mut config = config.clone();
    config.connect_timeout(timeout);
    config.ssl_mode(match tls {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        _ => SslMode::Require,
    });
    let tls_config = match tls {
        TlsMode::Disable => None,
        _ => Some(rustls_config(tls, root_cert)?),
    };
    let fut = async {
        match tls_config {
            None => {
                let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(conn);
                Ok::<_, tokio_postgres::Error>(client)
            }
            Some(c) => {
                let make = tokio_postgres_rustls::MakeRustlsConnect::new(c);
                let (client, conn) = config.connect(make).await?;
                tokio::spawn(conn);
                Ok(client)
            }
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(anyhow!(Error::plain(
            format!("cannot connect to {shown}: {}", pg_error_text(&e)),
            "check the host, port, user and password (the URL, PGPASSWORD or ~/.pgpass), and pg_hba.conf",
        ))),
        Err(_) => Err(anyhow!(Error::plain(
            format!(
                "cannot connect to {shown}: no answer within {} s",
                timeout.as_secs()
            ),
            "check the host and port, or raise --timeout",
        ))),
    }
}

/// The server's own message when there is one ("password authentication
/// failed for user ..."), which never contains the password.
pub fn pg_error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(&format!(": {inner}"));
                src = inner.source();
            }
            s
        }
    }
}

pub async fn connect_redis(
    url: &str,
    shown: &str,
    timeout: Duration,
) -> Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url).map_err(|e| anyhow!("invalid Redis URL {shown}: {e}"))?;
    let fut = client.get_multiplexed_async_connection();
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(anyhow!(Error::plain(
            format!(
                "cannot connect to {shown}: {}",
                e.to_string().replace(url, shown)
            ),
            "check the host, port and password (in the URL: redis://:password@host:port)",
        ))),
        Err(_) => Err(anyhow!(Error::plain(
            format!(
                "cannot connect to {shown}: no answer within {} s",
                timeout.as_secs()
            ),
            "check the host and port, or raise --timeout",
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_is_taken_out_of_the_url() {
        let (url, p) =
            take_tls_params("postgres://a@h/db?sslmode=verify-full&application_name=x").unwrap();
        assert_eq!(url, "postgres://a@h/db?application_name=x");
        assert_eq!(p.sslmode.as_deref(), Some("verify-full"));
        let t = parse_target("postgres://a:b@127.0.0.1:5/db?sslmode=verify-ca").unwrap();
        assert!(matches!(
            t,
            Target::Postgres {
                tls: TlsMode::VerifyCa,
                ..
            }
        ));
        assert!(t.is_local());
        assert!(!parse_target("redis://10.1.2.3:6379").unwrap().is_local());
    }

    #[test]
    fn pgpass_lines_match_as_libpq_reads_them() {
        let text = "# comment\n\
                    db.example:5432:app:ops:first\n\
                    *:*:*:ops:wild\\:card\\\\x\n\
                    localhost:6543:*:*:socket\n";
        assert_eq!(
            pgpass_lookup(text, "db.example", "5432", "app", "ops").as_deref(),
            Some("first")
        );
        assert_eq!(
            pgpass_lookup(text, "other", "1", "x", "ops").as_deref(),
            Some("wild:card\\x")
        );
        assert_eq!(
            pgpass_lookup(text, "localhost", "6543", "x", "y").as_deref(),
            Some("socket")
        );
        assert_eq!(pgpass_lookup(text, "h", "5432", "x", "y"), None);
        // A trailing colon ends the password; an escaped one is in it; an
        // escaped star is a star, not a wildcard.
        let text = "h1:5432:db:u:pw:\n\
                    h2:5432:db:u:p\\:w\\:\n\
                    \\*:5432:db:u:star\n\
                    *:5432:db:u:any:trailing:junk\n";
        assert_eq!(
            pgpass_lookup(text, "h1", "5432", "db", "u").as_deref(),
            Some("pw")
        );
        assert_eq!(
            pgpass_lookup(text, "h2", "5432", "db", "u").as_deref(),
            Some("p:w:")
        );
        assert_eq!(
            pgpass_lookup(text, "*", "5432", "db", "u").as_deref(),
            Some("star")
        );
        assert_eq!(
            pgpass_lookup(text, "h3", "5432", "db", "u").as_deref(),
            Some("any")
        );
    }

    #[test]
    fn an_sslmode_libpq_would_refuse_is_an_error_not_plain_text() {
        for bad in ["verify_full", "Verify-Full", "bogus", "REQUIRE", ""] {
            let e = parse_target(&format!("postgres://a@127.0.0.1/db?sslmode={bad}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("invalid sslmode"), "{bad}: {e}");
            assert!(e.contains("verify-full"), "{bad}: {e}");
        }
    }
}
