//! Configuration, state and start-up of the local gateway.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::{get, post};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wspush_adapters::aws::local_sdk_config;
use wspush_adapters::{
    ApiGatewayConfig, ApiGatewayGateway, DynamoDbStore, MemoryStore, SystemClock,
};
use wspush_domain::SubscriptionPolicy;
use wspush_domain::limits::{IDLE_TIMEOUT, MAX_CONNECTION_DURATION};
use wspush_handlers::IdentitySource;
use wspush_handlers::token::TokenVerifier;
use wspush_ports::{
    Clock, ConnectionService, ConnectionStore, LedgerConfig, PushConfig, PushService,
    RequestLedger, SubscriptionService,
};

use crate::faults::{FaultInjector, Faults};
use crate::registry::Registry;
use crate::virtuals::{VirtualConnections, VirtualTally};
use crate::{management, socket};

/// Where connections are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// In process memory (the default).
    Memory,
    /// A DynamoDB table (DynamoDB Local, say), created if missing.
    DynamoDb {
        /// The endpoint, such as `http://127.0.0.1:8000`.
        endpoint: String,
        /// The table.
        table: String,
    },
}

/// How the local gateway runs.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Where to listen; port 0 picks a free one.
    pub address: SocketAddr,
    /// The stage: sockets open at `/{stage}`, the management API is `/{stage}/@connections`.
    pub stage: String,
    /// The query-string parameter that plays the authorizer at `$connect` (local only;
    /// ignored when tokens are required).
    pub identity_param: String,
    /// When set, `$connect` requires a valid token, exactly as the connect Lambda does with
    /// `WSPUSH_JWT_*` set.
    pub token: Option<Arc<TokenVerifier>>,
    /// Where connections are kept.
    pub store: StoreChoice,
    /// Idle sockets are closed after this long (API Gateway: 10 minutes).
    pub idle_timeout: Duration,
    /// Every socket is closed after this long (API Gateway: 2 hours).
    pub max_duration: Duration,
    /// What `subscribe` allows.
    pub policy: SubscriptionPolicy,
    /// How the in-process pusher pushes.
    pub push: PushConfig,
    /// Injected faults and latency on `POST @connections`.
    pub faults: Faults,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            stage: "local".to_owned(),
            identity_param: "user".to_owned(),
            token: None,
            store: StoreChoice::Memory,
            idle_timeout: IDLE_TIMEOUT,
            max_duration: MAX_CONNECTION_DURATION,
            policy: SubscriptionPolicy::default(),
            push: PushConfig::default(),
            faults: Faults::default(),
        }
    }
}

pub type Store = dyn ConnectionStore;

/// Everything a request handler needs.
pub struct AppState {
    pub config: LocalConfig,
    pub domain: String,
    pub registry: Registry,
    pub store: Arc<Store>,
    pub connections: ConnectionService<Store>,
    pub subscriptions: SubscriptionService<Store>,
    pub pusher: PushService<Store, ApiGatewayGateway>,
    pub faults: FaultInjector,
    pub virtuals: VirtualConnections,
    pub clock: Arc<dyn Clock>,
    pub identity: IdentitySource,
}

/// A running local gateway.
pub struct RunningGateway {
    address: SocketAddr,
    stage: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
    state: Arc<AppState>,
}

impl RunningGateway {
    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Where WebSocket clients connect (`ws://host:port/{stage}`).
    pub fn websocket_url(&self) -> String {
        format!("ws://{}/{}", self.address, self.stage)
    }

    /// The management endpoint, as `ApiGatewayConfig::endpoint` wants it.
    pub fn management_endpoint(&self) -> String {
        format!("http://{}/{}", self.address, self.stage)
    }

    /// Where notification requests are posted.
    pub fn notifications_url(&self) -> String {
        format!("http://{}/notifications", self.address)
    }

    /// The demo page.
    pub fn demo_url(&self) -> String {
        format!("http://{}/", self.address)
    }

