//! How the pusher pushes: its fan-out, continuations, ledger, metrics and endpoint.

use std::time::Duration;

use wspush_domain::ContinuationLimits;
use wspush_domain::endpoint::{Transport, management_endpoint};
use wspush_domain::limits::{DEFAULT_MAX_POSTS_PER_SECOND, MAX_GENERATION};
use wspush_ports::{ContinuationConfig, LedgerConfig, PushConfig, ScatterConfig};

use crate::settings::names::*;
use crate::settings::{Settings, SettingsError};

/// The `@connections` API a function posts through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagementApi {
    /// The endpoint ([`MANAGEMENT_ENDPOINT`], or the one that follows from [`WEBSOCKET_URL`]).
    pub endpoint: String,
    /// The implementation that calls it ([`TRANSPORT`]).
    pub transport: Transport,
}

impl<F: Fn(&str) -> Option<String>> Settings<F> {
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

    /// The `@connections` API: its endpoint ([`Self::management_endpoint`]) and the
    /// transport that calls it ([`TRANSPORT`]).
    pub fn management_api(&self) -> Result<ManagementApi, SettingsError> {
        let transport = match self.raw(TRANSPORT) {
            None => Transport::default(),
            Some(value) => value.parse().map_err(|_| SettingsError::NotA {
                key: TRANSPORT,
                value,
                expected: "lean or sdk",
            })?,
        };
        Ok(ManagementApi {
            endpoint: self.management_endpoint()?,
            transport,
        })
    }

    /// The `@connections` endpoint: [`MANAGEMENT_ENDPOINT`], or else the one that follows
    /// from [`WEBSOCKET_URL`].
    pub fn management_endpoint(&self) -> Result<String, SettingsError> {
        // Read as set, even when empty (an empty endpoint is refused, not skipped).
        if let Some(endpoint) = self.raw(MANAGEMENT_ENDPOINT) {
            if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
                return Err(SettingsError::NotA {
                    key: MANAGEMENT_ENDPOINT,
                    value: endpoint,
                    expected: "an http(s) URL",
                });
            }
            return Ok(endpoint.trim_end_matches('/').to_owned());
        }
        let Some(url) = self.raw(WEBSOCKET_URL) else {
            return Err(SettingsError::MissingEither {
                key: MANAGEMENT_ENDPOINT,
                what: "the @connections endpoint",
                or_key: WEBSOCKET_URL,
                or_what: "the API's wss:// stage URL",
            });
        };
        management_endpoint(&url).ok_or(SettingsError::NotA {
            key: WEBSOCKET_URL,
            value: url,
            expected: "a ws:// or wss:// URL",
        })
    }
}
