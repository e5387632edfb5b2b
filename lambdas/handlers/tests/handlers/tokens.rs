//! HS256 tokens for the tests: one secret, issuer and audience, and valid claims to vary.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use wspush_handlers::IdentitySource;
use wspush_handlers::token::{DEFAULT_MAX_TOKEN_LIFETIME, TokenRules, TokenVerifier};

pub const SECRET: &[u8] = b"a-test-secret-of-at-least-32-bytes!!";
pub const ISSUER: &str = "https://auth.example.com/";
pub const AUDIENCE: &str = "wspush-test";

/// The issuer and audience above, grants in `topics`, 5 s of leeway.
pub fn rules() -> TokenRules {
    TokenRules {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        topics_claim: Some("topics".into()),
        leeway: Duration::from_secs(5),
        max_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
    }
}

/// Seconds since the epoch (tokens are checked against the system clock).
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// Valid claims for user `u-7`, granting `room:*`; `changes` overrides or (with null) removes.
pub fn claims(changes: Value) -> Value {
    let mut claims = json!({
        "sub": "u-7", "iss": ISSUER, "aud": AUDIENCE,
        "exp": now() + 600, "nbf": now() - 10, "topics": ["room:*"],
    });
    for (key, value) in changes.as_object().expect("object") {
        match value {
            Value::Null => claims.as_object_mut().expect("object").remove(key),
            _ => claims
                .as_object_mut()
                .expect("object")
                .insert(key.clone(), value.clone()),
        };
    }
    claims
}

/// `claims` signed with HS256 and [`SECRET`].
pub fn hs256(claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET),
    )
    .expect("sign")
}

/// An identity source that requires HS256 tokens under [`rules`].
pub fn hs256_identity() -> IdentitySource {
    let verifier = TokenVerifier::hs256(SECRET, rules()).expect("valid secret");
    IdentitySource {
        token: Some(Arc::new(verifier)),
        ..IdentitySource::default()
    }
}
