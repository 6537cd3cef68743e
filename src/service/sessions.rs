//! The end of a back office's browser sessions (a sign-out), kept in MySQL
//! so that every instance learns it like a revocation.

use super::{ServiceError, Services};
use crate::clock::UnixMs;
use crate::domain::KeyId;
use crate::store;

/// Stores that `key_id`'s sessions begun until `began` are over.
pub async fn end_sessions(s: &Services, key_id: KeyId, began: UnixMs) -> Result<(), ServiceError> {
    s.directory()
        .run(move |c| Box::pin(async move { store::end_sessions(c, &key_id, began).await }))
        .await?;
    Ok(())
}
