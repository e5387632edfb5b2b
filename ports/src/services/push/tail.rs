//! The end of a run's fan-out, where slow clients would otherwise keep the push waiting.
//!
//! A connection whose buffer is full answers 429 to every post; its retries wait on its own
//! backoff and take no post slot, but the push still waits for the last of them. Once the
//! audience is read and every connection read has had its first post answered, the tail
//! begins: connections that have answered nothing but 429 may go on retrying for the
//! policy's [grace](wspush_domain::RetryPolicy::slow_tail_grace) only, then they are reported
//! failed (and re-enqueued with the other failures).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;
use tokio::time::Instant;
use wspush_domain::RetryPolicy;

/// Counts of one run: connections read, first posts answered.
pub(crate) struct Tail {
    started: Instant,
    read: AtomicUsize,
    answered: AtomicUsize,
    reading_done: AtomicBool,
    since: OnceLock<Instant>,
    /// Wakes the retries waiting out their backoff when the tail begins.
    began: Notify,
}

impl Tail {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            read: AtomicUsize::new(0),
            answered: AtomicUsize::new(0),
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

    /// A connection's first post was answered, or it ended without one.
    pub(crate) fn first_post_answered(&self) {
        self.answered.fetch_add(1, Ordering::AcqRel);
        self.begin_if_due();
    }

    /// Begins the tail (once) when the audience is read and every first post answered.
    fn begin_if_due(&self) {
        let due = self.reading_done.load(Ordering::Acquire)
            && self.answered.load(Ordering::Acquire) >= self.read.load(Ordering::Acquire);
        if due && self.since.set(Instant::now()).is_ok() {
            self.began.notify_waiters();
        }
    }

    /// When the retries of connections that answered nothing but 429 must have ended;
    /// `None` before the tail.
    pub(crate) fn slow_retries_end(&self, policy: &RetryPolicy) -> Option<Instant> {
        let since = *self.since.get()?;
        Some(since + policy.slow_tail_grace(since.duration_since(self.started)))
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

    pub(crate) fn answered(&mut self) {
        if let Some(tail) = self.0.take() {
            tail.first_post_answered();
        }
    }
}

impl Drop for FirstPost<'_> {
    fn drop(&mut self) {
        self.answered();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_tail_begins_when_the_audience_is_read_and_every_first_post_answered() {
        let tail = Tail::new();
        let policy = RetryPolicy::default();
        tail.read(2);
        tail.first_post_answered();
        tail.reading_done();
        assert_eq!(
            tail.slow_retries_end(&policy),
            None,
            "one first post is pending"
        );

        tokio::time::advance(Duration::from_secs(2)).await;
        {
            let mut last = FirstPost::new(&tail);
            last.answered();
            last.answered();
        }
        let end = tail.slow_retries_end(&policy).expect("in the tail");

        assert_eq!(tail.answered.load(Ordering::Acquire), 2, "counted once");
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
        tail.read(1);
        drop(FirstPost::new(&tail));

        assert_eq!(tail.slow_retries_end(&RetryPolicy::default()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_retry_waiting_when_the_tail_begins_gives_up_at_once_if_it_would_wake_after_the_grace()
     {
        let tail = Tail::new();
        let policy = RetryPolicy::default();
        tail.read(2);
        tail.reading_done();
        tail.first_post_answered();
        tokio::time::advance(Duration::from_secs(1)).await;

        let waiting = tail.wait_slow_retry(Instant::now() + Duration::from_millis(400), &policy);
        let answer = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            tail.first_post_answered();
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
