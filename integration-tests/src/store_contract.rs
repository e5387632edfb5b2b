//! The behaviour every [`ConnectionStore`] (and [`RequestLedger`]) must show, written once.
//!
//! Each case is a public async function taking a fresh, empty store. Adapters run the whole
//! suite with [`store_contract_tests!`](crate::store_contract_tests), which makes one
//! `#[tokio::test]` per case.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use wspush_adapters::ManualClock;
use wspush_domain::limits::MAX_CONNECTION_DURATION;
use wspush_domain::{
    Connection, ConnectionId, ExternalId, NotificationRequest, RequestId, Segment, Source,
    Timestamp, TopicGrants, UserId,
};
use wspush_ports::{
    Claim, ConnectionGateway, ConnectionInfo, ConnectionStore, GatewayError, PushConfig,
    PushService, RequestLedger, StoreError, stream_source,
};

/// The store under test, behind the port.
pub type Store = Arc<dyn ConnectionStore>;

/// The same store, behind the ledger port.
pub type Ledger = Arc<dyn RequestLedger>;

/// The time the suite runs at.
pub const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

/// A store under test, and what to do when its test is over.
pub trait StoreFixture {
    /// The store.
    fn store(&self) -> Store;
    /// The same store as a request ledger.
    fn ledger(&self) -> Ledger;
    /// Cleans up after a passing test.
    fn finish(self) -> impl std::future::Future<Output = ()> + Send;
}

/// Generates one `#[tokio::test]` per contract case, each with a fresh [`StoreFixture`]
/// from `$factory` (an async fn).
#[macro_export]
macro_rules! store_contract_tests {
    ($factory:path) => {
        $crate::store_contract_tests!(@cases $factory;
            a_saved_connection_is_read_back,
            a_connection_keeps_the_topic_grants_of_its_token,
            an_unknown_connection_reads_as_none,
            an_expired_connection_is_never_read,
            saving_again_moves_the_connection_to_its_new_user,
            deleting_removes_the_connection_and_every_subscription,
            deleting_is_idempotent,
            a_delete_racing_a_subscribe_leaves_no_subscription_behind,
            subscribing_an_unknown_connection_fails_and_writes_nothing,
            subscribing_an_expired_connection_fails,
            subscribing_twice_keeps_one_subscription,
            unsubscribing_removes_only_the_named_topics_and_is_idempotent,
            a_user_source_yields_only_that_users_live_connections,
            a_topic_source_yields_its_live_subscribers,
            explicit_connections_skip_unknown_and_expired_ones,
            a_user_with_many_connections_is_read_across_many_pages,
            a_topic_with_1200_subscribers_streams_each_once,
            broadcast_segments_partition_the_live_connections,
            a_broadcast_yields_each_connection_once_however_many_subscriptions_it_holds,
            a_broadcast_excluding_160_users_skips_exactly_their_connections,
            a_cursor_the_store_did_not_make_is_rejected,
            a_resumed_segment_read_continues_where_its_cursor_stopped,
        );
        $crate::store_contract_tests!(@ledger_cases $factory;
            a_new_request_is_claimed_and_a_second_claim_sees_it_in_progress,
            a_completed_request_is_reported_completed_until_its_record_expires,
            a_claim_whose_lease_ended_can_be_taken_over,
            releasing_frees_a_claim_but_never_a_completion,
            a_stale_release_never_drops_the_claim_that_took_over,
            of_concurrent_claims_of_one_request_exactly_one_wins,
            request_records_never_appear_in_an_audience,
        );
    };
    (@ledger_cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                use $crate::store_contract::StoreFixture as _;
                let fixture = $factory().await;
                $crate::store_contract::$case(fixture.store(), fixture.ledger()).await;
                fixture.finish().await;
            }
        )*
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                use $crate::store_contract::StoreFixture as _;
                let fixture = $factory().await;
                $crate::store_contract::$case(fixture.store()).await;
                fixture.finish().await;
            }
        )*
    };
}

fn id(value: &str) -> ConnectionId {
    ConnectionId::parse(value).expect("valid connection ID")
}

fn user(value: &str) -> UserId {
    UserId::parse(value).expect("valid user ID")
}

