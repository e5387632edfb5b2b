//! The notification queue, polled as the pusher's SQS event source mapping would: the
//! template's queue is created on the SQS endpoint (moto), batches of its messages invoke the
//! pusher, the records it answers as `batchItemFailures` are made visible again at once
//! (and dead-lettered after five receives, as the template's redrive policy says), and the
//! others are deleted.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use axum::body::Bytes;
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use wspush_adapters::aws::local_sdk_config;

use crate::functions::runtime::{Invocation, RuntimeApi};
use crate::functions::{FunctionsError, InvokeError};

/// Receives before a message is dead-lettered (the template's `maxReceiveCount`).
const MAX_RECEIVE_COUNT: u32 = 5;

/// An SQS endpoint, and the name of the notification queue to create on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsEndpoint {
    /// Such as `http://127.0.0.1:5000` (moto).
    pub endpoint: String,
    /// The queue's name; its dead-letter queue is `{name}-dlq`.
    pub queue_name: String,
}

/// The queue, and a client of it.
pub(crate) struct Poller {
    client: aws_sdk_sqs::Client,
    url: String,
    arn: String,
}

impl Poller {
    /// Creates the queue and its dead-letter queue (or finds them).
    pub(crate) async fn create(sqs: &SqsEndpoint, region: &str) -> Result<Self, FunctionsError> {
        let sdk = local_sdk_config(region, "local", "local");
        let client = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&sdk)
                .endpoint_url(&sqs.endpoint)
                .build(),
        );
        let failed = |what: &str, error: &dyn std::error::Error| {
            FunctionsError::Sqs(format!(
                "{what} on {}: {}",
                sqs.endpoint,
                wspush_ports::with_causes(error)
            ))
        };
        let dead_letters = client
            .create_queue()
            .queue_name(format!("{}-dlq", sqs.queue_name))
            .send()
            .await
            .map_err(|error| failed("creating the dead-letter queue", &error))?;
        let dead_letters = dead_letters
            .queue_url
            .ok_or_else(|| FunctionsError::Sqs("CreateQueue answered no URL".to_owned()))?;
        let dead_letter_arn = queue_arn(&client, &dead_letters)
            .await
            .map_err(|error| failed("reading the dead-letter queue's ARN", &*error))?;
        let created = client
            .create_queue()
            .queue_name(&sqs.queue_name)
            // The template's: six times the pusher's timeout.
            .attributes(QueueAttributeName::VisibilityTimeout, "360")
            .attributes(
                QueueAttributeName::RedrivePolicy,
                json!({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": MAX_RECEIVE_COUNT.to_string()})
                    .to_string(),
            )
            .send()
            .await
            .map_err(|error| failed("creating the notification queue", &error))?;
        let url = created
            .queue_url
            .ok_or_else(|| FunctionsError::Sqs("CreateQueue answered no URL".to_owned()))?;
        let arn = queue_arn(&client, &url)
            .await
            .map_err(|error| failed("reading the queue's ARN", &*error))?;
        Ok(Self { client, url, arn })
    }

    /// The queue's URL (the template's `!Ref NotificationsQueue`).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Polls until `stop`: each batch of up to `batch_size` messages invokes the pusher.
    pub(crate) fn poll(
        &self,
        pusher: Arc<RuntimeApi>,
        batch_size: u32,
        mut stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let (client, url, arn) = (self.client.clone(), self.url.clone(), self.arn.clone());
        tokio::spawn(async move {
            loop {
                let received = tokio::select! {
                    received = client
                        .receive_message()
                        .queue_url(&url)
                        .max_number_of_messages(i32::try_from(batch_size.min(10)).unwrap_or(10))
                        .wait_time_seconds(1)
                        .message_system_attribute_names(MessageSystemAttributeName::All)
                        .send() => received,
                    _ = stop.changed() => return,
                };
                let messages = match received {
                    Ok(output) => output.messages.unwrap_or_default(),
                    Err(error) => {
                        tracing::warn!(error = %wspush_ports::with_causes(&error), "receiving from the notification queue");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                if messages.is_empty() {
                    continue;
                }
                deliver(&client, &url, &arn, &pusher, &messages).await;
            }
        })
    }
}

/// One batch: invoke, then delete what succeeded and make the rest visible again.
async fn deliver(
    client: &aws_sdk_sqs::Client,
    url: &str,
    arn: &str,
    pusher: &RuntimeApi,
    messages: &[aws_sdk_sqs::types::Message],
) {
    let records: Vec<Value> = messages
        .iter()
        .map(|message| record(arn, message))
        .collect();
    let event = json!({ "Records": records });
    let (answer, answered) = oneshot::channel();
    pusher.enqueue(Invocation {
        payload: Bytes::from(event.to_string()),
        answer,
    });
    let outcome = answered
        .await
        .unwrap_or(Err(InvokeError::Stopped))
        .and_then(|answer| batch_item_failures(&pusher.name, &answer));
    let failed: Vec<String> = match outcome {
        Ok(failed) => failed,
        Err(InvokeError::Stopped) => return,
        Err(error) => {
            tracing::error!("the pusher failed a batch of {}: {error}", messages.len());
            messages
                .iter()
                .filter_map(|message| message.message_id.clone())
                .collect()
        }
    };
    let mut deletes = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        let (Some(id), Some(handle)) = (&message.message_id, &message.receipt_handle) else {
            continue;
        };
        if failed.contains(id) {
            let visible = client
                .change_message_visibility()
                .queue_url(url)
                .receipt_handle(handle)
                .visibility_timeout(0)
                .send()
                .await;
            if let Err(error) = visible {
                tracing::warn!(error = %wspush_ports::with_causes(&error), "making a failed message visible again");
            }
        } else if let Ok(entry) = DeleteMessageBatchRequestEntry::builder()
            .id(index.to_string())
            .receipt_handle(handle)
            .build()
        {
            deletes.push(entry);
        }
    }
    if !deletes.is_empty() {
        let deleted = client
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(deletes))
            .send()
            .await;
        if let Err(error) = deleted {
            tracing::warn!(error = %wspush_ports::with_causes(&error), "deleting delivered messages");
        }
    }
}

