//! The local gateway's state: the options, the open sockets and the services, wired to the
//! chosen store.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use wspush_adapters::aws::local_sdk_config;
use wspush_adapters::{
    ApiGatewayConfig, ApiGatewayGateway, DynamoDbStore, MemoryStore, SystemClock,
};
use wspush_handlers::IdentitySource;
use wspush_ports::{
    Clock, ConnectionGateway, ConnectionService, ConnectionStore, HistoryStore, LedgerConfig,
    Presence, PresenceStore, PushService, RequestLedger, SubscriptionService,
};

use crate::config::{LocalConfig, StoreChoice};
use crate::faults::FaultInjector;
use crate::functions::{Functions, Site};
use crate::guard::Guard;
use crate::queue::{InProcessQueue, Received};
use crate::registry::Registry;
use crate::virtuals::VirtualConnections;

/// The store behind the gateway, whichever it is.
pub type Store = dyn ConnectionStore;

/// Everything a request handler needs: the options, the open sockets, and the services the
/// Lambdas would run, wired to the chosen store.
pub(crate) struct AppState {
    /// The options it was started with.
    pub(crate) config: LocalConfig,
    /// The `domainName` of the events (the listening address).
    pub(crate) domain: String,
    /// The open sockets.
    pub(crate) registry: Registry,
    pub(crate) store: Arc<Store>,
    pub(crate) connections: ConnectionService<Store>,
    pub(crate) subscriptions: SubscriptionService<Store>,
    /// The in-process pusher, posting through the real `@connections` adapter to this
    /// gateway's own management API.
    pub(crate) pusher: PushService<Store, ApiGatewayGateway>,
    /// What `POST @connections` answers besides delivering.
    pub(crate) faults: FaultInjector,
    pub(crate) virtuals: VirtualConnections,
    pub(crate) clock: Arc<dyn Clock>,
    /// How `$connect` finds the caller's identity.
    pub(crate) identity: IdentitySource,
    /// Which hosts and origins may talk to the gateway.
    pub(crate) guard: Guard,
    /// The deployable functions, when they run instead of the in-process handlers.
    pub(crate) functions: Option<Functions>,
    /// The sockets open or still closing (their `$disconnect` not yet handled).
    pub(crate) sockets: std::sync::atomic::AtomicUsize,
}

impl AppState {
    /// The state of a gateway listening on `address`: the store (created if missing), and
    /// the services over it.
    pub(crate) async fn build(
        config: LocalConfig,
        address: SocketAddr,
    ) -> anyhow::Result<(Self, Received)> {
        let sdk = local_sdk_config("us-east-1", "local", "local");
        // The store is also the pusher's request ledger, so a request with an `id` is pushed
        // once, and the history store.
        type Stores = (
            Arc<Store>,
            Arc<dyn RequestLedger>,
            Arc<dyn HistoryStore>,
            Arc<dyn PresenceStore>,
        );
        let (store, ledger, history, presence): Stores = match &config.store {
            StoreChoice::Memory => {
                let store = Arc::new(MemoryStore::new());
                (store.clone(), store.clone(), store.clone(), store)
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
                (store.clone(), store.clone(), store.clone(), store)
            }
        };
        let functions = match (&config.functions, &config.store) {
            (None, _) => None,
            (Some(functions), StoreChoice::DynamoDb { endpoint, table }) => Some(
                Functions::start(
                    functions,
                    Site {
                        dynamodb_endpoint: endpoint,
                        table,
                        management_endpoint: format!("http://{address}/{}", config.stage),
                    },
                )
                .await
                .context("starting the functions")?,
            ),
            (Some(_), StoreChoice::Memory) => anyhow::bail!(
                "running the functions needs DynamoDB (--dynamodb-endpoint and --table): \
                 separate processes cannot share the gateway's memory"
            ),
        };
        let (queue, received) = InProcessQueue::new();
        let presence = Presence::new(config.presence.clone(), presence, Arc::new(queue));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mut management_api =
            ApiGatewayConfig::new(format!("http://{address}/{}", config.stage))
                .with_transport(config.transport);
        management_api.pool_size = config.push.max_in_flight;
        let gateway = Arc::new(
            ApiGatewayGateway::new(&sdk, &management_api)
                .context("setting up the in-process pusher's @connections transport")?,
        );
        let state = AppState {
            domain: address.to_string(),
            registry: Registry::default(),
            connections: ConnectionService::new(Arc::clone(&store), Arc::clone(&clock))
                .with_presence(presence.clone()),
            subscriptions: SubscriptionService::new(
                Arc::clone(&store),
                Arc::clone(&clock),
                config.policy.clone(),
            )
            .with_resume(
                Arc::clone(&history),
                Arc::clone(&gateway) as Arc<dyn ConnectionGateway>,
                config.history.clone(),
            )
            .with_presence(presence.clone()),
            pusher: PushService::new(Arc::clone(&store), gateway, Arc::clone(&clock), config.push)?
                .with_ledger(ledger, LedgerConfig::default())
                .with_empty_lists_meaning_everyone(config.empty_lists_mean_everyone)
                .with_history(history, config.history.clone())
                .with_presence(presence),
            faults: FaultInjector::new(config.faults.clone()),
            virtuals: VirtualConnections::default(),
            clock,
            identity: IdentitySource {
                token: config.token.clone(),
                subprotocols: config.subprotocols.clone(),
                ..IdentitySource::default()
            },
            guard: Guard::new(address, &config.allowed_hosts, &config.allowed_origins),
            functions,
            sockets: 0.into(),
            store,
            config,
        };
        Ok((state, received))
    }
}
