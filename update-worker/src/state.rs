//! The per-recipient views of current state that updates carry. The state itself is read with
//! `chat3_core::reads` (one query per collection for a whole batch) into the stored-document
//! codecs of `chat3_core::docs`.

use chat3_core::docs::{DialogDoc, MemberDoc};
use serde_json::{json, Value};

pub use chat3_core::reads::DialogKey;

/// `{dialogId, name, lastSeq, unreadCount, lastReadSeq}` as seen by `member`.
pub fn dialog_view(dialog: &DialogDoc, member: &MemberDoc) -> Value {
    json!({
        "dialogId": dialog.dialog_id,
        "name": dialog.name,
        "lastSeq": dialog.last_seq,
        "unreadCount": member.unread(dialog),
        "lastReadSeq": member.last_read_seq,
    })
}

/// The member in the sdk `Member` shape.
pub fn member_view(dialog: &DialogDoc, member: &MemberDoc) -> Value {
    json!(member.view(dialog))
}
