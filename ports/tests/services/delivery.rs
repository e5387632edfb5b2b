//! `PushService::deliver`: continuations at the deadline, scatter, narrowed re-enqueue of
//! failures, and idempotent redelivery, with the real in-memory store (also the ledger), a
//! gateway double that tallies every post, and a queue double that keeps what is enqueued.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::time::Instant;
use wspush_adapters::MemoryStore;
use wspush_domain::{ContinuationLimits, NotificationRequest, RequestId};
use wspush_ports::{
    Claim, ConnectionGateway, ConnectionInfo, ContinuationConfig, Delivery, DeliveryContext,
    GatewayError, LedgerConfig, MessageId, NotificationPublisher, PublishError, PushService,
    RequestLedger, ScatterConfig, Stop,
};

use crate::helpers::*;

/// Answers every post after `latency`; connections in `failing` always answer 500, and
/// those in `failing_after_delivery` answer 500 after the client got the message (API
/// Gateway can do both). While `throttling` is set, every post answers 429.
struct TallyGateway {
    latency: Duration,
    failing: HashSet<String>,
    failing_after_delivery: HashSet<String>,
    throttling: AtomicBool,
    received: Mutex<BTreeMap<String, usize>>,
}

impl TallyGateway {
    fn new(latency: Duration) -> Self {
        Self {
            latency,
            failing: HashSet::new(),
            failing_after_delivery: HashSet::new(),
            throttling: AtomicBool::new(false),
            received: Mutex::new(BTreeMap::new()),
        }
    }

    fn failing(mut self, ids: &[&str]) -> Self {
        self.failing = ids.iter().map(|id| (*id).to_owned()).collect();
        self
    }

    fn failing_after_delivery(mut self, ids: &[&str]) -> Self {
        self.failing_after_delivery = ids.iter().map(|id| (*id).to_owned()).collect();
        self
    }

    fn throttle(&self, on: bool) {
        self.throttling.store(on, Ordering::SeqCst);
    }

    fn received(&self) -> BTreeMap<String, usize> {
        self.received.lock().expect("lock").clone()
    }

    fn posts(&self) -> usize {
        self.received().values().sum()
    }
}

#[async_trait]
impl ConnectionGateway for TallyGateway {
    async fn post(
        &self,
        connection: &wspush_domain::ConnectionId,
        _: Bytes,
    ) -> Result<(), GatewayError> {
        tokio::time::sleep(self.latency).await;
        if self.throttling.load(Ordering::SeqCst) {
            return Err(GatewayError::Throttled);
        }
        if self.failing.contains(connection.as_str()) {
            return Err(GatewayError::Unavailable("injected 500".into()));
        }
        *self
            .received
            .lock()
            .expect("lock")
            .entry(connection.to_string())
            .or_default() += 1;
        if self.failing_after_delivery.contains(connection.as_str()) {
            return Err(GatewayError::Unavailable(
                "injected 500 after delivery".into(),
            ));
        }
        Ok(())
    }

    async fn delete(&self, _: &wspush_domain::ConnectionId) -> Result<(), GatewayError> {
        Ok(())
    }

    async fn get(&self, _: &wspush_domain::ConnectionId) -> Result<ConnectionInfo, GatewayError> {
        Err(GatewayError::Gone)
    }
}

/// Keeps enqueued requests as their JSON text (what SQS would carry), or refuses them.
#[derive(Default)]
struct Queue {
    messages: Mutex<VecDeque<String>>,
    refuse: bool,
}

impl Queue {
    fn pop(&self) -> Option<NotificationRequest> {
        let text = self.messages.lock().expect("lock").pop_front()?;
        Some(NotificationRequest::parse(&text).expect("a continuation is a valid request"))
    }

    fn len(&self) -> usize {
        self.messages.lock().expect("lock").len()
    }
}

