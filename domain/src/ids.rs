//! Validated identifiers.
//!
//! Every ID is a newtype with a private field, built only by `parse`, so a value of one of
//! these types has passed its rules. The text is held once and shared: cloning an ID counts a
//! reference instead of copying it, so a store may index one ID in several places for the
//! memory of one. The rules:
//!
//! | type | length (UTF-8 bytes) | characters |
//! |---|---|---|
//! | [`ConnectionId`] | 1 to 128 | ASCII letters, digits and `+ / = _ -` (API Gateway's IDs are base64, such as `L0SM9cOFvHcCIhw=`) |
//! | [`UserId`] | 1 to 256 | any character except whitespace and control characters |
//! | [`ExternalId`] | 1 to 512 | any character except whitespace and control characters |
//! | [`RequestId`] | 1 to 128 | printable ASCII except space (an SQS or SNS message ID, a UUID, a producer's own key) |
//!
//! An external ID is a topic, a room or a ticker. Its *namespace* is the text before its
//! first `:` (`room` in `room:42`). A user's own channel is the external ID `user:<user id>`.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::limits::{
    MAX_CONNECTION_ID_BYTES, MAX_EXTERNAL_ID_BYTES, MAX_REQUEST_ID_BYTES, MAX_USER_ID_BYTES,
};

/// Which kind of identifier broke a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// A [`ConnectionId`].
    Connection,
    /// A [`UserId`].
    User,
    /// An [`ExternalId`].
    External,
    /// A [`RequestId`].
    Request,
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdKind::Connection => "connection ID",
            IdKind::User => "user ID",
            IdKind::External => "external ID",
            IdKind::Request => "request ID",
        })
    }
}

/// The rule an identifier broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The value was empty.
    #[error("{kind} must not be empty")]
    Empty {
        /// The kind of ID.
        kind: IdKind,
    },
    /// The value was longer than the kind allows.
    #[error("{kind} must be at most {max} bytes long, got {len}")]
    TooLong {
        /// The kind of ID.
        kind: IdKind,
        /// The limit in bytes.
        max: usize,
        /// The length found.
        len: usize,
    },
    /// The value held a character the kind does not allow.
    #[error("{kind} must not contain {found:?} (at byte {index}); allowed: {allowed}")]
    InvalidCharacter {
        /// The kind of ID.
        kind: IdKind,
        /// The first character that broke the rule.
        found: char,
        /// Its byte offset.
        index: usize,
        /// The rule, in words.
        allowed: &'static str,
    },
}

const CONNECTION_ID_CHARS: &str = "ASCII letters, digits and + / = _ -";
const TEXT_ID_CHARS: &str = "any character but whitespace, control characters and invisible format characters (such as U+200B or U+202E)";
const REQUEST_ID_CHARS: &str = "printable ASCII except space";

fn is_connection_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-')
}

fn is_text_id_char(c: char) -> bool {
    !c.is_whitespace() && !c.is_control() && !is_format_char(c)
}

