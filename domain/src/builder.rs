//! A typed builder for notification requests, for Rust producers.
//!
//! ```
//! use serde::Serialize;
//! use wspush_domain::{ConnectionId, ExternalId, NotificationRequest, UserId};
//!
//! #[derive(Serialize)]
//! struct ChatMessage<'a> {
//!     r#type: &'a str,
//!     text: &'a str,
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let request = NotificationRequest::builder()
//!     .to_topics([ExternalId::parse("room:42")?])
//!     .except_connections([ConnectionId::parse("L0SM9cOFvHcCIhw=")?])
//!     .data(&ChatMessage { r#type: "message", text: "hi" })
//!     .build()?;
//! assert_eq!(
//!     request.to_json(),
//!     r#"{"topics":["room:42"],"exclude_connections":["L0SM9cOFvHcCIhw="],"data":{"type":"message","text":"hi"}}"#
//! );
//!
//! // A broadcast must say so: a builder with no audience is an error, not a broadcast.
//! let everyone = NotificationRequest::builder()
//!     .broadcast()
//!     .except_users([UserId::parse("u-1")?])
//!     .data(&"maintenance at 22:00")
//!     .build()?;
//! assert!(everyone.is_broadcast());
//! # Ok(())
//! # }
//! ```

use serde::Serialize;
use serde_json::json;

use crate::ids::{ConnectionId, ExternalId, UserId};
use crate::notification::{NotificationRequest, RequestError};

