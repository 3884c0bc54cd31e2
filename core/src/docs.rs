//! Conversions between stored documents and wire types. Sequence numbers and counters are
//! stored as i64 and are never negative.

use bson::{Bson, Document};
use chat3_sdk::{Dialog, Member, Message, Meta};

use crate::error::{Error, Result};
use crate::plain;

fn corrupt(what: &str) -> Error {
    Error::Internal(format!("stored document has a bad '{what}'"))
}

/// A required string field.
pub(crate) fn s(d: &Document, key: &str) -> Result<String> {
    d.get_str(key).map(str::to_owned).map_err(|_| corrupt(key))
}

/// A required field parsed into an id type.
pub(crate) fn parse<T: std::str::FromStr>(d: &Document, key: &str) -> Result<T> {
    d.get_str(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt(key))
}

/// A non-negative integer field (seqs, counters) as u64; 0 when absent.
pub fn u(d: &Document, key: &str) -> u64 {
    ts(d, key).max(0) as u64
}

/// A client-supplied seq bound as stored (int64): seqs never exceed `i64::MAX`, so a larger
/// bound means the same as `i64::MAX` instead of wrapping around to a negative number.
pub fn stored_seq(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// An integer field (timestamps, stored seqs) as i64, whether stored as int32, int64 or double;
/// 0 when absent.
pub fn ts(d: &Document, key: &str) -> i64 {
    match d.get(key) {
        Some(Bson::Int64(v)) => *v,
        Some(Bson::Int32(v)) => i64::from(*v),
        Some(Bson::Double(v)) => *v as i64,
        _ => 0,
    }
}

/// `meta` as JSON, read literally (see [`crate::plain`]).
pub fn meta(d: &Document) -> Meta {
    d.get_document("meta")
        .ok()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), plain::to_json(v)))
                .collect()
        })
        .unwrap_or_default()
}

/// Client meta, checked against the edge rules ([`plain::check_meta`]: 400 otherwise) and
/// stored literally.
pub fn meta_doc(meta: Option<&Meta>) -> Result<Document> {
    let Some(m) = meta else {
        return Ok(Document::new());
    };
    plain::check_meta("meta", m)?;
    Ok(m.iter()
        .map(|(k, v)| (k.clone(), plain::to_bson(v)))
        .collect())
}

/// A stored message.
pub fn message(d: &Document) -> Result<Message> {
    Ok(Message {
        message_id: parse(d, "messageId")?,
        tenant_id: parse(d, "tenantId")?,
        dialog_id: parse(d, "dialogId")?,
        seq: u(d, "seq"),
        sender_id: parse(d, "senderId")?,
        content: s(d, "content")?,
        message_type: s(d, "type")?,
        meta: meta(d),
        quoted_message_id: d
            .get_str("quotedMessageId")
            .ok()
            .and_then(|v| v.parse().ok()),
        client_message_id: d.get_str("clientMessageId").ok().map(str::to_owned),
        created_at: ts(d, "createdAt"),
    })
}

/// Unread for a member: the dialog's countable messages minus those counted at the watermark.
pub fn unread(dialog: &Document, member: &Document) -> u64 {
    u(dialog, "msgCount").saturating_sub(u(member, "readCount"))
}

/// A stored member, with unread computed against its dialog.
pub fn member(dialog: &Document, m: &Document) -> Result<Member> {
    Ok(Member {
        user_id: parse(m, "userId")?,
        user_type: parse(m, "userType")?,
        last_read_seq: u(m, "lastReadSeq"),
        unread_count: unread(dialog, m),
        joined_at: ts(m, "joinedAt"),
    })
}

/// A stored dialog with its member documents.
pub fn dialog(d: &Document, members: &[Document]) -> Result<Dialog> {
    Ok(Dialog {
        dialog_id: parse(d, "dialogId")?,
        tenant_id: parse(d, "tenantId")?,
        name: d.get_str("name").ok().map(str::to_owned),
        meta: meta(d),
        created_by: parse(d, "createdBy")?,
        last_seq: u(d, "lastSeq"),
        message_count: u(d, "msgCount"),
        members: members
            .iter()
            .map(|m| member(d, m))
            .collect::<Result<_>>()?,
        created_at: ts(d, "createdAt"),
        updated_at: ts(d, "updatedAt"),
    })
}
