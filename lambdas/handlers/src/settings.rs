//! Typed settings, read once at cold start from the environment.
//!
//! Every function reads its settings through a lookup (`std::env::var` in production, a map
//! in tests); a missing or malformed variable fails the cold start with its name.

use std::str::FromStr;
use std::time::Duration;

use wspush_domain::limits::{DEFAULT_MAX_POSTS_PER_SECOND, MAX_GENERATION};
use wspush_domain::{ContinuationLimits, SubscriptionPolicy};
use wspush_ports::{ContinuationConfig, LedgerConfig, PushConfig, ScatterConfig};

use crate::connect::IdentitySource;
use crate::token::{TokenRules, TokenVerifier};

/// The DynamoDB table.
pub const TABLE: &str = "WSPUSH_TABLE";
/// The key of the authorizer context that holds the user's ID (default `principalId`).
pub const IDENTITY_KEY: &str = "WSPUSH_IDENTITY_KEY";
/// INSECURE, for development only: the query-string parameter a client may name its user
/// in when the authorizer gives none. Unset in any deployment.
pub const INSECURE_IDENTITY_PARAM: &str = "WSPUSH_INSECURE_DEV_IDENTITY_PARAM";
/// The HS256 secret `$connect` verifies tokens with (at least 32 bytes); set this or
/// [`JWT_JWKS`] to require a token.
pub const JWT_HS256_SECRET: &str = "WSPUSH_JWT_HS256_SECRET";
/// A JWKS document (JSON) of the RS256 / ES256 public keys `$connect` verifies tokens with.
pub const JWT_JWKS: &str = "WSPUSH_JWT_JWKS";
/// The issuer (`iss`) tokens must have; required with a secret or JWKS.
pub const JWT_ISSUER: &str = "WSPUSH_JWT_ISSUER";
/// The audience tokens' `aud` must include; required with a secret or JWKS.
pub const JWT_AUDIENCE: &str = "WSPUSH_JWT_AUDIENCE";
/// The claim listing the topics a token grants (default `topics`; `off` to leave topics to
/// the subscription policy alone).
pub const JWT_TOPICS_CLAIM: &str = "WSPUSH_JWT_TOPICS_CLAIM";
/// Seconds of clock skew allowed on `exp` and `nbf` (default 30, at most 300).
pub const JWT_LEEWAY_SECONDS: &str = "WSPUSH_JWT_LEEWAY_SECONDS";
/// Comma-separated topic namespaces connections may subscribe to; unset or empty for any.
pub const ALLOWED_NAMESPACES: &str = "WSPUSH_ALLOWED_NAMESPACES";
/// The most subscriptions one connection may hold (default 100).
pub const MAX_SUBSCRIPTIONS: &str = "WSPUSH_MAX_SUBSCRIPTIONS_PER_CONNECTION";
/// The most topics one subscribe message may name (default 20).
pub const MAX_TOPICS_PER_MESSAGE: &str = "WSPUSH_MAX_TOPICS_PER_MESSAGE";
/// The most posts in flight per push (default 256).
pub const MAX_IN_FLIGHT: &str = "WSPUSH_MAX_IN_FLIGHT";
/// Connections per store page (default 500).
pub const PAGE_SIZE: &str = "WSPUSH_PAGE_SIZE";
/// Segments a broadcast is read in (default 4).
pub const BROADCAST_SEGMENTS: &str = "WSPUSH_BROADCAST_SEGMENTS";

/// The most posts per second of one pusher instance (default 8,000; `off` for no ceiling).
pub const MAX_POSTS_PER_SECOND: &str = "WSPUSH_MAX_POSTS_PER_SECOND";
/// The CloudWatch namespace of the pusher's metrics (default `wspush`; `off` writes none).
pub const METRICS_NAMESPACE: &str = "WSPUSH_METRICS_NAMESPACE";

/// The SQS queue URL the pusher enqueues continuations to (the notification queue); unset
/// for none: a push that cannot finish is then reported failed whole.
pub const QUEUE_URL: &str = "WSPUSH_QUEUE_URL";
/// How many times connections that still fail after their retries are re-enqueued
/// (default 3; 0 reports the request failed at once).
pub const MAX_GENERATIONS: &str = "WSPUSH_MAX_GENERATIONS";
/// Milliseconds before the Lambda deadline at which a push stops starting posts and hands
/// the rest on (default 10,000).
pub const DEADLINE_MARGIN_MS: &str = "WSPUSH_DEADLINE_MARGIN_MS";
/// A broadcast is scattered once it has read more than this many connections (default
/// 10,000; `off` never scatters).
pub const SCATTER_ABOVE: &str = "WSPUSH_SCATTER_ABOVE";
/// The segments a scattered broadcast is split into (default 16).
pub const SCATTER_SEGMENTS: &str = "WSPUSH_SCATTER_SEGMENTS";
/// Seconds a completed request is remembered to skip its redeliveries (default 86,400;
/// `off` for no ledger).
pub const IDEMPOTENCY_TTL_SECONDS: &str = "WSPUSH_IDEMPOTENCY_TTL_SECONDS";

