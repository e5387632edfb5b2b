//! One run of a push: the readers and the senders joined by a channel of pages, and the
//! report and leftover they make together.

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use wspush_domain::history::envelope;
use wspush_domain::{Connection, Leftover, NotificationRequest};

use crate::causes::with_causes;
use crate::gateway::ConnectionGateway;
use crate::report::{PushReport, Stop};
use crate::services::push::PushService;
use crate::services::push::halt::Halt;
use crate::services::push::plan::{Plan, Run};
use crate::services::push::send::{Outcome, Shared};
use crate::services::push::tail::Tail;
use crate::store::ConnectionStore;

/// Connections handled at once per post slot: the others of a slot's connections wait out
/// their retry backoff, or their turn for the slot.
const CONNECTIONS_PER_POST_SLOT: usize = 4;

impl<S, G> PushService<S, G>
where
    S: ConnectionStore + ?Sized,
    G: ConnectionGateway + ?Sized,
{
    /// One run of a push under `plan`: the report, and what was left undone.
    pub(crate) async fn run(&self, request: &NotificationRequest, plan: &Plan) -> Run {
        let started = Instant::now();
        let now = self.clock.now();
        // A request of history streams goes out as an envelope with its positions.
        let payload = match request.positions() {
            Some(positions) if !positions.is_empty() => {
                Bytes::from(envelope(request.payload(), positions))
            }
            _ => Bytes::copy_from_slice(request.payload().as_bytes()),
        };
        let halt = Halt::default();
        let mut report = PushReport::default();
        // `max_in_flight` bounds the posts in flight; a connection waiting out its retry
        // backoff (a slow client answering 429) holds no post slot, so more connections than
        // that are handled at once: a few slow ones never starve the others of slots.
        let posts = Semaphore::new(self.config.max_in_flight);
        let tail = Tail::new();
        let shared = Shared {
            halt: &halt,
            stop_at: plan.stop_at,
            posts: &posts,
            tail: &tail,
        };

        // Two pages of read-ahead keep posts flowing while the next page is read, and bound
        // the memory a push holds to a few pages.
        let (pages_tx, mut pages_rx) = mpsc::channel::<Vec<Connection>>(2);
        let read = async {
            let reads = self
                .read_audience(request, now, plan, pages_tx, shared, &mut report)
                .await;
            tail.reading_done();
            reads
        };
        let pages = stream::poll_fn(move |cx| pages_rx.poll_recv(cx));
        let send = pages
            .flat_map(stream::iter)
            .map(|connection| self.deliver_one(connection, payload.clone(), shared))
            .buffer_unordered(
                self.config
                    .max_in_flight
                    .saturating_mul(CONNECTIONS_PER_POST_SLOT),
            )
            .fold(
                (PushReport::default(), Vec::new(), Vec::new()),
                |(mut sent, mut unsent, mut retry_later), attempt| {
                    match &attempt.outcome {
                        Outcome::Unsent(id) => unsent.push(id.clone()),
                        Outcome::RetryLater(id) => retry_later.push(id.clone()),
                        _ => {}
                    }
                    attempt.record(&mut sent);
                    futures::future::ready((sent, unsent, retry_later))
                },
            );
        let (reads, (sent, unsent, retry_later)) = tokio::join!(read, send);

        report.delivered = sent.delivered;
        report.pruned = sent.pruned;
        report.already_pruned = sent.already_pruned;
        report.prune_errors = sent.prune_errors;
        report.failed = sent.failed;
        report.not_attempted = sent.not_attempted;
        report.unsent = sent.unsent;
        report.retries = sent.retries;
        report.throttled = sent.throttled;
        let halted = halt.error();
        report.aborted = halted.as_deref().map(|error| with_causes(error));
        let sources_finished = reads.finished_any();
        let pages_passed = reads.pages_passed;
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
        reads.leave(&mut leftover, &mut report);
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
            + report.already_pruned
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
            halted,
        }
    }
}
