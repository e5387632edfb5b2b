//! How `$connect` finds the user: a token, or the authorizer.

use std::time::Duration;

use crate::connect::IdentitySource;
use crate::settings::names::*;
use crate::settings::{Settings, SettingsError};
use crate::token::{DEFAULT_MAX_TOKEN_LIFETIME, TokenRules, TokenVerifier};

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    /// Where `$connect` finds the user: a token when [`JWT_HS256_SECRET`] or [`JWT_JWKS`] is
    /// set (with [`JWT_ISSUER`], [`JWT_AUDIENCE`], [`JWT_TOPICS_CLAIM`],
    /// [`JWT_LEEWAY_SECONDS`]), else the authorizer ([`IDENTITY_KEY`], and
    /// [`INSECURE_IDENTITY_PARAM`] for development).
    pub fn identity(&self) -> Result<IdentitySource, SettingsError> {
        let token = self.token_verifier()?;
        let insecure_query_param = self.get(INSECURE_IDENTITY_PARAM);
        if token.is_some() && insecure_query_param.is_some() {
            return Err(SettingsError::Invalid {
                key: INSECURE_IDENTITY_PARAM,
                value: insecure_query_param.unwrap_or_default(),
                reason: "tokens are required, so users cannot name themselves; unset it".into(),
            });
        }
        let authorizer_grants_key = self
            .get(AUTHORIZER_GRANTS_KEY)
            .map(|key| key.trim().to_owned());
        if let (Some(_), Some(key)) = (&token, &authorizer_grants_key) {
            return Err(SettingsError::Invalid {
                key: AUTHORIZER_GRANTS_KEY,
                value: key.clone(),
                reason: format!(
                    "tokens are required, so the authorizer is not used: grant topics with the token's claim ({JWT_TOPICS_CLAIM}), or unset it"
                ),
            });
        }
        Ok(IdentitySource {
            authorizer_key: self
                .get(IDENTITY_KEY)
                .unwrap_or_else(|| "principalId".to_owned()),
            insecure_query_param,
            token: token.map(std::sync::Arc::new),
            authorizer_grants_key,
            subprotocols: self.subprotocols()?,
        })
    }

    /// The subprotocols `$connect` may answer with ([`SUBPROTOCOLS`]); `None` when unset.
    fn subprotocols(&self) -> Result<Option<Vec<String>>, SettingsError> {
        let Some(value) = self.get(SUBPROTOCOLS) else {
            return Ok(None);
        };
        let protocols: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|protocol| !protocol.is_empty())
            .map(str::to_owned)
            .collect();
        // RFC 6455: a subprotocol is a token of visible ASCII without separators.
        let separators = "()<>@,;:\\\"/[]?={} \t";
        if let Some(bad) = protocols.iter().find(|protocol| {
            !protocol
                .chars()
                .all(|c| c.is_ascii_graphic() && !separators.contains(c))
        }) {
            return Err(SettingsError::Invalid {
                key: SUBPROTOCOLS,
                value: value.clone(),
                reason: format!("`{bad}` is not a subprotocol name (visible ASCII, no separators)"),
            });
        }
        if protocols.is_empty() {
            return Ok(None);
        }
        Ok(Some(protocols))
    }

    fn token_verifier(&self) -> Result<Option<TokenVerifier>, SettingsError> {
        let (secret, jwks) = (self.get(JWT_HS256_SECRET), self.get(JWT_JWKS));
        if secret.is_none() && jwks.is_none() {
            // An issuer or audience without a key would silently leave tokens off.
            for key in [JWT_ISSUER, JWT_AUDIENCE] {
                if let Some(value) = self.get(key) {
                    return Err(SettingsError::Invalid {
                        key,
                        value,
                        reason: format!(
                            "tokens need a key: set {JWT_HS256_SECRET} or {JWT_JWKS} too, or unset it"
                        ),
                    });
                }
            }
            return Ok(None);
        }
        let leeway = self.number(JWT_LEEWAY_SECONDS, 30u64)?;
        if leeway > 300 {
            return Err(SettingsError::Invalid {
                key: JWT_LEEWAY_SECONDS,
                value: leeway.to_string(),
                reason: "must be at most 300".into(),
            });
        }
        let rules = TokenRules {
            issuer: self.required(JWT_ISSUER)?,
            audience: self.required(JWT_AUDIENCE)?,
            topics_claim: if self.is_off(JWT_TOPICS_CLAIM) {
                None
            } else {
                Some(
                    self.get(JWT_TOPICS_CLAIM)
                        .map_or_else(|| "topics".to_owned(), |claim| claim.trim().to_owned()),
                )
            },
            leeway: Duration::from_secs(leeway),
            max_lifetime: Duration::from_secs(self.positive(
                JWT_MAX_LIFETIME_SECONDS,
                DEFAULT_MAX_TOKEN_LIFETIME.as_secs(),
            )?),
        };
        let (key, value, verifier) = match (secret, jwks) {
            (Some(_), Some(_)) => {
                return Err(SettingsError::Invalid {
                    key: JWT_JWKS,
                    value: "(a JWKS document)".into(),
                    reason: format!("set either {JWT_HS256_SECRET} or {JWT_JWKS}, not both"),
                });
            }
            (Some(secret), None) => (
                JWT_HS256_SECRET,
                // A secret is never echoed in an error.
                "(hidden)".to_owned(),
                TokenVerifier::hs256(secret.as_bytes(), rules),
            ),
            (None, Some(jwks)) => (JWT_JWKS, jwks.clone(), TokenVerifier::jwks(&jwks, rules)),
            (None, None) => return Ok(None),
        };
        verifier.map(Some).map_err(|error| SettingsError::Invalid {
            key,
            value,
            reason: error.to_string(),
        })
    }
}
