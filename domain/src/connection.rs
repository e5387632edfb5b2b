//! A WebSocket connection and its subscriptions.

use serde::{Deserialize, Serialize};

use crate::grants::TopicGrants;
use crate::ids::{ConnectionId, ExternalId, UserId};
use crate::limits::MAX_CONNECTION_DURATION;
use crate::time::Timestamp;

/// An open WebSocket connection: who it belongs to, how long it can live, and the topics its
/// token granted it (when it was opened with a token that carries grants).
///
/// API Gateway closes every connection after [`MAX_CONNECTION_DURATION`] and does not
/// promise a `$disconnect`, so the expiry is part of the model: a connection past its
/// `expires_at` is treated as gone by every store read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    id: ConnectionId,
    user: UserId,
    connected_at: Timestamp,
    expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grants: Option<TopicGrants>,
}

impl Connection {
    /// A connection opened at `connected_at`; it expires when API Gateway would close it.
    pub fn open(id: ConnectionId, user: UserId, connected_at: Timestamp) -> Self {
        Self {
            id,
            user,
            connected_at,
            expires_at: connected_at.saturating_add(MAX_CONNECTION_DURATION),
            grants: None,
        }
    }

    /// The same connection, limited to the topics `grants` allow (`None`: not limited by a
    /// token; the subscription policy still applies).
    pub fn with_grants(mut self, grants: Option<TopicGrants>) -> Self {
        self.grants = grants;
        self
    }

    /// A connection read back from a store, with the expiry it was saved with.
    pub fn restore(
        id: ConnectionId,
        user: UserId,
        connected_at: Timestamp,
        expires_at: Timestamp,
    ) -> Self {
        Self {
            id,
            user,
            connected_at,
            expires_at,
            grants: None,
        }
    }

    /// The connection's ID.
    pub fn id(&self) -> &ConnectionId {
        &self.id
    }

    /// The user the connection belongs to.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The topics its token granted, if its token limited them.
    pub fn grants(&self) -> Option<&TopicGrants> {
        self.grants.as_ref()
    }

    /// When the connection was opened.
    pub fn connected_at(&self) -> Timestamp {
        self.connected_at
    }

    /// When API Gateway will have closed the connection at the latest.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// Whether the connection can still be open at `now`.
    pub fn is_live_at(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }
}

/// One edge of the many-to-many relation between connections and external IDs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Subscription {
    /// The subscribed connection.
    pub connection: ConnectionId,
    /// What it is subscribed to.
    pub external_id: ExternalId,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection_opened_at(secs: u64) -> Connection {
        Connection::open(
            ConnectionId::parse("c1").expect("valid"),
            UserId::parse("u1").expect("valid"),
            Timestamp::from_unix_secs(secs),
        )
    }

    #[test]
    fn a_new_connection_expires_two_hours_after_it_opened() {
        let connection = connection_opened_at(1_000);

        assert_eq!(connection.expires_at().unix_secs(), 1_000 + 7_200);
    }

    #[test]
    fn a_connection_is_live_until_the_instant_it_expires() {
        let connection = connection_opened_at(0);
        let expiry = connection.expires_at();

        assert!(connection.is_live_at(Timestamp::from_unix_secs(7_199)));
        assert!(!connection.is_live_at(expiry));
        assert!(!connection.is_live_at(Timestamp::from_unix_secs(9_000)));
    }
}
