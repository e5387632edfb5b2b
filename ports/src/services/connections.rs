//! Connect and disconnect.

use std::sync::Arc;

use wspush_domain::{Connection, ConnectionId, TopicGrants, UserId};

use crate::clock::Clock;
use crate::store::{ConnectionStore, StoreError};

/// Why a connection use case failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Records connections as they open and close (`$connect` and `$disconnect`).
pub struct ConnectionService<S: ?Sized> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
}

impl<S: ConnectionStore + ?Sized> ConnectionService<S> {
    /// A service over `store`, telling time with `clock`.
    pub fn new(store: Arc<S>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
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
        self.store.delete(connection).await?;
        tracing::info!(%connection, "disconnected");
        Ok(())
    }
}
