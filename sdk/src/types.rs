//! Request and response bodies of the REST API, the event envelope and the update record.
//! Field names are camelCase on the wire; timestamps are integer milliseconds since the epoch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{DialogId, MessageId, Scope, TenantId, UserId, UserType};

/// Free-form metadata embedded in its entity (`meta.<key>`).
pub type Meta = BTreeMap<String, Value>;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The HTTP reason phrase, e.g. `Not Found`.
    pub error: String,
    /// A human-readable explanation.
    pub message: String,
    /// A stable snake_case code, e.g. `dialog_not_found`.
    pub code: String,
    /// Per-field problems, for validation errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

/// `{data, message?}`: the envelope of single-object responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Data<T> {
    /// The payload.
    pub data: T,
    /// An optional note for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl<T> Data<T> {
    /// `{data}` without a message.
    pub fn new(data: T) -> Self {
        Self {
            data,
            message: None,
        }
    }
}

/// Offset pagination block of list responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pagination {
    /// 1-based page number.
    pub page: u64,
    /// Page size (1-100).
    pub limit: u64,
    /// Total number of matching items.
    pub total: u64,
    /// Number of pages.
    pub pages: u64,
}

impl Pagination {
    /// The block for `total` items shown `limit` per page, on page `page`.
    pub fn new(page: u64, limit: u64, total: u64) -> Self {
        let pages = if limit == 0 { 0 } else { total.div_ceil(limit) };
        Self {
            page,
            limit,
            total,
            pages,
        }
    }
}

/// `{data, pagination}`: the envelope of offset-paginated lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items of this page.
    pub data: Vec<T>,
    /// Where this page sits.
    pub pagination: Pagination,
}

impl<T> Page<T> {
    /// The same page with every item converted by `f`; the first failure is the result.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        Ok(Page {
            data: self.data.into_iter().map(f).collect::<Result<_, _>>()?,
            pagination: self.pagination,
        })
    }
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// The tenant id.
    pub tenant_id: TenantId,
    /// Display name.
    pub name: String,
    /// Creation time.
    pub created_at: i64,
    /// Metadata (`/api/meta/tenant/{id}`); omitted when empty.
    #[serde(default, skip_serializing_if = "Meta::is_empty")]
    pub meta: Meta,
    /// `active`, or `deleting` once `DELETE /api/tenants/{id}` was accepted.
    #[serde(default)]
    pub status: TenantStatus,
    /// Progress of the deletion; only while `status` is `deleting`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion: Option<TenantDeletion>,
}

/// Whether a tenant is in use or being deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TenantStatus {
    /// In use.
    #[default]
    Active,
    /// Its keys are revoked and its data is being removed; it disappears (404) when done.
    Deleting,
}

/// How far the deletion of a tenant's data has come.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantDeletion {
    /// When the deletion was accepted.
    pub started_at: i64,
    /// Documents the tenant had when the background removal started (0 until it has counted
    /// them; writes still in flight may add a few, so `deleted` can end slightly above it).
    pub total: u64,
    /// Documents removed so far.
    pub deleted: u64,
    /// The same per kind of data (`users`, `dialogs`, `members`, `messages`, ...).
    pub collections: std::collections::BTreeMap<String, DeletionCount>,
}

/// Documents of one kind: at the start, and removed so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletionCount {
    /// At the start.
    pub total: u64,
    /// Removed so far.
    pub deleted: u64,
}

/// `PATCH /api/tenants/{id}`: the fields given change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateTenant {
    /// New display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Meta keys to set; a `null` value removes the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

/// `POST /api/tenants`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTenant {
    /// The id to create.
    pub tenant_id: TenantId,
    /// Display name; defaults to the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `POST /api/tenants/{id}/api-keys`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateApiKey {
    /// A label for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Scopes; all of `read`, `write`, `delete` when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<Scope>>,
}

/// An API key as listed: never the secret itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyInfo {
    /// Key id (`key_...`), used to revoke it.
    pub key_id: String,
    /// The tenant the key acts for.
    pub tenant_id: TenantId,
    /// Label.
    pub name: String,
    /// Granted scopes.
    pub scopes: Vec<Scope>,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    /// Creation time.
    pub created_at: i64,
    /// Set once revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
}

