//! `$connect` with tokens: HS256 and JWKS (RS256, ES256) keys, the query parameter and the
//! `Sec-WebSocket-Protocol` header, and every way a token is refused.

use std::sync::Arc;

use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::http::HeaderValue;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use wspush_adapters::MemoryStore;
use wspush_domain::{Connection, TopicGrants};
use wspush_handlers::connect::{PROTOCOL_HEADER, TOKEN_QUERY_PARAM};
use wspush_handlers::token::{KeyError, TokenError, TokenRules, TokenVerifier};
use wspush_handlers::{IdentitySource, Refusal, handle_connect};
use wspush_ports::{ConnectionService, ConnectionStore};

use crate::helpers::*;
use crate::tokens::*;

const CONNECT_WITHOUT_IDENTITY: &str = include_str!("../fixtures/connect-without-identity.json");
const CONNECT: &str = include_str!("../fixtures/connect.json");
const RSA_DER: &[u8] = include_bytes!("../fixtures/keys/rsa-test-only.der");
const EC_DER: &[u8] = include_bytes!("../fixtures/keys/ec-p256-test-only.der");
fn signed(algorithm: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    let key = match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_der(RSA_DER),
        _ => EncodingKey::from_ec_der(EC_DER),
    };
    encode(&header, claims, &key).expect("sign")
}

/// A JWKS document of the test RSA key (`kid` rsa-1) and EC key (`kid` ec-1).
fn jwks() -> String {
    let mut rsa = Jwk::from_encoding_key(&EncodingKey::from_rsa_der(RSA_DER), Algorithm::RS256)
        .expect("rsa jwk");
    rsa.common.key_id = Some("rsa-1".into());
    let mut ec = Jwk::from_encoding_key(&EncodingKey::from_ec_der(EC_DER), Algorithm::ES256)
        .expect("ec jwk");
    ec.common.key_id = Some("ec-1".into());
    serde_json::to_string(&JwkSet {
        keys: vec![rsa, ec],
    })
    .expect("jwks")
}

fn jwks_identity() -> IdentitySource {
    let verifier = TokenVerifier::jwks(&jwks(), rules()).expect("valid jwks");
    IdentitySource {
        token: Some(Arc::new(verifier)),
        ..IdentitySource::default()
    }
}

/// The fixture `$connect` event (which carries no identity) with `token` in the query.
fn with_query_token(token: &str) -> ApiGatewayWebsocketProxyRequest {
    let mut event = websocket_event(CONNECT_WITHOUT_IDENTITY);
    let query = format!("{TOKEN_QUERY_PARAM}={token}");
    event.query_string_parameters = query.parse().expect("query");
    event.multi_value_query_string_parameters = query.parse().expect("query");
    event
}

/// The fixture `$connect` event with `Sec-WebSocket-Protocol: <protocols>`.
fn with_protocols(protocols: &str) -> ApiGatewayWebsocketProxyRequest {
    let mut event = websocket_event(CONNECT_WITHOUT_IDENTITY);
    let value = HeaderValue::from_str(protocols).expect("header");
    event.headers.insert(PROTOCOL_HEADER, value.clone());
    event.multi_value_headers.insert(PROTOCOL_HEADER, value);
    event
}

async fn connect(
    event: &ApiGatewayWebsocketProxyRequest,
    identity: &IdentitySource,
) -> (
    ApiGatewayProxyResponse,
    Option<Connection>,
    Arc<MemoryStore>,
) {
    let store = store_with(&[]).await;
    let service = ConnectionService::new(store.clone(), clock());
    let response = handle_connect(event, &service, identity).await;
    let saved = store.get(&id(CONNECTION), NOW).await.expect("get");
    (response, saved, store)
}

fn protocol(response: &ApiGatewayProxyResponse) -> Option<&str> {
    response
        .headers
        .get(PROTOCOL_HEADER)
        .map(|value| value.to_str().expect("ascii"))
}

