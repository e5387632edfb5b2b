//! `$disconnect`: forget the connection and its subscriptions.

use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use wspush_ports::{ConnectionService, ConnectionStore};

use crate::response::{connection_id, response};

/// Handles `$disconnect`. Idempotent: a connection already gone is fine. A store failure is
/// a 500, so that it shows in the logs and metrics; the store's TTL removes the connection
/// in any case.
pub async fn handle_disconnect<S>(
    event: &ApiGatewayWebsocketProxyRequest,
    service: &ConnectionService<S>,
) -> ApiGatewayProxyResponse
where
    S: ConnectionStore + ?Sized,
{
    let connection = match connection_id(event.request_context.connection_id.as_deref()) {
        Ok(connection) => connection,
        Err(refusal) => return *refusal,
    };
    match service.disconnect(&connection).await {
        Ok(()) => response(200, "Disconnected"),
        Err(error) => {
            tracing::error!(%connection, error = %anyhow::Error::new(error), "removing the connection failed");
            response(500, "Internal server error")
        }
    }
}
