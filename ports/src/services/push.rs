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
//!
//! A push may also stop early on purpose (see [`Stop`]): at a stop point before the Lambda's
//! deadline it starts no new post, and a broadcast found larger than the scatter threshold
//! stops reading. What it left is returned as a [`Leftover`] that
//! [`PushService::deliver`](crate::services::delivery) turns into continuations.

use std::error::Error as StdError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, FuturesUnordered, StreamExt};
use serde::{Serialize, Serializer};
use tokio::sync::mpsc;
use tokio::time::Instant;
use wspush_domain::limits::{DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_POSTS_PER_SECOND};
use wspush_domain::{
    Admission, Connection, ConnectionId, Leftover, NotificationRequest, Pacer, Resume, RetryPolicy,
    Segment, SegmentError, Source, Targeting, Timestamp,
};

use crate::clock::Clock;
use crate::gateway::{ConnectionGateway, GatewayError};
use crate::ledger::RequestLedger;
use crate::observer::PushObserver;
use crate::publisher::NotificationPublisher;
use crate::services::delivery::{ContinuationConfig, LedgerConfig};
use crate::store::{ConnectionStore, Cursor, StoreError};

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
    /// Why the push stopped before finishing its audience on purpose, if it did.
    pub stopped: Option<Stop>,
    /// Connections read and admitted but not delivered because of the stop: never posted
    /// to, or answered 429 or 5xx with their retry falling after the stop point.
    pub unsent: usize,
    /// Audience sources (users, topics, segments) not read to their end because of the stop.
    pub unread_sources: usize,
    /// Continuation requests enqueued for what was left (see `PushService::deliver`).
    pub continuations: usize,
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
            Outcome::Unsent(_) | Outcome::RetryLater(_) => self.unsent += 1,
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
    pub(crate) clock: Arc<dyn Clock>,
    config: PushConfig,
    segments: Vec<Segment>,
    pub(crate) observers: Vec<Arc<dyn PushObserver>>,
    /// Shared by every push of this service, so concurrent records share one rate.
    pacer: Option<Mutex<Pacer>>,
    epoch: Instant,
    pub(crate) continuations: Option<(Arc<dyn NotificationPublisher>, ContinuationConfig)>,
    pub(crate) ledger: Option<(Arc<dyn RequestLedger>, LedgerConfig)>,
}

enum Outcome {
    Delivered,
    Gone {
        pruned: bool,
    },
    Failed(FailedDelivery),
    NotAttempted,
    /// Not posted to because the push reached its stop point.
    Unsent(ConnectionId),
    /// Answered 429 or 5xx, and the retry would come after the stop point: carried on as a
    /// failure is (at the next generation), since it was tried.
    RetryLater(ConnectionId),
}

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

/// What a run did, and what it left.
pub(crate) struct Run {
    pub report: PushReport,
    pub leftover: Leftover,
    /// Whether any connection was settled (delivered, pruned, failed, or skipped by the
    /// targeting) or left to retry a generation later, a page was read that handed nothing
    /// on, or a user, topic or segment was read to its end: a run that leaves everything it
    /// touched for later as it was must not be continued, or it could be continued for ever.
    pub progressed: bool,
}

/// How far one audience source has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    /// Not read yet.
    Untouched,
    /// A page is being read.
    Reading,
    /// Stopped with pages left (at its cursor).
    Interrupted,
    /// Read to its end.
    Done,
    /// A read failed (at its cursor).
    Failed,
}

struct SourceRead {
    source: Source,
    cursor: Option<Cursor>,
    state: ReadState,
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
            continuations: None,
            ledger: None,
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
    ///
    /// It runs to the end: no stop point, no scatter, no continuation, no ledger. The
    /// pusher's edge calls [`deliver`](Self::deliver) instead.
    pub async fn push(&self, request: &NotificationRequest) -> PushReport {
        let run = self.run(request, &Plan::default()).await;
        self.observe(request, &run.report);
        run.report
    }

