//! Who a request names: lists that are given, `"broadcast"`, and the Python reading.

use super::*;

fn parse(json: &str) -> NotificationRequest {
    NotificationRequest::parse(json).expect("valid request")
}

fn reject(json: &str) -> RequestError {
    NotificationRequest::parse(json).expect_err("invalid request")
}

#[test]
fn a_request_with_only_data_is_a_broadcast() {
    assert!(parse(r#"{"data": {"type": "announcement"}}"#).is_broadcast());
}

#[test]
fn an_empty_or_null_audience_list_names_nobody() {
    for json in [
        r#"{"users": [], "data": "secret"}"#,
        r#"{"users": null, "data": "secret"}"#,
        r#"{"topics": [], "data": "secret"}"#,
        r#"{"connections": null, "data": "secret"}"#,
        r#"{"users": [], "topics": null, "connections": [], "data": "secret"}"#,
        r#"{"users": [], "exclude_users": ["u-1"], "data": "secret"}"#,
        r#"{"broadcast": false, "data": "secret"}"#,
    ] {
        let request = parse(json);

        assert!(!request.is_broadcast(), "{json}");
        assert!(request.names_nobody(), "{json}");
    }
}

#[test]
fn a_request_that_names_nobody_keeps_naming_nobody_as_text() {
    for json in [
        r#"{"users": [], "data": 1}"#,
        r#"{"broadcast": false, "data": 1}"#,
    ] {
        let request = parse(json);
        let again = parse(&request.to_json());

        assert_eq!(again, request, "{}", request.to_json());
        assert!(again.names_nobody());
    }
}

#[test]
fn broadcast_true_is_a_broadcast_and_refuses_an_audience() {
    let request = parse(r#"{"broadcast": true, "exclude_users": ["u-1"], "data": 1}"#);
    assert!(request.is_broadcast());
    assert!(!request.names_nobody());
    assert!(parse(r#"{"broadcast": null, "data": 1}"#).is_broadcast());

    for json in [
        r#"{"broadcast": true, "users": ["u-1"], "data": 1}"#,
        r#"{"broadcast": true, "topics": [], "data": 1}"#,
        r#"{"connections": null, "broadcast": true, "data": 1}"#,
    ] {
        let error = reject(json);
        assert!(
            matches!(error, RequestError::BroadcastWithAudience),
            "{json}: {error}"
        );
        assert_eq!(error.field(), Some("broadcast"));
    }
    let error = reject(r#"{"broadcast": "yes", "data": 1}"#);
    assert_eq!(error.field(), Some("broadcast"));
    assert!(error.to_string().contains("true, false or null"), "{error}");
}

#[test]
fn a_segment_needs_a_broadcast_and_an_empty_list_is_none() {
    let segment = r#""segment": {"index": 0, "total": 2}"#;
    assert!(parse(&format!(r#"{{"broadcast": true, {segment}, "data": 1}}"#)).is_broadcast());
    for audience in [r#""users": []"#, r#""broadcast": false"#] {
        let error = reject(&format!(r#"{{{audience}, {segment}, "data": 1}}"#));
        assert!(
            matches!(error, RequestError::SegmentNeedsBroadcast),
            "{audience}: {error}"
        );
    }
}

#[test]
fn the_python_reading_makes_empty_lists_a_broadcast_and_leaves_the_rest() {
    let python = |json: &str| parse(json).with_empty_lists_meaning_everyone();

    let everyone = python(r#"{"users": [], "topics": null, "exclude_users": ["u-1"], "data": 1}"#);
    assert!(everyone.is_broadcast());
    assert_eq!(everyone.exclude_users()[0].as_str(), "u-1");
    assert!(!python(r#"{"users": ["u-2"], "topics": [], "data": 1}"#).is_broadcast());
    // A producer that wrote `"broadcast": false` knows this format, not the Python one.
    assert!(python(r#"{"users": [], "broadcast": false, "data": 1}"#).names_nobody());
}

#[test]
fn a_request_with_only_exclusions_is_a_broadcast_with_exclusions() {
    let request = parse(r#"{"exclude_users": ["u-1"], "data": {"status": "OFFLINE"}}"#);

    assert!(request.is_broadcast());
    assert_eq!(request.exclude_users()[0].as_str(), "u-1");
}
