//! Durable cursors: a reader's position in the change log, kept by the broker.

use super::super::{Broker, BrokerError, Prepared, blocking};
use crate::clock::Millis;
use crate::storage::{CursorRecord, WriteOp};
use crate::tenant::valid_full_name;

/// A cursor as shown to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorView {
    /// Its name.
    pub name: String,
    /// The last event its reader has handled.
    pub seq: u64,
    /// Events readers can see that it has not reached.
    pub lag: u64,
    /// When it was last set.
    pub updated_at: Millis,
}

impl Broker {
    /// Sets cursor `name` to `seq` (creating it if new); returns whether it was created.
    pub async fn put_cursor(
        &self,
        name: &str,
        seq: u64,
    ) -> Result<(bool, CursorView), BrokerError> {
        if !valid_full_name(name) {
            return Err(BrokerError::InvalidCursorName);
        }
        let head = self.events_head();
        if seq > head {
            return Err(super::super::limits::Invalid {
                field: "seq",
                rule: format!("must be at most {head}, the last event so far"),
                kind: super::super::limits::Limit::Value,
            }
            .into());
        }
        let existed = blocking(|| self.store.cursor(name))?.is_some();
        let admission = self.store.admit().await?;
        let now = self.now();
        let submitted = {
            // Under the lock like every write, so writes reach the store in the order decided.
            let _state = self.state.lock();
            let op = WriteOp::PutCursor {
                name: name.to_owned(),
                seq,
                at: now,
            };
            self.submit(admission, Prepared::ops(vec![op]))
        };
        self.committed(submitted).await?;
        let view = self.cursor_view(
            name.to_owned(),
            CursorRecord {
                seq,
                updated_at: now,
            },
        );
        Ok((!existed, view))
    }

    /// One cursor.
    pub async fn cursor(&self, name: &str) -> Result<CursorView, BrokerError> {
        if !valid_full_name(name) {
            return Err(BrokerError::InvalidCursorName);
        }
        let record = blocking(|| self.store.cursor(name))?.ok_or(BrokerError::CursorNotFound)?;
        Ok(self.cursor_view(name.to_owned(), record))
    }

    /// Every cursor, by name.
    pub async fn cursors(&self) -> Result<Vec<CursorView>, BrokerError> {
        let cursors = blocking(|| self.store.cursors())?;
        Ok(cursors
            .into_iter()
            .map(|(name, record)| self.cursor_view(name, record))
            .collect())
    }

    /// Deletes a cursor.
    pub async fn delete_cursor(&self, name: &str) -> Result<(), BrokerError> {
        self.cursor(name).await?;
        let admission = self.store.admit().await?;
        let submitted = {
            let _state = self.state.lock();
            let op = WriteOp::DeleteCursor {
                name: name.to_owned(),
            };
            self.submit(admission, Prepared::ops(vec![op]))
        };
        self.committed(submitted).await?;
        Ok(())
    }

    fn cursor_view(&self, name: String, record: CursorRecord) -> CursorView {
        CursorView {
            name,
            seq: record.seq,
            lag: self.events_head().saturating_sub(record.seq),
            updated_at: record.updated_at,
        }
    }
}
