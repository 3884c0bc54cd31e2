//! `dialog.typing`: ephemeral. Published to the other members as a `typing` update without a
//! seq, never stored; its data is the event's (`dialogId`, `userId`, `isTyping`, `expiresInMs`).

use chat3_sdk::events::Typing;
use chat3_sdk::{EventEnvelope, EventType, TypingState};

use super::{poison, Recipients};
use crate::fanout::ProcessError;

/// The typing signal `event` is, `None` when it is not one.
pub fn of(event: &EventEnvelope) -> Result<Option<TypingState>, ProcessError> {
    if event.event_type != EventType::DialogTyping {
        return Ok(None);
    }
    Ok(Some(event.payload::<Typing>().map_err(poison)?.state))
}

/// Everyone in the dialog but the typist.
pub fn recipients(state: &TypingState) -> Recipients {
    Recipients::MembersExcept(state.user_id.clone())
}
