//! Shared: one post per connection, paced under the service's shared rate, retried while
//! it may still succeed, pruned when the connection is gone, and left for a continuation
//! when the stop point comes first.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use wspush_domain::{Connection, ConnectionId, Pacer};

use crate::causes::with_causes;
use crate::gateway::{ConnectionGateway, GatewayError};
use crate::report::{FailedDelivery, FailureReason, PushReport};
use crate::services::presence::remove;
use crate::services::push::PushService;
use crate::services::push::halt::Halt;
use crate::services::push::tail::{FirstPost, Tail};
use crate::store::{ConnectionStore, Deletion};

/// What a run's readers and posts share: its halt flag, stop point, post slots and tail.
#[derive(Clone, Copy)]
pub(crate) struct Shared<'a> {
    pub(crate) halt: &'a Halt,
    pub(crate) stop_at: Option<Instant>,
    pub(crate) posts: &'a Semaphore,
    pub(crate) tail: &'a Tail,
}

/// What became of one connection.
pub(crate) enum Outcome {
    Delivered,
    /// Answered 410: removed from the store by this push, by another one first, or not
    /// removable now.
    Gone(Prune),
    Failed(FailedDelivery),
    NotAttempted,
    /// Not posted to because the push reached its stop point.
    Unsent(ConnectionId),
    /// Answered 429 or 5xx, and the retry would come after the stop point: carried on as a
    /// failure is (at the next generation), since it was tried.
    RetryLater(ConnectionId),
}

/// What became of a gone connection's removal.
pub(crate) enum Prune {
    /// This push removed it.
    Removed,
    /// Another push (or its `$disconnect`) removed it first: counted there.
    AlreadyGone,
    /// The store's delete failed; the TTL will remove it.
    Failed,
}

/// One connection's posts: how they ended, and what it took.
pub(crate) struct Attempt {
    pub(crate) outcome: Outcome,
    retries: u32,
    throttled: u32,
}

impl Attempt {
    /// Counts this attempt in `report`.
    pub(crate) fn record(self, report: &mut PushReport) {
        report.retries += self.retries as usize;
        report.throttled += self.throttled as usize;
        match self.outcome {
            Outcome::Delivered => report.delivered += 1,
            Outcome::Gone(Prune::Removed) => report.pruned += 1,
            Outcome::Gone(Prune::AlreadyGone) => report.already_pruned += 1,
            Outcome::Gone(Prune::Failed) => report.prune_errors += 1,
            Outcome::Failed(failure) => report.failed.push(failure),
            Outcome::NotAttempted => report.not_attempted += 1,
            Outcome::Unsent(_) | Outcome::RetryLater(_) => report.unsent += 1,
        }
    }
}

impl<S, G> PushService<S, G>
where
    S: ConnectionStore + ?Sized,
    G: ConnectionGateway + ?Sized,
{
    /// Posts to one connection, retrying what may succeed later, unless the stop point has
    /// come: then it is left for a continuation, unsent if it was never posted to, to retry
    /// later (a generation on) if it was.
    pub(super) async fn deliver_one(
        &self,
        connection: Connection,
        payload: Bytes,
        shared: Shared<'_>,
    ) -> Attempt {
        let Shared {
            halt,
            stop_at,
            posts,
            tail,
        } = shared;
        let mut first_post = FirstPost::new(tail);
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
            // A post slot first (none is held while a retry waits out its backoff); the
            // semaphore lives as long as the push, so it is never closed.
            let Ok(slot) = posts.acquire().await else {
                return attempt;
            };
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
            let posted = self.gateway.post(id, payload.clone()).await;
            first_post.answered(matches!(posted, Err(GatewayError::Throttled)));
            let error = match posted {
                Ok(()) => {
                    let first = attempt.retries == 0;
                    let now = self.epoch.elapsed();
                    self.with_pacer(|pacer| {
                        pacer.delivered();
                        if first {
                            pacer.first_post_answered(now, false);
                        }
                    });
                    attempt.outcome = Outcome::Delivered;
                    return attempt;
                }
                Err(error) => error,
            };
            let reason = match error {
                GatewayError::Gone => {
                    attempt.outcome = Outcome::Gone(self.prune(&connection).await);
                    return attempt;
                }
                GatewayError::Throttled | GatewayError::Unavailable(_) => {
                    let throttled = matches!(error, GatewayError::Throttled);
                    if throttled && attempt.retries == 0 {
                        // Only first posts tell the account's throttle from a slow client
                        // (see `Pacer`); this connection's retries wait on its own backoff.
                        let now = self.epoch.elapsed();
                        self.with_pacer(|pacer| {
                            if pacer.first_post_answered(now, true) {
                                tracing::info!(
                                    rate = pacer.rate(),
                                    "the account throttles posts; the shared rate is cut"
                                );
                            }
                        });
                    }
                    attempt.throttled += u32::from(throttled);
                    let delay = policy.delay(attempt.retries, fastrand::f64());
                    // A slow client (429 to every post so far) in the fan-out's tail retries
                    // within the tail's grace only.
                    let slow_past_the_tail = attempt.throttled == attempts
                        && tail
                            .slow_retries_end(policy)
                            .is_some_and(|end| Instant::now() + delay > end);
                    if !slow_past_the_tail
                        && policy.allows_retry(attempts, started.elapsed(), delay)
                    {
                        if past_stop(delay) {
                            // The retry would come after the stop point: a continuation
                            // gets it, a generation later, so that a connection that keeps
                            // answering this way is tried a bounded number of times.
                            attempt.outcome = Outcome::RetryLater(id.clone());
                            return attempt;
                        }
                        tracing::debug!(connection = %id, ?delay, %error, "retrying post");
                        drop(slot);
                        let wake = Instant::now() + delay;
                        if attempt.throttled == attempts {
                            // A slow client so far: its wait ends early if the fan-out's
                            // tail begins meanwhile and its grace ends before the wake.
                            if tail.wait_slow_retry(wake, policy).await {
                                attempt.retries += 1;
                                continue;
                            }
                        } else {
                            tokio::time::sleep_until(wake).await;
                            attempt.retries += 1;
                            continue;
                        }
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
                    let error = Arc::new(error);
                    let message = with_causes(error.as_ref());
                    tracing::error!(error = %message, "the gateway refused access; stopping the push");
                    halt.set(error);
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

    /// Removes a gone connection (and its presence, announcing the leaves).
    async fn prune(&self, connection: &Connection) -> Prune {
        let id = connection.id();
        match remove(
            self.store.as_ref(),
            self.presence.as_ref(),
            id,
            Some(connection.user()),
        )
        .await
        {
            Ok(Deletion::Removed) => {
                tracing::info!(connection = %id, "pruned a gone connection");
                Prune::Removed
            }
            Ok(Deletion::AlreadyGone) => {
                tracing::debug!(connection = %id, "a gone connection was already pruned");
                Prune::AlreadyGone
            }
            Err(error) => {
                tracing::warn!(connection = %id, error = %with_causes(&error), "pruning a gone connection failed");
                Prune::Failed
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
