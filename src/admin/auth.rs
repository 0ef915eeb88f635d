//! Admin tokens: where they come from and how a request proves it holds one.
//!
//! Tokens live in a file of `name:token` lines (`--admin-token-file`) or in the
//! `HTTPDNS_ADMIN_TOKEN` environment variable (named `env`), never in the main config.
//! Comparison is constant-time so response timing does not leak a token's prefix.

use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;
use thiserror::Error;

/// Environment variable holding a single admin token.
pub const TOKEN_ENV: &str = "HTTPDNS_ADMIN_TOKEN";
/// Shortest token accepted: guessing must be hopeless.
pub const MIN_TOKEN_LEN: usize = 16;

#[derive(Debug, Error)]
pub enum TokenError {
    #[error("cannot read admin token file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("admin token file {path} line {line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{TOKEN_ENV}: tokens must be at least {MIN_TOKEN_LEN} characters")]
    ShortEnv,
}

/// The configured tokens, by name.
#[derive(Debug, Clone, Default)]
pub struct AdminTokens {
    tokens: Vec<(String, Vec<u8>)>,
}

impl AdminTokens {
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// A single token (tests, the environment variable).
    pub fn single(name: &str, token: &str) -> Self {
        Self {
            tokens: vec![(name.to_string(), token.as_bytes().to_vec())],
        }
    }

    /// Reads tokens from `file` (if given) and the environment variable (if set).
    pub fn load(file: Option<&Path>, env: Option<&str>) -> Result<Self, TokenError> {
        let mut tokens = Vec::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            for (i, raw) in text.lines().enumerate() {
                let line = raw.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let invalid = |message: &str| TokenError::Invalid {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message: message.to_string(),
                };
                let (name, token) = line
                    .split_once(':')
                    .ok_or_else(|| invalid("expected name:token"))?;
                let (name, token) = (name.trim(), token.trim());
                if name.is_empty() {
                    return Err(invalid("empty token name"));
                }
                if token.len() < MIN_TOKEN_LEN {
                    return Err(invalid(&format!(
                        "token shorter than {MIN_TOKEN_LEN} characters"
                    )));
                }
                tokens.push((name.to_string(), token.as_bytes().to_vec()));
            }
        }
        if let Some(token) = env.map(str::trim).filter(|t| !t.is_empty()) {
            if token.len() < MIN_TOKEN_LEN {
                return Err(TokenError::ShortEnv);
            }
            tokens.push(("env".to_string(), token.as_bytes().to_vec()));
        }
        Ok(Self { tokens })
    }

    /// The name of the token in an `Authorization: Bearer` header value, if valid.
    pub fn check(&self, authorization: Option<&str>) -> Option<&str> {
        let presented = authorization?.strip_prefix("Bearer ")?.trim().as_bytes();
        // Compare against every token, without stopping early, in constant time each.
        let mut found = None;
        for (name, token) in &self.tokens {
            if bool::from(token.as_slice().ct_eq(presented)) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_env_tokens_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(
            &path,
            "# ops\nalice: aaaaaaaaaaaaaaaaaaaa\nbob:bbbbbbbbbbbbbbbbbbbb\n",
        )
        .unwrap();
        let tokens = AdminTokens::load(Some(&path), Some("eeeeeeeeeeeeeeeeeeee")).unwrap();
        assert_eq!(
            tokens.check(Some("Bearer aaaaaaaaaaaaaaaaaaaa")),
            Some("alice")
        );
        assert_eq!(
            tokens.check(Some("Bearer bbbbbbbbbbbbbbbbbbbb")),
            Some("bob")
        );
        assert_eq!(
            tokens.check(Some("Bearer eeeeeeeeeeeeeeeeeeee")),
            Some("env")
        );
        assert_eq!(tokens.check(Some("Bearer aaaaaaaaaaaaaaaaaaab")), None);
        assert_eq!(tokens.check(Some("aaaaaaaaaaaaaaaaaaaa")), None);
        assert_eq!(tokens.check(None), None);
    }

    #[test]
    fn bad_token_files_say_where() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "alice:short\n").unwrap();
        let err = AdminTokens::load(Some(&path), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1") && err.contains("shorter"), "{err}");
        std::fs::write(&path, "no-colon-here\n").unwrap();
        assert!(AdminTokens::load(Some(&path), None).is_err());
        assert!(matches!(
            AdminTokens::load(None, Some("short")),
            Err(TokenError::ShortEnv)
        ));
    }
}