#[async_trait]
impl NotificationPublisher for Queue {
    async fn publish(&self, request: &NotificationRequest) -> Result<MessageId, PublishError> {
        if self.refuse {
            return Err(PublishError::Rejected("queue refuses".into()));
        }
        let mut messages = self.messages.lock().expect("lock");
        messages.push_back(request.to_json());
        Ok(format!("q-{}", messages.len()))
    }

    async fn publish_batch(
        &self,
        requests: &[NotificationRequest],
    ) -> Vec<Result<MessageId, PublishError>> {
        let mut results = Vec::new();
        for request in requests {
            results.push(self.publish(request).await);
        }
        results
    }
}

const MARGIN: Duration = Duration::from_millis(100);

fn continuations(scatter: Option<ScatterConfig>, max_generations: u32) -> ContinuationConfig {
    ContinuationConfig {
        limits: ContinuationLimits {
            max_generations,
            ..ContinuationLimits::default()
        },
        deadline_margin: MARGIN,
        scatter,
    }
}

struct Fixture {
    store: Arc<MemoryStore>,
    gateway: Arc<TallyGateway>,
    queue: Arc<Queue>,
    service: PushService<MemoryStore, TallyGateway>,
}

async fn fixture(
    connections: usize,
    users: usize,
    gateway: TallyGateway,
    config: ContinuationConfig,
) -> Fixture {
    let store = store_of(connections, users, 4).await;
    let gateway = Arc::new(gateway);
    let queue = Arc::new(Queue::default());
    let service = PushService::new(
        Arc::clone(&store),
        Arc::clone(&gateway),
        clock(),
        config_with_in_flight(8),
    )
    .expect("valid config")
    .with_continuations(Arc::clone(&queue) as Arc<dyn NotificationPublisher>, config)
    .with_ledger(
        Arc::clone(&store) as Arc<dyn RequestLedger>,
        LedgerConfig::default(),
    );
    Fixture {
        store,
        gateway,
        queue,
        service,
    }
}

fn config_with_in_flight(max_in_flight: usize) -> wspush_ports::PushConfig {
    wspush_ports::PushConfig {
        max_in_flight,
        page_size: 10,
        ..config()
    }
}

/// A delivery with `budget` left before the deadline.
fn with_deadline(budget: Duration, message_id: &str) -> DeliveryContext {
    DeliveryContext {
        deadline: Some(Instant::now() + budget),
        message_id: Some(RequestId::parse(message_id).expect("valid")),
    }
}

/// Runs the queue dry, as the pusher would, each message with `budget` before its
/// deadline. Returns the outcomes in order.
async fn drain(fixture: &Fixture, budget: Duration) -> Vec<Delivery> {
    let mut outcomes = Vec::new();
    let mut n = 0;
    while let Some(continuation) = fixture.queue.pop() {
        n += 1;
        assert!(n < 1_000, "the continuations never end");
        outcomes.push(
            fixture
                .service
                .deliver(&continuation, &with_deadline(budget, &format!("q-msg-{n}")))
                .await,
        );
    }
    outcomes
}

fn each_exactly_once(received: &BTreeMap<String, usize>, expected: usize) {
    let twice: Vec<_> = received.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "received more than once: {twice:?}");
    assert_eq!(received.len(), expected, "connections reached");
}

