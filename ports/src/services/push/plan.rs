//! How one run of a push may stop early, and what a run did and left.

use std::sync::Arc;

use tokio::time::Instant;
use wspush_domain::{Leftover, NotificationRequest, Segment};

use crate::gateway::GatewayError;
use crate::report::PushReport;
use crate::services::push::config::ContinuationConfig;

/// How one run of a push may stop early.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    /// Start no post (nor retry) at or after this instant.
    pub stop_at: Option<Instant>,
    /// Stop reading a broadcast once more than this many connections were read.
    pub scatter_above: Option<usize>,
    /// The segments a broadcast is read in; the service's own when empty.
    pub segments: Vec<Segment>,
}

impl Plan {
    /// The stop point (`deadline` less the margin) and the scatter for `request`, delivered
    /// with continuations made under `config`.
    pub(crate) fn for_delivery(
        request: &NotificationRequest,
        deadline: Option<Instant>,
        config: &ContinuationConfig,
    ) -> Self {
        let mut plan = Plan {
            stop_at: deadline.map(|deadline| {
                deadline
                    .checked_sub(config.deadline_margin)
                    .unwrap_or(deadline)
            }),
            ..Plan::default()
        };
        if let Some(scatter) = config.scatter
            && request.is_broadcast()
            && request.segment().is_none()
            && let Ok(segments) = Segment::all(scatter.segments)
        {
            plan.scatter_above = Some(scatter.above);
            plan.segments = segments;
        }
        plan
    }
}

/// What a run did, and what it left.
pub(crate) struct Run {
    pub report: PushReport,
    pub leftover: Leftover,
    /// Whether any connection was settled (delivered, pruned, failed, or skipped by the
    /// targeting) or left to retry a generation later, a page was read that handed nothing
    /// on, or a user, topic or segment was read to its end: a run that leaves everything it
    /// touched for later as it was must not be continued, or it could be continued for ever.
    pub progressed: bool,
    /// The error that stopped every post, if one did (see `report.aborted`).
    pub halted: Option<Arc<GatewayError>>,
}
