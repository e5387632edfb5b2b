//! Stream history on DynamoDB: the calls a push and a resume make (documented in
//! `adapters/README.md`), and an epoch that changes when the head item is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;
use wspush_adapters::ManualClock;
use wspush_domain::{
    Connection, ConnectionId, ExternalId, HistoryPolicy, NotificationRequest, Position, Retention,
    Since, SubscriptionPolicy, UserId,
};
use wspush_integration_tests::dynamodb_local::DynamoDbFixture;
use wspush_integration_tests::store_contract::NOW;
use wspush_ports::{
    ConnectionGateway, ConnectionInfo, ConnectionStore, GatewayError, HistoryRead, HistoryStore,
    PushConfig, PushService, SubscriptionService,
};

use crate::calls::calls;

#[derive(Default)]
struct CountingGateway(AtomicUsize);

#[async_trait]
impl ConnectionGateway for CountingGateway {
    async fn post(&self, _: &ConnectionId, _: Bytes) -> Result<(), GatewayError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn delete(&self, _: &ConnectionId) -> Result<(), GatewayError> {
        Ok(())
    }

    async fn get(&self, _: &ConnectionId) -> Result<ConnectionInfo, GatewayError> {
        Err(GatewayError::Gone)
    }
}

fn rooms() -> HistoryPolicy {
    HistoryPolicy::new(["room"], Duration::from_secs(900), 100).expect("valid")
}

