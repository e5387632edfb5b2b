//! Notification requests: the pusher's input.
//!
//! The format is a superset of the Python pusher's, so its producers keep working:
//!
//! ```json
//! {"users": ["u-1"], "topics": ["room:42"], "connections": ["L0SM9cOFvHcCIhw="],
//!  "exclude_users": ["u-2"], "exclude_connections": ["Xk2Pz1OFvHcAbc="],
//!  "data": {"type": "notification", "text": "hi"}}
//! ```
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `users` | array of user IDs, or `null` | every connection of these users |
//! | `topics` | array of external IDs, or `null` | every connection subscribed to one of them |
//! | `connections` | array of connection IDs, or `null` | these connections |
//! | `exclude_users` | array of user IDs, or `null` | never these users' connections; no size cap |
//! | `exclude_connections` | array of connection IDs, or `null` | never these connections; no size cap |
//! | `data` | any JSON value but `null`; required | sent to each connection as its compact JSON text, at most 128 KB |
//!
//! The audience is the union of `users`, `topics` and `connections`; when all three are absent
//! or empty the request is a broadcast. Exclusions win over inclusion. Duplicate IDs in a list
//! are dropped (each connection gets the request at most once anyway).
//!
//! Unknown fields are errors, so that a typo such as `"user"` can never turn a multicast into
//! a broadcast; so are duplicate fields, wrong types, invalid IDs and oversized payloads. Every
//! error names the field.

use std::collections::HashSet;
use std::fmt;
use std::hash::Hash;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ids::{ConnectionId, ExternalId, IdError, UserId};
use crate::limits::MAX_PAYLOAD_BYTES;

/// How deeply `data` may nest arrays and objects (serde_json's own recursion limit, which
/// it does not apply to raw values).
pub const MAX_DATA_DEPTH: usize = 128;

/// The fields a notification request may have.
pub const FIELDS: [&str; 6] = [
    "users",
    "topics",
    "connections",
    "exclude_users",
    "exclude_connections",
    "data",
];

