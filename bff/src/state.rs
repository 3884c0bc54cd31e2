//! What every handler shares: the login flow, limits, tokens, the hub, the dependencies for
//! readiness, the replay source and the shutdown token.

use std::sync::Arc;

use chat3_core::bus::Bus;
use chat3_core::store::Store;

use crate::hub::Hub;
use crate::limits::CodeLimits;
use crate::login::Login;
use crate::resume::UpdateSource;
use crate::socket::WsSettings;
use tokio_util::sync::CancellationToken;

/// Application state, shared by all workers.
pub struct AppState {
    /// Login codes, users and session tokens.
    pub login: Login,
    /// Limits on code requests.
    pub limits: CodeLimits,
    /// The live-update hub.
    pub hub: Hub,
    /// The BFF database (readiness).
    pub store: Store,
    /// The broker (readiness).
    pub bus: Bus,
    /// Stored updates for resume.
    pub source: Arc<dyn UpdateSource>,
    /// Socket settings.
    pub ws: WsSettings,
    /// Cancelled on shutdown; sockets watch it.
    pub shutdown: CancellationToken,
    /// Request-body schemas of `openapi/bff.yaml`.
    pub contract: chat3_core::contract::Contract,
}
