//! How the local gateway runs: its options, with API Gateway's limits as the defaults.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use wspush_adapters::Transport;
use wspush_domain::limits::{IDLE_TIMEOUT, MAX_CONNECTION_DURATION};
use wspush_domain::{HistoryPolicy, PresencePolicy, SubscriptionPolicy};
use wspush_handlers::token::TokenVerifier;
use wspush_ports::PushConfig;

use crate::faults::Faults;
use crate::functions::FunctionsConfig;

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
    /// How the in-process pusher calls `@connections` (as `WSPUSH_TRANSPORT`).
    pub transport: Transport,
    /// Whether a notification request whose lists are all empty is a broadcast (the
    /// Python pusher's reading) instead of reaching nobody.
    pub empty_lists_mean_everyone: bool,
    /// Which streams keep history, so that a subscribe `since` a position is caught up (off
    /// by default, as `WSPUSH_HISTORY_NAMESPACES`).
    pub history: HistoryPolicy,
    /// Which topics keep presence: joins and leaves to their subscribers, and the presence
    /// query (off by default, as `WSPUSH_PRESENCE_NAMESPACES`).
    pub presence: PresencePolicy,
    /// Injected faults and latency on `POST @connections`.
    pub faults: Faults,
    /// The subprotocols `$connect` may answer with, as `WSPUSH_SUBPROTOCOLS`; `None` for
    /// whichever the client offered first.
    pub subprotocols: Option<Vec<String>>,
    /// Whether a socket's messages are handled concurrently, as API Gateway invokes a
    /// route's Lambda once per message with nothing ordering them; by default one after the
    /// other, in the order sent.
    pub concurrent_messages: bool,
    /// Page origins allowed besides the gateway's own (`http://localhost:3000`, say): a
    /// request with another `Origin` is refused with 403.
    pub allowed_origins: Vec<String>,
    /// Host names allowed besides IP addresses and `localhost` (a tunnel's, say), with or
    /// without a port: a request with another `Host` is refused with 403.
    pub allowed_hosts: Vec<String>,
    /// Run the deployable functions (their `bootstrap` binaries, with the template's
    /// environment) instead of the in-process handlers; needs the DynamoDB store.
    pub functions: Option<FunctionsConfig>,
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
            transport: Transport::default(),
            empty_lists_mean_everyone: false,
            history: HistoryPolicy::default(),
            presence: PresencePolicy::off(),
            faults: Faults::default(),
            subprotocols: None,
            concurrent_messages: false,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            functions: None,
        }
    }
}
