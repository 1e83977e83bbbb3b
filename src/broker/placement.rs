//! Placing committed jobs in memory: the second half of an enqueue (and of an ack's follow-up
//! enqueues, and of a schedule's fire), which must happen even when the request that submitted
//! the insert is dropped meanwhile (a client that disconnects before its fsync): a job that was
//! stored must be deliverable, not only found again after a restart.

use tokio::runtime::Handle;

use super::state::{Phase, Slot};
use super::views::public_state;
use super::{Broker, BrokerError, Enqueued};
use crate::clock::Millis;
use crate::job::{JobId, JobState};
use crate::storage::{Original, Pending, Written};

/// Jobs prepared for one insert request, to place in memory once it commits.
pub(super) type PreparedJobs = Vec<(u64, Slot)>;

/// Jobs of one write waiting for it to commit, in groups (one per queue) in the order of their
/// inserts.
pub(super) struct Placement<'a> {
    broker: &'a Broker,
    pending: Option<Pending>,
    groups: Option<Vec<PreparedJobs>>,
    now: Millis,
}

impl<'a> Placement<'a> {
    pub(super) fn new(
        broker: &'a Broker,
        pending: Option<Pending>,
        groups: Vec<PreparedJobs>,
        now: Millis,
    ) -> Placement<'a> {
        Placement {
            broker,
            pending,
            groups: Some(groups),
            now,
        }
    }

    /// Waits for the commit, then places the jobs; returns what the write produced and each
    /// group's outcomes.
    pub(super) async fn finish(mut self) -> Result<(Written, Vec<Vec<Enqueued>>), BrokerError> {
        let written = match self.pending.as_mut() {
            Some(pending) => match pending.await {
                Ok(result) => result.map_err(BrokerError::from),
                Err(_) => Err(self.broker.reply_dropped()),
            },
            None => Ok(Written::default()),
        };
        self.pending = None;
        let groups = self.groups.take().unwrap_or_default();
        let written = match written {
            Ok(written) => written,
            Err(error) => {
                self.broker.state.lock().release_pending(&groups);
                return Err(error);
            }
        };
        let placed = self.broker.place_groups(groups, &written, self.now);
        Ok((written, placed))
    }
}

impl Drop for Placement<'_> {
    fn drop(&mut self) {
        let (Some(pending), Some(groups)) = (self.pending.take(), self.groups.take()) else {
            return;
        };
        let (Some(broker), Ok(runtime)) = (self.broker.me.upgrade(), Handle::try_current()) else {
            return;
        };
        let now = self.now;
        runtime.spawn(async move {
            match pending.await {
                Ok(Ok(written)) => {
                    broker.place_groups(groups, &written, now);
                }
                _ => broker.state.lock().release_pending(&groups),
            }
        });
    }
}

impl Broker {
    /// Places every group, each with its share of the write's duplicate reports.
    fn place_groups(
        &self,
        groups: Vec<PreparedJobs>,
        written: &Written,
        now: Millis,
    ) -> Vec<Vec<Enqueued>> {
        let mut offset = 0;
        let mut placed = Vec::with_capacity(groups.len());
        for slots in groups {
            let end = (offset + slots.len()).min(written.duplicates.len());
            let duplicates = written.duplicates.get(offset..end).unwrap_or_default();
            offset += slots.len();
            placed.push(self.place_enqueued(slots, duplicates, now));
        }
        placed
    }

    /// Makes committed jobs visible (or reports the original of a duplicate), wakes waiters and
    /// the timer.
    pub(super) fn place_enqueued(
        &self,
        slots: PreparedJobs,
        duplicates: &[Option<Original>],
        now: Millis,
    ) -> Vec<Enqueued> {
        let mut state = self.state.lock();
        let mut earliest = u64::MAX;
        let mut woke = false;
        let mut created = 0;
        let mut enqueued = Vec::with_capacity(slots.len());
        let queue = slots.first().map(|(_, s)| s.queue);
        let prepared = slots.len() as u64;
        let duplicates = duplicates.iter().copied().chain(std::iter::repeat(None));
        for ((id, slot), duplicate) in slots.into_iter().zip(duplicates) {
            if let Some(original) = duplicate {
                enqueued.push(Enqueued {
                    id: JobId(original.id),
                    state: original.state.map(|s| public_state(&s, now)),
                    duplicate: true,
                });
                continue;
            }
            if let Phase::Scheduled { run_at } = slot.phase
                && run_at > now
            {
                earliest = earliest.min(run_at);
            }
            let became_ready = state.place(id, slot, now);
            woke |= became_ready;
            created += 1;
            let job_state = if became_ready {
                JobState::Ready
            } else {
                JobState::Scheduled
            };
            enqueued.push(Enqueued {
                id: JobId(id),
                state: Some(job_state),
                duplicate: false,
            });
        }
        if let Some(queue) = queue {
            if let Some(q) = state.queue_by_id_mut(queue) {
                q.counters.enqueued += created;
                q.pending = q.pending.saturating_sub(prepared);
            }
            if woke {
                state.wake_by_id(queue);
            }
        }
        if earliest != u64::MAX {
            self.deadline_added(earliest);
        }
        enqueued
    }
}
