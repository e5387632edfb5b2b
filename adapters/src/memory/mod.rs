//! An in-memory connection store: the local gateway's default, and a real adapter of the
//! store port (it passes the same contract suite as the DynamoDB store).
//!
//! The connections and their subscriptions are held compactly (`connections.rs`): one
//! record per connection, one index entry per connection and per subscription, and each
//! ID's text once. Everything sits behind one `RwLock`, never held across an `.await`.
//! Reads skip expired connections; expired ones are also swept out every [`SWEEP_EVERY`]
//! saves, since nothing else would remove a connection whose `$disconnect` never came.
//!
//! It is also a [`RequestLedger`]: claims and completed requests in a map, with the same
//! expiry rules as the DynamoDB store's. And a [`HistoryStore`](wspush_ports::HistoryStore)
//! (`history.rs`): each stream's messages under their own lock, its epoch drawn at random
//! when the stream starts, so a restarted gateway's positions all read as gaps. And a
//! [`PresenceStore`](wspush_ports::PresenceStore) (`presence.rs`): per topic and user, the set
//! of the user's connections there.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use wspush_domain::{Connection, ConnectionId, ExternalId, RequestId, Source, Timestamp};
use wspush_ports::{Claim, ConnectionStore, Cursor, Deletion, Page, RequestLedger, StoreError};

mod connections;
mod history;
mod presence;

pub(crate) use history::new_epoch;

/// Expired connections are swept out once per this many saves.
pub const SWEEP_EVERY: u64 = 1024;

#[derive(Debug, Default)]
struct Inner {
    connections: connections::Connections,
    requests: HashMap<RequestId, LedgerEntry>,
    saves: u64,
}

/// A request's claim or completion, until it expires.
#[derive(Debug, Clone, Copy)]
struct LedgerEntry {
    completed: bool,
    until: Timestamp,
}

