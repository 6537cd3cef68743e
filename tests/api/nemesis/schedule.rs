//! The nemesis's faults: drawn from a seed alone, so a run's schedule is
//! printed before it starts and the same seed gives it again.

use std::fmt;
use std::time::Duration;

use pos::cli::loadgen::mix::Rng;

/// Faults start after this much calm (the load gets going first)…
pub const WARM_UP: Duration = Duration::from_secs(10);
/// …and every fault has healed this long before the run ends, so the
/// checker looks at a platform that had time to catch up.
pub const SETTLE: Duration = Duration::from_secs(20);

/// What a fault does; each heals by itself after its `length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// SIGKILL of a `pos` instance, started again (same address) after
    /// `length`; a long one lets the shard's standby take over.
    KillPos,
    /// SIGSTOP of a `pos` instance, SIGCONT after `length`.
    PausePos,
    /// SIGKILL of a pod's `mariadbd`, started again (crash recovery) after `length`.
    KillDatabase,
    /// The TCP link between the pod's instances and its database refuses
    /// connections and cuts the open ones.
    DropLink,
    /// The link passes nothing either way (bytes wait, as over a network
    /// that lost its route; they flow again when it heals).
    BlackholeLink,
    /// The link adds `delay_ms` to every piece of traffic.
    SlowLink,
    /// Redis SIGKILLed and started again empty after `length`.
    WipeRedis,
    /// RabbitMQ SIGKILLed and started again on its data after `length`.
    RestartBroker,
    /// The webhook receivers answer 500.
    FailReceiver,
}

pub const ACTIONS: [Action; 9] = [
    Action::KillPos,
    Action::PausePos,
    Action::KillDatabase,
    Action::DropLink,
    Action::BlackholeLink,
    Action::SlowLink,
    Action::WipeRedis,
    Action::RestartBroker,
    Action::FailReceiver,
];

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::KillPos => "pos SIGKILL",
            Action::PausePos => "pos SIGSTOP",
            Action::KillDatabase => "database SIGKILL",
            Action::DropLink => "database link dropped",
            Action::BlackholeLink => "database link black-holed",
            Action::SlowLink => "database link slow",
            Action::WipeRedis => "Redis killed, wiped",
            Action::RestartBroker => "RabbitMQ restarted",
            Action::FailReceiver => "webhook receiver fails",
        }
    }

    /// How often it is drawn, against the others' weights.
    fn weight(self) -> u64 {
        match self {
            Action::KillPos | Action::KillDatabase | Action::DropLink | Action::BlackholeLink => 3,
            Action::PausePos | Action::SlowLink => 2,
            Action::WipeRedis | Action::RestartBroker | Action::FailReceiver => 1,
        }
    }

    /// The shortest and longest `length`, in milliseconds.
    fn lengths(self) -> (u64, u64) {
        match self {
            Action::KillPos | Action::KillDatabase => (200, 3_000),
            Action::PausePos => (500, 5_000),
            Action::DropLink | Action::BlackholeLink => (1_000, 6_000),
            Action::SlowLink => (5_000, 15_000),
            Action::WipeRedis | Action::RestartBroker => (500, 3_000),
            Action::FailReceiver => (5_000, 15_000),
        }
    }

    /// Whether it acts on one shard (its instances or its pod's database).
    fn has_shard(self) -> bool {
        !matches!(
            self,
            Action::WipeRedis | Action::RestartBroker | Action::FailReceiver
        )
    }
}

/// A `pos` kill this long lets the standby take over (the lease, 10 s,
/// runs out first).
const LONG_KILL: Duration = Duration::from_secs(13);

/// What one fault acts on: faults on one target take turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Instance { shard: usize, slot: usize },
    Database(usize),
    Link(usize),
    Redis,
    Broker,
    Receiver,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// From the run's start.
    pub at: Duration,
    pub action: Action,
    pub shard: usize,
    /// 0: the instance started first, 1: its standby (either may hold the
    /// lease by then).
    pub slot: usize,
    pub length: Duration,
    /// For [`Action::SlowLink`].
    pub delay_ms: u64,
}

impl Fault {
    pub fn target(&self) -> Target {
        match self.action {
            Action::KillPos | Action::PausePos => Target::Instance {
                shard: self.shard,
                slot: self.slot,
            },
            Action::KillDatabase => Target::Database(self.shard),
            Action::DropLink | Action::BlackholeLink | Action::SlowLink => Target::Link(self.shard),
            Action::WipeRedis => Target::Redis,
            Action::RestartBroker => Target::Broker,
            Action::FailReceiver => Target::Receiver,
        }
    }

    /// The shard whose writes it may stop, if any.
    pub fn shard_writes(&self) -> Option<usize> {
        self.action.has_shard().then_some(self.shard)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>7.1}s  {:<26}",
            self.at.as_secs_f64(),
            self.action.name()
        )?;
        match self.target() {
            Target::Instance { shard, slot } => write!(f, " shard {shard} slot {slot}")?,
            Target::Database(s) | Target::Link(s) => write!(f, " pod {s}        ")?,
            _ => write!(f, "              ")?,
        }
        write!(f, "  for {:.1}s", self.length.as_secs_f64())?;
        if self.action == Action::SlowLink {
            write!(f, " (+{} ms)", self.delay_ms)?;
        }
        Ok(())
    }
}

/// The faults of a run of `run` with `seed`, by start time: a new one on
/// average every `mean_gap`, none before [`WARM_UP`], all healed (by their
/// planned lengths) [`SETTLE`] before the end. Faults on different targets
/// overlap freely.
pub fn draw(seed: u64, run: Duration, mean_gap: Duration) -> Vec<Fault> {
    let mut rng = Rng::new(seed);
    let total: u64 = ACTIONS.iter().map(|a| a.weight()).sum();
    let mut faults = Vec::new();
    let mut at = WARM_UP;
    loop {
        at += mean_gap.mul_f64(0.25 + 1.5 * rng.unit());
        let mut pick = rng.next_u64() % total;
        let action = ACTIONS
            .into_iter()
            .find(|a| {
                let hit = pick < a.weight();
                pick = pick.saturating_sub(a.weight());
                hit
            })
            .unwrap_or(Action::KillPos);
        let (shortest, longest) = action.lengths();
        let mut length = Duration::from_millis(shortest + rng.next_u64() % (longest - shortest));
        let (shard, slot) = (rng.below(2), rng.below(2));
        if action == Action::KillPos && rng.below(4) == 0 {
            length = LONG_KILL;
        }
        let delay_ms = 20 + rng.next_u64() % 130;
        if at + length + SETTLE > run {
            return faults;
        }
        faults.push(Fault {
            at,
            action,
            shard,
            slot,
            length,
            delay_ms,
        });
    }
}
