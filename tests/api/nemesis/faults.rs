//! Doing the schedule's faults to the platform, each at its time, and
//! healing them; and, as an orchestrator would, starting again any `pos`
//! instance that exited by itself.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::platform::Platform;
use super::schedule::{Action, Fault};

/// A fault as it happened.
#[derive(Debug, Clone)]
pub struct Done {
    pub fault: Fault,
    pub started: Instant,
    /// When the platform was whole again: the instance or database back
    /// (its boot included), the link or receiver healed.
    pub healed: Instant,
    /// What went wrong healing it (a shard not back in time).
    pub finding: Option<String>,
}

/// Longest wait for a shard to have a ready instance after a fault.
const BACK_WITHIN: Duration = Duration::from_secs(60);
/// A killed instance started again is ready within this (its boot; a
/// long kill's standby takes over within the lease's life and this).
const BOOT_WITHIN: Duration = Duration::from_secs(15);

/// Does `fault` at `start + fault.at` (later if another fault still holds
/// its target) and heals it.
pub async fn inflict(platform: Rc<Platform>, fault: Fault, start: Instant) -> Done {
    let due = start + fault.at;
    actix_web::rt::time::sleep(due.saturating_duration_since(Instant::now())).await;
    let p = &platform;
    let (shard, length) = (fault.shard, fault.length);
    let wait = || actix_web::rt::time::sleep(length);
    let mut finding = None;
    let (started, healed) = match fault.action {
        Action::KillPos => {
            let mut instance = p.instances[shard][fault.slot].lock().await;
            let started = Instant::now();
            instance.kill().await;
            let back = until_shard_ready(p, shard);
            let relaunch = async {
                wait().await;
                instance.relaunch();
            };
            let (healed, ()) = futures_util::join!(back, relaunch);
            let healed = healed.unwrap_or_else(|| {
                finding = Some(format!(
                    "{fault}: shard {shard} was not back within {BACK_WITHIN:?}"
                ));
                Instant::now()
            });
            if healed > started + length + BOOT_WITHIN {
                finding = Some(format!(
                    "{fault}: shard {shard} was back only {:.1}s after the kill",
                    (healed - started).as_secs_f64()
                ));
            }
            (started, healed)
        }
        Action::PausePos => {
            let instance = p.instances[shard][fault.slot].lock().await;
            let started = Instant::now();
            instance.signal("-STOP");
            wait().await;
            instance.signal("-CONT");
            (started, Instant::now())
        }
        Action::KillDatabase => {
            let mut database = p.databases[shard].lock().await;
            let started = Instant::now();
            database.kill();
            wait().await;
            database.restart().await;
            (started, Instant::now())
        }
        Action::DropLink | Action::BlackholeLink | Action::SlowLink => {
            let _turn = p.link_turns[shard].lock().await;
            let started = Instant::now();
            let link = &p.links[shard];
            match fault.action {
                Action::DropLink => link.cut(),
                Action::BlackholeLink => link.blackhole(),
                _ => link.slow(fault.delay_ms),
            }
            wait().await;
            link.heal();
            (started, Instant::now())
        }
        Action::WipeRedis => {
            let mut redis = p.redis.lock().await;
            let started = Instant::now();
            redis.stop();
            wait().await;
            redis.restart().await;
            (started, Instant::now())
        }
        Action::RestartBroker => {
            let mut broker = p.broker.lock().await;
            let started = Instant::now();
            broker.kill();
            wait().await;
            broker.restart().await;
            let healed = Instant::now();
            p.feed.lock().await.reconnect().await;
            (started, healed)
        }
        Action::FailReceiver => {
            let _turn = p.receiver_turn.lock().await;
            let started = Instant::now();
            for r in &p.receivers {
                r.status.store(500, Ordering::SeqCst);
            }
            wait().await;
            for r in &p.receivers {
                r.status.store(200, Ordering::SeqCst);
            }
            (started, Instant::now())
        }
    };
    Done {
        fault,
        started,
        healed,
        finding,
    }
}

/// The first moment shard `shard` has a ready instance again (`None`:
/// not within [`BACK_WITHIN`]).
async fn until_shard_ready(p: &Platform, shard: usize) -> Option<Instant> {
    let until = Instant::now() + BACK_WITHIN;
    while Instant::now() < until {
        if p.shard_ready(shard).await {
            return Some(Instant::now());
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// Starts again, every half second, any instance that exited by itself
/// (not one a fault holds), until `stop`; what exited, with its log's tail
/// (no fault here lets an instance lose its lease: every exit is a finding).
pub async fn supervise(platform: Rc<Platform>, stop: Rc<RefCell<bool>>) -> Vec<String> {
    let mut exits = Vec::new();
    while !*stop.borrow() {
        for (shard, slots) in platform.instances.iter().enumerate() {
            for (slot, instance) in slots.iter().enumerate() {
                let Ok(mut instance) = instance.try_lock() else {
                    continue;
                };
                if instance.has_exited() {
                    let log = instance.log_text();
                    let tail: Vec<&str> = log.lines().rev().take(3).collect();
                    exits.push(format!("shard {shard} slot {slot} exited: {tail:?}"));
                    instance.relaunch();
                }
            }
        }
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    }
    exits
}
