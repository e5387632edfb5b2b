//! JSON Web Tokens at `$connect`: who the user is, and which topics the token grants.
//!
//! Keys are either one HS256 secret or a JWKS document of RS256 (RSA) and ES256 (EC P-256)
//! public keys; a token must be signed with one of the algorithms its keys are for, so an
//! RSA public key can never be used as an HMAC secret. A token is accepted when its
//! signature is valid and it has `exp` (not past), `iss` and `aud` (equal to the configured
//! ones), `sub` (a valid user ID) and, if present, `nbf` (not in the future), all within the
//! configured leeway. Errors name the check that failed and never quote the token.
//!
//! The rooms: `rules` (limits, [`TokenRules`], the errors), `keys` (reading a secret or a
//! JWKS into keys, and picking the key a token names), `remote` (when a JWKS given by URL is
//! read again).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, decode, decode_header};
use serde_json::{Map, Value};
use wspush_domain::{GrantError, TopicGrants, UserId};
use wspush_ports::RemoteDocument;

mod keys;
mod remote;
mod rules;

use keys::{Key, key_for, keys_of};
use remote::RemoteKeys;

pub use remote::JwksRefresh;
pub use rules::{
    DEFAULT_MAX_TOKEN_LIFETIME, KeyError, MAX_TOKEN_BYTES, MIN_HS256_SECRET_BYTES, TokenError,
    TokenRules,
};

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The user, from `sub`.
    pub user: UserId,
    /// The topics granted, from the topics claim; `None` when grants are not configured.
    pub grants: Option<TopicGrants>,
}

/// Checks tokens against the configured keys, issuer and audience.
pub struct TokenVerifier {
    /// Swapped whole when a remote JWKS is read again.
    keys: RwLock<Arc<Vec<Key>>>,
    rules: TokenRules,
    /// Where the keys are read from again, for a JWKS given by URL.
    remote: Option<RemoteKeys>,
    /// Bumped with every swap of `keys`.
    version: AtomicU64,
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
        let keys = keys_of(document, &rules)?;
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
            .map_err(|error| KeyError::Unreadable(error.with_causes()))?;
        let keys = keys_of(&document, &rules)?;
        let mut verifier = Self::with_keys(keys, rules);
        verifier.remote = Some(RemoteKeys::new(source, refresh));
        Ok(verifier)
    }

    /// Reads the keys again if they are older than the refresh's TTL (see
    /// [`jwks_from`](Self::jwks_from)), unless a read is already running; nothing for keys
    /// given in the settings.
    pub async fn refresh_if_stale(&self) {
        if let Some(remote) = &self.remote
            && remote.is_stale()
        {
            let seen = self.keys_version();
            remote
                .reread(
                    "the keys are older than their TTL",
                    false,
                    || self.keys_version() != seen,
                    |document| self.install(remote, &document),
                )
                .await;
        }
    }

    /// Which keys are held: a number that changes whenever they are read again. Taken before
    /// a verification, it lets [`reread_after`](Self::reread_after) tell keys read meanwhile.
    pub fn keys_version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Reads the keys again after `error`, if it may come from a key the provider added
    /// since (an unknown `kid`, an algorithm no held key is for), and if the keys were not
    /// read within the refresh's minimum interval. `seen` is the
    /// [`keys_version`](Self::keys_version) the failed verification used. Whether the keys
    /// held are newer than those: worth verifying again.
    pub async fn reread_after(&self, error: &TokenError, seen: u64) -> bool {
        let Some(remote) = &self.remote else {
            return false;
        };
        if !matches!(error, TokenError::UnknownKey | TokenError::Algorithm(_)) {
            return false;
        }
        if self.keys_version() != seen {
            return true;
        }
        remote
            .reread(
                "a token names a key that is not held",
                true,
                || self.keys_version() != seen,
                |document| self.install(remote, &document),
            )
            .await
    }

    /// Holds the keys of `document`, if it has usable ones.
    fn install(&self, remote: &RemoteKeys, document: &str) -> bool {
        match keys_of(document, &self.rules) {
            Ok(keys) => {
                tracing::info!(
                    jwks = %remote.location(),
                    keys = keys.len(),
                    "read the JWKS again"
                );
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
                self.version.fetch_add(1, Ordering::AcqRel);
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

    fn with_keys(keys: Vec<Key>, rules: TokenRules) -> Self {
        Self {
            keys: RwLock::new(Arc::new(keys)),
            rules,
            remote: None,
            version: AtomicU64::new(0),
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