fn room() -> ExternalId {
    ExternalId::parse("room:1").expect("valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_to_a_history_stream_appends_with_two_gets_and_one_transaction() {
    let fixture = DynamoDbFixture::new().await;
    let store = Arc::new(fixture.store.clone());
    let connection = Connection::open(
        ConnectionId::parse("c1").expect("valid"),
        UserId::parse("ana").expect("valid"),
        NOW,
    );
    store.save(&connection).await.expect("save");
    store
        .subscribe(&connection, &[room()], NOW)
        .await
        .expect("subscribe");
    let gateway = Arc::new(CountingGateway::default());
    let push = PushService::new(
        Arc::clone(&store),
        Arc::clone(&gateway),
        Arc::new(ManualClock::at(NOW)),
        PushConfig::default(),
    )
    .expect("config")
    .with_history(store.clone(), rooms());
    let request =
        NotificationRequest::parse(r#"{"topics":["room:1"],"data":1,"id":"m-1"}"#).expect("valid");

    fixture.calls.reset();
    let report = push.push(&request).await;

    assert_eq!(report.delivered, 1);
    assert_eq!(report.history_appends, 1);
    assert_eq!(
        fixture.calls.snapshot(),
        calls(&[("GetItem", 2), ("Query", 1), ("TransactWriteItems", 1)]),
        "the request's mark and the head (read at once), one transaction, then the topic's audience"
    );

    fixture.calls.reset();
    let again = push.push(&request).await;
    assert_eq!(
        again.history_appends, 0,
        "a request appended before is not appended again"
    );
    assert_eq!(
        fixture.calls.snapshot(),
        calls(&[("GetItem", 2), ("Query", 1)]),
        "a redelivery reads its mark (with the head, at once) and appends nothing"
    );
    fixture.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_reads_the_stream_twice_around_one_index_query() {
    let fixture = DynamoDbFixture::new().await;
    let store = Arc::new(fixture.store.clone());
    let connection = Connection::open(
        ConnectionId::parse("c1").expect("valid"),
        UserId::parse("ana").expect("valid"),
        NOW,
    );
    store.save(&connection).await.expect("save");
    let retention = rooms().retention();
    let mut first = None;
    for n in 0..3 {
        let appended = store
            .append(&room(), None, &n.to_string(), retention, NOW)
            .await
            .expect("append");
        first.get_or_insert(appended.position);
    }
    let epoch = first.expect("appended").epoch;
    let gateway = Arc::new(CountingGateway::default());
    let service = SubscriptionService::new(
        Arc::clone(&store),
        Arc::new(ManualClock::at(NOW)),
        SubscriptionPolicy::default(),
    )
    .with_resume(store.clone(), gateway.clone(), rooms());
    let since = Since::parse(
        &serde_json::json!({"room:1": {"seq": 1, "epoch": epoch.as_str()}}),
        &[room()],
    )
    .expect("valid");

    fixture.calls.reset();
    let (_, resumed) = service
        .subscribe_since(connection.id(), &[room()], &since)
        .await
        .expect("subscribe");

    let resumed = resumed.expect("resumed");
    assert_eq!(resumed.recovered.get(&room()), Some(&2));
    assert!(resumed.gaps.is_empty());
    assert_eq!(gateway.0.load(Ordering::SeqCst), 2);
    assert_eq!(
        fixture.calls.snapshot(),
        calls(&[("GetItem", 3), ("Query", 3), ("TransactWriteItems", 1)]),
        "the subscribe (a get, a query, a transaction), a read (the head, a query), the index \
         query, and a second read of the head that finds nothing new"
    );
    fixture.finish().await;
}

/// A user's own channel is also read through `by_user` (a push to `"users": ["ana"]`), so
/// the resume waits for both indexes: one more `Query` than a topic's resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_of_a_users_own_channel_waits_for_both_indexes() {
    let fixture = DynamoDbFixture::new().await;
    let store = Arc::new(fixture.store.clone());
    let connection = Connection::open(
        ConnectionId::parse("c1").expect("valid"),
        UserId::parse("ana").expect("valid"),
        NOW,
    );
    store.save(&connection).await.expect("save");
    let users = HistoryPolicy::new(["user"], Duration::from_secs(900), 100).expect("valid");
    let channel = ExternalId::parse("user:ana").expect("valid");
    let appended = store
        .append(&channel, None, "1", users.retention(), NOW)
        .await
        .expect("append");
    let service = SubscriptionService::new(
        Arc::clone(&store),
        Arc::new(ManualClock::at(NOW)),
        SubscriptionPolicy::default(),
    )
    .with_resume(store.clone(), Arc::new(CountingGateway::default()), users);
    let since = Since::parse(
        &serde_json::json!({"user:ana": {"seq": 0, "epoch": appended.position.epoch.as_str()}}),
        std::slice::from_ref(&channel),
    )
    .expect("valid");

    fixture.calls.reset();
    let (_, resumed) = service
        .subscribe_since(connection.id(), std::slice::from_ref(&channel), &since)
        .await
        .expect("subscribe");

    let resumed = resumed.expect("resumed");
    assert_eq!(resumed.recovered.get(&channel), Some(&1));
    assert!(resumed.gaps.is_empty());
    assert_eq!(
        fixture.calls.snapshot(),
        calls(&[("GetItem", 3), ("Query", 4), ("TransactWriteItems", 1)]),
        "as a topic's resume, and the by_user query"
    );
    fixture.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_head_item_is_deleted_starts_a_new_epoch() {
    let fixture = DynamoDbFixture::new().await;
    let retention = Retention::default();
    let old = fixture
        .store
        .append(&room(), None, "1", retention, NOW)
        .await
        .expect("append")
        .position;

    fixture
        .client
        .delete_item()
        .table_name(fixture.store.table())
        .key("pk", AttributeValue::S("s#room:1".into()))
        .key("sk", AttributeValue::S("head".into()))
        .send()
        .await
        .expect("delete the head");
    let new = fixture
        .store
        .append(&room(), None, "2", retention, NOW)
        .await
        .expect("append")
        .position;

    assert_eq!(new.seq, 1);
    assert_ne!(new.epoch, old.epoch);
    let read = fixture
        .store
        .read_after(&room(), &old, retention, NOW)
        .await
        .expect("read");
    assert_eq!(read, HistoryRead::Gap);
    let fresh = fixture
        .store
        .read_after(
            &room(),
            &Position {
                seq: 0,
                epoch: new.epoch,
            },
            retention,
            NOW,
        )
        .await
        .expect("read");
    let HistoryRead::Messages(messages) = fresh else {
        panic!("a gap");
    };
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].data, "2");
    fixture.finish().await;
}