/// The response to key creation: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    /// The stored description of the key.
    #[serde(flatten)]
    pub info: ApiKeyInfo,
    /// The secret to send as `X-API-Key`.
    pub key: String,
}

/// A member to add to a dialog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberInput {
    /// The user.
    pub user_id: UserId,
    /// The user's type; `user` when omitted.
    #[serde(default, rename = "type")]
    pub user_type: UserType,
}

/// `POST /api/dialogs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateDialog {
    /// Initial members (at least one).
    pub members: Vec<MemberInput>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Who creates it (actor of the event); the first member when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<UserId>,
}

/// A dialog member with their read watermark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The user.
    pub user_id: UserId,
    /// The user's type.
    #[serde(rename = "type")]
    pub user_type: UserType,
    /// Highest message seq the member has read.
    pub last_read_seq: u64,
    /// Unread messages for this member.
    pub unread_count: u64,
    /// When the member joined.
    pub joined_at: i64,
    /// Metadata of the membership (`/api/meta/dialogMember/{dialogId}:{userId}`); omitted when
    /// empty.
    #[serde(default, skip_serializing_if = "Meta::is_empty")]
    pub meta: Meta,
}

/// A dialog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dialog {
    /// Id.
    pub dialog_id: DialogId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Metadata.
    #[serde(default)]
    pub meta: Meta,
    /// Who created it.
    pub created_by: UserId,
    /// Seq of the newest message (0 when empty).
    pub last_seq: u64,
    /// Number of countable (non-`system.*`) messages.
    pub message_count: u64,
    /// Members.
    pub members: Vec<Member>,
    /// Creation time.
    pub created_at: i64,
    /// Last change or message.
    pub updated_at: i64,
}

/// `POST /api/dialogs/{d}/messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateMessage {
    /// Author; must be a member unless `type` starts with `system.`.
    pub sender_id: UserId,
    /// Text, at most 10,000 characters; empty (or omitted) only for a media message, whose
    /// `meta.url` names the media.
    #[serde(default)]
    pub content: String,
    /// `text` when omitted; `system.*` types do not count as unread.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub message_type: Option<String>,
    /// Metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// A message of the same dialog this one quotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted_message_id: Option<MessageId>,
    /// Client-chosen dedup key, unique per (tenant, dialog, sender).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
}

/// A message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Id.
    pub message_id: MessageId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Dialog.
    pub dialog_id: DialogId,
    /// Position in the dialog, strictly increasing from 1.
    pub seq: u64,
    /// Author.
    pub sender_id: UserId,
    /// Text.
    pub content: String,
    /// Type (`text`, `system.*`, ...).
    #[serde(rename = "type")]
    pub message_type: String,
    /// Metadata.
    #[serde(default)]
    pub meta: Meta,
    /// Quoted message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted_message_id: Option<MessageId>,
    /// Client dedup key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
    /// The quoted message as it was when quoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted_message: Option<QuotedMessage>,
    /// Creation time.
    pub created_at: i64,
    /// Last edit, if edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    /// Deletion time: a deleted message keeps its seq and loses its content and meta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<i64>,
    /// Receipts by status (`read`, `delivered`, custom), not counting the sender.
    #[serde(default)]
    pub statuses: StatusSummary,
    /// Reactions with their counts, in the order they were first set.
    #[serde(default)]
    pub reactions: Vec<ReactionCount>,
}

/// Receipts of a message by status: `read` and `delivered` always, custom statuses once used.
pub type StatusSummary = BTreeMap<String, u64>;

/// A snapshot of a quoted message, taken when the quoting message was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotedMessage {
    /// The quoted message.
    pub message_id: MessageId,
    /// Its author.
    pub sender_id: UserId,
    /// Its text then.
    pub content: String,
    /// Its type.
    #[serde(rename = "type")]
    pub message_type: String,
    /// When it was created.
    pub created_at: i64,
}

/// One reaction of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReactionCount {
    /// The reaction (an emoji or a short code).
    pub reaction: String,
    /// How many users set it.
    pub count: u64,
    /// Whether the viewing user set it (false in tenant-wide reads, which have no viewer).
    pub me: bool,
}

