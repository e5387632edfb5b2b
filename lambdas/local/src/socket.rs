//! The WebSocket endpoint: `$connect` on upgrade, routes for messages, `$disconnect` at the
//! end, with API Gateway's idle and maximum-duration limits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lambda_events::encodings::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};
use wspush_domain::limits::MAX_PAYLOAD_BYTES;
use wspush_handlers::connect::PROTOCOL_HEADER;
use wspush_handlers::{handle_connect, handle_disconnect, handle_route};

use crate::events::{self, EventContext};
use crate::registry::{Live, Outbound, Registry, new_connection_id};
use crate::state::AppState;

/// What the gateway remembers of a socket for the events it builds.
struct SocketInfo {
    id: String,
    source_ip: String,
    user_agent: Option<String>,
    connected_at_ms: u64,
}

impl SocketInfo {
    fn context<'a>(&'a self, state: &'a AppState) -> EventContext<'a> {
        EventContext {
            connection_id: &self.id,
            stage: &state.config.stage,
            domain: &state.domain,
            source_ip: &self.source_ip,
            user_agent: self.user_agent.as_deref(),
            connected_at_ms: self.connected_at_ms,
            now_ms: state.clock.now().unix_millis(),
        }
    }
}

/// `GET /{stage}`: runs `$connect`, and upgrades only if it answered 2xx.
pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let info = SocketInfo {
        id: new_connection_id(),
        source_ip: peer.ip().to_string(),
        user_agent: headers
            .get("user-agent")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        connected_at_ms: state.clock.now().unix_millis(),
    };
    let header_pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
        .collect();
    // The query parameter plays the authorizer, unless tokens are required (then the
    // connect handler verifies the token itself, as the Lambda does).
    let user = match state.identity.token {
        Some(_) => None,
        None => query
            .iter()
            .find(|(name, _)| *name == state.config.identity_param)
            .map(|(_, value)| value.as_str()),
    };
    let event = events::connect(&info.context(&state), &header_pairs, &query, user);
    let answer = match &state.functions {
        Some(functions) => functions.connect.proxy(&event).await,
        None => handle_connect(&event, &state.connections, &state.identity).await,
    };
    if !(200..300).contains(&answer.status_code) {
        let status = u16::try_from(answer.status_code)
            .ok()
            .and_then(|code| StatusCode::from_u16(code).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = match answer.body {
            Some(Body::Text(text)) => text,
            _ => String::new(),
        };
        tracing::info!(connection = %info.id, %status, "$connect refused the socket");
        return (status, body).into_response();
    }
    tracing::info!(connection = %info.id, "socket open");
    // API Gateway's limits on what a client sends: a frame over 32 KB or a message over
    // 128 KB closes the socket with 1009.
    let mut response = upgrade
        .max_frame_size(MAX_CLIENT_FRAME_BYTES)
        .max_message_size(MAX_PAYLOAD_BYTES)
        .on_upgrade(move |socket| run(socket, state, info));
    // The subprotocol `$connect` chose, copied to the handshake as API Gateway does (browsers
    // fail the handshake without it). Set directly: axum's own selection reads only the first
    // Sec-WebSocket-Protocol line, and clients may send several.
    if let Some(protocol) = answer.headers.get(PROTOCOL_HEADER) {
        response
            .headers_mut()
            .insert(PROTOCOL_HEADER, protocol.clone());
    }
    response
}

