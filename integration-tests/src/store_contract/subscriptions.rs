//! Subscribing and unsubscribing, and a delete racing a subscribe.

use super::*;

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
            let _: Deletion = deleted.expect("delete");
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

/// The limit is the store's to keep, atomically: 8 subscribes of 10 new topics each, run at
/// once on one connection that may hold 35 (API Gateway runs a socket's messages
/// concurrently), leave it holding exactly 30, from the 3 that got in; the other 5 are
/// refused with the limit and write nothing.
pub async fn concurrent_subscribes_never_take_a_connection_over_its_limit(store: Store) {
    let c1 = open("c1", "ana");
    store.save(&c1).await.expect("save");

    let attempts = (0..8).map(|task| {
        let store = Arc::clone(&store);
        let c1 = c1.clone();
        tokio::spawn(async move {
            let topics: Vec<ExternalId> = (0..10)
                .map(|i| topic(&format!("room:{task}-{i}")))
                .collect();
            store.subscribe_at_most(&c1, &topics, 35, NOW).await
        })
    });
    let results: Vec<Result<(), StoreError>> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|joined| joined.expect("the task ran"))
        .collect();

    let admitted = results.iter().filter(|result| result.is_ok()).count();
    for result in &results {
        match result {
            Ok(()) => {}
            Err(StoreError::SubscriptionLimit { held, adding, max }) => {
                assert_eq!((*adding, *max), (10, 35));
                assert!(held + adding > *max, "refused below the limit: {result:?}");
            }
            Err(other) => panic!("a subscribe failed otherwise: {other:?}"),
        }
    }
    let held = store.subscriptions(c1.id()).await.expect("subs");
    assert_eq!(admitted, 3, "{results:?}");
    assert_eq!(held.len(), 30, "{held:?}");
}

/// Topics already held do not count again, even when concurrent subscribes name the same
/// ones; a limit reached is reported with what the connection holds.
pub async fn concurrent_subscribes_of_the_same_topics_count_them_once(store: Store) {
    let c1 = open("c1", "ana");
    store.save(&c1).await.expect("save");
    let topics: Vec<ExternalId> = (0..10).map(|i| topic(&format!("room:{i}"))).collect();

    let attempts = (0..8).map(|_| {
        let store = Arc::clone(&store);
        let (c1, topics) = (c1.clone(), topics.clone());
        tokio::spawn(async move { store.subscribe_at_most(&c1, &topics, 10, NOW).await })
    });
    for joined in futures::future::join_all(attempts).await {
        joined
            .expect("the task ran")
            .expect("the same 10 topics fit a limit of 10");
    }
    let one_more = store
        .subscribe_at_most(&c1, &[topic("room:x")], 10, NOW)
        .await;

    assert_eq!(store.subscriptions(c1.id()).await.expect("subs").len(), 10);
    assert!(
        matches!(
            one_more,
            Err(StoreError::SubscriptionLimit {
                held: 10,
                adding: 1,
                max: 10
            })
        ),
        "{one_more:?}"
    );
    assert!(
        read_all(&store, Source::Topic(topic("room:x")), 10)
            .await
            .is_empty(),
        "a refused subscribe wrote nothing"
    );
}

/// Unsubscribing gives the room back, counting only what was held.
pub async fn unsubscribing_frees_room_under_the_limit(store: Store) {
    let c1 = open("c1", "ana");
    store.save(&c1).await.expect("save");
    let held: Vec<ExternalId> = ["a", "b", "c", "d", "e"].map(topic).to_vec();
    store
        .subscribe_at_most(&c1, &held, 5, NOW)
        .await
        .expect("5 of 5");

    store
        .unsubscribe(c1.id(), &[topic("a"), topic("b"), topic("never-held")])
        .await
        .expect("unsubscribe");
    store
        .unsubscribe(c1.id(), &[topic("a")])
        .await
        .expect("again");
    store
        .subscribe_at_most(&c1, &[topic("f"), topic("g"), topic("c")], 5, NOW)
        .await
        .expect("2 new ones fit again");
    let over = store.subscribe_at_most(&c1, &[topic("h")], 5, NOW).await;

    assert!(
        matches!(over, Err(StoreError::SubscriptionLimit { held: 5, .. })),
        "{over:?}"
    );
    let now_held: BTreeSet<ExternalId> = store
        .subscriptions(c1.id())
        .await
        .expect("subs")
        .into_iter()
        .collect();
    assert_eq!(now_held, ["c", "d", "e", "f", "g"].map(topic).into());
}

/// A written subscription is shown to audience reads (at once for a consistent store, once
/// its index caught up otherwise); an unknown or expired one never is.
pub async fn audience_reads_show_a_subscription_once_it_is_written(store: Store) {
    let live = open("c1", "ana");
    let gone = expired("c2", "bob");
    save_all(&store, &[live.clone(), gone.clone()]).await;
    subscribe(&store, &live, &["room:1"]).await;
    store
        .subscribe(&gone, &[topic("room:1")], Timestamp::EPOCH)
        .await
        .expect("subscribe while it was live");

    let mut shown = false;
    for _ in 0..50 {
        shown = store
            .audience_includes(&topic("room:1"), live.id(), NOW)
            .await
            .expect("read");
        if shown {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    assert!(shown, "the subscription never reached audience reads");
    for (topic_name, connection) in [("room:2", live.id()), ("room:1", gone.id())] {
        assert!(
            !store
                .audience_includes(&topic(topic_name), connection, NOW)
                .await
                .expect("read"),
            "{topic_name} {connection}"
        );
    }
}