/// A message as one user sees it (`GET /api/users/{u}/dialogs/{d}/messages`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserMessage {
    /// The message (`reactions[].me` from this user's side).
    #[serde(flatten)]
    pub message: Message,
    /// This user sent it.
    pub is_mine: bool,
}

/// A receipt: `POST /api/users/{u}/dialogs/{d}/messages/{m}/status/{status}` and the entries of
/// `GET .../statuses`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageStatus {
    /// The message.
    pub message_id: MessageId,
    /// Its dialog.
    pub dialog_id: DialogId,
    /// Who recorded it.
    pub user_id: UserId,
    /// `read`, `delivered` or custom (`[a-z0-9_-]{1,64}`).
    pub status: String,
    /// When it was first recorded.
    pub created_at: i64,
}

/// `POST .../reactions/{set|unset}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReactionInput {
    /// The reaction: 1-50 characters (an emoji, a short code).
    pub reaction: String,
}

/// A message's reactions after a set or unset, `me` from the acting user's side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageReactions {
    /// The message.
    pub message_id: MessageId,
    /// Its reactions.
    pub reactions: Vec<ReactionCount>,
}

/// One user's reaction (`GET .../reactions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReactionEntry {
    /// Who.
    pub user_id: UserId,
    /// Which.
    pub reaction: String,
    /// When.
    pub created_at: i64,
}

/// `PUT /api/messages/{m}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EditMessage {
    /// The new text; empty only for a media message (`meta.url`).
    pub content: String,
    /// The new meta (replaces the old one); unchanged when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

/// `PATCH /api/dialogs/{d}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateDialog {
    /// The new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Keys to set; a key with `null` is removed. Other keys stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

/// `DELETE /api/dialogs/{d}` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedDialog {
    /// The dialog.
    pub dialog_id: DialogId,
    /// When it was deleted.
    pub deleted_at: i64,
}

/// `POST /api/dialogs/{d}/members/add`: several members, or one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AddMembers {
    /// `{members: [...]}`.
    Many {
        /// Members to add (1-1000).
        members: Vec<MemberInput>,
    },
    /// `{userId, type?}`.
    One(MemberInput),
}

impl AddMembers {
    /// The members asked for, in order.
    pub fn members(&self) -> Vec<MemberInput> {
        match self {
            AddMembers::Many { members } => members.clone(),
            AddMembers::One(m) => vec![m.clone()],
        }
    }
}

/// Result of adding members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MembersChange {
    /// The dialog.
    pub dialog_id: DialogId,
    /// Who joined now.
    pub added: Vec<Member>,
    /// Who asked to join but was a member already (unchanged).
    pub existing: Vec<UserId>,
}

/// Result of removing a member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovedMember {
    /// The dialog.
    pub dialog_id: DialogId,
    /// Who was removed.
    pub user_id: UserId,
    /// When.
    pub removed_at: i64,
}

/// `POST /api/dialogs/{d}/member/{u}/typing`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TypingInput {
    /// `false` to stop; `true` (default) to start or keep typing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_typing: Option<bool>,
}

/// A typing signal as accepted (and as the `typing` update carries it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypingState {
    /// The dialog.
    pub dialog_id: DialogId,
    /// Who is typing.
    pub user_id: UserId,
    /// Started (true) or stopped.
    pub is_typing: bool,
    /// A start holds this long without a new one.
    pub expires_in_ms: u64,
}

/// `GET /api/users/{u}/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserStats {
    /// The user.
    pub user_id: UserId,
    /// Dialogs the user is a member of.
    pub dialog_count: u64,
    /// Of those, dialogs with unread messages.
    pub unread_dialogs: u64,
    /// Unread messages over all their dialogs.
    pub total_unread: u64,
}

/// The user's side of an inbox entry, in Chat3's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboxContext {
    /// The user.
    pub user_id: UserId,
    /// Their unread messages here.
    pub unread_count: u64,
    /// When they last read here: a `read` receipt, markAllRead, a send (null: never).
    pub last_seen_at: Option<i64>,
    /// When the newest message was created (null: none yet).
    pub last_message_at: Option<i64>,
    /// When they joined.
    pub joined_at: i64,
}