#[tokio::test]
async fn an_hs256_token_in_the_query_names_the_user_and_its_grants() {
    let token = hs256(&claims(json!({"topics": ["room:*", "ticker:AAPL"]})));

    let (response, saved, _) = connect(&with_query_token(&token), &hs256_identity()).await;

    assert_eq!(response.status_code, 200);
    let saved = saved.expect("saved");
    assert_eq!(saved.user().as_str(), "u-7");
    assert_eq!(
        saved.grants(),
        Some(&TopicGrants::parse(["room:*", "ticker:AAPL"]).expect("valid"))
    );
    assert_eq!(protocol(&response), None);
}

#[tokio::test]
async fn a_token_among_the_subprotocols_is_used_and_the_other_protocol_echoed() {
    let token = hs256(&claims(json!({})));

    let (response, saved, _) = connect(
        &with_protocols(&format!("wspush, {token}")),
        &hs256_identity(),
    )
    .await;

    assert_eq!(response.status_code, 200);
    assert_eq!(saved.expect("saved").user().as_str(), "u-7");
    assert_eq!(protocol(&response), Some("wspush"));
}

#[tokio::test]
async fn a_token_offered_as_the_only_subprotocol_is_echoed_as_browsers_require() {
    let token = hs256(&claims(json!({})));

    let (response, _, _) = connect(&with_protocols(&token), &hs256_identity()).await;

    assert_eq!(response.status_code, 200);
    assert_eq!(protocol(&response), Some(token.as_str()));
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify_against_the_jwks_keys_named_by_kid() {
    for (algorithm, kid) in [(Algorithm::RS256, "rsa-1"), (Algorithm::ES256, "ec-1")] {
        let token = signed(algorithm, Some(kid), &claims(json!({"sub": kid})));

        let (response, saved, _) = connect(&with_query_token(&token), &jwks_identity()).await;

        assert_eq!(response.status_code, 200, "{algorithm:?}");
        assert_eq!(saved.expect("saved").user().as_str(), kid);
    }
}

#[tokio::test]
async fn without_a_topics_claim_a_token_grants_nothing_but_with_grants_off_topics_are_free() {
    let token = hs256(&claims(json!({"topics": null})));
    let off = IdentitySource {
        token: Some(Arc::new(
            TokenVerifier::hs256(
                SECRET,
                TokenRules {
                    topics_claim: None,
                    ..rules()
                },
            )
            .expect("valid"),
        )),
        ..IdentitySource::default()
    };

    let (_, granted_nothing, _) = connect(&with_query_token(&token), &hs256_identity()).await;
    let (_, not_limited, _) = connect(&with_query_token(&token), &off).await;

    assert_eq!(
        granted_nothing.expect("saved").grants(),
        Some(&TopicGrants::default())
    );
    assert_eq!(not_limited.expect("saved").grants(), None);
}

/// Every refusal: 401, nothing saved, and the reason the verifier gives.
#[tokio::test]
async fn every_invalid_token_is_refused_with_401_and_nothing_saved() {
    let rsa_public_as_secret = {
        // The algorithm-confusion attack: HS256 "signed" with the RSA public key's bytes.
        let jwk = Jwk::from_encoding_key(&EncodingKey::from_rsa_der(RSA_DER), Algorithm::RS256)
            .expect("jwk");
        let public = serde_json::to_vec(&jwk).expect("json");
        encode(
            &Header::new(Algorithm::HS256),
            &claims(json!({})),
            &EncodingKey::from_secret(&public),
        )
        .expect("sign")
    };
    let unsigned = {
        let part = |value: Value| {
            use std::fmt::Write;
            let text = value.to_string();
            // base64url without padding, written out so the test needs no base64 crate.
            const ALPHABET: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let bytes = text.as_bytes();
            let mut out = String::new();
            for chunk in bytes.chunks(3) {
                let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b))
                    << (8 * (3 - chunk.len()));
                for i in 0..=chunk.len() {
                    let index = (n >> (18 - 6 * i)) & 63;
                    let _ = write!(out, "{}", ALPHABET[index as usize] as char);
                }
            }
            out
        };
        format!(
            "{}.{}.",
            part(json!({"alg": "none", "typ": "JWT"})),
            part(claims(json!({})))
        )
    };
    let other_secret = encode(
        &Header::new(Algorithm::HS256),
        &claims(json!({})),
        &EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes!"),
    )
    .expect("sign");

    // One instant for the lifetime cases, so that their expected figures are exact.
    let issued = now();
    let hs256_cases: Vec<(&str, String, Refusal)> = vec![
        (
            "expired",
            hs256(&claims(json!({"exp": now() - 60}))),
            Refusal::Token(TokenError::Expired),
        ),
        (
            "not yet valid",
            hs256(&claims(json!({"nbf": now() + 600}))),
            Refusal::Token(TokenError::NotYetValid),
        ),
        (
            "wrong issuer",
            hs256(&claims(json!({"iss": "https://evil.example/"}))),
            Refusal::Token(TokenError::WrongIssuer),
        ),
        (
            "wrong audience",
            hs256(&claims(json!({"aud": "someone-else"}))),
            Refusal::Token(TokenError::WrongAudience),
        ),
        (
            "no exp",
            hs256(&claims(json!({"exp": null}))),
            Refusal::Token(TokenError::MissingClaim("exp".into())),
        ),
        (
            "no sub",
            hs256(&claims(json!({"sub": null}))),
            Refusal::Token(TokenError::MissingClaim("sub".into())),
        ),
        (
            "no iss",
            hs256(&claims(json!({"iss": null}))),
            Refusal::Token(TokenError::MissingClaim("iss".into())),
        ),
        (
            "no aud",
            hs256(&claims(json!({"aud": null}))),
            Refusal::Token(TokenError::MissingClaim("aud".into())),
        ),
        (
            "iss as a list holding the issuer",
            hs256(&claims(json!({"iss": [ISSUER, "https://evil.example/"]}))),
            Refusal::Token(TokenError::BadClaim("iss".into())),
        ),
        (
            "numeric sub",
            hs256(&claims(json!({"sub": 42}))),
            Refusal::Token(TokenError::MissingClaim("sub".into())),
        ),
        (
            "a crit header (RFC 7515 4.1.11: must be refused when not understood)",
            encode(
                &Header {
                    crit: Some(vec!["exp".to_owned()]),
                    ..Header::new(Algorithm::HS256)
                },
                &claims(json!({})),
                &EncodingKey::from_secret(SECRET),
            )
            .expect("sign"),
            Refusal::Token(TokenError::Critical),
        ),
        (
            "an exp of 2^64 - 1 (a token that never expires)",
            hs256(&claims(
                json!({"exp": u64::MAX, "nbf": null, "iat": issued}),
            )),
            Refusal::Token(TokenError::TooLongLived {
                lifetime_secs: u64::MAX - issued,
                max_secs: 86_400,
            }),
        ),
        (
            "valid for 24 hours and a minute from its iat",
            hs256(&claims(
                json!({"iat": issued, "nbf": null, "exp": issued + 86_400 + 60}),
            )),
            Refusal::Token(TokenError::TooLongLived {
                lifetime_secs: 86_460,
                max_secs: 86_400,
            }),
        ),
        (
            "signed with another secret",
            other_secret,
            Refusal::Token(TokenError::BadSignature),
        ),
        ("alg none", unsigned, Refusal::Token(TokenError::Malformed)),
        (
            "garbage",
            "not.a.jwt".into(),
            Refusal::Token(TokenError::Malformed),
        ),
        (
            "too long",
            format!("{}.x.y", "a".repeat(9000)),
            Refusal::Token(TokenError::TooLong { len: 9004 }),
        ),
    ];
    for (case, token, expected) in hs256_cases {
        let identity = hs256_identity();
        let event = with_query_token(&token);
        assert_eq!(identity.identify(&event), Err(expected), "{case}");
        let (response, saved, store) = connect(&event, &identity).await;
        assert_eq!(response.status_code, 401, "{case}");
        assert_eq!(saved, None, "{case}");
        assert!(store.is_empty(), "{case}");
    }

    let jwks_cases: Vec<(&str, String, Refusal)> = vec![
        (
            "HS256 with the RSA public key as the secret",
            rsa_public_as_secret,
            Refusal::Token(TokenError::Algorithm("HS256".into())),
        ),
        (
            "unknown kid",
            signed(Algorithm::RS256, Some("rsa-9"), &claims(json!({}))),
            Refusal::Token(TokenError::UnknownKey),
        ),
        (
            "RS256 signature under the EC key's kid",
            signed(Algorithm::RS256, Some("ec-1"), &claims(json!({}))),
            Refusal::Token(TokenError::UnknownKey),
        ),
    ];
    for (case, token, expected) in jwks_cases {
        let event = with_query_token(&token);
        assert_eq!(jwks_identity().identify(&event), Err(expected), "{case}");
        let (response, saved, _) = connect(&event, &jwks_identity()).await;
        assert_eq!((response.status_code, saved), (401, None), "{case}");
    }
}

