//! API keys, as far as the broker is concerned: stored and read like everything else, through
//! the writer. What a key may do is `auth`'s business.

use super::{Broker, BrokerError, Prepared, blocking};
use crate::clock::Millis;
use crate::storage::{KeyRecord, WriteOp};

impl Broker {
    /// Every stored key, revoked ones included, by id.
    pub fn stored_keys(&self) -> Result<Vec<(String, KeyRecord)>, BrokerError> {
        Ok(blocking(|| self.store.keys())?)
    }

    /// Stores a new key; returns once it is durable.
    pub async fn put_key(&self, id: &str, record: KeyRecord) -> Result<(), BrokerError> {
        let op = WriteOp::PutKey {
            id: id.to_owned(),
            record,
        };
        self.write_key(op, true).await
    }

    /// Revokes a key; returns once that is durable.
    pub async fn revoke_key(&self, id: &str, at: Millis) -> Result<(), BrokerError> {
        let op = WriteOp::RevokeKey {
            id: id.to_owned(),
            at,
        };
        self.write_key(op, true).await
    }

    /// Records that a key was used at `at`, without waiting for an fsync: a use lost in a
    /// crash only makes `last_used_at` a little older.
    pub async fn key_used(&self, id: &str, at: Millis) -> Result<(), BrokerError> {
        let op = WriteOp::KeyUsed {
            id: id.to_owned(),
            at,
        };
        self.write_key(op, false).await
    }

    async fn write_key(&self, op: WriteOp, durable: bool) -> Result<(), BrokerError> {
        let admission = self.store.admit().await?;
        let submitted = {
            // Under the lock like every write, so writes reach the store in the order decided.
            let _state = self.state.lock();
            let prepared = Prepared {
                durable,
                ..Prepared::ops(vec![op])
            };
            self.submit(admission, prepared)
        };
        self.committed(submitted).await?;
        Ok(())
    }
}
