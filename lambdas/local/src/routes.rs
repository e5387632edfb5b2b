//! Every route of the local gateway, in one place.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::guard::Refusal;
use crate::state::AppState;
use crate::{management, socket};

/// The routes: the demo page, the notification intake, the virtual connections, the
/// WebSocket endpoint at `/{stage}`, and the `@connections` management API; every request
/// passes the [guard](crate::guard) first.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let stage = state.config.stage.clone();
    Router::new()
        .route("/", get(management::demo_page))
        .route("/client.js", get(management::client_library))
        .route("/notifications", post(management::notifications))
        .route("/occupancy", get(management::occupancy))
        .route("/_local/connections", get(management::open_connections))
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
        .layer(from_fn_with_state(Arc::clone(&state), guard))
        .with_state(state)
}

/// Refuses what [`Guard::check`](crate::guard::Guard::check) refuses, before any route runs.
pub(crate) async fn guard(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    match state
        .guard
        .check(request.method(), request.uri().path(), request.headers())
    {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            tracing::warn!(%refusal, method = %request.method(), path = request.uri().path(), "request refused");
            let status = match refusal {
                Refusal::ContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Refusal::Host(_) | Refusal::Origin(_) => StatusCode::FORBIDDEN,
            };
            (status, json!({"error": refusal.to_string()}).to_string()).into_response()
        }
    }
}
