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
}

/// Longest wait for a shard to have a ready instance after a fault.
const BACK_WITHIN: Duration = Duration::from_secs(60);

/// Does `fault` at `start + fault.at` (later if another fault still holds
/// its target) and heals it.
pub async fn inflict(platform: Rc<Platform>, fault: Fault, start: Instant) -> Done {
    let due = start + fault.at;
    actix_web::rt::time::sleep(due.saturating_duration_since(Instant::now())).await;
    let p = &platform;
    let (shard, length) = (fault.shard, fault.length);
    let wait = || actix_web::rt::time::sleep(length);
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
    }
}

/// The first moment shard `shard` has a ready instance again.
async fn until_shard_ready(p: &Platform, shard: usize) -> Instant {
    let until = Instant::now() + BACK_WITHIN;
    while !p.shard_ready(shard).await && Instant::now() < until {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    Instant::now()
}

/// Starts again, every half second, any instance that exited by itself
/// (not one a fault holds), until `stop`; what exited, with its log's tail.
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
