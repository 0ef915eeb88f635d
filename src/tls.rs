//! HTTPS for our HTTP listeners: rustls configuration and certificate reload.
//!
//! The certificate lives in an `ArcSwap` behind a rustls `ResolvesServerCert`, so new
//! handshakes pick up a renewed certificate while connections in flight keep theirs. A
//! task polls the files' modification times and swaps in a pair that loads and matches;
//! a broken pair is logged and the old one kept. ALPN offers HTTP/2 and HTTP/1.1.
//! Serving a router over it is [`crate::http::serve`]'s.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::config::TlsConfig;

/// Why certificates could not be loaded or made.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("{path}: no certificate in the file")]
    NoCertificate { path: PathBuf },
    #[error("{key}: key does not fit {cert}: {message}")]
    Key {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("making a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The certificate in use and where it comes from.
pub struct CertStore {
    current: ArcSwap<CertifiedKey>,
    cert_path: PathBuf,
    key_path: PathBuf,
    /// Modification times last seen, to notice changes.
    seen: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl CertStore {
    /// Loads the pair; an error here stops the server from starting.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let seen = (modified(cert_path), modified(key_path));
        let key = load_pair(cert_path, key_path)?;
        Ok(Self {
            current: ArcSwap::from_pointee(key),
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            seen: Mutex::new(seen),
        })
    }

    /// Reloads when either file changed since last seen. `Ok(true)`: a new certificate
    /// is in use; an error leaves the old one serving.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = (modified(&self.cert_path), modified(&self.key_path));
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == now {
                return Ok(false);
            }
            // Remember even a failed attempt: retry on the next change, not every tick
            // (a half-written pair fails once and loads when the second file lands).
            *seen = now;
        }
        let key = load_pair(&self.cert_path, &self.key_path)?;
        self.current.store(Arc::new(key));
        Ok(true)
    }

    /// The certificate chain now served (for tests and logs).
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load_pair(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    fn pem(path: &Path) -> impl Fn(rustls_pki_types::pem::Error) -> TlsError + '_ {
        move |e| TlsError::Pem {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
    let certs = CertificateDer::pem_file_iter(cert_path)
        .map_err(pem(cert_path))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem(cert_path))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_path_buf(),
        });
    }
    let key_error = |message: String| TlsError::Key {
        cert: cert_path.to_path_buf(),
        key: key_path.to_path_buf(),
        message,
    };
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(pem(key_path))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| key_error(e.to_string()))?;
    let certified = CertifiedKey::new(certs, signer);
    certified
        .keys_match()
        .map_err(|e| key_error(e.to_string()))?;
    Ok(certified)
}

/// TLS for one or more listeners: the acceptor and the store behind it.
#[derive(Clone)]
pub struct Tls {
    pub acceptor: TlsAcceptor,
    pub store: Arc<CertStore>,
}

impl Tls {
    /// Loads the configured pair and builds the rustls server config (HTTP/2 and
    /// HTTP/1.1 by ALPN).
    pub fn from_config(config: &TlsConfig) -> Result<Self, TlsError> {
        let store = Arc::new(CertStore::load(&config.cert, &config.key)?);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(store.clone());
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            store,
        })
    }

    /// Polls the certificate files every `interval` and swaps in a changed pair.
    pub fn spawn_reload(&self, interval: Duration, shutdown: CancellationToken) -> JoinHandle<()> {
        let store = self.store.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(interval) => {}
                }
                match store.reload_if_changed() {
                    Ok(true) => {
                        tracing::info!(cert = %store.cert_path.display(), "TLS certificate reloaded")
                    }
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(%error, "TLS certificate reload failed; keeping the old one");
                    }
                }
            }
        })
    }
}

/// Writes a self-signed certificate and key for local use (`cert.pem`, `key.pem` in
/// `dir`) valid for `names` (DNS names or IP addresses). Returns the two paths.
pub fn write_self_signed(dir: &Path, names: &[String]) -> Result<(PathBuf, PathBuf), TlsError> {
    let generated = rcgen::generate_simple_self_signed(names.to_vec())?;
    let write = |path: PathBuf, text: String| -> Result<PathBuf, TlsError> {
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, text))
            .map_err(|source| TlsError::Write {
                path: path.clone(),
                source,
            })?;
        Ok(path)
    };
    let cert = write(dir.join("cert.pem"), generated.cert.pem())?;
    let key = write(dir.join("key.pem"), generated.signing_key.serialize_pem())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).map_err(
            |source| TlsError::Write {
                path: key.clone(),
                source,
            },
        )?;
    }
    Ok((cert, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["localhost".into(), "127.0.0.1".into()]
    }

    #[test]
    fn self_signed_pair_loads_and_serves() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_self_signed(dir.path(), &names()).unwrap();
        let tls = Tls::from_config(&TlsConfig {
            cert,
            key,
            reload_interval_ms: 1000,
            admin: false,
        })
        .unwrap();
        assert_eq!(tls.store.current().cert.len(), 1);
    }

    #[test]
    fn changed_files_are_reloaded_and_a_broken_pair_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_self_signed(dir.path(), &names()).unwrap();
        let store = CertStore::load(&cert, &key).unwrap();
        let first = store.current().cert[0].clone();
        assert!(!store.reload_if_changed().unwrap(), "nothing changed yet");

        // A new pair (mtimes are set explicitly: coarse clocks may not tick between writes).
        write_self_signed(dir.path(), &names()).unwrap();
        let later = SystemTime::now() + Duration::from_secs(5);
        for path in [&cert, &key] {
            std::fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(later)
                .unwrap();
        }
        assert!(store.reload_if_changed().unwrap());
        let second = store.current().cert[0].clone();
        assert_ne!(first, second);

        std::fs::write(&key, "not a key").unwrap();
        let broken = std::fs::File::options().write(true).open(&key).unwrap();
        broken.set_modified(later + Duration::from_secs(5)).unwrap();
        assert!(store.reload_if_changed().is_err());
        assert_eq!(store.current().cert[0], second, "old pair still served");
    }

    #[test]
    fn key_of_another_certificate_is_refused() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let (cert, _) = write_self_signed(a.path(), &names()).unwrap();
        let (_, key) = write_self_signed(b.path(), &names()).unwrap();
        let err = CertStore::load(&cert, &key).unwrap_err();
        assert!(matches!(err, TlsError::Key { .. }), "{err}");
    }
}