fn topic(value: &str) -> ExternalId {
    ExternalId::parse(value).expect("valid external ID")
}

fn opened_at(connection: &str, owner: &str, at: Timestamp) -> Connection {
    Connection::open(id(connection), user(owner), at)
}

fn open(connection: &str, owner: &str) -> Connection {
    opened_at(connection, owner, NOW)
}

/// A connection whose 2 hours ran out exactly at [`NOW`].
fn expired(connection: &str, owner: &str) -> Connection {
    let opened = NOW.unix_millis() - MAX_CONNECTION_DURATION.as_millis() as u64;
    opened_at(connection, owner, Timestamp::from_unix_millis(opened))
}

async fn save_all(store: &Store, connections: &[Connection]) {
    for connection in connections {
        store.save(connection).await.expect("save");
    }
}

async fn subscribe(store: &Store, connection: &Connection, topics: &[&str]) {
    let topics: Vec<ExternalId> = topics.iter().map(|t| topic(t)).collect();
    store
        .subscribe(connection, &topics, NOW)
        .await
        .expect("subscribe");
}

/// Every connection ID a source yields over all its pages, in the order read.
async fn read_all(store: &Store, source: Source, limit: usize) -> Vec<String> {
    let pages: Vec<Vec<Connection>> = stream_source(Arc::clone(store), source, limit, NOW)
        .try_collect()
        .await
        .expect("read");
    pages
        .into_iter()
        .flatten()
        .map(|connection| connection.id().to_string())
        .collect()
}

async fn read_sorted(store: &Store, source: Source, limit: usize) -> Vec<String> {
    let mut ids = read_all(store, source, limit).await;
    ids.sort();
    ids
}

fn names(prefix: &str, count: usize) -> Vec<String> {
    let mut names: Vec<String> = (0..count).map(|i| format!("{prefix}{i:04}")).collect();
    names.sort();
    names
}

/// A saved connection comes back whole from `get`.
pub async fn a_saved_connection_is_read_back(store: Store) {
    let connection = open("c1", "ana");

    store.save(&connection).await.expect("save");

    assert_eq!(
        store.get(&id("c1"), NOW).await.expect("get"),
        Some(connection)
    );
}

/// The grants a token carried come back with the connection (an empty list stays empty,
/// which grants nothing, unlike no list at all).
pub async fn a_connection_keeps_the_topic_grants_of_its_token(store: Store) {
    let grants = TopicGrants::parse(["room:*", "ticker:AAPL", "*"]).expect("valid");
    let granted = open("c1", "ana").with_grants(Some(grants));
    let none = open("c2", "ana").with_grants(Some(TopicGrants::default()));
    save_all(&store, &[granted.clone(), none.clone()]).await;

    let read = store.get(&id("c1"), NOW).await.expect("get");
    let read_none = store.get(&id("c2"), NOW).await.expect("get");

    assert_eq!(read, Some(granted));
    assert_eq!(read_none, Some(none));
    assert!(read.and_then(|c| c.grants().cloned()).is_some());
}

/// `get` of a connection never saved is `None`, not an error.
pub async fn an_unknown_connection_reads_as_none(store: Store) {
    assert_eq!(store.get(&id("nobody"), NOW).await.expect("get"), None);
}

/// Past its expiry a connection is invisible to every read, although nothing deleted it.
pub async fn an_expired_connection_is_never_read(store: Store) {
    let stale = expired("stale", "ana");
    save_all(&store, &[stale.clone(), open("fresh", "ana")]).await;
    let just_before = Timestamp::from_unix_millis(NOW.unix_millis() - 1);

    let before = store.get(&id("stale"), just_before).await.expect("get");
    let at_expiry = store.get(&id("stale"), NOW).await.expect("get");

    assert_eq!(before, Some(stale));
    assert_eq!(at_expiry, None);
    assert_eq!(
        read_sorted(&store, Source::User(user("ana")), 10).await,
        ["fresh"]
    );
    assert_eq!(
        read_sorted(&store, Source::All(Segment::WHOLE), 10).await,
        ["fresh"]
    );
    assert_eq!(
        read_sorted(&store, Source::Connections(vec![id("stale")]), 10).await,
        Vec::<String>::new()
    );
}