    /// Tells the observers about a finished push.
    pub(crate) fn observe(&self, request: &NotificationRequest, report: &PushReport) {
        tracing::info!(
            delivered = report.delivered,
            pruned = report.pruned,
            failed = report.failed.len(),
            excluded = report.excluded,
            retries = report.retries,
            unsent = report.unsent,
            unread_sources = report.unread_sources,
            continuations = report.continuations,
            elapsed_ms = report.elapsed.as_millis() as u64,
            complete = report.is_complete(),
            "push finished"
        );
        for observer in &self.observers {
            observer.pushed(request, report);
        }
    }

    /// One run of a push under `plan`: the report, and what was left undone.
    pub(crate) async fn run(&self, request: &NotificationRequest, plan: &Plan) -> Run {
        let started = Instant::now();
        let now = self.clock.now();
        let payload = Bytes::copy_from_slice(request.payload().as_bytes());
        let halt = Halt::default();
        let mut report = PushReport::default();

        // Two pages of read-ahead keep posts flowing while the next page is read, and bound
        // the memory a push holds to a few pages.
        let (pages_tx, mut pages_rx) = mpsc::channel::<Vec<Connection>>(2);
        let read = self.read_audience(request, now, plan, pages_tx, &halt, &mut report);
        let pages = stream::poll_fn(move |cx| pages_rx.poll_recv(cx));
        let send = pages
            .flat_map(stream::iter)
            .map(|connection| self.deliver_one(connection, payload.clone(), &halt, plan.stop_at))
            .buffer_unordered(self.config.max_in_flight)
            .fold(
                (PushReport::default(), Vec::new(), Vec::new()),
                |(mut sent, mut unsent, mut retry_later), attempt| {
                    match &attempt.outcome {
                        Outcome::Unsent(id) => unsent.push(id.clone()),
                        Outcome::RetryLater(id) => retry_later.push(id.clone()),
                        _ => {}
                    }
                    sent.record(attempt);
                    futures::future::ready((sent, unsent, retry_later))
                },
            );
        let ((reads, pages_passed), (sent, unsent, retry_later)) = tokio::join!(read, send);

        report.delivered = sent.delivered;
        report.pruned = sent.pruned;
        report.prune_errors = sent.prune_errors;
        report.failed = sent.failed;
        report.not_attempted = sent.not_attempted;
        report.unsent = sent.unsent;
        report.retries = sent.retries;
        report.throttled = sent.throttled;
        report.aborted = halt.reason();
        // A user, topic or segment read to its end is done with for good: what it held is
        // settled or carried on as a connection list, which is less work. A list read to
        // its end is only the same list again.
        let sources_finished = reads.iter().any(|read| {
            read.state == ReadState::Done && !matches!(read.source, Source::Connections(_))
        });
        let mut leftover = Leftover {
            unsent,
            retry_later,
            failed: report
                .failed
                .iter()
                .map(|failure| failure.connection.clone())
                .collect(),
            ..Leftover::default()
        };
        for read in reads {
            let resume = match read.state {
                ReadState::Done => continue,
                ReadState::Untouched | ReadState::Reading | ReadState::Interrupted => {
                    &mut leftover.sources
                }
                ReadState::Failed => &mut leftover.failed_sources,
            };
            match resume_of(read.source, read.cursor) {
                Ok(Some(left)) => resume.push(left),
                Ok(None) => continue,
                Err(error) => report.read_errors.push(with_causes(&error)),
            }
        }
        report.unread_sources = leftover.sources.len();
        // Only the stop point leaves connections unsent, or sources unread without a halt or
        // a scatter (even when the run ends before it: a slot or a retry that would fall
        // after it is not waited for).
        let left_for_the_stop = report.unsent > 0 || report.unread_sources > 0;
        if report.stopped.is_none()
            && report.aborted.is_none()
            && plan.stop_at.is_some()
            && left_for_the_stop
        {
            report.stopped = Some(Stop::Deadline);
        }
        report.elapsed = started.elapsed();
        let settled = report.delivered
            + report.pruned
            + report.prune_errors
            + report.failed.len()
            + report.excluded
            + report.duplicates;
        // Connections to retry later count too: they go on a generation later, so the
        // generation bound ends them.
        let progressed =
            settled > 0 || !leftover.retry_later.is_empty() || pages_passed > 0 || sources_finished;
        Run {
            report,
            leftover,
            progressed,
        }
    }

