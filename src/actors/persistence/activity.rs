//! What the rollup actor must know of the persistence actors' flushes:
//! whether one that may still commit rows was in flight when it read the
//! newest ids. Rows of a flush get their ids when it inserts them, after
//! it started; so once every flush in flight at that read has ended, no
//! row at or below the ids read can still commit, and they can be rolled
//! up. A flush that ended with a COMMIT whose outcome is unknown may still
//! commit (the server may still run it): its lane counts as in flight
//! until a later flush of it commits (its writer's mark, locked by the
//! earlier transaction, makes that one wait for it to end).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Default)]
struct LaneState {
    /// Flushes started.
    started: AtomicU64,
    /// The number of the last flush after which nothing may still commit.
    finished: AtomicU64,
    /// A flush ended with an outcome unknown, and none committed since.
    owed: AtomicBool,
}

/// The flushes of every persistence actor of this process; cheap to clone.
#[derive(Clone, Default)]
pub struct WriteActivity {
    lanes: Arc<Vec<LaneState>>,
    ended: Arc<Notify>,
}

/// How a flush ended.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlushEnd {
    /// A transaction of it committed.
    pub committed: bool,
    /// A COMMIT of it has an unknown outcome.
    pub unsettled: bool,
}

impl WriteActivity {
    pub fn new(lanes: usize) -> WriteActivity {
        WriteActivity {
            lanes: Arc::new((0..lanes).map(|_| LaneState::default()).collect()),
            ended: Arc::new(Notify::new()),
        }
    }

    /// The handle lane `index` reports its flushes through.
    pub fn lane(&self, index: usize) -> LaneActivity {
        LaneActivity {
            activity: self.clone(),
            index,
        }
    }

    /// Waits until every flush in flight now has ended (false: not
    /// within `wait`).
    pub async fn settled(&self, wait: Duration) -> bool {
        let wanted: Vec<u64> = self
            .lanes
            .iter()
            .map(|l| l.started.load(Ordering::SeqCst))
            .collect();
        let done = || {
            self.lanes
                .iter()
                .zip(&wanted)
                .all(|(l, w)| l.finished.load(Ordering::SeqCst) >= *w)
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if done() {
                return true;
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                return done();
            }
        }
    }
}

/// One persistence actor's side of [`WriteActivity`].
#[derive(Clone)]
pub struct LaneActivity {
    activity: WriteActivity,
    index: usize,
}

impl std::fmt::Debug for LaneActivity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LaneActivity({})", self.index)
    }
}

impl LaneActivity {
    fn state(&self) -> Option<&LaneState> {
        self.activity.lanes.get(self.index)
    }

    /// A flush starts, before it writes anything. A flush dropped before
    /// it says how it ended (its actor stopped) counts as unsettled.
    pub fn begin(&self) -> FlushInFlight {
        let number = self
            .state()
            .map_or(0, |s| s.started.fetch_add(1, Ordering::SeqCst) + 1);
        FlushInFlight {
            lane: self.clone(),
            number,
            ended: false,
        }
    }

    /// Flush `number` ended so.
    fn end(&self, number: u64, end: FlushEnd) {
        let Some(state) = self.state() else {
            return;
        };
        if end.unsettled {
            state.owed.store(true, Ordering::SeqCst);
        } else if end.committed || !state.owed.load(Ordering::SeqCst) {
            state.owed.store(false, Ordering::SeqCst);
            state.finished.store(number, Ordering::SeqCst);
        }
        self.activity.ended.notify_waiters();
    }
}

/// A flush in flight; [`FlushInFlight::end`] says how it ended.
pub struct FlushInFlight {
    lane: LaneActivity,
    number: u64,
    ended: bool,
}

impl FlushInFlight {
    pub fn end(mut self, end: FlushEnd) {
        self.ended = true;
        self.lane.end(self.number, end);
    }
}

impl Drop for FlushInFlight {
    fn drop(&mut self) {
        if !self.ended {
            let unsettled = FlushEnd {
                committed: false,
                unsettled: true,
            };
            self.lane.end(self.number, unsettled);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_flush_in_flight_holds_the_wait_and_an_unsettled_one_until_a_later_commit() {
        let activity = WriteActivity::new(2);
        let (a, b) = (activity.lane(0), activity.lane(1));
        assert!(activity.settled(Duration::ZERO).await, "nothing in flight");
        let first = a.begin();
        assert!(!activity.settled(Duration::from_millis(1)).await);
        drop(first); // its actor stopped before it ended: unsettled
        assert!(
            !activity.settled(Duration::from_millis(1)).await,
            "an unknown outcome may still commit"
        );
        a.begin().end(FlushEnd::default());
        assert!(
            !activity.settled(Duration::from_millis(1)).await,
            "a failure says nothing of the earlier one"
        );
        let second = a.begin();
        let committed = FlushEnd {
            committed: true,
            unsettled: false,
        };
        b.begin().end(committed);
        second.end(committed);
        assert!(activity.settled(Duration::ZERO).await);
        // A flush started after the wait began does not hold it.
        let waiter = activity.clone();
        let wait = tokio::spawn(async move { waiter.settled(Duration::from_secs(5)).await });
        assert!(wait.await.unwrap_or(false));
    }
}