/// Saving a connection ID again replaces it, user included.
pub async fn saving_again_moves_the_connection_to_its_new_user(store: Store) {
    store.save(&open("c1", "ana")).await.expect("save");

    store.save(&open("c1", "bob")).await.expect("save again");

    assert!(
        read_all(&store, Source::User(user("ana")), 10)
            .await
            .is_empty()
    );
    assert_eq!(
        read_all(&store, Source::User(user("bob")), 10).await,
        ["c1"]
    );
}

/// Deleting a connection removes it and all its subscriptions, and nothing else.
pub async fn deleting_removes_the_connection_and_every_subscription(store: Store) {
    let gone = open("gone", "ana");
    let kept = open("kept", "ana");
    save_all(&store, &[gone.clone(), kept.clone()]).await;
    subscribe(&store, &gone, &["room:1", "room:2", "user:ana"]).await;
    subscribe(&store, &kept, &["room:1"]).await;

    store.delete(&id("gone")).await.expect("delete");

    assert_eq!(store.get(&id("gone"), NOW).await.expect("get"), None);
    assert!(
        store
            .subscriptions(&id("gone"))
            .await
            .expect("subs")
            .is_empty()
    );
    assert_eq!(
        read_all(&store, Source::Topic(topic("room:1")), 10).await,
        ["kept"]
    );
    assert!(
        read_all(&store, Source::Topic(topic("room:2")), 10)
            .await
            .is_empty()
    );
    assert_eq!(
        read_all(&store, Source::User(user("ana")), 10).await,
        ["kept"]
    );
    assert_eq!(
        store.subscriptions(&id("kept")).await.expect("subs"),
        [topic("room:1")]
    );
}

/// Deleting twice, or deleting what never existed, succeeds.
pub async fn deleting_is_idempotent(store: Store) {
    store.save(&open("c1", "ana")).await.expect("save");

    store.delete(&id("c1")).await.expect("first delete");
    store.delete(&id("c1")).await.expect("second delete");
    store.delete(&id("never")).await.expect("unknown delete");

    assert_eq!(store.get(&id("c1"), NOW).await.expect("get"), None);
}

/// A delete and a subscribe of the same connection at the same time (a `$disconnect`, or
/// a prune after a 410, while a subscribe message is handled): whichever order the store
/// puts them in, no subscription outlives the connection, and a topic's audience never
/// lists a connection that is gone. Run for 48 connections, the subscribe started from 3 ms
/// before the delete to 4 ms after it, so that some land between the delete's reads and its
/// writes; both orders must occur (some subscribes succeed, some find the connection gone).
pub async fn a_delete_racing_a_subscribe_leaves_no_subscription_behind(store: Store) {
    let connections: Vec<Connection> = (0..48)
        .map(|i| open(&format!("race{i:02}"), "ana"))
        .collect();
    save_all(&store, &connections).await;
    let room = [topic("room:race")];

    let races = connections.iter().enumerate().map(|(i, connection)| {
        let store = Arc::clone(&store);
        let room = &room;
        async move {
            // From -3 to +4 ms: the subscribe's head start over the delete.
            let offset = (i % 8) as i64 - 3;
            let after = |ms: i64| std::time::Duration::from_millis(ms.max(0) as u64);
            let delete = async {
                tokio::time::sleep(after(-offset)).await;
                store.delete(connection.id()).await
            };
            let subscribe = async {
                tokio::time::sleep(after(offset)).await;
                store.subscribe(connection, room, NOW).await
            };
            let (deleted, subscribed) = tokio::join!(delete, subscribe);
            deleted.expect("delete");
            match subscribed {
                Ok(()) => true,
                Err(StoreError::ConnectionNotFound(_)) => false,
                Err(other) => panic!("subscribe failed otherwise: {other:?}"),
            }
        }
    });
    let subscribed = futures::future::join_all(races).await;

    let mut orphans = Vec::new();
    for connection in &connections {
        let held = store.subscriptions(connection.id()).await.expect("subs");
        if !held.is_empty() {
            orphans.push(connection.id().to_string());
        }
    }
    assert_eq!(orphans, Vec::<String>::new(), "subscriptions left behind");
    assert_eq!(
        read_all(&store, Source::Topic(topic("room:race")), 100).await,
        Vec::<String>::new(),
        "the topic lists connections that are gone"
    );
    let succeeded = subscribed.iter().filter(|ok| **ok).count();
    assert!(
        succeeded > 0 && succeeded < subscribed.len(),
        "both orders must occur: {succeeded} of {} subscribes succeeded",
        subscribed.len()
    );
}

