//! The shared send rate of one pusher instance: a ceiling on posts per second, cut when the
//! gateway throttles and raised again as posts get through (additive increase,
//! multiplicative decrease, as TCP does with its window).
//!
//! API Gateway throttles `@connections` calls per account and region (10,000 requests per
//! second by default, shared by every API and every pusher instance). Backing off each post
//! on its own is not enough: with hundreds in flight, the retries alone keep the account at
//! its limit. A [`Pacer`] spaces the starts of all posts of all pushes in one instance.
//!
//! Not every 429 is the account's throttle: API Gateway also answers 429 to a post to one
//! connection whose client is not reading (its buffer is full, a phone on a bad network).
//! Cutting the shared rate for those would slow every connection for a few slow ones. So
//! the rate is cut on a signal only the account throttle gives: of the **first** posts to
//! connections answered within a short window ([`SIGNAL_WINDOW`]), at least
//! [`SIGNAL_THROTTLED_SHARE`] were answered 429, out of at least [`SIGNAL_MIN_FIRST_POSTS`].
//! The account throttle answers 429 to a share of all calls above its rate, first posts
//! included; a slow client answers 429 to every post to itself, so its retries repeat it
//! but its first post is one among all the first posts: a slow share of the audience below
//! 10% never cuts the rate, whatever its retries. Each connection's retries keep their own
//! backoff (the push service's retry policy).
//!
//! Time is given by the caller as a [`Duration`] since any fixed instant, so the rules are
//! pure and tested without a clock.

use std::time::Duration;

/// The rate a pacer never goes below, as a share of its ceiling.
const FLOOR_SHARE: f64 = 0.02;
/// How much one cut keeps of the rate.
const CUT_TO: f64 = 0.5;
/// Throttles within this long of a cut count as the same event: the posts already in
/// flight when the rate was cut answer 429 too, and must not cut it again.
const CUT_COOLDOWN: Duration = Duration::from_millis(100);
/// Successes it takes to climb from the floor back to the ceiling, linearly.
const SUCCESSES_TO_RECOVER: f64 = 2_000.0;
/// From this share of the rate at which the account last throttled up to [`PROBE_TO`] of it,
/// the rate climbs [`PROBE_SLOWDOWN`] times slower: back quickly to just under the limit it
/// found, then probing past it, so that a pacer held at the account's throttle stays near it
/// instead of overshooting by the signal's 10% every few hundred milliseconds. Past
/// [`PROBE_TO`] the limit no longer binds, and the climb is quick again.
const PROBE_FROM: f64 = 0.9;
/// See [`PROBE_FROM`]. A limit found too low (a second cut soon after the first, at the
/// halved rate) slows the climb over a fifth of it only.
const PROBE_TO: f64 = 1.1;
/// How much slower the rate climbs near (and past) the last throttled rate.
const PROBE_SLOWDOWN: f64 = 50.0;
/// Posts may start this far ahead of the steady schedule (a burst after an idle spell).
const BURST: Duration = Duration::from_millis(50);
/// How long the first posts' answers are counted together.
pub const SIGNAL_WINDOW: Duration = Duration::from_millis(250);
/// The fewest first posts answered in a window for their 429s to cut the rate.
pub const SIGNAL_MIN_FIRST_POSTS: u32 = 20;
/// The share of a window's first posts answered 429 that cuts the rate.
pub const SIGNAL_THROTTLED_SHARE: f64 = 0.1;

/// Spaces post starts at the current rate; see the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Pacer {
    ceiling: f64,
    rate: f64,
    /// When the next post may start on the steady schedule.
    next: Duration,
    last_cut: Option<Duration>,
    /// The rate at which the account last throttled.
    throttled_at: Option<f64>,
    /// Posts booked for a later start that have not started (nor given up) yet.
    waiting: usize,
    /// The first posts answered in the current window, and those of them answered 429.
    window: FirstPosts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct FirstPosts {
    since: Duration,
    answered: u32,
    throttled: u32,
}

