//! The feed: every committed event of this shard's tenants, delivered to
//! each sink (RabbitMQ; webhooks) at least once and in `seq` order per
//! tenant. The events stay in MySQL (they are the rows themselves); each
//! sink keeps a cursor per tenant, moved only after the sink confirmed, so
//! a sink that is down or slow delays only itself and catches up when it
//! returns, and a crash at any point repeats at most what was in flight.

pub mod amqp;
pub mod webhooks;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::domain::{Currency, Event, Shard, TenantId};

/// How a sink writes an event (the API's JSON of it): given by the layer
/// that owns the wire format.
pub type Render = fn(TenantId, &Event, Currency) -> Vec<u8>;

/// A head not known yet: read the tenant's events to learn it.
pub const UNKNOWN_HEAD: u64 = u64::MAX;

/// New events are waiting (sent when a tap goes from empty to non-empty).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Wake;

/// The newest head told per tenant, until a sink takes them.
#[derive(Clone, Default)]
pub struct Pending(Arc<Mutex<HashMap<TenantId, u64>>>);

impl Pending {
    fn take(&self) -> HashMap<TenantId, u64> {
        match self.0.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => HashMap::new(),
        }
    }
}

/// Where persistence actors tell one sink which tenants have new events:
/// the newest head per tenant waits in [`Pending`] until the sink takes
/// it, and the sink is woken only when it goes from empty to non-empty. So
/// it holds at most one entry per tenant, however slow the sink.
#[derive(Clone)]
pub struct FeedTap {
    pending: Pending,
    wake: Recipient<Wake>,
    /// `None`: the sink wants every tenant's news; else only these
    /// tenants' (a webhook feed: those with endpoints), so a deployment
    /// without webhooks pays no wake-up per commit.
    interest: Option<Interest>,
}

/// The tenants a sink wants news of, kept by the sink.
#[derive(Clone, Default)]
pub struct Interest(Arc<std::sync::RwLock<HashSet<TenantId>>>);

impl Interest {
    fn wants(&self, t: TenantId) -> bool {
        self.0.read().map(|s| s.contains(&t)).unwrap_or(true)
    }

    /// News of `t` too (`wanted`), or no longer.
    pub fn mark(&self, t: TenantId, wanted: bool) {
        if let Ok(mut s) = self.0.write() {
            if wanted {
                s.insert(t);
            } else {
                s.remove(&t);
            }
        }
    }
}

impl FeedTap {
    /// The tap of the sink that takes from `pending` and is woken by `wake`.
    pub fn new(pending: Pending, wake: Recipient<Wake>, interest: Option<Interest>) -> FeedTap {
        FeedTap {
            pending,
            wake,
            interest,
        }
    }

    /// Tenants whose events now reach these heads ([`UNKNOWN_HEAD`]: some
    /// may have).
    pub fn tell(&self, heads: &[(TenantId, u64)]) {
        let wanted = |t: &TenantId| self.interest.as_ref().is_none_or(|i| i.wants(*t));
        if !heads.iter().any(|(t, _)| wanted(t)) {
            return;
        }
        let was_empty = match self.pending.0.lock() {
            Ok(mut p) => {
                let was_empty = p.is_empty();
                for (t, head) in heads.iter().filter(|(t, _)| wanted(t)) {
                    let e = p.entry(*t).or_insert(*head);
                    *e = (*e).max(*head);
                }
                was_empty
            }
            Err(_) => return,
        };
        if was_empty {
            // Unbounded on purpose: at most one is queued per take.
            self.wake.do_send(Wake);
        }
    }
}

/// Every sink's tap; persistence actors tell them all.
#[derive(Clone, Default)]
pub struct FeedTaps(Arc<[FeedTap]>);

impl std::fmt::Debug for FeedTaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FeedTaps({} sinks)", self.0.len())
    }
}

impl FeedTaps {
    pub fn new(taps: Vec<FeedTap>) -> FeedTaps {
        FeedTaps(taps.into())
    }

