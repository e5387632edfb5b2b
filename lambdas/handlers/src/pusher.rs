//! The pusher: notification requests from SQS batches, SNS, or a direct invoke.
//!
//! - **SQS**: the records of a batch are delivered concurrently, one tracing span each. The
//!   answer lists in `batchItemFailures` exactly the records that were malformed or whose
//!   delivery failed (see [`Delivery`]), so SQS retries them or moves them to the dead-letter
//!   queue (the event source mapping must enable `ReportBatchItemFailures`).
//! - **SNS** invokes asynchronously, one record at a time: a malformed or failed record fails
//!   the invocation, so Lambda retries it and then hands it to the function's on-failure
//!   destination or dead-letter queue.
//! - **Direct invoke**: the payload is a notification request; the answer is the push report
//!   with the delivery's `outcome`.
//!
//! Each request is delivered through [`PushService::deliver`]: with the invocation's deadline
//! (continuations carry what the deadline leaves, when a queue is configured), and with the
//! SQS or SNS message ID as the request's ID when it has no `id` of its own (a redelivered
//! request is then skipped when a ledger is configured).
//!
//! A payload with an `"action"` is a control request (`disconnect`, `subscribe`,
//! `unsubscribe`; see [`wspush_domain::control`]), a sibling of the notification requests on
//! the same queue: it is carried out by the [`ControlService`](wspush_ports::ControlService)
//! over the same store and gateway, and reported failed (so retried) like a delivery.
//!
//! The handler takes the raw payload text, so a request's `data` is sent exactly as its
//! producer wrote it (key order, number spelling) and duplicate fields are caught.

use aws_lambda_events::event::sns::SnsEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;
use tracing::Instrument;
use wspush_domain::{
    ControlError, ControlRequest, NotificationRequest, RequestError, RequestId, is_control_request,
};
use wspush_ports::{
    ConnectionGateway, ConnectionStore, ControlFailure, ControlReport, Delivery, DeliveryContext,
    DeliveryFailure, PushService, with_causes,
};

/// Why a pusher invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum PusherError {
    /// The payload is neither an SQS event, an SNS event nor a notification request.
    #[error("unrecognised invocation payload: {0}")]
    Event(#[source] serde_json::Error),
    /// A notification request was malformed.
    #[error("invalid notification request: {0}")]
    Request(#[from] RequestError),
    /// A control request was malformed.
    #[error("invalid control request: {0}")]
    Control(#[from] ControlError),
    /// A control request failed and must be retried by its source.
    #[error("control request failed: {0}")]
    ControlFailed(#[source] ControlFailure),
    /// A delivery failed and must be retried by its source.
    #[error("delivery failed: {0}")]
    Failed(DeliveryFailure),
    /// Another delivery is pushing the request now: it must be retried by its source.
    #[error("delivery failed: request {0} is being pushed by another delivery")]
    InProgress(RequestId),
    /// An SQS record without a `messageId` failed: `batchItemFailures` cannot name it, so
    /// the whole invocation fails and SQS delivers the batch again rather than delete it.
    #[error(
        "an SQS record without a messageId failed; failing the invocation so that SQS delivers the whole batch again"
    )]
    UnnamedRecord,
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

/// Handles any pusher invocation, given its raw JSON payload and the invocation's deadline.
pub async fn handle_invocation<S, G>(
    payload: &str,
    service: &PushService<S, G>,
    deadline: Option<Instant>,
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
            let answer = handle_sqs(event, service, deadline).await?;
            serde_json::to_value(answer).map_err(PusherError::Event)
        }
        Some(record) if record.sns_source.as_deref() == Some("aws:sns") => {
            let event: SnsEvent = serde_json::from_str(payload).map_err(PusherError::Event)?;
            let deliveries = handle_sns(event, service, deadline).await?;
            Ok(json!({ "pushed": deliveries.len() }))
        }
        _ => match deliver_text(payload, service, deadline, None).await? {
            Handled::Delivered(delivery) => Ok(delivery_answer(&delivery)),
            Handled::Controlled(report) => Ok(control_answer(&report)),
        },
    }
}

