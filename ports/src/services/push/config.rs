//! How pushes and deliveries run: the settings the edges build from their configuration.

use std::time::Duration;

use wspush_domain::limits::{DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_POSTS_PER_SECOND};
use wspush_domain::{ContinuationLimits, RetryPolicy, Segment, SegmentError};

/// How a push runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushConfig {
    /// The most posts in flight at once (default 256).
    pub max_in_flight: usize,
    /// Connections asked of the store per page (default 500).
    pub page_size: usize,
    /// Audience sources (users, topics, broadcast segments) read at once (default 8).
    pub read_concurrency: usize,
    /// Segments a broadcast is read in, in parallel (default 4).
    pub broadcast_segments: u32,
    /// Retries of throttled and unavailable posts.
    pub retry: RetryPolicy,
    /// The most posts per second of all pushes of this service together (default 8,000),
    /// cut when the gateway answers 429 and raised again as posts get through (see
    /// [`Pacer`](wspush_domain::Pacer)); `None` for no ceiling.
    pub max_posts_per_second: Option<u32>,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            page_size: 500,
            read_concurrency: 8,
            broadcast_segments: 4,
            retry: RetryPolicy::default(),
            max_posts_per_second: Some(DEFAULT_MAX_POSTS_PER_SECOND),
        }
    }
}

/// A [`PushConfig`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushConfigError {
    /// `max_in_flight`, `page_size`, `read_concurrency` or `max_posts_per_second` was 0.
    #[error("push setting `{0}` must be at least 1")]
    Zero(&'static str),
    /// `broadcast_segments` was out of range.
    #[error("push setting `broadcast_segments`: {0}")]
    Segments(#[from] SegmentError),
}

/// How continuations are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContinuationConfig {
    /// The generation bound, and the largest message the queue takes.
    pub limits: ContinuationLimits,
    /// How long before the deadline the push stops starting posts (default 10 s): it must
    /// cover a post in flight (the API Gateway adapter's timeout is 5 s), enqueueing the
    /// continuations, and, for an audience whose sources overlap, reading the rest of it.
    pub deadline_margin: Duration,
    /// When broadcasts are scattered over other pusher instances; `None` never.
    pub scatter: Option<ScatterConfig>,
}

impl Default for ContinuationConfig {
    fn default() -> Self {
        Self {
            limits: ContinuationLimits::default(),
            deadline_margin: Duration::from_secs(10),
            scatter: None,
        }
    }
}

/// When and how a broadcast is scattered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScatterConfig {
    /// A broadcast is scattered once it has read more than this many connections.
    pub above: usize,
    /// The segments a scattered broadcast is split into (each one request).
    pub segments: u32,
}

impl ScatterConfig {
    /// A scatter of broadcasts above `above` connections into `segments` segments.
    pub fn new(above: usize, segments: u32) -> Result<Self, SegmentError> {
        Segment::all(segments)?;
        Ok(Self { above, segments })
    }
}

/// How the ledger is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerConfig {
    /// How long a completed request is remembered (default 24 hours).
    pub keep_completed: Duration,
    /// How long a claim lasts when the invocation has no deadline (default 15 minutes,
    /// Lambda's longest timeout); with a deadline the claim lasts until it.
    pub lease_without_deadline: Duration,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            keep_completed: Duration::from_secs(24 * 60 * 60),
            lease_without_deadline: Duration::from_secs(15 * 60),
        }
    }
}
