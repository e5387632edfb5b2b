//! Presence: joins and leaves decided once and announced through the notification queue,
//! and who is in a topic.
//!
//! Every path that adds or removes a connection's subscription to a presence topic goes
//! through [`Presence`]: a subscribe (the client's or the backend's), an unsubscribe, a
//! `$disconnect`, a prune of a connection found gone (410), a backend's disconnect. The
//! [`PresenceStore`] decides each transition atomically; the call that made it publishes the
//! event, as a notification request to the topic's subscribers (see
//! [`PresenceEvent::to_request`]), so the socket functions only enqueue it.
//!
//! The races closed here. A subscribe racing its connection's `$disconnect` or an unsubscribe
//! of the same topic: the subscribe records presence, then reads the connection and its
//! subscriptions again and takes back each entry whose subscription is gone (the removal
//! writes before it exits, so one of the two sees the other). A removal leaves the topics its
//! delete found once the connection's record was gone (no subscription can be written after
//! that), not those read before. An unsubscribe reads the user before it writes. A
//! connection that vanished without `$disconnect` and that no push has pruned yet: before a
//! user enters a topic, their recorded connections there that the store no longer holds as
//! live (expired) are removed first, each with its leave, so the new subscribe is a join.
//! What was decided is announced even when a later step fails.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use wspush_domain::{
    Connection, ConnectionId, ExternalId, PresenceChange, PresenceEvent, PresencePolicy, RequestId,
    Source, Timestamp, UserId,
};

use crate::causes::with_causes;
use crate::presence::{PresenceStore, Transition};
use crate::publisher::NotificationPublisher;
use crate::store::{ConnectionStore, Deletion, StoreError, stream_source};

/// Connections read per page when counting a topic's audience.
const PAGE: usize = 500;

/// Tries of one exit before its error is returned.
const EXIT_ATTEMPTS: u32 = 3;

/// Presence, for the services that add and remove subscriptions.
#[derive(Clone)]
pub struct Presence {
    policy: PresencePolicy,
    store: Arc<dyn PresenceStore>,
    events: Arc<dyn NotificationPublisher>,
}

/// Who is present in a topic, as a presence query answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    /// Distinct users with a live connection subscribed, in order, at most the query's limit.
    pub users: Vec<UserId>,
    /// How many distinct users there are in all.
    pub total: usize,
}

/// A topic's audience, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Occupancy {
    /// Live connections subscribed.
    pub connections: usize,
    /// Distinct users among them.
    pub users: usize,
}

impl Presence {
    /// Presence for the topics `policy` covers, recorded in `store`, events published to
    /// `events` (the notification queue). `None` when `policy` covers nothing.
    pub fn new(
        policy: PresencePolicy,
        store: Arc<dyn PresenceStore>,
        events: Arc<dyn NotificationPublisher>,
    ) -> Option<Self> {
        policy.is_on().then_some(Self {
            policy,
            store,
            events,
        })
    }

    /// Which topics keep presence.
    pub fn policy(&self) -> &PresencePolicy {
        &self.policy
    }

    /// Records that `connection`, just subscribed to `topics` in `connections`, is present
    /// in those that keep presence; announces each join. See the module docs for the races
    /// this closes.
    pub async fn entered<S: ConnectionStore + ?Sized>(
        &self,
        connections: &S,
        connection: &Connection,
        topics: &[ExternalId],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let topics = self.policy.topics_of(topics);
        if topics.is_empty() {
            return Ok(());
        }
        let mut events = Vec::new();
        let result = self
            .enter_all(connections, connection, &topics, now, &mut events)
            .await;
        // What was decided is announced even when a later step failed: a retry would find
        // it decided, and never announce it.
        self.announce(&events).await;
        result
    }

    async fn enter_all<S: ConnectionStore + ?Sized>(
        &self,
        connections: &S,
        connection: &Connection,
        topics: &[ExternalId],
        now: Timestamp,
        events: &mut Vec<PresenceEvent>,
    ) -> Result<(), StoreError> {
        let user = connection.user();
        for topic in topics {
            for other in self.store.present(topic, user).await? {
                if &other != connection.id() && connections.get(&other, now).await?.is_none() {
                    self.exit(topic, user, &other, events).await?;
                }
            }
            if self.store.enter(topic, user, connection.id(), now).await? == Transition::Joined {
                events.push(event(topic, user, PresenceChange::Join));
            }
        }
        // A removal that ran before an entry found nothing to take back: the connection
        // disconnected meanwhile (its record is gone before its removal exits), or a
        // concurrent unsubscribe took the topic (its write is before its exit). Read after
        // the entries, either shows here; take those entries back.
        let held = match connections.get(connection.id(), now).await? {
            Some(_) => connections.subscriptions(connection.id()).await?,
            None => Vec::new(),
        };
        for topic in topics.iter().filter(|topic| !held.contains(topic)) {
            self.exit(topic, user, connection.id(), events).await?;
        }
        Ok(())
    }

