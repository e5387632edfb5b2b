//! The local gateway's stand-in for the notification queue: the requests the services would
//! enqueue (presence joins and leaves) are handed to the in-process pusher, one after
//! another in the order published.

use async_trait::async_trait;
use tokio::sync::mpsc;
use wspush_domain::NotificationRequest;
use wspush_ports::{MessageId, NotificationPublisher, PublishError};

/// Publishes to the in-process pusher.
#[derive(Debug, Clone)]
pub(crate) struct InProcessQueue {
    sender: mpsc::UnboundedSender<NotificationRequest>,
}

/// The other end: what the gateway's drain task pushes.
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
