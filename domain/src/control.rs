//! Control requests: what a backend asks of its users' connections, as a sibling of a
//! notification request on the same queue.
//!
//! ```json
//! {"action": "disconnect",  "users": ["ana"], "connections": ["L0SM9cOFvHcCIhw="]}
//! {"action": "subscribe",   "users": ["ana"], "topics": ["room:42"]}
//! {"action": "unsubscribe", "users": ["ana"], "topics": ["room:42"]}
//! ```
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `action` | `disconnect`, `subscribe` or `unsubscribe`; required | what to do |
//! | `users` | array of user IDs, or `null` | every live connection of these users |
//! | `connections` | array of connection IDs, or `null` | these connections, if live |
//! | `topics` | array of external IDs; required for `subscribe` and `unsubscribe` only | the topics |
//! | `id` | request ID, or `null` | for the logs |
//!
//! The targets are the union of `users` and `connections`, and at least one of them must
//! name someone: a control request never acts on every connection. A backend's
//! `subscribe` is its own decision, so the client subscription policy does not apply to it.
//! Unknown fields, wrong types and invalid IDs are errors naming the field, as in a
//! notification request.

use serde_json::{Map, Value};

use crate::ids::{ConnectionId, ExternalId, IdError, RequestId, UserId};

/// The most users plus connections one control request may name.
pub const MAX_CONTROL_TARGETS: usize = 1000;

/// The most topics one control `subscribe` or `unsubscribe` may name.
pub const MAX_CONTROL_TOPICS: usize = 100;

/// What a control request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlAction {
    /// Close the connections (`DELETE @connections`) and forget them.
    Disconnect,
    /// Subscribe the connections to `topics`.
    Subscribe,
    /// Unsubscribe the connections from `topics`.
    Unsubscribe,
}

impl ControlAction {
    /// The action's name in the request.
    pub fn as_str(self) -> &'static str {
        match self {
            ControlAction::Disconnect => "disconnect",
            ControlAction::Subscribe => "subscribe",
            ControlAction::Unsubscribe => "unsubscribe",
        }
    }
}

/// A validated control request. Build it with [`ControlRequest::parse`] or
/// [`ControlRequest::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlRequest {
    action: ControlAction,
    users: Vec<UserId>,
    connections: Vec<ConnectionId>,
    topics: Vec<ExternalId>,
    id: Option<RequestId>,
}

/// Why a control request was rejected. Every variant names the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The text is not JSON.
    #[error("control request is not valid JSON: {0}")]
    Syntax(#[source] serde_json::Error),
    /// The JSON is not an object.
    #[error("control request must be a JSON object")]
    NotAnObject,
    /// A field that is not part of the format (for the action).
    #[error("unknown field `{field}` for action `{action}`; expected one of {expected}")]
    UnknownField {
        /// The field's name as given.
        field: String,
        /// The action.
        action: &'static str,
        /// The fields the action takes.
        expected: &'static str,
    },
    /// `action` is absent or not a string.
    #[error("field `action` must be one of disconnect, subscribe, unsubscribe")]
    MissingAction,
    /// `action` names something else.
    #[error(
        "field `action`: unknown action `{0}`; expected disconnect, subscribe or unsubscribe (occupancy is read-only: ask the CLI or the local gateway)"
    )]
    UnknownAction(String),
    /// A field of the wrong JSON type.
    #[error("field `{field}` must be {expected}")]
    WrongType {
        /// The field's name.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// An ID in a list broke its rules.
    #[error("field `{field}[{index}]`: {source}")]
    InvalidId {
        /// The list's name.
        field: &'static str,
        /// The position in the list.
        index: usize,
        /// The rule broken.
        #[source]
        source: IdError,
    },
    /// `id` broke the request ID rules.
    #[error("field `id`: {0}")]
    InvalidRequestId(#[source] IdError),
    /// Neither `users` nor `connections` names anyone.
    #[error(
        "field `users` (or `connections`) must name at least one target: a control request never acts on every connection"
    )]
    NoTargets,
    /// Too many users and connections.
    #[error("fields `users` and `connections` name {given} targets; at most {max} per request")]
    TooManyTargets {
        /// How many were named.
        given: usize,
        /// The limit.
        max: usize,
    },
    /// `subscribe` or `unsubscribe` without topics.
    #[error("field `topics` must name at least one topic for `{0}`")]
    NoTopics(&'static str),
    /// Too many topics.
    #[error("field `topics` names {given} topics; at most {max} per request")]
    TooManyTopics {
        /// How many were named.
        given: usize,
        /// The limit.
        max: usize,
    },
}

