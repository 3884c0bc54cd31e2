//! Message events. `message.create`, `message.changed`, `message.delete` and
//! `message.reaction.changed` go to every member, carrying the message's current state (with
//! `reactions[].me` from each recipient's side); `message.status.changed` goes to the message's
//! sender as a `message` update (the receipt) and to the user who recorded it as a `dialog`
//! update (their new unread count).

use std::collections::HashSet;

use chat3_sdk::events::{
    MessageChanged, MessageCreated, MessageDeleted, ReactionChanged, StatusChanged,
};
use chat3_sdk::{EventEnvelope, EventType, Message, MessageId, UpdateType, UserId};
use serde_json::{json, Map, Value};

use super::{poison, Recipients};
use crate::fanout::ProcessError;
use crate::state::member_view;
use chat3_core::docs::{DialogDoc, MemberDoc};

/// A handled message event.
#[derive(Debug, Clone)]
pub enum MessageEvent {
    /// `message.create`, `message.changed`, `message.delete`: the message as the event carries
    /// it (updates carry its current state; this copy is the fallback when it is gone).
    Message(Box<Message>),
    /// `message.status.changed`.
    Status(StatusChanged),
    /// `message.reaction.changed`.
    Reaction(ReactionChanged),
}

impl MessageEvent {
    /// The message event `event` is, `None` when it is not one handled here.
    pub fn of(event: &EventEnvelope) -> Result<Option<Self>, ProcessError> {
        Ok(Some(match event.event_type {
            EventType::MessageCreate => MessageEvent::Message(Box::new(
                event.payload::<MessageCreated>().map_err(poison)?.message,
            )),
            EventType::MessageChanged => MessageEvent::Message(Box::new(
                event.payload::<MessageChanged>().map_err(poison)?.message,
            )),
            EventType::MessageDelete => MessageEvent::Message(Box::new(
                event.payload::<MessageDeleted>().map_err(poison)?.message,
            )),
            EventType::MessageStatusChanged => {
                MessageEvent::Status(event.payload().map_err(poison)?)
            }
            EventType::MessageReactionChanged => {
                MessageEvent::Reaction(event.payload().map_err(poison)?)
            }
            _ => return Ok(None),
        }))
    }

    /// The message the event is about.
    pub fn message_id(&self) -> &MessageId {
        match self {
            MessageEvent::Message(m) => &m.message_id,
            MessageEvent::Status(s) => &s.message_id,
            MessageEvent::Reaction(r) => &r.message_id,
        }
    }

    /// The event's own copy of the message, if it carries one.
    pub fn carried(&self) -> Option<&Message> {
        match self {
            MessageEvent::Message(m) => Some(m.as_ref()),
            _ => None,
        }
    }

    /// Who receives an update.
    pub fn recipients(&self) -> Recipients {
        match self {
            MessageEvent::Status(s) => {
                let mut users = vec![s.user_id.clone()];
                if s.sender_id != s.user_id {
                    users.push(s.sender_id.clone());
                }
                Recipients::Listed(users)
            }
            _ => Recipients::Members,
        }
    }

    /// The kind of `user`'s update.
    pub fn update_type_for(&self, user: &UserId) -> UpdateType {
        match self {
            MessageEvent::Status(s) if &s.user_id == user => UpdateType::Dialog,
            _ => UpdateType::Message,
        }
    }

    /// The sections besides `dialog`: the message (`current`: the stored one, with `mine` the
    /// reactions the recipient set) or the event's copy, and what the event changed.
    pub fn sections(
        &self,
        data: &mut Map<String, Value>,
        dialog: &DialogDoc,
        member: &MemberDoc,
        current: Option<&Message>,
        mine: &HashSet<String>,
    ) {
        let message = current.or(self.carried()).map(|m| {
            let mut m = m.clone();
            for r in &mut m.reactions {
                r.me = mine.contains(&r.reaction);
            }
            m
        });
        match self {
            MessageEvent::Status(s) if s.user_id == member.user_id => {
                data.insert("member".into(), member_view(dialog, member));
                data.insert("status".into(), json!(s));
            }
            MessageEvent::Status(s) => {
                data.insert("message".into(), json!(message));
                data.insert("status".into(), json!(s));
            }
            MessageEvent::Reaction(r) => {
                data.insert("message".into(), json!(message));
                data.insert("reaction".into(), json!(r));
            }
            MessageEvent::Message(_) => {
                data.insert("message".into(), json!(message));
            }
        }
    }
}