#[tokio::test]
async fn a_sub_or_grants_that_break_the_id_rules_are_refused() {
    for (case, changes) in [
        ("control character in sub", json!({"sub": "u\u{0}7"})),
        ("grants not an array", json!({"topics": "room:*"})),
        ("a grant not a string", json!({"topics": ["room:1", 7]})),
        ("misplaced wildcard", json!({"topics": ["ro*m"]})),
    ] {
        let event = with_query_token(&hs256(&claims(changes)));

        let refusal = hs256_identity().identify(&event).expect_err(case);
        let (response, saved, _) = connect(&event, &hs256_identity()).await;

        assert!(
            matches!(
                refusal,
                Refusal::Token(TokenError::BadSubject(_) | TokenError::BadGrants { .. })
            ),
            "{case}: {refusal}"
        );
        assert_eq!((response.status_code, saved), (401, None), "{case}");
    }
}

#[tokio::test]
async fn no_token_or_two_different_tokens_are_refused_and_the_authorizer_is_ignored() {
    let first = hs256(&claims(json!({})));
    let second = hs256(&claims(json!({"sub": "u-8"})));
    let mut both = with_protocols(&format!("wspush, {first}"));
    let query = format!("{TOKEN_QUERY_PARAM}={second}");
    both.query_string_parameters = query.parse().expect("query");

    // connect.json carries an authorizer principal, which counts for nothing with tokens.
    let (response, saved, _) = connect(&websocket_event(CONNECT), &hs256_identity()).await;

    assert_eq!((response.status_code, saved), (401, None));
    assert_eq!(
        hs256_identity().identify(&websocket_event(CONNECT)),
        Err(Refusal::NoToken)
    );
    assert_eq!(
        hs256_identity().identify(&both),
        Err(Refusal::SeveralTokens)
    );
}