/// No subscription can outlive (or predate) its connection.
pub async fn subscribing_an_unknown_connection_fails_and_writes_nothing(store: Store) {
    let ghost = open("ghost", "ana");

    let result = store.subscribe(&ghost, &[topic("room:1")], NOW).await;

    assert!(
        matches!(&result, Err(StoreError::ConnectionNotFound(c)) if c == ghost.id()),
        "{result:?}"
    );
    assert!(
        store
            .subscriptions(&id("ghost"))
            .await
            .expect("subs")
            .is_empty()
    );
    assert!(
        read_all(&store, Source::Topic(topic("room:1")), 10)
            .await
            .is_empty()
    );
}

/// An expired connection counts as not connected.
pub async fn subscribing_an_expired_connection_fails(store: Store) {
    let stale = expired("stale", "ana");
    store.save(&stale).await.expect("save");

    let result = store.subscribe(&stale, &[topic("room:1")], NOW).await;

    assert!(
        matches!(result, Err(StoreError::ConnectionNotFound(_))),
        "{result:?}"
    );
}

/// Subscribing again to the same topic is not an error and adds nothing.
pub async fn subscribing_twice_keeps_one_subscription(store: Store) {
    let c1 = open("c1", "ana");
    store.save(&c1).await.expect("save");

    subscribe(&store, &c1, &["room:1"]).await;
    subscribe(&store, &c1, &["room:1"]).await;

    assert_eq!(
        store.subscriptions(&id("c1")).await.expect("subs"),
        [topic("room:1")]
    );
    assert_eq!(
        read_all(&store, Source::Topic(topic("room:1")), 10).await,
        ["c1"]
    );
}

/// Unsubscribing removes exactly the named topics; unknown ones are ignored.
pub async fn unsubscribing_removes_only_the_named_topics_and_is_idempotent(store: Store) {
    let c1 = open("c1", "ana");
    store.save(&c1).await.expect("save");
    subscribe(&store, &c1, &["a", "b", "c"]).await;

    store
        .unsubscribe(&id("c1"), &[topic("a"), topic("zzz")])
        .await
        .expect("unsubscribe");
    store
        .unsubscribe(&id("c1"), &[topic("a")])
        .await
        .expect("again");

    let held: BTreeSet<ExternalId> = store
        .subscriptions(&id("c1"))
        .await
        .expect("subs")
        .into_iter()
        .collect();
    assert_eq!(held, BTreeSet::from([topic("b"), topic("c")]));
    assert!(
        read_all(&store, Source::Topic(topic("a")), 10)
            .await
            .is_empty()
    );
}

/// A user's source holds their live connections and no one else's.
pub async fn a_user_source_yields_only_that_users_live_connections(store: Store) {
    save_all(
        &store,
        &[
            open("a1", "ana"),
            open("a2", "ana"),
            expired("a3", "ana"),
            open("b1", "bob"),
        ],
    )
    .await;

    assert_eq!(
        read_sorted(&store, Source::User(user("ana")), 10).await,
        ["a1", "a2"]
    );
    assert!(
        read_all(&store, Source::User(user("cy")), 10)
            .await
            .is_empty()
    );
}

