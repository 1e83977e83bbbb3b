//! The series read from the broker's state at scrape time: each collector holds a snapshot
//! taken for one caller (filtered to what it may see) and encodes it.
//!
//! Gauges of jobs per queue and state, and the queues' throughput counters, live in the
//! broker's state already (updated under the lock each change takes anyway); reading them at
//! scrape time keeps the request path free of metric updates and the series bounded by the
//! queue table.

use std::collections::BTreeMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Unit;

use crate::auth::{Keys, Principal, TenantStats};
use crate::broker::{Broker, Counters, DiskSpace};
use crate::job::JobState;
use crate::mirror::{MirrorState, MirrorStatus};

/// A queue's labels.
#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    tenant: String,
    queue: String,
}

/// A queue's and job state's labels.
#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    tenant: String,
    queue: String,
    state: &'static str,
}

/// Jobs per state and throughput counters of the queues a caller may touch.
#[derive(Debug)]
pub struct QueueSeries {
    queues: Vec<(QueueLabels, [u64; 6], Counters)>,
}

impl QueueSeries {
    /// The queues `by` may touch, now.
    pub fn of(broker: &Broker, by: &Principal) -> QueueSeries {
        let queues = broker
            .counters()
            .into_iter()
            .filter(|(queue, ..)| by.may_touch(queue))
            .map(|(queue, counts, counters)| {
                let (tenant, name) = crate::tenant::split(&queue);
                let labels = QueueLabels {
                    tenant: tenant.to_owned(),
                    queue: name.to_owned(),
                };
                (labels, counts, counters)
            })
            .collect();
        QueueSeries { queues }
    }
}

/// Reads one throughput counter of a queue.
type CounterFn = fn(&Counters) -> u64;

impl Collector for QueueSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let help =
            "Jobs per queue and state (finished and dead jobs until retention deletes them).";
        let mut family = encoder.encode_descriptor("wharf_jobs", help, None, MetricType::Gauge)?;
        for (queue, counts, _) in &self.queues {
            for state in JobState::ALL {
                let labels = JobLabels {
                    tenant: queue.tenant.clone(),
                    queue: queue.queue.clone(),
                    state: state.as_str(),
                };
                let count = counts.get(state.index()).copied().unwrap_or(0);
                ConstGauge::new(count).encode(family.encode_family(&labels)?)?;
            }
        }
        let counters: [(&str, &str, CounterFn); 6] = [
            (
                "wharf_jobs_enqueued",
                "Jobs enqueued, schedule fires included (not duplicates of an idempotency key).",
                |c| c.enqueued,
            ),
            (
                "wharf_jobs_delivered",
                "Deliveries (leases handed out).",
                |c| c.delivered,
            ),
            ("wharf_jobs_acked", "Jobs acked.", |c| c.acked),
            ("wharf_jobs_nacked", "Nacks.", |c| c.nacked),
            ("wharf_jobs_expired", "Leases that expired.", |c| c.expired),
            ("wharf_jobs_dead_lettered", "Jobs that became dead.", |c| {
                c.dead_lettered
            }),
        ];
        for (name, help, get) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (queue, _, c) in &self.queues {
                ConstCounter::new(get(c)).encode(family.encode_family(queue)?)?;
            }
        }
        Ok(())
    }
}

/// A tenant's labels.
#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    tenant: String,
}

/// A refusal's labels.
#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    tenant: String,
    reason: &'static str,
}

/// The labels of refusals without a key, so without a tenant.
#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
struct UnauthorizedLabels {
    reason: &'static str,
}

/// Requests by tenant and refusals by reason, once keys exist: the tenants a caller reaches.
#[derive(Debug)]
pub struct TenantSeries {
    tenants: BTreeMap<String, TenantStats>,
    /// Requests refused with 401 (an operator's only: they have no tenant).
    unauthorized: Option<u64>,
}

