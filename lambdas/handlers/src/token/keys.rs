//! The keys a verifier holds: one HS256 secret, or the RS256 and ES256 public keys of a
//! JWKS document, each with the checks a token signed by it must pass, and how a token's
//! header picks one.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::rules::{KeyError, TokenError, TokenRules};

/// One key, with the checks a token signed by it must pass (fixed when it is read).
pub(super) struct Key {
    pub(super) kid: Option<String>,
    pub(super) algorithm: Algorithm,
    pub(super) key: DecodingKey,
    /// The checks a token signed with this key must pass (fixed at cold start).
    pub(super) validation: Validation,
}

impl Key {
    pub(super) fn new(
        kid: Option<String>,
        algorithm: Algorithm,
        key: DecodingKey,
        rules: &TokenRules,
    ) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[&rules.issuer]);
        validation.set_audience(&[&rules.audience]);
        validation.validate_nbf = true;
        validation.leeway = rules.leeway.as_secs();
        Self {
            kid,
            algorithm,
            key,
            validation,
        }
    }
}

/// The RS256 and ES256 signing keys of a JWKS document. Keys of other types or algorithms
/// (an RSA key for RS512, say), and keys marked for encryption, are skipped.
pub(super) fn keys_of(document: &str, rules: &TokenRules) -> Result<Vec<Key>, KeyError> {
    let value: Value =
        serde_json::from_str(document).map_err(|error| KeyError::NotAJwks(error.to_string()))?;
    let Some(entries) = value.get("keys").and_then(Value::as_array) else {
        return Err(KeyError::NotAJwks("no `keys` array".to_owned()));
    };
    let mut keys: Vec<Key> = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let bad = |reason: String| KeyError::BadKey { index, reason };
        let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
            tracing::warn!(index, "skipping a JWKS key of an unsupported type");
            continue;
        };
        let Some(algorithm) = signing_algorithm(&jwk) else {
            tracing::warn!(
                index,
                "skipping a JWKS key that is not an RS256 or ES256 signing key"
            );
            continue;
        };
        let key = DecodingKey::from_jwk(&jwk).map_err(|error| bad(error.to_string()))?;
        let kid = jwk.common.key_id.clone();
        let clash = match &kid {
            Some(kid) => keys.iter().any(|k| k.kid.as_deref() == Some(kid.as_str())),
            None => !keys.is_empty(),
        } || keys.iter().any(|k| k.kid.is_none());
        if clash {
            return Err(KeyError::AmbiguousKey {
                index,
                reason: "keys must have distinct `kid`s (only a lone key may have none)",
            });
        }
        keys.push(Key::new(kid, algorithm, key, rules));
    }
    if keys.is_empty() {
        return Err(KeyError::NoUsableKey);
    }
    Ok(keys)
}

/// The one key of `algorithm` that a token with `kid` may be checked with.
pub(super) fn key_for<'k>(
    keys: &'k [Key],
    algorithm: Algorithm,
    kid: Option<&str>,
) -> Result<&'k Key, TokenError> {
    let of_algorithm: Vec<&Key> = keys
        .iter()
        .filter(|key| key.algorithm == algorithm)
        .collect();
    if of_algorithm.is_empty() {
        return Err(TokenError::Algorithm(format!("{algorithm:?}")));
    }
    let mut candidates = of_algorithm
        .into_iter()
        .filter(|key| kid.is_none() || key.kid.is_none() || key.kid.as_deref() == kid);
    match (candidates.next(), candidates.next()) {
        (Some(key), None) => Ok(key),
        _ => Err(TokenError::UnknownKey),
    }
}

/// The algorithm a JWK verifies: RS256 for RSA, ES256 for EC P-256; `None` for a key this
/// verifier does not use (another type, curve or declared `alg`, or an encryption key).
fn signing_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let (algorithm, declared_ok) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (
            Algorithm::RS256,
            matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256)),
        ),
        AlgorithmParameters::EllipticCurve(params) if params.curve == EllipticCurve::P256 => (
            Algorithm::ES256,
            matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::ES256)),
        ),
        _ => return None,
    };
    declared_ok.then_some(algorithm)
}