    pub fn tell(&self, heads: &[(TenantId, u64)]) {
        for tap in self.0.iter() {
            tap.tell(heads);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What one sink knows of its tenants: heads told (or read), cursors
/// (delivered), and the tenants behind, in turn.
#[derive(Default)]
pub(crate) struct Progress {
    heads: HashMap<TenantId, u64>,
    cursors: HashMap<TenantId, u64>,
    behind: VecDeque<TenantId>,
    queued: HashSet<TenantId>,
    /// Tenants whose next event cannot be read, resting until then.
    stuck: HashMap<TenantId, Instant>,
}

/// How long a tenant whose next event cannot be read waits before its
/// sink reads it again (an operator may have fixed the row). Each time is
/// a delivery failure: the lag and the failures raise `PosFeedStalled`.
pub(crate) const STUCK_PAUSE: Duration = Duration::from_secs(10);

impl Progress {
    /// Heads told by the tap (of this shard's tenants only).
    fn learn_heads(&mut self, shard: Shard, heads: HashMap<TenantId, u64>) {
        for (t, head) in heads {
            if !shard.owns(t) {
                continue;
            }
            let known = self.heads.entry(t).or_insert(head);
            if *known == UNKNOWN_HEAD || head > *known {
                *known = head;
            }
            self.queue_if_behind(t);
        }
    }

    fn queue_if_behind(&mut self, t: TenantId) {
        if self.stuck.contains_key(&t) {
            return;
        }
        let head = self.heads.get(&t).copied().unwrap_or(0);
        let behind = match self.cursors.get(&t) {
            Some(cursor) => head > *cursor,
            None => head > 0,
        };
        if behind && self.queued.insert(t) {
            self.behind.push_back(t);
        }
    }

    /// `t` takes a turn again (its events may not all be delivered).
    fn queue_again(&mut self, t: TenantId) {
        if !self.stuck.contains_key(&t) && self.queued.insert(t) {
            self.behind.push_back(t);
        }
    }

    /// Up to `n` tenants behind, longest waiting first.
    fn next_turn(&mut self, n: usize) -> Vec<TenantId> {
        let now = Instant::now();
        let rested: Vec<TenantId> = self
            .stuck
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(t, _)| *t)
            .collect();
        for t in rested {
            self.stuck.remove(&t);
            self.queue_again(t);
        }
        let take = n.min(self.behind.len());
        let turn: Vec<TenantId> = self.behind.drain(..take).collect();
        for t in &turn {
            self.queued.remove(t);
        }
        turn
    }

    /// `t`'s next event cannot be read: it rests for [`STUCK_PAUSE`].
    fn stuck(&mut self, t: TenantId) {
        self.stuck.insert(t, Instant::now() + STUCK_PAUSE);
    }

    fn unknown_cursors(&self, tenants: &[TenantId]) -> Vec<TenantId> {
        tenants
            .iter()
            .filter(|t| !self.cursors.contains_key(t))
            .copied()
            .collect()
    }

    /// `t` delivered through `seq` (or, with nothing more to read, its head
    /// is its cursor).
    fn delivered(&mut self, t: TenantId, seq: u64) {
        let cursor = self.cursors.entry(t).or_insert(0);
        *cursor = (*cursor).max(seq);
    }

    fn caught_up(&mut self, t: TenantId) {
        let cursor = self.cursors.get(&t).copied().unwrap_or(0);
        let head = self.heads.entry(t).or_insert(cursor);
        if *head == UNKNOWN_HEAD || *head < cursor {
            *head = cursor;
        }
    }

    /// Events committed and not delivered, over the tenants known.
    fn lag(&self) -> u64 {
        self.heads
            .iter()
            .filter(|(_, h)| **h != UNKNOWN_HEAD)
            .map(|(t, h)| h.saturating_sub(self.cursors.get(t).copied().unwrap_or(0)))
            .sum()
    }
}

/// Of a tenant's events' numbers (in order), how many run on from
/// `cursor` with no number missing: a sink delivers these and no further.
fn running_on(cursor: u64, seqs: impl IntoIterator<Item = u64>) -> usize {
    seqs.into_iter()
        .zip(cursor + 1..)
        .take_while(|(seq, n)| seq == n)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u64) -> TenantId {
        TenantId::new(n).unwrap()
    }

    #[test]
    fn a_sink_delivers_only_the_events_that_run_on_from_its_cursor() {
        assert_eq!(running_on(4, [5, 6, 8]), 2);
        assert_eq!(running_on(3, [5, 6, 8]), 0, "4 is not read yet");
        assert_eq!(running_on(4, []), 0);
    }

    #[test]
    fn tenants_behind_take_turns_and_the_lag_counts_what_is_not_delivered() {
        let mut p = Progress::default();
        let all = Shard::parse("0/1").unwrap();
        p.learn_heads(all, HashMap::from([(t(1), 5), (t(2), 3)]));
        p.learn_heads(all, HashMap::from([(t(1), 7)]));
        assert_eq!(p.lag(), 10);
        let mut turn = p.next_turn(1);
        turn.extend(p.next_turn(5));
        turn.sort();
        assert_eq!(turn, vec![t(1), t(2)], "each once");
        p.delivered(t(1), 7);
        p.queue_if_behind(t(1));
        assert!(p.next_turn(5).is_empty(), "caught up");
        assert_eq!(p.lag(), 3);
        let half = Shard::parse("1/2").unwrap();
        p.learn_heads(half, HashMap::from([(t(2), 9)]));
        assert_eq!(p.lag(), 3, "another shard's tenant is not this sink's");
        p.learn_heads(all, HashMap::from([(t(2), UNKNOWN_HEAD)]));
        assert_eq!(p.next_turn(5), vec![t(2)]);
        p.delivered(t(2), 4);
        p.caught_up(t(2));
        assert_eq!(p.lag(), 0);
    }
}
