//! The store's timings, recorded into `prometheus-client` histograms and counters.
//!
//! Every layer records into its own metrics; `http::metrics` decides what `GET /metrics` shows
//! and to whom, and builds the exposition with `prometheus-client`'s encoders. Times are in
//! seconds and sizes in bytes, as Prometheus names them.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Upper bounds (seconds) of the storage timings: from 100 µs (a small group's apply, an
/// fdatasync on a fast disk) to 10 s (a checkpoint of a large file on a slow one).
pub const STORAGE_SECONDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

/// Upper bounds of commit group sizes (write requests per commit).
pub const GROUP_SIZES: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// What the store records. Each histogram is updated by one thread (the writer or the journal
/// thread), so the lock inside each `prometheus-client` histogram is only ever contended by a
/// scrape.
#[derive(Debug, Clone)]
pub struct StorageMetrics {
    /// Write requests per commit.
    pub group_size: Histogram,
    /// Duration of applying one commit group to redb (without fsync).
    pub apply_seconds: Histogram,
    /// Duration of writing appended frames to the journal file (before their fsync).
    pub journal_append_seconds: Histogram,
    /// Bytes written to the journal file.
    pub journal_appended_bytes: Counter,
    /// Duration of journal fsyncs (each makes one or more commit groups durable).
    pub fsync_seconds: Histogram,
    /// Duration of checkpoints (journal fsync, then a durable redb commit).
    pub checkpoint_seconds: Histogram,
}

impl StorageMetrics {
    /// Empty histograms with the buckets `/metrics` shows.
    pub fn new() -> StorageMetrics {
        StorageMetrics {
            group_size: Histogram::new(GROUP_SIZES),
            apply_seconds: Histogram::new(STORAGE_SECONDS),
            journal_append_seconds: Histogram::new(STORAGE_SECONDS),
            journal_appended_bytes: Counter::default(),
            fsync_seconds: Histogram::new(STORAGE_SECONDS),
            checkpoint_seconds: Histogram::new(STORAGE_SECONDS),
        }
    }

    /// Adds these metrics to `registry` (shared, not copied: a scrape reads the live values).
    /// The names get their unit and, for counters, `_total` from the encoder.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "wharf_commit_group_size",
            "Write requests per storage commit",
            self.group_size.clone(),
        );
        registry.register_with_unit(
            "wharf_apply",
            "Duration of applying one commit group to the data file, before its journal fsync",
            Unit::Seconds,
            self.apply_seconds.clone(),
        );
        registry.register_with_unit(
            "wharf_journal_append",
            "Duration of writing appended commit groups to the journal file, before their fsync",
            Unit::Seconds,
            self.journal_append_seconds.clone(),
        );
        registry.register_with_unit(
            "wharf_journal_appended",
            "Bytes written to the journal file",
            Unit::Bytes,
            self.journal_appended_bytes.clone(),
        );
        registry.register_with_unit(
            "wharf_fsync",
            "Duration of journal fsyncs (each makes every commit group written before it durable)",
            Unit::Seconds,
            self.fsync_seconds.clone(),
        );
        registry.register_with_unit(
            "wharf_checkpoint",
            "Duration of checkpoints (the journal folded into the data file with one durable commit)",
            Unit::Seconds,
            self.checkpoint_seconds.clone(),
        );
    }
}

impl Default for StorageMetrics {
    fn default() -> Self {
        StorageMetrics::new()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_store_s_metrics_are_named_with_their_units() {
        let metrics = StorageMetrics::new();
        metrics.fsync_seconds.observe(0.0003);
        metrics.fsync_seconds.observe(20.0);
        metrics.journal_appended_bytes.inc_by(4096);
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "# TYPE wharf_fsync_seconds histogram",
            "# UNIT wharf_fsync_seconds seconds",
            "wharf_fsync_seconds_bucket{le=\"0.00025\"} 0",
            "wharf_fsync_seconds_bucket{le=\"0.0005\"} 1",
            "wharf_fsync_seconds_bucket{le=\"10.0\"} 1",
            "wharf_fsync_seconds_bucket{le=\"+Inf\"} 2",
            "wharf_fsync_seconds_count 2",
            "# TYPE wharf_journal_appended_bytes counter",
            "wharf_journal_appended_bytes_total 4096",
            "# TYPE wharf_commit_group_size histogram",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert!(!text.contains("_total_total"), "{text}");
    }
}
