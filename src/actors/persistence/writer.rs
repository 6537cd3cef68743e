//! [`Writer`]: the one way to a persistence actor. Writes and reads are
//! answered later, by the flush that runs them, so each message carries a
//! oneshot; sending it (refused at once when the mailbox is full) and
//! reading that answer happen here and nowhere else.

use actix::prelude::*;
use tokio::sync::oneshot;

use super::{
    Drain, PersistenceActor, Ping, Read, RefundFacts, Reply, Rows, Save, SaveError, Saved, Seq,
};
use crate::domain::{
    IdempotencyKey, NewRefund, NewSale, SaleId, StoredSale, TenantId, TenantSnapshot,
};

/// A handle on one persistence actor; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    addr: Addr<PersistenceActor>,
}

impl Writer {
    pub fn new(addr: Addr<PersistenceActor>) -> Writer {
        Writer { addr }
    }

    /// Stores one request's sales; the stored rows in the same order.
    pub async fn save(&self, sales: Vec<NewSale>) -> Result<Saved, SaveError> {
        // Once queued, the rows may be committed even if the answer never
        // comes (the persistence actor stopped): the outcome is unknown.
        let rows = Rows::Sales(sales);
        self.ask(|reply| Save { rows, reply }, SaveError::OutcomeUnknown)
            .await
    }

    /// Stores one request's refunds; the stored rows in the same order.
    pub async fn save_refunds(&self, refunds: Vec<NewRefund>) -> Result<Saved, SaveError> {
        let rows = Rows::Refunds(refunds);
        self.ask(|reply| Save { rows, reply }, SaveError::OutcomeUnknown)
            .await
    }

    /// The sales of `tenant` among `sales` and its refunds stored under
    /// `keys`, read after every write queued before.
    pub async fn refund_facts(
        &self,
        tenant: TenantId,
        sales: Vec<SaleId>,
        keys: Vec<IdempotencyKey>,
    ) -> Result<RefundFacts, SaveError> {
        let read = |reply| Read::Refunds {
            tenant,
            sales,
            keys,
            reply,
        };
        self.ask(read, SaveError::Unavailable).await
    }

    /// A tenant's catalog and totals, read after every write queued before,
    /// and the place of that read in the actor's order.
    pub async fn tenant(
        &self,
        tenant: TenantId,
    ) -> Result<(Option<TenantSnapshot>, Seq), SaveError> {
        self.ask(
            |reply| Read::Tenant { tenant, reply },
            SaveError::Unavailable,
        )
        .await
    }

    /// The stored sales of `tenant` carrying any of `keys`, read after every
    /// write queued before.
    pub async fn stored_keys(
        &self,
        tenant: TenantId,
        keys: Vec<IdempotencyKey>,
    ) -> Result<Vec<StoredSale>, SaveError> {
        let read = |reply| Read::Keys {
            tenant,
            keys,
            reply,
        };
        self.ask(read, SaveError::Unavailable).await
    }

    /// Numbers `tenant`'s catalog events committed so far, after every
    /// event queued before.
    pub async fn number_catalog_events(&self, tenant: TenantId) -> Result<(), SaveError> {
        let read = |reply| Read::CatalogEvents { tenant, reply };
        self.ask(read, SaveError::Unavailable).await
    }

    /// Whether MySQL answers this actor's pool now.
    pub async fn ping(&self) -> bool {
        self.addr.send(Ping).await.unwrap_or(false)
    }

    /// Flushes what is queued and closes the pool (shutdown).
    pub async fn drain(&self) {
        let _ = self.addr.send(Drain).await;
    }

    /// Queues `make(reply)` and waits for its answer; `lost` if the actor
    /// dropped it unanswered.
    async fn ask<M, T>(
        &self,
        make: impl FnOnce(Reply<T>) -> M,
        lost: SaveError,
    ) -> Result<T, SaveError>
    where
        M: Message<Result = ()> + Send + 'static,
        PersistenceActor: Handler<M>,
    {
        let (reply, answer) = oneshot::channel();
        self.addr.try_send(make(reply)).map_err(|e| match e {
            SendError::Full(_) => SaveError::Overloaded,
            SendError::Closed(_) => SaveError::Unavailable,
        })?;
        answer.await.map_err(|_| lost)?
    }
}
