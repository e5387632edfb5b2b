//! `$connect`: who is this, and remember the connection.

use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use serde_json::Value;
use wspush_domain::UserId;
use wspush_ports::{ConnectionService, ConnectionStore};

use crate::response::{connection_id, response};

/// Where the user's identity comes from at `$connect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySource {
    /// The key of `requestContext.authorizer` that holds the user ID (the authorizer's
    /// `principalId` by default, or a key of its context).
    pub authorizer_key: String,
    /// INSECURE, for development only: a query-string parameter that names the user when the
    /// authorizer gives no identity. Anyone can claim any user with it.
    pub insecure_query_param: Option<String>,
}

impl Default for IdentitySource {
    fn default() -> Self {
        Self {
            authorizer_key: "principalId".to_owned(),
            insecure_query_param: None,
        }
    }
}

impl IdentitySource {
    /// The user of a `$connect` event; `None` when it carries no usable identity.
    pub fn user_of(&self, event: &ApiGatewayWebsocketProxyRequest) -> Option<UserId> {
        let from_authorizer = event
            .request_context
            .authorizer
            .fields
            .get(&self.authorizer_key)
            .and_then(|value| match value {
                Value::String(text) => Some(text.clone()),
                Value::Number(number) => Some(number.to_string()),
                _ => None,
            });
        let from_query = || {
            self.insecure_query_param.as_ref().and_then(|param| {
                event
                    .query_string_parameters
                    .first(param)
                    .map(str::to_owned)
            })
        };
        let raw = from_authorizer.or_else(from_query)?;
        match UserId::parse(raw) {
            Ok(user) => Some(user),
            Err(error) => {
                tracing::warn!(%error, "the identity at $connect is not a valid user ID");
                None
            }
        }
    }
}

/// Handles `$connect`: 200 and the connection saved, or 401 (the socket is refused) when
/// the event carries no identity.
pub async fn handle_connect<S>(
    event: &ApiGatewayWebsocketProxyRequest,
    service: &ConnectionService<S>,
    identity: &IdentitySource,
) -> ApiGatewayProxyResponse
where
    S: ConnectionStore + ?Sized,
{
    let connection = match connection_id(event.request_context.connection_id.as_deref()) {
        Ok(connection) => connection,
        Err(refusal) => return *refusal,
    };
    let Some(user) = identity.user_of(event) else {
        tracing::warn!(%connection, key = %identity.authorizer_key, "refusing a connection without identity");
        return response(401, "Unauthorized");
    };
    match service.connect(connection, user).await {
        Ok(_) => response(200, "Connected"),
        Err(error) => {
            tracing::error!(error = %anyhow::Error::new(error), "saving the connection failed");
            response(500, "Internal server error")
        }
    }
}
