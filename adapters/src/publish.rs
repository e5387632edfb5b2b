//! What the SQS and SNS publishers share: validation, splitting into batches that respect
//! the service's limits, and retrying the entries of a batch that failed, so that each
//! request ends published or comes back with its error, never dropped.

use std::future::Future;
use std::time::Duration;

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use wspush_domain::NotificationRequest;
use wspush_ports::{MessageId, PublishError};

/// SQS and SNS take at most 10 entries per batch.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// SQS and SNS take at most 256 KiB per message, and per batch all messages together.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Calls per batch before entries that still fail are returned as failed.
pub const BATCH_ATTEMPTS: u32 = 5;

/// One entry's failure inside a batch call.
pub struct EntryFailure {
    /// The entry's position in the caller's list.
    pub index: usize,
    /// Whether the sender is at fault (a retry cannot help).
    pub sender_fault: bool,
    /// The service's error code and message.
    pub reason: String,
}

/// What one batch call answered.
#[derive(Default)]
pub struct BatchAnswer {
    /// (position, message ID) of each published entry.
    pub published: Vec<(usize, MessageId)>,
    /// The entries that failed.
    pub failed: Vec<EntryFailure>,
}

/// Requests as message bodies, each checked against the message size limit first.
pub fn bodies(requests: &[NotificationRequest]) -> Vec<Result<String, PublishError>> {
    requests
        .iter()
        .map(|request| {
            let body = request.to_json();
            if body.len() > MAX_MESSAGE_BYTES {
                Err(PublishError::Rejected(format!(
                    "the request is {} bytes as JSON; SQS and SNS accept at most {MAX_MESSAGE_BYTES}",
                    body.len()
                )))
            } else {
                Ok(body)
            }
        })
        .collect()
}

/// Splits the entries (position, size) into batches of at most `max_entries` entries and
/// `max_bytes` bytes, in order.
pub fn split_batches(
    entries: &[(usize, usize)],
    max_entries: usize,
    max_bytes: usize,
) -> Vec<Vec<usize>> {
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0;
    for &(index, size) in entries {
        let fits = batches
            .last()
            .is_some_and(|batch| batch.len() < max_entries && bytes + size <= max_bytes);
        if fits {
            bytes += size;
            if let Some(batch) = batches.last_mut() {
                batch.push(index);
            }
        } else {
            batches.push(vec![index]);
            bytes = size;
        }
    }
    batches
}

/// Publishes `requests` in batches through `send`, retrying what may succeed later. One
/// result per request, in order.
pub async fn publish_all<F, Fut>(
    requests: &[NotificationRequest],
    mut send: F,
) -> Vec<Result<MessageId, PublishError>>
where
    F: FnMut(Vec<(usize, String)>) -> Fut,
    Fut: Future<Output = Result<BatchAnswer, PublishError>>,
{
    let bodies = bodies(requests);
    let sizes: Vec<(usize, usize)> = bodies
        .iter()
        .enumerate()
        .filter_map(|(index, body)| body.as_ref().ok().map(|body| (index, body.len())))
        .collect();
    let mut results: Vec<Option<Result<MessageId, PublishError>>> = bodies
        .iter()
        .map(|body| {
            body.as_ref()
                .err()
                .map(|error| Err(PublishError::Rejected(error.to_string())))
        })
        .collect();
    for batch in split_batches(&sizes, MAX_BATCH_ENTRIES, MAX_MESSAGE_BYTES) {
        let mut pending = batch;
        let mut last_reasons: Vec<(usize, String)> = Vec::new();
        for attempt in 0..BATCH_ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let entries = pending
                .iter()
                .filter_map(|&index| match &bodies[index] {
                    Ok(body) => Some((index, body.clone())),
                    Err(_) => None,
                })
                .collect();
            match send(entries).await {
                Ok(answer) => {
                    for (index, id) in answer.published {
                        results[index] = Some(Ok(id));
                    }
                    pending.clear();
                    last_reasons.clear();
                    for failure in answer.failed {
                        if failure.sender_fault {
                            results[failure.index] =
                                Some(Err(PublishError::Rejected(failure.reason)));
                        } else {
                            pending.push(failure.index);
                            last_reasons.push((failure.index, failure.reason));
                        }
                    }
                }
                Err(error) if is_retryable(&error) && attempt + 1 < BATCH_ATTEMPTS => {
                    tracing::warn!(%error, "batch call failed; retrying");
                }
                Err(error) => {
                    let message = error.to_string();
                    for &index in &pending {
                        results[index] = Some(Err(match &error {
                            PublishError::Rejected(reason) => {
                                PublishError::Rejected(reason.clone())
                            }
                            PublishError::Throttled(_) => {
                                PublishError::Throttled(message.clone().into())
                            }
                            PublishError::Unavailable(_) => {
                                PublishError::Unavailable(message.clone().into())
                            }
                            PublishError::Unknown(_) => {
                                PublishError::Unknown(anyhow::anyhow!(message.clone()))
                            }
                        }));
                    }
                    pending.clear();
                }
            }
        }
        for (index, reason) in last_reasons {
            if results[index].is_none() {
                results[index] = Some(Err(PublishError::Unavailable(
                    format!("still failing after {BATCH_ATTEMPTS} attempts: {reason}").into(),
                )));
            }
        }
    }
    results
        .into_iter()
        .map(|result| {
            result.unwrap_or_else(|| {
                Err(PublishError::Unknown(anyhow::anyhow!(
                    "the service answered nothing for this entry"
                )))
            })
        })
        .collect()
}

fn is_retryable(error: &PublishError) -> bool {
    matches!(
        error,
        PublishError::Throttled(_) | PublishError::Unavailable(_)
    )
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(50)
        .saturating_mul(2u32.saturating_pow(attempt))
        .min(Duration::from_secs(2))
        .mul_f64(fastrand::f64())
}

/// Maps an SQS or SNS SDK error onto the port's errors, keeping the cause.
pub fn publish_error<E>(error: SdkError<E, HttpResponse>) -> PublishError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    const THROTTLING: [&str; 5] = [
        "ThrottlingException",
        "Throttling",
        "RequestThrottled",
        "ThrottledException",
        "KMSThrottlingException",
    ];
    let (status, transport) = crate::aws::failed_answer(&error);
    let code = error.code().map(str::to_owned);
    if code
        .as_deref()
        .is_some_and(|code| THROTTLING.contains(&code))
    {
        PublishError::Throttled(Box::new(error))
    } else if transport || status.is_some_and(|status| status >= 500) {
        PublishError::Unavailable(Box::new(error))
    } else if let (Some(code), Some(400..=499)) = (&code, status) {
        let message = error.message().unwrap_or_default().to_owned();
        PublishError::Rejected(format!("{code}: {message}"))
    } else {
        PublishError::Unknown(anyhow::Error::new(error).context("publishing failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_at_most_ten_entries() {
        let entries: Vec<(usize, usize)> = (0..23).map(|i| (i, 10)).collect();

        let batches = split_batches(&entries, 10, 1_000);

        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [10, 10, 3]
        );
        assert_eq!(batches.concat(), (0..23).collect::<Vec<_>>());
    }

    #[test]
    fn batches_stay_under_the_byte_limit() {
        let entries = [(0, 100 * 1024), (1, 100 * 1024), (2, 100 * 1024), (3, 10)];

        let batches = split_batches(&entries, 10, 256 * 1024);

        assert_eq!(batches, vec![vec![0, 1], vec![2, 3]]);
    }
}
