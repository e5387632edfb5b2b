//! The store's cursors: a page's `LastEvaluatedKey` as text.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use wspush_ports::{Cursor, StoreError};

use super::items::{Item, PK, corrupt};

/// Cursors are a page's `LastEvaluatedKey`: string attributes only (the keys of the table
/// and its indexes), as a JSON object.
pub(super) fn encode_cursor(key: Option<&Item>) -> Result<Option<Cursor>, StoreError> {
    let Some(key) = key else {
        return Ok(None);
    };
    let mut fields = serde_json::Map::new();
    for (name, value) in key {
        let text = value
            .as_s()
            .map_err(|_| corrupt(key, format!("key attribute `{name}` is not a string")))?;
        fields.insert(name.clone(), serde_json::Value::String(text.clone()));
    }
    Ok(Some(Cursor::new(
        serde_json::Value::Object(fields).to_string(),
    )))
}

pub(super) fn decode_cursor(cursor: Option<Cursor>) -> Result<Option<Item>, StoreError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let fields: HashMap<String, String> = serde_json::from_str(cursor.as_str())
        .map_err(|error| StoreError::InvalidCursor(format!("{:?}: {error}", cursor.as_str())))?;
    if !fields.contains_key(PK) {
        return Err(StoreError::InvalidCursor(format!(
            "{:?}: no `{PK}`",
            cursor.as_str()
        )));
    }
    Ok(Some(
        fields
            .into_iter()
            .map(|(name, value)| (name, AttributeValue::S(value)))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamodb::items::OWNER;

    #[test]
    fn a_cursor_round_trips_through_text() {
        let key: Item = HashMap::from([
            (PK.to_owned(), AttributeValue::S("c#abc".into())),
            (OWNER.to_owned(), AttributeValue::S("ana".into())),
        ]);

        let cursor = encode_cursor(Some(&key)).expect("encode").expect("some");

        assert_eq!(decode_cursor(Some(cursor)).expect("decode"), Some(key));
    }

    #[test]
    fn a_cursor_without_a_table_key_is_invalid() {
        let result = decode_cursor(Some(Cursor::new(r#"{"owner":"ana"}"#)));

        assert!(matches!(result, Err(StoreError::InvalidCursor(_))));
    }
}
