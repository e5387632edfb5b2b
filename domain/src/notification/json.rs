//! `data` as JSON text: compacted byte for byte, its nesting and size checked.

use serde_json::value::RawValue;

use crate::limits::MAX_PAYLOAD_BYTES;
use crate::notification::error::RequestError;

/// How deeply `data` may nest arrays and objects (serde_json's own recursion limit, which
/// it does not apply to raw values).
pub const MAX_DATA_DEPTH: usize = 128;
pub(super) fn compact_data(value: &RawValue) -> Result<Box<RawValue>, RequestError> {
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
pub(super) fn compact_json(json: &str, max_depth: usize) -> Option<String> {
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
