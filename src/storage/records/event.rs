//! The change log's events (table `events`) and readers' cursors (table `cursors`).
//!
//! `events` holds one value per commit: the events of that commit, in order (`seq<EventRecord>`),
//! keyed by the sequence number of its first event. A batch per commit costs one B-tree insert
//! per commit instead of one per event (one insert per change was 40% of the writer's apply
//! time when this was measured for the outbox that preceded it).

use serde::{Deserialize, Serialize};

use super::{
    AuditRecord, DecodeError, QueueRecord, QueueRecordV2, QueueRecordV5, ScheduleRecord, decode,
};

/// One event of the change log. Its sequence number is its place in its batch. `S` is the
/// layout of the queue settings its queue events carry: [`QueueRecord`], or [`QueueRecordV2`]
/// in batches of versions 2 to 4, or [`QueueRecordV5`] in batches of version 5. `G` is the
/// group of a `JobEnqueued`: `Option<String>`, or `()` (nothing, in postcard) in batches of
/// versions 2 to 5.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord<S = QueueRecord, G = Option<String>> {
    /// When the change happened (epoch ms, the broker's clock).
    pub at: u64,
    /// The queue it concerns (a schedule's: its target queue), if any.
    pub queue: Option<String>,
    /// The job it concerns, if any.
    pub job_id: Option<u64>,
    /// What happened.
    pub data: EventData<S, G>,
}

/// Why a job was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeleteReason {
    /// A purge of its queue.
    Purge,
    /// Its retention ended.
    Retention,
    /// Its queue was deleted.
    QueueDeleted,
}

/// What an event says happened. The variant order is the format (postcard writes the index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventData<S = QueueRecord, G = Option<String>> {
    /// A job was stored.
    JobEnqueued {
        /// The payload (raw JSON text).
        payload: String,
        /// 0–255.
        priority: u8,
        /// Its headers.
        headers: Vec<(String, String)>,
        /// When it may first be delivered.
        run_at: u64,
        /// Deliveries allowed.
        max_attempts: u32,
        /// Its own lease length, if it has one.
        lease_ms: Option<u64>,
        /// Its fairness group, if any (since version 6).
        group: G,
    },
    /// A job was delivered.
    JobLeased {
        /// Which delivery (1-based).
        attempt: u32,
        /// The lease deadline.
        lease_expires_at: u64,
    },
    /// A lease was extended.
    JobExtended {
        /// The delivery.
        attempt: u32,
        /// The new deadline.
        lease_expires_at: u64,
    },
    /// A lease passed its deadline (a retry or a death follows, in the same commit).
    JobLeaseExpired {
        /// The delivery whose lease expired.
        attempt: u32,
    },
    /// A failed attempt will be retried.
    JobRetryScheduled {
        /// The attempt that failed.
        attempt: u32,
        /// Its error text, if one was given.
        error: Option<String>,
        /// When the retry becomes ready.
        run_at: u64,
    },
    /// A job was acked.
    JobSucceeded {
        /// The delivery acked.
        attempt: u32,
        /// The ack result (raw JSON text), if any.
        result: Option<String>,
    },
    /// A job is dead.
    JobDead {
        /// Its last attempt.
        attempt: u32,
        /// Its last error text, if any.
        error: Option<String>,
    },
    /// A job was cancelled.
    JobCancelled,
    /// A dead job was replayed: ready again, attempts reset.
    JobReplayed,
    /// A job and everything stored for it were deleted.
    JobDeleted {
        /// Purge or retention.
        reason: DeleteReason,
    },
    /// A queue was created (with these settings).
    QueueCreated {
        /// Its settings.
        settings: S,
    },
    /// A queue's settings changed.
    QueueUpdated {
        /// Its new settings.
        settings: S,
    },
    /// A queue was paused.
    QueuePaused,
    /// A queue was resumed.
    QueueResumed,
    /// A queue's waiting and dead jobs were purged.
    QueuePurged {
        /// How many jobs the purge deleted.
        jobs: u64,
    },
    /// A schedule was created or replaced.
    SchedulePut {
        /// Its name.
        name: String,
        /// The schedule.
        schedule: ScheduleRecord,
    },
    /// A schedule was deleted.
    ScheduleDeleted {
        /// Its name.
        name: String,
    },
    /// A schedule was paused.
    SchedulePaused {
        /// Its name.
        name: String,
    },
    /// A schedule was resumed.
    ScheduleResumed {
        /// Its name.
        name: String,
    },
    /// A schedule fired: it enqueued the event's job.
    ScheduleFired {
        /// Its name.
        name: String,
        /// The due time fired.
        due_at: u64,
    },
    /// A message a client wrote to the outbox.
    Message {
        /// Its topic.
        topic: String,
        /// Its key, if any.
        key: Option<String>,
        /// Its payload (raw JSON text).
        payload: String,
        /// Its headers.
        headers: Vec<(String, String)>,
    },
    /// An admin action or key change was recorded in the audit trail (since version 7).
    Audit {
        /// Its sequence number in the audit trail.
        seq: u64,
        /// The record.
        record: AuditRecord,
    },
    /// A queue was deleted, with its jobs (each has its own `JobDeleted` before this one) and
    /// its idempotency keys. Last, so that older records keep their variant indexes.
    QueueDeleted {
        /// How many jobs the deletion deleted.
        jobs: u64,
    },
}

/// A reader's durable position in the change log (table `cursors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorRecord {
    /// The last event the reader has handled.
    pub seq: u64,
    /// When the cursor was last set (epoch ms).
    pub updated_at: u64,
}

