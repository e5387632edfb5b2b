//! The end of a run's fan-out, where slow clients would otherwise keep the push waiting.
//!
//! A connection whose buffer is full answers 429 to every post; its retries wait on its own
//! backoff and take no post slot, but the push still waits for the last of them. Once the
//! audience is read and every connection read has had its first post answered, the tail
//! begins: connections that have answered nothing but 429 may go on retrying for the
//! policy's [grace](wspush_domain::RetryPolicy::slow_tail_grace) only, then they are reported
//! failed (and re-enqueued with the other failures).
//!
//! Only when they are few: as for the shared rate ([`wspush_domain::pacing`]), 429s to at
//! least [`SIGNAL_THROTTLED_SHARE`] of the first posts, or a push of fewer than
//! [`SIGNAL_MIN_FIRST_POSTS`] connections, cannot be told from the account's throttle, and
//! their retries keep the retry policy's whole budget.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;
use tokio::time::Instant;
use wspush_domain::RetryPolicy;
use wspush_domain::pacing::{SIGNAL_MIN_FIRST_POSTS, SIGNAL_THROTTLED_SHARE};

/// Counts of one run: connections read, first posts answered.
pub(crate) struct Tail {
    started: Instant,
    read: AtomicUsize,
    answered: AtomicUsize,
    /// First posts answered 429.
    throttled: AtomicUsize,
    reading_done: AtomicBool,
    /// When the tail began, and whether its slow clients are few enough for a grace.
    since: OnceLock<(Instant, bool)>,
    /// Wakes the retries waiting out their backoff when the tail begins.
    began: Notify,
}

impl Tail {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            read: AtomicUsize::new(0),
            answered: AtomicUsize::new(0),
            throttled: AtomicUsize::new(0),
            reading_done: AtomicBool::new(false),
            since: OnceLock::new(),
            began: Notify::new(),
        }
    }

    /// `count` more connections were read, to be posted to.
    pub(crate) fn read(&self, count: usize) {
        self.read.fetch_add(count, Ordering::AcqRel);
    }

    /// The audience is read: no connection is added after this.
    pub(crate) fn reading_done(&self) {
        self.reading_done.store(true, Ordering::Release);
        self.begin_if_due();
    }

    /// A connection's first post was answered (429: `throttled`), or it ended without one.
    pub(crate) fn first_post_answered(&self, throttled: bool) {
        if throttled {
            self.throttled.fetch_add(1, Ordering::AcqRel);
        }
        self.answered.fetch_add(1, Ordering::AcqRel);
        self.begin_if_due();
    }

    /// Begins the tail (once) when the audience is read and every first post answered.
    fn begin_if_due(&self) {
        let read = self.read.load(Ordering::Acquire);
        let due = self.reading_done.load(Ordering::Acquire)
            && self.answered.load(Ordering::Acquire) >= read;
        if !due {
            return;
        }
        let throttled = self.throttled.load(Ordering::Acquire);
        let few_slow = read >= SIGNAL_MIN_FIRST_POSTS as usize
            && (throttled as f64) < SIGNAL_THROTTLED_SHARE * read as f64;
        if self.since.set((Instant::now(), few_slow)).is_ok() {
            self.began.notify_waiters();
        }
    }

    /// When the retries of connections that answered nothing but 429 must have ended;
    /// `None` before the tail.
    pub(crate) fn slow_retries_end(&self, policy: &RetryPolicy) -> Option<Instant> {
        let (since, few_slow) = *self.since.get()?;
        few_slow.then(|| since + policy.slow_tail_grace(since.duration_since(self.started)))
    }

    /// Waits out a slow client's backoff until `wake`; `false` (at once) if the tail's
    /// grace ends before it, also when the tail begins during the wait.
    pub(crate) async fn wait_slow_retry(&self, wake: Instant, policy: &RetryPolicy) -> bool {
        let past_the_end = |end: Option<Instant>| end.is_some_and(|end| wake > end);
        if past_the_end(self.slow_retries_end(policy)) {
            return false;
        }
        if self.since.get().is_some() {
            tokio::time::sleep_until(wake).await;
            return true;
        }
        let began = self.began.notified();
        tokio::pin!(began);
        began.as_mut().enable();
        // The tail may have begun between the check above and `enable`.
        if self.since.get().is_none() {
            tokio::select! {
                () = tokio::time::sleep_until(wake) => return true,
                () = &mut began => {}
            }
        }
        if past_the_end(self.slow_retries_end(policy)) {
            return false;
        }
        tokio::time::sleep_until(wake).await;
        true
    }
}

