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

/// `meta` of a stored entity as JSON, read literally (see [`crate::plain`]).
pub fn meta(d: &Document) -> Meta {
    d.get_document("meta").map(meta_of).unwrap_or_default()
}

/// A stored meta document as JSON, read literally.
pub fn meta_of(m: &Document) -> Meta {
    m.iter()
        .map(|(k, v)| (k.clone(), plain::to_json(v)))
        .collect()
}

/// Merges `patch` into stored meta (a key given as `null` is removed, the others set) and
/// returns the keys that changed, as `meta.<key>`. The result is checked against the size rules
/// (400 when the merged meta is too large).
pub fn merge_meta(meta: &mut Document, patch: &Meta) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    for (k, v) in patch {
        let differs = if v.is_null() {
            meta.remove(k).is_some()
        } else {
            let b = plain::to_bson(v);
            let differs = meta.get(k) != Some(&b);
            meta.insert(k.clone(), b);
            differs
        };
        if differs {
            changed.push(format!("meta.{k}"));
        }
    }
    plain::check_meta("meta", &meta_of(meta))?;
    Ok(changed)
}

/// A change of an entity's meta through the meta routes.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaChange {
    /// Set these keys (`null` removes one); `PUT /api/meta/{t}/{id}`.
    Merge(Meta),
    /// Remove every key; `DELETE /api/meta/{t}/{id}`.
    Clear,
}

impl MetaChange {
    /// Applies the change to stored meta; returns the keys that changed (`meta.<key>`).
    pub fn apply(&self, meta: &mut Document) -> Result<Vec<String>> {
        match self {
            MetaChange::Merge(patch) => merge_meta(meta, patch),
            MetaChange::Clear => {
                let changed = meta.keys().map(|k| format!("meta.{k}")).collect();
                meta.clear();
                Ok(changed)
            }
        }
    }
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
        quoted_message: d
            .get_document("quotedMessage")
            .ok()
            .map(quoted)
            .transpose()?,
        created_at: ts(d, "createdAt"),
        edited_at: opt_ts(d, "editedAt"),
        deleted_at: opt_ts(d, "deletedAt"),
        statuses: statuses(d),
        reactions: reactions(d),
    })
}

/// An optional timestamp (absent or null: `None`).
pub fn opt_ts(d: &Document, key: &str) -> Option<i64> {
    match d.get(key) {
        None | Some(Bson::Null) => None,
        Some(_) => Some(ts(d, key)),
    }
}

fn quoted(q: &Document) -> Result<chat3_sdk::QuotedMessage> {
    Ok(chat3_sdk::QuotedMessage {
        message_id: parse(q, "messageId")?,
        sender_id: parse(q, "senderId")?,
        content: s(q, "content")?,
        message_type: s(q, "type")?,
        created_at: ts(q, "createdAt"),
    })
}

/// The statuses every summary shows, even at 0.
pub const SUMMARY_STATUSES: [&str; 2] = ["delivered", "read"];

/// The summary of a message without receipts.
pub fn empty_statuses() -> chat3_sdk::StatusSummary {
    statuses(&Document::new())
}

/// `statusCounts` (status → receipts by others than the sender) as the summary shows it.
fn statuses(d: &Document) -> chat3_sdk::StatusSummary {
    let mut out: chat3_sdk::StatusSummary = SUMMARY_STATUSES
        .iter()
        .map(|s| ((*s).to_owned(), 0))
        .collect();
    if let Ok(counts) = d.get_document("statusCounts") {
        for (k, _) in counts {
            out.insert(k.clone(), u(counts, k));
        }
    }
    out
}

/// `reactions` ([{reaction, count}]) with `me` false: the viewer's side is filled in by reads
/// that have one.
fn reactions(d: &Document) -> Vec<chat3_sdk::ReactionCount> {
    d.get_array("reactions")
        .map(|a| {
            a.iter()
                .filter_map(Bson::as_document)
                .filter_map(|r| {
                    Some(chat3_sdk::ReactionCount {
                        reaction: r.get_str("reaction").ok()?.to_owned(),
                        count: u(r, "count"),
                        me: false,
                    })
                })
                .filter(|r| r.count > 0)
                .collect()
        })
        .unwrap_or_default()
}

/// The stored form of a quote snapshot.
pub fn quoted_doc(q: &chat3_sdk::QuotedMessage) -> Document {
    bson::doc! {
        "messageId": q.message_id.as_str(),
        "senderId": q.sender_id.as_str(),
        "content": &q.content,
        "type": &q.message_type,
        "createdAt": q.created_at,
    }
}

