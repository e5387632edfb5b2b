//! `$connect` with an authorizer: the topics its context grants, and the subprotocols the
//! answer may name.

use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::http::HeaderValue;
use serde_json::{Value, json};
use wspush_domain::{SubscriptionPolicy, TopicGrants};
use wspush_handlers::connect::PROTOCOL_HEADER;
use wspush_handlers::{IdentitySource, handle_connect, handle_route};
use wspush_ports::{ConnectionService, ConnectionStore, SubscriptionService};

use crate::helpers::*;

const CONNECT: &str = include_str!("../fixtures/connect.json");
const SUBSCRIBE: &str = include_str!("../fixtures/subscribe.json");

/// The fixture `$connect` event (principal `u-1`) with `topics` in its authorizer context.
fn connect_granting(topics: Option<Value>) -> ApiGatewayWebsocketProxyRequest {
    let mut event = websocket_event(CONNECT);
    if let Some(topics) = topics {
        event
            .request_context
            .authorizer
            .fields
            .insert("topics".into(), topics);
    }
    event
}

fn with_grants_key() -> IdentitySource {
    IdentitySource {
        authorizer_grants_key: Some("topics".into()),
        ..IdentitySource::default()
    }
}

/// Connects with `identity`; the answer and the grants saved, if a connection was.
async fn connect(
    event: &ApiGatewayWebsocketProxyRequest,
    identity: &IdentitySource,
) -> (ApiGatewayProxyResponse, Option<Option<TopicGrants>>) {
    let store = store_with(&[]).await;
    let service = ConnectionService::new(store.clone(), clock());
    let response = handle_connect(event, &service, identity).await;
    let saved = store.get(&id(CONNECTION), NOW).await.expect("get");
    (
        response,
        saved.map(|connection| connection.grants().cloned()),
    )
}

#[tokio::test]
async fn the_authorizer_context_grants_topics_as_a_json_array_or_a_comma_list() {
    let expected = TopicGrants::parse(["room:*", "ticker:AAPL"]).expect("valid");
    for topics in [
        json!(r#"["room:*", "ticker:AAPL"]"#),
        json!("room:*, ticker:AAPL"),
        json!(["room:*", "ticker:AAPL"]),
    ] {
        let (response, saved) =
            connect(&connect_granting(Some(topics.clone())), &with_grants_key()).await;

        assert_eq!(response.status_code, 200, "{topics}");
        assert_eq!(saved, Some(Some(expected.clone())), "{topics}");
    }
}

#[tokio::test]
async fn with_the_key_set_a_context_without_it_grants_nothing_and_without_the_key_topics_are_open()
{
    let (_, none_given) = connect(&connect_granting(None), &with_grants_key()).await;
    let (_, key_unset) = connect(
        &connect_granting(Some(json!("room:*"))),
        &IdentitySource::default(),
    )
    .await;

    assert_eq!(none_given, Some(Some(TopicGrants::default())));
    assert_eq!(key_unset, Some(None), "no key: the policy alone decides");
}

#[tokio::test]
async fn grants_that_break_the_rules_refuse_the_socket_with_401() {
    for topics in [
        json!("[\"room:*\""),
        json!("room:*, bad topic"),
        json!(42),
        json!([1, 2]),
        json!(vec!["room:1"; 300].join(",")),
    ] {
        let (response, saved) =
            connect(&connect_granting(Some(topics.clone())), &with_grants_key()).await;

        assert_eq!(response.status_code, 401, "{topics}");
        assert_eq!(saved, None, "{topics}: nothing saved");
    }
}

#[tokio::test]
async fn a_topic_the_authorizer_did_not_grant_is_denied() {
    let store = store_with(&[]).await;
    let connections = ConnectionService::new(store.clone(), clock());
    let event = connect_granting(Some(json!("room:*")));
    assert_eq!(
        handle_connect(&event, &connections, &with_grants_key())
            .await
            .status_code,
        200
    );
    let subscriptions =
        SubscriptionService::new(store.clone(), clock(), SubscriptionPolicy::default());

    // The fixture asks for room:42 (granted) and ticker:AAPL (not granted).
    let response = handle_route(&websocket_event(SUBSCRIBE), &subscriptions).await;

    assert_eq!(response.status_code, 403);
    assert_eq!(
        body_json(&response)["error"],
        "topic `ticker:AAPL` is not granted to the connection (by its token or authorizer)"
    );
    assert!(held(&store).await.is_empty());
}

fn offering(protocols: &str) -> ApiGatewayWebsocketProxyRequest {
    let mut event = websocket_event(CONNECT);
    let value = HeaderValue::from_str(protocols).expect("header");
    event.headers.insert(PROTOCOL_HEADER, value.clone());
    event.multi_value_headers.insert(PROTOCOL_HEADER, value);
    event
}

fn answered(response: &ApiGatewayProxyResponse) -> Option<&str> {
    response
        .headers
        .get(PROTOCOL_HEADER)
        .map(|value| value.to_str().expect("ascii"))
}

#[tokio::test]
async fn only_an_allowed_subprotocol_is_echoed() {
    let allow = IdentitySource {
        subprotocols: Some(vec!["wspush.v2".into(), "wspush".into()]),
        ..IdentitySource::default()
    };

    let (first_allowed, _) = connect(&offering("mqtt, wspush, wspush.v2"), &allow).await;
    let (none_allowed, saved) = connect(&offering("mqtt, graphql-ws"), &allow).await;
    let (no_list, _) = connect(&offering("mqtt, wspush"), &IdentitySource::default()).await;

    assert_eq!(
        answered(&first_allowed),
        Some("wspush"),
        "the first offered that is allowed"
    );
    assert_eq!(none_allowed.status_code, 200);
    assert!(saved.is_some());
    assert_eq!(
        answered(&none_allowed),
        None,
        "nothing the server does not speak"
    );
    assert_eq!(
        answered(&no_list),
        Some("mqtt"),
        "without a list, the first offered"
    );
}
