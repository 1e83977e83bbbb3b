//! What every system's driver shares: the run's shape, its progress and deadline, job payloads,
//! and the tasks that start when the clock does.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use tokio::time::Instant;

/// The workload of one run, as given on the command line.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Producer tasks, one connection each.
    pub producers: usize,
    /// Consumer tasks, one connection each.
    pub consumers: usize,
    /// Jobs per round trip (or window of outstanding confirms); 1 = unbatched.
    pub batch: usize,
    /// Bytes per job payload.
    pub payload_bytes: usize,
}

/// Progress shared by all tasks of a run.
pub struct Progress {
    /// Jobs to produce, consume and acknowledge.
    pub total: u64,
    /// Jobs acknowledged so far.
    pub acked: AtomicU64,
    /// Nanoseconds from `start` to the latest ack seen.
    pub last_ack_ns: AtomicU64,
    /// When the clock started (all connections were open by then).
    pub start: Instant,
    /// When every task gives up.
    pub deadline: Instant,
}

impl Progress {
    /// Whether every job has been acknowledged.
    pub fn done(&self) -> bool {
        self.acked.load(Ordering::Acquire) >= self.total
    }

    /// Fails once the run's deadline has passed; every loop calls it once per turn.
    pub fn check_deadline(&self) -> anyhow::Result<()> {
        if Instant::now() >= self.deadline {
            bail!("timed out");
        }
        Ok(())
    }

    /// Counts `n` more acknowledged jobs and moves the end of the clock to now.
    pub fn record_acks(&self, n: u64) {
        let elapsed = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_ack_ns.fetch_max(elapsed, Ordering::AcqRel);
        self.acked.fetch_add(n, Ordering::AcqRel);
    }
}

/// Job `id`'s payload: its zero-padded number, then filler up to `size` bytes. Unique per job
/// (Redis acks remove the job from the processing list by value).
pub fn payload(id: u64, size: usize) -> Vec<u8> {
    let mut p = format!("{id:020}").into_bytes();
    p.resize(size, b'.');
    p
}

/// The `index`-th of `parts` nearly equal slices of `0..total`, as (first id, count).
pub fn share(total: u64, parts: usize, index: usize) -> (u64, u64) {
    let parts = parts as u64;
    let index = index as u64;
    let base = total / parts;
    let extra = total % parts;
    let count = base + u64::from(index < extra);
    let first = index * base + index.min(extra);
    (first, count)
}

/// One running producer or consumer.
pub type Task = tokio::task::JoinHandle<anyhow::Result<()>>;

/// A producer or consumer whose connection is open, waiting for the clock to start.
pub type Start = Box<dyn FnOnce(Arc<Progress>) -> Task>;

/// Wraps a producer or consumer body (given the run's progress once the clock starts) so that
/// it runs as its own task, named `what` in errors, and is cut off at the run's deadline.
pub fn start<F, Fut>(what: String, body: F) -> Start
where
    F: FnOnce(Arc<Progress>) -> Fut + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    Box::new(move |progress: Arc<Progress>| {
        let deadline = progress.deadline;
        let fut = body(progress);
        tokio::spawn(async move {
            match tokio::time::timeout_at(deadline, fut).await {
                Ok(result) => result.with_context(|| what.clone()),
                Err(_) => bail!("{what}: timed out"),
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_everything_once() {
        for total in [1u64, 7, 64, 100_000, 5_003] {
            for parts in [1usize, 3, 8] {
                let mut next = 0;
                for i in 0..parts {
                    let (first, count) = share(total, parts, i);
                    assert_eq!(first, next);
                    next += count;
                }
                assert_eq!(next, total);
            }
        }
    }

    #[test]
    fn payloads_are_unique_and_sized() {
        assert_eq!(payload(7, 256).len(), 256);
        assert_ne!(payload(7, 256), payload(8, 256));
    }
}
