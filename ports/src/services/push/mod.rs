//! The push service: one notification request to every connection of its audience.
//!
//! The audience is read from the store as a stream of pages while posts are under way
//! (pipelined), so memory stays flat however large the audience is. At most
//! [`PushConfig::max_in_flight`] posts are in flight at any moment. Gone connections are
//! pruned; throttled and unavailable answers are retried with full-jitter backoff within the
//! [`RetryPolicy`](wspush_domain::RetryPolicy)'s attempts and time budget; a 403 stops the push, since every other post
//! would fail the same way. Every post of every push of one service waits its turn under one
//! shared rate ([`PushConfig::max_posts_per_second`]), which 429 answers cut and deliveries
//! raise again, so that a throttled gateway sees the whole instance slow down, not only the
//! retries.
//!
//! A push may also stop early on purpose (see [`Stop`](crate::Stop)): at a stop point before the Lambda's
//! deadline it starts no new post, and a broadcast found larger than the scatter threshold
//! stops reading. What it left is returned as a [`Leftover`](wspush_domain::Leftover) that
//! [`PushService::deliver`] turns into continuations.
//!
//! The rooms: `config` (the settings), `append` (history streams, before the audience), `plan` (how a run may stop early, and what it did and
//! left), `read` (the audience, page by page), `send` (one connection's posts), `halt` (the
//! flag a 403 raises), `run` (readers and senders joined), `deliver` (as the pusher's edge
//! does: ledger, deadline, scatter, continuations) and `failure` (why a delivery failed).
//! What a push did is a [`PushReport`], which lives outside the
//! service so that the observer port can take it.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;
use wspush_domain::{HistoryPolicy, NotificationRequest, Pacer, Segment};

use crate::clock::Clock;
use crate::gateway::ConnectionGateway;
use crate::history::HistoryStore;
use crate::ledger::RequestLedger;
use crate::observer::PushObserver;
use crate::publisher::NotificationPublisher;
use crate::report::PushReport;
use crate::services::control::ControlService;
use crate::services::presence::Presence;
use crate::store::ConnectionStore;

mod append;
mod config;
mod deliver;
mod failure;
mod halt;
mod plan;
mod read;
mod run;
mod send;
mod tail;

pub use config::{ContinuationConfig, LedgerConfig, PushConfig, PushConfigError, ScatterConfig};
pub use deliver::{Delivery, DeliveryContext, LEASE_SLACK};
pub use failure::{DeliveryFailure, EnqueueFailure, Shortfall};
use plan::Plan;

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
    continuations: Option<(Arc<dyn NotificationPublisher>, ContinuationConfig)>,
    ledger: Option<(Arc<dyn RequestLedger>, LedgerConfig)>,
    /// Whether a request whose lists are all empty is a broadcast (the Python pusher's
    /// reading) instead of reaching nobody.
    empty_lists_mean_everyone: bool,
    /// Where requests to history streams are appended, and which streams those are.
    history: Option<(Arc<dyn HistoryStore>, HistoryPolicy)>,
    /// Announces the leaves of the gone connections it prunes.
    presence: Option<Presence>,
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
            empty_lists_mean_everyone: false,
            history: None,
            presence: None,
        })
    }

    /// Tells `observer` about every push when it finishes (metrics, for one).
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn PushObserver>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Hands what a push leaves (deadline, scatter, failures) to `publisher`, the
    /// notification queue.
    #[must_use]
    pub fn with_continuations(
        mut self,
        publisher: Arc<dyn NotificationPublisher>,
        config: ContinuationConfig,
    ) -> Self {
        self.continuations = Some((publisher, config));
        self
    }

    /// Skips requests that `ledger` records as completed.
    #[must_use]
    pub fn with_ledger(mut self, ledger: Arc<dyn RequestLedger>, config: LedgerConfig) -> Self {
        self.ledger = Some((ledger, config));
        self
    }

    /// Reads a request whose `users`, `topics` and `connections` are given but all empty
    /// as a broadcast, as the Python pusher did, when `everyone` is true. Off by default:
    /// such a request then reaches nobody, so that a producer who computed an empty list of
    /// recipients does not send to everyone.
    #[must_use]
    pub fn with_empty_lists_meaning_everyone(mut self, everyone: bool) -> Self {
        self.empty_lists_mean_everyone = everyone;
        self
    }

    /// Appends each request to the history streams `policy` names (once per request ID)
    /// before its audience is read, and sends such a request as an envelope with its
    /// positions (see [`wspush_domain::history`]). Without it, or when `policy` keeps no
    /// history, every request is sent as its bare `data`.
    #[must_use]
    pub fn with_history(mut self, store: Arc<dyn HistoryStore>, policy: HistoryPolicy) -> Self {
        self.history = policy.is_on().then_some((store, policy));
        self
    }

    /// Announces a leave when a connection it prunes was a user's last one in a presence
    /// topic (a lost `$disconnect` ends in a leave at the next push that finds it gone).
    #[must_use]
    pub fn with_presence(mut self, presence: Option<Presence>) -> Self {
        self.presence = presence;
        self
    }

    /// The control requests' service over the same store, gateway and presence.
    pub fn control(&self) -> ControlService<S, G> {
        ControlService::new(
            Arc::clone(&self.store),
            Arc::clone(&self.gateway),
            Arc::clone(&self.clock),
        )
        .with_presence(self.presence.clone())
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
        let request = self.audience_reading(request);
        let appended = match self.append(&request, request.id()).await {
            Ok(appended) => appended,
            Err(error) => {
                let report = PushReport {
                    aborted: Some(crate::causes::with_causes(&error)),
                    ..PushReport::default()
                };
                self.observe(&request, &report);
                return report;
            }
        };
        let (request, appends) = match &appended {
            Some(appended) => (&appended.request, appended.appends),
            None => (&*request, 0),
        };
        let mut run = self.run(request, &Plan::default()).await;
        run.report.history_appends = appends;
        self.observe(request, &run.report);
        run.report
    }

    /// `request` as this service reads its audience (see
    /// [`with_empty_lists_meaning_everyone`](Self::with_empty_lists_meaning_everyone)); one
    /// that names nobody is logged, since it reaches no connection.
    pub(crate) fn audience_reading<'r>(
        &self,
        request: &'r NotificationRequest,
    ) -> Cow<'r, NotificationRequest> {
        if !request.names_nobody() {
            return Cow::Borrowed(request);
        }
        if self.empty_lists_mean_everyone {
            tracing::info!("the request's lists are all empty: a broadcast, as set");
            return Cow::Owned(request.clone().with_empty_lists_meaning_everyone());
        }
        tracing::info!(
            request_id = request.id().map(|id| id.as_str()),
            "the request names nobody (its lists are empty or null): it reaches no connection"
        );
        Cow::Borrowed(request)
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
}
