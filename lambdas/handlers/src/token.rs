//! JSON Web Tokens at `$connect`: who the user is, and which topics the token grants.
//!
//! Keys are either one HS256 secret or a JWKS document of RS256 (RSA) and ES256 (EC P-256)
//! public keys; a token must be signed with one of the algorithms its keys are for, so an
//! RSA public key can never be used as an HMAC secret. A token is accepted when its
//! signature is valid and it has `exp` (not past), `iss` and `aud` (equal to the configured
//! ones), `sub` (a valid user ID) and, if present, `nbf` (not in the future), all within the
//! configured leeway. Errors name the check that failed and never quote the token.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Map, Value};
use wspush_domain::{GrantError, IdError, TopicGrants, UserId};
use wspush_ports::RemoteDocument;

use crate::remote_keys::{JwksRefresh, RemoteKeys};

/// The shortest HS256 secret accepted: RFC 7518 asks for a key as long as the hash (256 bits).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// The longest token read; longer ones are refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The longest a token may be valid for by default, from its `nbf` or `iat` (or, with
/// neither, from the moment it is checked) to its `exp`: 24 hours.
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Why the token configuration cannot be used (a cold-start error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The HS256 secret is too short to be safe.
    #[error("the HS256 secret is {len} bytes; at least {MIN_HS256_SECRET_BYTES} are required")]
    ShortSecret {
        /// Its length.
        len: usize,
    },
    /// The JWKS document is not a JSON object with a `keys` array.
    #[error("the JWKS document is not a JSON object with a `keys` array: {0}")]
    NotAJwks(String),
    /// One key of the JWKS cannot be read.
    #[error("JWKS key {index}: {reason}")]
    BadKey {
        /// Its position in `keys`.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// No key of the JWKS is an RS256 or ES256 signing key.
    #[error("the JWKS document has no RS256 (RSA) or ES256 (EC P-256) signing key")]
    NoUsableKey,
    /// Two keys share a `kid`, or several keys have none.
    #[error("JWKS key {index}: {reason}")]
    AmbiguousKey {
        /// Its position in `keys`.
        index: usize,
        /// Which ambiguity.
        reason: &'static str,
    },
    /// The JWKS or the secret could not be read from where it lives.
    #[error("{0}")]
    Unreadable(String),
}

/// Why a token was refused (the socket gets 401). Never holds the token itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("the token is {len} bytes; at most {MAX_TOKEN_BYTES} are read")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// Not three base64url parts, or its header is not valid JSON.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// The header lists critical extensions (`crit`): RFC 7515 4.1.11 says a token whose
    /// `crit` names an extension the recipient does not understand must be refused, and this
    /// verifier understands none.
    #[error("the token's header lists critical extensions (`crit`), which are not supported")]
    Critical,
    /// `exp` lies further from `nbf` or `iat` (or from now, with neither) than the configured
    /// maximum lifetime: a token that never expires is a credential that cannot be revoked.
    #[error("the token is valid for {lifetime_secs} s, more than the {max_secs} s allowed")]
    TooLongLived {
        /// From `nbf` or `iat` (the earlier) to `exp`, in seconds.
        lifetime_secs: u64,
        /// The configured maximum, in seconds.
        max_secs: u64,
    },
    /// Signed with an algorithm the configured keys are not for.
    #[error("the token's algorithm {0} is not accepted")]
    Algorithm(String),
    /// Its `kid` names no configured key, or it has no `kid` and several keys could apply.
    #[error("no configured key matches the token's `kid`")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `exp` is in the past.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet (`nbf`)")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("the token's issuer (`iss`) is not the configured one")]
    WrongIssuer,
    /// `aud` does not include the configured audience.
    #[error("the token's audience (`aud`) does not include the configured one")]
    WrongAudience,
    /// A claim that must be present is missing.
    #[error("the token has no `{0}` claim")]
    MissingClaim(String),
    /// A claim has the wrong type.
    #[error("the token's `{0}` claim has the wrong type")]
    BadClaim(String),
    /// `sub` is not a valid user ID.
    #[error("the token's `sub` is not a valid user ID: {0}")]
    BadSubject(IdError),
    /// The topics claim is not an array of valid grants.
    #[error("the token's `{claim}` claim: {reason}")]
    BadGrants {
        /// The claim's name.
        claim: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(error: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind;
        match error.into_kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
            ErrorKind::InvalidAudience => TokenError::WrongAudience,
            ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim),
            ErrorKind::InvalidClaimFormat(claim) => TokenError::BadClaim(claim),
            ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
                TokenError::Algorithm("(mismatched with its key)".to_owned())
            }
            // Bad base64, JSON or UTF-8 in the token, or key material that does not parse.
            _ => TokenError::Malformed,
        }
    }
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The user, from `sub`.
    pub user: UserId,
    /// The topics granted, from the topics claim; `None` when grants are not configured.
    pub grants: Option<TopicGrants>,
}

