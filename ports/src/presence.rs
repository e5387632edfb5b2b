//! The presence store port: which connections of a user are present in a topic, kept so
//! that a join and a leave are each decided exactly once.
//!
//! A record per topic and user holds the set of that user's connections in the topic. The
//! user joins when a connection is added to an empty set and leaves when the last one is
//! removed; the store decides both atomically, so concurrent subscribes, unsubscribes,
//! disconnects and prunes of one user's connections see each transition once.

use async_trait::async_trait;
use wspush_domain::{ConnectionId, ExternalId, Timestamp, UserId};

use crate::store::StoreError;

/// What a presence write changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a join or a leave is announced once: only the call that made it announces it"]
pub enum Transition {
    /// This call added the user's first connection: the user joined.
    Joined,
    /// This call removed the user's last connection: the user left.
    Left,
    /// The user was present before and after (or the connection was not, or already, there).
    Unchanged,
}

/// Keeps who is present where. (No mock: its contract is tested on both real stores by the
/// store contract suite.)
#[async_trait]
pub trait PresenceStore: Send + Sync {
    /// Adds `connection` to `user`'s connections in `topic` at `now` (a store may let the
    /// record expire once no connection of then can be alive).
    ///
    /// MUST return [`Transition::Joined`] only when the user had no connection there before,
    /// and exactly once among concurrent calls for one topic and user; adding a connection
    /// that is there already is [`Transition::Unchanged`].
    async fn enter(
        &self,
        topic: &ExternalId,
        user: &UserId,
        connection: &ConnectionId,
        now: Timestamp,
    ) -> Result<Transition, StoreError>;

    /// Removes `connection` from `user`'s connections in `topic`.
    ///
    /// MUST return [`Transition::Left`] only when this call removed the last one, and MUST
    /// return [`Transition::Unchanged`] when the connection was not there (never entered, or
    /// removed by a concurrent call): of concurrent removals of one connection, at most one
    /// removes it.
    async fn exit(
        &self,
        topic: &ExternalId,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<Transition, StoreError>;

    /// The connections `user` has in `topic`, as recorded (live or not).
    async fn present(
        &self,
        topic: &ExternalId,
        user: &UserId,
    ) -> Result<Vec<ConnectionId>, StoreError>;
}
