//! Lock-free counters and fixed-bucket histograms, rendered in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// A histogram with fixed upper bounds, updated with relaxed atomics (exact enough for metrics).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    scale: f64,
}

impl Histogram {
    /// A histogram over `bounds`; observed values are stored with `scale` precision
    /// (1e6 for seconds, 1 for counts).
    pub fn new(bounds: &'static [f64], scale: f64) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            scale,
        }
    }

    /// Records one observation.
    pub fn observe(&self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|&b| value <= b)
            .unwrap_or(self.bounds.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((value * self.scale) as u64, Ordering::Relaxed);
    }

    /// How many observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Appends the `_bucket`, `_sum` and `_count` lines of metric `name`.
    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / self.scale;
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

/// Commit metrics of the store, exported at `/metrics`.
#[derive(Debug)]
pub struct StorageMetrics {
    /// Requests per commit.
    pub group_size: Histogram,
    /// Duration of applying one commit group to redb (without fsync).
    pub apply_seconds: Histogram,
    /// Duration of journal fsyncs (each makes one or more commit groups durable).
    pub fsync_seconds: Histogram,
    /// Duration of checkpoints (journal fsync, then a durable redb commit).
    pub checkpoint_seconds: Histogram,
}

impl StorageMetrics {
    /// Empty histograms with the buckets `/metrics` shows.
    pub fn new() -> StorageMetrics {
        const SECONDS: &[f64] = &[
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ];
        const GROUP: &[f64] = &[
            1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
        ];
        StorageMetrics {
            group_size: Histogram::new(GROUP, 1.0),
            apply_seconds: Histogram::new(SECONDS, 1e6),
            fsync_seconds: Histogram::new(SECONDS, 1e6),
            checkpoint_seconds: Histogram::new(SECONDS, 1e6),
        }
    }
}

impl Default for StorageMetrics {
    fn default() -> Self {
        StorageMetrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_count_everything() {
        let h = Histogram::new(&[1.0, 10.0], 1.0);
        for v in [0.5, 1.0, 5.0, 50.0] {
            h.observe(v);
        }
        let mut out = String::new();
        h.render(&mut out, "x", "test");
        assert!(out.contains("x_bucket{le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"10\"} 3\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("x_count 4\n"), "{out}");
        assert_eq!(h.count(), 4);
    }
}
