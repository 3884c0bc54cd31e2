//! Receipt and reaction events. `message.status.changed` goes to the message's sender as a
//! `message` update (the receipt, with the message's summary) and to the user who recorded it as
//! a `dialog` update (their new unread count); `message.reaction.changed` goes to every member
//! with the message's current state, `reactions[].me` from each recipient's side.

use std::collections::HashSet;

use chat3_sdk::events::{ReactionChanged, StatusChanged};
use chat3_sdk::{EventEnvelope, EventType, Message, MessageId, UpdateType, UserId};
use serde_json::{json, Map, Value};

use super::message::as_seen;
use super::{poison, Recipients};
use crate::fanout::ProcessError;
use crate::state::member_view;
use chat3_core::docs::{DialogDoc, MemberDoc};

/// A handled receipt or reaction event.
#[derive(Debug, Clone)]
pub enum ReceiptEvent {
    /// `message.status.changed`.
    Status(StatusChanged),
    /// `message.reaction.changed`.
    Reaction(ReactionChanged),
}

impl ReceiptEvent {
    /// The receipt event `event` is, `None` when it is not one handled here.
    pub fn of(event: &EventEnvelope) -> Result<Option<Self>, ProcessError> {
        Ok(Some(match event.event_type {
            EventType::MessageStatusChanged => {
                ReceiptEvent::Status(event.payload().map_err(poison)?)
            }
            EventType::MessageReactionChanged => {
                ReceiptEvent::Reaction(event.payload().map_err(poison)?)
            }
            _ => return Ok(None),
        }))
    }

    /// The message it is about.
    pub fn message_id(&self) -> &MessageId {
        match self {
            ReceiptEvent::Status(s) => &s.message_id,
            ReceiptEvent::Reaction(r) => &r.message_id,
        }
    }

    /// Who receives an update.
    pub fn recipients(&self) -> Recipients {
        match self {
            ReceiptEvent::Status(s) => {
                let mut users = vec![s.user_id.clone()];
                if s.sender_id != s.user_id {
                    users.push(s.sender_id.clone());
                }
                Recipients::Listed(users)
            }
            ReceiptEvent::Reaction(_) => Recipients::Members,
        }
    }

    /// The kind of `user`'s update.
    pub fn update_type_for(&self, user: &UserId) -> UpdateType {
        match self {
            ReceiptEvent::Status(s) if &s.user_id == user => UpdateType::Dialog,
            _ => UpdateType::Message,
        }
    }

    /// The sections besides `dialog`: for the reader of a receipt their own state; otherwise the
    /// message's current state (`current`, `me` from `mine`); and what happened.
    pub fn sections(
        &self,
        data: &mut Map<String, Value>,
        dialog: &DialogDoc,
        member: &MemberDoc,
        current: Option<&Message>,
        mine: &HashSet<String>,
    ) {
        let message = || json!(current.map(|m| as_seen(m, mine)));
        match self {
            ReceiptEvent::Status(s) if s.user_id == member.user_id => {
                data.insert("member".into(), member_view(dialog, member));
                data.insert("status".into(), json!(s));
            }
            ReceiptEvent::Status(s) => {
                data.insert("message".into(), message());
                data.insert("status".into(), json!(s));
            }
            ReceiptEvent::Reaction(r) => {
                data.insert("message".into(), message());
                data.insert("reaction".into(), json!(r));
            }
        }
    }
}
