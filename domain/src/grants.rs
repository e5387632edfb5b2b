//! The topics a connection's token grants it.
//!
//! A grant is one of:
//!
//! | grant | allows |
//! |---|---|
//! | `room:42` | exactly the topic `room:42` |
//! | `room:*` | every topic in the namespace `room` (`room:1`, `room:lobby:2`, ...) |
//! | `*` | every topic |
//!
//! A user's own channel (`user:<id>`) needs no grant: the subscription policy allows it to
//! that user and to no one else.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{ExternalId, IdError};
use crate::limits::MAX_TOPIC_GRANTS;

/// One grant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopicGrant {
    /// Every topic.
    Any,
    /// Every topic whose namespace (the text before the first `:`) is this one.
    Namespace(String),
    /// Exactly this topic.
    Topic(ExternalId),
}

/// Why a list of grants was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// More grants than [`MAX_TOPIC_GRANTS`].
    #[error("at most {max} topic grants are allowed, got {given}")]
    TooMany {
        /// How many were given.
        given: usize,
        /// The limit.
        max: usize,
    },
    /// One grant is not a topic, `<namespace>:*` or `*`.
    #[error("grant {index}: {source}")]
    Invalid {
        /// Its position in the list.
        index: usize,
        /// What is wrong with it.
        #[source]
        source: IdError,
    },
    /// A `*` somewhere other than alone or after the namespace's `:`.
    #[error("grant {index}: `*` is only allowed as `*` or `<namespace>:*`")]
    MisplacedWildcard {
        /// Its position in the list.
        index: usize,
    },
}

impl TopicGrant {
    /// Parses one grant (see the module docs).
    fn parse(index: usize, text: String) -> Result<Self, GrantError> {
        if text == "*" {
            return Ok(TopicGrant::Any);
        }
        if let Some(namespace) = text.strip_suffix(":*")
            && !namespace.contains(':')
        {
            // A namespace obeys the topic rules (and has no `*`, checked below).
            let checked = ExternalId::parse(namespace)
                .map_err(|source| GrantError::Invalid { index, source })?;
            if !checked.as_str().contains('*') {
                return Ok(TopicGrant::Namespace(checked.as_str().to_owned()));
            }
        }
        if text.contains('*') {
            return Err(GrantError::MisplacedWildcard { index });
        }
        ExternalId::parse(text)
            .map(TopicGrant::Topic)
            .map_err(|source| GrantError::Invalid { index, source })
    }

    /// Whether this grant covers `topic`.
    pub fn allows(&self, topic: &ExternalId) -> bool {
        match self {
            TopicGrant::Any => true,
            TopicGrant::Namespace(namespace) => topic.namespace() == Some(namespace.as_str()),
            TopicGrant::Topic(granted) => granted == topic,
        }
    }
}

impl fmt::Display for TopicGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicGrant::Any => f.write_str("*"),
            TopicGrant::Namespace(namespace) => write!(f, "{namespace}:*"),
            TopicGrant::Topic(topic) => write!(f, "{topic}"),
        }
    }
}

/// The grants a token carried: the only topics (besides the user's own channel) that its
/// connection may subscribe to. An empty list grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct TopicGrants(Vec<TopicGrant>);

impl TopicGrants {
    /// Parses a token's list of grants.
    pub fn parse<I, S>(grants: I) -> Result<Self, GrantError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let grants: Vec<S> = grants.into_iter().collect();
        if grants.len() > MAX_TOPIC_GRANTS {
            return Err(GrantError::TooMany {
                given: grants.len(),
                max: MAX_TOPIC_GRANTS,
            });
        }
        let mut parsed = Vec::with_capacity(grants.len());
        for (index, grant) in grants.into_iter().enumerate() {
            let grant = TopicGrant::parse(index, grant.into())?;
            if !parsed.contains(&grant) {
                parsed.push(grant);
            }
        }
        Ok(Self(parsed))
    }

    /// Whether any grant covers `topic`.
    pub fn allows(&self, topic: &ExternalId) -> bool {
        self.0.iter().any(|grant| grant.allows(topic))
    }

    /// The grants, in the order given, without repeats.
    pub fn as_slice(&self) -> &[TopicGrant] {
        &self.0
    }

    /// The grants as the strings a token holds.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

impl TryFrom<Vec<String>> for TopicGrants {
    type Error = GrantError;

    fn try_from(grants: Vec<String>) -> Result<Self, Self::Error> {
        Self::parse(grants)
    }
}

impl From<TopicGrants> for Vec<String> {
    fn from(grants: TopicGrants) -> Self {
        grants.to_strings()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(id: &str) -> ExternalId {
        ExternalId::parse(id).expect("valid")
    }

    fn grants(list: &[&str]) -> TopicGrants {
        TopicGrants::parse(list.iter().copied()).expect("valid")
    }

    #[test]
    fn an_exact_grant_allows_only_its_topic() {
        let grants = grants(&["room:42"]);

        assert!(grants.allows(&topic("room:42")));
        assert!(!grants.allows(&topic("room:43")));
        assert!(!grants.allows(&topic("room:420")));
    }

    #[test]
    fn a_namespace_grant_allows_every_topic_of_that_namespace_only() {
        let grants = grants(&["room:*"]);

        assert!(grants.allows(&topic("room:42")));
        assert!(grants.allows(&topic("room:lobby:7")));
        assert!(!grants.allows(&topic("roomy:1")));
        assert!(!grants.allows(&topic("room")));
        assert!(!grants.allows(&topic("ticker:AAPL")));
    }

    #[test]
    fn a_star_allows_everything_and_no_grants_allow_nothing() {
        assert!(grants(&["*"]).allows(&topic("anything:at-all")));
        assert!(!grants(&[]).allows(&topic("room:1")));
    }

    #[test]
    fn a_wildcard_anywhere_else_is_refused_by_position() {
        for bad in ["room*", "ro*m:1", "a:b:*", "*:*", "room:4*"] {
            let error = TopicGrants::parse(["room:1", bad]).expect_err(bad);
            assert_eq!(error, GrantError::MisplacedWildcard { index: 1 }, "{bad}");
        }
    }

    #[test]
    fn an_invalid_grant_names_its_position_and_the_rule() {
        let error = TopicGrants::parse(["ok", "bad\u{7}topic"]).expect_err("control");

        assert!(error.to_string().starts_with("grant 1: "), "{error}");
        assert!(matches!(error, GrantError::Invalid { index: 1, .. }));
        assert!(TopicGrants::parse([""]).is_err());
        assert!(TopicGrants::parse([":*"]).is_err());
    }

    #[test]
    fn too_many_grants_are_refused() {
        let many = (0..MAX_TOPIC_GRANTS + 10).map(|i| format!("room:{i}"));

        assert_eq!(
            TopicGrants::parse(many),
            Err(GrantError::TooMany {
                given: MAX_TOPIC_GRANTS + 10,
                max: MAX_TOPIC_GRANTS
            })
        );
    }

    #[test]
    fn grants_round_trip_through_their_strings() {
        let grants = grants(&["room:*", "ticker:AAPL", "*", "room:*"]);

        assert_eq!(grants.to_strings(), ["room:*", "ticker:AAPL", "*"]);
        let json = serde_json::to_string(&grants).expect("serialize");
        assert_eq!(
            serde_json::from_str::<TopicGrants>(&json).expect("parse"),
            grants
        );
    }
}