/// A received message as a record of Lambda's SQS event.
fn record(arn: &str, message: &aws_sdk_sqs::types::Message) -> Value {
    let attributes: serde_json::Map<String, Value> = message
        .attributes
        .iter()
        .flatten()
        .map(|(name, value)| (name.as_str().to_owned(), json!(value)))
        .collect();
    json!({
        "messageId": message.message_id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": message.md5_of_body,
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region_of(arn),
    })
}

/// An SQS event of records `(messageId, body, receiptHandle)`, as a direct notification is
/// handed to the pusher.
pub(crate) fn event<'a>(
    region: &str,
    records: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .to_string();
    let arn = arn(region, "local-notifications");
    let records: Vec<Value> = records
        .into_iter()
        .map(|(id, body, handle)| {
            json!({
                "messageId": id,
                "receiptHandle": handle,
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": now,
                    "SenderId": "local",
                    "ApproximateFirstReceiveTimestamp": now,
                },
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": region,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The `itemIdentifier`s of the pusher's `batchItemFailures`.
pub(crate) fn batch_item_failures(
    function: &str,
    answer: &[u8],
) -> Result<Vec<String>, InvokeError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "batchItemFailures", default)]
        failures: Vec<Failure>,
    }
    #[derive(serde::Deserialize)]
    struct Failure {
        #[serde(rename = "itemIdentifier")]
        id: String,
    }
    serde_json::from_slice::<Answer>(answer)
        .map(|answer| {
            answer
                .failures
                .into_iter()
                .map(|failure| failure.id)
                .collect()
        })
        .map_err(|error| InvokeError::BadAnswer {
            function: function.to_owned(),
            expected: "an SQS batch response",
            problem: error.to_string(),
        })
}

fn arn(region: &str, queue: &str) -> String {
    format!("arn:aws:sqs:{region}:000000000000:{queue}")
}

async fn queue_arn(
    client: &aws_sdk_sqs::Client,
    url: &str,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let attributes = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?;
    attributes
        .attributes
        .and_then(|mut attributes| attributes.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| "GetQueueAttributes answered no QueueArn".into())
}

fn region_of(arn: &str) -> &str {
    arn.split(':').nth(3).unwrap_or("us-east-1")
}
