use std::sync::Arc;
use std::time::Duration;

use wspush_domain::limits::MAX_CONNECTION_DURATION;
use wspush_domain::{Denial, SubscriptionPolicy};
use wspush_ports::{ConnectionStore, SubscribeError, SubscriptionService};

use crate::helpers::*;

#[tokio::test]
async fn subscribing_returns_every_topic_the_connection_holds() {
    let store = store_with(&[("c1", "ana")]).await;
    let service =
        SubscriptionService::new(Arc::clone(&store), clock(), SubscriptionPolicy::default());

    service
        .subscribe(&id("c1"), &[topic("room:1")])
        .await
        .expect("first");
    let mut held = service
        .subscribe(&id("c1"), &[topic("room:2"), topic("room:1")])
        .await
        .expect("second");

    held.sort();
    assert_eq!(held, [topic("room:1"), topic("room:2")]);
    assert_eq!(store.subscriptions(&id("c1")).await.expect("subs").len(), 2);
}

#[tokio::test]
async fn subscribing_an_unknown_connection_is_an_error_and_writes_nothing() {
    let store = store_with(&[]).await;
    let service =
        SubscriptionService::new(Arc::clone(&store), clock(), SubscriptionPolicy::default());

    let error = service
        .subscribe(&id("ghost"), &[topic("room:1")])
        .await
        .expect_err("unknown");

    assert!(matches!(error, SubscribeError::NotConnected(c) if c == id("ghost")));
    assert!(
        store
            .subscriptions(&id("ghost"))
            .await
            .expect("subs")
            .is_empty()
    );
}

#[tokio::test]
async fn subscribing_an_expired_connection_is_an_error() {
    let store = store_with(&[("c1", "ana")]).await;
    let clock = clock();
    clock.advance(MAX_CONNECTION_DURATION + Duration::from_secs(1));
    let service =
        SubscriptionService::new(Arc::clone(&store), clock, SubscriptionPolicy::default());

    let error = service.subscribe(&id("c1"), &[topic("room:1")]).await;

    assert!(matches!(error, Err(SubscribeError::NotConnected(_))));
}

#[tokio::test]
async fn a_denied_topic_fails_the_whole_request_and_writes_nothing() {
    let store = store_with(&[("c1", "ana")]).await;
    let service =
        SubscriptionService::new(Arc::clone(&store), clock(), SubscriptionPolicy::default());

    let error = service
        .subscribe(&id("c1"), &[topic("room:1"), topic("user:bob")])
        .await
        .expect_err("denied");

    assert!(matches!(
        error,
        SubscribeError::Denied(Denial::OtherUsersChannel { .. })
    ));
    assert!(
        store
            .subscriptions(&id("c1"))
            .await
            .expect("subs")
            .is_empty()
    );
}

#[tokio::test]
async fn the_per_connection_limit_counts_existing_subscriptions() {
    let store = store_with(&[("c1", "ana")]).await;
    let policy = SubscriptionPolicy::default().with_max_subscriptions_per_connection(2);
    let service = SubscriptionService::new(Arc::clone(&store), clock(), policy);
    service
        .subscribe(&id("c1"), &[topic("a"), topic("b")])
        .await
        .expect("fill up");

    let again = service.subscribe(&id("c1"), &[topic("a")]).await;
    let over = service.subscribe(&id("c1"), &[topic("c")]).await;

    assert!(again.is_ok(), "re-subscribing adds nothing");
    assert!(matches!(
        over,
        Err(SubscribeError::Denied(Denial::TooManySubscriptions {
            current: 2,
            adding: 1,
            max: 2
        }))
    ));
}

#[tokio::test]
async fn unsubscribing_removes_only_the_named_topics_and_is_idempotent() {
    let store = store_with(&[("c1", "ana")]).await;
    subscribe(&store, "c1", &["a", "b"]).await;
    let service =
        SubscriptionService::new(Arc::clone(&store), clock(), SubscriptionPolicy::default());

    service
        .unsubscribe(&id("c1"), &[topic("a"), topic("never")])
        .await
        .expect("first");
    service
        .unsubscribe(&id("c1"), &[topic("a")])
        .await
        .expect("again");

    assert_eq!(
        store.subscriptions(&id("c1")).await.expect("subs"),
        [topic("b")]
    );
}

#[tokio::test]
async fn unsubscribing_more_topics_than_a_message_may_name_is_denied_and_removes_nothing() {
    let store = store_with(&[("c1", "ana")]).await;
    let policy = SubscriptionPolicy::default().with_max_topics_per_message(2);
    let service = SubscriptionService::new(Arc::clone(&store), clock(), policy);
    service
        .subscribe(&id("c1"), &[topic("room:1"), topic("room:2")])
        .await
        .expect("subscribed");

    let error = service
        .unsubscribe(
            &id("c1"),
            &[topic("room:1"), topic("room:2"), topic("room:3")],
        )
        .await
        .expect_err("three topics where two are allowed");

    assert!(
        matches!(
            error,
            SubscribeError::Denied(Denial::TooManyTopics { given: 3, max: 2 })
        ),
        "{error:?}"
    );
    assert_eq!(store.subscriptions(&id("c1")).await.expect("subs").len(), 2);
    service
        .unsubscribe(&id("c1"), &[topic("room:1"), topic("room:2")])
        .await
        .expect("two are allowed");
    assert!(
        store
            .subscriptions(&id("c1"))
            .await
            .expect("subs")
            .is_empty()
    );
}
