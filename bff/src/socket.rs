//! One WebSocket connection after the upgrade: replay after `since` (the live subscription
//! already buffers), then forward live updates, answer client frames, ping every heartbeat,
//! and close with a reason on shutdown, kick, timeout or a slow client.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Session};
use chat3_sdk::{DialogId, Update, UpdateType, UserId, WsFrame};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::time::{interval_at, sleep_until, timeout, Instant};
use tokio_util::sync::CancellationToken;

use crate::frames::{self, event};
use crate::hub::{KickReason, Subscription};
use crate::resume::{Cursor, Replay, Step, UpdateSource};

/// Largest client frame accepted.
const MAX_FRAME: usize = 64 * 1024;
/// A frame the client does not read within this time marks it as too slow.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Heartbeat settings of the sockets.
#[derive(Debug, Clone, Copy)]
pub struct WsSettings {
    /// Interval between server pings.
    pub heartbeat: Duration,
    /// Silence after which the client is considered gone.
    pub client_timeout: Duration,
    /// Per-socket buffer of live updates.
    pub buffer: usize,
}

/// Everything one connection needs.
pub struct Connection {
    /// The token's user.
    pub user: UserId,
    /// Resume point, if the client sent one.
    pub since: Option<u64>,
    /// The live subscription, made before the upgrade.
    pub sub: Subscription,
    /// Stored updates for replay.
    pub source: Arc<dyn UpdateSource>,
    /// Heartbeats.
    pub settings: WsSettings,
    /// Server shutdown.
    pub shutdown: CancellationToken,
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client closed or the stream ended.
    ClientClosed,
    /// The server is shutting down.
    Shutdown,
    /// The hub dropped the socket.
    Kicked(KickReason),
    /// Replay through the API failed.
    ReplayFailed,
    /// No pong or frame within the timeout.
    Timeout,
    /// A write failed or timed out: nothing more can be sent.
    SendFailed,
}

impl End {
    fn close_reason(self) -> Option<CloseReason> {
        let (code, text) = match self {
            End::ClientClosed => (CloseCode::Normal, "bye"),
            End::Shutdown => (CloseCode::Away, "server shutting down"),
            End::Kicked(KickReason::SlowConsumer) => (CloseCode::Policy, "slow consumer"),
            End::Kicked(KickReason::BrokerLost) => (CloseCode::Restart, "resume with since"),
            End::ReplayFailed => (CloseCode::Again, "replay unavailable"),
            End::Timeout => (CloseCode::Away, "heartbeat timeout"),
            End::SendFailed => return None,
        };
        Some(CloseReason {
            code,
            description: Some(text.to_owned()),
        })
    }
}

/// The sending half with the resume cursor and the typing indicators shown to the client.
struct Out {
    session: Session,
    cursor: Cursor,
    /// (dialog, user) → when their `typing:start` lapses without a renewal.
    typing: HashMap<(String, String), Instant>,
}

impl Out {
    async fn frame(&mut self, frame: &WsFrame) -> Result<(), End> {
        let text = serde_json::to_string(frame).map_err(|_| End::SendFailed)?;
        match timeout(SEND_TIMEOUT, self.session.text(text)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::ClientClosed),
            Err(_) => Err(End::SendFailed),
        }
    }

    /// Sends an update's frames unless its seq was already sent.
    async fn update(&mut self, update: &Update) -> Result<(), End> {
        if !self.cursor.admit(update.seq) {
            return Ok(());
        }
        if update.update_type == UpdateType::Typing {
            self.track_typing(&update.data);
        }
        for f in frames::frames_for(update) {
            self.frame(&f).await?;
        }
        Ok(())
    }

    /// A start holds for its `expiresInMs`; a stop ends it.
    fn track_typing(&mut self, data: &Value) {
        let (Some(dialog), Some(user)) = (data["dialogId"].as_str(), data["userId"].as_str())
        else {
            return;
        };
        let key = (dialog.to_owned(), user.to_owned());
        if data["isTyping"].as_bool() == Some(false) {
            self.typing.remove(&key);
        } else {
            let ms = data["expiresInMs"].as_u64().unwrap_or(DEFAULT_TYPING_MS);
            self.typing
                .insert(key, Instant::now() + Duration::from_millis(ms));
        }
    }

    /// When the next typing indicator lapses.
    fn next_lapse(&self) -> Option<Instant> {
        self.typing.values().min().copied()
    }

    /// Sends `typing:stop` for every indicator that lapsed.
    async fn lapse_typing(&mut self) -> Result<(), End> {
        let now = Instant::now();
        let lapsed: Vec<(String, String)> = self
            .typing
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in lapsed {
            self.typing.remove(&key);
            self.frame(&frames::typing_lapsed(&key.0, &key.1)).await?;
        }
        Ok(())
    }
}

