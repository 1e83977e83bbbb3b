//! The read side: queue views, counters, a job, a page of a queue's jobs.

use super::state::Counters;
use super::views::JobView;
use super::{Broker, BrokerError, QueueView, blocking, limits};
use crate::job::{JobId, JobState};
use crate::storage::StoredJob;

impl Broker {
    /// One queue's defaults and counts.
    pub fn queue(&self, queue: &str) -> Result<QueueView, BrokerError> {
        let state = self.state.lock();
        let q = state.queue(queue).ok_or(BrokerError::QueueNotFound)?;
        Ok(QueueView {
            name: q.name.to_string(),
            config: q.config.clone(),
            counts: q.counts(),
        })
    }

    /// Every queue, sorted by name.
    pub fn queues(&self) -> Vec<QueueView> {
        let state = self.state.lock();
        let mut views: Vec<QueueView> = state
            .all_queues()
            .map(|q| QueueView {
                name: q.name.to_string(),
                config: q.config.clone(),
                counts: q.counts(),
            })
            .collect();
        views.sort_by(|a, b| a.name.cmp(&b.name));
        views
    }

    /// Every queue's throughput counters, sorted by name.
    pub fn counters(&self) -> Vec<(String, [u64; 6], Counters)> {
        let state = self.state.lock();
        let mut all: Vec<_> = state
            .all_queues()
            .map(|q| (q.name.to_string(), q.counts(), q.counters))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Everything stored about one job.
    pub async fn job(&self, id: JobId) -> Result<JobView, BrokerError> {
        let stored = self
            .read_stored(id.0)
            .await?
            .ok_or(BrokerError::JobNotFound)?;
        Ok(JobView::new(id.0, stored, self.now()))
    }

    /// The queue of job `id`: from memory for a live job (the access check of every ack by a
    /// key limited to some queues asks this), from the store for a finished one.
    pub async fn job_queue(&self, id: JobId) -> Result<std::sync::Arc<str>, BrokerError> {
        let live = {
            let state = self.state.lock();
            state
                .jobs
                .get(&id.0)
                .and_then(|slot| state.queue_name(slot.queue).cloned())
        };
        match live {
            Some(queue) => Ok(queue),
            None => Ok(self.job(id).await?.queue.into()),
        }
    }

    /// A page of `queue`'s jobs in a live `state` (scheduled, ready, leased or dead), in id
    /// order, starting after `after`.
    pub async fn list_jobs(
        &self,
        queue: &str,
        state: JobState,
        after: Option<JobId>,
        limit: usize,
    ) -> Result<Vec<JobView>, BrokerError> {
        limits::check_page(limit)?;
        let ids: Vec<u64> = {
            let guard = self.state.lock();
            let q = guard.queue(queue).ok_or(BrokerError::QueueNotFound)?;
            let start = after.map_or(0, |a| a.0.saturating_add(1));
            if state == JobState::Ready {
                // Ready jobs are indexed in dispatch order only; the page is still in id order.
                q.ready_ids_in_id_order(start, limit)
            } else {
                q.members.get(state.index()).map_or_else(Vec::new, |m| {
                    m.range(start..).take(limit).copied().collect()
                })
            }
        };
        let mut views = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(stored) = self.read_stored(id).await? {
                views.push(JobView::new(id, stored, self.now()));
            }
        }
        Ok(views)
    }

    /// Reads one stored job off the async runtime.
    pub(super) async fn read_stored(&self, id: u64) -> Result<Option<StoredJob>, BrokerError> {
        Ok(blocking(|| self.store.read_job(id))?)
    }
}
