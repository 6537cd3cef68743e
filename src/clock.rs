//! A cheap monotonic clock in milliseconds that fits an atomic: for times
//! that many threads read and write without a lock (when a tenant was last
//! used, when revocations were last polled).

use std::sync::LazyLock;
use std::time::Instant;

/// Milliseconds since the process's first call.
pub fn now_ms() -> u64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    START.elapsed().as_millis() as u64
}
