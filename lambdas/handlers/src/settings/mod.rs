//! Typed settings, read once at cold start from the environment: the one place where each
//! function's configuration is named and read.
//!
//! Every function reads its settings through a lookup (`std::env::var` in production, a map
//! in tests); a missing or malformed variable fails the cold start with its name. What each
//! function reads is one struct: [`ConnectSettings`], [`DisconnectSettings`],
//! [`SubscribeSettings`], [`PusherSettings`]; the variables' names are in [`names`] (and
//! re-exported here), and `deploy/template.yaml` sets the same names.

use std::str::FromStr;

mod functions;
mod history;
mod identity;
#[cfg(test)]
mod identity_tests;
pub mod names;
mod policy;
mod presence;
mod push;
#[cfg(test)]
mod tests;

pub use functions::{
    ConnectSettings, DisconnectSettings, FunctionSettings, PusherSettings, SubscribeSettings,
};
pub use identity::{IdentityPlan, RemoteKeys};
pub use names::*;
pub use policy::MAX_TOPICS_PER_MESSAGE_LIMIT;
pub use push::ManagementApi;

/// A setting that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A required variable is not set.
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    /// A variable's value is not the kind of value it must be (a URL of a scheme, say).
    #[error("{key} must be {expected}, got {value:?}")]
    NotA {
        /// The variable.
        key: &'static str,
        /// Its value.
        value: String,
        /// What it must be.
        expected: &'static str,
    },
    /// Neither of two variables, one of which is required, is set.
    #[error("set {key} ({what}) or {or_key} ({or_what})")]
    MissingEither {
        /// The first variable.
        key: &'static str,
        /// What it holds.
        what: &'static str,
        /// The other.
        or_key: &'static str,
        /// What that one holds.
        or_what: &'static str,
    },
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

    pub(crate) fn get(&self, key: &str) -> Option<String> {
        self.raw(key).filter(|value| !value.trim().is_empty())
    }

    /// A variable as set, even when empty.
    pub(crate) fn raw(&self, key: &str) -> Option<String> {
        (self.lookup)(key)
    }

    /// Whether `key` is set to `off` (a feature with a default, turned off).
    pub(crate) fn is_off(&self, key: &str) -> bool {
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

    /// `true` or `false`, `default` when unset.
    pub fn switch(&self, key: &'static str, default: bool) -> Result<bool, SettingsError> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => match value.trim() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(SettingsError::NotA {
                    key,
                    value,
                    expected: "true or false",
                }),
            },
        }
    }

    /// The table name ([`TABLE`]).
    pub fn table(&self) -> Result<String, SettingsError> {
        self.required(TABLE)
    }
}