/// What one payload came to: a notification request's delivery, or a control request's
/// report.
#[derive(Debug)]
// A delivery is the common case and is moved once; boxing it would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub enum Handled {
    /// A notification request, delivered (or not: see [`Delivery::succeeded`]).
    Delivered(Delivery),
    /// A control request, carried out.
    Controlled(ControlReport),
}

impl Handled {
    /// Whether nothing is left to retry.
    pub fn succeeded(&self) -> bool {
        match self {
            Handled::Delivered(delivery) => delivery.succeeded(),
            Handled::Controlled(_) => true,
        }
    }

    /// The answer to a direct invoke or a local `POST /notifications`.
    pub fn answer(&self) -> Value {
        match self {
            Handled::Delivered(delivery) => delivery_answer(delivery),
            Handled::Controlled(report) => control_answer(report),
        }
    }
}

/// A control request's report, with `"complete": true` (a failed one is an error instead).
pub fn control_answer(report: &ControlReport) -> Value {
    let mut answer = serde_json::to_value(report).unwrap_or_else(|_| json!({}));
    if let Some(fields) = answer.as_object_mut() {
        fields.insert("complete".into(), Value::Bool(true));
        fields.insert("outcome".into(), Value::from("complete"));
    }
    answer
}

/// The answer to a direct invoke or a local `POST /notifications`: the push report, with
/// `complete`, the delivery's `outcome`, and its `reason` or request `id` when it has one.
pub fn delivery_answer(delivery: &Delivery) -> Value {
    let mut answer = delivery
        .report()
        .and_then(|report| serde_json::to_value(report).ok())
        .unwrap_or_else(|| json!({}));
    if let Some(fields) = answer.as_object_mut() {
        let complete = delivery.report().is_some_and(|report| report.is_complete());
        fields.insert("complete".into(), Value::Bool(complete));
        fields.insert("outcome".into(), Value::from(delivery.outcome()));
        match delivery {
            Delivery::Failed { reason, .. } => {
                fields.insert("reason".into(), Value::from(reason.to_string()));
            }
            Delivery::Duplicate(id) | Delivery::InProgress { id, .. } => {
                fields.insert("id".into(), Value::from(id.as_str()));
            }
            Delivery::Complete(_) | Delivery::Continued(_) => {}
        }
    }
    answer
}

/// Delivers every record of an SQS batch concurrently; the answer names the records to retry.
/// A failed record that has no `messageId` (SQS always sets one) fails the whole invocation
/// instead, since leaving it out of the answer would have SQS delete it.
pub async fn handle_sqs<S, G>(
    event: SqsEvent,
    service: &PushService<S, G>,
    deadline: Option<Instant>,
) -> Result<SqsBatchResponse, PusherError>
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
            let failed = !deliver_sqs_message(&message, service, deadline).await;
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
            None => {
                tracing::error!("an SQS record without a messageId failed; failing the batch");
                return Err(PusherError::UnnamedRecord);
            }
        }
    }
    Ok(answer)
}

/// Whether the message's delivery succeeded (nothing to retry).
async fn deliver_sqs_message<S, G>(
    message: &SqsMessage,
    service: &PushService<S, G>,
    deadline: Option<Instant>,
) -> bool
where
    S: ConnectionStore + ?Sized,
    G: ConnectionGateway + ?Sized,
{
    let Some(body) = message.body.as_deref() else {
        tracing::error!("the SQS message has no body; reporting it failed");
        return false;
    };
    match deliver_text(body, service, deadline, message.message_id.as_deref()).await {
        Ok(handled) => handled.succeeded(),
        Err(_) => false,
    }
}

