//! What a connection may subscribe to.

use crate::connection::Connection;
use crate::ids::ExternalId;

/// Why a subscription was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// The topic's namespace is not one the policy allows.
    #[error("topic `{topic}` is not in an allowed namespace ({allowed})")]
    NamespaceNotAllowed {
        /// The topic refused.
        topic: ExternalId,
        /// The allowed namespaces, comma-separated.
        allowed: String,
    },
    /// The topic is another user's own channel.
    #[error("topic `{topic}` is another user's own channel")]
    OtherUsersChannel {
        /// The topic refused.
        topic: ExternalId,
    },
    /// The connection's token does not grant the topic.
    #[error("topic `{topic}` is not granted to the connection (by its token or authorizer)")]
    NotGranted {
        /// The topic refused.
        topic: ExternalId,
    },
    /// One message named too many topics.
    #[error("a message may name at most {max} topics, got {given}")]
    TooManyTopics {
        /// How many were named.
        given: usize,
        /// The limit.
        max: usize,
    },
    /// A presence query from a connection that is not subscribed to the topic.
    #[error(
        "the presence of topic `{topic}` is shown to its subscribers only; subscribe to it first"
    )]
    PresenceNeedsSubscription {
        /// The topic asked about.
        topic: ExternalId,
    },
    /// The connection would hold too many subscriptions.
    #[error(
        "a connection may hold at most {max} subscriptions; it has {current} and asked for {adding} more"
    )]
    TooManySubscriptions {
        /// Subscriptions held now.
        current: usize,
        /// New subscriptions asked for.
        adding: usize,
        /// The limit.
        max: usize,
    },
}

impl Denial {
    /// The rule that denied, as a short name that quotes no topic (for logs).
    pub fn rule(&self) -> &'static str {
        match self {
            Denial::NamespaceNotAllowed { .. } => "namespace_not_allowed",
            Denial::OtherUsersChannel { .. } => "other_users_channel",
            Denial::NotGranted { .. } => "not_granted",
            Denial::TooManyTopics { .. } => "too_many_topics",
            Denial::TooManySubscriptions { .. } => "too_many_subscriptions",
            Denial::PresenceNeedsSubscription { .. } => "presence_needs_subscription",
        }
    }
}

/// The rules a subscribe request must pass.
///
/// A topic is allowed when it passes, in order:
///
/// 1. a user's own channel (`user:<id>`) is allowed to that user and denied to everyone else,
///    whatever the other rules say;
/// 2. its namespace is one of the allowed namespaces, when they are restricted;
/// 3. the connection's token grants it, when the connection was opened with grants.
///
/// Default: any namespace, at most 100 subscriptions per connection and 20 topics per
/// message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionPolicy {
    allowed_namespaces: Option<Vec<String>>,
    max_subscriptions_per_connection: usize,
    max_topics_per_message: usize,
}

impl Default for SubscriptionPolicy {
    fn default() -> Self {
        Self {
            allowed_namespaces: None,
            max_subscriptions_per_connection: 100,
            max_topics_per_message: 20,
        }
    }
}

impl SubscriptionPolicy {
    /// Only topics in these namespaces (the text before the first `:`) may be subscribed to;
    /// a user's own channel stays allowed to that user.
    pub fn with_allowed_namespaces<I, S>(mut self, namespaces: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_namespaces = Some(namespaces.into_iter().map(Into::into).collect());
        self
    }

    /// The most subscriptions one connection may hold.
    pub fn with_max_subscriptions_per_connection(mut self, max: usize) -> Self {
        self.max_subscriptions_per_connection = max;
        self
    }

    /// The most topics one subscribe message may name.
    pub fn with_max_topics_per_message(mut self, max: usize) -> Self {
        self.max_topics_per_message = max;
        self
    }

    /// The most subscriptions one connection may hold.
    pub fn max_subscriptions_per_connection(&self) -> usize {
        self.max_subscriptions_per_connection
    }

    /// The most topics one subscribe message may name.
    pub fn max_topics_per_message(&self) -> usize {
        self.max_topics_per_message
    }

    /// Checks how many topics one subscribe or unsubscribe message names.
    pub fn check_count(&self, topics: &[ExternalId]) -> Result<(), Denial> {
        if topics.len() > self.max_topics_per_message {
            return Err(Denial::TooManyTopics {
                given: topics.len(),
                max: self.max_topics_per_message,
            });
        }
        Ok(())
    }

    /// Checks the topics of one subscribe message on `connection`.
    pub fn check_topics(
        &self,
        connection: &Connection,
        topics: &[ExternalId],
    ) -> Result<(), Denial> {
        self.check_count(topics)?;
        topics
            .iter()
            .try_for_each(|topic| self.check_topic(connection, topic))
    }