    /// The real `@connections` adapter pointed at this gateway, as a pusher elsewhere would
    /// use it (throwaway credentials, SigV4 signed like the real API).
    pub fn api_gateway(&self) -> ApiGatewayGateway {
        ApiGatewayGateway::new(
            &local_sdk_config("us-east-1", "local", "local"),
            &ApiGatewayConfig::new(self.management_endpoint()),
        )
    }

    /// The store behind the gateway.
    pub fn store(&self) -> Arc<Store> {
        Arc::clone(&self.state.store)
    }

    /// The IDs of the open sockets.
    pub fn open_connections(&self) -> Vec<String> {
        self.state.registry.ids()
    }

    /// Replaces the virtual connections: IDs that `POST @connections` accepts (and counts)
    /// with no socket behind them, for benchmarks and load tests.
    pub fn set_virtual_connections(&self, ids: impl IntoIterator<Item = String>) {
        self.state.virtuals.replace(ids);
    }

    /// What the virtual connections have received.
    pub fn virtual_tally(&self) -> VirtualTally {
        self.state.virtuals.tally()
    }

    /// Stops accepting, closes every socket, and waits for the server to end.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        for id in self.state.registry.ids() {
            if let Some(live) = self.state.registry.get(&id) {
                let _ = live
                    .tx
                    .send(crate::registry::Outbound::Close(1001, "Going away"));
            }
        }
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        (&mut self.server).await.context("the server task")??;
        Ok(())
    }
}

/// Binds, wires the handlers and starts serving in the background.
pub async fn start(config: LocalConfig) -> anyhow::Result<RunningGateway> {
    let listener = tokio::net::TcpListener::bind(config.address)
        .await
        .with_context(|| format!("binding {}", config.address))?;
    let address = listener.local_addr()?;
    let sdk = local_sdk_config("us-east-1", "local", "local");
    // The store is also the pusher's request ledger, so a request with an `id` is pushed once.
    let (store, ledger): (Arc<Store>, Arc<dyn RequestLedger>) = match &config.store {
        StoreChoice::Memory => {
            let store = Arc::new(MemoryStore::new());
            (store.clone(), store)
        }
        StoreChoice::DynamoDb { endpoint, table } => {
            let client = aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&sdk)
                    .endpoint_url(endpoint)
                    .build(),
            );
            let store = DynamoDbStore::new(client, table);
            store
                .ensure_table()
                .await
                .with_context(|| format!("creating table {table} on {endpoint}"))?;
            let store = Arc::new(store);
            (store.clone(), store)
        }
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let gateway = ApiGatewayGateway::new(
        &sdk,
        &ApiGatewayConfig::new(format!("http://{address}/{}", config.stage)),
    );
    let state = Arc::new(AppState {
        domain: address.to_string(),
        registry: Registry::default(),
        connections: ConnectionService::new(Arc::clone(&store), Arc::clone(&clock)),
        subscriptions: SubscriptionService::new(
            Arc::clone(&store),
            Arc::clone(&clock),
            config.policy.clone(),
        ),
        pusher: PushService::new(
            Arc::clone(&store),
            Arc::new(gateway),
            Arc::clone(&clock),
            config.push,
        )?
        .with_ledger(ledger, LedgerConfig::default()),
        faults: FaultInjector::new(config.faults.clone()),
        virtuals: VirtualConnections::default(),
        clock,
        identity: IdentitySource {
            token: config.token.clone(),
            ..IdentitySource::default()
        },
        store,
        config,
    });
    let stage = state.config.stage.clone();
    let app = Router::new()
        .route("/", get(management::demo_page))
        .route("/notifications", post(management::notifications))
        .route(
            "/_local/virtual-connections",
            get(management::virtual_tally).put(management::put_virtual_connections),
        )
        .route(&format!("/{stage}"), get(socket::upgrade))
        .route(
            &format!("/{stage}/@connections/{{id}}"),
            post(management::post_to_connection)
                .get(management::get_connection)
                .delete(management::delete_connection),
        )
        .with_state(Arc::clone(&state));
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = shutdown_rx.await;
        })
        .await
    });
    Ok(RunningGateway {
        address,
        stage,
        shutdown: Some(shutdown_tx),
        server,
        state,
    })
}
