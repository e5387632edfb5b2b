//! The push service: one notification request to every connection of its audience.
//!
//! The audience is read from the store as a stream of pages while posts are under way
//! (pipelined), so memory stays flat however large the audience is. At most
//! [`PushConfig::max_in_flight`] posts are in flight at any moment. Gone connections are
//! pruned; throttled and unavailable answers are retried with full-jitter backoff within the
//! [`RetryPolicy`]'s attempts and time budget; a 403 stops the push, since every other post
//! would fail the same way. Every post of every push of one service waits its turn under one
//! shared rate ([`PushConfig::max_posts_per_second`]), which 429 answers cut and deliveries
//! raise again, so that a throttled gateway sees the whole instance slow down, not only the
//! retries.

use std::error::Error as StdError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use serde::{Serialize, Serializer};
use tokio::sync::mpsc;
use tokio::time::Instant;
use wspush_domain::limits::{DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_POSTS_PER_SECOND};
use wspush_domain::{
    Admission, Connection, ConnectionId, NotificationRequest, Pacer, RetryPolicy, Segment,
    SegmentError, Source, Targeting, Timestamp,
};

use crate::clock::Clock;
use crate::gateway::{ConnectionGateway, GatewayError};
use crate::observer::PushObserver;
use crate::store::{ConnectionStore, stream_source};

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
    /// [`Pacer`]); `None` for no ceiling.
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

/// What a push did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PushReport {
    /// Connections that received the request.
    pub delivered: usize,
    /// Gone connections (410) removed from the store with their subscriptions.
    pub pruned: usize,
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
    }
}

impl PushReport {
    fn record(&mut self, attempt: Attempt) {
        self.retries += attempt.retries as usize;
        self.throttled += attempt.throttled as usize;
        match attempt.outcome {
            Outcome::Delivered => self.delivered += 1,
            Outcome::Gone { pruned: true } => self.pruned += 1,
            Outcome::Gone { pruned: false } => self.prune_errors += 1,
            Outcome::Failed(failure) => self.failed.push(failure),
            Outcome::NotAttempted => self.not_attempted += 1,
        }
    }
}

fn as_millis<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

/// Sends notification requests to their audience.
pub struct PushService<S: ?Sized, G: ?Sized> {
    store: Arc<S>,
    gateway: Arc<G>,
    clock: Arc<dyn Clock>,
    config: PushConfig,
    segments: Vec<Segment>,
    observers: Vec<Arc<dyn PushObserver>>,
    /// Shared by every push of this service, so concurrent records share one rate.
    pacer: Option<Mutex<Pacer>>,
    epoch: Instant,
}

enum Outcome {
    Delivered,
    Gone { pruned: bool },
    Failed(FailedDelivery),
    NotAttempted,
}

struct Attempt {
    outcome: Outcome,
    retries: u32,
    throttled: u32,
}

/// Set once a post shows that no other post can succeed.
#[derive(Default)]
struct Halt {
    halted: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl Halt {
    fn set(&self, reason: String) {
        if let Ok(mut slot) = self.reason.lock() {
            slot.get_or_insert(reason);
        }
        self.halted.store(true, Ordering::Relaxed);
    }

    fn is_set(&self) -> bool {
        self.halted.load(Ordering::Relaxed)
    }

    fn reason(&self) -> Option<String> {
        self.reason.lock().ok().and_then(|slot| slot.clone())
    }
}

impl<S, G> PushService<S, G>
where
    S: ConnectionStore + ?Sized,
    G: ConnectionGateway + ?Sized,
{
    /// A push service reading audiences from `store` and posting through `gateway`.
    pub fn new(
        store: Arc<S>,
        gateway: Arc<G>,
        clock: Arc<dyn Clock>,
        config: PushConfig,
    ) -> Result<Self, PushConfigError> {
        for (name, value) in [
            ("max_in_flight", config.max_in_flight),
            ("page_size", config.page_size),
            ("read_concurrency", config.read_concurrency),
            (
                "max_posts_per_second",
                config.max_posts_per_second.map_or(1, |rate| rate as usize),
            ),
        ] {
            if value == 0 {
                return Err(PushConfigError::Zero(name));
            }
        }
        let segments = Segment::all(config.broadcast_segments)?;
        Ok(Self {
            store,
            gateway,
            clock,
            config,
            segments,
            observers: Vec::new(),
            pacer: config
                .max_posts_per_second
                .map(|rate| Mutex::new(Pacer::new(rate))),
            epoch: Instant::now(),
        })
    }

    /// Tells `observer` about every push when it finishes (metrics, for one).
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn PushObserver>) -> Self {
        self.observers.push(observer);
        self
    }

    /// The settings in force.
    pub fn config(&self) -> &PushConfig {
        &self.config
    }

    /// Sends `request` to its audience and reports what happened to each connection.
    pub async fn push(&self, request: &NotificationRequest) -> PushReport {
        let started = Instant::now();
        let now = self.clock.now();
        let payload = Bytes::copy_from_slice(request.payload().as_bytes());
        let halt = Halt::default();
        let mut report = PushReport::default();

        // Two pages of read-ahead keep posts flowing while the next page is read, and bound
        // the memory a push holds to a few pages.
        let (pages_tx, mut pages_rx) = mpsc::channel::<Vec<Connection>>(2);
        let read = self.read_audience(request, now, pages_tx, &halt, &mut report);
        let pages = stream::poll_fn(move |cx| pages_rx.poll_recv(cx));
        let send = pages
            .flat_map(stream::iter)
            .map(|connection| self.deliver(connection, payload.clone(), &halt))
            .buffer_unordered(self.config.max_in_flight)
            .fold(PushReport::default(), |mut sent, attempt| {
                sent.record(attempt);
                futures::future::ready(sent)
            });
        let ((), sent) = tokio::join!(read, send);

        report.delivered = sent.delivered;
        report.pruned = sent.pruned;
        report.prune_errors = sent.prune_errors;
        report.failed = sent.failed;
        report.not_attempted = sent.not_attempted;
        report.retries = sent.retries;
        report.throttled = sent.throttled;
        report.aborted = halt.reason();
        report.elapsed = started.elapsed();
        tracing::info!(
            delivered = report.delivered,
            pruned = report.pruned,
            failed = report.failed.len(),
            excluded = report.excluded,
            retries = report.retries,
            elapsed_ms = report.elapsed.as_millis() as u64,
            complete = report.is_complete(),
            "push finished"
        );
        for observer in &self.observers {
            observer.pushed(request, &report);
        }
        report
    }

