//! How many DynamoDB calls each use case makes, counted on the wire against DynamoDB Local.
//! The same figures are documented in `adapters/README.md`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use wspush_adapters::ManualClock;
use wspush_domain::{
    Connection, ConnectionId, ExternalId, NotificationRequest, SubscriptionPolicy, UserId,
};
use wspush_integration_tests::dynamodb_local::DynamoDbFixture;
use wspush_integration_tests::store_contract::NOW;
use wspush_ports::{
    ConnectionGateway, ConnectionInfo, ConnectionService, ConnectionStore, GatewayError,
    PushConfig, PushService, SubscriptionService,
};

pub(crate) fn calls(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(op, n)| ((*op).to_owned(), *n)).collect()
}

fn id(value: &str) -> ConnectionId {
    ConnectionId::parse(value).expect("valid")
}

fn topics(count: usize) -> Vec<ExternalId> {
    (0..count)
        .map(|n| ExternalId::parse(format!("room:{n}")).expect("valid"))
        .collect()
}

#[derive(Default)]
struct AcceptingGateway(AtomicUsize);

#[async_trait]
impl ConnectionGateway for AcceptingGateway {
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

async fn save(fixture: &DynamoDbFixture, connection: &str, user: &str) -> Connection {
    let connection = Connection::open(id(connection), UserId::parse(user).expect("valid"), NOW);
    fixture.store.save(&connection).await.expect("save");
    connection
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_is_one_put_item() {
    let fixture = DynamoDbFixture::new().await;
    let service = ConnectionService::new(
        Arc::new(fixture.store.clone()),
        Arc::new(ManualClock::at(NOW)),
    );

    service
        .connect(id("c1"), UserId::parse("ana").expect("valid"))
        .await
        .expect("connect");

    assert_eq!(fixture.calls.snapshot(), calls(&[("PutItem", 1)]));
    fixture.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_with_k_subscriptions_is_a_delete_a_query_and_a_batch_write_per_25_subscriptions()
 {
    let fixture = DynamoDbFixture::new().await;
    let small = save(&fixture, "small", "ana").await;
    let large = save(&fixture, "large", "ana").await;
    fixture
        .store
        .subscribe(&small, &topics(5), NOW)
        .await
        .expect("subscribe");
    fixture
        .store
        .subscribe(&large, &topics(30), NOW)
        .await
        .expect("subscribe");
    let service = ConnectionService::new(
        Arc::new(fixture.store.clone()),
        Arc::new(ManualClock::at(NOW)),
    );

    fixture.calls.reset();
    service.disconnect(&id("small")).await.expect("disconnect");
    let with_5 = fixture.calls.snapshot();
    fixture.calls.reset();
    service.disconnect(&id("large")).await.expect("disconnect");
    let with_30 = fixture.calls.snapshot();

    // The connection item first, then its subscriptions: 5 fit one batch, 30 need two.
    assert_eq!(
        with_5,
        calls(&[("BatchWriteItem", 1), ("DeleteItem", 1), ("Query", 1)])
    );
    assert_eq!(
        with_30,
        calls(&[("BatchWriteItem", 2), ("DeleteItem", 1), ("Query", 1)])
    );
    fixture.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_is_a_get_a_query_and_one_transaction_and_unsubscribe_a_query_and_one() {
    let fixture = DynamoDbFixture::new().await;
    save(&fixture, "c1", "ana").await;
    let service = SubscriptionService::new(
        Arc::new(fixture.store.clone()),
        Arc::new(ManualClock::at(NOW)),
        SubscriptionPolicy::default(),
    );

    fixture.calls.reset();
    service
        .subscribe(&id("c1"), &topics(3))
        .await
        .expect("subscribe");

    assert_eq!(
        fixture.calls.snapshot(),
        calls(&[("GetItem", 1), ("Query", 1), ("TransactWriteItems", 1)])
    );

    fixture.calls.reset();
    service
        .unsubscribe(&id("c1"), &topics(3))
        .await
        .expect("unsubscribe");
    assert_eq!(
        fixture.calls.snapshot(),
        calls(&[("Query", 1), ("TransactWriteItems", 1)]),
        "unsubscribe reads what is held, then deletes it and its count in one transaction"
    );
    fixture.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multicast_to_u_users_is_one_query_per_user() {
    let fixture = DynamoDbFixture::new().await;
    for n in 0..10 {
        save(&fixture, &format!("c{n}a"), &format!("u{n}")).await;
        save(&fixture, &format!("c{n}b"), &format!("u{n}")).await;
    }
    let gateway = Arc::new(AcceptingGateway::default());
    let push = PushService::new(
        Arc::new(fixture.store.clone()),
        Arc::clone(&gateway),
        Arc::new(ManualClock::at(NOW)),
        PushConfig::default(),
    )
    .expect("config");
    let users: Vec<String> = (0..10).map(|n| format!("\"u{n}\"")).collect();
    let request =
        NotificationRequest::parse(&format!(r#"{{"users":[{}],"data":1}}"#, users.join(",")))
            .expect("valid");

    fixture.calls.reset();
    let report = push.push(&request).await;

    assert_eq!(report.delivered, 20);
    assert_eq!(fixture.calls.snapshot(), calls(&[("Query", 10)]));
    fixture.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_over_n_connections_is_one_scan_page_per_segment_and_page() {
    let fixture = DynamoDbFixture::new().await;
    for n in 0..1_000 {
        save(&fixture, &format!("c{n:04}"), &format!("u{}", n % 50)).await;
    }
    let gateway = Arc::new(AcceptingGateway::default());
    let config = PushConfig {
        page_size: 500,
        broadcast_segments: 4,
        ..PushConfig::default()
    };
    let push = PushService::new(
        Arc::new(fixture.store.clone()),
        Arc::clone(&gateway),
        Arc::new(ManualClock::at(NOW)),
        config,
    )
    .expect("config");

    fixture.calls.reset();
    let report = push
        .push(&NotificationRequest::parse(r#"{"data":1}"#).expect("valid"))
        .await;

    // About 250 connections per segment: one page of up to 500 each.
    assert_eq!(report.delivered, 1_000);
    assert_eq!(fixture.calls.snapshot(), calls(&[("Scan", 4)]));
    fixture.finish().await;
}