    /// Reads the audience page by page, applies the targeting, and hands admitted
    /// connections to the senders. Returns how far each source was read, and how many pages
    /// were read that handed no connection on (all skipped, or empty: DynamoDB's pages may
    /// be, once expired items are filtered out), which moved a cursor past connections that
    /// need nothing more.
    ///
    /// Each source has at most one page read at a time and `read_concurrency` sources are
    /// read at once. A source's cursor only moves past a page once that page's connections
    /// are handed on, so a stop at any moment leaves every source at a cursor from which
    /// nothing was lost and nothing will be read twice. At the stop point a request whose
    /// sources overlap is still read to its end (nothing is posted), since only this push's
    /// de-duplication knows which connections it already admitted.
    async fn read_audience(
        &self,
        request: &NotificationRequest,
        now: Timestamp,
        plan: &Plan,
        pages_tx: mpsc::Sender<Vec<Connection>>,
        halt: &Halt,
        report: &mut PushReport,
    ) -> (Vec<SourceRead>, usize) {
        let mut targeting = Targeting::for_request(request);
        let read_to_the_end = targeting.deduplicates();
        let segments = if plan.segments.is_empty() {
            &self.segments
        } else {
            &plan.segments
        };
        let mut reads: Vec<SourceRead> = Source::for_request(request, segments)
            .into_iter()
            .map(|source| SourceRead {
                source,
                cursor: None,
                state: ReadState::Untouched,
            })
            .collect();
        if let (Some(cursor), [only]) = (request.cursor(), reads.as_mut_slice()) {
            only.cursor = Some(Cursor::new(cursor));
        }
        let page_size = self.config.page_size;
        let read_page = |index: usize, read: &SourceRead| {
            let store = Arc::clone(&self.store);
            let source = read.source.clone();
            let cursor = read.cursor.clone();
            async move { (index, store.page(&source, cursor, page_size, now).await) }
        };
        let past_stop = || plan.stop_at.is_some_and(|stop| Instant::now() >= stop);
        let mut scattered = false;
        let may_read =
            |scattered: bool| !halt.is_set() && !scattered && (read_to_the_end || !past_stop());
        let mut in_flight = FuturesUnordered::new();
        let mut next_source = 0;
        let mut connections_read = 0usize;
        let mut pages_passed = 0usize;
        loop {
            while may_read(scattered)
                && in_flight.len() < self.config.read_concurrency
                && next_source < reads.len()
            {
                reads[next_source].state = ReadState::Reading;
                in_flight.push(read_page(next_source, &reads[next_source]));
                next_source += 1;
            }
            let Some((index, page)) = in_flight.next().await else {
                break;
            };
            if !may_read(scattered) {
                // Dropped unread: the source stays at the cursor this page started from.
                reads[index].state = ReadState::Interrupted;
                continue;
            }
            let page = match page {
                Ok(page) => page,
                Err(error) => {
                    let message = with_causes(&error);
                    tracing::warn!(error = %message, "reading the audience failed");
                    report.read_errors.push(message);
                    reads[index].state = ReadState::Failed;
                    continue;
                }
            };
            connections_read += page.connections.len();
            reads[index].cursor = page.next;
            if let Some(above) = plan.scatter_above
                && connections_read > above
                && !scattered
            {
                tracing::info!(
                    connections_read,
                    above,
                    "the broadcast is larger than the scatter threshold; handing the rest on"
                );
                scattered = true;
                report.stopped = Some(Stop::Scatter);
            }
            if reads[index].cursor.is_none() {
                reads[index].state = ReadState::Done;
            } else if may_read(scattered) {
                in_flight.push(read_page(index, &reads[index]));
            } else {
                reads[index].state = ReadState::Interrupted;
            }
            let admitted: Vec<Connection> = page
                .connections
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
            if admitted.is_empty() {
                pages_passed += 1;
            } else if pages_tx.send(admitted).await.is_err() {
                break;
            }
        }
        (reads, pages_passed)
    }

