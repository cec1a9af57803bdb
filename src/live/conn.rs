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

use crate::error::InputError;

/// A server to talk to, with its URL shown without the password.
#[derive(Clone, Debug)]
pub enum Target {
    Postgres {
        config: Box<tokio_postgres::Config>,
        tls: TlsMode,
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

/// Replaces the password in a URL (`user:secret@` -> `user:***@`).
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let auth_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..auth_end].rfind('@') else {
        return redact_query(url);
    };
    let userinfo = &rest[..at];
    let shown = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => userinfo.to_string(),
    };
    redact_query(&format!(
        "{}{}{}",
        &url[..scheme_end + 3],
        shown,
        &rest[at..]
    ))
}

fn redact_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, q)) => {
            let parts: Vec<String> = q
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k == "password" => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{base}?{}", parts.join("&"))
        }
        None => url.to_string(),
    }
}

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

/// Parses one target URL.
pub fn parse_target(s: &str) -> Result<Target> {
    let shown = redact(s);
    if s.starts_with("redis://") || s.starts_with("rediss://") {
        redis::Client::open(s).map_err(|e| {
            InputError::plain(
                format!("invalid Redis URL `{shown}`: {e}"),
                "write it as redis://[:password@]host:port[/db]",
            )
        })?;
        return Ok(Target::Redis {
            url: s.to_string(),
            shown,
        });
    }
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        let (clean, mode) = take_sslmode(s);
        let config: tokio_postgres::Config = clean.parse().map_err(|e| {
            InputError::plain(
                format!("invalid PostgreSQL URL `{shown}`: {e}"),
                "write it as postgres://user[:password]@host:port/dbname[?sslmode=require]",
            )
        })?;
        return Ok(Target::Postgres {
            config: Box::new(config),
            tls: mode.unwrap_or(TlsMode::Prefer),
            shown,
        });
    }
    Err(InputError::plain(
        format!("`{shown}` is not a server URL"),
        "targets are postgres://... or redis://... (rediss:// for TLS)",
    )
    .into())
}

fn tls_mode(v: &str) -> Option<TlsMode> {
    Some(match v {
        "disable" | "allow" => TlsMode::Disable,
        "prefer" => TlsMode::Prefer,
        "require" => TlsMode::Require,
        "verify-ca" => TlsMode::VerifyCa,
        "verify-full" => TlsMode::VerifyFull,
        _ => return None,
    })
}

/// Removes `sslmode=...` from a URL's query, returning what it said.
fn take_sslmode(url: &str) -> (String, Option<TlsMode>) {
    let Some((base, q)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut mode = None;
    let kept: Vec<&str> = q
        .split('&')
        .filter(|kv| match kv.split_once('=') {
            Some(("sslmode", v)) => {
                mode = tls_mode(v);
                false
            }
            _ => true,
        })
        .collect();
    if kept.is_empty() {
        (base.to_string(), mode)
    } else {
        (format!("{base}?{}", kept.join("&")), mode)
    }
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
                InputError::plain(
                    format!("PGPORT `{p}` is not a port"),
                    "set PGPORT to a number",
                )
            })?);
        }
        let user = var("PGUSER")
            .or_else(|| var("USER"))
            .unwrap_or_else(|| "postgres".into());
        c.user(&user);
        if let Some(pw) = var("PGPASSWORD") {
            c.password(pw);
        }
        let db = var("PGDATABASE").unwrap_or_else(|| user.clone());
        c.dbname(&db);
        let tls = var("PGSSLMODE")
            .and_then(|m| tls_mode(&m))
            .unwrap_or(TlsMode::Prefer);
        let port = var("PGPORT").unwrap_or_else(|| "5432".into());
        out.push(Target::Postgres {
            config: Box::new(c),
            tls,
            shown: format!("postgres://{user}@{host}:{port}/{db} (from PG* variables)"),
        });
    }
    if let Some(url) = var("REDIS_URL") {
        out.push(parse_target(&url)?);
    }
    Ok(out)
}

/// Accepts any certificate: `sslmode=require` encrypts without checking
/// who is at the other end, as libpq does.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Checks the chain against the roots but not the host name (verify-ca).
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end: &CertificateDer<'_>,
        inter: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        match self.0.verify_server_cert(end, inter, name, ocsp, now) {
            Err(TlsError::InvalidCertificate(rustls::CertificateError::NotValidForName)) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

fn rustls_config(mode: TlsMode) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // A CA the user points at, as libpq's sslrootcert.
    if let Ok(path) = std::env::var("PGSSLROOTCERT") {
        use rustls::pki_types::pem::PemObject;
        for der in CertificateDer::pem_file_iter(&path)
            .with_context(|| format!("cannot read PGSSLROOTCERT `{path}`"))?
        {
            let der = der.with_context(|| format!("PGSSLROOTCERT `{path}` is not PEM"))?;
            roots
                .add(der)
                .map_err(|e| anyhow!("PGSSLROOTCERT `{path}`: {e}"))?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("TLS setup: {e}"))?;
    let roots = Arc::new(roots);
    Ok(match mode {
        TlsMode::VerifyFull => builder.with_root_certificates(roots).with_no_client_auth(),
        TlsMode::VerifyCa => {
            let inner =
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| anyhow!("TLS setup: {e}"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
                .with_no_client_auth()
        }
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth(),
    })
}

/// A connected PostgreSQL client; the connection task runs beside it.
pub async fn connect_postgres(
    config: &tokio_postgres::Config,
    tls: TlsMode,
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
        _ => Some(rustls_config(tls)?),
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
        Ok(Err(e)) => Err(anyhow!(InputError::plain(
            format!("cannot connect to {shown}: {}", pg_error_text(&e)),
            "check the host, port, user and password (PGPASSWORD or the URL), and pg_hba.conf",
        ))),
        Err(_) => Err(anyhow!(InputError::plain(
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
        Ok(Err(e)) => Err(anyhow!(InputError::plain(
            format!(
                "cannot connect to {shown}: {}",
                e.to_string().replace(url, shown)
            ),
            "check the host, port and password (in the URL: redis://:password@host:port)",
        ))),
        Err(_) => Err(anyhow!(InputError::plain(
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
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(
            redact("redis://:pw@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(redact("postgres://app@db/app"), "postgres://app@db/app");
        assert_eq!(
            redact("postgres://db/app?user=x&password=hunter2&sslmode=require"),
            "postgres://db/app?user=x&password=***&sslmode=require"
        );
    }

    #[test]
    fn sslmode_is_taken_out_of_the_url() {
        let (url, mode) = take_sslmode("postgres://a@h/db?sslmode=verify-full&application_name=x");
        assert_eq!(url, "postgres://a@h/db?application_name=x");
        assert_eq!(mode, Some(TlsMode::VerifyFull));
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
}
