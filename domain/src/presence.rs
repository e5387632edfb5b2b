//! Presence: which users are in a topic, and the events that say when one joins or leaves.
//!
//! Presence is kept for the topics of the namespaces a [`PresencePolicy`] names (opt-in: a
//! presence record costs a write per subscribe and per unsubscribe or disconnect). A user is
//! present in a topic while at least one of their live connections is subscribed to it. The
//! user *joins* when their first connection subscribes and *leaves* when their last one
//! unsubscribes, disconnects, or is found gone by a push; each transition is announced once to
//! the topic's other subscribers as `{"presence":{"topic":"room:42","user":"ana","event":"join"}}`.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::builder::BuildError;
use crate::ids::{ExternalId, UserId};
use crate::notification::NotificationRequest;

/// The users a presence query lists when it names no `limit`.
pub const DEFAULT_PRESENCE_LIMIT: usize = 100;

/// The most users one presence query lists (the reply stays far below API Gateway's 128 KB).
pub const MAX_PRESENCE_LIMIT: usize = 1000;

/// Which topics keep presence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PresencePolicy {
    namespaces: BTreeSet<String>,
}

/// Why a presence policy could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresencePolicyError {
    /// A namespace holds a `:` or is empty.
    #[error("presence namespace {0:?} must be non-empty and without `:`")]
    BadNamespace(String),
}

impl PresencePolicy {
    /// No presence anywhere.
    pub fn off() -> Self {
        Self::default()
    }

    /// Presence for the topics of `namespaces` (`room` keeps `room:42`).
    pub fn new<I, S>(namespaces: I) -> Result<Self, PresencePolicyError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let namespaces: BTreeSet<String> = namespaces.into_iter().map(Into::into).collect();
        if let Some(bad) = namespaces
            .iter()
            .find(|namespace| namespace.is_empty() || namespace.contains(':'))
        {
            return Err(PresencePolicyError::BadNamespace(bad.clone()));
        }
        Ok(Self { namespaces })
    }

    /// Whether any namespace keeps presence.
    pub fn is_on(&self) -> bool {
        !self.namespaces.is_empty()
    }

    /// The namespaces that keep presence, in order.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.namespaces.iter().map(String::as_str)
    }

    /// Whether `topic` keeps presence.
    pub fn covers(&self, topic: &ExternalId) -> bool {
        topic
            .namespace()
            .is_some_and(|namespace| self.namespaces.contains(namespace))
    }

    /// The topics of `topics` that keep presence, each once, in the order given.
    pub fn topics_of<'a>(
        &self,
        topics: impl IntoIterator<Item = &'a ExternalId>,
    ) -> Vec<ExternalId> {
        let mut kept: Vec<ExternalId> = Vec::new();
        for topic in topics {
            if self.covers(topic) && !kept.contains(topic) {
                kept.push(topic.clone());
            }
        }
        kept
    }
}

/// A user's arrival in or departure from a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceChange {
    /// The user's first connection subscribed.
    Join,
    /// The user's last connection is gone from the topic.
    Leave,
}

impl PresenceChange {
    /// The event's name in the message (`join`, `leave`).
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceChange::Join => "join",
            PresenceChange::Leave => "leave",
        }
    }
}

/// One join or leave, as the topic's subscribers receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceEvent {
    /// The topic.
    pub topic: ExternalId,
    /// Who joined or left.
    pub user: UserId,
    /// Which it was.
    pub change: PresenceChange,
}

#[derive(Serialize)]
struct EventBody<'a> {
    topic: &'a str,
    user: &'a str,
    event: &'static str,
}

#[derive(Serialize)]
struct Message<'a> {
    presence: EventBody<'a>,
}

impl PresenceEvent {
    /// The message each subscriber receives, as JSON text:
    /// `{"presence":{"topic":"room:42","user":"ana","event":"join"}}`.
    pub fn message(&self) -> String {
        // Serializing strings cannot fail.
        serde_json::to_string(&self.body()).unwrap_or_default()
    }

    fn body(&self) -> Message<'_> {
        Message {
            presence: EventBody {
                topic: self.topic.as_str(),
                user: self.user.as_str(),
                event: self.change.as_str(),
            },
        }
    }

    /// The notification request that carries the event through the notification queue: to
    /// the topic's subscribers but the user's own connections, sent as the bare message
    /// (never appended to the topic's history: its `positions` are given, and empty).
    pub fn to_request(&self) -> Result<NotificationRequest, BuildError> {
        Ok(NotificationRequest::builder()
            .to_topics([self.topic.clone()])
            .except_users([self.user.clone()])
            .data(&self.body())
            .build()?
            .with_positions(Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(text: &str) -> ExternalId {
        ExternalId::parse(text).expect("valid")
    }

    #[test]
    fn only_the_named_namespaces_keep_presence() {
        let policy = PresencePolicy::new(["room"]).expect("valid");
        assert!(policy.is_on());
        assert!(policy.covers(&topic("room:42")));
        assert!(!policy.covers(&topic("chat:1")));
        assert!(!policy.covers(&topic("room")));
        assert_eq!(
            policy.topics_of(&[topic("room:1"), topic("chat:1"), topic("room:1")]),
            vec![topic("room:1")]
        );
        assert!(!PresencePolicy::off().is_on());
        assert!(PresencePolicy::new(["a:b"]).is_err());
        assert!(PresencePolicy::new([""]).is_err());
    }

    #[test]
    fn an_event_travels_as_a_bare_request_to_the_others_in_the_topic() {
        let event = PresenceEvent {
            topic: topic("room:42"),
            user: UserId::parse("ana").expect("valid"),
            change: PresenceChange::Join,
        };
        let request = event.to_request().expect("builds");
        assert_eq!(
            request.payload(),
            r#"{"presence":{"topic":"room:42","user":"ana","event":"join"}}"#
        );
        assert_eq!(request.topics(), &[topic("room:42")]);
        assert_eq!(request.exclude_users()[0].as_str(), "ana");
        // Through the queue as text: still carrying (empty) positions, so never appended.
        let read = NotificationRequest::parse(&request.to_json()).expect("parses");
        assert_eq!(read.positions(), Some(&[][..]));
    }
}
