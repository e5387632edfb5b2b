//! The pusher: notification requests from SQS batches, SNS, or a direct invoke.
//!
//! - **SQS**: the records of a batch are pushed concurrently, one tracing span each. The
//!   answer lists in `batchItemFailures` exactly the records that were malformed or whose push
//!   did not reach every connection, so SQS retries them or moves them to the dead-letter
//!   queue (the event source mapping must enable `ReportBatchItemFailures`). A retried record
//!   is pushed again to its whole audience: delivery is at least once.
//! - **SNS** invokes asynchronously, one record at a time: a malformed or incomplete record
//!   fails the invocation, so Lambda retries it and then hands it to the function's on-failure
//!   destination or dead-letter queue.
//! - **Direct invoke**: the payload is a notification request; the answer is the push report.
//!
//! The handler takes the raw payload text, so a request's `data` is sent exactly as its
//! producer wrote it (key order, number spelling) and duplicate fields are caught.

use aws_lambda_events::event::sns::SnsEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::Instrument;
use wspush_domain::{NotificationRequest, RequestError};
use wspush_ports::{ConnectionGateway, ConnectionStore, PushReport, PushService};

/// Why a pusher invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum PusherError {
    /// The payload is neither an SQS event, an SNS event nor a notification request.
    #[error("unrecognised invocation payload: {0}")]
    Event(#[source] serde_json::Error),
    /// A notification request was malformed.
    #[error("invalid notification request: {0}")]
    Request(#[from] RequestError),
    /// A push did not reach every connection of its audience.
    #[error("the push did not reach every connection: {0}")]
    Incomplete(String),
}

/// Top-level shape of an event: only events have `Records` (a notification request with it
/// would be rejected as an unknown field).
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "Records")]
    records: Option<Vec<RecordProbe>>,
}

#[derive(Deserialize)]
struct RecordProbe {
    #[serde(rename = "eventSource")]
    sqs_source: Option<String>,
    #[serde(rename = "EventSource")]
    sns_source: Option<String>,
}

/// Handles any pusher invocation, given its raw JSON payload.
pub async fn handle_invocation<S, G>(
    payload: &str,
    service: &PushService<S, G>,
) -> Result<Value, PusherError>
where
    S: ConnectionStore + ?Sized,
    G: ConnectionGateway + ?Sized,
{
    let probe = serde_json::from_str::<Probe>(payload).ok();
    let first = probe
        .as_ref()
        .and_then(|probe| probe.records.as_ref())
        .and_then(|records| records.first());
    match first {
        Some(record) if record.sqs_source.as_deref() == Some("aws:sqs") => {
            let event: SqsEvent = serde_json::from_str(payload).map_err(PusherError::Event)?;
            let answer = handle_sqs(event, service).await;
            serde_json::to_value(answer).map_err(PusherError::Event)
        }
        Some(record) if record.sns_source.as_deref() == Some("aws:sns") => {
            let event: SnsEvent = serde_json::from_str(payload).map_err(PusherError::Event)?;
            let reports = handle_sns(event, service).await?;
            Ok(json!({ "pushed": reports.len() }))
        }
        _ => {
            let report = handle_direct(payload, service).await?;
            let mut answer = serde_json::to_value(&report).map_err(PusherError::Event)?;
            if let Some(fields) = answer.as_object_mut() {
                fields.insert("complete".into(), Value::Bool(report.is_complete()));
            }
            Ok(answer)
        }
    }
}

/// Pushes every record of an SQS batch concurrently; the answer names the records to retry.
pub async fn handle_sqs<S, G>(event: SqsEvent, service: &PushService<S, G>) -> SqsBatchResponse
where
    S: ConnectionStore + ?Sized,
    G: ConnectionGateway + ?Sized,
{
    let outcomes = join_all(event.records.into_iter().map(|message| {
        let span = tracing::info_span!(
            "sqs_record",
            message_id = message.message_id.as_deref().unwrap_or("")
        );
        async move {
            let failed = !push_sqs_message(&message, service).await;
            (message.message_id, failed)
        }
        .instrument(span)
    }))
    .await;
    let mut answer = SqsBatchResponse::default();
    for (message_id, failed) in outcomes {
        if !failed {
            continue;
        }
        match message_id {
            Some(id) => {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                answer.batch_item_failures.push(failure);
            }
            // Cannot name it, so fail it loudly instead: SQS never sends such a record.
            None => tracing::error!("an SQS record without a messageId failed"),
        }
    }
    answer
}

/// Whether the message's push is done (nothing to retry).
async fn push_sqs_message<S, G>(message: &SqsMessage, service: &PushService<S, G>) -> bool
where
    S: ConnectionStore + ?Sized,
    G: ConnectionGateway + ?Sized,
{
    let Some(body) = message.body.as_deref() else {
        tracing::error!("the SQS message has no body; reporting it failed");
        return false;
    };
    match NotificationRequest::parse(body) {
        Ok(request) => {
            let report = service.push(&request).await;
            if !report.is_complete() {
                tracing::warn!(summary = %summary(&report), "push incomplete; reporting the message failed");
            }
            report.is_complete()
        }
        Err(error) => {
            tracing::error!(%error, field = error.field(), "malformed notification request; reporting the message failed");
            false
        }
    }
}

/// Pushes each SNS record; the first malformed or incomplete one fails the invocation.
pub async fn handle_sns<S, G>(
    event: SnsEvent,
    service: &PushService<S, G>,
) -> Result<Vec<PushReport>, PusherError>
where
    S: ConnectionStore + ?Sized,
    G: ConnectionGateway + ?Sized,
{
    let mut reports = Vec::with_capacity(event.records.len());
    for record in event.records {
        let span = tracing::info_span!("sns_record", message_id = %record.sns.message_id);
        let report = handle_direct(&record.sns.message, service)
            .instrument(span)
            .await?;
        if !report.is_complete() {
            return Err(PusherError::Incomplete(summary(&report)));
        }
        reports.push(report);
    }
    Ok(reports)
}

/// Parses and pushes one notification request.
pub async fn handle_direct<S, G>(
    text: &str,
    service: &PushService<S, G>,
) -> Result<PushReport, PusherError>
where
    S: ConnectionStore + ?Sized,
    G: ConnectionGateway + ?Sized,
{
    let request = NotificationRequest::parse(text).inspect_err(|error| {
        tracing::error!(%error, field = error.field(), "malformed notification request");
    })?;
    Ok(service.push(&request).await)
}

fn summary(report: &PushReport) -> String {
    let mut text = format!(
        "delivered {}, failed {}, not attempted {}, read errors {}",
        report.delivered,
        report.failed.len(),
        report.not_attempted,
        report.read_errors.len()
    );
    if let Some(reason) = &report.aborted {
        text.push_str(&format!(", aborted: {reason}"));
    }
    text
}