    /// Reads the audience page by page, applies the targeting, and hands admitted
    /// connections to the senders.
    async fn read_audience(
        &self,
        request: &NotificationRequest,
        now: Timestamp,
        pages_tx: mpsc::Sender<Vec<Connection>>,
        halt: &Halt,
        report: &mut PushReport,
    ) {
        let mut targeting = Targeting::for_request(request);
        let mut pages = stream::iter(Source::for_request(request, &self.segments))
            .map(|source| {
                stream_source(Arc::clone(&self.store), source, self.config.page_size, now).boxed()
            })
            .flatten_unordered(self.config.read_concurrency);
        while let Some(page) = pages.next().await {
            if halt.is_set() {
                break;
            }
            let connections = match page {
                Ok(connections) => connections,
                Err(error) => {
                    let message = with_causes(&error);
                    tracing::warn!(error = %message, "reading the audience failed");
                    report.read_errors.push(message);
                    continue;
                }
            };
            let admitted: Vec<Connection> = connections
                .into_iter()
                .filter(|connection| match targeting.admit(connection) {
                    Admission::Admit => true,
                    Admission::Excluded => {
                        report.excluded += 1;
                        false
                    }
                    Admission::Duplicate => {
                        report.duplicates += 1;
                        false
                    }
                })
                .collect();
            if !admitted.is_empty() && pages_tx.send(admitted).await.is_err() {
                break;
            }
        }
    }

    /// Posts to one connection, retrying what may succeed later.
    async fn deliver(&self, connection: Connection, payload: Bytes, halt: &Halt) -> Attempt {
        let policy = &self.config.retry;
        let started = Instant::now();
        let mut attempt = Attempt {
            outcome: Outcome::NotAttempted,
            retries: 0,
            throttled: 0,
        };
        let id = connection.id();
        loop {
            if halt.is_set() {
                return attempt;
            }
            let attempts = attempt.retries + 1;
            self.pace().await;
            let error = match self.gateway.post(id, payload.clone()).await {
                Ok(()) => {
                    self.with_pacer(Pacer::delivered);
                    attempt.outcome = Outcome::Delivered;
                    return attempt;
                }
                Err(error) => error,
            };
            let reason = match error {
                GatewayError::Gone => {
                    attempt.outcome = Outcome::Gone {
                        pruned: self.prune(id).await,
                    };
                    return attempt;
                }
                GatewayError::Throttled | GatewayError::Unavailable(_) => {
                    let throttled = matches!(error, GatewayError::Throttled);
                    if throttled {
                        let now = self.epoch.elapsed();
                        self.with_pacer(|pacer| pacer.throttled(now));
                    }
                    attempt.throttled += u32::from(throttled);
                    let delay = policy.delay(attempt.retries, fastrand::f64());
                    if policy.allows_retry(attempts, started.elapsed(), delay) {
                        tracing::debug!(connection = %id, ?delay, %error, "retrying post");
                        tokio::time::sleep(delay).await;
                        attempt.retries += 1;
                        continue;
                    }
                    if throttled {
                        FailureReason::Throttled
                    } else {
                        FailureReason::Unavailable {
                            message: with_causes(&error),
                        }
                    }
                }
                GatewayError::PayloadTooLarge => FailureReason::PayloadTooLarge,
                GatewayError::Forbidden(_) => {
                    let message = with_causes(&error);
                    tracing::error!(error = %message, "the gateway refused access; stopping the push");
                    halt.set(message.clone());
                    FailureReason::Forbidden { message }
                }
                GatewayError::Unknown(_) => FailureReason::Unknown {
                    message: with_causes(&error),
                },
            };
            tracing::warn!(connection = %id, attempts, ?reason, "post failed");
            attempt.outcome = Outcome::Failed(FailedDelivery {
                connection: id.clone(),
                reason,
                attempts,
            });
            return attempt;
        }
    }

    /// Waits for this post's turn under the shared rate, if there is one.
    async fn pace(&self) {
        let Some(pacer) = &self.pacer else {
            return;
        };
        let now = self.epoch.elapsed();
        let start = pacer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reserve(now);
        // Most posts may start at once: no timer for them.
        if start > now {
            tokio::time::sleep_until(self.epoch + start).await;
        }
    }

    fn with_pacer(&self, change: impl FnOnce(&mut Pacer)) {
        if let Some(pacer) = &self.pacer {
            change(&mut pacer.lock().unwrap_or_else(PoisonError::into_inner));
        }
    }

    /// Removes a gone connection; whether it worked.
    async fn prune(&self, id: &ConnectionId) -> bool {
        match self.store.delete(id).await {
            Ok(()) => {
                tracing::info!(connection = %id, "pruned a gone connection");
                true
            }
            Err(error) => {
                tracing::warn!(connection = %id, error = %with_causes(&error), "pruning a gone connection failed");
                false
            }
        }
    }
}

/// An error and its chain of causes, as one line.
fn with_causes(error: &dyn StdError) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        cause = inner.source();
    }
    message
}
