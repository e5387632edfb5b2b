//! What `subscribe` allows.

use wspush_domain::SubscriptionPolicy;

use crate::settings::names::*;
use crate::settings::{Settings, SettingsError};

impl<F: Fn(&str) -> Option<String>> Settings<F> {
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
}
