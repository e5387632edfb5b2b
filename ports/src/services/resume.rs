//! Resume: a subscribe that says where the client was (`since`) is handed what it missed.
//!
//! The order closes both windows a resume has. It subscribes first, then reads each stream
//! after the client's position and posts every message found, in order: a message pushed
//! after the subscribe reaches the connection live, and one pushed before it is in the
//! history. But audience reads may lag the subscribe (an eventually consistent index): a
//! push whose audience read missed the new subscription appended its message before that
//! read. So once the store shows the subscription to audience reads, each stream is read a
//! second time after the last message handed, and anything found is posted too. A message can
//! then arrive twice (recovered and live): clients drop repeats by `(stream, seq)`.
//!
//! A stream whose history no longer reaches back, one that keeps no history, one the index
//! did not show within [`INDEX_WAIT`], and one whose read or posts failed is reported as a
//! gap: the client must reload its state. A gap is never filled partly in silence.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use wspush_domain::history::envelope;
use wspush_domain::{ConnectionId, ExternalId, HistoryPolicy, Position, Since};

use crate::causes::with_causes;
use crate::clock::Clock;
use crate::gateway::{ConnectionGateway, GatewayError};
use crate::history::{HistoryRead, HistoryStore};
use crate::store::{ConnectionStore, StoreError};

/// How long a resume waits for audience reads to show the new subscription.
pub const INDEX_WAIT: Duration = Duration::from_secs(2);

/// Attempts per recovered message when the gateway answers 429 or 5xx.
const POST_ATTEMPTS: u32 = 4;

/// What a resume handed over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resumed {
    /// Messages posted per stream that was caught up.
    pub recovered: BTreeMap<ExternalId, usize>,
    /// Streams that could not be caught up: the client must reload them.
    pub gaps: Vec<ExternalId>,
}

/// What a resume needs besides the connection store.
pub(crate) struct Resume {
    pub(crate) history: Arc<dyn HistoryStore>,
    pub(crate) gateway: Arc<dyn ConnectionGateway>,
    pub(crate) policy: HistoryPolicy,
    pub(crate) index_wait: Duration,
}

/// Why a stream could not be caught up, besides a gap in its history.
#[derive(Debug, thiserror::Error)]
enum RecoverError {
    #[error("reading the history failed")]
    Store(#[from] StoreError),
    #[error("posting a recovered message failed")]
    Post(#[from] GatewayError),
}

/// What a subscribe `since` positions gets when no history is kept: every stream a gap.
pub(crate) fn all_gaps(since: &Since) -> Resumed {
    Resumed {
        gaps: since.iter().map(|(stream, _)| stream.clone()).collect(),
        ..Resumed::default()
    }
}

impl Resume {
    /// Hands `connection`, just subscribed in `store`, what it missed of each stream in
    /// `since`.
    pub(crate) async fn run<S: ConnectionStore + ?Sized>(
        &self,
        store: &S,
        clock: &dyn Clock,
        connection: &ConnectionId,
        since: &Since,
    ) -> Resumed {
        let mut resumed = Resumed::default();
        let mut caught_up: Vec<(ExternalId, Position)> = Vec::new();
        for (stream, after) in since.iter() {
            if !self.policy.keeps(stream) {
                resumed.gaps.push(stream.clone());
                continue;
            }
            match self.recover(clock, connection, stream, after).await {
                Some((count, last)) => {
                    resumed.recovered.insert(stream.clone(), count);
                    caught_up.push((stream.clone(), last));
                }
                None => resumed.gaps.push(stream.clone()),
            }
        }
        for (stream, last) in caught_up {
            let shown = self.index_shows(store, clock, &stream, connection).await;
            let again = match shown {
                true => self.recover(clock, connection, &stream, &last).await,
                false => {
                    tracing::warn!(%connection, wait_ms = self.index_wait.as_millis() as u64, "audience reads did not show the subscription in time; reporting a gap");
                    None
                }
            };
            match again {
                Some((count, _)) => {
                    *resumed.recovered.entry(stream).or_default() += count;
                }
                None => {
                    resumed.recovered.remove(&stream);
                    resumed.gaps.push(stream);
                }
            }
        }
        resumed
    }

    /// Posts the messages of `stream` after `after`: how many, and the last position; `None`
    /// for a gap (or a failure, logged).
    async fn recover(
        &self,
        clock: &dyn Clock,
        connection: &ConnectionId,
        stream: &ExternalId,
        after: &Position,
    ) -> Option<(usize, Position)> {
        let result: Result<_, RecoverError> = async {
            let read = self
                .history
                .read_after(stream, after, self.policy.retention(), clock.now())
                .await?;
            let HistoryRead::Messages(messages) = read else {
                return Ok(None);
            };
            let mut last = after.clone();
            for message in &messages {
                let text = envelope(&message.data, &message.positions_for(stream));
                post(self.gateway.as_ref(), connection, Bytes::from(text)).await?;
                last = message.position.clone();
            }
            Ok(Some((messages.len(), last)))
        }
        .await;
        result.unwrap_or_else(|error| {
            tracing::warn!(%connection, error = %with_causes(&error), "a stream could not be caught up; reporting a gap");
            None
        })
    }

    /// Whether audience reads of `stream` in `store` show `connection` within the wait.
    async fn index_shows<S: ConnectionStore + ?Sized>(
        &self,
        store: &S,
        clock: &dyn Clock,
        stream: &ExternalId,
        connection: &ConnectionId,
    ) -> bool {
        let until = tokio::time::Instant::now() + self.index_wait;
        let mut pause = Duration::from_millis(20);
        loop {
            match store
                .audience_includes(stream, connection, clock.now())
                .await
            {
                Ok(true) => return true,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%connection, error = %with_causes(&error), "reading the audience index failed");
                }
            }
            if tokio::time::Instant::now() + pause > until {
                return false;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}

/// One post, retried a few times on 429 and 5xx.
async fn post(
    gateway: &dyn ConnectionGateway,
    connection: &ConnectionId,
    payload: Bytes,
) -> Result<(), GatewayError> {
    let mut pause = Duration::from_millis(50);
    let mut attempt = 1;
    loop {
        match gateway.post(connection, payload.clone()).await {
            Err(GatewayError::Throttled | GatewayError::Unavailable(_))
                if attempt < POST_ATTEMPTS =>
            {
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}
