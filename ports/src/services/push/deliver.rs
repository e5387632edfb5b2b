//! Delivering a notification request as the pusher's edge does: idempotently, within the
//! invocation's deadline, handing what is left to the notification queue.
//!
//! [`PushService::deliver`] wraps a push:
//!
//! 1. **Redelivery.** With a [`RequestLedger`], the request's ID (its `id` field, else the
//!    SQS or SNS message ID) is claimed first. A request completed before is skipped
//!    ([`Delivery::Duplicate`]); one that another delivery is pushing right now is answered
//!    [`Delivery::InProgress`], which the edge reports failed so that SQS tries again later.
//! 2. **History.** A request that names history streams is appended to each of them (once
//!    per ID, see `append`) before its audience is read, and its continuations carry its
//!    positions.
//! 3. **Deadline.** With continuations, the push stops starting posts at the deadline minus
//!    a safety margin.
//! 4. **Scatter.** With continuations and a scatter threshold, a broadcast is read in many
//!    segments and, once more connections than the threshold were read, the segments left
//!    are enqueued as segment requests for other pusher instances.
//! 5. **Continuations.** What the push left (see [`wspush_domain::continuation`]) is
//!    enqueued as narrowed requests. Connections that still failed after their retries, or
//!    whose retry the stop point cut off, go to the next generation, up to the bound; past
//!    it, the request fails. A run stopped at its deadline without progress (see
//!    `Run::progressed`) fails instead of handing the same work on again.
//! 6. The request is recorded completed when it was pushed or handed on in full, and its
//!    claim is released when it failed, so that its retry may start at once.

use std::time::Duration;

use tokio::time::Instant;
use wspush_domain::{NotificationRequest, RequestId, Timestamp, plan_continuations};

use crate::causes::with_causes;
use crate::gateway::ConnectionGateway;
use crate::ledger::{Claim, RequestLedger};
use crate::publisher::NotificationPublisher;
use crate::report::{PushReport, Stop};
use crate::services::push::PushService;
use crate::services::push::config::LedgerConfig;
use crate::services::push::failure::{DeliveryFailure, EnqueueFailure, Shortfall};
use crate::services::push::plan::Plan;
use crate::store::ConnectionStore;

/// How long a claim outlasts the invocation's deadline: room for clock skew between pusher
/// instances, so that no redelivery takes over a claim whose holder is still settling.
pub const LEASE_SLACK: Duration = Duration::from_secs(30);

/// What the edge knows about one delivery of a request.
#[derive(Debug, Clone, Default)]
pub struct DeliveryContext {
    /// When the invocation is killed (Lambda's deadline), if it is.
    pub deadline: Option<Instant>,
    /// The ID of the message that carried the request (SQS or SNS), used when the request
    /// has no `id` of its own.
    pub message_id: Option<RequestId>,
}

/// How a delivery ended.
#[derive(Debug, PartialEq)]
pub enum Delivery {
    /// Every connection of the audience was reached (or pruned).
    Complete(PushReport),
    /// Part was pushed and the rest was enqueued as continuations (`report.continuations`).
    Continued(PushReport),
    /// The request was completed by an earlier delivery: skipped.
    Duplicate(RequestId),
    /// Another delivery is pushing this request now.
    InProgress {
        /// The request.
        id: RequestId,
        /// When that delivery's claim ends.
        until: Timestamp,
    },
    /// The request must be reported failed to its source, so that it is retried or
    /// dead-lettered.
    Failed {
        /// What the push did, if it ran.
        report: Option<PushReport>,
        /// Why.
        reason: DeliveryFailure,
    },
}

impl Delivery {
    /// Whether the source may forget the request (complete, continued, or a duplicate).
    pub fn succeeded(&self) -> bool {
        matches!(
            self,
            Delivery::Complete(_) | Delivery::Continued(_) | Delivery::Duplicate(_)
        )
    }

    /// The push's report, if it ran.
    pub fn report(&self) -> Option<&PushReport> {
        match self {
            Delivery::Complete(report) | Delivery::Continued(report) => Some(report),
            Delivery::Failed { report, .. } => report.as_ref(),
            Delivery::Duplicate(_) | Delivery::InProgress { .. } => None,
        }
    }

    /// A one-word name of the outcome, for logs and answers.
    pub fn outcome(&self) -> &'static str {
        match self {
            Delivery::Complete(_) => "complete",
            Delivery::Continued(_) => "continued",
            Delivery::Duplicate(_) => "duplicate",
            Delivery::InProgress { .. } => "in_progress",
            Delivery::Failed { .. } => "failed",
        }
    }
}

