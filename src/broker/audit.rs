//! The audit trail, as far as the broker is concerned: records are appended through the writer
//! like every other change, and read back in pages. Which requests are audited, and what a
//! record says of them, is the HTTP layer's business (`http::access`).

use super::{Broker, BrokerError, Prepared, blocking};
use crate::clock::Millis;
// The record is the broker's API as well as the stored shape: HTTP builds it, the broker keeps it.
pub use crate::storage::AuditRecord;
use crate::storage::WriteOp;

/// Records one page of `GET /v1/audit` reads at most, matching or not, so that a caller who
/// sees few of them (a tenant's key) gets a short page rather than a scan of the whole trail.
const SCAN_LIMIT: usize = 10_000;

/// Most records one page holds.
pub const MAX_AUDIT_PAGE: usize = 1000;

/// A page of the audit trail.
#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    /// The records, with their sequence numbers, in order.
    pub records: Vec<(u64, AuditRecord)>,
    /// Where the next page starts (`after=`): past every record read, shown or not.
    pub next_after: u64,
}

impl Broker {
    /// Appends `record` to the audit trail, dropping records older than the retention;
    /// returns once it is durable.
    pub async fn audit(&self, record: AuditRecord) -> Result<(), BrokerError> {
        let admission = self.store.admit().await?;
        let trim_before = record.at.saturating_sub(self.audit_retention_ms);
        let submitted = {
            // Under the lock like every write, so writes reach the store in the order decided.
            let _state = self.state.lock();
            let op = WriteOp::Audit {
                record,
                trim_before,
            };
            self.submit(admission, Prepared::ops(vec![op]))
        };
        self.committed(submitted).await?;
        Ok(())
    }

    /// Up to `limit` records after `after` that `shown` lets through.
    pub async fn audit_page(
        &self,
        after: u64,
        limit: usize,
        shown: impl Fn(&AuditRecord) -> bool,
    ) -> Result<AuditPage, BrokerError> {
        let limit = limit.clamp(1, MAX_AUDIT_PAGE);
        let read = blocking(|| self.store.audit(after, SCAN_LIMIT))?;
        let mut page = AuditPage {
            records: Vec::new(),
            next_after: after,
        };
        for (seq, record) in read {
            if page.records.len() == limit {
                break;
            }
            page.next_after = seq;
            if shown(&record) {
                page.records.push((seq, record));
            }
        }
        Ok(page)
    }

    /// How long audit records are kept.
    pub fn audit_retention_ms(&self) -> Millis {
        self.audit_retention_ms
    }
}