/// A topic's source holds its live subscribers, with their users.
pub async fn a_topic_source_yields_its_live_subscribers(store: Store) {
    let a = open("a", "ana");
    let b = open("b", "bob");
    let c = open("c", "cy");
    save_all(&store, &[a.clone(), b.clone(), c.clone()]).await;
    subscribe(&store, &a, &["room:1"]).await;
    subscribe(&store, &b, &["room:1", "room:2"]).await;
    subscribe(&store, &c, &["room:2"]).await;

    let pages: Vec<Vec<Connection>> =
        stream_source(Arc::clone(&store), Source::Topic(topic("room:1")), 10, NOW)
            .try_collect()
            .await
            .expect("read");
    let mut read: Vec<Connection> = pages.into_iter().flatten().collect();
    read.sort_by(|x, y| x.id().cmp(y.id()));

    assert_eq!(read, [a, b]);
}

/// Explicit connection IDs yield those that are live, once each.
pub async fn explicit_connections_skip_unknown_and_expired_ones(store: Store) {
    save_all(
        &store,
        &[open("c1", "ana"), expired("c2", "ana"), open("c3", "bob")],
    )
    .await;

    let read = read_sorted(
        &store,
        Source::Connections(vec![id("c1"), id("c2"), id("c3"), id("ghost")]),
        2,
    )
    .await;

    assert_eq!(read, ["c1", "c3"]);
}

/// Pagination: a small page limit still yields every connection exactly once.
pub async fn a_user_with_many_connections_is_read_across_many_pages(store: Store) {
    let ids = names("c", 45);
    let connections: Vec<Connection> = ids.iter().map(|c| open(c, "ana")).collect();
    save_all(&store, &connections).await;

    let read = read_all(&store, Source::User(user("ana")), 4).await;

    let mut sorted = read.clone();
    sorted.sort();
    assert_eq!(read.len(), 45, "no connection twice");
    assert_eq!(sorted, ids);
}

/// 1,200 subscribers of one topic stream out, each once, in pages.
pub async fn a_topic_with_1200_subscribers_streams_each_once(store: Store) {
    let ids = names("s", 1_200);
    for (n, connection) in ids.iter().enumerate() {
        let connection = open(connection, &format!("u{}", n % 300));
        store.save(&connection).await.expect("save");
        subscribe(&store, &connection, &["ticker:AAPL"]).await;
    }

    let read = read_all(&store, Source::Topic(topic("ticker:AAPL")), 250).await;

    let mut sorted = read.clone();
    sorted.sort();
    assert_eq!(read.len(), 1_200);
    assert_eq!(sorted, ids);
}

/// The segments of a broadcast split the live connections between them, with no overlap
/// and nothing left out.
pub async fn broadcast_segments_partition_the_live_connections(store: Store) {
    let ids = names("b", 300);
    let mut connections: Vec<Connection> = ids
        .iter()
        .enumerate()
        .map(|(n, c)| open(c, &format!("u{}", n % 40)))
        .collect();
    connections.push(expired("old", "u1"));
    save_all(&store, &connections).await;

    let mut all = Vec::new();
    for segment in Segment::all(4).expect("valid") {
        all.extend(read_all(&store, Source::All(segment), 16).await);
    }

    all.sort();
    assert_eq!(all, ids);
}

/// A broadcast reads connections, not subscriptions: a connection holding many
/// subscriptions is still read once.
pub async fn a_broadcast_yields_each_connection_once_however_many_subscriptions_it_holds(
    store: Store,
) {
    let ids = names("c", 20);
    for connection in &ids {
        let connection = open(connection, "ana");
        store.save(&connection).await.expect("save");
        subscribe(&store, &connection, &["t1", "t2", "t3", "t4", "user:ana"]).await;
    }

    let read = read_sorted(&store, Source::All(Segment::WHOLE), 7).await;

    assert_eq!(read, ids);
}

/// Exclusions have no 100-value limit: a broadcast through the push service, excluding 160
/// users, skips exactly their connections.
pub async fn a_broadcast_excluding_160_users_skips_exactly_their_connections(store: Store) {
    let connections: Vec<Connection> = (0..400)
        .map(|n| open(&format!("c{n:03}"), &format!("u{}", n % 200)))
        .collect();
    save_all(&store, &connections).await;
    let excluded: Vec<String> = (0..160).map(|n| format!("\"u{n}\"")).collect();
    let request = NotificationRequest::parse(&format!(
        r#"{{"exclude_users":[{}],"data":{{"k":1}}}}"#,
        excluded.join(",")
    ))
    .expect("valid");
    let gateway = Arc::new(CountingGateway::default());
    let push = PushService::new(
        Arc::clone(&store),
        Arc::clone(&gateway),
        Arc::new(ManualClock::at(NOW)),
        PushConfig {
            page_size: 64,
            ..PushConfig::default()
        },
    )
    .expect("config");

    let report = push.push(&request).await;

    assert_eq!(report.excluded, 320);
    assert_eq!(report.delivered, 80);
    assert_eq!(gateway.posts.load(Ordering::SeqCst), 80);
    assert!(report.is_complete(), "{report:?}");
}

