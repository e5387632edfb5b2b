use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use wspush_integration_tests::dynamodb_local::DynamoDbFixture;
use wspush_local::{Faults, LocalConfig, RunningGateway, StoreChoice, start};

/// A local gateway on a free port, with the store the test asked for.
pub struct Setup {
    pub gateway: RunningGateway,
    dynamodb: Option<DynamoDbFixture>,
}

impl Setup {
    /// A setup around a gateway already started (on `dynamodb`'s table, if given).
    pub fn around(gateway: RunningGateway, dynamodb: Option<DynamoDbFixture>) -> Self {
        Self { gateway, dynamodb }
    }

    pub async fn memory() -> Self {
        Self::with(StoreChoice::Memory, None, Faults::default()).await
    }

    pub async fn dynamodb() -> Self {
        let fixture = DynamoDbFixture::new().await;
        let store = StoreChoice::DynamoDb {
            endpoint: fixture.endpoint.clone(),
            table: fixture.store.table().to_owned(),
        };
        Self::with(store, Some(fixture), Faults::default()).await
    }

    /// A gateway on a fresh DynamoDB Local table, with `faults`.
    pub async fn dynamodb_with(faults: Faults) -> Self {
        let fixture = DynamoDbFixture::new().await;
        let store = StoreChoice::DynamoDb {
            endpoint: fixture.endpoint.clone(),
            table: fixture.store.table().to_owned(),
        };
        Self::with(store, Some(fixture), faults).await
    }

    /// The DynamoDB store behind the gateway, if it has one.
    pub fn dynamodb_store(&self) -> Option<wspush_adapters::DynamoDbStore> {
        self.dynamodb.as_ref().map(|fixture| fixture.store.clone())
    }

    /// An in-memory gateway with `config`'s limits and faults.
    pub async fn memory_with(config: LocalConfig) -> Self {
        let gateway = start(config).await.expect("the local gateway starts");
        Self {
            gateway,
            dynamodb: None,
        }
    }

    /// A gateway with `config`, on a fresh DynamoDB Local table.
    pub async fn dynamodb_with_config(config: LocalConfig) -> Self {
        let fixture = DynamoDbFixture::new().await;
        let config = LocalConfig {
            store: StoreChoice::DynamoDb {
                endpoint: fixture.endpoint.clone(),
                table: fixture.store.table().to_owned(),
            },
            ..config
        };
        let gateway = start(config).await.expect("the local gateway starts");
        Self {
            gateway,
            dynamodb: Some(fixture),
        }
    }

    async fn with(store: StoreChoice, dynamodb: Option<DynamoDbFixture>, faults: Faults) -> Self {
        let config = LocalConfig {
            store,
            faults,
            ..LocalConfig::default()
        };
        let gateway = start(config).await.expect("the local gateway starts");
        Self::around(gateway, dynamodb)
    }

    /// A second gateway on the same store, with `faults` (for scenarios that need them).
    pub async fn sibling(&self, faults: Faults) -> Setup {
        self.sibling_with(LocalConfig {
            faults,
            ..LocalConfig::default()
        })
        .await
    }

    /// A second gateway on the same store, with `config` (its store aside).
    pub async fn sibling_with(&self, config: LocalConfig) -> Setup {
        let store = match &self.dynamodb {
            Some(fixture) => StoreChoice::DynamoDb {
                endpoint: fixture.endpoint.clone(),
                table: fixture.store.table().to_owned(),
            },
            None => StoreChoice::Memory,
        };
        let gateway = start(LocalConfig { store, ..config })
            .await
            .expect("the local gateway starts");
        Setup {
            gateway,
            dynamodb: None,
        }
    }

    pub async fn finish(self) {
        self.gateway.shutdown().await.expect("clean shutdown");
        if let Some(fixture) = self.dynamodb {
            fixture.finish().await;
        }
    }

    /// Opens a socket as `user` and returns it with its connection ID.
    pub async fn connect(&self, user: &str) -> Client {
        self.open(format!("{}?user={user}", self.gateway.websocket_url()))
            .await
    }

    /// Opens a socket at `url` (the gateway's, with a query) and returns it with its
    /// connection ID.
    pub async fn open(&self, url: String) -> Client {
        let before = self.gateway.open_connections();
        let (socket, _) = connect_async(url).await.expect("the socket opens");
        let id = wait_for(|| {
            self.gateway
                .open_connections()
                .into_iter()
                .find(|id| !before.contains(id))
        })
        .await
        .expect("the gateway registers the socket");
        Client { socket, id }
    }

    /// Sends a notification request to `POST /notifications`.
    pub async fn notify(&self, request: &str) -> (u16, Value) {
        let (status, body) = http(
            self.gateway.address(),
            "POST",
            "/notifications",
            request.as_bytes(),
        )
        .await;
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }
}

pub struct Client {
    pub socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub id: String,
}

impl Client {
    pub async fn send(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// The next text message, within 5 s.
    pub async fn next_text(&mut self) -> String {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), self.socket.next())
                .await
                .expect("a message within 5 s")
                .expect("the socket is open")
                .expect("a frame");
            match message {
                Message::Text(text) => return text.to_string(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    pub async fn next_json(&mut self) -> Value {
        serde_json::from_str(&self.next_text().await).expect("JSON")
    }

    /// Asserts that nothing arrives for 300 ms.
    pub async fn expect_nothing(&mut self) {
        let next = tokio::time::timeout(Duration::from_millis(300), self.socket.next()).await;
        assert!(next.is_err(), "expected nothing, got {next:?}");
    }

    /// Subscribes and checks the reply.
    pub async fn subscribe(&mut self, topics: &[&str]) {
        let body = serde_json::json!({"action": "subscribe", "topics": topics});
        self.send(&body.to_string()).await;
        let reply = self.next_json().await;
        assert_eq!(reply["ok"], true, "{reply}");
    }
}

/// Polls `probe` every 20 ms for up to 5 s.
pub async fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..250 {
        if let Some(found) = probe() {
            return Some(found);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// A minimal HTTP/1.1 request; returns the status and the body.
pub async fn http(
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, String) {
    wspush_local::client::request(&address.to_string(), method, path, body)
        .await
        .expect("an HTTP answer from the local gateway")
}
