//! Which streams keep history, and how much.

use std::time::Duration;

use wspush_domain::HistoryPolicy;
use wspush_domain::history::{DEFAULT_HISTORY_SIZE, DEFAULT_HISTORY_TTL};

use crate::settings::names::*;
use crate::settings::{Settings, SettingsError};

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    /// The history policy ([`HISTORY_NAMESPACES`], [`HISTORY_TTL_SECONDS`],
    /// [`HISTORY_SIZE`]): none unless namespaces are named.
    pub fn history_policy(&self) -> Result<HistoryPolicy, SettingsError> {
        let namespaces: Vec<String> = self
            .get(HISTORY_NAMESPACES)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|namespace| !namespace.is_empty())
            .map(str::to_owned)
            .collect();
        let ttl = self.positive(HISTORY_TTL_SECONDS, DEFAULT_HISTORY_TTL.as_secs())?;
        let size = self.positive(HISTORY_SIZE, DEFAULT_HISTORY_SIZE)?;
        HistoryPolicy::new(namespaces, Duration::from_secs(ttl), size).map_err(|error| {
            SettingsError::Invalid {
                key: HISTORY_NAMESPACES,
                value: self.raw(HISTORY_NAMESPACES).unwrap_or_default(),
                reason: error.to_string(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use wspush_domain::ExternalId;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<HistoryPolicy, SettingsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        Settings::from_lookup(move |key: &str| map.get(key).cloned()).history_policy()
    }

    #[test]
    fn history_is_off_unless_namespaces_are_named() {
        let policy = settings(&[]).expect("valid");
        assert!(!policy.is_on());
        assert_eq!(policy.ttl(), Duration::from_secs(900));
        assert_eq!(policy.size(), 100);

        let policy = settings(&[
            (HISTORY_NAMESPACES, "room, user"),
            (HISTORY_TTL_SECONDS, "60"),
            (HISTORY_SIZE, "5"),
        ])
        .expect("valid");
        assert!(policy.keeps(&ExternalId::parse("room:1").expect("valid")));
        assert!(policy.keeps(&ExternalId::parse("user:ana").expect("valid")));
        assert!(!policy.keeps(&ExternalId::parse("ticker:1").expect("valid")));
        assert_eq!(policy.retention().size, 5);
    }

    #[test]
    fn a_bad_history_setting_is_named() {
        for (pairs, key) in [
            (&[(HISTORY_NAMESPACES, "room:x")][..], HISTORY_NAMESPACES),
            (&[(HISTORY_SIZE, "0")][..], HISTORY_SIZE),
            (&[(HISTORY_TTL_SECONDS, "soon")][..], HISTORY_TTL_SECONDS),
        ] {
            let error = settings(pairs).expect_err("invalid");
            assert!(error.to_string().contains(key), "{error}");
        }
    }
}