/// The snapshot a quote of `m` carries.
pub fn snapshot(m: &Message) -> chat3_sdk::QuotedMessage {
    chat3_sdk::QuotedMessage {
        message_id: m.message_id.clone(),
        sender_id: m.sender_id.clone(),
        content: m.content.clone(),
        message_type: m.message_type.clone(),
        created_at: m.created_at,
    }
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
        meta: m.get_document("meta").map(meta_of).unwrap_or_default(),
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

/// A stored dialog (collection `dialogs`): the one codec the API and the worker share. The
/// newest message (`lastMessage`, written by the sends for the inbox) stays in the document and
/// is read where it is shown.
#[derive(Debug, Clone, PartialEq)]
pub struct DialogDoc {
    /// Tenant.
    pub tenant_id: chat3_sdk::TenantId,
    /// Id.
    pub dialog_id: chat3_sdk::DialogId,
    /// Display name.
    pub name: Option<String>,
    /// Client meta, stored literally (see [`crate::plain`]).
    pub meta: Document,
    /// Who created it.
    pub created_by: chat3_sdk::UserId,
    /// Seq of the newest message (0 when empty).
    pub last_seq: u64,
    /// Running count of countable messages (deleted ones no longer count).
    pub msg_count: u64,
    /// Number of members.
    pub members_count: u64,
    /// Creation time.
    pub created_at: i64,
    /// Last change or message.
    pub updated_at: i64,
}

impl DialogDoc {
    /// A new, empty dialog.
    pub fn created(
        tenant_id: &chat3_sdk::TenantId,
        dialog_id: &chat3_sdk::DialogId,
        name: Option<String>,
        meta: Document,
        created_by: &chat3_sdk::UserId,
        now: i64,
    ) -> Self {
        Self {
            tenant_id: tenant_id.clone(),
            dialog_id: dialog_id.clone(),
            name,
            meta,
            created_by: created_by.clone(),
            last_seq: 0,
            msg_count: 0,
            members_count: 0,
            created_at: now,
            updated_at: now,
        }
    }

    /// Reads a stored dialog.
    pub fn from_doc(d: &Document) -> Result<Self> {
        Ok(Self {
            tenant_id: parse(d, "tenantId")?,
            dialog_id: parse(d, "dialogId")?,
            name: d.get_str("name").ok().map(str::to_owned),
            meta: d.get_document("meta").cloned().unwrap_or_default(),
            created_by: parse(d, "createdBy")?,
            last_seq: u(d, "lastSeq"),
            msg_count: u(d, "msgCount"),
            members_count: u(d, "membersCount"),
            created_at: ts(d, "createdAt"),
            updated_at: ts(d, "updatedAt"),
        })
    }

    /// The document as stored.
    pub fn to_doc(&self) -> Document {
        bson::doc! {
            "tenantId": self.tenant_id.as_str(),
            "dialogId": self.dialog_id.as_str(),
            "name": self.name.as_deref(),
            "meta": self.meta.clone(),
            "createdBy": self.created_by.as_str(),
            "lastSeq": stored_seq(self.last_seq),
            "msgCount": stored_seq(self.msg_count),
            "membersCount": stored_seq(self.members_count),
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }
    }
}

/// A stored message (collection `messages`): the message and the dialog's count of countable
/// messages up to it (what a read watermark at this message counts as read).
#[derive(Debug, Clone, PartialEq)]
pub struct MessageDoc {
    /// The message.
    pub message: Message,
    /// Countable messages of the dialog up to and including this one.
    pub count_at: u64,
}

impl MessageDoc {
    /// Reads a stored message.
    pub fn from_doc(d: &Document) -> Result<Self> {
        Ok(Self {
            message: message(d)?,
            count_at: u(d, "countAt"),
        })
    }

    /// The document as stored (meta literally, see [`crate::plain`]).
    pub fn to_doc(&self) -> Document {
        let m = &self.message;
        let meta: Document = m
            .meta
            .iter()
            .map(|(k, v)| (k.clone(), plain::to_bson(v)))
            .collect();
        let mut d = bson::doc! {
            "tenantId": m.tenant_id.as_str(),
            "messageId": m.message_id.as_str(),
            "dialogId": m.dialog_id.as_str(),
            "seq": stored_seq(m.seq),
            "senderId": m.sender_id.as_str(),
            "content": &m.content,
            "type": &m.message_type,
            "meta": meta,
            "createdAt": m.created_at,
            "countAt": stored_seq(self.count_at),
        };
        if let Some(q) = &m.quoted_message_id {
            d.insert("quotedMessageId", q.as_str());
        }
        if let Some(c) = &m.client_message_id {
            d.insert("clientMessageId", c);
        }
        if let Some(q) = &m.quoted_message {
            d.insert("quotedMessage", quoted_doc(q));
        }
        if let Some(t) = m.edited_at {
            d.insert("editedAt", t);
        }
        if let Some(t) = m.deleted_at {
            d.insert("deletedAt", t);
        }
        let counts: Document = m
            .statuses
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k.clone(), Bson::Int64(stored_seq(*n))))
            .collect();
        d.insert("statusCounts", counts);
        let reactions: Vec<Bson> = m
            .reactions
            .iter()
            .map(|r| {
                Bson::Document(bson::doc! {"reaction": &r.reaction, "count": stored_seq(r.count)})
            })
            .collect();
        d.insert("reactions", reactions);
        d
    }
}

