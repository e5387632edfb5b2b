//! The local gateway's stand-in for the notification queue: the requests the services would
//! enqueue (presence joins and leaves) are handed to the in-process pusher, one after
//! another in the order published.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use tokio::sync::mpsc;
use wspush_domain::NotificationRequest;
use wspush_ports::{MessageId, NotificationPublisher, PublishError};

use crate::state::AppState;

/// Publishes to the in-process pusher.
#[derive(Debug, Clone)]
pub(crate) struct InProcessQueue {
    sender: mpsc::UnboundedSender<NotificationRequest>,
}

/// The other end: what [`drain`] pushes.
pub(crate) type Received = mpsc::UnboundedReceiver<NotificationRequest>;

impl InProcessQueue {
    /// A queue and its receiving end.
    pub(crate) fn new() -> (Self, Received) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Self { sender }, receiver)
    }
}

#[async_trait]
impl NotificationPublisher for InProcessQueue {
    async fn publish(&self, request: &NotificationRequest) -> Result<MessageId, PublishError> {
        self.sender
            .send(request.clone())
            .map_err(|_| PublishError::Unavailable("the local gateway is shutting down".into()))?;
        Ok(String::new())
    }

    async fn publish_batch(
        &self,
        requests: &[NotificationRequest],
    ) -> Vec<Result<MessageId, PublishError>> {
        let mut results = Vec::with_capacity(requests.len());
        for request in requests {
            results.push(self.publish(request).await);
        }
        results
    }
}

/// Pushes what is published until the gateway's state is gone (its queue with it).
pub(crate) async fn drain(state: Weak<AppState>, mut received: Received) {
    while let Some(request) = received.recv().await {
        let Some(state) = state.upgrade() else {
            return;
        };
        let report = state.pusher.push(&request).await;
        tracing::info!(
            delivered = report.delivered,
            pruned = report.pruned,
            "pushed a queued request"
        );
        drop::<Arc<AppState>>(state);
    }
}