/// A thread-safe connection store in process memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
    history: Mutex<history::Streams>,
    presence: Mutex<presence::Present>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many connections are stored, expired ones included until they are swept.
    pub fn len(&self) -> usize {
        self.read().connections.len()
    }

    /// Whether no connection is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every connection that has expired at `now`, with its subscriptions, and every
    /// history stream whose messages have all expired. Returns how many connections were
    /// removed.
    pub fn sweep_expired(&self, now: Timestamp) -> usize {
        let mut inner = self.write();
        let expired = inner.connections.expired(now);
        for id in &expired {
            inner.connections.remove(id);
        }
        inner.requests.retain(|_, entry| entry.until > now);
        drop(inner);
        self.history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sweep(now);
        expired.len()
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing the store, so keep serving.
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Which segment of `total` a connection falls in: FNV-1a of its ID, so that the segments
/// partition the store the same way on every read.
fn segment_of(id: &ConnectionId, total: u32) -> u32 {
    let hash = id
        .as_str()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    u32::try_from(hash % u64::from(total)).unwrap_or(0)
}

fn id_cursor(cursor: Option<&Cursor>) -> Result<Option<ConnectionId>, StoreError> {
    cursor
        .map(|cursor| {
            ConnectionId::parse(cursor.as_str())
                .map_err(|error| StoreError::InvalidCursor(error.to_string()))
        })
        .transpose()
}

#[async_trait]
impl ConnectionStore for MemoryStore {
    async fn save(&self, connection: &Connection) -> Result<(), StoreError> {
        let mut inner = self.write();
        inner.connections.save(connection);
        inner.saves += 1;
        let sweep = inner.saves.is_multiple_of(SWEEP_EVERY);
        drop(inner);
        if sweep {
            self.sweep_expired(connection.connected_at());
        }
        Ok(())
    }

    async fn get(
        &self,
        connection: &ConnectionId,
        now: Timestamp,
    ) -> Result<Option<Connection>, StoreError> {
        Ok(self.read().connections.live(connection, now))
    }

    async fn delete(&self, connection: &ConnectionId) -> Result<Deletion, StoreError> {
        Ok(self.delete_reporting_topics(connection).await?.0)
    }

    async fn delete_reporting_topics(
        &self,
        connection: &ConnectionId,
    ) -> Result<(Deletion, Vec<ExternalId>), StoreError> {
        Ok(match self.write().connections.remove(connection) {
            Some(topics) => (Deletion::Removed, topics),
            None => (Deletion::AlreadyGone, Vec::new()),
        })
    }

    async fn subscribe_at_most(
        &self,
        connection: &Connection,
        topics: &[ExternalId],
        max: usize,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        // The count and the write under one write lock: concurrent subscribes of one
        // connection are decided one after the other.
        self.write()
            .connections
            .subscribe_at_most(connection.id(), topics, max, now)
    }

    async fn audience_includes(
        &self,
        topic: &ExternalId,
        connection: &ConnectionId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        Ok(self
            .read()
            .connections
            .audience_includes(topic, connection, now))
    }

    async fn unsubscribe(
        &self,
        connection: &ConnectionId,
        topics: &[ExternalId],
    ) -> Result<(), StoreError> {
        self.write().connections.unsubscribe(connection, topics);
        Ok(())
    }

    async fn subscriptions(
        &self,
        connection: &ConnectionId,
    ) -> Result<Vec<ExternalId>, StoreError> {
        Ok(self.read().connections.topics(connection))
    }

    async fn page(
        &self,
        source: &Source,
        cursor: Option<Cursor>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Page, StoreError> {
        let limit = limit.max(1);
        let inner = self.read();
        let connections = &inner.connections;
        let page = match source {
            Source::User(user) => {
                let start = id_cursor(cursor.as_ref())?;
                connections.user_page(user, start.as_ref(), limit, now)
            }
            Source::Topic(topic) => {
                let start = id_cursor(cursor.as_ref())?;
                connections.topic_page(topic, start.as_ref(), limit, now)
            }
            Source::Connections(ids) => {
                let start = Cursor::offset_of(cursor.as_ref())?;
                let end = start.saturating_add(limit).min(ids.len());
                Page {
                    connections: connections
                        .listed_page(ids.get(start..end).unwrap_or_default(), now),
                    next: (end < ids.len()).then(|| Cursor::at_offset(end)),
                }
            }
            Source::All(segment) => {
                let start = id_cursor(cursor.as_ref())?;
                let in_segment =
                    |id: &ConnectionId| segment_of(id, segment.total()) == segment.index();
                connections.all_page(in_segment, start.as_ref(), limit, now)
            }
        };
        Ok(page)
    }
}

#[async_trait]
impl RequestLedger for MemoryStore {
    async fn claim(
        &self,
        id: &RequestId,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Claim, StoreError> {
        let mut inner = self.write();
        match inner.requests.get(id) {
            Some(entry) if entry.until > now && entry.completed => Ok(Claim::Completed),
            Some(entry) if entry.until > now => Ok(Claim::InProgress { until: entry.until }),
            _ => {
                inner.requests.insert(
                    id.clone(),
                    LedgerEntry {
                        completed: false,
                        until: lease_until,
                    },
                );
                Ok(Claim::Claimed)
            }
        }
    }

    async fn complete(&self, id: &RequestId, keep_until: Timestamp) -> Result<(), StoreError> {
        self.write().requests.insert(
            id.clone(),
            LedgerEntry {
                completed: true,
                until: keep_until,
            },
        );
        Ok(())
    }

    async fn release(&self, id: &RequestId, lease_until: Timestamp) -> Result<(), StoreError> {
        let mut inner = self.write();
        if inner
            .requests
            .get(id)
            .is_some_and(|entry| !entry.completed && entry.until == lease_until)
        {
            inner.requests.remove(id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_partition_ids_stably() {
        let ids: Vec<ConnectionId> = (0..1_000)
            .map(|i| ConnectionId::parse(format!("c{i}")).expect("valid"))
            .collect();

        let counts = (0..4)
            .map(|segment| ids.iter().filter(|id| segment_of(id, 4) == segment).count())
            .collect::<Vec<_>>();

        assert_eq!(counts.iter().sum::<usize>(), 1_000);
        assert!(counts.iter().all(|&count| count > 150), "{counts:?}");
        assert!(ids.iter().all(|id| segment_of(id, 4) == segment_of(id, 4)));
    }
}