impl Pacer {
    /// A pacer allowing at most `posts_per_second` (at least 1).
    pub fn new(posts_per_second: u32) -> Self {
        let ceiling = f64::from(posts_per_second.max(1));
        Self {
            ceiling,
            rate: ceiling,
            next: Duration::ZERO,
            last_cut: None,
            throttled_at: None,
            waiting: 0,
            window: FirstPosts::default(),
        }
    }

    /// The rate in force, in posts per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Books the start of one post asked for at `now`, and returns when it may start (`now`
    /// or later); or books nothing and returns `None` when that start would be at or after
    /// `stop`. A refused slot is never booked: the post does not happen, and a booking for
    /// it would push every later post of every push further out.
    ///
    /// A start later than `now` makes the caller a waiter, who MUST call
    /// [`stopped_waiting`](Self::stopped_waiting) once, when its slot comes or when it gives
    /// up. With nobody waiting, every booking after `now` but the last post's own spacing was
    /// abandoned (a push dropped while its posts waited), so the schedule is brought back to
    /// within one slot of `now`: an abandoned push never starves the later pushes of the
    /// instance, and posts still waiting are never bunched together.
    pub fn reserve(&mut self, now: Duration, stop: Option<Duration>) -> Option<Duration> {
        let slot = Duration::from_secs_f64(1.0 / self.rate);
        if self.waiting == 0 {
            self.next = self.next.min(now + slot);
        }
        let start = self.next.max(now.saturating_sub(BURST));
        let begins = start.max(now);
        if stop.is_some_and(|stop| begins >= stop) {
            return None;
        }
        self.next = start + slot;
        if begins > now {
            self.waiting += 1;
        }
        Some(begins)
    }

    /// A post that [`reserve`](Self::reserve) gave a later start has started, or given up.
    pub fn stopped_waiting(&mut self) {
        self.waiting = self.waiting.saturating_sub(1);
    }

    /// A connection's first post was answered at `now`, 429 (`throttled`) or delivered.
    /// Cuts the rate when the window's first posts show the account's throttle (see the
    /// module docs); returns whether it did. Retries are not counted: a slow client's
    /// repeated 429s are its own.
    pub fn first_post_answered(&mut self, now: Duration, throttled: bool) -> bool {
        if now.saturating_sub(self.window.since) >= SIGNAL_WINDOW {
            self.window = FirstPosts {
                since: now,
                ..FirstPosts::default()
            };
        }
        self.window.answered += 1;
        self.window.throttled += u32::from(throttled);
        let FirstPosts {
            answered,
            throttled: refused,
            ..
        } = self.window;
        let account_throttle = throttled
            && answered >= SIGNAL_MIN_FIRST_POSTS
            && f64::from(refused) >= SIGNAL_THROTTLED_SHARE * f64::from(answered);
        if !account_throttle {
            return false;
        }
        self.window = FirstPosts {
            since: now,
            ..FirstPosts::default()
        };
        self.cut(now)
    }

    /// The account throttle showed at `now`: halve the rate, at most once per cooldown;
    /// whether it did.
    pub fn cut(&mut self, now: Duration) -> bool {
        let cooling = self
            .last_cut
            .is_some_and(|cut| now.saturating_sub(cut) < CUT_COOLDOWN);
        if cooling {
            return false;
        }
        self.throttled_at = Some(self.rate);
        self.rate = (self.rate * CUT_TO).max(self.ceiling * FLOOR_SHARE);
        self.last_cut = Some(now);
        true
    }

