//! The notification publisher port: how producers hand a notification request to the
//! pusher (an SQS queue, an SNS topic, or the local gateway).

use async_trait::async_trait;
use wspush_domain::NotificationRequest;

use crate::Cause;

/// The ID the queue or topic gave a published message.
pub type MessageId = String;

/// Why a request was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The destination refused the message as invalid (too large, bad attributes).
    #[error("the destination rejected the message: {0}")]
    Rejected(String),
    /// The destination is throttling us. Retry later.
    #[error("the destination is throttling requests")]
    Throttled(#[source] Cause),
    /// A 5xx answer, a timeout or an I/O error. Retry later.
    #[error("the destination is unavailable")]
    Unavailable(#[source] Cause),
    /// Anything else.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

/// Publishes notification requests for the pusher to deliver.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait NotificationPublisher: Send + Sync {
    /// Publishes one request in the documented JSON format and returns its message ID.
    async fn publish(&self, request: &NotificationRequest) -> Result<MessageId, PublishError>;

    /// Publishes several requests, batching as the destination allows.
    ///
    /// MUST return exactly one result per request, in the order given, and MUST NOT drop a
    /// request: an entry that still fails after the adapter's retries comes back as its
    /// error.
    async fn publish_batch(
        &self,
        requests: &[NotificationRequest],
    ) -> Vec<Result<MessageId, PublishError>>;
}
