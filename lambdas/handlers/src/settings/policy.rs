//! What `subscribe` allows.

use wspush_domain::SubscriptionPolicy;

use crate::settings::names::*;
use crate::settings::{Settings, SettingsError};

/// The most topics one subscribe or unsubscribe message may name: what one DynamoDB
/// transaction holds besides the connection's count, so that a message is written whole or
/// not at all.
pub const MAX_TOPICS_PER_MESSAGE_LIMIT: usize = 99;

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    /// [`MAX_TOPICS_PER_MESSAGE`], from 1 to [`MAX_TOPICS_PER_MESSAGE_LIMIT`].
    fn topics_per_message(&self, default: usize) -> Result<usize, SettingsError> {
        let topics = self.positive(MAX_TOPICS_PER_MESSAGE, default)?;
        if topics > MAX_TOPICS_PER_MESSAGE_LIMIT {
            return Err(SettingsError::Invalid {
                key: MAX_TOPICS_PER_MESSAGE,
                value: topics.to_string(),
                reason: format!(
                    "must be at most {MAX_TOPICS_PER_MESSAGE_LIMIT}: a message's topics are written in one DynamoDB transaction"
                ),
            });
        }
        Ok(topics)
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
                self.topics_per_message(defaults.max_topics_per_message())?,
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
