//! API keys as values: the token a client sends (`pos_<keyid>_<secret>`),
//! the scope a key is bound to, and the hash that is all the database keeps
//! of a secret.
//!
//! Secrets are 256 random bits, so a plain SHA-256 is enough to store them
//! (there is nothing to brute-force, unlike a password); the comparison is
//! constant-time all the same.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::{BranchId, TenantId};

/// Random bytes in a secret (256 bits).
const SECRET_BYTES: usize = 32;
/// Characters of a generated key id (lowercase letters and digits: ~82 bits).
const KEY_ID_LEN: usize = 16;
/// Longest key id accepted in a token (the column's width).
pub const MAX_KEY_ID_LEN: usize = 32;
/// Longest secret accepted in a token; anything longer is not ours.
const MAX_SECRET_LEN: usize = 128;
const TOKEN_PREFIX: &str = "pos_";

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// POSTs sales to its tenant (to its branch if bound to one).
    Till,
    /// Reads its tenant's sales.
    Backoffice,
    /// Reads any tenant's sales and the top sellers; never writes.
    Operator,
}

impl Role {
    /// The name stored in the `role` column and shown by `pos keys list`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Till => "till",
            Role::Backoffice => "backoffice",
            Role::Operator => "operator",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "till" => Some(Role::Till),
            "backoffice" => Some(Role::Backoffice),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key's role with what it is bound to; only valid combinations exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Till {
        tenant: TenantId,
        branch: Option<BranchId>,
    },
    Backoffice {
        tenant: TenantId,
    },
    Operator,
}

/// A role asked with a tenant or branch it cannot have, or without one it needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("a {0} key needs --tenant")]
    TenantRequired(Role),
    #[error("an operator key belongs to no tenant: drop --tenant and --branch")]
    OperatorBound,
    #[error("only a till key can be bound to a branch")]
    BranchNotAllowed,
}

impl Scope {
    pub fn new(
        role: Role,
        tenant: Option<TenantId>,
        branch: Option<BranchId>,
    ) -> Result<Scope, ScopeError> {
        match (role, tenant, branch) {
            (Role::Operator, None, None) => Ok(Scope::Operator),
            (Role::Operator, _, _) => Err(ScopeError::OperatorBound),
            (Role::Backoffice, Some(tenant), None) => Ok(Scope::Backoffice { tenant }),
            (Role::Backoffice, Some(_), Some(_)) => Err(ScopeError::BranchNotAllowed),
            (Role::Till, Some(tenant), branch) => Ok(Scope::Till { tenant, branch }),
            (role, None, _) => Err(ScopeError::TenantRequired(role)),
        }
    }

    pub fn role(self) -> Role {
        match self {
            Scope::Till { .. } => Role::Till,
            Scope::Backoffice { .. } => Role::Backoffice,
            Scope::Operator => Role::Operator,
        }
    }

    pub fn tenant(self) -> Option<TenantId> {
        match self {
            Scope::Till { tenant, .. } | Scope::Backoffice { tenant } => Some(tenant),
            Scope::Operator => None,
        }
    }

    pub fn branch(self) -> Option<BranchId> {
        match self {
            Scope::Till { branch, .. } => branch,
            _ => None,
        }
    }
}

/// SHA-256 of a secret: what the database keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    pub fn of(secret: &str) -> SecretHash {
        SecretHash(Sha256::digest(secret.as_bytes()).into())
    }

    /// Whether `secret` hashes to this, in constant time.
    pub fn matches(&self, secret: &str) -> bool {
        SecretHash::of(secret).0.ct_eq(&self.0).into()
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// A token as a client sends it, split into its public id and its secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    pub key_id: &'a str,
    pub secret: &'a str,
}

