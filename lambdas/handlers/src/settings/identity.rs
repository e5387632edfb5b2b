//! How `$connect` finds the user: a token, or the authorizer.

use std::sync::Arc;
use std::time::Duration;

use wspush_ports::{RemoteDocument, RemoteError};

use crate::connect::IdentitySource;
use crate::settings::names::*;
use crate::settings::{Settings, SettingsError};
use crate::token::{DEFAULT_MAX_TOKEN_LIFETIME, JwksRefresh, KeyError, TokenRules, TokenVerifier};

/// Token keys, or a token secret, that live outside the settings and are read at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteKeys {
    /// A JWKS at an identity provider's URL ([`JWT_JWKS_URL`]), read again as it rotates.
    JwksUrl {
        /// `https://...` (or `http://` on a loopback address).
        url: String,
        /// When it is read again.
        refresh: JwksRefresh,
    },
    /// The HS256 secret, in Secrets Manager or SSM ([`JWT_HS256_SECRET_ARN`]).
    SecretArn(String),
}

impl RemoteKeys {
    /// The variable it came from, and its value (a URL or an ARN, never a secret).
    fn variable(&self) -> (&'static str, &str) {
        match self {
            RemoteKeys::JwksUrl { url, .. } => (JWT_JWKS_URL, url),
            RemoteKeys::SecretArn(arn) => (JWT_HS256_SECRET_ARN, arn),
        }
    }
}

/// Where `$connect` finds the user, once the keys or secret that live outside the settings
/// are read: the connect function's [`resolve`](Self::resolve) at cold start.
#[derive(Debug)]
pub struct IdentityPlan {
    /// Everything but the remote keys.
    identity: IdentitySource,
    /// The keys still to be read, with the rules their tokens follow.
    remote: Option<(RemoteKeys, TokenRules)>,
}

impl IdentityPlan {
    /// The keys still to be read, if any.
    pub fn remote(&self) -> Option<&RemoteKeys> {
        self.remote.as_ref().map(|(keys, _)| keys)
    }

    /// The identity source, when nothing is left to read; an error naming the variable
    /// otherwise (for edges that cannot read remote keys).
    pub fn ready(self) -> Result<IdentitySource, SettingsError> {
        match self.remote {
            None => Ok(self.identity),
            Some((keys, _)) => {
                let (key, value) = keys.variable();
                Err(SettingsError::Invalid {
                    key,
                    value: value.to_owned(),
                    reason: "is read at cold start by the connect function only".into(),
                })
            }
        }
    }

    /// The identity source, the remote keys or secret read now through the document
    /// `open` makes for them (an HTTP GET, a Secrets Manager or SSM call). A cold-start
    /// error names the variable and what went wrong, never the secret.
    pub async fn resolve(
        self,
        open: impl FnOnce(&RemoteKeys) -> Result<Arc<dyn RemoteDocument>, RemoteError>,
    ) -> Result<IdentitySource, SettingsError> {
        let Some((keys, rules)) = self.remote else {
            return Ok(self.identity);
        };
        let (key, value) = keys.variable();
        let invalid = |reason: String| SettingsError::Invalid {
            key,
            value: value.to_owned(),
            reason,
        };
        let source = open(&keys).map_err(|error| invalid(error.with_causes()))?;
        let verifier = match &keys {
            RemoteKeys::JwksUrl { refresh, .. } => {
                TokenVerifier::jwks_from(source, rules, *refresh).await
            }
            RemoteKeys::SecretArn(_) => {
                let secret = source
                    .fetch()
                    .await
                    .map_err(|error| invalid(error.with_causes()))?;
                TokenVerifier::hs256(secret.trim_end_matches(['\r', '\n']).as_bytes(), rules)
            }
        }
        .map_err(|error: KeyError| invalid(error.to_string()))?;
        Ok(IdentitySource {
            token: Some(Arc::new(verifier)),
            ..self.identity
        })
    }
}