/// How long a typing start holds when the update does not say.
const DEFAULT_TYPING_MS: u64 = 5_000;

/// Runs the connection to its end, then closes the socket and the subscription.
#[tracing::instrument(skip_all, fields(user_id = %conn.user, since = ?conn.since))]
pub async fn run(conn: Connection, session: Session, stream: actix_ws::MessageStream) {
    let Connection {
        user,
        since,
        mut sub,
        source,
        settings,
        shutdown,
    } = conn;
    let mut stream = stream
        .max_frame_size(MAX_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME);
    let mut out = Out {
        session,
        cursor: Cursor::new(since),
        typing: HashMap::new(),
    };
    let kick = sub.kick();
    let kicked = kick.token();
    let kick_reason = || kick.reason().unwrap_or(KickReason::SlowConsumer);
    tracing::debug!("socket open");

    // Unwraps a step of the connection or ends it.
    macro_rules! step {
        ($e:expr) => {
            if let Err(end) = $e {
                return end;
            }
        };
    }
    let end = async {
        if let Some(since) = since {
            tokio::select! {
                r = replay(&mut out, source.as_ref(), &user, since) => step!(r),
                _ = shutdown.cancelled() => return End::Shutdown,
                _ = kicked.cancelled() => return End::Kicked(kick_reason()),
            }
        }
        let mut last_seen = Instant::now();
        let mut beat = interval_at(Instant::now() + settings.heartbeat, settings.heartbeat);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return End::Shutdown,
                _ = kicked.cancelled() => return End::Kicked(kick_reason()),
                msg = stream.next() => {
                    last_seen = Instant::now();
                    match msg {
                        Some(Ok(AggregatedMessage::Text(text))) => {
                            step!(client_frame(&mut out, source.as_ref(), &user, &text).await)
                        }
                        Some(Ok(AggregatedMessage::Binary(_))) => {
                            step!(out.frame(&frames::error("invalid_frame", "frames must be JSON text")).await)
                        }
                        Some(Ok(AggregatedMessage::Ping(bytes))) => {
                            if out.session.pong(&bytes).await.is_err() {
                                return End::ClientClosed;
                            }
                        }
                        Some(Ok(AggregatedMessage::Pong(_))) => {}
                        Some(Ok(AggregatedMessage::Close(_))) | None => return End::ClientClosed,
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "protocol error");
                            return End::ClientClosed;
                        }
                    }
                }
                _ = sleep_until(out.next_lapse().unwrap_or_else(Instant::now)), if out.next_lapse().is_some() => {
                    step!(out.lapse_typing().await)
                }
                update = sub.recv() => match update {
                    Some(u) => step!(live(&mut out, source.as_ref(), &user, &u).await),
                    None => return End::Kicked(kick_reason()),
                },
                _ = beat.tick() => {
                    if last_seen.elapsed() > settings.client_timeout {
                        return End::Timeout;
                    }
                    if !matches!(timeout(SEND_TIMEOUT, out.session.ping(b"")).await, Ok(Ok(()))) {
                        return End::SendFailed;
                    }
                }
            }
        }
    }
    .await;

    tracing::debug!(?end, last_seq = ?out.cursor.last(), "socket closing");
    if let Some(reason) = end.close_reason() {
        let _ = timeout(SEND_TIMEOUT, out.session.close(Some(reason))).await;
    }
    sub.close().await;
}