/// A stored membership (collection `members`).
#[derive(Debug, Clone, PartialEq)]
pub struct MemberDoc {
    /// Tenant.
    pub tenant_id: chat3_sdk::TenantId,
    /// Dialog.
    pub dialog_id: chat3_sdk::DialogId,
    /// The member.
    pub user_id: chat3_sdk::UserId,
    /// Their type.
    pub user_type: chat3_sdk::UserType,
    /// When they joined.
    pub joined_at: i64,
    /// Read watermark (a seq).
    pub last_read_seq: u64,
    /// Countable messages up to the watermark.
    pub read_count: u64,
    /// When the user last read here: a `read` receipt, a watermark move, a send (`None`: never).
    pub last_read_at: Option<i64>,
    /// The dialog's last activity (the inbox's sort key).
    pub last_activity_at: i64,
    /// Metadata of the membership, stored literally (the key is absent while empty).
    pub meta: Document,
}

impl MemberDoc {
    /// A new membership of `user` in `dialog` at `now`, nothing read yet.
    pub fn joined(
        tenant_id: &chat3_sdk::TenantId,
        dialog_id: &chat3_sdk::DialogId,
        user_id: &chat3_sdk::UserId,
        user_type: &chat3_sdk::UserType,
        now: i64,
    ) -> Self {
        Self {
            tenant_id: tenant_id.clone(),
            dialog_id: dialog_id.clone(),
            user_id: user_id.clone(),
            user_type: user_type.clone(),
            joined_at: now,
            last_read_seq: 0,
            read_count: 0,
            last_read_at: None,
            last_activity_at: now,
            meta: Document::new(),
        }
    }

    /// Joining an existing dialog: what is already in it counts as read (the watermark starts
    /// at its newest message), so only later messages are unread for the new member.
    pub fn at_watermark_of(mut self, dialog: &DialogDoc) -> Self {
        self.last_read_seq = dialog.last_seq;
        self.read_count = dialog.msg_count;
        self
    }

    /// Reads a stored membership.
    pub fn from_doc(d: &Document) -> Result<Self> {
        Ok(Self {
            tenant_id: parse(d, "tenantId")?,
            dialog_id: parse(d, "dialogId")?,
            user_id: parse(d, "userId")?,
            user_type: d
                .get_str("userType")
                .ok()
                .and_then(|t| t.parse().ok())
                .unwrap_or_default(),
            joined_at: ts(d, "joinedAt"),
            last_read_seq: u(d, "lastReadSeq"),
            read_count: u(d, "readCount"),
            last_read_at: opt_ts(d, "lastReadAt"),
            last_activity_at: ts(d, "lastActivityAt"),
            meta: d.get_document("meta").cloned().unwrap_or_default(),
        })
    }

    /// The document as stored.
    pub fn to_doc(&self) -> Document {
        let mut d = bson::doc! {
            "tenantId": self.tenant_id.as_str(),
            "dialogId": self.dialog_id.as_str(),
            "userId": self.user_id.as_str(),
            "userType": self.user_type.as_str(),
            "joinedAt": self.joined_at,
            "lastReadSeq": stored_seq(self.last_read_seq),
            "readCount": stored_seq(self.read_count),
            "lastReadAt": self.last_read_at,
            "lastActivityAt": self.last_activity_at,
        };
        if !self.meta.is_empty() {
            d.insert("meta", self.meta.clone());
        }
        d
    }