/// Counts a socket from its upgrade until its `$disconnect` has been handled.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(sockets: &'a AtomicUsize) -> Self {
        sockets.fetch_add(1, Ordering::SeqCst);
        Self(sockets)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn run(socket: WebSocket, state: Arc<AppState>, info: SocketInfo) {
    let _counted = Counted::new(&state.sockets);
    let info = Arc::new(info);
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel();
    state.registry.insert(
        info.id.clone(),
        Live {
            tx: tx.clone(),
            connected_at_ms: info.connected_at_ms,
            last_active_ms: info.connected_at_ms.into(),
            source_ip: info.source_ip.clone(),
            user_agent: info.user_agent.clone(),
        },
    );

    let writer = async {
        while let Some(outbound) = rx.recv().await {
            match outbound {
                Outbound::Text(text) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        return (1006, "the client stopped reading".to_owned());
                    }
                }
                Outbound::Close(code, reason) => {
                    let frame = CloseFrame {
                        code,
                        reason: reason.into(),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    return (code, reason.to_owned());
                }
            }
        }
        (1000, "closed".to_owned())
    };

    let idle = state.config.idle_timeout;
    let max_deadline = Instant::now() + state.config.max_duration;
    let reader = async {
        let mut idle_deadline = Instant::now() + idle;
        loop {
            tokio::select! {
                message = stream.next() => {
                    idle_deadline = Instant::now() + idle;
                    if let Some(live) = state.registry.get(&info.id) {
                        Registry::touch(&live, state.clock.now().unix_millis());
                    }
                    let body = match message {
                        Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
                        Some(Ok(Message::Binary(bytes))) => match String::from_utf8(bytes.to_vec()) {
                            Ok(text) => text,
                            Err(_) => {
                                tracing::info!(connection = %info.id, "ignoring a binary message that is not UTF-8");
                                continue;
                            }
                        },
                        Some(Ok(Message::Close(frame))) => {
                            let code = frame.as_ref().map_or(1005, |frame| frame.code);
                            return (code, "the client closed the connection".to_owned());
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(error)) if too_big(&error) => return (1009, TOO_BIG.to_owned()),
                        Some(Err(_)) | None => return (1006, "the connection was lost".to_owned()),
                    };
                    if state.config.concurrent_messages {
                        // As API Gateway does: each message is its own invocation, and
                        // nothing orders them.
                        let (state, info, tx) = (Arc::clone(&state), Arc::clone(&info), tx.clone());
                        tokio::spawn(async move { on_message(&state, &info, &body, &tx).await });
                    } else {
                        on_message(&state, &info, &body, &tx).await;
                    }
                }
                () = sleep_until(idle_deadline) => return (1001, "idle timeout".to_owned()),
                () = sleep_until(max_deadline) => return (1001, "maximum connection duration".to_owned()),
            }
        }
    };

    tokio::pin!(writer, reader);
    let (status, reason) = tokio::select! {
        ended = &mut reader => {
            // API Gateway closes timed-out sockets with 1001 "Going away", and a socket that
            // sent too much with 1009.
            let close = match ended.0 {
                1009 => Outbound::Close(1009, TOO_BIG),
                _ => Outbound::Close(1001, "Going away"),
            };
            let _ = tx.send(close);
            let _ = timeout(Duration::from_secs(1), &mut writer).await;
            ended
        }
        ended = &mut writer => ended,
    };
    state.registry.remove(&info.id);
    tracing::info!(connection = %info.id, status, %reason, "socket closed");
    if state.config.faults.lose_disconnects {
        tracing::info!(connection = %info.id, "$disconnect lost (fault injection)");
        return;
    }
    let event = events::disconnect(&info.context(&state), status, &reason);
    match &state.functions {
        Some(functions) => drop(functions.disconnect.proxy(&event).await),
        None => drop(handle_disconnect(&event, &state.connections).await),
    }
}

/// The most a client frame may hold (API Gateway's WebSocket frame size quota).
const MAX_CLIENT_FRAME_BYTES: usize = 32 * 1024;
/// The close reason of a socket that sent more than the limits.
const TOO_BIG: &str = "Message too big";

/// Whether a read failed on the frame or message size limit.
fn too_big(error: &axum::Error) -> bool {
    use std::error::Error as _;
    matches!(
        error
            .source()
            .and_then(|source| source.downcast_ref::<tungstenite::Error>()),
        Some(tungstenite::Error::Capacity(_))
    )
}

async fn on_message(
    state: &AppState,
    info: &SocketInfo,
    body: &str,
    tx: &mpsc::UnboundedSender<Outbound>,
) {
    let route = events::route_of(body);
    if route == "$default" {
        // No `$default` route is deployed: API Gateway answers the sender like this.
        let reply = json!({
            "message": "Forbidden",
            "connectionId": info.id,
            "requestId": format!("{:016x}", fastrand::u64(..)),
        });
        let _ = tx.send(Outbound::Text(reply.to_string()));
        return;
    }
    if route == "ping" {
        // The heartbeat: API Gateway's mock integration answers it, no Lambda runs.
        let _ = tx.send(Outbound::Text(r#"{"action":"pong"}"#.to_owned()));
        return;
    }
    let event = events::message(&info.context(state), route, body);
    let answer = match &state.functions {
        Some(functions) => functions.subscribe.proxy(&event).await,
        None => handle_route(&event, &state.subscriptions).await,
    };
    // The route has a route response: its body goes back to the sender.
    if let Some(Body::Text(text)) = answer.body {
        let _ = tx.send(Outbound::Text(text));
    }
}