/// One entry of a user's inbox (`GET /api/users/{u}/dialogs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboxDialog {
    /// Dialog.
    pub dialog_id: DialogId,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Metadata.
    #[serde(default)]
    pub meta: Meta,
    /// Unread messages for this user.
    pub unread_count: u64,
    /// This user's read watermark.
    pub last_read_seq: u64,
    /// Seq of the newest message.
    pub last_seq: u64,
    /// The newest message, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message: Option<Message>,
    /// Newest activity in the dialog (message or creation).
    pub last_interaction_at: i64,
    /// Number of members.
    pub members_count: u64,
    /// The user's side, in Chat3's shape.
    pub context: InboxContext,
}

/// Result of `POST /api/users/{u}/dialogs/{d}/markAllRead`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadState {
    /// Dialog.
    pub dialog_id: DialogId,
    /// Member.
    pub user_id: UserId,
    /// The watermark after the call.
    pub last_read_seq: u64,
    /// Unread after the call.
    pub unread_count: u64,
}

/// Kind of an update, the last part of its routing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdateType {
    /// A message was created or changed.
    Message,
    /// Dialog state (membership, read watermark, name) changed.
    Dialog,
    /// A user changed.
    User,
    /// Ephemeral typing indicator (never stored).
    Typing,
    /// Ephemeral presence (never stored).
    Presence,
}

impl UpdateType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateType::Message => "message",
            UpdateType::Dialog => "dialog",
            UpdateType::User => "user",
            UpdateType::Typing => "typing",
            UpdateType::Presence => "presence",
        }
    }
}

/// A per-user update: one per (event, recipient), sequenced per (tenant, user).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Update {
    /// Id.
    pub update_id: String,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Recipient.
    pub user_id: UserId,
    /// Recipient's type (part of the routing key).
    pub user_type: UserType,
    /// Per-user sequence; absent for ephemeral updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Kind.
    pub update_type: UpdateType,
    /// The event type that caused it.
    pub event_type: crate::EventType,
    /// The event that caused it.
    pub event_id: String,
    /// Dialog, when the event concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialog_id: Option<DialogId>,
    /// Creation time.
    pub created_at: i64,
    /// Sections the client needs without another call (`message`, `dialog`, `member`).
    pub data: Value,
}

/// `GET /api/users/{u}/updates` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdatesPage {
    /// Updates after `since`, in seq order.
    pub data: Vec<Update>,
    /// More updates follow the last one returned.
    pub has_more: bool,
    /// `since` is older than retention: the client must reload its state.
    pub resync_required: bool,
    /// Highest seq stored for the user (0 when none).
    pub head_seq: u64,
}

/// The event envelope published on `chat3_events` with routing key `{eventType}.{tenantId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    /// Unique id; also the AMQP `message_id`.
    pub event_id: String,
    /// Tenant.
    pub tenant_id: TenantId,
    /// e.g. `message.create`.
    pub event_type: crate::EventType,
    /// e.g. `message`.
    pub entity_type: String,
    /// Id of the entity.
    pub entity_id: String,
    /// Dialog, when the event concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialog_id: Option<DialogId>,
    /// Who did it.
    pub actor_id: String,
    /// `user`, `api` or `system`.
    pub actor_type: String,
    /// When it happened.
    pub occurred_at: i64,
    /// Event-specific payload.
    pub data: Value,
}

/// Readiness of the dependencies (`GET /ready`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Readiness {
    /// `ok` or `unavailable`.
    pub status: String,
    /// Per dependency: `ok` or an error summary.
    pub checks: BTreeMap<String, String>,
}

/// `POST /api/auth/request-code` (BFF).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestCode {
    /// E.164 phone number, e.g. `+15551234567`.
    pub phone: String,
    /// Display name for a new user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Response to `request-code`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeSent {
    /// The normalised phone.
    pub phone: String,
    /// Seconds until the code expires.
    pub expires_in: u64,
}

/// `POST /api/auth/verify-code` (BFF).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyCode {
    /// Phone the code was sent to.
    pub phone: String,
    /// The code.
    pub code: String,
}

