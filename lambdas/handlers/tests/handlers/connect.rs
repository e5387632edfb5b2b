use wspush_domain::UserId;
use wspush_handlers::{IdentitySource, handle_connect, handle_disconnect};
use wspush_ports::{ConnectionService, ConnectionStore};

use crate::helpers::*;

const CONNECT: &str = include_str!("../fixtures/connect.json");
const CONNECT_WITHOUT_IDENTITY: &str = include_str!("../fixtures/connect-without-identity.json");
const DISCONNECT: &str = include_str!("../fixtures/disconnect.json");

#[tokio::test]
async fn connect_saves_the_connection_under_the_authorizers_principal() {
    let store = store_with(&[]).await;
    let service = ConnectionService::new(store.clone(), clock());

    let response = handle_connect(
        &websocket_event(CONNECT),
        &service,
        &IdentitySource::default(),
    )
    .await;

    assert_eq!(response.status_code, 200);
    let saved = store
        .get(&id(CONNECTION), NOW)
        .await
        .expect("get")
        .expect("saved");
    assert_eq!(saved.user().as_str(), "u-1");
}

#[tokio::test]
async fn the_authorizer_wins_over_a_query_string_claim_even_in_insecure_mode() {
    let store = store_with(&[]).await;
    let service = ConnectionService::new(store.clone(), clock());
    let identity = IdentitySource {
        insecure_query_param: Some("user".into()),
        ..IdentitySource::default()
    };

    handle_connect(&websocket_event(CONNECT), &service, &identity).await;

    let saved = store
        .get(&id(CONNECTION), NOW)
        .await
        .expect("get")
        .expect("saved");
    assert_eq!(saved.user().as_str(), "u-1");
}

#[tokio::test]
async fn a_context_key_other_than_principal_id_can_name_the_user() {
    let store = store_with(&[]).await;
    let service = ConnectionService::new(store.clone(), clock());
    let identity = IdentitySource {
        authorizer_key: "tenant".into(),
        ..IdentitySource::default()
    };

    handle_connect(&websocket_event(CONNECT), &service, &identity).await;

    let saved = store
        .get(&id(CONNECTION), NOW)
        .await
        .expect("get")
        .expect("saved");
    assert_eq!(saved.user(), &UserId::parse("acme").expect("valid"));
}

#[tokio::test]
async fn connect_without_identity_is_refused_with_401_and_saves_nothing() {
    let store = store_with(&[]).await;
    let service = ConnectionService::new(store.clone(), clock());

    let response = handle_connect(
        &websocket_event(CONNECT_WITHOUT_IDENTITY),
        &service,
        &IdentitySource::default(),
    )
    .await;

    assert_eq!(response.status_code, 401);
    assert!(store.is_empty());
}

#[tokio::test]
async fn the_query_string_names_the_user_only_when_the_insecure_setting_is_on() {
    let store = store_with(&[]).await;
    let service = ConnectionService::new(store.clone(), clock());
    let insecure = IdentitySource {
        insecure_query_param: Some("user".into()),
        ..IdentitySource::default()
    };

    let response = handle_connect(
        &websocket_event(CONNECT_WITHOUT_IDENTITY),
        &service,
        &insecure,
    )
    .await;

    assert_eq!(response.status_code, 200);
    let saved = store
        .get(&id(CONNECTION), NOW)
        .await
        .expect("get")
        .expect("saved");
    assert_eq!(saved.user().as_str(), "mallory");
}

#[tokio::test]
async fn an_identity_that_is_not_a_valid_user_id_is_refused() {
    let store = store_with(&[]).await;
    let service = ConnectionService::new(store.clone(), clock());
    let mut event = websocket_event(CONNECT);
    event
        .request_context
        .authorizer
        .fields
        .insert("principalId".into(), serde_json::json!("has space"));

    let response = handle_connect(&event, &service, &IdentitySource::default()).await;

    assert_eq!(response.status_code, 401);
    assert!(store.is_empty());
}

#[tokio::test]
async fn an_event_without_a_connection_id_is_a_400_naming_it() {
    let store = store_with(&[]).await;
    let service = ConnectionService::new(store.clone(), clock());
    let mut event = websocket_event(CONNECT);
    event.request_context.connection_id = None;

    let response = handle_connect(&event, &service, &IdentitySource::default()).await;

    assert_eq!(response.status_code, 400);
    assert!(body(&response).contains("requestContext.connectionId"));
}

#[tokio::test]
async fn disconnect_removes_the_connection_and_its_subscriptions() {
    let store = store_with(&[(CONNECTION, "u-1")]).await;
    let found = store
        .get(&id(CONNECTION), NOW)
        .await
        .expect("get")
        .expect("saved");
    store
        .subscribe(&found, &[topic("room:42")], NOW)
        .await
        .expect("subscribe");
    let service = ConnectionService::new(store.clone(), clock());

    let response = handle_disconnect(&websocket_event(DISCONNECT), &service).await;

    assert_eq!(response.status_code, 200);
    assert!(store.is_empty());
    assert!(held(&store).await.is_empty());
}

#[tokio::test]
async fn disconnect_of_an_unknown_connection_succeeds() {
    let store = store_with(&[]).await;
    let service = ConnectionService::new(store, clock());

    let response = handle_disconnect(&websocket_event(DISCONNECT), &service).await;

    assert_eq!(response.status_code, 200);
}
