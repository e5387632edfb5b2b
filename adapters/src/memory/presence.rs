//! The memory store's presence: per topic and user, the set of that user's connections there,
//! under one lock that is never held across an `.await`.

use std::collections::{BTreeSet, HashMap};
use std::sync::PoisonError;

use async_trait::async_trait;
use wspush_domain::{ConnectionId, ExternalId, Timestamp, UserId};
use wspush_ports::{PresenceStore, StoreError, Transition};

use super::MemoryStore;

/// Who is present where.
pub(super) type Present = HashMap<(ExternalId, UserId), BTreeSet<ConnectionId>>;

#[async_trait]
impl PresenceStore for MemoryStore {
    async fn enter(
        &self,
        topic: &ExternalId,
        user: &UserId,
        connection: &ConnectionId,
        _now: Timestamp,
    ) -> Result<Transition, StoreError> {
        let mut present = self.presence.lock().unwrap_or_else(PoisonError::into_inner);
        let connections = present.entry((topic.clone(), user.clone())).or_default();
        let first = connections.is_empty();
        let added = connections.insert(connection.clone());
        Ok(if first && added {
            Transition::Joined
        } else {
            Transition::Unchanged
        })
    }

    async fn exit(
        &self,
        topic: &ExternalId,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<Transition, StoreError> {
        let mut present = self.presence.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (topic.clone(), user.clone());
        let Some(connections) = present.get_mut(&key) else {
            return Ok(Transition::Unchanged);
        };
        if !connections.remove(connection) {
            return Ok(Transition::Unchanged);
        }
        if connections.is_empty() {
            present.remove(&key);
            return Ok(Transition::Left);
        }
        Ok(Transition::Unchanged)
    }

    async fn present(
        &self,
        topic: &ExternalId,
        user: &UserId,
    ) -> Result<Vec<ConnectionId>, StoreError> {
        let present = self.presence.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(present
            .get(&(topic.clone(), user.clone()))
            .map(|connections| connections.iter().cloned().collect())
            .unwrap_or_default())
    }
}