#[tokio::test(start_paused = true)]
async fn a_tiny_deadline_hands_the_rest_on_and_the_continuations_reach_everyone_exactly_once() {
    for (name, text, audience) in [
        ("broadcast", r#"{"data":1}"#, 300),
        ("many users", &users_request(30), 300),
        ("one topic", r#"{"topics":["room:1"],"data":1}"#, 300),
    ] {
        let fixture = fixture(
            300,
            30,
            TallyGateway::new(Duration::from_millis(10)),
            continuations(None, 3),
        )
        .await;
        for i in 0..300 {
            subscribe(&fixture.store, &format!("c{i:04}"), &["room:1"]).await;
        }

        // 8 posts in flight of 10 ms each: about 80 posts fit before the stop point.
        let first = fixture
            .service
            .deliver(
                &request(text),
                &with_deadline(MARGIN + Duration::from_millis(100), "m-1"),
            )
            .await;
        let reached_first = fixture.gateway.posts();
        let outcomes = drain(&fixture, MARGIN + Duration::from_millis(100)).await;

        let Delivery::Continued(report) = &first else {
            panic!("{name}: the first delivery should be continued: {first:?}");
        };
        assert_eq!(report.stopped, Some(Stop::Deadline), "{name}");
        assert!(report.continuations > 0, "{name}");
        assert!(
            reached_first > 0 && reached_first < audience,
            "{name}: the first delivery reached {reached_first}"
        );
        assert!(
            outcomes.iter().all(Delivery::succeeded),
            "{name}: {outcomes:?}"
        );
        each_exactly_once(&fixture.gateway.received(), audience);
    }
}

fn users_request(users: usize) -> String {
    let list: Vec<String> = (0..users).map(|u| format!("\"u{u}\"")).collect();
    format!(r#"{{"users":[{}],"data":1}}"#, list.join(","))
}

#[tokio::test(start_paused = true)]
async fn overlapping_topics_at_the_deadline_are_read_to_the_end_and_handed_on_as_connections() {
    let fixture = fixture(
        200,
        10,
        TallyGateway::new(Duration::from_millis(10)),
        continuations(None, 3),
    )
    .await;
    for i in 0..200 {
        let topics: &[&str] = if i % 2 == 0 { &["a", "b"] } else { &["b"] };
        subscribe(&fixture.store, &format!("c{i:04}"), topics).await;
    }

    let first = fixture
        .service
        .deliver(
            &request(r#"{"topics":["a","b"],"data":1}"#),
            &with_deadline(MARGIN + Duration::from_millis(50), "m-1"),
        )
        .await;
    let queued: Vec<NotificationRequest> = {
        let mut all = Vec::new();
        while let Some(next) = fixture.queue.pop() {
            all.push(next);
        }
        all
    };
    for continuation in &queued {
        fixture.queue.publish(continuation).await.expect("requeue");
    }
    let outcomes = drain(&fixture, Duration::from_secs(60)).await;

    assert!(matches!(first, Delivery::Continued(_)), "{first:?}");
    assert!(
        queued
            .iter()
            .all(|c| c.topics().is_empty() && !c.connections().is_empty()),
        "only connection lists may continue overlapping sources: {queued:?}"
    );
    assert!(outcomes.iter().all(Delivery::succeeded));
    each_exactly_once(&fixture.gateway.received(), 200);
}

#[tokio::test(start_paused = true)]
async fn connections_that_keep_failing_are_re_enqueued_alone_for_a_bounded_number_of_generations() {
    let gateway = TallyGateway::new(Duration::from_millis(1)).failing(&["c0003", "c0007"]);
    let fixture = fixture(20, 4, gateway, continuations(None, 2)).await;

    let first = fixture
        .service
        .deliver(
            &request(r#"{"data":"x"}"#),
            &with_deadline(Duration::from_secs(60), "m-1"),
        )
        .await;
    let retried = fixture.queue.pop().expect("a narrowed request");
    let second = fixture
        .service
        .deliver(&retried, &with_deadline(Duration::from_secs(60), "q-2"))
        .await;
    let last = fixture.queue.pop().expect("the next generation");
    let third = fixture
        .service
        .deliver(&last, &with_deadline(Duration::from_secs(60), "q-3"))
        .await;

    assert!(matches!(first, Delivery::Continued(_)), "{first:?}");
    let mut narrowed: Vec<&str> = retried.connections().iter().map(|c| c.as_str()).collect();
    narrowed.sort_unstable();
    assert_eq!(narrowed, ["c0003", "c0007"]);
    assert_eq!(retried.generation(), 1);
    assert!(
        retried
            .id()
            .is_some_and(|id| id.as_str().starts_with("m-1~"))
    );
    assert!(matches!(second, Delivery::Continued(_)), "{second:?}");
    assert_eq!(last.generation(), 2);
    let Delivery::Failed { reason, .. } = &third else {
        panic!("the last generation must fail to its source: {third:?}");
    };
    assert!(reason.to_string().contains("generation 2"), "{reason}");
    assert_eq!(fixture.queue.len(), 0);
    each_exactly_once(&fixture.gateway.received(), 18);
}

#[tokio::test(start_paused = true)]
async fn a_broadcast_above_the_threshold_is_scattered_into_segment_requests() {
    let scatter = ScatterConfig::new(40, 16).expect("valid");
    let fixture = fixture(
        400,
        50,
        TallyGateway::new(Duration::from_millis(1)),
        continuations(Some(scatter), 3),
    )
    .await;

    let first = fixture
        .service
        .deliver(
            &request(r#"{"exclude_users":["u7"],"data":1}"#),
            &with_deadline(Duration::from_secs(60), "m-1"),
        )
        .await;
    let mut segments = Vec::new();
    let mut queued = Vec::new();
    while let Some(next) = fixture.queue.pop() {
        segments.push(next.segment().expect("a segment request"));
        queued.push(next);
    }
    for continuation in &queued {
        fixture.queue.publish(continuation).await.expect("requeue");
    }
    let outcomes = drain(&fixture, Duration::from_secs(60)).await;

    let Delivery::Continued(report) = &first else {
        panic!("{first:?}");
    };
    assert_eq!(report.stopped, Some(Stop::Scatter));
    assert!(
        report.delivered >= 40 && report.delivered < 392,
        "{}",
        report.delivered
    );
    assert!(segments.iter().all(|s| s.total() == 16));
    assert!(queued.iter().all(|c| c.exclude_users().len() == 1));
    assert!(
        outcomes.iter().all(|o| matches!(o, Delivery::Complete(_))),
        "{outcomes:?}"
    );
    // 400 connections, 8 of them user u7's.
    each_exactly_once(&fixture.gateway.received(), 392);
    assert!(!fixture.gateway.received().contains_key("c0007"));
}

#[tokio::test(start_paused = true)]
async fn a_redelivered_request_is_skipped_and_a_request_in_progress_is_left_for_later() {
    let fixture = fixture(
        10,
        2,
        TallyGateway::new(Duration::from_millis(1)),
        continuations(None, 3),
    )
    .await;
    let text = request(r#"{"data":1}"#);

    let first = fixture
        .service
        .deliver(&text, &with_deadline(Duration::from_secs(60), "m-1"))
        .await;
    let again = fixture
        .service
        .deliver(&text, &with_deadline(Duration::from_secs(60), "m-1"))
        .await;
    let claimed = fixture
        .store
        .claim(
            &RequestId::parse("m-2").expect("valid"),
            NOW,
            NOW.saturating_add(Duration::from_secs(60)),
        )
        .await
        .expect("claim");
    let busy = fixture
        .service
        .deliver(&text, &with_deadline(Duration::from_secs(60), "m-2"))
        .await;

    assert!(matches!(first, Delivery::Complete(_)), "{first:?}");
    assert_eq!(
        again,
        Delivery::Duplicate(RequestId::parse("m-1").expect("valid"))
    );
    assert!(again.succeeded());
    assert_eq!(claimed, Claim::Claimed);
    assert!(matches!(busy, Delivery::InProgress { .. }), "{busy:?}");
    assert!(!busy.succeeded());
    each_exactly_once(&fixture.gateway.received(), 10);
}

#[tokio::test(start_paused = true)]
async fn the_request_id_field_wins_over_the_message_id() {
    let fixture = fixture(
        3,
        1,
        TallyGateway::new(Duration::from_millis(1)),
        continuations(None, 3),
    )
    .await;
    let text = request(r#"{"id":"order-7","data":1}"#);

    fixture
        .service
        .deliver(&text, &with_deadline(Duration::from_secs(60), "sqs-a"))
        .await;
    let resent = fixture
        .service
        .deliver(&text, &with_deadline(Duration::from_secs(60), "sqs-b"))
        .await;

    assert_eq!(
        resent,
        Delivery::Duplicate(RequestId::parse("order-7").expect("valid"))
    );
    assert_eq!(fixture.gateway.posts(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_failed_delivery_releases_its_claim_so_that_the_retry_runs_at_once() {
    let fixture = fixture(
        5,
        1,
        TallyGateway::new(Duration::from_millis(1)).failing(&["c0001"]),
        continuations(None, 0),
    )
    .await;

    let first = fixture
        .service
        .deliver(
            &request(r#"{"data":1}"#),
            &with_deadline(Duration::from_secs(60), "m-1"),
        )
        .await;
    let claim = fixture
        .store
        .claim(
            &RequestId::parse("m-1").expect("valid"),
            NOW,
            NOW.saturating_add(Duration::from_secs(60)),
        )
        .await
        .expect("claim");

    assert!(matches!(first, Delivery::Failed { .. }), "{first:?}");
    assert_eq!(
        claim,
        Claim::Claimed,
        "the failed delivery's claim was released"
    );
}

#[tokio::test(start_paused = true)]
async fn a_deadline_too_close_to_make_progress_fails_instead_of_looping() {
    let fixture = fixture(
        5,
        1,
        TallyGateway::new(Duration::from_millis(1)),
        continuations(None, 3),
    )
    .await;

    let outcome = fixture
        .service
        .deliver(&request(r#"{"data":1}"#), &with_deadline(MARGIN / 2, "m-1"))
        .await;

    let Delivery::Failed { reason, .. } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        reason.to_string().contains("before any progress"),
        "{reason}"
    );
    assert_eq!(fixture.queue.len(), 0);
    assert_eq!(fixture.gateway.posts(), 0);
}

#[tokio::test(start_paused = true)]
async fn continuations_that_cannot_be_enqueued_fail_the_request() {
    let store = store_with(&[("a", "u"), ("b", "u"), ("c", "u")]).await;
    let queue = Arc::new(Queue {
        refuse: true,
        ..Queue::default()
    });
    let gateway = Arc::new(TallyGateway::new(Duration::from_millis(1)).failing(&["b"]));
    let service = PushService::new(store, gateway, clock(), config())
        .expect("valid")
        .with_continuations(queue, continuations(None, 3));

    let outcome = service
        .deliver(
            &request(r#"{"users":["u"],"data":1}"#),
            &DeliveryContext::default(),
        )
        .await;

    let Delivery::Failed { reason, .. } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        reason
            .to_string()
            .contains("1 of 1 continuations could not be enqueued"),
        "{reason}"
    );
}

#[tokio::test(start_paused = true)]
async fn without_continuations_an_incomplete_push_fails_as_before() {
    let store = store_with(&[("a", "u"), ("b", "u")]).await;
    let gateway = Arc::new(TallyGateway::new(Duration::from_millis(1)).failing(&["b"]));
    let service = PushService::new(store, gateway, clock(), config()).expect("valid");

    let outcome = service
        .deliver(
            &request(r#"{"users":["u"],"data":1}"#),
            &with_deadline(Duration::from_secs(60), "m-1"),
        )
        .await;

    assert!(matches!(outcome, Delivery::Failed { .. }), "{outcome:?}");
    assert_eq!(outcome.report().map(|r| r.delivered), Some(1));
}

#[tokio::test(start_paused = true)]
async fn at_the_stop_point_no_post_waits_for_a_rate_slot() {
    let store = store_of(100, 1, 3).await;
    let queue = Arc::new(Queue::default());
    let gateway = Arc::new(TallyGateway::new(Duration::from_millis(1)));
    // 10 posts a second: 100 connections would take 10 s of waiting for slots.
    let paced = wspush_ports::PushConfig {
        max_posts_per_second: Some(10),
        ..config()
    };
    let service = PushService::new(store, Arc::clone(&gateway), clock(), paced)
        .expect("valid")
        .with_continuations(queue.clone(), continuations(None, 3));
    let deadline = Instant::now() + MARGIN + Duration::from_secs(1);

    let outcome = service
        .deliver(
            &request(r#"{"users":["u0"],"data":1}"#),
            &DeliveryContext {
                deadline: Some(deadline),
                message_id: None,
            },
        )
        .await;

    assert!(
        Instant::now() <= deadline - MARGIN / 2,
        "the push ran {:?} past its stop point",
        Instant::now().saturating_duration_since(deadline - MARGIN)
    );
    assert!(matches!(outcome, Delivery::Continued(_)), "{outcome:?}");
    let carried: usize = std::iter::from_fn(|| queue.pop())
        .map(|c| c.connections().len())
        .sum();
    assert_eq!(gateway.posts() + carried, 100);
}

/// A service over `gateway` and `store` with the default push settings (8,000 posts a
/// second, 256 in flight, pages of 500) but for `max_posts_per_second`, continuations to
/// `queue`.
fn default_service(
    store: &Arc<MemoryStore>,
    gateway: &Arc<TallyGateway>,
    queue: &Arc<Queue>,
    max_posts_per_second: Option<u32>,
) -> PushService<MemoryStore, TallyGateway> {
    let config = wspush_ports::PushConfig {
        max_posts_per_second,
        ..wspush_ports::PushConfig::default()
    };
    PushService::new(Arc::clone(store), Arc::clone(gateway), clock(), config)
        .expect("valid")
        .with_continuations(
            Arc::clone(queue) as Arc<dyn NotificationPublisher>,
            continuations(None, 3),
        )
}

#[tokio::test(start_paused = true)]
async fn a_throttle_storm_that_reaches_the_stop_point_leaves_the_next_push_its_full_rate() {
    let store = store_of(20_050, 1_000, 5).await;
    let gateway = Arc::new(TallyGateway::new(Duration::from_millis(1)));
    let queue = Arc::new(Queue::default());
    let service = default_service(&store, &gateway, &queue, Some(8_000));
    gateway.throttle(true);

    let stormed = service
        .deliver(
            &request(r#"{"data":1}"#),
            &with_deadline(MARGIN + Duration::from_secs(2), "m-storm"),
        )
        .await;
    gateway.throttle(false);
    let ids: Vec<String> = (20_000..20_050).map(|i| format!("\"c{i:05}\"")).collect();
    let next = service
        .deliver(
            &request(&format!(
                r#"{{"connections":[{}],"data":2}}"#,
                ids.join(",")
            )),
            &with_deadline(MARGIN + Duration::from_secs(20), "m-next"),
        )
        .await;

    let Delivery::Continued(storm) = &stormed else {
        panic!("the storm reaches its stop point and is continued: {stormed:?}");
    };
    assert_eq!(storm.stopped, Some(Stop::Deadline));
    assert!(storm.throttled > 0 && storm.unsent > 0, "{storm:?}");
    let Delivery::Complete(report) = &next else {
        panic!("the next push on a healthy gateway completes: {next:?}");
    };
    assert_eq!(report.delivered, 50);
}

#[tokio::test(start_paused = true)]
async fn at_ten_posts_a_second_each_continuation_posts_what_its_window_allows() {
    let store = store_of(100, 1, 3).await;
    let gateway = Arc::new(TallyGateway::new(Duration::from_millis(1)));
    let queue = Arc::new(Queue::default());
    let service = default_service(&store, &gateway, &queue, Some(10));
    let window = MARGIN + Duration::from_secs(5);

    let mut outcomes = vec![
        service
            .deliver(
                &request(r#"{"users":["u0"],"data":1}"#),
                &with_deadline(window, "m-1"),
            )
            .await,
    ];
    let mut posted = vec![gateway.posts()];
    while let Some(continuation) = queue.pop() {
        assert!(
            outcomes.len() < 10,
            "ten hops for 100 posts at 10/s: {posted:?}"
        );
        let id = format!("q-{}", outcomes.len());
        outcomes.push(
            service
                .deliver(&continuation, &with_deadline(window, &id))
                .await,
        );
        posted.push(gateway.posts());
    }

    // About 50 posts fit in each 5-second window at 10 a second.
    assert!(outcomes.iter().all(Delivery::succeeded), "{outcomes:?}");
    assert!(
        posted.windows(2).all(|hop| hop[1] > hop[0]),
        "every hop posts: {posted:?}"
    );
    assert!(outcomes.len() <= 3, "{posted:?}");
    each_exactly_once(&gateway.received(), 100);
}

#[tokio::test(start_paused = true)]
async fn a_post_answered_500_with_its_retry_after_the_stop_point_is_not_continued_for_ever() {
    let store = store_with(&[("c0", "u"), ("c1", "u")]).await;
    let gateway =
        Arc::new(TallyGateway::new(Duration::from_millis(20)).failing_after_delivery(&["c0"]));
    let queue = Arc::new(Queue::default());
    let service = default_service(&store, &gateway, &queue, None);
    let window = MARGIN + Duration::from_millis(15);

    let mut outcomes = vec![
        service
            .deliver(
                &request(r#"{"connections":["c0","c1"],"data":1}"#),
                &with_deadline(window, "m-1"),
            )
            .await,
    ];
    let mut generations = vec![0];
    while let Some(continuation) = queue.pop() {
        assert!(
            outcomes.len() < 20,
            "the continuations never end: {generations:?}"
        );
        generations.push(continuation.generation());
        let id = format!("q-{}", outcomes.len());
        outcomes.push(
            service
                .deliver(&continuation, &with_deadline(window, &id))
                .await,
        );
    }

    let last = outcomes.last().expect("an outcome");
    let Delivery::Failed { reason, .. } = last else {
        panic!("the request is reported failed to its source: {last:?}");
    };
    assert!(reason.to_string().contains("generation 3"), "{reason}");
    // The first hop delivers c1; c0, tried, goes on a generation later, alone, each hop,
    // until the bound (3): then the request is reported failed.
    assert_eq!(generations, [0, 1, 2, 3]);
    assert_eq!(gateway.received()["c0"], 4, "one post per hop");
    assert_eq!(gateway.received()["c1"], 1);
}

#[tokio::test(start_paused = true)]
async fn a_connection_throttled_until_the_stop_point_goes_on_a_generation_later() {
    // 10 posts a second: after the first 429, the retry waits for a slot, and the next
    // slot (or the retry's backoff) falls after the stop point, 150 ms away.
    let store = store_with(&[("c0", "u")]).await;
    let gateway = Arc::new(TallyGateway::new(Duration::from_millis(1)));
    gateway.throttle(true);
    let queue = Arc::new(Queue::default());
    let service = default_service(&store, &gateway, &queue, Some(10));

    let outcome = service
        .deliver(
            &request(r#"{"connections":["c0"],"data":1}"#),
            &with_deadline(MARGIN + Duration::from_millis(150), "m-1"),
        )
        .await;

    let Delivery::Continued(report) = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(report.throttled > 0, "{report:?}");
    let next = queue.pop().expect("a continuation");
    assert_eq!(next.generation(), 1, "it was tried: {}", next.to_json());
    assert_eq!(queue.len(), 0);
}
