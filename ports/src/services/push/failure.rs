//! Why a delivery must be reported failed to its source: typed, so that an edge can decide
//! on it, and turned into words only where it is logged or answered.

use std::sync::Arc;

use wspush_domain::{ContinuationError, RequestId};

use crate::causes::Causes;
use crate::gateway::GatewayError;
use crate::publisher::PublishError;
use crate::report::PushReport;
use crate::store::StoreError;

/// Why a delivery failed: its source must retry the request or dead-letter it.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryFailure {
    /// Claiming the request in the ledger failed, so it was not pushed.
    #[error("claiming request {id} failed: {}", Causes(error))]
    Claim {
        /// The request.
        id: RequestId,
        /// The ledger's error.
        error: StoreError,
    },
    /// Appending the request to its history streams failed, so it was not pushed.
    #[error("appending the request to its history streams failed: {}", Causes(.0))]
    History(StoreError),
    /// A post showed that no other could succeed (the gateway refused access, 403).
    #[error("the push stopped: {}", Causes(.0.as_ref()))]
    Halted(Arc<GatewayError>),
    /// The stop point before the deadline came before the run settled anything.
    #[error(
        "the stop point before the deadline came before any progress \
         (no connection settled or left to retry, no source read to its end); \
         raise the function's timeout or lower the deadline margin"
    )]
    NoProgress,
    /// What the push left cannot be continued (the generation bound, for one).
    #[error(transparent)]
    Continuations(#[from] ContinuationError),
    /// Continuations were planned but not all of them reached the queue.
    #[error(transparent)]
    Enqueue(#[from] EnqueueFailure),
    /// Without continuations, the push left part of its audience unreached.
    #[error("{0}")]
    Incomplete(Shortfall),
}

/// Failures compare by kind and by what they say: the causes they hold are errors, which do
/// not compare.
impl PartialEq for DeliveryFailure {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.to_string() == other.to_string()
    }
}

/// Continuations that could not be enqueued.
#[derive(Debug, thiserror::Error)]
#[error(
    "{failed} of {of} continuations could not be enqueued: {}",
    Causes(first)
)]
pub struct EnqueueFailure {
    /// How many were refused.
    pub failed: usize,
    /// How many there were.
    pub of: usize,
    /// The first refusal.
    pub first: PublishError,
}

/// What a push without continuations left unreached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// Connections delivered to.
    pub delivered: usize,
    /// Connections that failed after their retries.
    pub failed: usize,
    /// Connections never posted to.
    pub not_attempted: usize,
    /// Audience reads that failed.
    pub read_errors: usize,
    /// The first read error, in words.
    pub first_read_error: Option<String>,
}

impl Shortfall {
    /// What `report` left unreached.
    pub fn of(report: &PushReport) -> Self {
        Self {
            delivered: report.delivered,
            failed: report.failed.len(),
            not_attempted: report.not_attempted,
            read_errors: report.read_errors.len(),
            first_read_error: report.read_errors.first().cloned(),
        }
    }
}

impl std::fmt::Display for Shortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the push did not reach every connection: delivered {}, failed {}, not attempted {}, read errors {}",
            self.delivered, self.failed, self.not_attempted, self.read_errors
        )?;
        if let Some(first) = &self.first_read_error {
            write!(f, " (first: {first})")?;
        }
        Ok(())
    }
}