#[tokio::test]
async fn without_tokens_an_offered_subprotocol_is_still_echoed() {
    let mut event = with_protocols("chat.v2, chat.v1");
    event
        .request_context
        .authorizer
        .fields
        .insert("principalId".into(), json!("u-1"));

    let (response, _, _) = connect(&event, &IdentitySource::default()).await;

    assert_eq!(response.status_code, 200);
    assert_eq!(protocol(&response), Some("chat.v2"));
}

#[test]
fn a_jwks_without_usable_keys_or_with_clashing_kids_is_refused_at_cold_start() {
    let no_keys = TokenVerifier::jwks(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#, rules());
    let document: Value = serde_json::from_str(&jwks()).expect("json");
    let rsa = document["keys"][0].clone();
    let twice = json!({"keys": [rsa, rsa]}).to_string();
    let mut wrong_alg = document["keys"][0].clone();
    wrong_alg["alg"] = json!("ES256");

    let mut rs512 = document["keys"][0].clone();
    rs512["alg"] = json!("RS512");
    rs512["kid"] = json!("rsa-512");
    let with_rs512 = json!({"keys": [document["keys"][1].clone(), rs512]}).to_string();

    assert_eq!(no_keys.err(), Some(KeyError::NoUsableKey));
    assert!(matches!(
        TokenVerifier::jwks(&twice, rules()),
        Err(KeyError::AmbiguousKey { index: 1, .. })
    ));
    // A key for another algorithm is skipped, not fatal: providers publish several.
    assert_eq!(
        TokenVerifier::jwks(&json!({"keys": [wrong_alg]}).to_string(), rules()).err(),
        Some(KeyError::NoUsableKey)
    );
    assert!(TokenVerifier::jwks(&with_rs512, rules()).is_ok());
    assert!(TokenVerifier::jwks("[]", rules()).is_err());
    assert!(TokenVerifier::hs256(b"short", rules()).is_err());
}

#[tokio::test]
async fn a_dotted_subprotocol_name_is_a_protocol_not_a_token() {
    let token = hs256(&claims(json!({})));
    let mut event = with_protocols("wamp.2.json, v1.chat.json");
    let query = format!("{TOKEN_QUERY_PARAM}={token}");
    event.query_string_parameters = query.parse().expect("query");

    let (with_tokens, saved, _) = connect(&event, &hs256_identity()).await;
    event
        .request_context
        .authorizer
        .fields
        .insert("principalId".into(), json!("u-1"));
    let (without_tokens, _, _) = connect(&event, &IdentitySource::default()).await;

    assert_eq!(with_tokens.status_code, 200);
    assert_eq!(saved.expect("saved").user().as_str(), "u-7");
    assert_eq!(protocol(&with_tokens), Some("wamp.2.json"));
    assert_eq!(protocol(&without_tokens), Some("wamp.2.json"));
}

#[tokio::test]
async fn the_key_is_chosen_by_algorithm_when_the_token_names_no_kid() {
    // RS256 without a kid: the JWKS has one RS256 key, so it is the one.
    let rs256 = signed(Algorithm::RS256, None, &claims(json!({"sub": "no-kid"})));
    // A kid on an HS256 token: the one secret has no kid to compare with.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("anything".into());
    let hs256_with_kid = encode(
        &header,
        &claims(json!({})),
        &EncodingKey::from_secret(SECRET),
    )
    .expect("sign");

    let (rs, saved, _) = connect(&with_query_token(&rs256), &jwks_identity()).await;
    let (hs, _, _) = connect(&with_query_token(&hs256_with_kid), &hs256_identity()).await;

    assert_eq!(rs.status_code, 200);
    assert_eq!(saved.expect("saved").user().as_str(), "no-kid");
    assert_eq!(hs.status_code, 200);
}

#[tokio::test]
async fn a_token_valid_for_exactly_the_maximum_lifetime_is_accepted() {
    let issued = now();
    let token = hs256(&claims(
        json!({"iat": issued, "nbf": issued - 10, "exp": issued + 86_390}),
    ));
    let (response, saved, _) = connect(&with_query_token(&token), &hs256_identity()).await;
    assert_eq!(response.status_code, 200);
    assert!(saved.is_some());
}

#[tokio::test]
async fn a_fractional_iat_is_a_numeric_date_and_is_accepted() {
    let issued = now();
    let token = hs256(&claims(
        json!({"iat": issued as f64 + 0.5, "nbf": null, "exp": issued + 600}),
    ));
    let (response, saved, _) = connect(&with_query_token(&token), &hs256_identity()).await;
    assert_eq!(response.status_code, 200);
    assert!(saved.is_some());
}