/// A cursor that is not one of the store's is an error, not a silent restart.
pub async fn a_cursor_the_store_did_not_make_is_rejected(store: Store) {
    store.save(&open("c1", "ana")).await.expect("save");

    let result = store
        .page(
            &Source::All(Segment::WHOLE),
            Some(wspush_ports::Cursor::new("{not a cursor")),
            10,
            NOW,
        )
        .await;

    assert!(
        matches!(result, Err(StoreError::InvalidCursor(_))),
        "{result:?}"
    );
}

/// A cursor carried in a continuation resumes a segment with nothing lost or repeated.
pub async fn a_resumed_segment_read_continues_where_its_cursor_stopped(store: Store) {
    let connections: Vec<Connection> = names("c", 40).iter().map(|c| open(c, "ana")).collect();
    save_all(&store, &connections).await;
    let segment = Source::All(Segment::new(1, 2).expect("valid"));
    let first = store
        .page(&segment, None, 5, NOW)
        .await
        .expect("first page");
    let cursor = first.next.clone().expect("more pages");

    // A cursor is plain text: it travels in a continuation message and comes back.
    let resumed: Vec<String> = stream_from(&store, segment.clone(), Some(cursor)).await;

    let mut seen: Vec<String> = first
        .connections
        .iter()
        .map(|c| c.id().to_string())
        .chain(resumed)
        .collect();
    let total = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), total, "a connection was read twice");
    assert_eq!(seen, read_sorted(&store, segment, 100).await);
}

async fn stream_from(
    store: &Store,
    source: Source,
    mut cursor: Option<wspush_ports::Cursor>,
) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let page = store.page(&source, cursor, 7, NOW).await.expect("page");
        ids.extend(page.connections.iter().map(|c| c.id().to_string()));
        match page.next {
            Some(next) => cursor = Some(wspush_ports::Cursor::new(next.as_str().to_owned())),
            None => return ids,
        }
    }
}

fn request_id(value: &str) -> RequestId {
    RequestId::parse(value).expect("valid request ID")
}

fn later(seconds: u64) -> Timestamp {
    NOW.saturating_add(std::time::Duration::from_secs(seconds))
}

/// A claim holds until its lease ends.
pub async fn a_new_request_is_claimed_and_a_second_claim_sees_it_in_progress(
    _: Store,
    ledger: Ledger,
) {
    let id = request_id("m-1");

    let first = ledger.claim(&id, NOW, later(60)).await.expect("claim");
    let second = ledger.claim(&id, later(1), later(61)).await.expect("claim");

    assert_eq!(first, Claim::Claimed);
    assert_eq!(second, Claim::InProgress { until: later(60) });
}

/// A completion is remembered until `keep_until`, and ignored after.
pub async fn a_completed_request_is_reported_completed_until_its_record_expires(
    _: Store,
    ledger: Ledger,
) {
    let id = request_id("m-1");
    ledger.claim(&id, NOW, later(60)).await.expect("claim");

    ledger.complete(&id, later(3_600)).await.expect("complete");

    assert_eq!(
        ledger
            .claim(&id, later(10), later(70))
            .await
            .expect("claim"),
        Claim::Completed
    );
    assert_eq!(
        ledger
            .claim(&id, later(3_600), later(3_660))
            .await
            .expect("claim"),
        Claim::Claimed,
        "an expired completion record must be ignored (TTL deletion is lazy)"
    );
}

