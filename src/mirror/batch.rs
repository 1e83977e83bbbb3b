//! A batch of changes folded into its net effect, so that a sink writes each job once per batch
//! and in bulk: an enqueue, its lease and its ack in one batch become one insert of the final
//! row. The batch is applied in one transaction, so only its net effect is ever visible, and
//! the result equals applying the changes one by one.

use std::collections::HashMap;

use super::change::{AuditRow, Change, JobPatch, JobRow, MessageRow};

/// What a batch does, each job in at most one of `inserts`, `patches` and `deletes`; the
/// groups commute, so a sink may apply them in any order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Folded {
    /// Jobs enqueued in the batch, as they stand at its end.
    pub inserts: Vec<JobRow>,
    /// Changes to jobs enqueued before the batch, merged per job.
    pub patches: Vec<(u64, JobPatch)>,
    /// Jobs deleted in the batch.
    pub deletes: Vec<u64>,
    /// Queue changes, in order (few; applied one by one).
    pub queues: Vec<Change>,
    /// Messages, in seq order.
    pub messages: Vec<MessageRow>,
    /// Audit records, in order.
    pub audit: Vec<AuditRow>,
}

/// Where a job stands within the batch.
enum Net {
    Insert(JobRow),
    Patch(JobPatch),
    Delete,
}

/// Folds `changes` (in seq order) into their net effect.
pub fn fold(changes: &[Change]) -> Folded {
    let mut jobs: HashMap<u64, Net> = HashMap::new();
    // First-touch order, so the output does not depend on the hash.
    let mut order = Vec::new();
    let mut folded = Folded::default();
    for change in changes {
        match change {
            Change::InsertJob(row) => {
                if jobs.insert(row.id, Net::Insert(row.clone())).is_none() {
                    order.push(row.id);
                }
            }
            Change::PatchJob { id, patch } => match jobs.get_mut(id) {
                Some(Net::Insert(row)) => row.apply(patch),
                Some(Net::Patch(earlier)) => earlier.then(patch),
                // Nothing happens to a deleted job (ids are never reused).
                Some(Net::Delete) => {}
                None => {
                    jobs.insert(*id, Net::Patch(patch.clone()));
                    order.push(*id);
                }
            },
            Change::DeleteJob { id } => {
                if jobs.insert(*id, Net::Delete).is_none() {
                    order.push(*id);
                }
            }
            Change::PutQueue(_) | Change::PauseQueue { .. } | Change::DeleteQueue { .. } => {
                folded.queues.push(change.clone())
            }
            Change::Message(message) => folded.messages.push(message.clone()),
            Change::Audit(row) => folded.audit.push(row.clone()),
            Change::Nothing => {}
        }
    }
    for id in order {
        match jobs.remove(&id) {
            Some(Net::Insert(row)) => folded.inserts.push(row),
            Some(Net::Patch(patch)) => folded.patches.push((id, patch)),
            Some(Net::Delete) => folded.deletes.push(id),
            None => {}
        }
    }
    folded
}

impl JobRow {
    /// The row after `patch`.
    fn apply(&mut self, patch: &JobPatch) {
        if let Some(state) = patch.state {
            self.state = state;
        }
        if let Some(attempts) = patch.attempts {
            self.attempts = attempts;
        }
        if let Some(error) = &patch.last_error {
            self.last_error = Some(error.clone());
        }
        if let Some(result) = &patch.result {
            self.result = Some(result.clone());
        }
        if let Some(at) = patch.run_at {
            self.run_at = Some(at);
        }
        if let Some(finished_at) = patch.finished_at {
            self.finished_at = finished_at;
        }
        self.updated_at = patch.updated_at;
    }
}

impl JobPatch {
    /// This patch followed by `later`, as one.
    fn then(&mut self, later: &JobPatch) {
        self.state = later.state.or(self.state);
        self.attempts = later.attempts.or(self.attempts);
        if later.last_error.is_some() {
            self.last_error.clone_from(&later.last_error);
        }
        if later.result.is_some() {
            self.result.clone_from(&later.result);
        }
        self.run_at = later.run_at.or(self.run_at);
        self.finished_at = later.finished_at.or(self.finished_at);
        self.updated_at = later.updated_at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u64) -> JobRow {
        JobRow {
            id,
            queue: "q".into(),
            state: "ready",
            priority: 128,
            attempts: 0,
            max_attempts: 5,
            payload: "1".into(),
            headers: "{}".into(),
            result: None,
            last_error: None,
            run_at: Some(10),
            enqueued_at: 10,
            updated_at: 10,
            finished_at: None,
            group: None,
        }
    }

    fn patch(id: u64, patch: JobPatch) -> Change {
        Change::PatchJob { id, patch }
    }

    fn leased(at: u64, attempts: u32) -> JobPatch {
        JobPatch {
            state: Some("leased"),
            attempts: Some(attempts),
            updated_at: at,
            ..JobPatch::default()
        }
    }

    #[test]
    fn a_job_enqueued_leased_and_acked_in_one_batch_is_one_insert_of_its_end_state() {
        let succeeded = JobPatch {
            state: Some("succeeded"),
            result: Some("{\"ok\":1}".into()),
            finished_at: Some(Some(30)),
            updated_at: 30,
            ..JobPatch::default()
        };
        let folded = fold(&[
            Change::InsertJob(row(1)),
            patch(1, leased(20, 1)),
            patch(1, succeeded),
        ]);
        let mut end = row(1);
        end.state = "succeeded";
        end.attempts = 1;
        end.result = Some("{\"ok\":1}".into());
        end.finished_at = Some(30);
        end.updated_at = 30;
        assert_eq!(folded.inserts, vec![end]);
        assert!(folded.patches.is_empty() && folded.deletes.is_empty());
    }

    #[test]
    fn patches_merge_later_fields_over_earlier_ones_and_a_replay_clears_finished_at() {
        let dead = JobPatch {
            state: Some("dead"),
            last_error: Some("boom".into()),
            finished_at: Some(Some(30)),
            updated_at: 30,
            ..JobPatch::default()
        };
        let replayed = JobPatch {
            state: Some("ready"),
            attempts: Some(0),
            run_at: Some(40),
            finished_at: Some(None),
            updated_at: 40,
            ..JobPatch::default()
        };
        let folded = fold(&[patch(2, leased(20, 3)), patch(2, dead), patch(2, replayed)]);
        let merged = JobPatch {
            state: Some("ready"),
            attempts: Some(0),
            last_error: Some("boom".into()),
            result: None,
            run_at: Some(40),
            finished_at: Some(None),
            updated_at: 40,
        };
        assert_eq!(folded.patches, vec![(2, merged)]);
    }

    #[test]
    fn a_delete_wins_over_what_came_before_and_jobs_keep_first_touch_order() {
        let folded = fold(&[
            patch(9, leased(20, 1)),
            Change::InsertJob(row(3)),
            Change::DeleteJob { id: 9 },
            patch(9, leased(30, 2)),
            Change::InsertJob(row(4)),
            Change::DeleteJob { id: 4 },
            patch(5, leased(30, 1)),
            Change::Nothing,
        ]);
        assert_eq!(folded.deletes, vec![9, 4]);
        assert_eq!(folded.inserts, vec![row(3)]);
        assert_eq!(folded.patches, vec![(5, leased(30, 1))]);
    }
}