/// Where the token keys come from.
enum TokenKeys {
    /// No tokens: the authorizer names the user.
    None,
    /// Keys in the settings.
    Ready(TokenVerifier),
    /// Keys to read at cold start.
    Remote(RemoteKeys, TokenRules),
}

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    /// Where `$connect` finds the user: a token when [`JWT_HS256_SECRET`] or [`JWT_JWKS`] is
    /// set (with [`JWT_ISSUER`], [`JWT_AUDIENCE`], [`JWT_TOPICS_CLAIM`],
    /// [`JWT_LEEWAY_SECONDS`]), else the authorizer ([`IDENTITY_KEY`], and
    /// [`INSECURE_IDENTITY_PARAM`] for development).
    pub fn identity(&self) -> Result<IdentitySource, SettingsError> {
        self.identity_plan()?.ready()
    }

    /// Where `$connect` finds the user, as [`identity`](Self::identity), also when its
    /// keys are read at cold start ([`JWT_JWKS_URL`], [`JWT_HS256_SECRET_ARN`]).
    pub fn identity_plan(&self) -> Result<IdentityPlan, SettingsError> {
        let (token, remote) = match self.token_keys()? {
            TokenKeys::None => (None, None),
            TokenKeys::Ready(verifier) => (Some(verifier), None),
            TokenKeys::Remote(keys, rules) => (None, Some((keys, rules))),
        };
        let tokens = token.is_some() || remote.is_some();
        let insecure_query_param = self.get(INSECURE_IDENTITY_PARAM);
        if tokens && insecure_query_param.is_some() {
            return Err(SettingsError::Invalid {
                key: INSECURE_IDENTITY_PARAM,
                value: insecure_query_param.unwrap_or_default(),
                reason: "tokens are required, so users cannot name themselves; unset it".into(),
            });
        }
        let authorizer_grants_key = self
            .get(AUTHORIZER_GRANTS_KEY)
            .map(|key| key.trim().to_owned());
        if let (true, Some(key)) = (tokens, &authorizer_grants_key) {
            return Err(SettingsError::Invalid {
                key: AUTHORIZER_GRANTS_KEY,
                value: key.clone(),
                reason: format!(
                    "tokens are required, so the authorizer is not used: grant topics with the token's claim ({JWT_TOPICS_CLAIM}), or unset it"
                ),
            });
        }
        let identity = IdentitySource {
            authorizer_key: self
                .get(IDENTITY_KEY)
                .unwrap_or_else(|| "principalId".to_owned()),
            insecure_query_param,
            token: token.map(Arc::new),
            authorizer_grants_key,
            subprotocols: self.subprotocols()?,
        };
        Ok(IdentityPlan { identity, remote })
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

    fn token_keys(&self) -> Result<TokenKeys, SettingsError> {
        let given: Vec<(&'static str, String)> = [
            JWT_HS256_SECRET,
            JWT_HS256_SECRET_ARN,
            JWT_JWKS,
            JWT_JWKS_URL,
        ]
        .into_iter()
        .filter_map(|key| self.get(key).map(|value| (key, value)))
        .collect();
        let (key, value) = match given.as_slice() {
            [] => {
                // An issuer or audience without a key would silently leave tokens off.
                for key in [JWT_ISSUER, JWT_AUDIENCE] {
                    if let Some(value) = self.get(key) {
                        return Err(SettingsError::Invalid {
                            key,
                            value,
                            reason: format!(
                                "tokens need a key: set {JWT_HS256_SECRET}, {JWT_HS256_SECRET_ARN}, {JWT_JWKS} or {JWT_JWKS_URL} too, or unset it"
                            ),
                        });
                    }
                }
                return Ok(TokenKeys::None);
            }
            [(key, value)] => (*key, value.clone()),
            [(first, _), (second, _), ..] => {
                return Err(SettingsError::Invalid {
                    key: second,
                    value: "(hidden)".into(),
                    reason: format!("set one of {first} and {second}, not both"),
                });
            }
        };
        let rules = self.token_rules()?;
        let invalid = |value: String, reason: String| SettingsError::Invalid { key, value, reason };
        let verifier = match key {
            JWT_HS256_SECRET => TokenVerifier::hs256(value.as_bytes(), rules)
                // A secret is never echoed in an error.
                .map_err(|error| invalid("(hidden)".to_owned(), error.to_string()))?,
            JWT_JWKS => TokenVerifier::jwks(&value, rules)
                .map_err(|error| invalid(value.clone(), error.to_string()))?,
            JWT_JWKS_URL => {
                check_jwks_url(&value).map_err(|reason| invalid(value.clone(), reason))?;
                let defaults = JwksRefresh::default();
                let refresh = JwksRefresh {
                    ttl: Duration::from_secs(
                        self.positive(JWT_JWKS_TTL_SECONDS, defaults.ttl.as_secs())?,
                    ),
                    min_interval: Duration::from_secs(self.positive(
                        JWT_JWKS_MIN_REFETCH_SECONDS,
                        defaults.min_interval.as_secs(),
                    )?),
                };
                return Ok(TokenKeys::Remote(
                    RemoteKeys::JwksUrl {
                        url: value,
                        refresh,
                    },
                    rules,
                ));
            }
            _ => {
                check_secret_arn(&value).map_err(|reason| invalid(value.clone(), reason))?;
                return Ok(TokenKeys::Remote(RemoteKeys::SecretArn(value), rules));
            }
        };
        Ok(TokenKeys::Ready(verifier))
    }

    fn token_rules(&self) -> Result<TokenRules, SettingsError> {
        let leeway = self.number(JWT_LEEWAY_SECONDS, 30u64)?;
        if leeway > 300 {
            return Err(SettingsError::Invalid {
                key: JWT_LEEWAY_SECONDS,
                value: leeway.to_string(),
                reason: "must be at most 300".into(),
            });
        }
        Ok(TokenRules {
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
        })
    }
}

/// A JWKS URL is `https://`, or `http://` on a loopback address (a local server in tests):
/// keys fetched in the clear from elsewhere could be anyone's.
fn check_jwks_url(url: &str) -> Result<(), String> {
    if url.starts_with("https://") {
        return Ok(());
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err("must be an https:// URL".into());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        // `http://127.0.0.1:1@idp.example/` goes to idp.example.
        return Err("must not hold a user name or password (`@`)".into());
    }
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err("must be an https:// URL (http:// only on a loopback address)".into())
    }
}

/// A Secrets Manager secret's or an SSM parameter's ARN.
fn check_secret_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && ((parts[2] == "secretsmanager" && parts[5].starts_with("secret:"))
            || (parts[2] == "ssm" && parts[5].starts_with("parameter/")));
    if ok {
        Ok(())
    } else {
        Err("must be the ARN of a Secrets Manager secret (arn:aws:secretsmanager:...:secret:...) or of an SSM parameter (arn:aws:ssm:...:parameter/...)".into())
    }
}
