//! Start-up of the local gateway, and the handle to a running one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wspush_adapters::aws::local_sdk_config;
use wspush_adapters::{ApiGatewayConfig, ApiGatewayGateway, Transport};

use crate::config::LocalConfig;
use crate::queue::Received;
use crate::registry::Outbound;
use crate::routes;
use crate::state::{AppState, Store};
use crate::virtuals::VirtualTally;

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
    /// use it (throwaway credentials, SigV4 signed like the real API), on the default
    /// transport.
    pub fn api_gateway(&self) -> ApiGatewayGateway {
        self.api_gateway_on(Transport::default())
    }

    /// [`Self::api_gateway`] on `transport`.
    pub fn api_gateway_on(&self, transport: Transport) -> ApiGatewayGateway {
        ApiGatewayGateway::new(
            &local_sdk_config("us-east-1", "local", "local"),
            &ApiGatewayConfig::new(self.management_endpoint()).with_transport(transport),
        )
        .expect("a plain-HTTP endpoint with a region and credentials always sets up")
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

    /// With the deployable functions: the cold start of each instance each one has had so
    /// far (spawned until it asked for its first invocation), by logical ID.
    pub fn cold_starts(&self) -> Option<BTreeMap<String, Vec<Duration>>> {
        self.state
            .functions
            .as_ref()
            .map(|functions| functions.cold_starts())
    }

    /// Stops accepting, closes every socket, and waits for the server to end (and, with the
    /// deployable functions, for their `$disconnect`s to run before they are stopped).
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        for id in self.state.registry.ids() {
            if let Some(live) = self.state.registry.get(&id) {
                let _ = live.tx.send(Outbound::Close(1001, "Going away"));
            }
        }
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        (&mut self.server).await.context("the server task")??;
        if let Some(functions) = &self.state.functions {
            // The sockets' `$disconnect`s go out as the sockets close.
            let closing = tokio::time::Instant::now() + Duration::from_secs(5);
            while self.state.sockets.load(std::sync::atomic::Ordering::SeqCst) > 0
                && tokio::time::Instant::now() < closing
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            functions.shutdown().await;
        }
        Ok(())
    }
}

/// Binds, wires the handlers and starts serving in the background.
pub async fn start(config: LocalConfig) -> anyhow::Result<RunningGateway> {
    let listener = tokio::net::TcpListener::bind(config.address)
        .await
        .with_context(|| format!("binding {}", config.address))?;
    let address = listener.local_addr()?;
    let (state, queued) = AppState::build(config, address).await?;
    let state = Arc::new(state);
    tokio::spawn(drain(Arc::downgrade(&state), queued));
    let stage = state.config.stage.clone();
    let app = routes::router(Arc::clone(&state));
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

/// Pushes what is published until the gateway's state is gone (its queue with it).
async fn drain(state: Weak<AppState>, mut received: Received) {
    while let Some(request) = received.recv().await {
        let Some(state) = state.upgrade() else {
            return;
        };
        let report = state.pusher.push(&request).await;
        tracing::info!(
            delivered = report.delivered,
            pruned = report.pruned,
            "pushed a queued request"
        );
        drop::<Arc<AppState>>(state);
    }
}
