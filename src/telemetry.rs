//! Log set-up: `tracing` with readable text by default, JSON for machines.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber once; later calls do nothing.
pub fn init(level: &str, format: LogFormat) {
    // refinery reports every migration step at info; `pos` reports what it applied.
    let level = if level.contains("refinery") {
        level.to_string()
    } else {
        format!("{level},refinery_core=warn")
    };
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, not in a file or a journal.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// A budget of log lines for events a client can cause at will (a 5xx
/// answer while MySQL is away): past it, lines are left out and counted,
/// and the next line that fits says how many.
pub struct LogBudget {
    lines: governor::DefaultDirectRateLimiter,
    left_out: std::sync::atomic::AtomicU64,
}

impl LogBudget {
    /// `per_second` lines on average, `burst` at once.
    pub fn new(per_second: std::num::NonZeroU32, burst: std::num::NonZeroU32) -> LogBudget {
        LogBudget {
            lines: governor::RateLimiter::direct(
                governor::Quota::per_second(per_second).allow_burst(burst),
            ),
            left_out: Default::default(),
        }
    }

    /// `Some(lines left out since the last one)` when a line may be
    /// written now; `None` when this one is left out.
    pub fn admit(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        match self.lines.check() {
            Ok(()) => Some(self.left_out.swap(0, Relaxed)),
            Err(_) => {
                self.left_out.fetch_add(1, Relaxed);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::LogBudget;

    #[test]
    fn a_flood_of_lines_is_cut_to_the_budget_and_counted() {
        let budget = LogBudget::new(NonZeroU32::MIN, NonZeroU32::new(5).expect("5"));
        let written: Vec<u64> = (0..1000).filter_map(|_| budget.admit()).collect();
        // The burst, and at most one more if a second passed meanwhile.
        assert!((5..=6).contains(&written.len()), "{written:?}");
        assert_eq!(
            budget.left_out.load(std::sync::atomic::Ordering::Relaxed) as usize + written.len(),
            1000
        );
    }
}
