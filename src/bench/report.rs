//! Latency histograms, counters and the final report (table and JSON).

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The operations whose latency is recorded.
pub const OPERATIONS: [&str; 4] = ["enqueue", "poll", "ack", "end_to_end"];

/// Latencies of one worker (microseconds), merged at the end.
pub struct Latencies {
    histograms: [Histogram<u64>; 4],
}

impl Latencies {
    /// Empty histograms covering 1 µs to 10 minutes at 3 significant digits.
    pub fn new() -> Latencies {
        let make = || {
            Histogram::new_with_bounds(1, 600_000_000, 3)
                .unwrap_or_else(|_| unreachable!("valid bounds"))
        };
        Latencies {
            histograms: [make(), make(), make(), make()],
        }
    }

    /// Records one latency of operation `op` (an index into [`OPERATIONS`]).
    pub fn record(&mut self, op: usize, elapsed: Duration) {
        let micros = (elapsed.as_micros() as u64).clamp(1, 600_000_000);
        let _ = self.histograms[op].record(micros);
    }

    /// Adds another worker's latencies.
    pub fn merge(&mut self, other: &Latencies) {
        for (mine, theirs) in self.histograms.iter_mut().zip(&other.histograms) {
            let _ = mine.add(theirs);
        }
    }

    fn summary(&self, op: usize) -> Percentiles {
        let h = &self.histograms[op];
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            p999: ms(0.999),
            max: h.max() as f64 / 1000.0,
        }
    }
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

/// Percentiles of one operation, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    /// Observations.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
}

/// Request failures per operation.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Errors {
    /// Failed enqueue requests.
    pub enqueue: u64,
    /// Failed polls.
    pub poll: u64,
    /// Failed acks (requests, or items refused in a batch).
    pub ack: u64,
}

impl Errors {
    /// All errors.
    pub fn total(&self) -> u64 {
        self.enqueue + self.poll + self.ack
    }
}

/// The result of a run, as printed and as written by `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What ran.
    pub settings: serde_json::Value,
    /// Jobs enqueued (201 received).
    pub enqueued: u64,
    /// Jobs acked (the full enqueue → poll → ack cycle).
    pub completed: u64,
    /// Wall time of the run.
    pub elapsed_sec: f64,
    /// Enqueued jobs per second.
    pub enqueued_per_sec: f64,
    /// Completed cycles per second.
    pub cycles_per_sec: f64,
    /// Latency percentiles per operation (ms). `end_to_end` is enqueue sent → delivered.
    pub latency_ms: std::collections::BTreeMap<&'static str, Percentiles>,
    /// Failures.
    pub errors: Errors,
}

impl Report {
    /// Builds the report of a finished run.
    pub fn new(
        settings: serde_json::Value,
        enqueued: u64,
        completed: u64,
        elapsed: Duration,
        latencies: &Latencies,
        errors: Errors,
    ) -> Report {
        let secs = elapsed.as_secs_f64().max(1e-9);
        Report {
            settings,
            enqueued,
            completed,
            elapsed_sec: secs,
            enqueued_per_sec: enqueued as f64 / secs,
            cycles_per_sec: completed as f64 / secs,
            latency_ms: OPERATIONS
                .iter()
                .enumerate()
                .map(|(i, op)| (*op, latencies.summary(i)))
                .collect(),
            errors,
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "enqueued {} jobs, completed {} cycles in {:.2} s\nenqueued/s {:>12.0}\ncycles/s   {:>12.0}\n\n",
            self.enqueued,
            self.completed,
            self.elapsed_sec,
            self.enqueued_per_sec,
            self.cycles_per_sec
        );
        out.push_str(&format!(
            "{:<12}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}   (ms)\n",
            "latency", "count", "p50", "p90", "p99", "p99.9", "max"
        ));
        for (op, p) in &self.latency_ms {
            out.push_str(&format!(
                "{op:<12}{:>10}{:>10.2}{:>10.2}{:>10.2}{:>10.2}{:>10.2}\n",
                p.count, p.p50, p.p90, p.p99, p.p999, p.max
            ));
        }
        out.push_str(&format!(
            "\nerrors: enqueue {}, poll {}, ack {}\n",
            self.errors.enqueue, self.errors.poll, self.errors.ack
        ));
        out
    }
}