/// Counts a connection's first post as answered once: when told, or when dropped before.
pub(crate) struct FirstPost<'a>(Option<&'a Tail>);

impl<'a> FirstPost<'a> {
    pub(crate) fn new(tail: &'a Tail) -> Self {
        Self(Some(tail))
    }

    pub(crate) fn answered(&mut self, throttled: bool) {
        if let Some(tail) = self.0.take() {
            tail.first_post_answered(throttled);
        }
    }
}

impl Drop for FirstPost<'_> {
    fn drop(&mut self) {
        self.answered(false);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A tail of `read` connections, `throttled` of them answered 429, all answered.
    fn answered_tail(read: usize, throttled: usize) -> Tail {
        let tail = Tail::new();
        tail.read(read);
        tail.reading_done();
        for index in 0..read {
            tail.first_post_answered(index < throttled);
        }
        tail
    }

    #[tokio::test(start_paused = true)]
    async fn the_tail_begins_when_the_audience_is_read_and_every_first_post_answered() {
        let tail = Tail::new();
        let policy = RetryPolicy::default();
        tail.read(40);
        for _ in 0..39 {
            tail.first_post_answered(false);
        }
        tail.reading_done();
        assert_eq!(
            tail.slow_retries_end(&policy),
            None,
            "one first post is pending"
        );

        tokio::time::advance(Duration::from_secs(2)).await;
        {
            let mut last = FirstPost::new(&tail);
            last.answered(true);
            last.answered(true);
        }
        let end = tail.slow_retries_end(&policy).expect("in the tail");

        assert_eq!(tail.answered.load(Ordering::Acquire), 40, "counted once");
        assert_eq!(end, Instant::now() + Duration::from_millis(200));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            tail.slow_retries_end(&policy),
            Some(end),
            "fixed once begun"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_tail_while_the_audience_is_still_read() {
        let tail = Tail::new();
        tail.read(100);
        for _ in 0..100 {
            drop(FirstPost::new(&tail));
        }

        assert_eq!(tail.slow_retries_end(&RetryPolicy::default()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn no_grace_when_slow_clients_are_many_or_the_push_is_small() {
        let policy = RetryPolicy::default();

        assert!(answered_tail(100, 9).slow_retries_end(&policy).is_some());
        assert_eq!(
            answered_tail(100, 10).slow_retries_end(&policy),
            None,
            "10% of first posts throttled reads as the account's throttle"
        );
        assert_eq!(
            answered_tail(19, 1).slow_retries_end(&policy),
            None,
            "too few first posts to tell"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_retry_waiting_when_the_tail_begins_gives_up_at_once_if_it_would_wake_after_the_grace()
     {
        let tail = Tail::new();
        let policy = RetryPolicy::default();
        tail.read(40);
        tail.reading_done();
        for _ in 0..39 {
            tail.first_post_answered(false);
        }
        tokio::time::advance(Duration::from_secs(1)).await;

        let waiting = tail.wait_slow_retry(Instant::now() + Duration::from_millis(400), &policy);
        let answer = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            tail.first_post_answered(true);
        };
        let started = Instant::now();
        let (retry, ()) = tokio::join!(waiting, answer);

        assert!(
            !retry,
            "the grace (100 ms after a 1 s fan-out) ends before the wake"
        );
        assert_eq!(Instant::now() - started, Duration::from_millis(10));
        let near = tail
            .wait_slow_retry(Instant::now() + Duration::from_millis(50), &policy)
            .await;
        assert!(near, "a wake within the grace is waited for");
    }
}
