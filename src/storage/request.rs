//! What travels to the writer and back: write requests, their replies, and what they produced.

use tokio::sync::{OwnedSemaphorePermit, oneshot};

use super::StoredJob;
use super::apply::Original;
use super::error::StoreError;
use super::ops::WriteOp;

/// What a write request produced.
#[derive(Debug, Default)]
pub struct Written {
    /// The rows asked for in `fetch`, in order.
    pub fetched: Vec<Option<StoredJob>>,
    /// One entry per `Insert` op, in order: `None` if the job was stored, or the original job
    /// its idempotency key maps to (id, and state unless it has been deleted since).
    pub duplicates: Vec<Option<Original>>,
    /// The sequence numbers of the events the request appended (`start..end`).
    pub events: std::ops::Range<u64>,
}

/// A batch of ops to apply atomically, plus jobs to read back after them.
pub struct WriteRequest {
    pub ops: Vec<WriteOp>,
    pub fetch: Vec<u64>,
    /// Whether the reply must wait for an fsync. Lease writes (polls, expiries) need not: if
    /// one is lost in a crash the job is only delivered again, which at-least-once allows.
    pub durable: bool,
    pub reply: Reply,
}

impl WriteRequest {
    /// Roughly the bytes its ops take in a journal frame (payloads dominate).
    pub fn approx_len(&self) -> usize {
        self.ops.iter().map(WriteOp::approx_len).sum()
    }
}

/// Where a request's answer goes.
pub struct Reply {
    pub tx: oneshot::Sender<Result<Written, StoreError>>,
    /// Holds a place in the bounded admission queue until the request is answered.
    pub permit: OwnedSemaphorePermit,
}

impl Reply {
    /// Answers the request (and frees its place in the queue).
    pub fn send(self, result: Result<Written, StoreError>) {
        // The submitter may have gone away (a dropped HTTP request); nothing to do then.
        let _ = self.tx.send(result);
        drop(self.permit);
    }
}

/// A reply that waits for its journal frame's fsync, with what to answer then.
pub type Waiter = (Reply, Written);

/// What the writer thread is asked to do.
pub enum Command {
    Write(WriteRequest),
    /// Answer once everything applied so far is checkpointed into the data file.
    Flush(super::checkpoint::Flush),
    /// A checkpoint ended (from the checkpoint thread): the next one may begin.
    Checkpointed,
    /// Finish what is queued, make everything durable, and exit.
    Shutdown,
}