/// Unicode's format characters (general category Cf, Unicode 16): invisible, so that
/// `bob\u{200B}` would look like `bob` in a log or a terminal while being another user, and
/// the bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069) reorder the text
/// around them.
fn is_format_char(c: char) -> bool {
    matches!(
        c,
        '\u{AD}'
            | '\u{600}'..='\u{605}'
            | '\u{61C}'
            | '\u{6DD}'
            | '\u{70F}'
            | '\u{890}'..='\u{891}'
            | '\u{8E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

fn is_request_id_char(c: char) -> bool {
    c.is_ascii_graphic()
}

fn check(
    value: &str,
    kind: IdKind,
    max: usize,
    allowed: &'static str,
    is_allowed: fn(char) -> bool,
) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if value.len() > max {
        return Err(IdError::TooLong {
            kind,
            max,
            len: value.len(),
        });
    }
    match value.char_indices().find(|&(_, c)| !is_allowed(c)) {
        Some((index, found)) => Err(IdError::InvalidCharacter {
            kind,
            found,
            index,
            allowed,
        }),
        None => Ok(()),
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:expr, $max:expr, $allowed:expr, $is_allowed:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates `value` against this ID's rules (see the module docs).
            pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check(&value, $kind, $max, $allowed, $is_allowed)?;
                Ok(Self(value.into()))
            }

            /// The ID as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.as_ref().to_owned()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// The ID API Gateway gives a WebSocket connection (`requestContext.connectionId`).
    ConnectionId,
    IdKind::Connection,
    MAX_CONNECTION_ID_BYTES,
    CONNECTION_ID_CHARS,
    is_connection_id_char
);

id_type!(
    /// The identity of the user behind a connection, as the authorizer established it.
    UserId,
    IdKind::User,
    MAX_USER_ID_BYTES,
    TEXT_ID_CHARS,
    is_text_id_char
);

id_type!(
    /// A topic, room or ticker that connections subscribe to; `user:<id>` is a user's own
    /// channel.
    ExternalId,
    IdKind::External,
    MAX_EXTERNAL_ID_BYTES,
    TEXT_ID_CHARS,
    is_text_id_char
);

id_type!(
    /// The identity of one notification request, for idempotent redelivery: the request's own
    /// `id` field, or the SQS or SNS message ID that carried it.
    RequestId,
    IdKind::Request,
    MAX_REQUEST_ID_BYTES,
    REQUEST_ID_CHARS,
    is_request_id_char
);

impl RequestId {
    /// The ID of a continuation of the request with this ID, whose content (its JSON without
    /// an ID) is `content`. The same parent and content always give the same ID, so a
    /// continuation enqueued again after a redelivery of its parent is recognised as the
    /// same request, while a different continuation of the same parent never takes its ID
    /// (which would have it skipped as done): `<parent>~<64-bit hash of content>`, with a
    /// 128-bit hash of the parent in its place when that would be too long.
    pub fn derive(&self, content: &str) -> Self {
        let suffix = format!("~{:016x}", fnv1a(FNV_OFFSET, content));
        if self.0.len() + suffix.len() <= MAX_REQUEST_ID_BYTES {
            return Self(format!("{}{suffix}", self.0).into());
        }
        let (high, low) = (
            fnv1a(FNV_OFFSET, &self.0),
            fnv1a(FNV_OFFSET ^ 0xa5a5_a5a5_a5a5_a5a5, &self.0),
        );
        Self(format!("h{high:016x}{low:016x}{suffix}").into())
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64 bits, from `offset`: stable across builds and platforms, unlike std's hasher.
fn fnv1a(offset: u64, text: &str) -> u64 {
    text.bytes().fold(offset, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The namespace of users' own channels.
pub const USER_CHANNEL_NAMESPACE: &str = "user";

impl ExternalId {
    /// The user's own channel, `user:<user id>`. Always valid: a user ID is at most half as
    /// long as an external ID may be and uses the same characters.
    pub fn user_channel(user: &UserId) -> Self {
        Self(format!("{USER_CHANNEL_NAMESPACE}:{user}").into())
    }

    /// The text before the first `:`, if there is one (`room` in `room:42`).
    pub fn namespace(&self) -> Option<&str> {
        self.0.split_once(':').map(|(namespace, _)| namespace)
    }

    /// The user whose own channel this is, if it is one (`u-1` in `user:u-1`).
    pub fn channel_owner(&self) -> Option<&str> {
        self.0
            .split_once(':')
            .filter(|(namespace, _)| *namespace == USER_CHANNEL_NAMESPACE)
            .map(|(_, owner)| owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_format_characters_in_user_and_external_ids_are_refused_by_name_and_place() {
        for (value, found, index) in [
            ("bob\u{200B}", '\u{200B}', 3),
            ("\u{FEFF}bob", '\u{FEFF}', 0),
            ("room:\u{202E}24", '\u{202E}', 5),
            ("a\u{2066}b", '\u{2066}', 1),
            ("soft\u{AD}hyphen", '\u{AD}', 4),
            ("tag\u{E0041}", '\u{E0041}', 3),
        ] {
            let user = UserId::parse(value).expect_err(value);
            assert_eq!(
                user,
                IdError::InvalidCharacter {
                    kind: IdKind::User,
                    found,
                    index,
                    allowed: TEXT_ID_CHARS,
                },
                "{value:?}"
            );
            assert!(
                matches!(
                    ExternalId::parse(value),
                    Err(IdError::InvalidCharacter { kind: IdKind::External, found: f, index: i, .. })
                        if f == found && i == index
                ),
                "{value:?}"
            );
            let text = user.to_string();
            assert!(
                text.contains(&format!("{found:?} (at byte {index})")),
                "{text}"
            );
        }
        // Visible text in any script stays valid.
        for value in ["bob", "ana-ñ", "用户", "room:42", "👩💻"] {
            assert!(UserId::parse(value).is_ok(), "{value:?}");
        }
    }

    #[test]
    fn an_sqs_message_id_is_a_valid_request_id() {
        let id = RequestId::parse("059f36b4-87a3-44ab-83d2-661975830a7d").expect("valid");

        assert_eq!(id.as_str(), "059f36b4-87a3-44ab-83d2-661975830a7d");
    }

    #[test]
    fn a_request_id_with_a_space_or_non_ascii_is_rejected() {
        for value in ["a b", "café", "a\u{7}"] {
            assert!(
                matches!(
                    RequestId::parse(value),
                    Err(IdError::InvalidCharacter {
                        kind: IdKind::Request,
                        ..
                    })
                ),
                "{value:?} should be rejected"
            );
        }
    }

    #[test]
    fn derived_request_ids_are_stable_distinct_and_bounded() {
        let parent = RequestId::parse("msg-1").expect("valid");
        let long = RequestId::parse("x".repeat(128)).expect("valid");

        let first = parent.derive(r#"{"connections":["a"],"data":1}"#);

        assert!(first.as_str().starts_with("msg-1~"));
        assert_eq!(first, parent.derive(r#"{"connections":["a"],"data":1}"#));
        assert_ne!(first, parent.derive(r#"{"connections":["b"],"data":1}"#));
        assert_eq!(long.derive("x"), long.derive("x"));
        assert_ne!(long.derive("x"), long.derive("y"));
        assert!(long.derive("x").as_str().len() <= 128);
        assert!(RequestId::parse(long.derive("x").as_str()).is_ok());
    }

    #[test]
    fn an_api_gateway_connection_id_is_accepted() {
        let id = ConnectionId::parse("L0SM9cOFvHcCIhw=").expect("valid");

        assert_eq!(id.as_str(), "L0SM9cOFvHcCIhw=");
    }

    #[test]
    fn an_empty_connection_id_is_rejected_by_the_empty_rule() {
        let error = ConnectionId::parse("").unwrap_err();

        assert_eq!(
            error,
            IdError::Empty {
                kind: IdKind::Connection
            }
        );
        assert_eq!(error.to_string(), "connection ID must not be empty");
    }

    #[test]
    fn a_connection_id_over_128_bytes_is_rejected_by_the_length_rule() {
        let error = ConnectionId::parse("a".repeat(129)).unwrap_err();

        assert_eq!(
            error,
            IdError::TooLong {
                kind: IdKind::Connection,
                max: 128,
                len: 129
            }
        );
    }

    #[test]
    fn a_connection_id_of_exactly_128_bytes_is_accepted() {
        assert!(ConnectionId::parse("a".repeat(128)).is_ok());
    }

    #[test]
    fn a_connection_id_with_a_space_names_the_character_and_its_position() {
        let error = ConnectionId::parse("abc def").unwrap_err();

        assert_eq!(
            error,
            IdError::InvalidCharacter {
                kind: IdKind::Connection,
                found: ' ',
                index: 3,
                allowed: CONNECTION_ID_CHARS
            }
        );
        assert!(error.to_string().contains("' ' (at byte 3)"));
    }

    #[test]
    fn a_connection_id_with_non_ascii_letters_is_rejected() {
        assert!(matches!(
            ConnectionId::parse("abcé"),
            Err(IdError::InvalidCharacter { found: 'é', .. })
        ));
    }

    #[test]
    fn user_ids_take_uuids_emails_and_provider_forms() {
        for value in [
            "783304b1-2320-44db-8f58-09c3035a686b",
            "ana@example.com",
            "auth0|5f1a",
            "José",
        ] {
            assert!(UserId::parse(value).is_ok(), "{value} should be valid");
        }
    }

    #[test]
    fn a_user_id_with_a_control_character_is_rejected() {
        let error = UserId::parse("u\u{0}1").unwrap_err();

        assert!(matches!(
            error,
            IdError::InvalidCharacter {
                kind: IdKind::User,
                found: '\u{0}',
                index: 1,
                ..
            }
        ));
    }

    #[test]
    fn a_user_id_with_whitespace_is_rejected() {
        assert!(UserId::parse("u 1").is_err());
        assert!(UserId::parse("u\n1").is_err());
    }

    #[test]
    fn a_user_id_is_measured_in_bytes_not_characters() {
        let error = UserId::parse("é".repeat(129)).unwrap_err();

        assert_eq!(
            error,
            IdError::TooLong {
                kind: IdKind::User,
                max: 256,
                len: 258
            }
        );
    }

    #[test]
    fn an_external_id_over_512_bytes_is_rejected() {
        assert!(ExternalId::parse("t".repeat(512)).is_ok());
        assert!(matches!(
            ExternalId::parse("t".repeat(513)),
            Err(IdError::TooLong {
                kind: IdKind::External,
                ..
            })
        ));
    }

    #[test]
    fn the_namespace_is_the_text_before_the_first_colon() {
        let topic = ExternalId::parse("room:42:thread").expect("valid");

        assert_eq!(topic.namespace(), Some("room"));
        assert_eq!(ExternalId::parse("lobby").expect("valid").namespace(), None);
    }

    #[test]
    fn a_users_own_channel_names_its_owner() {
        let user = UserId::parse("u-1").expect("valid");

        let channel = ExternalId::user_channel(&user);

        assert_eq!(channel.as_str(), "user:u-1");
        assert_eq!(channel.channel_owner(), Some("u-1"));
        assert_eq!(
            ExternalId::parse("room:1").expect("valid").channel_owner(),
            None
        );
    }

    #[test]
    fn the_longest_user_id_still_makes_a_valid_own_channel() {
        let user = UserId::parse("u".repeat(256)).expect("valid");

        let channel = ExternalId::user_channel(&user);

        assert!(ExternalId::parse(channel.as_str()).is_ok());
    }

    #[test]
    fn ids_deserialize_only_when_valid() {
        let ok: Result<UserId, _> = serde_json::from_str("\"u-1\"");
        let bad: Result<UserId, _> = serde_json::from_str("\"\"");

        assert_eq!(ok.expect("valid").as_str(), "u-1");
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("user ID must not be empty")
        );
    }
}
