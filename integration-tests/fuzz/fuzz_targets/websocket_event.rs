//! WebSocket event translation: any bytes that the Lambda runtime would hand a WebSocket
//! function, read as an API Gateway event, then every translation the handlers make of it:
//! the connection ID, the identity (a token from the query or the subprotocols, verified
//! with HS256; or the authorizer context), the subprotocol to echo, and the route body.
//! Each gives a value or a refusal, never a panic.
#![no_main]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest;
use libfuzzer_sys::fuzz_target;
use wspush_handlers::IdentitySource;
use wspush_handlers::connect::chosen_protocol;
use wspush_handlers::response::connection_id;
use wspush_handlers::subscribe::parse_route_body;
use wspush_handlers::token::{DEFAULT_MAX_TOKEN_LIFETIME, TokenRules, TokenVerifier};

static WITH_TOKENS: LazyLock<IdentitySource> = LazyLock::new(|| {
    let rules = TokenRules {
        issuer: "fuzz".to_owned(),
        audience: "fuzz".to_owned(),
        topics_claim: Some("topics".to_owned()),
        leeway: Duration::from_secs(30),
        max_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
    };
    IdentitySource {
        token: Some(Arc::new(
            TokenVerifier::hs256(b"fuzz-secret-fuzz-secret-fuzz-secret!", rules).expect("key"),
        )),
        ..IdentitySource::default()
    }
});

static WITHOUT_TOKENS: LazyLock<IdentitySource> = LazyLock::new(|| IdentitySource {
    insecure_query_param: Some("user".to_owned()),
    authorizer_grants_key: Some("topics".to_owned()),
    ..IdentitySource::default()
});

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<ApiGatewayWebsocketProxyRequest>(data) else {
        return;
    };
    if let Err(refusal) = connection_id(event.request_context.connection_id.as_deref()) {
        assert_eq!(refusal.status_code, 400);
    }
    for identity in [&*WITH_TOKENS, &*WITHOUT_TOKENS] {
        if let Err(refusal) = identity.identify(&event) {
            assert!(!refusal.to_string().is_empty());
        }
    }
    let allowed = ["wspush".to_owned()];
    for tokens in [true, false] {
        for list in [None, Some(&allowed[..])] {
            if let Some(protocol) = chosen_protocol(&event, tokens, list) {
                assert!(!protocol.is_empty() && !protocol.contains(','));
            }
        }
    }
    if let Err(error) = parse_route_body(event.body.as_deref()) {
        assert!(!error.to_string().is_empty());
    }
});