    /// Records that `connection` of `user` is no longer in `topics`; announces each leave.
    /// An exit that fails is tried again twice (its connection may be gone by then, with
    /// nothing left to retry it from).
    pub async fn exited(
        &self,
        user: &UserId,
        connection: &ConnectionId,
        topics: &[ExternalId],
    ) -> Result<(), StoreError> {
        let mut events = Vec::new();
        let mut result = Ok(());
        for topic in self.policy.topics_of(topics) {
            let mut attempt = 0;
            loop {
                attempt += 1;
                match self.exit(&topic, user, connection, &mut events).await {
                    Ok(()) => break,
                    Err(error) if attempt < EXIT_ATTEMPTS => {
                        tracing::warn!(%topic, error = %with_causes(&error), "leaving a presence topic failed; trying again");
                        tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                    }
                    Err(error) => {
                        result = Err(error);
                        break;
                    }
                }
            }
        }
        self.announce(&events).await;
        result
    }

    async fn exit(
        &self,
        topic: &ExternalId,
        user: &UserId,
        connection: &ConnectionId,
        events: &mut Vec<PresenceEvent>,
    ) -> Result<(), StoreError> {
        if self.store.exit(topic, user, connection).await? == Transition::Left {
            events.push(event(topic, user, PresenceChange::Leave));
        }
        Ok(())
    }

    /// Publishes the events, each with an ID of its own (so that a publish the queue
    /// received twice is pushed once: the pusher's ledger skips the copy). A publish that
    /// fails after the publisher's retries is logged and lost: the transition is recorded,
    /// and a presence query still answers right.
    async fn announce(&self, events: &[PresenceEvent]) {
        if events.is_empty() {
            return;
        }
        let mut requests = Vec::with_capacity(events.len());
        for event in events {
            match event.to_request() {
                Ok(request) => requests.push(request.with_id(event_id())),
                Err(error) => tracing::error!(%error, "a presence event does not build"),
            }
        }
        for (request, result) in requests
            .iter()
            .zip(self.events.publish_batch(&requests).await)
        {
            let id = request.id().map(RequestId::as_str);
            match result {
                Ok(_) => tracing::info!(id, "presence event published"),
                Err(error) => tracing::error!(
                    id,
                    error = %with_causes(&error),
                    "publishing a presence event failed; it is lost"
                ),
            }
        }
    }

    /// The users present in `topic`: distinct users with a live connection subscribed, the
    /// first `limit` of them in order, and how many there are.
    pub async fn members<S: ConnectionStore + ?Sized>(
        connections: Arc<S>,
        topic: &ExternalId,
        limit: usize,
        now: Timestamp,
    ) -> Result<Members, StoreError> {
        let (users, _) = audience(connections, topic, now).await?;
        Ok(Members {
            total: users.len(),
            users: users.into_iter().take(limit).collect(),
        })
    }
}

/// Counts `topic`'s live audience: connections and distinct users. Read-only; any topic,
/// presence or not.
pub async fn occupancy<S: ConnectionStore + ?Sized>(
    connections: Arc<S>,
    topic: &ExternalId,
    now: Timestamp,
) -> Result<Occupancy, StoreError> {
    let (users, connections) = audience(connections, topic, now).await?;
    Ok(Occupancy {
        connections,
        users: users.len(),
    })
}

/// The distinct users of `topic`'s live audience, and how many connections it has.
async fn audience<S: ConnectionStore + ?Sized>(
    connections: Arc<S>,
    topic: &ExternalId,
    now: Timestamp,
) -> Result<(BTreeSet<UserId>, usize), StoreError> {
    let mut users = BTreeSet::new();
    let mut count = 0;
    let mut pages = std::pin::pin!(stream_source(
        connections,
        Source::Topic(topic.clone()),
        PAGE,
        now
    ));
    while let Some(page) = pages.next().await {
        for connection in page? {
            count += 1;
            users.insert(connection.user().clone());
        }
    }
    Ok((users, count))
}

fn event(topic: &ExternalId, user: &UserId, change: PresenceChange) -> PresenceEvent {
    PresenceEvent {
        topic: topic.clone(),
        user: user.clone(),
        change,
    }
}

/// Removes `connection` from the store with its subscriptions, and, with `presence`, from
/// every presence topic it was in (announcing the leaves). `user` is the connection's user
/// when the caller knows it; otherwise it is read first (also when the connection has just
/// expired, since a `$disconnect` comes as API Gateway closes it). The topics left are those
/// the delete itself found once the connection's record was gone, so a subscription written
/// while it ran is left too.
pub(crate) async fn remove<S: ConnectionStore + ?Sized>(
    store: &S,
    presence: Option<&Presence>,
    connection: &ConnectionId,
    user: Option<&UserId>,
) -> Result<Deletion, StoreError> {
    let Some(presence) = presence else {
        return store.delete(connection).await;
    };
    let owner = match user {
        Some(user) => Some(user.clone()),
        // Expired connections are still read: the epoch is before every expiry.
        None => store
            .get(connection, Timestamp::EPOCH)
            .await?
            .map(|found| found.user().clone()),
    };
    let (deletion, held) = store.delete_reporting_topics(connection).await?;
    if let Some(owner) = owner {
        presence.exited(&owner, connection, &held).await?;
    }
    Ok(deletion)
}

/// A fresh ID for one presence event.
fn event_id() -> Option<RequestId> {
    let suffix: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(16)
        .collect();
    RequestId::parse(format!("presence-{suffix}")).ok()
}