/// Decodes an `events` value: the events of one commit, in order.
pub fn decode_events(bytes: &[u8]) -> Result<Vec<EventRecord>, DecodeError> {
    match bytes.first() {
        Some(2..=4) => {
            let old: Vec<EventRecord<QueueRecordV2, ()>> = decode(bytes)?;
            Ok(old.into_iter().map(EventRecord::upgrade).collect())
        }
        Some(5) => {
            let old: Vec<EventRecord<QueueRecordV5, ()>> = decode(bytes)?;
            Ok(old.into_iter().map(EventRecord::upgrade).collect())
        }
        _ => decode(bytes),
    }
}

impl<S: Into<QueueRecord>> EventRecord<S, ()> {
    /// The event with its queue settings in today's layout.
    fn upgrade(self) -> EventRecord {
        use EventData as E;
        let data = match self.data {
            E::QueueCreated { settings } => E::QueueCreated {
                settings: settings.into(),
            },
            E::QueueUpdated { settings } => E::QueueUpdated {
                settings: settings.into(),
            },
            E::JobEnqueued {
                payload,
                priority,
                headers,
                run_at,
                max_attempts,
                lease_ms,
                group: (),
            } => E::JobEnqueued {
                payload,
                priority,
                headers,
                run_at,
                max_attempts,
                lease_ms,
                group: None,
            },
            E::JobLeased {
                attempt,
                lease_expires_at,
            } => E::JobLeased {
                attempt,
                lease_expires_at,
            },
            E::JobExtended {
                attempt,
                lease_expires_at,
            } => E::JobExtended {
                attempt,
                lease_expires_at,
            },
            E::JobLeaseExpired { attempt } => E::JobLeaseExpired { attempt },
            E::JobRetryScheduled {
                attempt,
                error,
                run_at,
            } => E::JobRetryScheduled {
                attempt,
                error,
                run_at,
            },
            E::JobSucceeded { attempt, result } => E::JobSucceeded { attempt, result },
            E::JobDead { attempt, error } => E::JobDead { attempt, error },
            E::JobCancelled => E::JobCancelled,
            E::JobReplayed => E::JobReplayed,
            E::JobDeleted { reason } => E::JobDeleted { reason },
            E::QueuePaused => E::QueuePaused,
            E::QueueResumed => E::QueueResumed,
            E::QueuePurged { jobs } => E::QueuePurged { jobs },
            E::SchedulePut { name, schedule } => E::SchedulePut { name, schedule },
            E::ScheduleDeleted { name } => E::ScheduleDeleted { name },
            E::SchedulePaused { name } => E::SchedulePaused { name },
            E::ScheduleResumed { name } => E::ScheduleResumed { name },
            E::ScheduleFired { name, due_at } => E::ScheduleFired { name, due_at },
            E::Message {
                topic,
                key,
                payload,
                headers,
            } => E::Message {
                topic,
                key,
                payload,
                headers,
            },
            E::Audit { seq, record } => E::Audit { seq, record },
            E::QueueDeleted { jobs } => E::QueueDeleted { jobs },
        };
        EventRecord {
            at: self.at,
            queue: self.queue,
            job_id: self.job_id,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn event<S, G>(data: EventData<S, G>) -> EventRecord<S, G> {
        EventRecord {
            at: 1,
            queue: Some("q".into()),
            job_id: None,
            data,
        }
    }

    #[test]
    fn batches_of_versions_2_to_4_read_their_queue_settings_in_the_old_layout() {
        let old: Vec<EventRecord<QueueRecordV2, ()>> = vec![
            event(EventData::QueueCreated {
                settings: QueueRecordV2::sample(),
            }),
            event(EventData::QueuePaused),
            event(EventData::QueueUpdated {
                settings: QueueRecordV2::sample(),
            }),
        ];
        let mut bytes = vec![4];
        bytes.extend(postcard::to_allocvec(&old).unwrap());
        let settings = QueueRecord::from(QueueRecordV2::sample());
        assert_eq!(
            decode_events(&bytes).unwrap(),
            vec![
                event(EventData::QueueCreated {
                    settings: settings.clone()
                }),
                event(EventData::QueuePaused),
                event(EventData::QueueUpdated { settings }),
            ]
        );
        // Today's batches round-trip.
        let new = vec![event(EventData::QueueCreated {
            settings: QueueRecord {
                max_depth: Some(3),
                ..QueueRecord::from(QueueRecordV2::sample())
            },
        })];
        assert_eq!(decode_events(&super::super::encode(&new)).unwrap(), new);
    }

    #[test]
    fn batches_of_version_5_read_their_queue_settings_in_the_v5_layout() {
        fn enqueued<S, G>(group: G) -> EventData<S, G> {
            EventData::JobEnqueued {
                payload: "1".into(),
                priority: 2,
                headers: vec![("h".into(), "v".into())],
                run_at: 3,
                max_attempts: 4,
                lease_ms: Some(5),
                group,
            }
        }
        let old: Vec<EventRecord<QueueRecordV5, ()>> = vec![
            event(EventData::QueueUpdated {
                settings: QueueRecordV5::sample(),
            }),
            event(enqueued(())),
        ];
        let mut bytes = vec![5];
        bytes.extend(postcard::to_allocvec(&old).unwrap());
        let settings = QueueRecord::from(QueueRecordV5::sample());
        assert_eq!(settings.group_max_in_flight, None);
        assert_eq!(
            decode_events(&bytes).unwrap(),
            vec![
                event(EventData::QueueUpdated { settings }),
                event(enqueued(None))
            ]
        );
        // Today's batches carry the group.
        let new: Vec<EventRecord> = vec![event(enqueued(Some("acme".to_owned())))];
        assert_eq!(decode_events(&super::super::encode(&new)).unwrap(), new);
    }
}