struct Key {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
    /// The checks a token signed with this key must pass (fixed at cold start).
    validation: Validation,
}

impl Key {
    fn new(
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

/// Checks tokens against the configured keys, issuer and audience.
pub struct TokenVerifier {
    /// Swapped whole when a remote JWKS is read again.
    keys: RwLock<Arc<Vec<Key>>>,
    rules: TokenRules,
    /// Where the keys are read from again, for a JWKS given by URL.
    remote: Option<RemoteKeys>,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key material stays out of debug output.
        let algorithms: Vec<String> = self
            .current_keys()
            .iter()
            .map(|key| format!("{:?}", key.algorithm))
            .collect();
        f.debug_struct("TokenVerifier")
            .field("algorithms", &algorithms)
            .field("jwks_url", &self.remote.as_ref().map(RemoteKeys::location))
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// What every verifier needs besides its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRules {
    /// The `iss` a token must have.
    pub issuer: String,
    /// The audience a token's `aud` must include.
    pub audience: String,
    /// The claim that lists the topics a token grants; `None` to leave topics to the
    /// subscription policy alone.
    pub topics_claim: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// The longest a token may be valid for (see [`DEFAULT_MAX_TOKEN_LIFETIME`]).
    pub max_lifetime: Duration,
}

impl TokenVerifier {
    /// Tokens signed with HS256 and this shared secret.
    pub fn hs256(secret: &[u8], rules: TokenRules) -> Result<Self, KeyError> {
        if secret.len() < MIN_HS256_SECRET_BYTES {
            return Err(KeyError::ShortSecret { len: secret.len() });
        }
        let key = Key::new(
            None,
            Algorithm::HS256,
            DecodingKey::from_secret(secret),
            &rules,
        );
        Ok(Self::with_keys(vec![key], rules))
    }

    /// Tokens signed with RS256 or ES256 by one of the public keys of a JWKS document.
    /// Keys of other types or algorithms (an RSA key for RS512, say), and keys marked for
    /// encryption, are skipped.
    pub fn jwks(document: &str, rules: TokenRules) -> Result<Self, KeyError> {
        let keys = Self::keys_of(document, &rules)?;
        Ok(Self::with_keys(keys, rules))
    }

    /// Tokens signed by a key of the JWKS at `source` (an identity provider's URL), read now
    /// (a cold-start error if it cannot be) and read again, at most once per
    /// `refresh.min_interval`, when it is older than `refresh.ttl` or a token names a key it
    /// does not hold: keys that the provider rotates are picked up without a redeploy.
    pub async fn jwks_from(
        source: Arc<dyn RemoteDocument>,
        rules: TokenRules,
        refresh: JwksRefresh,
    ) -> Result<Self, KeyError> {
        let document = source
            .fetch()
            .await
            .map_err(|error| KeyError::Unreadable(error.to_string()))?;
        let keys = Self::keys_of(&document, &rules)?;
        let mut verifier = Self::with_keys(keys, rules);
        verifier.remote = Some(RemoteKeys::new(source, refresh));
        Ok(verifier)
    }

    /// Reads the keys again if they are older than the refresh's TTL (see
    /// [`jwks_from`](Self::jwks_from)); nothing for keys given in the settings.
    pub async fn refresh_if_stale(&self) {
        if let Some(remote) = &self.remote
            && remote.is_stale()
        {
            self.reread(remote, "the keys are older than their TTL")
                .await;
        }
    }

    /// Reads the keys again after `error`, if it may come from a key the provider added
    /// since (an unknown `kid`, an algorithm no held key is for), and if the keys were not
    /// read within the refresh's minimum interval. Whether new keys were read.
    pub async fn reread_after(&self, error: &TokenError) -> bool {
        let Some(remote) = &self.remote else {
            return false;
        };
        if !matches!(error, TokenError::UnknownKey | TokenError::Algorithm(_)) {
            return false;
        }
        self.reread(remote, "a token names a key that is not held")
            .await
    }

    async fn reread(&self, remote: &RemoteKeys, why: &str) -> bool {
        let Some(document) = remote.fetch_if_due(why).await else {
            return false;
        };
        match Self::keys_of(&document, &self.rules) {
            Ok(keys) => {
                tracing::info!(
                    jwks = %remote.location(),
                    keys = keys.len(),
                    "read the JWKS again"
                );
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
                true
            }
            Err(error) => {
                tracing::warn!(jwks = %remote.location(), %error, "the JWKS read again is unusable; keeping the keys held");
                false
            }
        }
    }

    fn current_keys(&self) -> Arc<Vec<Key>> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn keys_of(document: &str, rules: &TokenRules) -> Result<Vec<Key>, KeyError> {
        let value: Value = serde_json::from_str(document)
            .map_err(|error| KeyError::NotAJwks(error.to_string()))?;
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

    fn with_keys(keys: Vec<Key>, rules: TokenRules) -> Self {
        Self {
            keys: RwLock::new(Arc::new(keys)),
            rules,
            remote: None,
        }
    }

    /// The claim tokens grant topics in, if grants are configured.
    pub fn topics_claim(&self) -> Option<&str> {
        self.rules.topics_claim.as_deref()
    }

    /// Verifies `token` and reads its user and grants.
    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong { len: token.len() });
        }
        let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.crit.is_some() {
            return Err(TokenError::Critical);
        }
        let keys = self.current_keys();
        let key = key_for(&keys, header.alg, header.kid.as_deref())?;
        let claims = decode::<Map<String, Value>>(token, &key.key, &key.validation)?.claims;

        // jsonwebtoken also accepts an array `iss` with one matching element; the issuer
        // must be exactly the configured one.
        if !matches!(claims.get("iss"), Some(Value::String(_))) {
            return Err(TokenError::BadClaim("iss".to_owned()));
        }
        self.check_lifetime(&claims)?;
        let user = match claims.get("sub") {
            Some(Value::String(sub)) => {
                UserId::parse(sub.as_str()).map_err(TokenError::BadSubject)?
            }
            _ => return Err(TokenError::BadClaim("sub".to_owned())),
        };
        let grants = self
            .rules
            .topics_claim
            .as_deref()
            .map(|claim| grants_of(claim, claims.get(claim)))
            .transpose()?;
        Ok(Verified { user, grants })
    }

