//! The connection store port: which connections exist, whose they are, and what they are
//! subscribed to.

use std::sync::Arc;

use async_trait::async_trait;
use futures::Stream;
use wspush_domain::{Connection, ConnectionId, ExternalId, Source, Timestamp};

use crate::Cause;

/// What a [`ConnectionStore::delete`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a prune or a leave must happen once: only the call that removed the connection counts it"]
pub enum Deletion {
    /// This call removed the connection.
    Removed,
    /// The connection was not stored (never, or another call removed it first).
    AlreadyGone,
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The connection is not in the store, or has expired.
    #[error("connection `{0}` is not connected")]
    ConnectionNotFound(ConnectionId),
    /// Subscribing would take the connection over its limit; nothing was written.
    #[error(
        "a connection may hold at most {max} subscriptions; it has {held} and asked for {adding} more"
    )]
    SubscriptionLimit {
        /// Subscriptions the connection held.
        held: usize,
        /// New ones asked for.
        adding: usize,
        /// The limit.
        max: usize,
    },
    /// A cursor that this store did not hand out for this source.
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
    /// The store is throttling us (DynamoDB's provisioned throughput or request limits).
    #[error("the store is throttling requests")]
    Throttled(#[source] Cause),
    /// A 5xx answer, a timeout or an I/O error.
    #[error("the store is unavailable")]
    Unavailable(#[source] Cause),
    /// Anything else.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

/// Where the next page of a source starts. Opaque: only the store that made it reads it, but
/// it is plain text so that it can travel in a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor(String);

impl Cursor {
    /// Wraps a store's position.
    pub fn new(position: impl Into<String>) -> Self {
        Self(position.into())
    }

    /// The position as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A cursor at position `offset` of a list (for sources that are lists, such as
    /// [`Source::Connections`]).
    pub fn at_offset(offset: usize) -> Self {
        Self(offset.to_string())
    }

    /// The list position a cursor made by [`Cursor::at_offset`] holds; 0 for no cursor.
    pub fn offset_of(cursor: Option<&Cursor>) -> Result<usize, StoreError> {
        cursor.map_or(Ok(0), |cursor| {
            cursor
                .0
                .parse()
                .map_err(|error| StoreError::InvalidCursor(format!("{:?}: {error}", cursor.0)))
        })
    }
}

/// One page of an audience.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// Live connections, each at most once per source. May be empty even when `next` is set
    /// (a page whose items had all expired).
    pub connections: Vec<Connection>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// Keeps connections and their subscriptions.
///
/// Every read MUST skip connections whose `expires_at` is not after `now`, since API Gateway
/// has closed them whether or not a `$disconnect` arrived.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// Saves a connection, replacing any with the same ID (and its subscriptions' user).
    async fn save(&self, connection: &Connection) -> Result<(), StoreError>;

    /// The live connection with this ID. MUST return `Ok(None)` when it is unknown or
    /// expired.
    async fn get(
        &self,
        connection: &ConnectionId,
        now: Timestamp,
    ) -> Result<Option<Connection>, StoreError>;

    /// Deletes a connection and every subscription it holds, and says whether this call
    /// removed it.
    ///
    /// MUST be idempotent: deleting an unknown connection returns `Ok(AlreadyGone)`. Of
    /// concurrent deletes of one connection, exactly one MUST return `Removed`, so that what
    /// follows a removal (the `pruned` count, a leave event) happens once.
    async fn delete(&self, connection: &ConnectionId) -> Result<Deletion, StoreError>;

    /// Deletes as [`delete`](Self::delete), and returns the external IDs of the
    /// subscriptions this call found once the connection's record was gone (and removed).
    ///
    /// Since no subscription can be written once the record is gone, the calls that delete
    /// one connection concurrently MUST between them return every topic it held then: a
    /// leave is owed for each (presence), and one that none of them returns is never sent.
    /// The default reads the subscriptions before the delete, which misses one written
    /// between the two: a store overrides it.
    async fn delete_reporting_topics(
        &self,
        connection: &ConnectionId,
    ) -> Result<(Deletion, Vec<ExternalId>), StoreError> {
        let topics = self.subscriptions(connection).await?;
        Ok((self.delete(connection).await?, topics))
    }

    /// Subscribes the connection to each external ID, provided it then holds at most `max`
    /// subscriptions. Subscribing again to a topic it holds is not an error and does not
    /// count twice.
    ///
    /// MUST decide the limit atomically with the write, so that concurrent calls for one
    /// connection (API Gateway runs a socket's messages concurrently) never leave it holding
    /// more than `max`, and MUST return [`StoreError::SubscriptionLimit`] and write nothing
    /// when the new topics would take it over. MUST return [`StoreError::ConnectionNotFound`]
    /// and write nothing when the connection is not saved (or has expired) at `now`, so that
    /// no subscription outlives its connection.
    async fn subscribe_at_most(
        &self,
        connection: &Connection,
        topics: &[ExternalId],
        max: usize,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Subscribes the connection to each external ID with no limit on how many it holds (a
    /// backend's decision, or a test's set-up); otherwise as
    /// [`subscribe_at_most`](Self::subscribe_at_most).
    async fn subscribe(
        &self,
        connection: &Connection,
        topics: &[ExternalId],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.subscribe_at_most(connection, topics, usize::MAX, now)
            .await
    }

    /// Removes the connection's subscriptions to each external ID. MUST be idempotent.
    async fn unsubscribe(
        &self,
        connection: &ConnectionId,
        topics: &[ExternalId],
    ) -> Result<(), StoreError>;

    /// Whether a read of `topic`'s audience would find `connection` now: its subscription
    /// has reached what audience reads read (an index that is eventually consistent, for
    /// DynamoDB). MUST NOT answer `true` before such a read would find it. For a user's
    /// own channel `user:<id>`, that includes the reads of the user's connections (a push
    /// to `"users": [id]` appends to that stream and reads its audience there).
    async fn audience_includes(
        &self,
        topic: &ExternalId,
        connection: &ConnectionId,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// The external IDs the connection is subscribed to (empty for an unknown connection).
    async fn subscriptions(&self, connection: &ConnectionId)
    -> Result<Vec<ExternalId>, StoreError>;

    /// One page of the live connections of `source`, starting at `cursor` (`None` for the
    /// first page), with at most `limit` connections.
    ///
    /// MUST yield each live connection of the source exactly once over the pages of one
    /// pass, MUST NOT read the whole source into memory to answer, and MUST return
    /// [`StoreError::InvalidCursor`] for a cursor it cannot read. For [`Source::All`] the
    /// segments of one total MUST partition the connections, and MUST NOT read subscription
    /// records.
    async fn page(
        &self,
        source: &Source,
        cursor: Option<Cursor>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Page, StoreError>;
}

/// The live connections of `source`, page by page, as a stream. It ends after the last page
/// or after the first error.
pub fn stream_source<S>(
    store: Arc<S>,
    source: Source,
    page_size: usize,
    now: Timestamp,
) -> impl Stream<Item = Result<Vec<Connection>, StoreError>> + Send
where
    S: ConnectionStore + ?Sized,
{
    enum State {
        Next(Option<Cursor>),
        Done,
    }
    futures::stream::unfold(State::Next(None), move |state| {
        let store = Arc::clone(&store);
        let source = source.clone();
        async move {
            let State::Next(cursor) = state else {
                return None;
            };
            match store.page(&source, cursor, page_size, now).await {
                Ok(Page { connections, next }) => {
                    let state = next.map_or(State::Done, |cursor| State::Next(Some(cursor)));
                    Some((Ok(connections), state))
                }
                Err(error) => Some((Err(error), State::Done)),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use mockall::predicate::eq;
    use wspush_domain::{Segment, UserId};

    use super::*;

    fn connection(id: &str) -> Connection {
        Connection::open(
            ConnectionId::parse(id).expect("valid"),
            UserId::parse("u").expect("valid"),
            Timestamp::EPOCH,
        )
    }

    #[tokio::test]
    async fn the_stream_follows_cursors_until_the_last_page() {
        let mut store = MockConnectionStore::new();
        let source = Source::All(Segment::WHOLE);
        store
            .expect_page()
            .with(eq(source.clone()), eq(None), eq(2), eq(Timestamp::EPOCH))
            .return_once(|_, _, _, _| {
                Ok(Page {
                    connections: vec![connection("a"), connection("b")],
                    next: Some(Cursor::new("b")),
                })
            });
        store
            .expect_page()
            .with(
                eq(source.clone()),
                eq(Some(Cursor::new("b"))),
                eq(2),
                eq(Timestamp::EPOCH),
            )
            .return_once(|_, _, _, _| {
                Ok(Page {
                    connections: vec![connection("c")],
                    next: None,
                })
            });

        let pages: Vec<_> = stream_source(Arc::new(store), source, 2, Timestamp::EPOCH)
            .collect()
            .await;

        let ids: Vec<Vec<String>> = pages
            .into_iter()
            .map(|page| {
                page.expect("ok")
                    .iter()
                    .map(|c| c.id().to_string())
                    .collect()
            })
            .collect();
        assert_eq!(ids, vec![vec!["a", "b"], vec!["c"]]);
    }

    #[tokio::test]
    async fn the_stream_ends_after_an_error() {
        let mut store = MockConnectionStore::new();
        store
            .expect_page()
            .times(1)
            .return_once(|_, _, _, _| Err(StoreError::InvalidCursor("x".into())));

        let pages: Vec<_> = stream_source(
            Arc::new(store),
            Source::All(Segment::WHOLE),
            10,
            Timestamp::EPOCH,
        )
        .collect()
        .await;

        assert_eq!(pages.len(), 1);
        assert!(matches!(pages[0], Err(StoreError::InvalidCursor(_))));
    }
}
