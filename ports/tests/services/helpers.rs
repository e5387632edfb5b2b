use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use wspush_adapters::{ManualClock, MemoryStore};
use wspush_domain::{
    Connection, ConnectionId, ExternalId, NotificationRequest, RetryPolicy, Timestamp, UserId,
};
use wspush_ports::{ConnectionGateway, ConnectionInfo, ConnectionStore, GatewayError, PushConfig};

pub const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

pub fn id(value: &str) -> ConnectionId {
    ConnectionId::parse(value).expect("valid connection ID")
}

pub fn user(value: &str) -> UserId {
    UserId::parse(value).expect("valid user ID")
}

pub fn topic(value: &str) -> ExternalId {
    ExternalId::parse(value).expect("valid external ID")
}

pub fn request(json: &str) -> NotificationRequest {
    NotificationRequest::parse(json).expect("valid request")
}

pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::at(NOW))
}

/// A store holding `connections` as (connection, user) pairs, opened at [`NOW`].
pub async fn store_with(connections: &[(&str, &str)]) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    for (connection, owner) in connections {
        store
            .save(&Connection::open(id(connection), user(owner), NOW))
            .await
            .expect("save");
    }
    store
}

/// A store of `count` connections `c<i>` (`i` zero-padded to `width` digits), connection
/// `i` owned by user `u<i % users>`.
pub async fn store_of(count: usize, users: usize, width: usize) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    for i in 0..count {
        let connection = Connection::open(
            id(&format!("c{i:0width$}")),
            user(&format!("u{}", i % users)),
            NOW,
        );
        store.save(&connection).await.expect("save");
    }
    store
}

pub async fn subscribe(store: &MemoryStore, connection: &str, topics: &[&str]) {
    let found = store
        .get(&id(connection), NOW)
        .await
        .expect("get")
        .expect("connection exists");
    let topics: Vec<ExternalId> = topics.iter().map(|t| topic(t)).collect();
    store
        .subscribe(&found, &topics, NOW)
        .await
        .expect("subscribe");
}

/// Small pages and few segments, so that tests cross page boundaries.
pub fn config() -> PushConfig {
    PushConfig {
        max_in_flight: 16,
        page_size: 3,
        read_concurrency: 4,
        broadcast_segments: 2,
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            budget: Duration::from_secs(2),
        },
        max_posts_per_second: None,
    }
}

/// A gateway that answers every post after `latency` and measures how many posts it holds
/// at once.
pub struct CountingGateway {
    latency: Duration,
    in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub posts: AtomicUsize,
}

impl CountingGateway {
    pub fn new(latency: Duration) -> Self {
        Self {
            latency,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            posts: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl ConnectionGateway for CountingGateway {
    async fn post(&self, _: &ConnectionId, _: Bytes) -> Result<(), GatewayError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.latency).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
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
