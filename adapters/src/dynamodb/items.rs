//! The table's attribute names and keys, and the mapping between items and the domain's
//! types.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use wspush_domain::{
    Connection, ConnectionId, ExternalId, RequestId, Timestamp, TopicGrants, UserId,
};
use wspush_ports::StoreError;

/// One DynamoDB item, or key.
pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) const PK: &str = "pk";
pub(super) const SK: &str = "sk";
pub(super) const OWNER: &str = "owner";
pub(super) const MEMBER: &str = "member";
pub(super) const TOPIC: &str = "topic";
pub(super) const CONNECTED_AT: &str = "connected_at";
pub(super) const EXPIRES_AT_MS: &str = "expires_at_ms";
pub(super) const GRANTS: &str = "grants";
/// On a connection item: how many subscription items it has (kept by subscribe and
/// unsubscribe, so that the subscription limit is checked atomically).
pub(super) const SUBSCRIPTIONS: &str = "subs";
/// The table's TTL attribute, in epoch seconds.
pub const TTL: &str = "ttl";
/// The index of connection items by user; scanned in segments for a broadcast.
pub const BY_USER: &str = "by_user";
/// The index of subscription items by external ID.
pub const BY_TOPIC: &str = "by_topic";

pub(super) const STATE: &str = "state";
pub(super) const UNTIL_MS: &str = "until_ms";
pub(super) const CLAIMED: &str = "claimed";
pub(super) const COMPLETED: &str = "completed";
pub(super) const REQUEST_PREFIX: &str = "r#";
pub(super) const REQUEST_SK: &str = "request";
pub(super) const CONNECTION_SK: &str = "conn";
pub(super) const CONNECTION_PREFIX: &str = "c#";
pub(super) const TOPIC_PREFIX: &str = "t#";
/// History items: a stream's head, its messages and its requests' marks.
pub(super) const STREAM_PREFIX: &str = "s#";
pub(super) const HEAD_SK: &str = "head";
pub(super) const MESSAGE_PREFIX: &str = "m#";
pub(super) const MARK_PREFIX: &str = "q#";
/// Presence items: a topic's users, each with the set of their connections there.
pub(super) const PRESENCE_PREFIX: &str = "p#";
pub(super) const PRESENCE_USER_PREFIX: &str = "u#";
pub(super) const EPOCH: &str = "epoch";
pub(super) const SEQ: &str = "seq";
pub(super) const DATA: &str = "data";
pub(super) const POSITIONS: &str = "positions";

/// The key of a stream's item whose sort key is `sk`.
pub(super) fn stream_key(stream: &ExternalId, sk: &str) -> Item {
    HashMap::from([
        (
            PK.to_owned(),
            AttributeValue::S(format!("{STREAM_PREFIX}{stream}")),
        ),
        (SK.to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}

/// A message's key: `m#<epoch>#<seq, 20 digits>`, so that a `Query` on a range of sort keys
/// reads an epoch's messages in order.
pub(super) fn message_key(stream: &ExternalId, position: &wspush_domain::Position) -> Item {
    stream_key(
        stream,
        &format!("{MESSAGE_PREFIX}{}#{:020}", position.epoch, position.seq),
    )
}

/// The mark of a request appended to a stream.
pub(super) fn mark_key(stream: &ExternalId, request: &RequestId) -> Item {
    stream_key(stream, &format!("{MARK_PREFIX}{request}"))
}

pub(super) fn pk_of(connection: &ConnectionId) -> String {
    format!("{CONNECTION_PREFIX}{connection}")
}

pub(super) fn connection_key(connection: &ConnectionId) -> Item {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(pk_of(connection))),
        (SK.to_owned(), AttributeValue::S(CONNECTION_SK.to_owned())),
    ])
}

pub(super) fn subscription_key(connection: &ConnectionId, topic: &ExternalId) -> Item {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(pk_of(connection))),
        (
            SK.to_owned(),
            AttributeValue::S(format!("{TOPIC_PREFIX}{topic}")),
        ),
    ])
}