impl ControlError {
    /// The field at fault, if the error is about one field (an unknown field's own name).
    pub fn field(&self) -> Option<&str> {
        match self {
            ControlError::Syntax(_) | ControlError::NotAnObject => None,
            ControlError::UnknownField { field, .. } => Some(field),
            ControlError::MissingAction | ControlError::UnknownAction(_) => Some("action"),
            ControlError::WrongType { field, .. } | ControlError::InvalidId { field, .. } => {
                Some(field)
            }
            ControlError::InvalidRequestId(_) => Some("id"),
            ControlError::NoTargets | ControlError::TooManyTargets { .. } => Some("users"),
            ControlError::NoTopics(_) | ControlError::TooManyTopics { .. } => Some("topics"),
        }
    }
}

/// Whether `text` is a control request rather than a notification request: a JSON object
/// with an `action` field (which the notification format does not have). Cheap: only the
/// top-level keys are looked at, and only when the text mentions `"action"`.
pub fn is_control_request(text: &str) -> bool {
    if !text.contains("\"action\"") {
        return false;
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        action: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Probe>(text).is_ok_and(|probe| probe.action.is_some())
}

impl ControlRequest {
    /// A request made in code (the CLI's, the local gateway's). Validated as a parsed one.
    pub fn new(
        action: ControlAction,
        users: Vec<UserId>,
        connections: Vec<ConnectionId>,
        topics: Vec<ExternalId>,
    ) -> Result<Self, ControlError> {
        let request = Self {
            action,
            users,
            connections,
            topics,
            id: None,
        };
        request.check()?;
        Ok(request)
    }

    /// Parses and validates a request from its JSON text.
    pub fn parse(text: &str) -> Result<Self, ControlError> {
        let value: Value = serde_json::from_str(text).map_err(ControlError::Syntax)?;
        let Value::Object(fields) = value else {
            return Err(ControlError::NotAnObject);
        };
        Self::from_fields(fields)
    }

    fn from_fields(fields: Map<String, Value>) -> Result<Self, ControlError> {
        let action = match fields.get("action") {
            Some(Value::String(name)) => match name.as_str() {
                "disconnect" => ControlAction::Disconnect,
                "subscribe" => ControlAction::Subscribe,
                "unsubscribe" => ControlAction::Unsubscribe,
                other => return Err(ControlError::UnknownAction(other.to_owned())),
            },
            _ => return Err(ControlError::MissingAction),
        };
        let expected = match action {
            ControlAction::Disconnect => "action, users, connections, id",
            ControlAction::Subscribe | ControlAction::Unsubscribe => {
                "action, users, connections, topics, id"
            }
        };
        for field in fields.keys() {
            let known = matches!(field.as_str(), "action" | "users" | "connections" | "id")
                || (field == "topics" && action != ControlAction::Disconnect);
            if !known {
                return Err(ControlError::UnknownField {
                    field: field.clone(),
                    action: action.as_str(),
                    expected,
                });
            }
        }
        let id = match fields.get("id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => {
                Some(RequestId::parse(id.clone()).map_err(ControlError::InvalidRequestId)?)
            }
            Some(_) => {
                return Err(ControlError::WrongType {
                    field: "id",
                    expected: "a string or null",
                });
            }
        };
        let request = Self {
            action,
            users: ids(&fields, "users", UserId::parse)?,
            connections: ids(&fields, "connections", ConnectionId::parse)?,
            topics: ids(&fields, "topics", ExternalId::parse)?,
            id,
        };
        request.check()?;
        Ok(request)
    }

    fn check(&self) -> Result<(), ControlError> {
        let targets = self.users.len() + self.connections.len();
        if targets == 0 {
            return Err(ControlError::NoTargets);
        }
        if targets > MAX_CONTROL_TARGETS {
            return Err(ControlError::TooManyTargets {
                given: targets,
                max: MAX_CONTROL_TARGETS,
            });
        }
        match self.action {
            ControlAction::Disconnect if !self.topics.is_empty() => {
                return Err(ControlError::UnknownField {
                    field: "topics".to_owned(),
                    action: self.action.as_str(),
                    expected: "action, users, connections, id",
                });
            }
            ControlAction::Disconnect => {}
            ControlAction::Subscribe | ControlAction::Unsubscribe => {
                if self.topics.is_empty() {
                    return Err(ControlError::NoTopics(self.action.as_str()));
                }
                if self.topics.len() > MAX_CONTROL_TOPICS {
                    return Err(ControlError::TooManyTopics {
                        given: self.topics.len(),
                        max: MAX_CONTROL_TOPICS,
                    });
                }
            }
        }
        Ok(())
    }

    /// What to do.
    pub fn action(&self) -> ControlAction {
        self.action
    }

    /// The users whose live connections are acted on.
    pub fn users(&self) -> &[UserId] {
        &self.users
    }

    /// The connections acted on, if live.
    pub fn connections(&self) -> &[ConnectionId] {
        &self.connections
    }

    /// The topics of a `subscribe` or `unsubscribe` (empty for `disconnect`).
    pub fn topics(&self) -> &[ExternalId] {
        &self.topics
    }

    /// The request's ID, if it has one.
    pub fn id(&self) -> Option<&RequestId> {
        self.id.as_ref()
    }

    /// The request as JSON text in the documented format.
    pub fn to_json(&self) -> String {
        let mut fields = Map::new();
        fields.insert("action".into(), self.action.as_str().into());
        let strs = |list: Vec<&str>| Value::from(list);
        if !self.users.is_empty() {
            fields.insert(
                "users".into(),
                strs(self.users.iter().map(UserId::as_str).collect()),
            );
        }
        if !self.connections.is_empty() {
            fields.insert(
                "connections".into(),
                strs(self.connections.iter().map(ConnectionId::as_str).collect()),
            );
        }
        if !self.topics.is_empty() {
            fields.insert(
                "topics".into(),
                strs(self.topics.iter().map(ExternalId::as_str).collect()),
            );
        }
        if let Some(id) = &self.id {
            fields.insert("id".into(), id.as_str().into());
        }
        Value::Object(fields).to_string()
    }
}