    fn check_topic(&self, connection: &Connection, topic: &ExternalId) -> Result<(), Denial> {
        if let Some(owner) = topic.channel_owner() {
            return if owner == connection.user().as_str() {
                Ok(())
            } else {
                Err(Denial::OtherUsersChannel {
                    topic: topic.clone(),
                })
            };
        }
        match &self.allowed_namespaces {
            Some(allowed)
                if !topic
                    .namespace()
                    .is_some_and(|namespace| allowed.iter().any(|a| a == namespace)) =>
            {
                return Err(Denial::NamespaceNotAllowed {
                    topic: topic.clone(),
                    allowed: allowed.join(", "),
                });
            }
            _ => {}
        }
        match connection.grants() {
            Some(grants) if !grants.allows(topic) => Err(Denial::NotGranted {
                topic: topic.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Checks that a connection holding `current` subscriptions may add `adding` more.
    pub fn check_total(&self, current: usize, adding: usize) -> Result<(), Denial> {
        if current.saturating_add(adding) > self.max_subscriptions_per_connection {
            return Err(Denial::TooManySubscriptions {
                current,
                adding,
                max: self.max_subscriptions_per_connection,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::TopicGrants;
    use crate::ids::{ConnectionId, UserId};
    use crate::time::Timestamp;

    fn user(id: &str) -> Connection {
        Connection::open(
            ConnectionId::parse("c1").expect("valid"),
            UserId::parse(id).expect("valid"),
            Timestamp::EPOCH,
        )
    }

    fn granted(id: &str, grants: &[&str]) -> Connection {
        user(id).with_grants(Some(
            TopicGrants::parse(grants.iter().copied()).expect("valid"),
        ))
    }

    fn topics(ids: &[&str]) -> Vec<ExternalId> {
        ids.iter()
            .map(|id| ExternalId::parse(*id).expect("valid"))
            .collect()
    }

    #[test]
    fn the_default_policy_allows_any_namespace() {
        let policy = SubscriptionPolicy::default();

        assert_eq!(
            policy.check_topics(&user("u1"), &topics(&["room:1", "ticker:AAPL", "lobby"])),
            Ok(())
        );
    }

    #[test]
    fn another_users_own_channel_is_denied() {
        let policy = SubscriptionPolicy::default();

        let denial = policy
            .check_topics(&user("u1"), &topics(&["user:u2"]))
            .unwrap_err();

        assert!(matches!(denial, Denial::OtherUsersChannel { .. }));
        assert_eq!(
            denial.to_string(),
            "topic `user:u2` is another user's own channel"
        );
    }

    #[test]
    fn a_users_own_channel_is_allowed_even_outside_the_allowed_namespaces() {
        let policy = SubscriptionPolicy::default().with_allowed_namespaces(["room"]);

        assert_eq!(
            policy.check_topics(&user("u1"), &topics(&["user:u1"])),
            Ok(())
        );
    }

    #[test]
    fn a_topic_outside_the_allowed_namespaces_is_denied() {
        let policy = SubscriptionPolicy::default().with_allowed_namespaces(["room", "ticker"]);

        let denial = policy
            .check_topics(&user("u1"), &topics(&["room:1", "admin:all"]))
            .unwrap_err();

        assert_eq!(
            denial,
            Denial::NamespaceNotAllowed {
                topic: ExternalId::parse("admin:all").expect("valid"),
                allowed: "room, ticker".into()
            }
        );
    }

    #[test]
    fn a_topic_without_a_namespace_is_denied_when_namespaces_are_restricted() {
        let policy = SubscriptionPolicy::default().with_allowed_namespaces(["room"]);

        assert!(
            policy
                .check_topics(&user("u1"), &topics(&["room"]))
                .is_err()
        );
    }

    #[test]
    fn a_token_with_grants_allows_only_what_it_grants() {
        let policy = SubscriptionPolicy::default();
        let connection = granted("u1", &["room:*", "ticker:AAPL"]);

        assert_eq!(
            policy.check_topics(&connection, &topics(&["room:1", "ticker:AAPL"])),
            Ok(())
        );
        assert_eq!(
            policy.check_topics(&connection, &topics(&["room:1", "ticker:MSFT"])),
            Err(Denial::NotGranted {
                topic: ExternalId::parse("ticker:MSFT").expect("valid")
            })
        );
    }

    #[test]
    fn grants_never_open_a_namespace_the_policy_closes_or_another_users_channel() {
        let policy = SubscriptionPolicy::default().with_allowed_namespaces(["room"]);
        let connection = granted("u1", &["*"]);

        assert!(matches!(
            policy.check_topics(&connection, &topics(&["admin:all"])),
            Err(Denial::NamespaceNotAllowed { .. })
        ));
        assert!(matches!(
            policy.check_topics(&connection, &topics(&["user:u2"])),
            Err(Denial::OtherUsersChannel { .. })
        ));
    }

    #[test]
    fn a_users_own_channel_needs_no_grant() {
        let policy = SubscriptionPolicy::default();

        assert_eq!(
            policy.check_topics(&granted("u1", &[]), &topics(&["user:u1"])),
            Ok(())
        );
    }

    #[test]
    fn too_many_topics_in_one_message_are_denied() {
        let policy = SubscriptionPolicy::default().with_max_topics_per_message(2);

        assert_eq!(
            policy.check_topics(&user("u1"), &topics(&["a", "b", "c"])),
            Err(Denial::TooManyTopics { given: 3, max: 2 })
        );
    }

    #[test]
    fn the_subscription_limit_counts_what_is_held_and_what_is_added() {
        let policy = SubscriptionPolicy::default().with_max_subscriptions_per_connection(3);

        assert_eq!(policy.check_total(1, 2), Ok(()));
        assert_eq!(
            policy.check_total(2, 2),
            Err(Denial::TooManySubscriptions {
                current: 2,
                adding: 2,
                max: 3
            })
        );
    }
}