impl TenantSeries {
    /// The tenants `by` reaches; `None` while no key exists.
    pub fn of(keys: &Keys, by: &Principal) -> Option<TenantSeries> {
        if !keys.enabled() {
            return None;
        }
        let mut tenants = keys.tenant_stats();
        tenants.retain(|tenant, _| by.reaches(tenant));
        Some(TenantSeries {
            tenants,
            unauthorized: by.is_operator().then(|| keys.unauthorized_total()),
        })
    }
}

impl Collector for TenantSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "wharf_requests",
            "Requests a key was let through with, by its tenant.",
            None,
            MetricType::Counter,
        )?;
        for (tenant, stats) in &self.tenants {
            let labels = TenantLabels {
                tenant: tenant.clone(),
            };
            ConstCounter::new(stats.requests).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "wharf_requests_rejected",
            "Requests refused before their handler: unauthorized (no valid key, so no tenant), forbidden (a missing scope), rate_limited.",
            None,
            MetricType::Counter,
        )?;
        if let Some(unauthorized) = self.unauthorized {
            let labels = UnauthorizedLabels {
                reason: "unauthorized",
            };
            ConstCounter::new(unauthorized).encode(family.encode_family(&labels)?)?;
        }
        for (tenant, stats) in &self.tenants {
            for (reason, count) in [
                ("forbidden", stats.forbidden),
                ("rate_limited", stats.rate_limited),
            ] {
                let labels = RefusalLabels {
                    tenant: tenant.clone(),
                    reason,
                };
                ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// The broker as a whole: long-polls, retention, the data volume, start-up recovery.
#[derive(Debug)]
pub struct BrokerSeries {
    polls_waiting: usize,
    purged: u64,
    forgotten: u64,
    disk: DiskSpace,
    recovered_jobs: u64,
    recovery_seconds: f64,
}

impl BrokerSeries {
    /// The broker's readings now.
    pub fn of(broker: &Broker) -> BrokerSeries {
        let (purged, forgotten) = broker.retention_totals();
        let recovery = broker.recovery_stats();
        BrokerSeries {
            polls_waiting: broker.poll_stats().borrow().waiting,
            purged,
            forgotten,
            disk: broker.disk_space(),
            recovered_jobs: recovery.jobs,
            recovery_seconds: recovery.elapsed.as_secs_f64(),
        }
    }
}

/// Encodes one series without labels.
fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    metric: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    metric.encode(encoder.encode_descriptor(name, help, unit, metric.metric_type())?)
}

impl Collector for BrokerSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        let bytes = Some(&Unit::Bytes);
        let disk = &self.disk;
        single(
            e,
            "wharf_polls_waiting",
            "Long-polls waiting for a job.",
            None,
            &ConstGauge::new(self.polls_waiting),
        )?;
        single(
            e,
            "wharf_retention_purged",
            "Finished and dead jobs deleted by retention.",
            None,
            &ConstCounter::new(self.purged),
        )?;
        single(
            e,
            "wharf_idempotency_keys_forgotten",
            "Idempotency keys forgotten after their window.",
            None,
            &ConstCounter::new(self.forgotten),
        )?;
        single(
            e,
            "wharf_disk_available",
            "Free bytes on the data volume (last reading).",
            bytes,
            &ConstGauge::new(disk.available_bytes),
        )?;
        single(
            e,
            "wharf_disk_floor",
            "Free space below which writes that add data are refused (507).",
            bytes,
            &ConstGauge::new(disk.floor_bytes),
        )?;
        single(
            e,
            "wharf_disk_pending_checkpoint",
            "Journal bytes the next checkpoint writes into the data file (counted three times against the free space).",
            bytes,
            &ConstGauge::new(disk.pending_checkpoint_bytes),
        )?;
        single(
            e,
            "wharf_disk_low",
            "1 while the data volume is below its floor.",
            None,
            &ConstGauge::new(u64::from(disk.low)),
        )?;
        single(
            e,
            "wharf_recovered_jobs",
            "Job records scanned at start-up.",
            None,
            &ConstGauge::new(self.recovered_jobs),
        )?;
        single(
            e,
            "wharf_recovery",
            "Start-up recovery time.",
            Some(&Unit::Seconds),
            &ConstGauge::new(self.recovery_seconds),
        )
    }
}