/// Why a notification request was rejected. Every variant names the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The text is not JSON.
    #[error("request is not valid JSON: {0}")]
    Syntax(#[source] serde_json::Error),
    /// The JSON is not an object.
    #[error("request must be a JSON object")]
    NotAnObject,
    /// A field that is not part of the format.
    #[error(
        "unknown field `{field}`; expected one of users, topics, connections, exclude_users, exclude_connections, data"
    )]
    UnknownField {
        /// The field's name as given.
        field: String,
    },
    /// A field given twice.
    #[error("field `{field}` is given more than once")]
    DuplicateField {
        /// The field's name.
        field: String,
    },
    /// `data` is absent.
    #[error("missing field `data`")]
    MissingData,
    /// `data` is `null`.
    #[error("field `data` must not be null")]
    NullData,
    /// A field of the wrong JSON type.
    #[error("field `{field}` must be {expected}: {source}")]
    WrongType {
        /// The field's name.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
        /// The parser's words.
        #[source]
        source: serde_json::Error,
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
    /// `data` nests arrays and objects deeper than [`MAX_DATA_DEPTH`].
    #[error("field `data` nests arrays and objects deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// `data` is larger than API Gateway accepts.
    #[error("field `data` is {len} bytes as compact JSON; API Gateway accepts at most {max}")]
    PayloadTooLarge {
        /// Its size as compact JSON.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl RequestError {
    /// The field at fault, if the error is about one field.
    pub fn field(&self) -> Option<&str> {
        match self {
            RequestError::Syntax(_) | RequestError::NotAnObject => None,
            RequestError::UnknownField { field } | RequestError::DuplicateField { field } => {
                Some(field)
            }
            RequestError::MissingData
            | RequestError::NullData
            | RequestError::TooDeep { .. }
            | RequestError::PayloadTooLarge { .. } => Some("data"),
            RequestError::WrongType { field, .. } | RequestError::InvalidId { field, .. } => {
                Some(field)
            }
        }
    }
}

/// A validated notification request. Build it with [`NotificationRequest::parse`].
#[derive(Debug, Clone)]
pub struct NotificationRequest {
    users: Vec<UserId>,
    topics: Vec<ExternalId>,
    connections: Vec<ConnectionId>,
    exclude_users: Vec<UserId>,
    exclude_connections: Vec<ConnectionId>,
    data: Box<RawValue>,
}

impl PartialEq for NotificationRequest {
    fn eq(&self, other: &Self) -> bool {
        self.users == other.users
            && self.topics == other.topics
            && self.connections == other.connections
            && self.exclude_users == other.exclude_users
            && self.exclude_connections == other.exclude_connections
            && self.data.get() == other.data.get()
    }
}

impl NotificationRequest {
    /// Parses and validates a request from its JSON text.
    pub fn parse(json: &str) -> Result<Self, RequestError> {
        if !json.trim_start().starts_with('{') {
            // Still report broken JSON as a syntax error, not as a wrong shape.
            serde_json::from_str::<de::IgnoredAny>(json).map_err(RequestError::Syntax)?;
            return Err(RequestError::NotAnObject);
        }
        let fields: RawFields = serde_json::from_str(json).map_err(RequestError::Syntax)?;
        Self::from_fields(fields.0)
    }

    /// Parses and validates a request from JSON bytes, which must be UTF-8.
    pub fn parse_slice(json: &[u8]) -> Result<Self, RequestError> {
        match std::str::from_utf8(json) {
            Ok(text) => Self::parse(text),
            // Let the JSON parser describe where the bad byte is.
            Err(_) => Err(RequestError::Syntax(
                serde_json::from_slice::<de::IgnoredAny>(json)
                    .err()
                    .unwrap_or_else(|| de::Error::custom("request is not UTF-8")),
            )),
        }
    }

    fn from_fields(fields: Vec<(String, Box<RawValue>)>) -> Result<Self, RequestError> {
        let mut seen: Vec<&'static str> = Vec::with_capacity(fields.len());
        let mut request = Self {
            users: Vec::new(),
            topics: Vec::new(),
            connections: Vec::new(),
            exclude_users: Vec::new(),
            exclude_connections: Vec::new(),
            data: RawValue::from_string("null".to_owned()).map_err(RequestError::Syntax)?,
        };
        for (name, value) in fields {
            let Some(&field) = FIELDS.iter().find(|known| **known == name) else {
                return Err(RequestError::UnknownField { field: name });
            };
            if seen.contains(&field) {
                return Err(RequestError::DuplicateField { field: name });
            }
            seen.push(field);
            match field {
                "users" => request.users = id_list(field, &value, UserId::parse)?,
                "topics" => request.topics = id_list(field, &value, ExternalId::parse)?,
                "connections" => request.connections = id_list(field, &value, ConnectionId::parse)?,
                "exclude_users" => request.exclude_users = id_list(field, &value, UserId::parse)?,
                "exclude_connections" => {
                    request.exclude_connections = id_list(field, &value, ConnectionId::parse)?
                }
                _ => request.data = compact_data(&value)?,
            }
        }
        if !seen.contains(&"data") {
            return Err(RequestError::MissingData);
        }
        Ok(request)
    }

    /// The users whose connections are targeted.
    pub fn users(&self) -> &[UserId] {
        &self.users
    }

    /// The external IDs whose subscribers are targeted.
    pub fn topics(&self) -> &[ExternalId] {
        &self.topics
    }

    /// The connections targeted by ID.
    pub fn connections(&self) -> &[ConnectionId] {
        &self.connections
    }

    /// Users who never receive this request.
    pub fn exclude_users(&self) -> &[UserId] {
        &self.exclude_users
    }

    /// Connections that never receive this request.
    pub fn exclude_connections(&self) -> &[ConnectionId] {
        &self.exclude_connections
    }

    /// Whether the request goes to every connection (no users, topics or connections given).
    pub fn is_broadcast(&self) -> bool {
        self.users.is_empty() && self.topics.is_empty() && self.connections.is_empty()
    }

    /// The payload each connection receives: `data` as compact JSON text.
    pub fn payload(&self) -> &str {
        self.data.get()
    }

    /// The request as JSON text in the documented format (empty lists are left out).
    pub fn to_json(&self) -> String {
        // Serializing IDs and a raw value cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Serialize for NotificationRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (name, list) in [
            ("users", as_strs(&self.users)),
            ("topics", as_strs(&self.topics)),
            ("connections", as_strs(&self.connections)),
            ("exclude_users", as_strs(&self.exclude_users)),
            ("exclude_connections", as_strs(&self.exclude_connections)),
        ] {
            if !list.is_empty() {
                map.serialize_entry(name, &list)?;
            }
        }
        map.serialize_entry("data", &self.data)?;
        map.end()
    }
}

fn as_strs<T: AsRef<str>>(ids: &[T]) -> Vec<&str> {
    ids.iter().map(AsRef::as_ref).collect()
}

fn id_list<T: Hash + Eq + Clone>(
    field: &'static str,
    value: &RawValue,
    parse: fn(String) -> Result<T, IdError>,
) -> Result<Vec<T>, RequestError> {
    let raw: Option<Vec<String>> =
        serde_json::from_str(value.get()).map_err(|source| RequestError::WrongType {
            field,
            expected: "an array of strings or null",
            source,
        })?;
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    for (index, text) in raw.unwrap_or_default().into_iter().enumerate() {
        let id = parse(text).map_err(|source| RequestError::InvalidId {
            field,
            index,
            source,
        })?;
        if seen.insert(id.clone()) {
            ids.push(id);
        }
    }
    Ok(ids)
}