/// Sends a live update. When its seq is beyond the next one expected (updates of one user can
/// be published out of order, e.g. by two workers, or one can be lost with a broker
/// connection), the missing ones are read from the store first, so the socket still gets every
/// seq once and in order; the late live copies are dropped by the cursor.
async fn live(
    out: &mut Out,
    source: &dyn UpdateSource,
    user: &UserId,
    update: &Update,
) -> Result<(), End> {
    if let (Some(seq), Some(last)) = (update.seq, out.cursor.last()) {
        if seq > last.saturating_add(1) {
            tracing::debug!(last, seq, "gap in live updates; filling it from the store");
            fill_gap(out, source, user, last, seq).await?;
        }
    }
    out.update(update).await
}

/// Sends the stored updates after `last` and before `upto`.
async fn fill_gap(
    out: &mut Out,
    source: &dyn UpdateSource,
    user: &UserId,
    last: u64,
    upto: u64,
) -> Result<(), End> {
    let mut replay = Replay::new(source, user, last);
    loop {
        match replay.next().await {
            Ok(Step::Batch(batch)) => {
                for u in batch.iter().filter(|u| u.seq.is_some_and(|s| s < upto)) {
                    out.update(u).await?;
                }
                if batch.iter().any(|u| u.seq.is_some_and(|s| s + 1 >= upto)) {
                    return Ok(());
                }
            }
            Ok(Step::Resync { head_seq }) => {
                out.cursor.reset_to(head_seq);
                return out.frame(&frames::resync_required(head_seq)).await;
            }
            // Not stored (skipped as unreadable, or expired): go on with the live update.
            Ok(Step::Done) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "filling a gap through the API failed");
                return Err(End::ReplayFailed);
            }
        }
    }
}

/// Sends the stored updates after `since`, or `resync:required` when they are gone.
async fn replay(
    out: &mut Out,
    source: &dyn UpdateSource,
    user: &UserId,
    since: u64,
) -> Result<(), End> {
    let mut replay = Replay::new(source, user, since);
    loop {
        match replay.next().await {
            Ok(Step::Batch(batch)) => {
                for u in &batch {
                    out.update(u).await?;
                }
            }
            Ok(Step::Resync { head_seq }) => {
                out.cursor.reset_to(head_seq);
                return out.frame(&frames::resync_required(head_seq)).await;
            }
            Ok(Step::Done) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "replay through the API failed");
                return Err(End::ReplayFailed);
            }
        }
    }
}

/// Handles one client frame: `ping` is answered, `typing:start` / `typing:stop`
/// (`data: {dialogId}`) are published for the user through the API (the other members get
/// them), anything else is an `error` frame (the socket stays open).
async fn client_frame(
    out: &mut Out,
    source: &dyn UpdateSource,
    user: &UserId,
    text: &str,
) -> Result<(), End> {
    let frame: WsFrame = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(_) => {
            let e = frames::error("invalid_frame", "frames are JSON {event, data}");
            return out.frame(&e).await;
        }
    };
    match frame.event.as_str() {
        event::PING => out.frame(&frames::pong(frame.data)).await,
        event::TYPING_START | event::TYPING_STOP => {
            let dialog: Option<DialogId> =
                frame.data["dialogId"].as_str().and_then(|d| d.parse().ok());
            let Some(dialog) = dialog else {
                let e = frames::error("invalid_frame", "typing frames carry data.dialogId");
                return out.frame(&e).await;
            };
            let start = frame.event == event::TYPING_START;
            match source.typing(&dialog, user, start).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    let code = e.code().unwrap_or("typing_failed").to_owned();
                    out.frame(&frames::error(&code, &e.to_string())).await
                }
            }
        }
        other => {
            let msg = format!("unknown event {other:?}");
            out.frame(&frames::error("unknown_event", &msg)).await
        }
    }
}