    /// A post got through: raise the rate a step, up to the ceiling; a smaller step near
    /// and past the rate at which the account last throttled.
    pub fn delivered(&mut self) {
        let mut step = self.ceiling * (1.0 - FLOOR_SHARE) / SUCCESSES_TO_RECOVER;
        if self
            .throttled_at
            .is_some_and(|limit| (limit * PROBE_FROM..limit * PROBE_TO).contains(&self.rate))
        {
            step /= PROBE_SLOWDOWN;
        }
        self.rate = (self.rate + step).min(self.ceiling);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn after_a_short_burst_posts_start_at_the_ceiling_rate() {
        let mut pacer = Pacer::new(1_000);

        let starts: Vec<Duration> = (0..200)
            .map(|_| pacer.reserve(ms(1_000), None).expect("no stop"))
            .collect();

        // 50 ms of burst lets the first 50 start at once; the rest follow 1 ms apart.
        assert!(starts[..50].iter().all(|start| *start == ms(1_000)));
        assert_eq!(starts[50], ms(1_000));
        assert_eq!(starts[51], ms(1_001));
        assert_eq!(starts[199], ms(1_149));
    }

    #[test]
    fn an_idle_pacer_does_not_save_up_more_than_the_burst() {
        let mut pacer = Pacer::new(100);
        pacer.reserve(ms(0), None);

        let starts: Vec<Duration> = (0..10)
            .map(|_| pacer.reserve(ms(60_000), None).expect("no stop"))
            .collect();

        // 100/s is 10 ms apart; 50 ms of burst covers 5 posts at once, then the schedule.
        assert_eq!(&starts[..6], &[ms(60_000); 6]);
        assert_eq!(starts[6], ms(60_010));
        assert_eq!(starts[9], ms(60_040));
    }

    #[test]
    fn a_throttle_halves_the_rate_once_per_cooldown_down_to_the_floor() {
        let mut pacer = Pacer::new(1_000);

        let _ = pacer.cut(ms(0));
        let _ = pacer.cut(ms(50));
        assert_eq!(pacer.rate(), 500.0, "the second 429 is the same event");
        let _ = pacer.cut(ms(100));
        assert_eq!(pacer.rate(), 250.0);
        for step in 2..20 {
            let _ = pacer.cut(ms(100 * step));
        }
        assert_eq!(pacer.rate(), 20.0, "the floor is 2% of the ceiling");
    }

    #[test]
    fn deliveries_raise_the_rate_back_to_the_ceiling_and_no_higher() {
        let mut pacer = Pacer::new(1_000);
        let _ = pacer.cut(ms(0));

        // 0.49 a delivery up to 900 (90% of the rate that was throttled), then 50 times
        // slower.
        for _ in 0..816 {
            pacer.delivered();
        }
        let near_the_limit = pacer.rate();
        for _ in 0..10_000 {
            pacer.delivered();
        }
        let probing = pacer.rate();
        for _ in 0..20_000 {
            pacer.delivered();
        }

        assert!((899.0..901.0).contains(&near_the_limit), "{near_the_limit}");
        assert!((998.0..1_000.0).contains(&probing), "{probing}");
        assert_eq!(pacer.rate(), 1_000.0);
    }

    #[test]
    fn a_limit_found_too_low_slows_the_climb_only_near_it() {
        let mut pacer = Pacer::new(1_000);
        let _ = pacer.cut(ms(0));
        // A second cut while the account still throttles: the limit found is 500.
        let _ = pacer.cut(ms(200));
        assert_eq!(pacer.rate(), 250.0);

        // Quick to 450 (408 deliveries), slow to 550 (10,204), quick again past it (918): the
        // ceiling within 12,000 deliveries, where a slow climb all the way from 450 would
        // take about 56,000.
        for _ in 0..12_000 {
            pacer.delivered();
        }

        assert_eq!(pacer.rate(), 1_000.0);
    }

    #[test]
    fn a_cut_rate_spaces_posts_further_apart() {
        let mut pacer = Pacer::new(1_000);
        for _ in 0..100 {
            pacer.reserve(ms(0), None);
        }
        let _ = pacer.cut(ms(0));

        let first = pacer.reserve(ms(0), None).expect("no stop");
        let second = pacer.reserve(ms(0), None).expect("no stop");

        assert_eq!(second - first, ms(2), "500/s");
    }

    #[test]
    fn a_slot_at_or_after_the_stop_is_refused_and_not_booked() {
        let mut pacer = Pacer::new(10);
        // 100 ms apart: after the 50 ms burst, the 2nd post starts at 100 ms.
        assert_eq!(pacer.reserve(ms(0), Some(ms(150))), Some(ms(0)));
        assert_eq!(pacer.reserve(ms(0), Some(ms(150))), Some(ms(100)));

        let refused: Vec<_> = (0..1_000)
            .map(|_| pacer.reserve(ms(0), Some(ms(150))))
            .collect();

        assert!(refused.iter().all(Option::is_none));
        assert_eq!(
            pacer.reserve(ms(0), None),
            Some(ms(200)),
            "the refusals booked nothing"
        );
    }

    #[test]
    fn posts_waiting_for_their_slots_are_spaced_however_long_the_line() {
        let mut pacer = Pacer::new(10);

        let starts: Vec<Duration> = (0..256)
            .map(|_| pacer.reserve(ms(0), None).expect("no stop"))
            .collect();

        // 100 ms apart, the first at once: the 256th 25.5 s out, none bunched.
        assert!(starts.windows(2).all(|pair| pair[1] - pair[0] == ms(100)));
        assert_eq!(starts[255], ms(25_500));
    }

    #[test]
    fn bookings_abandoned_by_their_waiters_are_forgotten_once_nobody_waits() {
        let mut pacer = Pacer::new(100);
        // 100,000 waiters 10 ms apart: 1,000 s of schedule, then all of them dropped.
        for _ in 0..100_000 {
            pacer.reserve(ms(0), None);
        }
        let still_held = pacer.reserve(ms(1_000), None).expect("no stop");
        pacer.stopped_waiting();
        for _ in 0..100_000 {
            pacer.stopped_waiting();
        }

        let start = pacer.reserve(ms(2_000), None).expect("no stop");

        assert_eq!(still_held, ms(1_000_000), "live waiters keep their place");
        // Nobody waits: the schedule is back within one slot (10 ms) of now.
        assert_eq!(start, ms(2_010));
    }

    #[test]
    fn a_slot_of_fifty_seconds_at_the_floor_spaces_posts_fifty_seconds_apart() {
        // 1 post a second at the floor of 2% is one every 50 s.
        let mut pacer = Pacer::new(1);
        for step in 0..10 {
            let _ = pacer.cut(ms(1_000 * step));
        }

        let first = pacer.reserve(ms(0), None).expect("no stop");
        let second = pacer.reserve(ms(0), None).expect("no stop");

        assert_eq!((first, second), (ms(0), ms(50_000)));
    }

    /// `first` first posts answered over `span`, evenly, `share` of them 429 (spread out);
    /// how many times the rate was cut.
    fn answer_first_posts(pacer: &mut Pacer, first: u32, share: f64, span: Duration) -> u32 {
        let mut cuts = 0;
        let mut owed = 0.0;
        for n in 0..first {
            owed += share;
            let throttled = owed >= 1.0;
            if throttled {
                owed -= 1.0;
            }
            let at = span.mul_f64(f64::from(n) / f64::from(first));
            cuts += u32::from(pacer.first_post_answered(at, throttled));
        }
        cuts
    }

    #[test]
    fn a_few_slow_connections_never_cut_the_rate_however_often_they_are_retried() {
        let mut pacer = Pacer::new(1_000);
        // 10,000 first posts over 10 s, 2% of them (200 slow clients) answered 429; their
        // retries are not first posts, so they do not count.
        let cuts = answer_first_posts(&mut pacer, 10_000, 0.02, ms(10_000));
        assert_eq!(cuts, 0);
        assert_eq!(pacer.rate(), 1_000.0);
        // Just under the share: still no cut.
        assert_eq!(answer_first_posts(&mut pacer, 10_000, 0.09, ms(10_000)), 0);
    }

    #[test]
    fn the_account_throttle_cuts_the_rate() {
        let mut pacer = Pacer::new(1_000);
        // A third of the first posts refused: the throttle of the whole account.
        let cuts = answer_first_posts(&mut pacer, 1_000, 0.34, ms(1_000));
        assert!(cuts >= 4, "{cuts} cuts");
        assert!(pacer.rate() < 1_000.0 / 8.0, "{}", pacer.rate());
    }

    #[test]
    fn a_small_push_of_slow_connections_is_too_few_to_cut() {
        let mut pacer = Pacer::new(1_000);
        // Ten first posts, half refused: fewer than the 20 a window needs.
        assert_eq!(answer_first_posts(&mut pacer, 10, 0.5, ms(100)), 0);
        assert_eq!(pacer.rate(), 1_000.0);
    }
}
