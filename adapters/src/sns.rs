//! The SNS notification publisher.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sns::Client;
use aws_sdk_sns::types::PublishBatchRequestEntry;
use wspush_domain::NotificationRequest;
use wspush_ports::{MessageId, NotificationPublisher, PublishError};

use crate::publish::{BatchAnswer, EntryFailure, bodies, publish_all, publish_error};

/// Publishes notification requests to an SNS topic the pusher is subscribed to.
#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: Client,
    topic_arn: String,
}

impl SnsPublisher {
    /// A publisher to `topic_arn`; the endpoint follows the SDK configuration
    /// (`AWS_ENDPOINT_URL_SNS`).
    pub fn new(sdk: &SdkConfig, topic_arn: impl Into<String>) -> Self {
        Self {
            client: Client::new(sdk),
            topic_arn: topic_arn.into(),
        }
    }

    /// Publishes one message as it is (a control request, say: the pusher reads every
    /// message the topic delivers) and returns its message ID.
    pub async fn publish_text(&self, body: &str) -> Result<MessageId, PublishError> {
        let output = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(body)
            .send()
            .await
            .map_err(publish_error)?;
        Ok(output.message_id().unwrap_or_default().to_owned())
    }
}

#[async_trait]
impl NotificationPublisher for SnsPublisher {
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
                    PublishBatchRequestEntry::builder()
                        .id(index.to_string())
                        .message(body)
                        .build()
                        .map_err(|error| PublishError::Unknown(error.into()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let output = self
                .client
                .publish_batch()
                .topic_arn(&self.topic_arn)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await
                .map_err(publish_error)?;
            let mut answer = BatchAnswer::default();
            for entry in output.successful() {
                if let (Some(index), Some(id)) = (
                    entry.id().and_then(|id| id.parse().ok()),
                    entry.message_id(),
                ) {
                    answer.published.push((index, id.to_owned()));
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
