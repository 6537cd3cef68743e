//! Who a key is: its role, what it is bound to (a tenant, a branch), and
//! the hash that is all the database keeps of its secret.
//!
//! Secrets are 256 random bits, so a plain SHA-256 is enough to store them
//! (there is nothing to brute-force, unlike a password); the comparison is
//! constant-time all the same.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{BranchId, TenantId};

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
        f.pad(self.as_str())
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

/// Longest key id (the `api_keys.id` column's width).
pub const MAX_KEY_ID_LEN: usize = 32;

/// The public part of an API key, `<id>` in `pos_<id>_<secret>`: 1 to
/// [`MAX_KEY_ID_LEN`] lowercase ASCII letters and digits. Lists,
/// revocations, caches and back-office sessions name a key by it; cloning
/// it is a reference count.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(Arc<str>);

impl KeyId {
    /// A key id, or `None` for text that is none.
    pub fn parse(text: &str) -> Option<KeyId> {
        KeyId::is_valid(text).then(|| KeyId(Arc::from(text)))
    }

    /// Whether `text` is a key id (without making one: a token's check
    /// borrows it).
    pub fn is_valid(text: &str) -> bool {
        (1..=MAX_KEY_ID_LEN).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    }

    /// An id this service just drew from its alphabet.
    pub(crate) fn generated(id: &str) -> KeyId {
        debug_assert!(KeyId::is_valid(id), "{id} is drawn from the id alphabet");
        KeyId(Arc::from(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, not `write_str`: the key list lines ids up in a column.
        f.pad(&self.0)
    }
}

/// Caches keyed by `KeyId` are looked up with a token's borrowed id (the
/// hash is the text's, as `Borrow` requires).
impl std::borrow::Borrow<str> for KeyId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// For command-line arguments.
impl std::str::FromStr for KeyId {
    type Err = NotAKeyId;

    fn from_str(text: &str) -> Result<KeyId, NotAKeyId> {
        KeyId::parse(text.trim()).ok_or(NotAKeyId)
    }
}

/// Text that is no key id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a key id is 1 to {MAX_KEY_ID_LEN} lowercase letters and digits")]
pub struct NotAKeyId;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u64) -> TenantId {
        TenantId::new(n).expect("positive")
    }

    #[test]
    fn scopes_exist_only_in_valid_combinations() {
        assert_eq!(
            Scope::new(Role::Till, TenantId::new(1), BranchId::new(2)),
            Ok(Scope::Till {
                tenant: t(1),
                branch: BranchId::new(2)
            })
        );
        assert_eq!(
            Scope::new(Role::Backoffice, TenantId::new(1), None),
            Ok(Scope::Backoffice { tenant: t(1) })
        );
        assert_eq!(Scope::new(Role::Operator, None, None), Ok(Scope::Operator));
        assert!(Scope::new(Role::Operator, TenantId::new(1), None).is_err());
        assert!(Scope::new(Role::Backoffice, TenantId::new(1), BranchId::new(2)).is_err());
        assert!(Scope::new(Role::Till, None, BranchId::new(2)).is_err());
        assert!(Scope::new(Role::Backoffice, None, None).is_err());
    }
}
