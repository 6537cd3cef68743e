//! Which tenants an instance owns (`POS_SHARD=i/n`).

use std::fmt;

use super::TenantId;

/// The tenants with `tenant_id % count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// The only shard: every tenant.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// `i/n` with 0 <= i < n <= 1024.
    pub fn parse(text: &str) -> Option<Shard> {
        let (i, n) = text.trim().split_once('/')?;
        let (index, count): (u64, u64) = (i.parse().ok()?, n.parse().ok()?);
        (count > 0 && count <= 1024 && index < count).then_some(Shard { index, count })
    }

    pub fn owns(self, tenant: TenantId) -> bool {
        tenant.get() % self.count == self.index
    }

    /// Whether other instances own other tenants (and Redis merges the ranking).
    pub fn is_partial(self) -> bool {
        self.count > 1
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}