impl<S, G> PushService<S, G>
where
    S: ConnectionStore + ?Sized,
    G: ConnectionGateway + ?Sized,
{
    /// Delivers `request` (see the module docs): the edge reports it failed to its source
    /// unless [`Delivery::succeeded`].
    pub async fn deliver(
        &self,
        request: &NotificationRequest,
        context: &DeliveryContext,
    ) -> Delivery {
        let request = &*self.audience_reading(request);
        let id = request.id().or(context.message_id.as_ref());
        let claimed = match (&self.ledger, id) {
            (Some((ledger, config)), Some(id)) => {
                match self.claim(ledger.as_ref(), config, id, context).await {
                    Ok(lease_until) => Some((ledger, config, id, lease_until)),
                    Err(early) => return early,
                }
            }
            _ => None,
        };
        let appended = match self.append(request, id).await {
            Ok(appended) => appended,
            Err(error) => {
                if let Some((ledger, config, id, lease_until)) = claimed {
                    self.settle(ledger.as_ref(), config, id, lease_until, false)
                        .await;
                }
                tracing::warn!(error = %with_causes(&error), "the request must be retried by its source");
                return Delivery::Failed {
                    report: None,
                    reason: DeliveryFailure::History(error),
                };
            }
        };
        let (request, appends) = match &appended {
            Some(appended) => (&appended.request, appended.appends),
            None => (request, 0),
        };
        let plan = match &self.continuations {
            Some((_, config)) => Plan::for_delivery(request, context.deadline, config),
            None => Plan::default(),
        };
        let run = self.run(request, &plan).await;
        let mut report = run.report;
        report.history_appends = appends;
        let outcome = if run.leftover.is_empty() && report.is_complete() {
            Ok(())
        } else if let Some(error) = run.halted {
            Err(DeliveryFailure::Halted(error))
        } else if let Some((publisher, config)) = &self.continuations {
            if report.stopped == Some(Stop::Deadline) && !run.progressed {
                Err(DeliveryFailure::NoProgress)
            } else {
                match plan_continuations(request, id, run.leftover, config.limits) {
                    Ok(continuations) => self
                        .enqueue(publisher.as_ref(), &continuations)
                        .await
                        .map(|enqueued| report.continuations = enqueued)
                        .map_err(DeliveryFailure::from),
                    Err(error) => Err(error.into()),
                }
            }
        } else {
            Err(DeliveryFailure::Incomplete(Shortfall::of(&report)))
        };
        if let Some((ledger, config, id, lease_until)) = claimed {
            self.settle(ledger.as_ref(), config, id, lease_until, outcome.is_ok())
                .await;
        }
        self.observe(request, &report);
        match outcome {
            Ok(()) if report.continuations > 0 => Delivery::Continued(report),
            Ok(()) => Delivery::Complete(report),
            Err(reason) => {
                tracing::warn!(%reason, "the request must be retried by its source");
                Delivery::Failed {
                    report: Some(report),
                    reason,
                }
            }
        }
    }

    /// Claims `id` (returning the claim's lease), or says how the delivery ends without a
    /// push. With a deadline the lease outlasts it by [`LEASE_SLACK`], for clock skew
    /// between pusher instances.
    async fn claim(
        &self,
        ledger: &dyn RequestLedger,
        config: &LedgerConfig,
        id: &RequestId,
        context: &DeliveryContext,
    ) -> Result<Timestamp, Delivery> {
        let now = self.clock.now();
        let lease = context
            .deadline
            .map_or(config.lease_without_deadline, |deadline| {
                deadline.saturating_duration_since(Instant::now()) + LEASE_SLACK
            });
        let lease_until = now.saturating_add(lease);
        match ledger.claim(id, now, lease_until).await {
            Ok(Claim::Claimed) => Ok(lease_until),
            Ok(Claim::Completed) => {
                tracing::info!(request_id = %id, "skipping a request that was already pushed");
                Err(Delivery::Duplicate(id.clone()))
            }
            Ok(Claim::InProgress { until }) => {
                tracing::warn!(request_id = %id, until_ms = until.unix_millis(), "another delivery is pushing this request; it will be retried");
                Err(Delivery::InProgress {
                    id: id.clone(),
                    until,
                })
            }
            Err(error) => Err(Delivery::Failed {
                report: None,
                reason: DeliveryFailure::Claim {
                    id: id.clone(),
                    error,
                },
            }),
        }
    }

    /// Records the outcome in the ledger. A failure to record is logged, not fatal: the
    /// push itself is done (or reported failed) either way.
    async fn settle(
        &self,
        ledger: &dyn RequestLedger,
        config: &LedgerConfig,
        id: &RequestId,
        lease_until: Timestamp,
        succeeded: bool,
    ) {
        let result = if succeeded {
            let keep_until = self.clock.now().saturating_add(config.keep_completed);
            ledger.complete(id, keep_until).await
        } else {
            ledger.release(id, lease_until).await
        };
        if let Err(error) = result {
            tracing::error!(request_id = %id, succeeded, error = %with_causes(&error), "recording the request in the ledger failed; a redelivery may push it again");
        }
    }

    /// Enqueues continuations; how many, or why not all.
    async fn enqueue(
        &self,
        publisher: &dyn NotificationPublisher,
        continuations: &[NotificationRequest],
    ) -> Result<usize, EnqueueFailure> {
        let results = publisher.publish_batch(continuations).await;
        let mut refused = results.into_iter().filter_map(Result::err);
        if let Some(first) = refused.next() {
            return Err(EnqueueFailure {
                failed: 1 + refused.count(),
                of: continuations.len(),
                first,
            });
        }
        tracing::info!(
            continuations = continuations.len(),
            "enqueued continuations"
        );
        Ok(continuations.len())
    }
}
