//! Why a notification request was rejected: every variant names the field at fault.

use crate::ids::IdError;
use crate::segment::SegmentError;

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
        "unknown field `{field}`; expected one of users, topics, connections, broadcast, exclude_users, exclude_connections, data, id, segment, cursor, generation, positions"
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
    /// `data` nests arrays and objects deeper than [`MAX_DATA_DEPTH`](crate::notification::MAX_DATA_DEPTH).
    #[error("field `data` nests arrays and objects deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// `id` broke the request ID rules.
    #[error("field `id`: {0}")]
    InvalidRequestId(#[source] IdError),
    /// `segment` is out of range.
    #[error("field `segment`: {0}")]
    InvalidSegment(#[source] SegmentError),
    /// `segment` on a request that is no broadcast.
    #[error(
        "field `segment` applies to a broadcast only; remove `users`, `topics` and `connections` (even empty ones) and a `\"broadcast\": false`, or the segment"
    )]
    SegmentNeedsBroadcast,
    /// `"broadcast": true` together with `users`, `topics` or `connections`.
    #[error(
        "field `broadcast` is true, so `users`, `topics` and `connections` must be absent: a request is either a broadcast or names its audience"
    )]
    BroadcastWithAudience,
    /// `cursor` is empty, too long or holds control characters.
    #[error("field `cursor` must be 1 to {max} bytes without control characters, got {len} bytes")]
    InvalidCursor {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `cursor` on a request that reads more than one source.
    #[error(
        "field `cursor` needs exactly one source: one user, one topic, or a broadcast with a `segment`"
    )]
    CursorNeedsOneSource,
    /// `generation` is above [`MAX_GENERATION`](crate::limits::MAX_GENERATION).
    #[error("field `generation` must be at most {max}, got {value}")]
    GenerationTooHigh {
        /// The value given.
        value: u32,
        /// The limit.
        max: u32,
    },
    /// A stream or an epoch of `positions` broke its rules.
    #[error("field `positions[{stream:?}]`: {problem}")]
    InvalidPosition {
        /// The stream as given.
        stream: String,
        /// The rule broken.
        problem: String,
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
    /// The error in words that never quote the request: for logs, which must not hold
    /// message contents. (The parser's words for a wrong type can quote the value.)
    pub fn redacted(&self) -> String {
        match self {
            RequestError::WrongType {
                field, expected, ..
            } => format!("field `{field}` must be {expected}"),
            other => other.to_string(),
        }
    }

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
            RequestError::InvalidRequestId(_) => Some("id"),
            RequestError::InvalidSegment(_) | RequestError::SegmentNeedsBroadcast => {
                Some("segment")
            }
            RequestError::InvalidCursor { .. } | RequestError::CursorNeedsOneSource => {
                Some("cursor")
            }
            RequestError::GenerationTooHigh { .. } => Some("generation"),
            RequestError::InvalidPosition { .. } => Some("positions"),
            RequestError::BroadcastWithAudience => Some("broadcast"),
        }
    }
}
