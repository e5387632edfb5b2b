//! Subscribe and unsubscribe.

use std::collections::HashSet;
use std::sync::Arc;

use wspush_domain::{
    ConnectionId, Denial, ExternalId, HistoryPolicy, Since, SubscriptionPolicy, Timestamp,
};

use crate::clock::Clock;
use crate::gateway::ConnectionGateway;
use crate::history::HistoryStore;
use crate::services::presence::{Members, Presence};
use crate::services::resume::{INDEX_WAIT, Resume, Resumed, all_gaps};
use crate::store::{ConnectionStore, StoreError};

/// Why a subscribe or unsubscribe request failed.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// The connection is not (or no longer) connected.
    #[error("connection `{0}` is not connected")]
    NotConnected(ConnectionId),
    /// The subscription policy refused the request.
    #[error("subscription denied: {0}")]
    Denied(#[from] Denial),
    /// A presence query about a topic that keeps no presence.
    #[error("topic `{0}` keeps no presence (its namespace is not a presence namespace)")]
    NoPresence(ExternalId),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for SubscribeError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::ConnectionNotFound(id) => SubscribeError::NotConnected(id),
            StoreError::SubscriptionLimit { held, adding, max } => {
                SubscribeError::Denied(Denial::TooManySubscriptions {
                    current: held,
                    adding,
                    max,
                })
            }
            other => SubscribeError::Store(other),
        }
    }
}

/// Subscribes connections to external IDs under a [`SubscriptionPolicy`].
pub struct SubscriptionService<S: ?Sized> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    policy: SubscriptionPolicy,
    /// Where a subscribe `since` a position is caught up from, and posted through.
    resume: Option<Resume>,
    presence: Option<Presence>,
}

impl<S: ConnectionStore + ?Sized> SubscriptionService<S> {
    /// A service over `store` that enforces `policy`.
    pub fn new(store: Arc<S>, clock: Arc<dyn Clock>, policy: SubscriptionPolicy) -> Self {
        Self {
            store,
            clock,
            policy,
            resume: None,
            presence: None,
        }
    }

    /// Keeps presence for the topics its policy covers: joins and leaves are announced, and
    /// [`presence`](Self::presence) answers who is in a topic.
    #[must_use]
    pub fn with_presence(mut self, presence: Option<Presence>) -> Self {
        self.presence = presence;
        self
    }

    /// The users present in `topic`, at most `limit` of them, for a connection subscribed
    /// to it.
    pub async fn presence(
        &self,
        connection: &ConnectionId,
        topic: &ExternalId,
        limit: usize,
    ) -> Result<Members, SubscribeError> {
        if !self
            .presence
            .as_ref()
            .is_some_and(|presence| presence.policy().covers(topic))
        {
            return Err(SubscribeError::NoPresence(topic.clone()));
        }
        let now = self.clock.now();
        if self.store.get(connection, now).await?.is_none() {
            return Err(SubscribeError::NotConnected(connection.clone()));
        }
        if !self.store.subscriptions(connection).await?.contains(topic) {
            return Err(SubscribeError::Denied(Denial::PresenceNeedsSubscription {
                topic: topic.clone(),
            }));
        }
        Ok(Presence::members(Arc::clone(&self.store), topic, limit, now).await?)
    }

    /// Catches up a subscribe `since` a position from `history` (the streams `policy`
    /// keeps), posting what the connection missed through `gateway`. Without it (or when
    /// `policy` keeps no history), every position reads as a gap.
    #[must_use]
    pub fn with_resume(
        mut self,
        history: Arc<dyn HistoryStore>,
        gateway: Arc<dyn ConnectionGateway>,
        policy: HistoryPolicy,
    ) -> Self {
        self.resume = policy.is_on().then_some(Resume {
            history,
            gateway,
            policy,
            index_wait: INDEX_WAIT,
        });
        self
    }

    /// Subscribes as [`subscribe`](Self::subscribe), then hands the connection what it
    /// missed of each stream `since` names (see [`crate::services::resume`]). `None` when
    /// `since` names no stream.
    pub async fn subscribe_since(
        &self,
        connection: &ConnectionId,
        topics: &[ExternalId],
        since: &Since,
    ) -> Result<(Vec<ExternalId>, Option<Resumed>), SubscribeError> {
        let held = self.subscribe(connection, topics).await?;
        if since.is_empty() {
            return Ok((held, None));
        }
        let resumed = match &self.resume {
            Some(resume) => {
                resume
                    .run(self.store.as_ref(), self.clock.as_ref(), connection, since)
                    .await
            }
            None => all_gaps(since),
        };
        Ok((held, Some(resumed)))
    }

    /// Subscribes `connection` to `topics` if the policy allows all of them, and returns
    /// every external ID the connection is subscribed to afterwards. Nothing is written when
    /// any topic is denied.
    pub async fn subscribe(
        &self,
        connection: &ConnectionId,
        topics: &[ExternalId],
    ) -> Result<Vec<ExternalId>, SubscribeError> {
        let now = self.clock.now();
        let found = self
            .store
            .get(connection, now)
            .await?
            .ok_or_else(|| SubscribeError::NotConnected(connection.clone()))?;
        self.policy.check_topics(&found, topics)?;

        let mut held = self.store.subscriptions(connection).await?;
        let already: HashSet<&ExternalId> = held.iter().collect();
        let mut adding: Vec<ExternalId> = Vec::new();
        for topic in topics {
            if !already.contains(topic) && !adding.contains(topic) {
                adding.push(topic.clone());
            }
        }
        // Checked here for a clear answer without a write, and by the store again, atomically
        // with the write, against concurrent subscribes of the same connection.
        self.policy.check_total(held.len(), adding.len())?;
        if !adding.is_empty() {
            self.store
                .subscribe_at_most(
                    &found,
                    &adding,
                    self.policy.max_subscriptions_per_connection(),
                    now,
                )
                .await?;
            tracing::info!(%connection, topics = adding.len(), "subscribed");
        }
        if let Some(presence) = &self.presence {
            // Every topic asked for, held before or not: entering is idempotent, and a retry
            // after a failed entry must still record it.
            presence
                .entered(self.store.as_ref(), &found, topics, now)
                .await?;
        }
        held.extend(adding);
        Ok(held)
    }

    /// Unsubscribes `connection` from `topics`. Idempotent; unknown topics are ignored. A
    /// message naming more topics than the policy's per-message limit is denied and removes
    /// nothing, as a subscribe is: the store's work per message stays bounded.
    pub async fn unsubscribe(
        &self,
        connection: &ConnectionId,
        topics: &[ExternalId],
    ) -> Result<(), SubscribeError> {
        self.policy.check_count(topics)?;
        // The user is read before the write: a `$disconnect` racing this unsubscribe may have
        // removed the connection by the time it is written.
        let presence = match &self.presence {
            Some(presence) if !presence.policy().topics_of(topics).is_empty() => {
                // Expired connections are still read: the epoch is before every expiry.
                self.store
                    .get(connection, Timestamp::EPOCH)
                    .await?
                    .map(|found| (presence, found.user().clone()))
            }
            _ => None,
        };
        self.store.unsubscribe(connection, topics).await?;
        if let Some((presence, user)) = presence {
            presence.exited(&user, connection, topics).await?;
        }
        tracing::info!(%connection, topics = topics.len(), "unsubscribed");
        Ok(())
    }
}
