//! Consistent snapshots of every job, queue and audit record, for mirrors that start or fall behind the log.

use super::views::JobView;
use super::{Broker, BrokerError, QueueConfig, blocking};
use crate::clock::Millis;
use crate::storage::{QueueRecord, Snapshot as StoredSnapshot};

/// One read transaction's view of every job and queue, and the last event it reflects: a
/// mirror that applies it and then the events after [`Snapshot::seq`] holds the broker's state.
pub struct Snapshot {
    inner: StoredSnapshot,
    /// When it was taken (a job's public state depends on the clock).
    now: Millis,
    defaults: QueueConfig,
}

impl Broker {
    /// Takes a snapshot. It returns once the events the snapshot reflects are durable, so that
    /// a mirror never holds a state a crash could still take back.
    pub async fn snapshot(&self) -> Result<Snapshot, BrokerError> {
        let inner = blocking(|| self.store.snapshot())?;
        let mut durable = self.store.durable_events();
        durable
            .wait_for(|&seq| seq >= inner.seq)
            .await
            .map_err(|_| BrokerError::ShuttingDown)?;
        Ok(Snapshot {
            inner,
            now: self.now(),
            defaults: self.queue_defaults.clone(),
        })
    }
}

impl Snapshot {
    /// The last event the snapshot reflects.
    pub fn seq(&self) -> u64 {
        self.inner.seq
    }

    /// When it was taken.
    pub fn taken_at(&self) -> Millis {
        self.now
    }

    /// Every queue and its settings.
    pub fn queues(&self) -> Result<Vec<(String, QueueConfig)>, BrokerError> {
        let defaults = QueueRecord::from(self.defaults.clone());
        let queues = blocking(|| self.inner.queues(&defaults))?;
        Ok(queues
            .into_iter()
            .map(|(name, record)| (name, QueueConfig::from(record)))
            .collect())
    }

    /// The next `limit` jobs in id order; empty once every job has been read.
    pub fn next_jobs(&mut self, limit: usize) -> Result<Vec<JobView>, BrokerError> {
        let now = self.now;
        let jobs = blocking(|| self.inner.next_jobs(limit))?;
        Ok(jobs
            .into_iter()
            .map(|(id, stored)| JobView::new(id, stored, now))
            .collect())
    }

    /// Up to `limit` audit records after sequence `after`, in order.
    pub fn audit(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, super::AuditRecord)>, BrokerError> {
        Ok(blocking(|| self.inner.audit(after, limit))?)
    }
}