/// A setting that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A required variable is not set.
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    /// A variable's value cannot be used.
    #[error("environment variable {key}={value:?} is invalid: {reason}")]
    Invalid {
        /// The variable.
        key: &'static str,
        /// Its value.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
}

/// Reads variables through `lookup`.
pub struct Settings<F> {
    lookup: F,
}

impl Settings<fn(&str) -> Option<String>> {
    /// Settings from the process environment.
    pub fn from_env() -> Self {
        Settings {
            lookup: |key| std::env::var(key).ok(),
        }
    }
}

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    /// Settings from `lookup` (a map in tests).
    pub fn from_lookup(lookup: F) -> Self {
        Self { lookup }
    }

    fn get(&self, key: &str) -> Option<String> {
        (self.lookup)(key).filter(|value| !value.trim().is_empty())
    }

    /// Whether `key` is set to `off` (a feature with a default, turned off).
    fn is_off(&self, key: &str) -> bool {
        self.get(key).is_some_and(|value| value.trim() == "off")
    }

    /// A required variable.
    pub fn required(&self, key: &'static str) -> Result<String, SettingsError> {
        self.get(key).ok_or(SettingsError::Missing(key))
    }

    /// A number, `default` when unset; 0 is refused.
    pub fn positive<T>(&self, key: &'static str, default: T) -> Result<T, SettingsError>
    where
        T: FromStr + PartialEq + Default,
        T::Err: std::fmt::Display,
    {
        let Some(value) = self.get(key) else {
            return Ok(default);
        };
        let invalid = |reason: String| SettingsError::Invalid {
            key,
            value: value.clone(),
            reason,
        };
        let number = value
            .trim()
            .parse::<T>()
            .map_err(|error| invalid(error.to_string()))?;
        if number == T::default() {
            return Err(invalid("must be at least 1".into()));
        }
        Ok(number)
    }

    /// A number, `default` when unset; 0 is allowed.
    pub fn number<T>(&self, key: &'static str, default: T) -> Result<T, SettingsError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        let Some(value) = self.get(key) else {
            return Ok(default);
        };
        value
            .trim()
            .parse::<T>()
            .map_err(|error| SettingsError::Invalid {
                key,
                value: value.clone(),
                reason: error.to_string(),
            })
    }

    /// The continuation queue's URL ([`QUEUE_URL`]), if set.
    pub fn queue_url(&self) -> Option<String> {
        self.get(QUEUE_URL)
    }

    /// How continuations are made ([`MAX_GENERATIONS`], [`DEADLINE_MARGIN_MS`],
    /// [`SCATTER_ABOVE`], [`SCATTER_SEGMENTS`]).
    pub fn continuation_config(&self) -> Result<ContinuationConfig, SettingsError> {
        let defaults = ContinuationConfig::default();
        let max_generations = self.number(MAX_GENERATIONS, defaults.limits.max_generations)?;
        if max_generations > MAX_GENERATION {
            return Err(SettingsError::Invalid {
                key: MAX_GENERATIONS,
                value: max_generations.to_string(),
                reason: format!("must be at most {MAX_GENERATION}"),
            });
        }
        let margin_ms = self.number(
            DEADLINE_MARGIN_MS,
            u64::try_from(defaults.deadline_margin.as_millis()).unwrap_or(u64::MAX),
        )?;
        let scatter = if self.is_off(SCATTER_ABOVE) {
            None
        } else {
            let above = self.positive(SCATTER_ABOVE, 10_000usize)?;
            let segments = self.positive(SCATTER_SEGMENTS, 16u32)?;
            Some(
                ScatterConfig::new(above, segments).map_err(|error| SettingsError::Invalid {
                    key: SCATTER_SEGMENTS,
                    value: segments.to_string(),
                    reason: error.to_string(),
                })?,
            )
        };
        Ok(ContinuationConfig {
            limits: ContinuationLimits {
                max_generations,
                ..defaults.limits
            },
            deadline_margin: Duration::from_millis(margin_ms),
            scatter,
        })
    }

    /// The ledger's settings ([`IDEMPOTENCY_TTL_SECONDS`]); `None` when turned off.
    pub fn ledger_config(&self) -> Result<Option<LedgerConfig>, SettingsError> {
        if self.is_off(IDEMPOTENCY_TTL_SECONDS) {
            return Ok(None);
        }
        let defaults = LedgerConfig::default();
        let keep = self.positive(IDEMPOTENCY_TTL_SECONDS, defaults.keep_completed.as_secs())?;
        Ok(Some(LedgerConfig {
            keep_completed: Duration::from_secs(keep),
            ..defaults
        }))
    }

    /// The table name ([`TABLE`]).
    pub fn table(&self) -> Result<String, SettingsError> {
        self.required(TABLE)
    }

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
        Ok(IdentitySource {
            authorizer_key: self
                .get(IDENTITY_KEY)
                .unwrap_or_else(|| "principalId".to_owned()),
            insecure_query_param,
            token: token.map(std::sync::Arc::new),
        })
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

    /// The subscription policy ([`ALLOWED_NAMESPACES`], [`MAX_SUBSCRIPTIONS`],
    /// [`MAX_TOPICS_PER_MESSAGE`]).
    pub fn subscription_policy(&self) -> Result<SubscriptionPolicy, SettingsError> {
        let defaults = SubscriptionPolicy::default();
        let mut policy = defaults
            .clone()
            .with_max_subscriptions_per_connection(self.positive(
                MAX_SUBSCRIPTIONS,
                defaults.max_subscriptions_per_connection(),
            )?)
            .with_max_topics_per_message(
                self.positive(MAX_TOPICS_PER_MESSAGE, defaults.max_topics_per_message())?,
            );
        if let Some(namespaces) = self.get(ALLOWED_NAMESPACES) {
            let list: Vec<String> = namespaces
                .split(',')
                .map(str::trim)
                .filter(|namespace| !namespace.is_empty())
                .map(str::to_owned)
                .collect();
            if list.iter().any(|namespace| namespace.contains(':')) {
                return Err(SettingsError::Invalid {
                    key: ALLOWED_NAMESPACES,
                    value: namespaces,
                    reason: "a namespace is the text before the first `:`; list them without it"
                        .into(),
                });
            }
            policy = policy.with_allowed_namespaces(list);
        }
        Ok(policy)
    }

    /// The namespace the pusher's EMF metrics go to ([`METRICS_NAMESPACE`]), `None` when
    /// they are turned off.
    pub fn metrics_namespace(&self) -> Result<Option<String>, SettingsError> {
        if self.is_off(METRICS_NAMESPACE) {
            return Ok(None);
        }
        match self.get(METRICS_NAMESPACE) {
            None => Ok(Some("wspush".to_owned())),
            // CloudWatch: 1 to 255 characters, no leading colon, no control characters.
            Some(value)
                if value.len() <= 255
                    && !value.starts_with(':')
                    && !value.chars().any(char::is_control) =>
            {
                Ok(Some(value))
            }
            Some(value) => Err(SettingsError::Invalid {
                key: METRICS_NAMESPACE,
                value,
                reason: "a CloudWatch namespace is 1 to 255 characters, without control characters or a leading ':'".to_owned(),
            }),
        }
    }

    /// How the pusher pushes ([`MAX_IN_FLIGHT`], [`PAGE_SIZE`], [`BROADCAST_SEGMENTS`]).
    pub fn push_config(&self) -> Result<PushConfig, SettingsError> {
        let defaults = PushConfig::default();
        Ok(PushConfig {
            max_in_flight: self.positive(MAX_IN_FLIGHT, defaults.max_in_flight)?,
            page_size: self.positive(PAGE_SIZE, defaults.page_size)?,
            broadcast_segments: self.positive(BROADCAST_SEGMENTS, defaults.broadcast_segments)?,
            max_posts_per_second: if self.is_off(MAX_POSTS_PER_SECOND) {
                None
            } else {
                Some(self.positive(MAX_POSTS_PER_SECOND, DEFAULT_MAX_POSTS_PER_SECOND)?)
            },
            ..defaults
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(move |key| map.get(key).cloned())
    }

    #[test]
    fn the_post_rate_defaults_below_the_account_throttle_and_can_be_set_or_turned_off() {
        let rate = |pairs: &[(&str, &str)]| {
            settings(pairs)
                .push_config()
                .map(|c| c.max_posts_per_second)
        };

        assert_eq!(rate(&[]), Ok(Some(8_000)));
        assert_eq!(rate(&[(MAX_POSTS_PER_SECOND, "2500")]), Ok(Some(2_500)));
        assert_eq!(rate(&[(MAX_POSTS_PER_SECOND, "off")]), Ok(None));
        let error = rate(&[(MAX_POSTS_PER_SECOND, "0")]).unwrap_err();
        assert!(error.to_string().contains(MAX_POSTS_PER_SECOND), "{error}");
    }

    #[test]
    fn metrics_go_to_the_wspush_namespace_unless_named_or_turned_off() {
        assert_eq!(
            settings(&[]).metrics_namespace(),
            Ok(Some("wspush".to_owned()))
        );
        assert_eq!(
            settings(&[(METRICS_NAMESPACE, "chat/prod")]).metrics_namespace(),
            Ok(Some("chat/prod".to_owned()))
        );
        assert_eq!(
            settings(&[(METRICS_NAMESPACE, "off")]).metrics_namespace(),
            Ok(None)
        );
        let error = settings(&[(METRICS_NAMESPACE, ":bad")])
            .metrics_namespace()
            .unwrap_err();
        assert!(error.to_string().contains(METRICS_NAMESPACE), "{error}");
    }

    #[test]
    fn continuations_default_to_three_generations_a_ten_second_margin_and_scatter_above_10000() {
        let defaults = settings(&[]).continuation_config().expect("valid");
        let custom = settings(&[
            (MAX_GENERATIONS, "0"),
            (DEADLINE_MARGIN_MS, "1500"),
            (SCATTER_ABOVE, "500"),
            (SCATTER_SEGMENTS, "64"),
        ])
        .continuation_config()
        .expect("valid");
        let off = settings(&[(SCATTER_ABOVE, "off")])
            .continuation_config()
            .expect("valid");

        assert_eq!(defaults.limits.max_generations, 3);
        assert_eq!(defaults.deadline_margin, Duration::from_secs(10));
        assert_eq!(defaults.scatter, ScatterConfig::new(10_000, 16).ok());
        assert_eq!(custom.limits.max_generations, 0);
        assert_eq!(custom.deadline_margin, Duration::from_millis(1_500));
        assert_eq!(custom.scatter, ScatterConfig::new(500, 64).ok());
        assert_eq!(off.scatter, None);
    }

    #[test]
    fn bad_continuation_settings_name_their_variable() {
        for (key, value) in [
            (MAX_GENERATIONS, "101"),
            (MAX_GENERATIONS, "-1"),
            (DEADLINE_MARGIN_MS, "soon"),
            (SCATTER_ABOVE, "0"),
            (SCATTER_SEGMENTS, "0"),
        ] {
            let error = settings(&[(key, value)])
                .continuation_config()
                .expect_err("invalid");
            assert!(error.to_string().contains(key), "{key}={value}: {error}");
        }
    }

    #[test]
    fn the_ledger_keeps_completed_requests_a_day_unless_set_or_turned_off() {
        assert_eq!(
            settings(&[])
                .ledger_config()
                .map(|c| c.map(|c| c.keep_completed)),
            Ok(Some(Duration::from_secs(86_400)))
        );
        assert_eq!(
            settings(&[(IDEMPOTENCY_TTL_SECONDS, "600")])
                .ledger_config()
                .map(|c| c.map(|c| c.keep_completed)),
            Ok(Some(Duration::from_secs(600)))
        );
        assert_eq!(
            settings(&[(IDEMPOTENCY_TTL_SECONDS, "off")]).ledger_config(),
            Ok(None)
        );
        assert!(
            settings(&[(IDEMPOTENCY_TTL_SECONDS, "0")])
                .ledger_config()
                .is_err()
        );
    }

    #[test]
    fn a_missing_table_names_its_variable() {
        let error = settings(&[]).table().unwrap_err();

        assert_eq!(
            error.to_string(),
            "environment variable WSPUSH_TABLE is not set"
        );
    }

    #[test]
    fn an_empty_variable_counts_as_missing() {
        assert_eq!(
            settings(&[(TABLE, "  ")]).table(),
            Err(SettingsError::Missing(TABLE))
        );
    }

    #[test]
    fn the_identity_comes_from_principal_id_unless_configured() {
        let default = settings(&[]).identity().expect("valid");
        let custom = settings(&[(IDENTITY_KEY, "userId"), (INSECURE_IDENTITY_PARAM, "user")])
            .identity()
            .expect("valid");

        assert_eq!(default.authorizer_key, "principalId");
        assert_eq!(default.insecure_query_param, None);
        assert_eq!(custom.authorizer_key, "userId");
        assert_eq!(custom.insecure_query_param.as_deref(), Some("user"));
        assert!(default.token.is_none());
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_secret_with_issuer_and_audience_requires_tokens_granting_topics_by_default() {
        let identity = settings(&[
            (JWT_HS256_SECRET, SECRET),
            (JWT_ISSUER, "https://issuer.example"),
            (JWT_AUDIENCE, "wspush"),
        ])
        .identity()
        .expect("valid");
        let off = settings(&[
            (JWT_HS256_SECRET, SECRET),
            (JWT_ISSUER, "https://issuer.example"),
            (JWT_AUDIENCE, "wspush"),
            (JWT_TOPICS_CLAIM, "off"),
        ])
        .identity()
        .expect("valid");

        let verifier = identity.token.expect("tokens required");
        assert_eq!(verifier.topics_claim(), Some("topics"));
        assert_eq!(off.token.expect("tokens required").topics_claim(), None);
    }

    #[test]
    fn bad_token_settings_name_their_variable_and_never_echo_the_secret() {
        let base = [(JWT_ISSUER, "iss"), (JWT_AUDIENCE, "aud")];
        let case = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            settings(&pairs).identity().expect_err("invalid")
        };

        let short = case(&[(JWT_HS256_SECRET, "too-short-secret")]);
        assert!(short.to_string().contains(JWT_HS256_SECRET), "{short}");
        assert!(!short.to_string().contains("too-short-secret"), "{short}");
        let both = case(&[(JWT_HS256_SECRET, SECRET), (JWT_JWKS, r#"{"keys":[]}"#)]);
        assert!(both.to_string().contains("not both"), "{both}");
        let jwks = case(&[(JWT_JWKS, r#"{"keys":[]}"#)]);
        assert!(jwks.to_string().contains(JWT_JWKS), "{jwks}");
        let not_json = case(&[(JWT_JWKS, "keys")]);
        assert!(
            not_json.to_string().contains("not a JSON object"),
            "{not_json}"
        );
        let leeway = case(&[(JWT_HS256_SECRET, SECRET), (JWT_LEEWAY_SECONDS, "3600")]);
        assert!(leeway.to_string().contains(JWT_LEEWAY_SECONDS), "{leeway}");
        let no_key = settings(&base)
            .identity()
            .expect_err("issuer without a key");
        assert!(no_key.to_string().contains(JWT_JWKS), "{no_key}");
        let insecure = case(&[
            (JWT_HS256_SECRET, SECRET),
            (INSECURE_IDENTITY_PARAM, "user"),
        ]);
        assert!(
            insecure.to_string().contains(INSECURE_IDENTITY_PARAM),
            "{insecure}"
        );
        for missing in [JWT_ISSUER, JWT_AUDIENCE] {
            let pairs: Vec<_> = base
                .iter()
                .copied()
                .filter(|(key, _)| *key != missing)
                .chain([(JWT_HS256_SECRET, SECRET)])
                .collect();
            assert_eq!(
                settings(&pairs).identity().expect_err("missing"),
                SettingsError::Missing(missing)
            );
        }
    }

    #[test]
    fn push_settings_are_read_and_zero_is_refused() {
        let config = settings(&[(MAX_IN_FLIGHT, "64"), (BROADCAST_SEGMENTS, "8")])
            .push_config()
            .expect("valid");
        let zero = settings(&[(MAX_IN_FLIGHT, "0")]).push_config();
        let garbage = settings(&[(PAGE_SIZE, "many")]).push_config();

        assert_eq!((config.max_in_flight, config.broadcast_segments), (64, 8));
        assert_eq!(config.page_size, PushConfig::default().page_size);
        assert!(matches!(
            zero,
            Err(SettingsError::Invalid {
                key: MAX_IN_FLIGHT,
                ..
            })
        ));
        assert!(
            garbage
                .unwrap_err()
                .to_string()
                .starts_with("environment variable WSPUSH_PAGE_SIZE=\"many\" is invalid")
        );
    }

    #[test]
    fn allowed_namespaces_are_a_comma_separated_list() {
        let policy = settings(&[(ALLOWED_NAMESPACES, "room, ticker,")])
            .subscription_policy()
            .expect("valid");
        let with_colon = settings(&[(ALLOWED_NAMESPACES, "room:")]).subscription_policy();

        assert_eq!(
            policy,
            SubscriptionPolicy::default().with_allowed_namespaces(["room", "ticker"])
        );
        assert!(with_colon.is_err());
    }
}