pub(super) fn add_lifetime(item: &mut Item, connection: &Connection) {
    let expires = connection.expires_at();
    item.insert(
        CONNECTED_AT.into(),
        number(connection.connected_at().unix_millis()),
    );
    item.insert(EXPIRES_AT_MS.into(), number(expires.unix_millis()));
    // Rounded up, so that TTL never removes an item before it has expired.
    item.insert(TTL.into(), number(expires.unix_millis().div_ceil(1000)));
}

pub(super) fn number(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn page_limit(limit: usize) -> i32 {
    i32::try_from(limit.max(1)).unwrap_or(i32::MAX)
}

pub(super) fn string<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| corrupt(item, format!("no string attribute `{name}`")))
}

pub(super) fn millis(item: &Item, name: &str) -> Result<Timestamp, StoreError> {
    item.get(name)
        .and_then(|value| value.as_n().ok())
        .and_then(|text| text.parse::<u64>().ok())
        .map(Timestamp::from_unix_millis)
        .ok_or_else(|| corrupt(item, format!("no numeric attribute `{name}`")))
}

pub(super) fn connection_from(item: &Item, user_attribute: &str) -> Result<Connection, StoreError> {
    let pk = string(item, PK)?;
    let id = pk
        .strip_prefix(CONNECTION_PREFIX)
        .ok_or_else(|| corrupt(item, "`pk` is not a connection key"))?;
    Ok(Connection::restore(
        ConnectionId::parse(id).map_err(|error| corrupt(item, error))?,
        UserId::parse(string(item, user_attribute)?).map_err(|error| corrupt(item, error))?,
        millis(item, CONNECTED_AT)?,
        millis(item, EXPIRES_AT_MS)?,
    ))
}

/// The `grants` of a connection item; absent when its token did not limit its topics.
pub(super) fn grants_from(item: &Item) -> Result<Option<TopicGrants>, StoreError> {
    let Some(value) = item.get(GRANTS) else {
        return Ok(None);
    };
    let list = value
        .as_l()
        .map_err(|_| corrupt(item, format!("`{GRANTS}` is not a list")))?;
    let strings = list
        .iter()
        .map(|grant| grant.as_s().cloned())
        .collect::<Result<Vec<String>, _>>()
        .map_err(|_| corrupt(item, format!("`{GRANTS}` holds a non-string")))?;
    TopicGrants::parse(strings)
        .map(Some)
        .map_err(|error| corrupt(item, error))
}

pub(super) fn corrupt(item: &Item, problem: impl std::fmt::Display) -> StoreError {
    let key = item
        .get(PK)
        .and_then(|value| value.as_s().ok())
        .map_or("<no pk>", String::as_str);
    StoreError::Unknown(anyhow::anyhow!("corrupt item {key}: {problem}"))
}

pub(super) fn request_key(id: &RequestId) -> Item {
    HashMap::from([
        (
            PK.to_owned(),
            AttributeValue::S(format!("{REQUEST_PREFIX}{id}")),
        ),
        (SK.to_owned(), AttributeValue::S(REQUEST_SK.to_owned())),
    ])
}

pub(super) fn request_item(id: &RequestId, state: &str, until: Timestamp) -> Item {
    let mut item = request_key(id);
    item.insert(STATE.into(), AttributeValue::S(state.to_owned()));
    item.insert(UNTIL_MS.into(), number(until.unix_millis()));
    item.insert(TTL.into(), number(until.unix_millis().div_ceil(1000)));
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ttl_is_rounded_up_to_the_next_second() {
        let connection = Connection::restore(
            ConnectionId::parse("c").expect("valid"),
            UserId::parse("u").expect("valid"),
            Timestamp::from_unix_millis(0),
            Timestamp::from_unix_millis(1_001),
        );
        let mut item = Item::new();

        add_lifetime(&mut item, &connection);

        assert_eq!(item[TTL], AttributeValue::N("2".into()));
        assert_eq!(item[EXPIRES_AT_MS], AttributeValue::N("1001".into()));
    }

    #[test]
    fn an_item_with_a_missing_attribute_is_reported_as_corrupt_with_its_key() {
        let item: Item = HashMap::from([(PK.to_owned(), AttributeValue::S("c#abc".into()))]);

        let error = connection_from(&item, OWNER).expect_err("corrupt");

        assert_eq!(
            error.to_string(),
            "corrupt item c#abc: no string attribute `owner`"
        );
    }
}
