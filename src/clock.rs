//! The service's three clocks, each its own type so one is never compared
//! with another: a cheap monotonic clock of this process ([`Ticks`]: when
//! a tenant was last used, when a key was read, when revocations were last
//! polled), and the wall clock every instance shares, in milliseconds
//! ([`UnixMs`]: when a back-office session began, which a sign-out records
//! in MySQL) and in seconds ([`UnixSecs`]: a session's last renewal, as its
//! cookie carries it).

use std::fmt;
use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since this process first asked; a `u64` inside, so it
/// fits an atomic (`AtomicU64` holds [`Ticks::as_millis`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Ticks(u64);

impl Ticks {
    pub fn now() -> Ticks {
        static START: LazyLock<Instant> = LazyLock::new(Instant::now);
        Ticks(START.elapsed().as_millis() as u64)
    }

    /// Ticks stored as [`Ticks::as_millis`].
    pub const fn from_millis(ms: u64) -> Ticks {
        Ticks(ms)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// How long after `earlier` this is (zero if it is not later).
    pub fn since(self, earlier: Ticks) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// Wall-clock milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixMs(pub u64);

impl UnixMs {
    pub fn now() -> UnixMs {
        UnixMs(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// The next millisecond.
    pub fn next(self) -> UnixMs {
        UnixMs(self.0.saturating_add(1))
    }

    /// The whole second this falls in.
    pub fn secs(self) -> UnixSecs {
        UnixSecs(self.0 / 1000)
    }
}

/// Wall-clock seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct UnixSecs(pub u64);

impl UnixSecs {
    pub fn now() -> UnixSecs {
        UnixMs::now().secs()
    }

    /// How long after `earlier` this is (zero if it is not later).
    pub fn since(self, earlier: UnixSecs) -> Duration {
        Duration::from_secs(self.0.saturating_sub(earlier.0))
    }

    pub fn plus(self, d: Duration) -> UnixSecs {
        UnixSecs(self.0.saturating_add(d.as_secs()))
    }
}

impl fmt::Display for UnixMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for UnixSecs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