    /// Unread against `dialog`: its countable messages minus those counted at the watermark
    /// (never negative, even when the two reads straddle a concurrent send).
    pub fn unread(&self, dialog: &DialogDoc) -> u64 {
        dialog.msg_count.saturating_sub(self.read_count)
    }

    /// The member in the sdk `Member` shape.
    pub fn view(&self, dialog: &DialogDoc) -> Member {
        Member {
            user_id: self.user_id.clone(),
            user_type: self.user_type.clone(),
            last_read_seq: self.last_read_seq,
            unread_count: self.unread(dialog),
            joined_at: self.joined_at,
            meta: meta_of(&self.meta),
        }
    }
}

/// A stored user (collection `users`, one per (tenant, userId)).
#[derive(Debug, Clone, PartialEq)]
pub struct UserDoc {
    /// Tenant.
    pub tenant_id: chat3_sdk::TenantId,
    /// The user.
    pub user_id: chat3_sdk::UserId,
    /// Their type.
    pub user_type: chat3_sdk::UserType,
    /// Display name.
    pub name: Option<String>,
    /// Metadata, stored literally.
    pub meta: Document,
    /// Created.
    pub created_at: i64,
    /// Last changed.
    pub updated_at: i64,
}

impl UserDoc {
    /// A new user at `now`.
    pub fn created(
        tenant_id: &chat3_sdk::TenantId,
        user_id: &chat3_sdk::UserId,
        user_type: &chat3_sdk::UserType,
        now: i64,
    ) -> Self {
        Self {
            tenant_id: tenant_id.clone(),
            user_id: user_id.clone(),
            user_type: user_type.clone(),
            name: None,
            meta: Document::new(),
            created_at: now,
            updated_at: now,
        }
    }

    /// Reads a stored user.
    pub fn from_doc(d: &Document) -> Result<Self> {
        Ok(Self {
            tenant_id: parse(d, "tenantId")?,
            user_id: parse(d, "userId")?,
            user_type: d
                .get_str("type")
                .ok()
                .and_then(|t| t.parse().ok())
                .unwrap_or_default(),
            name: d.get_str("name").ok().map(str::to_owned),
            meta: d.get_document("meta").cloned().unwrap_or_default(),
            created_at: ts(d, "createdAt"),
            updated_at: ts(d, "updatedAt"),
        })
    }

    /// The document as stored.
    pub fn to_doc(&self) -> Document {
        bson::doc! {
            "tenantId": self.tenant_id.as_str(),
            "userId": self.user_id.as_str(),
            "type": self.user_type.as_str(),
            "name": self.name.as_deref(),
            "meta": self.meta.clone(),
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }
    }

    /// The user in the API's shape.
    pub fn view(&self) -> chat3_sdk::User {
        chat3_sdk::User {
            user_id: self.user_id.clone(),
            user_type: self.user_type.clone(),
            name: self.name.clone(),
            meta: meta_of(&self.meta),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_reads_back_as_written() {
        let t = "acme".parse().unwrap_or_else(|e| panic!("{e}"));
        let u = "alice".parse().unwrap_or_else(|e| panic!("{e}"));
        let mut user =
            UserDoc::created(&t, &u, &"bot".parse().unwrap_or_else(|e| panic!("{e}")), 7);
        user.name = Some("Alice".into());
        user.meta = bson::doc! {"k": [1, "x"]};
        assert_eq!(UserDoc::from_doc(&user.to_doc()).ok(), Some(user));
    }

    #[test]
    fn a_membership_reads_back_as_written() {
        let t = "acme".parse().unwrap_or_else(|e| panic!("{e}"));
        let d = crate::ids::dialog_id();
        let u = "alice".parse().unwrap_or_else(|e| panic!("{e}"));
        let mut m = MemberDoc::joined(&t, &d, &u, &chat3_sdk::UserType::default(), 42);
        m.last_read_seq = 7;
        m.read_count = 5;
        assert_eq!(MemberDoc::from_doc(&m.to_doc()).ok(), Some(m));
        let mut dialog =
            DialogDoc::created(&t, &d, Some("Team".into()), bson::doc! {"k": 1}, &u, 42);
        dialog.last_seq = 3;
        dialog.msg_count = 2;
        assert_eq!(DialogDoc::from_doc(&dialog.to_doc()).ok(), Some(dialog));
    }
}