/// A mirror's labels.
#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
struct MirrorLabels {
    mirror: String,
}

/// A mirror's and relay state's labels.
#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
struct MirrorStateLabels {
    mirror: String,
    state: &'static str,
}

/// One mirror's readings.
#[derive(Debug)]
struct MirrorReading {
    labels: MirrorLabels,
    state: MirrorState,
    lag_events: u64,
    lag_seconds: f64,
    applied: u64,
    errors: u64,
    dead: u64,
    up: bool,
}

/// The mirrors' relays, labelled by mirror.
#[derive(Debug)]
pub struct MirrorSeries {
    mirrors: Vec<MirrorReading>,
}

impl MirrorSeries {
    /// The relays' statuses, their lag measured against the change log's `head` at `now`.
    pub fn of(statuses: Vec<MirrorStatus>, head: u64, now: u64) -> MirrorSeries {
        let mirrors = statuses
            .into_iter()
            .map(|m| MirrorReading {
                lag_events: m.lag_events(head),
                lag_seconds: m.lag_ms(head, now) as f64 / 1000.0,
                state: m.state,
                applied: m.applied_total,
                errors: m.errors_total,
                dead: m.dead_total,
                up: m.up,
                labels: MirrorLabels { mirror: m.name },
            })
            .collect();
        MirrorSeries { mirrors }
    }

    /// Whether there are no mirrors.
    pub fn is_empty(&self) -> bool {
        self.mirrors.is_empty()
    }
}

/// Encodes one family with a series of each mirror: `value` of its reading.
fn each_mirror<M: EncodeMetric + TypedMetric>(
    encoder: &mut DescriptorEncoder,
    mirrors: &[MirrorReading],
    (name, help, unit): (&str, &str, Option<&Unit>),
    value: impl Fn(&MirrorReading) -> M,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, unit, M::TYPE)?;
    for m in mirrors {
        value(m).encode(family.encode_family(&m.labels)?)?;
    }
    Ok(())
}

impl Collector for MirrorSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (e, all) = (&mut encoder, &self.mirrors[..]);
        let plain = |name, help| (name, help, None);
        let help = "Durable events the mirror does not hold yet.";
        each_mirror(e, all, plain("wharf_mirror_lag_events", help), |m| {
            ConstGauge::new(m.lag_events)
        })?;
        let help = "How long the oldest event the mirror lacks has waited (0 when caught up).";
        let seconds = ("wharf_mirror_lag", help, Some(&Unit::Seconds));
        each_mirror(e, all, seconds, |m| ConstGauge::new(m.lag_seconds))?;
        let help = "Events applied to the mirror.";
        each_mirror(e, all, plain("wharf_mirror_applied_events", help), |m| {
            ConstCounter::new(m.applied)
        })?;
        let help =
            "Failed tries to reach or write to the mirror (each is retried after a backoff).";
        each_mirror(e, all, plain("wharf_mirror_errors", help), |m| {
            ConstCounter::new(m.errors)
        })?;
        let help = "Events the mirror refused, set aside in its dead list.";
        each_mirror(e, all, plain("wharf_mirror_dead_events", help), |m| {
            ConstCounter::new(m.dead)
        })?;
        let help = "1 when the last try to reach the mirror worked.";
        each_mirror(e, all, plain("wharf_mirror_up", help), |m| {
            ConstGauge::new(u64::from(m.up))
        })?;
        let mut family = e.encode_descriptor(
            "wharf_mirror_state",
            "1 for the state the mirror's relay is in (connecting, snapshotting, following, down), 0 for the others.",
            None,
            MetricType::Gauge,
        )?;
        for m in all {
            for state in MirrorState::ALL {
                let labels = MirrorStateLabels {
                    mirror: m.labels.mirror.clone(),
                    state: state.as_str(),
                };
                let value = u64::from(m.state == state);
                ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
