//! Member events. `dialog.member.add` goes to every member, the added ones included, naming who
//! joined; `dialog.member.remove` goes to the remaining members and, once, to the removed user
//! (from the event: their membership is gone), after which they get nothing from the dialog;
//! `dialog.member.changed` (a membership's meta) goes to every member, naming whose and what.

use chat3_sdk::events::{MemberChanged, MemberRemoved, MembersAdded};
use chat3_sdk::{EventEnvelope, EventType, Member, UserId};
use serde_json::{json, Map, Value};

use super::{poison, Recipients};
use crate::fanout::ProcessError;
use crate::state::member_view;
use chat3_core::docs::{DialogDoc, MemberDoc};

/// A handled member event.
#[derive(Debug, Clone)]
pub enum MemberEvent {
    /// `dialog.member.add`: who joined.
    Added(Vec<Member>),
    /// `dialog.member.remove`.
    Removed(MemberRemoved),
    /// `dialog.member.changed`: a membership's meta.
    Changed(MemberChanged),
}

impl MemberEvent {
    /// The member event `event` is, `None` when it is not one handled here.
    pub fn of(event: &EventEnvelope) -> Result<Option<Self>, ProcessError> {
        Ok(Some(match event.event_type {
            EventType::DialogMemberAdd => {
                MemberEvent::Added(event.payload::<MembersAdded>().map_err(poison)?.members)
            }
            EventType::DialogMemberRemove => MemberEvent::Removed(event.payload().map_err(poison)?),
            EventType::DialogMemberChanged => {
                MemberEvent::Changed(event.payload().map_err(poison)?)
            }
            _ => return Ok(None),
        }))
    }

    /// Who receives an update.
    pub fn recipients(&self) -> Recipients {
        match self {
            MemberEvent::Added(_) | MemberEvent::Changed(_) => Recipients::Members,
            MemberEvent::Removed(r) => Recipients::MembersAnd(r.member.user_id.clone()),
        }
    }

    /// The sections besides `dialog`: the member's own state and who joined or left.
    pub fn sections(&self, data: &mut Map<String, Value>, dialog: &DialogDoc, member: &MemberDoc) {
        data.insert("member".into(), member_view(dialog, member));
        match self {
            MemberEvent::Added(added) => data.insert("members".into(), json!(added)),
            MemberEvent::Removed(r) => data.insert("removedMember".into(), json!(r.member)),
            MemberEvent::Changed(c) => {
                data.insert("changed".into(), json!(c.changed));
                data.insert("changedMember".into(), json!(c.member))
            }
        };
    }

    /// The removed user's one update about their removal (their membership is gone from
    /// current state): their membership as it was and the data.
    pub fn departed(&self, event: &EventEnvelope, user: &UserId) -> Option<(Member, Value)> {
        let MemberEvent::Removed(r) = self else {
            return None;
        };
        // A deleted user's feed goes with them: nothing to tell them.
        if &r.member.user_id != user || r.user_deleted {
            return None;
        }
        let data = json!({
            "dialog": {
                "dialogId": event.dialog_id,
                "name": r.name,
                "lastSeq": r.last_seq,
                "unreadCount": 0,
                "lastReadSeq": r.member.last_read_seq,
                "removed": true,
            },
            "member": r.member,
            "removedMember": r.member,
        });
        Some((r.member.clone(), data))
    }
}