/// Delivers each SNS record; the first malformed or failed one fails the invocation.
pub async fn handle_sns<S, G>(
    event: SnsEvent,
    service: &PushService<S, G>,
    deadline: Option<Instant>,
) -> Result<Vec<Delivery>, PusherError>
where
    S: ConnectionStore + ?Sized,
    G: ConnectionGateway + ?Sized,
{
    let mut deliveries = Vec::with_capacity(event.records.len());
    for record in event.records {
        let span = tracing::info_span!("sns_record", message_id = %record.sns.message_id);
        let handled = deliver_text(
            &record.sns.message,
            service,
            deadline,
            Some(&record.sns.message_id),
        )
        .instrument(span)
        .await?;
        let delivery = match handled {
            Handled::Delivered(delivery) => delivery,
            Handled::Controlled(_) => continue,
        };
        match delivery {
            Delivery::Failed { reason, .. } => return Err(PusherError::Failed(reason)),
            Delivery::InProgress { id, .. } => return Err(PusherError::InProgress(id)),
            Delivery::Complete(_) | Delivery::Continued(_) | Delivery::Duplicate(_) => {
                deliveries.push(delivery);
            }
        }
    }
    Ok(deliveries)
}

/// Parses and delivers one notification request (or carries out one control request), the
/// text of a direct invoke, an SQS message's body or an SNS message, before `deadline`.
/// `message_id` is the ID of the SQS or SNS message that carried it, the request's ID when
/// it has no `id` of its own.
pub async fn deliver_text<S, G>(
    text: &str,
    service: &PushService<S, G>,
    deadline: Option<Instant>,
    message_id: Option<&str>,
) -> Result<Handled, PusherError>
where
    S: ConnectionStore + ?Sized,
    G: ConnectionGateway + ?Sized,
{
    if is_control_request(text) {
        let request = ControlRequest::parse(text).inspect_err(|error| {
            // The error names fields and rules, never a value of the request.
            tracing::error!(
                %error,
                field = error.field(),
                message_id,
                "malformed control request; reporting it failed"
            );
        })?;
        let request_id = request.id().map(RequestId::as_str).or(message_id);
        return match service.control().apply(&request).await {
            Ok(report) => {
                tracing::info!(
                    action = report.action,
                    request_id,
                    connections = report.connections,
                    "control request done"
                );
                Ok(Handled::Controlled(report))
            }
            Err(failure) => {
                tracing::error!(
                    action = request.action().as_str(),
                    request_id,
                    error = %with_causes(&failure),
                    "control request failed; reporting it failed"
                );
                Err(PusherError::ControlFailed(failure))
            }
        };
    }
    deliver_notification(text, service, deadline, message_id)
        .await
        .map(Handled::Delivered)
}

async fn deliver_notification<S, G>(
    text: &str,
    service: &PushService<S, G>,
    deadline: Option<Instant>,
    message_id: Option<&str>,
) -> Result<Delivery, PusherError>
where
    S: ConnectionStore + ?Sized,
    G: ConnectionGateway + ?Sized,
{
    let context = DeliveryContext {
        deadline,
        message_id: request_id_of(message_id),
    };
    let request = NotificationRequest::parse(text).inspect_err(|error| {
        tracing::error!(
            error = error.redacted(),
            field = error.field(),
            "malformed notification request; reporting it failed"
        );
    })?;
    let delivery = service.deliver(&request, &context).await;
    tracing::info!(
        outcome = delivery.outcome(),
        request_id = request
            .id()
            .or(context.message_id.as_ref())
            .map(RequestId::as_str),
        generation = request.generation(),
        "delivery finished"
    );
    Ok(delivery)
}

/// A message ID as a request ID; `None` (no idempotency) for one that breaks the rules,
/// which SQS and SNS never send.
fn request_id_of(id: Option<&str>) -> Option<RequestId> {
    let id = id?;
    RequestId::parse(id)
        .inspect_err(|error| tracing::warn!(%error, "the message ID cannot serve as a request ID"))
        .ok()
}