impl<'a> Token<'a> {
    /// Parses `pos_<keyid>_<secret>`: a key id of lowercase letters and
    /// digits, a secret of base64url characters; `None` for anything else.
    pub fn parse(text: &'a str) -> Option<Token<'a>> {
        let rest = text.strip_prefix(TOKEN_PREFIX)?;
        let (key_id, secret) = rest.split_once('_')?;
        let id_ok = (1..=MAX_KEY_ID_LEN).contains(&key_id.len())
            && key_id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let secret_ok = (1..=MAX_SECRET_LEN).contains(&secret.len())
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        (id_ok && secret_ok).then_some(Token { key_id, secret })
    }

    /// The token of an `Authorization: Bearer <token>` header value.
    pub fn from_bearer(header: &'a str) -> Option<Token<'a>> {
        let (scheme, token) = header.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        Token::parse(token.trim())
    }
}

/// A key just made: the token to show once, and what to store.
pub struct NewKey {
    pub id: String,
    pub hash: SecretHash,
    /// `pos_<id>_<secret>`; never stored, never logged.
    pub token: String,
}

impl NewKey {
    pub fn generate() -> Result<NewKey, getrandom::Error> {
        let mut secret = [0u8; SECRET_BYTES];
        getrandom::fill(&mut secret)?;
        let secret = URL_SAFE_NO_PAD.encode(secret);
        let id = random_key_id()?;
        Ok(NewKey {
            hash: SecretHash::of(&secret),
            token: format!("{TOKEN_PREFIX}{id}_{secret}"),
            id,
        })
    }
}

fn random_key_id() -> Result<String, getrandom::Error> {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; KEY_ID_LEN];
    getrandom::fill(&mut bytes)?;
    // 252 is the largest multiple of 36 below 256: redraw above it, so every
    // character is equally likely.
    let mut id = String::with_capacity(KEY_ID_LEN);
    let mut pool = bytes.to_vec();
    while id.len() < KEY_ID_LEN {
        match pool.pop() {
            Some(b) if b < 252 => id.push(ALPHABET[(b % 36) as usize] as char),
            Some(_) => {}
            None => {
                let mut more = [0u8; KEY_ID_LEN];
                getrandom::fill(&mut more)?;
                pool.extend_from_slice(&more);
            }
        }
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_back_and_matches_only_its_own_hash() {
        let key = NewKey::generate().expect("random bytes");
        let token = Token::parse(&key.token).expect("own format");
        assert_eq!(token.key_id, key.id);
        assert_eq!(token.secret.len(), 43, "256 bits in base64url");
        assert!(key.hash.matches(token.secret));
        let other = NewKey::generate().expect("random bytes");
        assert_ne!(other.id, key.id);
        assert!(!key
            .hash
            .matches(Token::parse(&other.token).expect("own").secret));
        assert!(!key.token.contains(&hex(&key.hash.0)));
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in [
            "",
            "pos_",
            "pos__secret",
            "pos_abc",
            "pos_abc_",
            "pos_ABC_secret",
            "key_abc_secret",
            "pos_abc_sec ret",
            "pos_abc_sec.ret",
            &format!("pos_{}_s", "a".repeat(33)),
            &format!("pos_a_{}", "s".repeat(129)),
        ] {
            assert_eq!(Token::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            Token::from_bearer("Bearer pos_abc_s3-_x"),
            Some(Token {
                key_id: "abc",
                secret: "s3-_x"
            })
        );
        assert_eq!(
            Token::from_bearer("bearer pos_abc_s").map(|t| t.key_id),
            Some("abc")
        );
        assert_eq!(Token::from_bearer("Basic pos_abc_s"), None);
        assert_eq!(Token::from_bearer("pos_abc_s"), None);
    }

    #[test]
    fn scopes_exist_only_in_valid_combinations() {
        assert_eq!(
            Scope::new(Role::Till, Some(1), Some(2)),
            Ok(Scope::Till {
                tenant: 1,
                branch: Some(2)
            })
        );
        assert_eq!(
            Scope::new(Role::Backoffice, Some(1), None),
            Ok(Scope::Backoffice { tenant: 1 })
        );
        assert_eq!(Scope::new(Role::Operator, None, None), Ok(Scope::Operator));
        assert!(Scope::new(Role::Operator, Some(1), None).is_err());
        assert!(Scope::new(Role::Backoffice, Some(1), Some(2)).is_err());
        assert!(Scope::new(Role::Till, None, Some(2)).is_err());
        assert!(Scope::new(Role::Backoffice, None, None).is_err());
    }
}