/// An end user of the BFF.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BffUser {
    /// `usr_` + 8 characters; also the chat3 user id.
    pub user_id: UserId,
    /// Phone.
    pub phone: String,
    /// Display name.
    pub name: String,
}

/// Response to `verify-code`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// JWT (HS256, 48 h) for `Authorization: Bearer` and `/ws?token=`.
    pub token: String,
    /// The user.
    pub user: BffUser,
}

/// A WebSocket frame, both directions: `{event, data, seq?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WsFrame {
    /// e.g. `message:new`, `chat3:update`, `ping`.
    pub event: String,
    /// Payload.
    #[serde(default)]
    pub data: Value,
    /// The update seq this frame came from, when stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// Options of `GET /api/dialogs/{d}/messages`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageQuery {
    /// 1-based page (offset mode, newest first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u64>,
    /// Page size, at most 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Only messages with a smaller seq (newest first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_seq: Option<u64>,
    /// Only messages with a larger seq (oldest first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_seq: Option<u64>,
    /// Only messages matching this filter (`(senderId,eq,alice)&(type,eq,internal.text)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Page mode's order: `(seq,desc)` (the default) or `(seq,asc)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
}

/// `?page=&limit=&filter=&sort=` of the lists that filter (grammar: the spec's `Filter`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    /// 1-based page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u64>,
    /// Page size, at most 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// `(field,op,value)` conditions joined by `&` / `|`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// `(field,asc|desc)`, up to three.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
}

/// A user of a tenant: `GET /api/users/{u}` and the lists. Created explicitly
/// (`POST /api/users`) or when first added to a dialog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The user's id (the integrator's own).
    pub user_id: UserId,
    /// `user`, `bot`, `contact` or a custom `[a-z0-9_-]` type.
    #[serde(rename = "type")]
    pub user_type: UserType,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Metadata.
    #[serde(default)]
    pub meta: Meta,
    /// When the user was created.
    pub created_at: i64,
    /// When the user last changed.
    pub updated_at: i64,
}

/// `POST /api/users`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateUser {
    /// The user's id.
    pub user_id: UserId,
    /// The type; `user` when omitted.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<UserType>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

/// `PUT /api/users/{u}`: the fields given change, the others stay (Chat3's semantics).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateUser {
    /// The new type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<UserType>,
    /// The new name; `null` removes it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::types::nullable"
    )]
    pub name: Option<Option<String>>,
    /// Keys to set; a key with `null` is removed. Other keys stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

/// `DELETE /api/users/{u}` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedUser {
    /// The user.
    pub user_id: UserId,
    /// Whether a user was deleted (`false`: there was none; deleting is idempotent).
    pub deleted: bool,
    /// The dialogs they were removed from by this call.
    pub removed_from: Vec<DialogId>,
}

/// A field that distinguishes "absent" (`None`) from "`null`" (`Some(None)`).
pub mod nullable {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Serializes `Some(None)` as `null`.
    pub fn serialize<T: Serialize, S: Serializer>(
        v: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    /// A present field: `null` → `Some(None)`, a value → `Some(Some(v))`.
    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Ok(Some(Option::deserialize(d)?))
    }
}

/// The meta of one entity: `GET|PUT|DELETE /api/meta/{entityType}/{entityId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityMeta {
    /// `tenant`, `user`, `dialog`, `dialogMember` or `message`.
    pub entity_type: String,
    /// The entity's id (`{dialogId}:{userId}` for a membership).
    pub entity_id: String,
    /// Its meta after the call.
    pub meta: Meta,
}

/// One key of an entity's meta: `GET /api/meta/{entityType}/{entityId}/{key}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetaEntry {
    /// `tenant`, `user`, `dialog`, `dialogMember` or `message`.
    pub entity_type: String,
    /// The entity's id.
    pub entity_id: String,
    /// The key.
    pub key: String,
    /// Its value.
    pub value: Value,
}

/// `PUT /api/meta/{entityType}/{entityId}/{key}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaValueInput {
    /// The value to store (any JSON; `null` removes the key).
    pub value: Value,
}