    /// Posts to one connection, retrying what may succeed later, unless the stop point has
    /// come: then it is left for a continuation, unsent if it was never posted to, to retry
    /// later (a generation on) if it was.
    async fn deliver_one(
        &self,
        connection: Connection,
        payload: Bytes,
        halt: &Halt,
        stop_at: Option<Instant>,
    ) -> Attempt {
        let policy = &self.config.retry;
        let started = Instant::now();
        let mut attempt = Attempt {
            outcome: Outcome::NotAttempted,
            retries: 0,
            throttled: 0,
        };
        let id = connection.id();
        // Whether `after` from now is past the stop point; no clock read without one.
        let past_stop =
            |after: Duration| stop_at.is_some_and(|stop| Instant::now() + after >= stop);
        loop {
            if halt.is_set() {
                return attempt;
            }
            let attempts = attempt.retries + 1;
            // No waiting for a rate slot once the stop point has come, nor for one that
            // falls after it: an unsent connection costs nothing but its place in a list. One
            // already tried goes on a generation later, like a retry that falls after it.
            if past_stop(Duration::ZERO) || !self.pace(stop_at).await {
                attempt.outcome = if attempt.retries > 0 {
                    Outcome::RetryLater(id.clone())
                } else {
                    Outcome::Unsent(id.clone())
                };
                return attempt;
            }
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
                        if past_stop(delay) {
                            // The retry would come after the stop point: a continuation
                            // gets it, a generation later, so that a connection that keeps
                            // answering this way is tried a bounded number of times.
                            attempt.outcome = Outcome::RetryLater(id.clone());
                            return attempt;
                        }
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

    /// Waits for this post's turn under the shared rate, if there is one; `false` (without
    /// waiting) when the turn would come at or after `stop_at`.
    async fn pace(&self, stop_at: Option<Instant>) -> bool {
        let Some(pacer) = &self.pacer else {
            return true;
        };
        let now = self.epoch.elapsed();
        let stop = stop_at.map(|stop| stop.saturating_duration_since(self.epoch));
        let Some(start) = pacer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reserve(now, stop)
        else {
            return false;
        };
        // Most posts may start at once: no timer for them.
        if start > now {
            // Tells the pacer when this waiter is done, also when the push is dropped.
            let _waiting = Waiting(pacer);
            tokio::time::sleep_until(self.epoch + start).await;
        }
        true
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

/// A post waiting for its slot; see [`Pacer::stopped_waiting`].
struct Waiting<'a>(&'a Mutex<Pacer>);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stopped_waiting();
    }
}

/// Where `source` resumes from `cursor`; `None` when nothing is left of it. A list of
/// connections resumes as the rest of the list, since its cursor is a position in it.
fn resume_of(source: Source, cursor: Option<Cursor>) -> Result<Option<Resume>, StoreError> {
    match source {
        Source::Connections(ids) => {
            let start = Cursor::offset_of(cursor.as_ref())?;
            let rest = ids.get(start..).unwrap_or_default().to_vec();
            if rest.is_empty() {
                return Ok(None);
            }
            Ok(Some(Resume {
                source: Source::Connections(rest),
                cursor: None,
            }))
        }
        source => Ok(Some(Resume {
            source,
            cursor: cursor.map(|cursor| cursor.as_str().to_owned()),
        })),
    }
}

/// An error and its chain of causes, as one line.
pub(crate) fn with_causes(error: &dyn StdError) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        cause = inner.source();
    }
    message
}