    /// `exp` at most `max_lifetime` after the earlier of `nbf` and `iat`, or after now when
    /// the token has neither. (`exp` is a number here: the signature check required it.)
    fn check_lifetime(&self, claims: &Map<String, Value>) -> Result<(), TokenError> {
        // A NumericDate may have a fraction (RFC 7519 2); whole seconds are enough here.
        let seconds = |name: &str| match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_u64()
                .or_else(|| value.as_f64().filter(|at| *at >= 0.0).map(|at| at as u64))
                .map(Some)
                .ok_or_else(|| TokenError::BadClaim(name.to_owned())),
        };
        let exp = seconds("exp")?.ok_or_else(|| TokenError::MissingClaim("exp".to_owned()))?;
        let from = match (seconds("nbf")?, seconds("iat")?) {
            (Some(nbf), Some(iat)) => nbf.min(iat),
            (Some(at), None) | (None, Some(at)) => at,
            (None, None) => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_secs()),
        };
        let lifetime_secs = exp.saturating_sub(from);
        let max_secs = self.rules.max_lifetime.as_secs();
        if lifetime_secs > max_secs {
            return Err(TokenError::TooLongLived {
                lifetime_secs,
                max_secs,
            });
        }
        Ok(())
    }
}

/// The one key of `algorithm` that a token with `kid` may be checked with.
fn key_for<'k>(
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

/// The grants in the topics claim: absent grants nothing; otherwise an array of grants.
fn grants_of(claim: &str, value: Option<&Value>) -> Result<TopicGrants, TokenError> {
    let bad = |reason: String| TokenError::BadGrants {
        claim: claim.to_owned(),
        reason,
    };
    let list = match value {
        None | Some(Value::Null) => return Ok(TopicGrants::default()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(bad("must be an array of topics".to_owned())),
    };
    let strings = list
        .iter()
        .enumerate()
        .map(|(index, grant)| {
            grant
                .as_str()
                .ok_or_else(|| bad(format!("grant {index} is not a string")))
        })
        .collect::<Result<Vec<&str>, _>>()?;
    TopicGrants::parse(strings).map_err(|error: GrantError| bad(error.to_string()))
}