/// A crashed delivery's claim does not block the request for ever.
pub async fn a_claim_whose_lease_ended_can_be_taken_over(_: Store, ledger: Ledger) {
    let id = request_id("m-1");
    ledger.claim(&id, NOW, later(60)).await.expect("claim");

    let takeover = ledger
        .claim(&id, later(60), later(120))
        .await
        .expect("claim");
    let third = ledger
        .claim(&id, later(61), later(121))
        .await
        .expect("claim");

    assert_eq!(takeover, Claim::Claimed);
    assert_eq!(third, Claim::InProgress { until: later(120) });
}

/// Release is idempotent and leaves completions alone.
pub async fn releasing_frees_a_claim_but_never_a_completion(_: Store, ledger: Ledger) {
    let released = request_id("released");
    let completed = request_id("completed");
    ledger
        .claim(&released, NOW, later(60))
        .await
        .expect("claim");
    ledger
        .claim(&completed, NOW, later(60))
        .await
        .expect("claim");
    ledger
        .complete(&completed, later(3_600))
        .await
        .expect("complete");

    ledger.release(&released, later(60)).await.expect("release");
    ledger
        .release(&released, later(60))
        .await
        .expect("release is idempotent");
    ledger
        .release(&completed, later(60))
        .await
        .expect("release");
    ledger
        .release(&request_id("never-seen"), later(60))
        .await
        .expect("release of an unknown request");

    assert_eq!(
        ledger
            .claim(&released, later(1), later(61))
            .await
            .expect("claim"),
        Claim::Claimed
    );
    assert_eq!(
        ledger
            .claim(&completed, later(1), later(61))
            .await
            .expect("claim"),
        Claim::Completed
    );
}

/// A late release by a holder whose lease ended leaves the new holder's claim alone.
pub async fn a_stale_release_never_drops_the_claim_that_took_over(_: Store, ledger: Ledger) {
    let id = request_id("m-1");
    ledger.claim(&id, NOW, later(60)).await.expect("claim");
    ledger
        .claim(&id, later(60), later(120))
        .await
        .expect("takeover");

    ledger
        .release(&id, later(60))
        .await
        .expect("the first holder's late release");

    assert_eq!(
        ledger
            .claim(&id, later(61), later(121))
            .await
            .expect("claim"),
        Claim::InProgress { until: later(120) }
    );
}

/// Claims are one conditional write: two deliveries never both push.
pub async fn of_concurrent_claims_of_one_request_exactly_one_wins(_: Store, ledger: Ledger) {
    let id = request_id("raced");

    let claims = futures::future::join_all((0..8).map(|_| {
        let ledger = Arc::clone(&ledger);
        let id = id.clone();
        async move { ledger.claim(&id, NOW, later(60)).await.expect("claim") }
    }))
    .await;

    let won = claims
        .iter()
        .filter(|claim| **claim == Claim::Claimed)
        .count();
    assert_eq!(won, 1, "{claims:?}");
    assert!(
        claims
            .iter()
            .all(|claim| matches!(claim, Claim::Claimed | Claim::InProgress { .. })),
        "{claims:?}"
    );
}

/// Ledger records live beside connections without being read as one.
pub async fn request_records_never_appear_in_an_audience(store: Store, ledger: Ledger) {
    store.save(&open("c1", "ana")).await.expect("save");
    ledger
        .claim(&request_id("m-1"), NOW, later(60))
        .await
        .expect("claim");
    ledger
        .complete(&request_id("m-2"), later(60))
        .await
        .expect("complete");

    let everyone = read_sorted(&store, Source::All(Segment::WHOLE), 10).await;

    assert_eq!(everyone, ["c1"]);
}

/// A gateway that accepts every post and counts them.
#[derive(Default)]
struct CountingGateway {
    posts: AtomicUsize,
}

#[async_trait]
impl ConnectionGateway for CountingGateway {
    async fn post(&self, _: &ConnectionId, _: Bytes) -> Result<(), GatewayError> {
        self.posts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn delete(&self, _: &ConnectionId) -> Result<(), GatewayError> {
        Ok(())
    }

    async fn get(&self, _: &ConnectionId) -> Result<ConnectionInfo, GatewayError> {
        Err(GatewayError::Gone)
    }
}
