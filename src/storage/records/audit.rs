//! The audit trail (table `audit`): one record per admin action or key change, whatever its
//! outcome. Written by the HTTP layer once the action is answered; nothing edits or deletes a
//! record but retention.

use serde::{Deserialize, Serialize};

/// One audited request (table `audit`, by its own gap-free sequence number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When it was answered (epoch ms).
    pub at: u64,
    /// The id of the key that made it; `None` while the broker runs without keys.
    pub key_id: Option<String>,
    /// That key's tenant (`*`: an operator key, or no key).
    pub key_tenant: String,
    /// The tenant whose resource it concerns: the target's, else the key's.
    pub tenant: String,
    /// The client's address (`ip:port`), when known.
    pub peer: Option<String>,
    /// What was asked (`queue.pause`, `key.create`, ...).
    pub action: String,
    /// The resource: a full queue, schedule or cursor name, a job id or a key id.
    pub target: Option<String>,
    /// The reply's HTTP status.
    pub status: u16,
    /// The error code of a refusal (`forbidden`, `invalid_value`, ...).
    pub error: Option<String>,
}
