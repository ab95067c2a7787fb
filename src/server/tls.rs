//! TLS (wss://) for the signalling server: rustls with the ring provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// TLS set-up failures, naming the file involved.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file holds no usable PEM item of the expected kind.
    #[error("{path}: {what}")]
    Pem {
        /// File.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// rustls rejected the material.
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Build a TLS acceptor from a PEM certificate chain and a PEM private key.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let cert_pem = read(cert)?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: cert.to_owned(),
            what: format!("invalid PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: cert.to_owned(),
            what: "no CERTIFICATE block found".into(),
        });
    }
    let key_pem = read(key)?;
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| TlsError::Pem {
            path: key.to_owned(),
            what: format!("invalid PEM: {e}"),
        })?
        .ok_or_else(|| TlsError::Pem {
            path: key.to_owned(),
            what: "no PRIVATE KEY block found".into(),
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A client config trusting exactly the certificates in a PEM file (for self-signed
/// deployments and tests). Production clients can pass their own `rustls::ClientConfig`.
pub fn client_config_trusting(ca_pem: &Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let pem = read(ca_pem)?;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut pem.as_slice()) {
        let c = c.map_err(|e| TlsError::Pem {
            path: ca_pem.to_owned(),
            what: format!("invalid PEM: {e}"),
        })?;
        roots.add(c)?;
    }
    if roots.is_empty() {
        return Err(TlsError::Pem {
            path: ca_pem.to_owned(),
            what: "no CERTIFICATE block found".into(),
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
