//! Every route of the local gateway, in one place.

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

use crate::state::AppState;
use crate::{guard, management, socket};

/// The routes: the demo page, the notification intake, the virtual connections, the
/// WebSocket endpoint at `/{stage}`, and the `@connections` management API; every request
/// passes the [guard](crate::guard) first.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let stage = state.config.stage.clone();
    Router::new()
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
        .layer(from_fn_with_state(Arc::clone(&state), guard::guard))
        .with_state(state)
}
