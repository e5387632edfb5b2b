//! Connect and disconnect, and the housekeeping of the live connections: reading them all,
//! pruning the gone ones.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use wspush_domain::{Connection, ConnectionId, Segment, Source, TopicGrants, UserId};

use crate::clock::Clock;
use crate::gateway::{ConnectionGateway, GatewayError};
use crate::services::presence::{Presence, remove};
use crate::store::{ConnectionStore, Deletion, StoreError, stream_source};

/// The segments the housekeeping reads the store in, one after another.
const HOUSEKEEPING_SEGMENTS: u32 = 4;

/// Connections asked of the store per page by the housekeeping.
const HOUSEKEEPING_PAGE: usize = 500;

/// Why a connection use case failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why pruning stopped.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// Reading the store failed.
    #[error("reading the store")]
    Read(#[source] StoreError),
    /// The gateway could not say whether a connection is gone.
    #[error("asking API Gateway about {connection}")]
    Ask {
        /// The connection asked about.
        connection: ConnectionId,
        /// The gateway's answer.
        #[source]
        error: GatewayError,
    },
    /// Deleting a gone connection failed.
    #[error("deleting a gone connection")]
    Delete {
        /// The connection.
        connection: ConnectionId,
        /// The store's error.
        #[source]
        error: StoreError,
    },
}

/// What a prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Live connections checked with the gateway.
    pub checked: usize,
    /// Those the gateway called gone (410).
    pub gone: usize,
    /// Whether the gone ones were deleted (`false` in a dry run).
    pub deleted: bool,
}

/// Records connections as they open and close (`$connect` and `$disconnect`).
pub struct ConnectionService<S: ?Sized> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    presence: Option<Presence>,
}

impl<S: ConnectionStore + ?Sized> ConnectionService<S> {
    /// A service over `store`, telling time with `clock`.
    pub fn new(store: Arc<S>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            presence: None,
        }
    }

    /// Announces the leaves of a disconnecting connection's presence topics.
    #[must_use]
    pub fn with_presence(mut self, presence: Option<Presence>) -> Self {
        self.presence = presence;
        self
    }

    /// Records that `user` opened `connection` now. The connection expires when API Gateway
    /// would close it (2 hours).
    pub async fn connect(
        &self,
        connection: ConnectionId,
        user: UserId,
    ) -> Result<Connection, ServiceError> {
        self.connect_with_grants(connection, user, None).await
    }

    /// Records that `user` opened `connection` now with a token that grants it `grants`
    /// (`None`: topics not limited by a token).
    pub async fn connect_with_grants(
        &self,
        connection: ConnectionId,
        user: UserId,
        grants: Option<TopicGrants>,
    ) -> Result<Connection, ServiceError> {
        let connection = Connection::open(connection, user, self.clock.now()).with_grants(grants);
        self.store.save(&connection).await?;
        tracing::info!(
            connection = %connection.id(),
            user = %connection.user(),
            grants = connection.grants().map(|grants| grants.as_slice().len()),
            "connected"
        );
        Ok(connection)
    }

    /// Forgets `connection` and all its subscriptions. Idempotent.
    pub async fn disconnect(&self, connection: &ConnectionId) -> Result<(), ServiceError> {
        match remove(
            self.store.as_ref(),
            self.presence.as_ref(),
            connection,
            None,
        )
        .await?
        {
            Deletion::Removed => tracing::info!(%connection, "disconnected"),
            Deletion::AlreadyGone => {
                tracing::info!(%connection, "disconnected (already removed, by a push that found it gone)");
            }
        }
        Ok(())
    }

    /// Every live connection in the store, page by page, one segment after another. It
    /// ends after the last page or after the first error.
    pub fn live_connections(&self) -> impl Stream<Item = Result<Vec<Connection>, StoreError>> {
        let store = Arc::clone(&self.store);
        let now = self.clock.now();
        let segments = Segment::all(HOUSEKEEPING_SEGMENTS).unwrap_or_else(|_| vec![Segment::WHOLE]);
        futures::stream::iter(segments).flat_map(move |segment| {
            stream_source(
                Arc::clone(&store),
                Source::All(segment),
                HOUSEKEEPING_PAGE,
                now,
            )
        })
    }

    /// Asks `gateway` about every live connection and deletes those it calls gone (410),
    /// with their subscriptions, unless `dry_run`; `on_gone` hears of each one as it is
    /// found. The pusher prunes the connections it finds gone as it pushes: this is for the
    /// ones no push reaches, whose `$disconnect` was lost, before their TTL ends them.
    pub async fn prune_gone<G: ConnectionGateway + ?Sized>(
        &self,
        gateway: &G,
        dry_run: bool,
        mut on_gone: impl FnMut(&ConnectionId),
    ) -> Result<PruneReport, PruneError> {
        let mut report = PruneReport {
            deleted: !dry_run,
            ..PruneReport::default()
        };
        let mut pages = std::pin::pin!(self.live_connections());
        while let Some(page) = pages.next().await {
            for connection in page.map_err(PruneError::Read)? {
                report.checked += 1;
                let id = connection.id();
                match gateway.get(id).await {
                    Err(GatewayError::Gone) => {
                        report.gone += 1;
                        if !dry_run {
                            // Counted as gone whichever call removed it: this one checked.
                            let _: Deletion = remove(
                                self.store.as_ref(),
                                self.presence.as_ref(),
                                id,
                                Some(connection.user()),
                            )
                            .await
                            .map_err(|error| PruneError::Delete {
                                connection: id.clone(),
                                error,
                            })?;
                        }
                        on_gone(id);
                    }
                    Ok(_) => {}
                    Err(error) => {
                        return Err(PruneError::Ask {
                            connection: id.clone(),
                            error,
                        });
                    }
                }
            }
        }
        Ok(report)
    }
}
