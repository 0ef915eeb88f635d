//! Signed requests: proof that a `/resolve` call comes from our app, and not for long.
//!
//! The app (or its backend, through the SDK's token provider) sends `t`, an expiry in
//! unix seconds, and `sign` = lowercase hex HMAC-SHA256(secret, host + "\n" + t), where
//! `host` is the `host` parameter exactly as sent. An expired or too-far-future `t`, or a
//! wrong signature, is refused; comparison is constant-time.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{ConfigError, SigningConfig};

/// The loaded signing secret and policy.
#[derive(Clone)]
pub struct Signing {
    secret: Vec<u8>,
    max_validity_secs: u64,
}

impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signing")
            .field("max_validity_secs", &self.max_validity_secs)
            .finish_non_exhaustive()
    }
}

/// Minimum secret length, so the HMAC key is not guessable.
pub const MIN_SECRET_LEN: usize = 16;

impl Signing {
    pub fn load(config: &SigningConfig) -> Result<Self, ConfigError> {
        let path: &Path = &config.secret_file;
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let secret = text.lines().next().unwrap_or("").trim().as_bytes().to_vec();
        if secret.len() < MIN_SECRET_LEN {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                field: "signing.secret_file",
                message: format!("the secret must be at least {MIN_SECRET_LEN} characters"),
            });
        }
        Ok(Self::new(secret, config.max_validity_secs))
    }

    pub fn new(secret: Vec<u8>, max_validity_secs: u64) -> Self {
        Self {
            secret,
            max_validity_secs,
        }
    }

    fn mac(&self, host: &str, expiry: &str, ip: Option<&str>) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(host.as_bytes());
        if let Some(ip) = ip {
            // `ip=` picks whose answer this is: it must be as signed as the host. It
            // joins the host part, so a signer of (subject, t) signs it unchanged.
            mac.update(b"\n");
            mac.update(ip.as_bytes());
        }
        mac.update(b"\n");
        mac.update(expiry.as_bytes());
        mac
    }

    /// The signature for `host` and `expiry` (what clients compute).
    pub fn sign(&self, host: &str, expiry: &str) -> String {
        hex::encode(self.mac(host, expiry, None).finalize().into_bytes())
    }

    /// The signature of a request that also names the client with `ip=`:
    /// HMAC(secret, host + "\n" + ip + "\n" + t).
    pub fn sign_with_ip(&self, host: &str, expiry: &str, ip: &str) -> String {
        hex::encode(self.mac(host, expiry, Some(ip)).finalize().into_bytes())
    }

    /// Checks `t` and `sign` for the raw `host` parameter at `now` (unix seconds).
    pub fn verify(
        &self,
        host: &str,
        t: Option<&str>,
        sign: Option<&str>,
        now: u64,
    ) -> Result<(), String> {
        self.verify_with_ip(host, None, t, sign, now)
    }

    /// [`Self::verify`] for a request that may carry `ip=` (raw, as sent): when it does,
    /// the signature must cover it too, so a signed URL cannot be replayed for another
    /// client's answer.
    pub fn verify_with_ip(
        &self,
        host: &str,
        ip: Option<&str>,
        t: Option<&str>,
        sign: Option<&str>,
        now: u64,
    ) -> Result<(), String> {
        let (Some(t), Some(sign)) = (t, sign) else {
            return Err("this server requires signed requests: t and sign parameters".into());
        };
        let expiry: u64 = t
            .parse()
            .map_err(|_| format!("t {t:?} is not unix seconds"))?;
        if expiry < now {
            return Err("signature expired".into());
        }
        if expiry > now.saturating_add(self.max_validity_secs) {
            return Err(format!(
                "t is more than {} s in the future",
                self.max_validity_secs
            ));
        }
        let signature = hex::decode(sign).map_err(|_| "sign is not hex".to_string())?;
        self.mac(host, t, ip)
            .verify_slice(&signature)
            .map_err(|_| "bad signature".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signing() -> Signing {
        Signing::new(b"0123456789abcdef-secret".to_vec(), 3600)
    }

    #[test]
    fn a_fresh_correct_signature_passes() {
        let s = signing();
        let sign = s.sign("api.example.com", "1000");
        assert_eq!(sign.len(), 64);
        assert_eq!(
            s.verify("api.example.com", Some("1000"), Some(&sign), 900),
            Ok(())
        );
    }

    #[test]
    fn known_vectors_match_the_sdks() {
        // The vectors in clients/testdata/README.md, which both SDK test suites use.
        let s = Signing::new(b"s3cret".to_vec(), u64::MAX);
        assert_eq!(
            s.sign("api.example.com", "1764089300"),
            "41fe5803bb23bcfbe9fe67216228baafc6d8d1dc645990de673f9ce5c9240d2d"
        );
        assert_eq!(
            s.sign("api.example.com,img.example.com", "1764089300"),
            "8759d325b0b48a933b835b3863c989943297ab75279d85e871bc4f5e675dcc29"
        );
    }

    #[test]
    fn every_wrong_signature_is_refused() {
        let s = signing();
        let sign = s.sign("api.example.com", "1000");
        assert!(s.verify("api.example.com", None, Some(&sign), 900).is_err());
        assert!(
            s.verify("api.example.com", Some("1000"), None, 900)
                .is_err()
        );
        assert!(
            s.verify("img.example.com", Some("1000"), Some(&sign), 900)
                .unwrap_err()
                .contains("bad signature")
        );
        assert!(
            s.verify("api.example.com", Some("1000"), Some(&sign), 1001)
                .unwrap_err()
                .contains("expired")
        );
        assert!(
            s.verify(
                "api.example.com",
                Some("99999"),
                Some(&s.sign("api.example.com", "99999")),
                900
            )
            .unwrap_err()
            .contains("future")
        );
        assert!(
            s.verify("api.example.com", Some("soon"), Some(&sign), 900)
                .is_err()
        );
        assert!(
            s.verify("api.example.com", Some("1000"), Some("zz"), 900)
                .is_err()
        );
    }
}
