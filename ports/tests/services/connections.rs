use std::sync::Arc;
use std::time::Duration;

use wspush_ports::{ConnectionService, ConnectionStore, MockConnectionStore, StoreError};

use crate::helpers::*;

#[tokio::test]
async fn connecting_saves_the_connection_with_its_user_and_a_two_hour_expiry() {
    let store = store_with(&[]).await;
    let service = ConnectionService::new(Arc::clone(&store), clock());

    let connection = service
        .connect(id("c1"), user("ana"))
        .await
        .expect("connect");

    assert_eq!(connection.connected_at(), NOW);
    assert_eq!(
        connection.expires_at(),
        NOW.saturating_add(Duration::from_secs(7_200))
    );
    assert_eq!(
        store.get(&id("c1"), NOW).await.expect("get"),
        Some(connection)
    );
}

#[tokio::test]
async fn disconnecting_removes_the_connection_and_its_subscriptions() {
    let store = store_with(&[("c1", "ana")]).await;
    subscribe(&store, "c1", &["room:1", "room:2"]).await;
    let service = ConnectionService::new(Arc::clone(&store), clock());

    service.disconnect(&id("c1")).await.expect("disconnect");

    assert_eq!(store.get(&id("c1"), NOW).await.expect("get"), None);
    assert!(
        store
            .subscriptions(&id("c1"))
            .await
            .expect("subs")
            .is_empty()
    );
}

#[tokio::test]
async fn disconnecting_twice_is_not_an_error() {
    let store = store_with(&[("c1", "ana")]).await;
    let service = ConnectionService::new(Arc::clone(&store), clock());

    service.disconnect(&id("c1")).await.expect("first");
    let second = service.disconnect(&id("c1")).await;

    assert!(second.is_ok());
}

#[tokio::test]
async fn a_store_failure_on_connect_is_returned_with_its_cause() {
    let mut store = MockConnectionStore::new();
    store
        .expect_save()
        .returning(|_| Err(StoreError::Unavailable("timeout".into())));
    let service = ConnectionService::new(Arc::new(store), clock());

    let error = service
        .connect(id("c1"), user("ana"))
        .await
        .expect_err("store down");

    let cause = std::error::Error::source(&error).map(ToString::to_string);
    assert_eq!(error.to_string(), "the store is unavailable");
    assert_eq!(cause.as_deref(), Some("timeout"));
}