/// A list of IDs, each parsed with `parse`; absent or `null` is empty. Duplicates are
/// dropped, the first kept.
fn ids<T: PartialEq>(
    fields: &Map<String, Value>,
    field: &'static str,
    parse: impl Fn(String) -> Result<T, IdError>,
) -> Result<Vec<T>, ControlError> {
    let items = match fields.get(field) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ControlError::WrongType {
                field,
                expected: "an array of strings, or null",
            });
        }
    };
    let mut parsed: Vec<T> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let Value::String(text) = item else {
            return Err(ControlError::WrongType {
                field,
                expected: "an array of strings, or null",
            });
        };
        let id = parse(text.clone()).map_err(|source| ControlError::InvalidId {
            field,
            index,
            source,
        })?;
        if !parsed.contains(&id) {
            parsed.push(id);
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        ControlRequest::parse(text)
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn each_action_reads_its_fields() {
        let request = ControlRequest::parse(
            r#"{"action":"disconnect","users":["ana","ana"],"connections":["c1="]}"#,
        )
        .expect("valid");
        assert_eq!(request.action(), ControlAction::Disconnect);
        assert_eq!(request.users().len(), 1, "duplicates dropped");
        assert_eq!(request.connections()[0].as_str(), "c1=");
        let request = ControlRequest::parse(
            r#"{"action":"subscribe","users":["ana"],"topics":["room:42"],"id":"r-1"}"#,
        )
        .expect("valid");
        assert_eq!(request.topics()[0].as_str(), "room:42");
        assert_eq!(request.id().map(RequestId::as_str), Some("r-1"));
        assert_eq!(
            ControlRequest::parse(&request.to_json()).expect("round trip"),
            request
        );
    }

    #[test]
    fn a_request_without_targets_acts_on_nobody_and_is_refused() {
        for text in [
            r#"{"action":"disconnect"}"#,
            r#"{"action":"disconnect","users":[]}"#,
            r#"{"action":"disconnect","users":null,"connections":[]}"#,
            r#"{"action":"subscribe","topics":["room:1"]}"#,
        ] {
            assert!(
                error(text).contains("field `users`"),
                "{text}: {}",
                error(text)
            );
        }
    }

    #[test]
    fn bad_fields_are_named() {
        assert!(error(r#"{"action":"kick","users":["a"]}"#).contains("unknown action `kick`"));
        assert!(error(r#"{"users":["a"]}"#).contains("field `action`"));
        assert!(
            error(r#"{"action":"occupancy","users":["a"]}"#).contains("occupancy is read-only")
        );
        assert!(error(r#"{"action":"disconnect","user":["a"]}"#).contains("unknown field `user`"));
        assert!(
            error(r#"{"action":"disconnect","users":["a"],"topics":["t:1"]}"#)
                .contains("unknown field `topics`")
        );
        assert!(error(r#"{"action":"subscribe","users":["a"]}"#).contains("field `topics`"));
        assert!(
            error(r#"{"action":"subscribe","users":["a"],"topics":[]}"#).contains("field `topics`")
        );
        assert!(error(r#"{"action":"disconnect","users":"a"}"#).contains("field `users` must be"));
        assert!(error(r#"{"action":"disconnect","users":["a",""]}"#).contains("field `users[1]`"));
        assert!(
            error(r#"{"action":"disconnect","connections":["bad id"]}"#)
                .contains("field `connections[0]`")
        );
        assert!(error(r#"["disconnect"]"#).contains("JSON object"));
        assert!(error("{").contains("not valid JSON"));
    }

    #[test]
    fn a_request_made_in_code_is_held_to_the_same_rules() {
        let user = || vec![UserId::parse("ana").expect("valid")];
        let topics = vec![ExternalId::parse("room:1").expect("valid")];
        let error = ControlRequest::new(ControlAction::Disconnect, user(), vec![], topics.clone())
            .expect_err("topics on a disconnect");
        assert!(
            error.to_string().contains("unknown field `topics`"),
            "{error}"
        );
        assert!(ControlRequest::new(ControlAction::Subscribe, vec![], vec![], topics).is_err());
        assert!(ControlRequest::new(ControlAction::Subscribe, user(), vec![], vec![]).is_err());
    }

    #[test]
    fn the_targets_and_topics_are_bounded() {
        let users: Vec<String> = (0..=MAX_CONTROL_TARGETS).map(|i| format!("u{i}")).collect();
        let text = serde_json::json!({"action": "disconnect", "users": users}).to_string();
        assert!(error(&text).contains("at most 1000"));
        let topics: Vec<String> = (0..=MAX_CONTROL_TOPICS).map(|i| format!("t:{i}")).collect();
        let text = serde_json::json!({"action": "subscribe", "users": ["a"], "topics": topics})
            .to_string();
        assert!(error(&text).contains("at most 100"));
    }

    #[test]
    fn only_an_object_with_an_action_is_a_control_request() {
        assert!(is_control_request(
            r#"{"action":"disconnect","users":["a"]}"#
        ));
        assert!(!is_control_request(
            r#"{"users":["a"],"data":{"action":"x"}}"#
        ));
        assert!(!is_control_request(
            r#"{"users":["a"],"data":"\"action\""}"#
        ));
        assert!(!is_control_request("not json \"action\""));
    }
}
