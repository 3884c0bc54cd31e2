//! What a started service hands back: where it listens and the task to await for its exit.

use std::net::SocketAddr;

use tokio::task::JoinHandle;

/// A running service. Cancel the shutdown token given to `start`, then await `task`.
#[derive(Debug)]
pub struct Running {
    /// The bound address (port 0 resolved), when the service listens.
    pub addr: Option<SocketAddr>,
    /// Completes when the service has shut down.
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// `http://{addr}` of a listening service.
    pub fn url(&self) -> String {
        match self.addr {
            Some(a) => format!("http://{a}"),
            None => String::new(),
        }
    }
}
