//! What the WebSocket sends: every update as `chat3:update` (the raw record) followed by the
//! client-friendly event it maps to, plus the control frames (`pong`, `resync:required`,
//! `error`).

use chat3_sdk::{EventType, Update, UpdateType, WsFrame};
use serde_json::{json, Value};

/// Event names on the socket.
pub mod event {
    /// The raw update record.
    pub const CHAT3_UPDATE: &str = "chat3:update";
    /// A message was created.
    pub const MESSAGE_NEW: &str = "message:new";
    /// A message changed (edit, delete, status, reaction).
    pub const MESSAGE_UPDATE: &str = "message:update";
    /// Dialog state changed (members, read watermark, name).
    pub const DIALOG_UPDATE: &str = "dialog:update";
    /// Someone started typing.
    pub const TYPING_START: &str = "typing:start";
    /// Someone stopped typing.
    pub const TYPING_STOP: &str = "typing:stop";
    /// The client's `since` is older than retention: reload state.
    pub const RESYNC_REQUIRED: &str = "resync:required";
    /// Client heartbeat.
    pub const PING: &str = "ping";
    /// Answer to `ping`.
    pub const PONG: &str = "pong";
    /// A client frame was not understood.
    pub const ERROR: &str = "error";
}

fn frame(event: &str, data: Value, seq: Option<u64>) -> WsFrame {
    WsFrame {
        event: event.to_owned(),
        data,
        seq,
    }
}

/// The client event an update maps to, if any.
pub fn mapped_event(update: &Update) -> Option<&'static str> {
    let et = &update.event_type;
    if update.update_type == UpdateType::Typing {
        let stopped = update.data.get("isTyping").and_then(Value::as_bool) == Some(false);
        return Some(if stopped {
            event::TYPING_STOP
        } else {
            event::TYPING_START
        });
    }
    // By the kind of update: a receipt is a `message` update for the sender and a `dialog`
    // update (their unread count) for the reader.
    match (update.update_type, et) {
        (UpdateType::Message, EventType::MessageCreate) => Some(event::MESSAGE_NEW),
        (UpdateType::Message, _) => Some(event::MESSAGE_UPDATE),
        (UpdateType::Dialog, _) => Some(event::DIALOG_UPDATE),
        _ => None,
    }
}

/// The frames for one update: `chat3:update` first, then the mapped event (same `seq`).
pub fn frames_for(update: &Update) -> Vec<WsFrame> {
    let raw = serde_json::to_value(update).unwrap_or(Value::Null);
    let mut out = vec![frame(event::CHAT3_UPDATE, raw, update.seq)];
    if let Some(ev) = mapped_event(update) {
        out.push(frame(ev, update.data.clone(), update.seq));
    }
    out
}

/// `resync:required` with the newest stored seq (the client's next `since`).
pub fn resync_required(head_seq: u64) -> WsFrame {
    frame(event::RESYNC_REQUIRED, json!({ "headSeq": head_seq }), None)
}

/// `typing:stop` for a start that lapsed without a renewal.
pub fn typing_lapsed(dialog: &str, user: &str) -> WsFrame {
    frame(
        event::TYPING_STOP,
        json!({ "dialogId": dialog, "userId": user, "isTyping": false, "lapsed": true }),
        None,
    )
}

/// `pong`, echoing the ping's data.
pub fn pong(data: Value) -> WsFrame {
    frame(event::PONG, data, None)
}

/// `error` about a client frame.
pub fn error(code: &str, message: &str) -> WsFrame {
    frame(
        event::ERROR,
        json!({ "code": code, "message": message }),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(event_type: EventType, update_type: UpdateType, data: Value) -> Update {
        Update {
            update_id: "upd_1".into(),
            tenant_id: "acme".parse().unwrap(),
            user_id: "usr_abcd1234".parse().unwrap(),
            user_type: Default::default(),
            seq: Some(7),
            update_type,
            event_type,
            event_id: "evt_1".into(),
            dialog_id: None,
            created_at: 1,
            data,
        }
    }

    #[test]
    fn message_create_becomes_raw_update_then_message_new() {
        let u = update(
            EventType::MessageCreate,
            UpdateType::Message,
            json!({"message": {"content": "hi"}}),
        );
        let frames = frames_for(&u);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].event, "chat3:update");
        assert_eq!(frames[0].seq, Some(7));
        assert_eq!(frames[0].data["eventType"], "message.create");
        assert_eq!(frames[1].event, "message:new");
        assert_eq!(frames[1].data, json!({"message": {"content": "hi"}}));
        assert_eq!(frames[1].seq, Some(7));
    }

    #[test]
    fn other_events_map_by_update_type() {
        let ev = |et, ut| mapped_event(&update(et, ut, Value::Null));
        assert_eq!(
            ev(EventType::MessageChanged, UpdateType::Message),
            Some("message:update")
        );
        assert_eq!(
            ev(EventType::MessageStatusChanged, UpdateType::Message),
            Some("message:update")
        );
        assert_eq!(
            ev(EventType::MessageStatusChanged, UpdateType::Dialog),
            Some("dialog:update")
        );
        assert_eq!(
            ev(EventType::DialogRead, UpdateType::Dialog),
            Some("dialog:update")
        );
        assert_eq!(
            ev(EventType::DialogMemberAdd, UpdateType::Dialog),
            Some("dialog:update")
        );
        assert_eq!(ev(EventType::UserChanged, UpdateType::User), None);
        let typing = |v| mapped_event(&update(EventType::DialogTyping, UpdateType::Typing, v));
        assert_eq!(typing(json!({"isTyping": true})), Some("typing:start"));
        assert_eq!(typing(json!({"isTyping": false})), Some("typing:stop"));
    }

    #[test]
    fn unmapped_updates_still_send_the_raw_frame() {
        let frames = frames_for(&update(
            EventType::UserChanged,
            UpdateType::User,
            Value::Null,
        ));
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].event, "chat3:update");
    }
}
