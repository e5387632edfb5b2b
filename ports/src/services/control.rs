//! Control requests: a backend's disconnect, subscribe and unsubscribe of its users'
//! connections (see [`wspush_domain::control`]).
//!
//! Each acts on the live connections the request names (by user, by connection ID) and is
//! idempotent, so a redelivered request does no harm: a connection closed already is gone
//! (410) and counted as such, a subscription held already is not counted twice.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;
use wspush_domain::{Connection, ControlAction, ControlRequest, Source};

use crate::clock::Clock;
use crate::gateway::{ConnectionGateway, GatewayError};
use crate::services::presence::{Presence, remove};
use crate::store::{ConnectionStore, Deletion, StoreError, stream_source};

/// Connections read per page of a user's connections.
const PAGE: usize = 100;

/// Tries of one `DELETE @connections` answered 429 or 5xx.
const CLOSE_ATTEMPTS: u32 = 4;

/// Why a control request failed (it is then retried by its source).
#[derive(Debug, thiserror::Error)]
pub enum ControlFailure {
    /// The store failed.
    #[error("the store failed")]
    Store(#[from] StoreError),
    /// The gateway failed to close a connection (other than it being gone already).
    #[error("closing connection {connection} failed")]
    Close {
        /// The connection.
        connection: wspush_domain::ConnectionId,
        /// The gateway's error.
        #[source]
        error: GatewayError,
    },
}

/// What a control request did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ControlReport {
    /// The action.
    pub action: &'static str,
    /// Live connections the request named.
    pub connections: usize,
    /// `disconnect`: connections closed by this request.
    #[serde(skip_serializing_if = "is_zero")]
    pub closed: usize,
    /// `disconnect`: connections that API Gateway had closed already (410), removed from the
    /// store all the same.
    #[serde(skip_serializing_if = "is_zero")]
    pub already_closed: usize,
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

/// Carries out control requests.
pub struct ControlService<S: ?Sized, G: ?Sized> {
    store: Arc<S>,
    gateway: Arc<G>,
    clock: Arc<dyn Clock>,
    presence: Option<Presence>,
}

impl<S, G> ControlService<S, G>
where
    S: ConnectionStore + ?Sized,
    G: ConnectionGateway + ?Sized,
{
    /// A service acting on `store`'s connections through `gateway`.
    pub fn new(store: Arc<S>, gateway: Arc<G>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            gateway,
            clock,
            presence: None,
        }
    }

    /// Keeps presence (joins and leaves) as the requests change subscriptions.
    #[must_use]
    pub fn with_presence(mut self, presence: Option<Presence>) -> Self {
        self.presence = presence;
        self
    }

    /// Carries out `request`.
    pub async fn apply(&self, request: &ControlRequest) -> Result<ControlReport, ControlFailure> {
        let targets = self.targets(request).await?;
        let mut report = ControlReport {
            action: request.action().as_str(),
            connections: targets.len(),
            ..ControlReport::default()
        };
        let now = self.clock.now();
        for connection in &targets {
            let id = connection.id();
            match request.action() {
                ControlAction::Disconnect => {
                    match self.close(id).await {
                        Ok(()) => report.closed += 1,
                        Err(GatewayError::Gone) => report.already_closed += 1,
                        Err(error) => {
                            return Err(ControlFailure::Close {
                                connection: id.clone(),
                                error,
                            });
                        }
                    }
                    // `$disconnect` follows the close and removes it too; whichever runs
                    // first does, and the leaves are announced once.
                    let _: Deletion = remove(
                        self.store.as_ref(),
                        self.presence.as_ref(),
                        id,
                        Some(connection.user()),
                    )
                    .await?;
                }
                ControlAction::Subscribe => {
                    match self
                        .store
                        .subscribe(connection, request.topics(), now)
                        .await
                    {
                        // Gone between the read and the write: nothing to subscribe.
                        Err(StoreError::ConnectionNotFound(_)) => continue,
                        result => result?,
                    }
                    if let Some(presence) = &self.presence {
                        presence
                            .entered(self.store.as_ref(), connection, request.topics(), now)
                            .await?;
                    }
                }
                ControlAction::Unsubscribe => {
                    self.store.unsubscribe(id, request.topics()).await?;
                    if let Some(presence) = &self.presence {
                        presence
                            .exited(connection.user(), id, request.topics())
                            .await?;
                    }
                }
            }
        }
        tracing::debug!(
            action = report.action,
            closed = report.closed,
            already_closed = report.already_closed,
            "control request carried out"
        );
        Ok(report)
    }

    /// `DELETE @connections`, tried again on 429 and 5xx (the gateway adapter does not
    /// retry): one throttled close must not send the whole request back to the queue.
    async fn close(&self, id: &wspush_domain::ConnectionId) -> Result<(), GatewayError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.gateway.delete(id).await {
                Err(error) if error.is_retryable() && attempt < CLOSE_ATTEMPTS => {
                    let ceiling = 100u64 << attempt;
                    tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(
                        ceiling / 2..=ceiling,
                    )))
                    .await;
                }
                result => return result,
            }
        }
    }

    /// The live connections `request` names, each once.
    async fn targets(&self, request: &ControlRequest) -> Result<Vec<Connection>, StoreError> {
        let now = self.clock.now();
        let mut sources: Vec<Source> = request.users().iter().cloned().map(Source::User).collect();
        if !request.connections().is_empty() {
            sources.push(Source::Connections(request.connections().to_vec()));
        }
        let mut found: Vec<Connection> = Vec::new();
        let mut seen = HashSet::new();
        for source in sources {
            let mut pages =
                std::pin::pin!(stream_source(Arc::clone(&self.store), source, PAGE, now));
            while let Some(page) = pages.next().await {
                for connection in page? {
                    if seen.insert(connection.id().clone()) {
                        found.push(connection);
                    }
                }
            }
        }
        Ok(found)
    }
}
