//! Admin tokens: where they come from and how a request proves it holds one.
//!
//! Tokens live in a file of `name:scope:token` or `name:token` lines
//! (`--admin-token-file`) or in the `HTTPDNS_ADMIN_TOKEN` environment variable (named
//! `env`), never in the main config. A token's [`Scope`] says what it may do: `read`
//! inspects, `write` also changes; a line without a scope (the older format) and the
//! environment token have `write`. Comparison is constant-time so response timing does
//! not leak a token's prefix; the `Bearer` scheme is matched case-insensitively
//! (RFC 7235).

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

/// What a token may do. `Write` implies `Read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Inspect: zones, explain, metrics (every GET).
    Read,
    /// Change: drains, disables, reload; and everything `Read` may.
    Write,
}

impl Scope {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }

    /// Whether a token of this scope may do what `needed` requires.
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }
}

/// A token that matched: who it is and what it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder<'a> {
    pub name: &'a str,
    pub scope: Scope,
}

/// The configured tokens, by name.
#[derive(Debug, Clone, Default)]
pub struct AdminTokens {
    tokens: Vec<(String, Scope, Vec<u8>)>,
}

impl AdminTokens {
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// A single full-access token (tests, the environment variable).
    pub fn single(name: &str, token: &str) -> Self {
        Self::default().with(name, Scope::Write, token)
    }

    /// These tokens and one more.
    pub fn with(mut self, name: &str, scope: Scope, token: &str) -> Self {
        self.tokens
            .push((name.to_string(), scope, token.as_bytes().to_vec()));
        self
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
                let (name, rest) = line
                    .split_once(':')
                    .ok_or_else(|| invalid("expected name:scope:token or name:token"))?;
                // `name:read:…` / `name:write:…` carry a scope; anything else after the
                // first colon is a whole token of the older `name:token` format.
                let (scope, token) = match rest.split_once(':') {
                    Some((scope, token)) => match Scope::parse(scope.trim()) {
                        Some(scope) => (scope, token),
                        None => (Scope::Write, rest),
                    },
                    None => (Scope::Write, rest),
                };
                let (name, token) = (name.trim(), token.trim());
                if name.is_empty() {
                    return Err(invalid("empty token name"));
                }
                if token.len() < MIN_TOKEN_LEN {
                    return Err(invalid(&format!(
                        "token shorter than {MIN_TOKEN_LEN} characters"
                    )));
                }
                tokens.push((name.to_string(), scope, token.as_bytes().to_vec()));
            }
        }
        if let Some(token) = env.map(str::trim).filter(|t| !t.is_empty()) {
            if token.len() < MIN_TOKEN_LEN {
                return Err(TokenError::ShortEnv);
            }
            tokens.push(("env".to_string(), Scope::Write, token.as_bytes().to_vec()));
        }
        Ok(Self { tokens })
    }

    /// The holder of the token in an `Authorization: Bearer` header value, if valid.
    pub fn check(&self, authorization: Option<&str>) -> Option<Holder<'_>> {
        let (scheme, presented) = authorization?.trim_start().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let presented = presented.trim().as_bytes();
        // Compare against every token, without stopping early, in constant time each.
        let mut found = None;
        for (name, scope, token) in &self.tokens {
            if bool::from(token.as_slice().ct_eq(presented)) {
                found = Some(Holder {
                    name: name.as_str(),
                    scope: *scope,
                });
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
        let name = |header: &str| tokens.check(Some(header)).map(|h| h.name);
        assert_eq!(name("Bearer aaaaaaaaaaaaaaaaaaaa"), Some("alice"));
        assert_eq!(name("Bearer bbbbbbbbbbbbbbbbbbbb"), Some("bob"));
        assert_eq!(name("Bearer eeeeeeeeeeeeeeeeeeee"), Some("env"));
        assert_eq!(tokens.check(Some("Bearer aaaaaaaaaaaaaaaaaaab")), None);
        assert_eq!(tokens.check(Some("aaaaaaaaaaaaaaaaaaaa")), None);
        assert_eq!(tokens.check(None), None);
    }

    #[test]
    fn scoped_lines_and_old_lines_load_with_their_scopes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(
            &path,
            "viewer:read:rrrrrrrrrrrrrrrrrrrr\nsre:write:wwwwwwwwwwwwwwwwwwww\n\
             old:oooooooooooooooooooo\ncolon:abc:dddddddddddddddddddd\n",
        )
        .unwrap();
        let tokens = AdminTokens::load(Some(&path), None).unwrap();
        let holder = |header: &str| tokens.check(Some(header)).map(|h| (h.name, h.scope));
        assert_eq!(
            holder("Bearer rrrrrrrrrrrrrrrrrrrr"),
            Some(("viewer", Scope::Read))
        );
        assert_eq!(
            holder("Bearer wwwwwwwwwwwwwwwwwwww"),
            Some(("sre", Scope::Write))
        );
        assert_eq!(
            holder("Bearer oooooooooooooooooooo"),
            Some(("old", Scope::Write))
        );
        // A colon inside an old-format token is part of the token.
        assert_eq!(
            holder("Bearer abc:dddddddddddddddddddd"),
            Some(("colon", Scope::Write))
        );
        assert!(Scope::Write.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Write));
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let tokens = AdminTokens::single("alice", "aaaaaaaaaaaaaaaaaaaa");
        for header in [
            "bearer aaaaaaaaaaaaaaaaaaaa",
            "BEARER aaaaaaaaaaaaaaaaaaaa",
            "Bearer  aaaaaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(tokens.check(Some(header)).map(|h| h.name), Some("alice"));
        }
        assert_eq!(tokens.check(Some("Basic aaaaaaaaaaaaaaaaaaaa")), None);
        assert_eq!(tokens.check(Some("Bearerx aaaaaaaaaaaaaaaaaaaa")), None);
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
