//! What a push did: the report the pusher's edge answers with, the metrics read and the
//! observers are told. Plain data, so that the observer port and every edge can take it
//! without knowing the push service.

use std::time::Duration;

use serde::{Serialize, Serializer};
use wspush_domain::ConnectionId;

/// Why one connection did not get the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailureReason {
    /// Still throttled (429) when the retries ran out.
    Throttled,
    /// Still unavailable (5xx, timeout) when the retries ran out.
    Unavailable {
        /// The last error, with its causes.
        message: String,
    },
    /// Over the gateway's message limit (413).
    PayloadTooLarge,
    /// Access refused (403): the push stopped here.
    Forbidden {
        /// The error, with its causes.
        message: String,
    },
    /// Anything else.
    Unknown {
        /// The error, with its causes.
        message: String,
    },
}

/// A connection that did not get the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedDelivery {
    /// The connection.
    pub connection: ConnectionId,
    /// Why.
    pub reason: FailureReason,
    /// Posts tried.
    pub attempts: u32,
}

/// Why a push stopped before its audience was finished, on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// The stop point before the invocation's deadline came: no new post was started.
    Deadline,
    /// A broadcast turned out larger than the scatter threshold: reading stopped, and the
    /// segments left are handed to other pusher instances.
    Scatter,
}

/// What a push did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PushReport {
    /// Connections that received the request.
    pub delivered: usize,
    /// Gone connections (410) this push removed from the store with their subscriptions.
    /// A connection is counted by the one push (or prune) that removed it, however many
    /// concurrent pushes found it gone.
    pub pruned: usize,
    /// Gone connections (410) that another push, a prune or their `$disconnect` had
    /// removed from the store by the time this push got to them.
    #[serde(skip_serializing_if = "is_zero")]
    pub already_pruned: usize,
    /// Gone connections whose removal failed; the store's TTL will remove them.
    pub prune_errors: usize,
    /// Connections that did not receive the request after the retries allowed.
    pub failed: Vec<FailedDelivery>,
    /// Connections never posted to because the push stopped (see `aborted`).
    pub not_attempted: usize,
    /// Connections skipped by `exclude_users` or `exclude_connections`.
    pub excluded: usize,
    /// Connections reached through more than one source and sent to once.
    pub duplicates: usize,
    /// Posts repeated after a 429 or a 5xx.
    pub retries: usize,
    /// 429 answers received.
    pub throttled: usize,
    /// Audience reads that failed; the connections behind them were not reached.
    pub read_errors: Vec<String>,
    /// Why the push stopped early, if it did.
    pub aborted: Option<String>,
    /// Why the push stopped before finishing its audience on purpose, if it did.
    pub stopped: Option<Stop>,
    /// Connections read and admitted but not delivered because of the stop: never posted
    /// to, or answered 429 or 5xx with their retry falling after the stop point.
    pub unsent: usize,
    /// Audience sources (users, topics, segments) not read to their end because of the stop.
    pub unread_sources: usize,
    /// Continuation requests enqueued for what was left (see `PushService::deliver`).
    pub continuations: usize,
    /// History streams the request was appended to by this delivery (0 for a request of no
    /// history stream, a redelivery, and a continuation).
    #[serde(skip_serializing_if = "is_zero")]
    pub history_appends: usize,
    /// Wall time of the push.
    #[serde(rename = "elapsed_ms", serialize_with = "as_millis")]
    pub elapsed: Duration,
}

impl PushReport {
    /// Whether every connection of the audience was reached: nothing failed, nothing left
    /// unread, nothing left unsent. A record whose push is not complete must be reported as
    /// failed to its source so that it is retried.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
            && self.read_errors.is_empty()
            && self.aborted.is_none()
            && self.not_attempted == 0
            && self.unsent == 0
            && self.unread_sources == 0
    }
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

fn as_millis<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}
