//! Dialog events: `dialog.create` and `dialog.member.add` go to every member (the added ones
//! included) with the member's view; `dialog.read` goes to the reader only, with their new
//! watermark and unread count.

use chat3_sdk::events::{DialogRead, MembersAdded};
use chat3_sdk::{EventEnvelope, EventType, Member, UserId};
use serde_json::{json, Map, Value};

use super::{poison, Recipients};
use crate::fanout::ProcessError;
use crate::state::member_view;
use chat3_core::docs::{DialogDoc, MemberDoc};

/// A handled dialog event.
#[derive(Debug, Clone)]
pub enum DialogEvent {
    /// `dialog.create`: recipients and views come from current state.
    Created,
    /// `dialog.member.add`.
    MembersAdded(Vec<Member>),
    /// `dialog.read` by this user.
    Read(UserId),
}

impl DialogEvent {
    /// The dialog event `event` is, `None` when it is not one handled here.
    pub fn of(event: &EventEnvelope) -> Result<Option<Self>, ProcessError> {
        Ok(Some(match event.event_type {
            EventType::DialogCreate => DialogEvent::Created,
            EventType::DialogMemberAdd => {
                DialogEvent::MembersAdded(event.payload::<MembersAdded>().map_err(poison)?.members)
            }
            EventType::DialogRead => {
                DialogEvent::Read(event.payload::<DialogRead>().map_err(poison)?.user_id)
            }
            _ => return Ok(None),
        }))
    }

    /// Who receives an update.
    pub fn recipients(&self) -> Recipients {
        match self {
            DialogEvent::Read(reader) => Recipients::Only(reader.clone()),
            DialogEvent::Created | DialogEvent::MembersAdded(_) => Recipients::Members,
        }
    }

    /// The sections besides `dialog`: the member's own state, and who joined.
    pub fn sections(&self, data: &mut Map<String, Value>, dialog: &DialogDoc, member: &MemberDoc) {
        data.insert("member".into(), member_view(dialog, member));
        if let DialogEvent::MembersAdded(added) = self {
            data.insert("members".into(), json!(added));
        }
    }
}