fn compact_data(value: &RawValue) -> Result<Box<RawValue>, RequestError> {
    let compact = compact_json(value.get(), MAX_DATA_DEPTH).ok_or(RequestError::TooDeep {
        max: MAX_DATA_DEPTH,
    })?;
    if compact == "null" {
        return Err(RequestError::NullData);
    }
    if compact.len() > MAX_PAYLOAD_BYTES {
        return Err(RequestError::PayloadTooLarge {
            len: compact.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    RawValue::from_string(compact).map_err(RequestError::Syntax)
}

/// Removes the insignificant whitespace from valid JSON text, keeping everything else
/// byte for byte (key order, number spelling, escapes). `None` if arrays and objects nest
/// deeper than `max_depth`.
fn compact_json(json: &str, max_depth: usize) -> Option<String> {
    let mut out = String::with_capacity(json.len());
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            match c {
                '"' => in_string = true,
                '[' | '{' => {
                    depth += 1;
                    if depth > max_depth {
                        return None;
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            out.push(c);
        }
    }
    Some(out)
}

/// The top-level fields in the order given, duplicates kept so that they can be rejected
/// (serde_json's own maps silently keep the last one).
struct RawFields(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for RawFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = RawFields;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a notification request object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFields, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    fields.push(entry);
                }
                Ok(RawFields(fields))
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::IdKind;

    fn parse(json: &str) -> NotificationRequest {
        NotificationRequest::parse(json).expect("valid request")
    }

    fn reject(json: &str) -> RequestError {
        NotificationRequest::parse(json).expect_err("invalid request")
    }

    #[test]
    fn a_python_pusher_multicast_parses_with_its_users() {
        let request = parse(r#"{"users": ["u-1", "u-2"], "data": {"type": "notification"}}"#);

        assert_eq!(
            request
                .users()
                .iter()
                .map(UserId::as_str)
                .collect::<Vec<_>>(),
            ["u-1", "u-2"]
        );
        assert!(!request.is_broadcast());
    }

    #[test]
    fn a_request_with_only_data_is_a_broadcast() {
        assert!(parse(r#"{"data": {"type": "announcement"}}"#).is_broadcast());
    }

    #[test]
    fn empty_and_null_audience_lists_are_a_broadcast() {
        let request = parse(r#"{"users": [], "topics": null, "connections": [], "data": 1}"#);

        assert!(request.is_broadcast());
    }

    #[test]
    fn a_request_with_only_exclusions_is_a_broadcast_with_exclusions() {
        let request = parse(r#"{"exclude_users": ["u-1"], "data": {"status": "OFFLINE"}}"#);

        assert!(request.is_broadcast());
        assert_eq!(request.exclude_users()[0].as_str(), "u-1");
    }

    #[test]
    fn topics_connections_and_exclusions_are_all_read() {
        let request = parse(
            r#"{"topics":["room:42"],"connections":["c1"],"exclude_connections":["L0SM9cOFvHcCIhw="],"data":"x"}"#,
        );

        assert_eq!(request.topics()[0].as_str(), "room:42");
        assert_eq!(request.connections()[0].as_str(), "c1");
        assert_eq!(
            request.exclude_connections()[0].as_str(),
            "L0SM9cOFvHcCIhw="
        );
    }

    #[test]
    fn a_typo_in_a_field_name_is_rejected_instead_of_becoming_a_broadcast() {
        let error = reject(r#"{"user": ["u-1"], "data": {}}"#);

        assert!(matches!(&error, RequestError::UnknownField { field } if field == "user"));
        assert_eq!(error.field(), Some("user"));
        assert!(error.to_string().contains("unknown field `user`"));
    }

    #[test]
    fn a_request_without_data_is_rejected_naming_data() {
        let error = reject(r#"{"users": ["u-1"]}"#);

        assert!(matches!(error, RequestError::MissingData));
        assert_eq!(error.field(), Some("data"));
    }

    #[test]
    fn null_data_is_rejected() {
        assert!(matches!(
            reject(r#"{"data": null}"#),
            RequestError::NullData
        ));
    }

    #[test]
    fn a_field_given_twice_is_rejected_rather_than_silently_overwritten() {
        let error = reject(r#"{"users": ["a"], "users": [], "data": 1}"#);

        assert!(matches!(error, RequestError::DuplicateField { field } if field == "users"));
    }

    #[test]
    fn a_string_where_an_array_belongs_names_the_field() {
        let error = reject(r#"{"users": "u-1", "data": 1}"#);

        assert!(matches!(
            error,
            RequestError::WrongType { field: "users", .. }
        ));
        assert!(
            error
                .to_string()
                .starts_with("field `users` must be an array")
        );
    }

    #[test]
    fn a_number_inside_an_id_list_names_the_field() {
        let error = reject(r#"{"exclude_connections": ["c1", 7], "data": 1}"#);

        assert_eq!(error.field(), Some("exclude_connections"));
    }

    #[test]
    fn an_invalid_id_names_the_field_its_position_and_the_rule() {
        let error = reject(r#"{"users": ["ok", ""], "data": 1}"#);

        assert!(matches!(
            error,
            RequestError::InvalidId {
                field: "users",
                index: 1,
                source: IdError::Empty { kind: IdKind::User }
            }
        ));
        assert_eq!(
            error.to_string(),
            "field `users[1]`: user ID must not be empty"
        );
    }

    #[test]
    fn a_connection_id_with_a_control_character_is_rejected() {
        let error = reject("{\"connections\": [\"c\\u0007\"], \"data\": 1}");

        assert!(matches!(
            error,
            RequestError::InvalidId {
                field: "connections",
                index: 0,
                ..
            }
        ));
    }

    #[test]
    fn data_is_kept_as_its_compact_json_text_in_the_given_key_order() {
        let request = parse(
            "{\"data\": {\"z\": 1,\n \"a\": [1.50, \"two words\", {\"q\": \"say \\\"hi\\\" \"}]}}",
        );

        assert_eq!(
            request.payload(),
            r#"{"z":1,"a":[1.50,"two words",{"q":"say \"hi\" "}]}"#
        );
    }

    #[test]
    fn a_string_data_is_sent_as_a_json_string() {
        assert_eq!(parse(r#"{"data": "hello"}"#).payload(), r#""hello""#);
    }

    #[test]
    fn data_of_exactly_128_kb_is_accepted_and_one_byte_more_is_rejected() {
        // A JSON string of n bytes including its two quotes.
        let of_size = |n: usize| format!(r#"{{"data": "{}"}}"#, "x".repeat(n - 2));

        assert_eq!(
            parse(&of_size(MAX_PAYLOAD_BYTES)).payload().len(),
            MAX_PAYLOAD_BYTES
        );
        let error = reject(&of_size(MAX_PAYLOAD_BYTES + 1));
        assert!(matches!(
            error,
            RequestError::PayloadTooLarge { len, max } if len == MAX_PAYLOAD_BYTES + 1 && max == MAX_PAYLOAD_BYTES
        ));
        assert_eq!(error.field(), Some("data"));
    }

    #[test]
    fn whitespace_does_not_count_towards_the_payload_limit() {
        let padded = format!(r#"{{"data": [1{}]}}"#, " ".repeat(MAX_PAYLOAD_BYTES));

        assert_eq!(parse(&padded).payload(), "[1]");
    }

    #[test]
    fn broken_json_is_a_syntax_error() {
        assert!(matches!(reject(r#"{"data": "#), RequestError::Syntax(_)));
        assert!(matches!(reject("not json"), RequestError::Syntax(_)));
    }

    #[test]
    fn a_json_array_is_not_a_request() {
        assert!(matches!(reject("[1, 2]"), RequestError::NotAnObject));
    }

    #[test]
    fn invalid_utf8_is_a_syntax_error_not_a_panic() {
        let error = NotificationRequest::parse_slice(b"{\"data\": \"\xff\"}").unwrap_err();

        assert!(matches!(error, RequestError::Syntax(_)));
    }

    #[test]
    fn deeply_nested_data_is_rejected_without_overflowing_the_stack() {
        let nested =
            |depth: usize| format!(r#"{{"data": {}{}}}"#, "[".repeat(depth), "]".repeat(depth));

        assert!(NotificationRequest::parse(&nested(MAX_DATA_DEPTH)).is_ok());
        assert!(matches!(
            NotificationRequest::parse(&nested(100_000)),
            Err(RequestError::TooDeep {
                max: MAX_DATA_DEPTH
            })
        ));
    }

    #[test]
    fn brackets_inside_strings_do_not_count_as_nesting() {
        let text = format!(r#"{{"data": "{}"}}"#, "[".repeat(1_000));

        assert!(NotificationRequest::parse(&text).is_ok());
    }

    #[test]
    fn duplicate_ids_in_a_list_are_kept_once_in_first_seen_order() {
        let request = parse(r#"{"users": ["b", "a", "b", "a"], "data": 1}"#);

        assert_eq!(
            request
                .users()
                .iter()
                .map(UserId::as_str)
                .collect::<Vec<_>>(),
            ["b", "a"]
        );
    }

    #[test]
    fn a_request_serializes_back_to_the_format_it_was_parsed_from() {
        let text = r#"{"users":["u-1"],"exclude_connections":["c9"],"data":{"k":[1,2]}}"#;

        let request = parse(text);

        assert_eq!(request.to_json(), text);
        assert_eq!(parse(&request.to_json()), request);
    }
}
