use super::*;
use crate::ids::IdError;
use crate::ids::IdKind;
use crate::limits::MAX_PAYLOAD_BYTES;
use crate::{RequestId, Segment};

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
fn the_redacted_error_never_quotes_the_value() {
    let error = reject(r#"{"users": "secret-value", "data": 1}"#);

    assert!(error.to_string().contains("secret-value"), "{error}");
    assert!(!error.redacted().contains("secret-value"));
    assert!(error.redacted().starts_with("field `users` must be"));
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
    assert!(
        error
            .to_string()
            .ends_with("request is not UTF-8: invalid byte at offset 10"),
        "{error}"
    );
}

#[test]
fn deep_nesting_in_a_list_field_is_a_type_error_naming_the_field() {
    let nested = format!(
        r#"{{"users": {}{}, "data": 1}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );

    let error = reject(&nested);

    assert_eq!(error.field(), Some("users"), "{error}");
}

#[test]
fn a_huge_exclusion_list_is_read_whole() {
    let ids: Vec<String> = (0..200_000).map(|i| format!("\"u{i}\"")).collect();
    let json = format!(r#"{{"exclude_users": [{}], "data": 1}}"#, ids.join(","));

    assert_eq!(parse(&json).exclude_users().len(), 200_000);
}

#[test]
fn a_huge_list_with_one_bad_id_names_its_position() {
    let mut ids: Vec<String> = (0..50_000).map(|i| format!("\"u{i}\"")).collect();
    ids[49_999] = "\"bad\\u0000id\"".to_owned();
    let json = format!(r#"{{"users": [{}], "data": 1}}"#, ids.join(","));

    let error = reject(&json);

    assert!(
        error
            .to_string()
            .starts_with("field `users[49999]`: user ID must not contain '\\0'"),
        "{error}"
    );
}

#[test]
fn a_number_where_a_string_belongs_names_the_field() {
    for (json, field) in [
        (r#"{"id": 42, "data": 1}"#, "id"),
        (r#"{"cursor": 7, "topics": ["t"], "data": 1}"#, "cursor"),
        (
            r#"{"exclude_connections": [1], "data": 1}"#,
            "exclude_connections",
        ),
    ] {
        let error = reject(json);
        assert_eq!(error.field(), Some(field), "{json}: {error}");
    }
}

#[test]
fn duplicate_keys_inside_data_are_the_producers_and_are_sent_as_written() {
    assert_eq!(
        parse(r#"{"data": {"a": 1, "a": 2}}"#).payload(),
        r#"{"a":1,"a":2}"#
    );
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

#[test]
fn the_pusher_fields_round_trip_through_the_format() {
    let text = r#"{"data":1,"id":"m-1","segment":{"index":3,"total":16},"cursor":"{\"pk\":\"c#a\"}","generation":2}"#;

    let request = parse(text);

    assert_eq!(request.id().map(RequestId::as_str), Some("m-1"));
    assert_eq!(request.segment(), Segment::new(3, 16).ok());
    assert_eq!(request.cursor(), Some(r#"{"pk":"c#a"}"#));
    assert_eq!(request.generation(), 2);
    assert_eq!(request.to_json(), text);
}

#[test]
fn null_pusher_fields_are_the_same_as_absent_ones() {
    let request = parse(r#"{"data":1,"id":null,"segment":null,"cursor":null,"generation":null}"#);

    assert_eq!(request, parse(r#"{"data":1}"#));
}

#[test]
fn a_segment_on_a_multicast_is_refused_by_name() {
    let error = reject(r#"{"users":["u"],"segment":{"index":0,"total":2},"data":1}"#);

    assert!(matches!(error, RequestError::SegmentNeedsBroadcast));
    assert_eq!(error.field(), Some("segment"));
}

#[test]
fn a_segment_out_of_range_or_of_the_wrong_shape_is_refused_by_name() {
    for text in [
        r#"{"segment":{"index":2,"total":2},"data":1}"#,
        r#"{"segment":{"index":0,"total":0},"data":1}"#,
        r#"{"segment":"0/2","data":1}"#,
        r#"{"segment":{"index":0,"total":2,"extra":1},"data":1}"#,
        r#"{"segment":{"index":-1,"total":2},"data":1}"#,
    ] {
        let error = reject(text);
        assert_eq!(error.field(), Some("segment"), "{text}: {error}");
    }
}

#[test]
fn a_cursor_needs_exactly_one_source() {
    for text in [
        r#"{"cursor":"k","data":1}"#,
        r#"{"users":["a","b"],"cursor":"k","data":1}"#,
        r#"{"users":["a"],"topics":["t"],"cursor":"k","data":1}"#,
        r#"{"connections":["c"],"cursor":"k","data":1}"#,
    ] {
        let error = reject(text);
        assert!(
            matches!(error, RequestError::CursorNeedsOneSource),
            "{text}: {error}"
        );
    }
    for text in [
        r#"{"users":["a"],"cursor":"k","data":1}"#,
        r#"{"topics":["t"],"cursor":"k","data":1}"#,
        r#"{"segment":{"index":0,"total":1},"cursor":"k","data":1}"#,
    ] {
        assert!(NotificationRequest::parse(text).is_ok(), "{text}");
    }
}

#[test]
fn an_empty_or_control_character_cursor_is_refused() {
    for text in [
        r#"{"users":["a"],"cursor":"","data":1}"#,
        r#"{"users":["a"],"cursor":"a\u0000b","data":1}"#,
    ] {
        let error = reject(text);
        assert!(
            matches!(error, RequestError::InvalidCursor { .. }),
            "{text}: {error}"
        );
    }
}

#[test]
fn an_invalid_id_or_generation_is_refused_by_name() {
    assert_eq!(reject(r#"{"id":"a b","data":1}"#).field(), Some("id"));
    assert_eq!(reject(r#"{"id":7,"data":1}"#).field(), Some("id"));
    assert_eq!(
        reject(r#"{"generation":-1,"data":1}"#).field(),
        Some("generation")
    );
    assert_eq!(
        reject(r#"{"generation":"1","data":1}"#).field(),
        Some("generation")
    );
    assert!(matches!(
        reject(r#"{"generation":101,"data":1}"#),
        RequestError::GenerationTooHigh {
            value: 101,
            max: 100
        }
    ));
}

#[test]
fn positions_round_trip_and_survive_narrowing() {
    let request = parse(
        r#"{"topics":["room:42"],"data":{"n":1},"positions":{"room:42":{"seq":17,"epoch":"e1"}}}"#,
    );

    let positions = request.positions().expect("positions");
    assert_eq!(positions.len(), 1);
    assert_eq!(positions[0].0.as_str(), "room:42");
    assert_eq!(positions[0].1.seq, 17);
    assert_eq!(parse(&request.to_json()), request);
    let narrowed = request.narrowed_to_connections(vec![ConnectionId::parse("c1").expect("valid")]);
    assert_eq!(narrowed.positions(), request.positions());
    assert!(parse(r#"{"data":1}"#).positions().is_none());
}

#[test]
fn bad_positions_are_refused_by_name() {
    for text in [
        r#"{"data":1,"positions":[1]}"#,
        r#"{"data":1,"positions":{"room:1":{"seq":-1,"epoch":"e"}}}"#,
        r#"{"data":1,"positions":{"room:1":{"seq":1}}}"#,
        r#"{"data":1,"positions":{"room:1":{"seq":1,"epoch":"e","x":1}}}"#,
        r#"{"data":1,"positions":{"room:1":{"seq":1,"epoch":""}}}"#,
        r#"{"data":1,"positions":{"a b":{"seq":1,"epoch":"e"}}}"#,
    ] {
        assert_eq!(reject(text).field(), Some("positions"), "{text}");
    }
}
