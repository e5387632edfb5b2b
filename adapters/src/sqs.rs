//! The SQS notification publisher.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use wspush_domain::NotificationRequest;
use wspush_ports::{MessageId, NotificationPublisher, PublishError};

use crate::publish::{BatchAnswer, EntryFailure, bodies, publish_all, publish_error};

/// Publishes notification requests to an SQS queue, for the pusher's event source mapping.
#[derive(Debug, Clone)]
pub struct SqsPublisher {
    client: Client,
    queue_url: String,
}

impl SqsPublisher {
    /// A publisher to `queue_url`; the endpoint follows the SDK configuration
    /// (`AWS_ENDPOINT_URL_SQS`).
    pub fn new(sdk: &SdkConfig, queue_url: impl Into<String>) -> Self {
        Self {
            client: Client::new(sdk),
            queue_url: queue_url.into(),
        }
    }

    /// Sends one message body as it is (a control request, say: the pusher reads every
    /// message the queue holds) and returns its message ID.
    pub async fn publish_text(&self, body: &str) -> Result<MessageId, PublishError> {
        let output = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(publish_error)?;
        Ok(output.message_id().unwrap_or_default().to_owned())
    }
}

#[async_trait]
impl NotificationPublisher for SqsPublisher {
    async fn publish(&self, request: &NotificationRequest) -> Result<MessageId, PublishError> {
        let body = bodies(std::slice::from_ref(request))
            .pop()
            .unwrap_or_else(|| Err(PublishError::Rejected("nothing to publish".into())))?;
        self.publish_text(&body).await
    }

    async fn publish_batch(
        &self,
        requests: &[NotificationRequest],
    ) -> Vec<Result<MessageId, PublishError>> {
        publish_all(requests, |entries| async move {
            let entries = entries
                .into_iter()
                .map(|(index, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(index.to_string())
                        .message_body(body)
                        .build()
                        .map_err(|error| PublishError::Unknown(error.into()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let output = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(publish_error)?;
            let mut answer = BatchAnswer::default();
            for entry in output.successful() {
                if let Ok(index) = entry.id().parse() {
                    answer
                        .published
                        .push((index, entry.message_id().to_owned()));
                }
            }
            for entry in output.failed() {
                if let Ok(index) = entry.id().parse() {
                    answer.failed.push(EntryFailure {
                        index,
                        sender_fault: entry.sender_fault(),
                        reason: format!(
                            "{}: {}",
                            entry.code(),
                            entry.message().unwrap_or_default()
                        ),
                    });
                }
            }
            Ok(answer)
        })
        .await
    }
}