/// Why a builder could not make a request.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Neither an audience nor [`RequestBuilder::broadcast`] was given.
    #[error("the request has no audience: name users, topics or connections, or call broadcast()")]
    NoAudience,
    /// [`RequestBuilder::broadcast`] was called together with an audience.
    #[error("broadcast() cannot be combined with users, topics or connections")]
    BroadcastWithAudience,
    /// [`RequestBuilder::data`] was not called.
    #[error("the request has no data")]
    NoData,
    /// The data could not be serialized to JSON.
    #[error("the data cannot be serialized to JSON: {0}")]
    Data(#[source] serde_json::Error),
    /// The request breaks a rule of the format (data too large or too deep, for instance).
    #[error(transparent)]
    Invalid(#[from] RequestError),
}

/// Builds a [`NotificationRequest`] from typed IDs; see the module docs.
#[derive(Debug, Default)]
#[must_use]
pub struct RequestBuilder {
    users: Vec<UserId>,
    topics: Vec<ExternalId>,
    connections: Vec<ConnectionId>,
    exclude_users: Vec<UserId>,
    exclude_connections: Vec<ConnectionId>,
    broadcast: bool,
    data: Option<Result<String, serde_json::Error>>,
}

impl RequestBuilder {
    /// Adds users whose connections receive the request.
    pub fn to_users(mut self, users: impl IntoIterator<Item = UserId>) -> Self {
        self.users.extend(users);
        self
    }

    /// Adds external IDs whose subscribers receive the request.
    pub fn to_topics(mut self, topics: impl IntoIterator<Item = ExternalId>) -> Self {
        self.topics.extend(topics);
        self
    }

    /// Adds connections that receive the request.
    pub fn to_connections(mut self, connections: impl IntoIterator<Item = ConnectionId>) -> Self {
        self.connections.extend(connections);
        self
    }

    /// Sends the request to every connection (excluded ones aside).
    pub fn broadcast(mut self) -> Self {
        self.broadcast = true;
        self
    }

    /// Users who never receive the request.
    pub fn except_users(mut self, users: impl IntoIterator<Item = UserId>) -> Self {
        self.exclude_users.extend(users);
        self
    }

    /// Connections that never receive the request.
    pub fn except_connections(
        mut self,
        connections: impl IntoIterator<Item = ConnectionId>,
    ) -> Self {
        self.exclude_connections.extend(connections);
        self
    }

    /// The payload, serialized to JSON now.
    pub fn data<T: Serialize + ?Sized>(mut self, data: &T) -> Self {
        self.data = Some(serde_json::to_string(data));
        self
    }

    /// The request, validated by the same rules as a parsed one.
    pub fn build(self) -> Result<NotificationRequest, BuildError> {
        let has_audience =
            !(self.users.is_empty() && self.topics.is_empty() && self.connections.is_empty());
        match (has_audience, self.broadcast) {
            (false, false) => return Err(BuildError::NoAudience),
            (true, true) => return Err(BuildError::BroadcastWithAudience),
            _ => {}
        }
        let data = self
            .data
            .ok_or(BuildError::NoData)?
            .map_err(BuildError::Data)?;
        let mut fields = serde_json::Map::new();
        for (name, ids) in [
            ("users", texts(&self.users)),
            ("topics", texts(&self.topics)),
            ("connections", texts(&self.connections)),
            ("exclude_users", texts(&self.exclude_users)),
            ("exclude_connections", texts(&self.exclude_connections)),
        ] {
            if !ids.is_empty() {
                fields.insert(name.to_owned(), json!(ids));
            }
        }
        let mut text = serde_json::Value::Object(fields).to_string();
        // Splice the data in as written, so its key order and numbers are kept.
        text.pop();
        if text.len() > 1 {
            text.push(',');
        }
        text.push_str("\"data\":");
        text.push_str(&data);
        text.push('}');
        Ok(NotificationRequest::parse(&text)?)
    }
}

fn texts<T: AsRef<str>>(ids: &[T]) -> Vec<&str> {
    ids.iter().map(AsRef::as_ref).collect()
}

impl NotificationRequest {
    /// A typed builder; see [`crate::builder`].
    pub fn builder() -> RequestBuilder {
        RequestBuilder::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MAX_PAYLOAD_BYTES;

    fn user(id: &str) -> UserId {
        UserId::parse(id).expect("valid")
    }

    #[test]
    fn a_builder_without_an_audience_is_an_error_rather_than_a_broadcast() {
        let result = NotificationRequest::builder().data(&1).build();

        assert!(matches!(result, Err(BuildError::NoAudience)));
    }

    #[test]
    fn broadcast_with_an_audience_is_an_error() {
        let result = NotificationRequest::builder()
            .broadcast()
            .to_users([user("u")])
            .data(&1)
            .build();

        assert!(matches!(result, Err(BuildError::BroadcastWithAudience)));
    }

    #[test]
    fn a_builder_without_data_is_an_error() {
        let result = NotificationRequest::builder().to_users([user("u")]).build();

        assert!(matches!(result, Err(BuildError::NoData)));
    }

    #[test]
    fn oversized_data_is_rejected_at_the_producer() {
        let result = NotificationRequest::builder()
            .broadcast()
            .data(&"x".repeat(MAX_PAYLOAD_BYTES))
            .build();

        assert!(matches!(
            result,
            Err(BuildError::Invalid(RequestError::PayloadTooLarge { .. }))
        ));
    }

    #[test]
    fn null_data_is_rejected_at_the_producer() {
        let result = NotificationRequest::builder()
            .broadcast()
            .data(&Option::<u8>::None)
            .build();

        assert!(matches!(
            result,
            Err(BuildError::Invalid(RequestError::NullData))
        ));
    }

    #[test]
    fn a_built_request_round_trips_through_the_wire_format() {
        let request = NotificationRequest::builder()
            .to_users([user("a"), user("b")])
            .to_connections([ConnectionId::parse("c1").expect("valid")])
            .except_users([user("b")])
            .data(&json!({"z": 1, "a": [true]}))
            .build()
            .expect("valid");

        let parsed = NotificationRequest::parse(&request.to_json()).expect("parses");

        assert_eq!(parsed, request);
        assert_eq!(request.payload(), r#"{"a":[true],"z":1}"#);
    }
}
