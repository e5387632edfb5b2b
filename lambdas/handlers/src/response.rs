//! Responses to API Gateway WebSocket routes.

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::ApiGatewayProxyResponse;
use wspush_domain::ConnectionId;

/// A response with `status` and a text body. For `$connect`, a non-2xx status makes API
/// Gateway refuse the socket; for a route with a route response, the body is sent back to
/// the caller as a message.
pub fn response(status: i64, body: impl Into<String>) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = status;
    response.body = Some(Body::Text(body.into()));
    response
}

/// The connection ID of a WebSocket event, validated; `Err` is the 400 response to give.
pub fn connection_id(raw: Option<&str>) -> Result<ConnectionId, Box<ApiGatewayProxyResponse>> {
    let Some(raw) = raw else {
        tracing::error!("the event has no requestContext.connectionId");
        return Err(Box::new(response(
            400,
            "requestContext.connectionId is missing",
        )));
    };
    ConnectionId::parse(raw).map_err(|error| {
        tracing::error!(%error, "the event's connection ID is invalid");
        Box::new(response(
            400,
            format!("requestContext.connectionId: {error}"),
        ))
    })
}
