//! A live job's slot and its phase, and the packed key of the ready index.

use std::num::NonZeroU32;

use super::groups::SlotGroup;
use crate::clock::Millis;
use crate::job::JobState;

/// Where a job in memory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for `run_at`.
    Scheduled { run_at: Millis },
    /// In the ready index.
    Ready,
    /// Delivered; the lease token is (`attempts`, `nonce`).
    Leased { deadline: Millis, nonce: u32 },
    /// Dead, waiting for replay or retention.
    Dead,
}

const _: () = assert!(std::mem::size_of::<Phase>() <= 16);

impl Phase {
    pub fn state(self) -> JobState {
        match self {
            Phase::Scheduled { .. } => JobState::Scheduled,
            Phase::Ready => JobState::Ready,
            Phase::Leased { .. } => JobState::Leased,
            Phase::Dead => JobState::Dead,
        }
    }
}

/// A queue's index in [`State`]: assigned on creation, stable while the queue exists (a deleted
/// queue's id goes to the next queue created), never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueueId(pub(super) u32);

impl QueueId {
    pub(super) fn index(self) -> usize {
        self.0 as usize
    }
}

/// What dispatch needs to know about a live job (see the module docs for the field widths).
#[derive(Debug, Clone)]
pub struct Slot {
    pub queue: QueueId,
    pub priority: u8,
    pub phase: Phase,
    /// Deliveries so far: at most `max_attempts` (see [`slot_attempts`]).
    pub attempts: u16,
    pub max_attempts: u16,
    /// The job's own lease length; `None` uses the poll's, then the queue's.
    pub lease_ms: Option<NonZeroU32>,
    /// Its fairness group within the queue (see `groups`).
    pub group: SlotGroup,
}

const _: () = assert!(std::mem::size_of::<Slot>() <= 32);

impl Slot {
    /// The job's own lease length in milliseconds, if it has one.
    pub fn lease_ms(&self) -> Option<u64> {
        self.lease_ms.map(|ms| u64::from(ms.get()))
    }
}

/// A job's `max_attempts` as a slot keeps it. Inputs are validated to at most `MAX_ATTEMPTS`
/// (1000), so this never saturates in practice; a larger stored value (only a foreign or
/// hand-edited record) saturates at 65,535 attempts.
pub fn slot_max_attempts(max_attempts: u32) -> u16 {
    u16::try_from(max_attempts).unwrap_or(u16::MAX)
}

/// A job's deliveries so far as a slot keeps them. A job is dead once they reach its
/// `max_attempts` (itself at most 65,535 in a slot), so only a foreign or hand-edited record
/// saturates.
pub fn slot_attempts(attempts: u32) -> u16 {
    u16::try_from(attempts).unwrap_or(u16::MAX)
}

/// A job's own lease length as a slot keeps it. Inputs are validated to 1 to `MAX_LEASE_MS`
/// (12 h), so this is exact in practice; anything else (only a foreign or hand-edited record)
/// is clamped to 1 ms .. `u32::MAX` ms (about 49 days).
pub fn slot_lease_ms(lease_ms: Option<u64>) -> Option<NonZeroU32> {
    lease_ms
        .map(|ms| NonZeroU32::new(u32::try_from(ms).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN))
}

/// Bits of a ready key that hold the job id.
const READY_ID_BITS: u32 = 56;
/// The largest job id a ready key can hold.
pub const READY_MAX_ID: u64 = (1 << READY_ID_BITS) - 1;

/// The ready-index key of a job: `((255 - priority) << 56) | id`, so that ascending key order
/// is priority descending, then id ascending.
///
/// Job ids are allocated sequentially from 1, so an id needs more than 56 bits only after 2^56
/// (72 quadrillion) jobs.
pub fn pack_ready(priority: u8, id: u64) -> u64 {
    debug_assert!(
        id < 1 << READY_ID_BITS,
        "job id {id} does not fit a ready key"
    );
    (u64::from(u8::MAX - priority) << READY_ID_BITS) | id
}

/// The (priority, id) of a ready-index key made by [`pack_ready`].
pub fn unpack_ready(key: u64) -> (u8, u64) {
    let inverted = (key >> READY_ID_BITS) as u8;
    (u8::MAX - inverted, key & READY_MAX_ID)
}
