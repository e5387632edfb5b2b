//! The request ledger port: which notification requests were pushed, so that a redelivered
//! one is skipped.
//!
//! SQS delivers at least once and SNS retries failed invocations, so the same request can
//! reach the pusher twice. The pusher *claims* a request before pushing it (a conditional
//! write: only one claim holds at a time), records it *completed* when the push is done or
//! handed on to continuations, and *releases* the claim when it reports the request failed,
//! so that the retry may start at once.

use async_trait::async_trait;
use wspush_domain::{RequestId, Timestamp};

use crate::StoreError;

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The request is now claimed by the caller, until the lease it asked for ends.
    Claimed,
    /// The request was completed before: skip it.
    Completed,
    /// Another delivery holds an unexpired claim, until this time: retry later.
    InProgress {
        /// When that claim's lease ends.
        until: Timestamp,
    },
}

/// Records which requests were pushed.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RequestLedger: Send + Sync {
    /// Claims `id` until `lease_until`.
    ///
    /// MUST be atomic (one conditional write): of two concurrent claims of one ID at most
    /// one returns [`Claim::Claimed`]. MUST return [`Claim::Completed`] when the request was
    /// completed and that record has not expired at `now`, [`Claim::InProgress`] when
    /// another claim's lease has not ended at `now`, and MUST claim an ID whose earlier
    /// claim's lease has ended (its holder crashed or timed out).
    async fn claim(
        &self,
        id: &RequestId,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Claim, StoreError>;

    /// Records `id` as completed until `keep_until`, whoever holds its claim. After that the
    /// record MAY disappear (a store TTL) and MUST be ignored by [`claim`](Self::claim).
    async fn complete(&self, id: &RequestId, keep_until: Timestamp) -> Result<(), StoreError>;

    /// Drops the unfinished claim of `id` made with `lease_until`, so that the next delivery
    /// may claim it at once.
    ///
    /// MUST be idempotent, MUST NOT remove a completed record, and MUST NOT remove a claim
    /// made with another lease (one that took over after this claim's lease ended).
    async fn release(&self, id: &RequestId, lease_until: Timestamp) -> Result<(), StoreError>;
}
