//! The process's own metrics (`pos_process_*`): prometheus's collector for
//! memory, file descriptors and start time, with the CPU time replaced.
//! Its `process_cpu_seconds_total` divides clock ticks by ticks per second
//! in integers, so a process that used 0.67 s of CPU read 0; ours keeps
//! the fraction.

use prometheus::core::{Collector, Desc};
use prometheus::process_collector::ProcessCollector;
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Opts};

const NAMESPACE: &str = "pos";
const CPU: &str = "pos_process_cpu_seconds_total";

pub struct ProcessMetrics {
    others: ProcessCollector,
    cpu: Counter,
    descs: Vec<Desc>,
}

impl ProcessMetrics {
    pub fn new() -> ProcessMetrics {
        let others = ProcessCollector::new(std::process::id() as i32, NAMESPACE);
        let cpu = Counter::with_opts(
            Opts::new(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
            )
            .namespace(NAMESPACE),
        )
        .expect("valid metric");
        let descs = others
            .desc()
            .into_iter()
            .filter(|d| d.fq_name != CPU)
            .chain(cpu.desc())
            .cloned()
            .collect();
        ProcessMetrics { others, cpu, descs }
    }

    /// User and system CPU seconds of this process so far.
    fn cpu_seconds() -> Option<f64> {
        let stat = procfs::process::Process::myself().ok()?.stat().ok()?;
        Some((stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64)
    }
}

impl Collector for ProcessMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        if let Some(now) = Self::cpu_seconds() {
            let grown = now - self.cpu.get();
            if grown > 0.0 {
                self.cpu.inc_by(grown);
            }
        }
        let mut families: Vec<MetricFamily> = self
            .others
            .collect()
            .into_iter()
            .filter(|f| f.name() != CPU)
            .collect();
        families.extend(self.cpu.collect());
        families
    }
}
