use std::collections::HashMap;
use std::time::Duration;

use wspush_domain::SubscriptionPolicy;
use wspush_domain::endpoint::Transport;
use wspush_ports::{PushConfig, ScatterConfig};

use super::*;

pub(super) fn settings(pairs: &[(&str, &str)]) -> Settings<impl Fn(&str) -> Option<String>> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Settings::from_lookup(move |key| map.get(key).cloned())
}

#[test]
fn the_post_rate_defaults_below_the_account_throttle_and_can_be_set_or_turned_off() {
    let rate = |pairs: &[(&str, &str)]| {
        settings(pairs)
            .push_config()
            .map(|c| c.max_posts_per_second)
    };

    assert_eq!(rate(&[]), Ok(Some(8_000)));
    assert_eq!(rate(&[(MAX_POSTS_PER_SECOND, "2500")]), Ok(Some(2_500)));
    assert_eq!(rate(&[(MAX_POSTS_PER_SECOND, "off")]), Ok(None));
    let error = rate(&[(MAX_POSTS_PER_SECOND, "0")]).unwrap_err();
    assert!(error.to_string().contains(MAX_POSTS_PER_SECOND), "{error}");
}

#[test]
fn metrics_go_to_the_wspush_namespace_unless_named_or_turned_off() {
    assert_eq!(
        settings(&[]).metrics_namespace(),
        Ok(Some("wspush".to_owned()))
    );
    assert_eq!(
        settings(&[(METRICS_NAMESPACE, "chat/prod")]).metrics_namespace(),
        Ok(Some("chat/prod".to_owned()))
    );
    assert_eq!(
        settings(&[(METRICS_NAMESPACE, "off")]).metrics_namespace(),
        Ok(None)
    );
    let error = settings(&[(METRICS_NAMESPACE, ":bad")])
        .metrics_namespace()
        .unwrap_err();
    assert!(error.to_string().contains(METRICS_NAMESPACE), "{error}");
}

#[test]
fn continuations_default_to_three_generations_a_ten_second_margin_and_scatter_above_10000() {
    let defaults = settings(&[]).continuation_config().expect("valid");
    let custom = settings(&[
        (MAX_GENERATIONS, "0"),
        (DEADLINE_MARGIN_MS, "1500"),
        (SCATTER_ABOVE, "500"),
        (SCATTER_SEGMENTS, "64"),
    ])
    .continuation_config()
    .expect("valid");
    let off = settings(&[(SCATTER_ABOVE, "off")])
        .continuation_config()
        .expect("valid");

    assert_eq!(defaults.limits.max_generations, 3);
    assert_eq!(defaults.deadline_margin, Duration::from_secs(10));
    assert_eq!(defaults.scatter, ScatterConfig::new(10_000, 16).ok());
    assert_eq!(custom.limits.max_generations, 0);
    assert_eq!(custom.deadline_margin, Duration::from_millis(1_500));
    assert_eq!(custom.scatter, ScatterConfig::new(500, 64).ok());
    assert_eq!(off.scatter, None);
}

#[test]
fn bad_continuation_settings_name_their_variable() {
    for (key, value) in [
        (MAX_GENERATIONS, "101"),
        (MAX_GENERATIONS, "-1"),
        (DEADLINE_MARGIN_MS, "soon"),
        (SCATTER_ABOVE, "0"),
        (SCATTER_SEGMENTS, "0"),
    ] {
        let error = settings(&[(key, value)])
            .continuation_config()
            .expect_err("invalid");
        assert!(error.to_string().contains(key), "{key}={value}: {error}");
    }
}

#[test]
fn the_ledger_keeps_completed_requests_a_day_unless_set_or_turned_off() {
    assert_eq!(
        settings(&[])
            .ledger_config()
            .map(|c| c.map(|c| c.keep_completed)),
        Ok(Some(Duration::from_secs(86_400)))
    );
    assert_eq!(
        settings(&[(IDEMPOTENCY_TTL_SECONDS, "600")])
            .ledger_config()
            .map(|c| c.map(|c| c.keep_completed)),
        Ok(Some(Duration::from_secs(600)))
    );
    assert_eq!(
        settings(&[(IDEMPOTENCY_TTL_SECONDS, "off")]).ledger_config(),
        Ok(None)
    );
    assert!(
        settings(&[(IDEMPOTENCY_TTL_SECONDS, "0")])
            .ledger_config()
            .is_err()
    );
}

#[test]
fn a_missing_table_names_its_variable() {
    let error = settings(&[]).table().unwrap_err();

    assert_eq!(
        error.to_string(),
        "environment variable WSPUSH_TABLE is not set"
    );
}

#[test]
fn an_empty_variable_counts_as_missing() {
    assert_eq!(
        settings(&[(TABLE, "  ")]).table(),
        Err(SettingsError::Missing(TABLE))
    );
}

#[test]
fn push_settings_are_read_and_zero_is_refused() {
    let config = settings(&[(MAX_IN_FLIGHT, "64"), (BROADCAST_SEGMENTS, "8")])
        .push_config()
        .expect("valid");
    let zero = settings(&[(MAX_IN_FLIGHT, "0")]).push_config();
    let garbage = settings(&[(PAGE_SIZE, "many")]).push_config();

    assert_eq!((config.max_in_flight, config.broadcast_segments), (64, 8));
    assert_eq!(config.page_size, PushConfig::default().page_size);
    assert!(matches!(
        zero,
        Err(SettingsError::Invalid {
            key: MAX_IN_FLIGHT,
            ..
        })
    ));
    assert!(
        garbage
            .unwrap_err()
            .to_string()
            .starts_with("environment variable WSPUSH_PAGE_SIZE=\"many\" is invalid")
    );
}

#[test]
fn topics_per_message_are_at_most_one_transaction() {
    let read = |value: &str| settings(&[(MAX_TOPICS_PER_MESSAGE, value)]).subscription_policy();

    assert_eq!(
        read("99").expect("99").max_topics_per_message(),
        MAX_TOPICS_PER_MESSAGE_LIMIT
    );
    let over = read("100").expect_err("100").to_string();
    assert!(
        over.contains(MAX_TOPICS_PER_MESSAGE) && over.contains("at most 99"),
        "{over}"
    );
}

#[test]
fn allowed_namespaces_are_a_comma_separated_list() {
    let policy = settings(&[(ALLOWED_NAMESPACES, "room, ticker,")])
        .subscription_policy()
        .expect("valid");
    let with_colon = settings(&[(ALLOWED_NAMESPACES, "room:")]).subscription_policy();

    assert_eq!(
        policy,
        SubscriptionPolicy::default().with_allowed_namespaces(["room", "ticker"])
    );
    assert!(with_colon.is_err());
}

#[test]
fn the_transport_is_lean_or_sdk_and_anything_else_is_refused_by_name() {
    let base = [
        (TABLE, "connections"),
        (MANAGEMENT_ENDPOINT, "https://example.com/prod"),
    ];
    let with = |transport| {
        let mut all = base.to_vec();
        all.push((TRANSPORT, transport));
        PusherSettings::read(&settings(&all))
    };

    assert_eq!(
        with("sdk").expect("valid").management_api.transport,
        Transport::Sdk
    );
    assert_eq!(
        with("lean").expect("valid").management_api.transport,
        Transport::Lean
    );
    let error = with("hyper").unwrap_err();
    assert!(
        error.to_string().contains("WSPUSH_TRANSPORT") && error.to_string().contains("hyper"),
        "{error}"
    );
}

#[test]
fn the_pusher_reads_its_endpoint_queue_and_metrics_whole() {
    let base = [
        (TABLE, "connections"),
        (
            WEBSOCKET_URL,
            "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod/",
        ),
        (FUNCTION_NAME, "wspush-Pusher"),
    ];
    let pusher = PusherSettings::read(&settings(&base)).expect("valid");
    assert_eq!(pusher.table, "connections");
    assert_eq!(
        pusher.management_api.endpoint,
        "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
    );
    assert_eq!(pusher.management_api.transport, Transport::Lean);
    assert!(pusher.continuations.is_none(), "no queue, no continuations");
    assert_eq!(
        pusher.metrics,
        Some(("wspush".to_owned(), "wspush-Pusher".to_owned()))
    );

    let mut with_queue = base.to_vec();
    with_queue.push((QUEUE_URL, "https://sqs.eu-west-1.amazonaws.com/1/q"));
    with_queue.push((MANAGEMENT_ENDPOINT, "https://example.com/prod/"));
    let pusher = PusherSettings::read(&settings(&with_queue)).expect("valid");
    assert_eq!(pusher.management_api.endpoint, "https://example.com/prod");
    assert_eq!(
        pusher.continuations,
        Some((
            "https://sqs.eu-west-1.amazonaws.com/1/q".to_owned(),
            settings(&[]).continuation_config().expect("defaults")
        ))
    );
}

#[test]
fn empty_lists_reach_nobody_unless_the_python_reading_is_switched_on() {
    let base = [
        (TABLE, "t"),
        (MANAGEMENT_ENDPOINT, "https://example.com/prod"),
    ];
    let read = |value: Option<&'static str>| {
        let mut vars = base.to_vec();
        vars.extend(value.map(|value| (EMPTY_LISTS_MEAN_EVERYONE, value)));
        PusherSettings::read(&settings(&vars))
    };

    assert!(!read(None).expect("default").empty_lists_mean_everyone);
    assert!(
        !read(Some("false"))
            .expect("false")
            .empty_lists_mean_everyone
    );
    assert!(read(Some("true")).expect("true").empty_lists_mean_everyone);
    let Err(error) = read(Some("yes")) else {
        panic!("`yes` is not a switch");
    };
    let error = error.to_string();
    assert!(
        error.contains(EMPTY_LISTS_MEAN_EVERYONE) && error.contains("true or false"),
        "{error}"
    );
}

#[test]
fn the_pusher_names_its_endpoint_variables_when_they_are_missing_or_malformed() {
    let missing = PusherSettings::read(&settings(&[(TABLE, "t")])).unwrap_err();
    assert_eq!(
        missing.to_string(),
        "set WSPUSH_MANAGEMENT_ENDPOINT (the @connections endpoint) or WSPUSH_WEBSOCKET_URL (the API's wss:// stage URL)"
    );
    let endpoint =
        PusherSettings::read(&settings(&[(TABLE, "t"), (MANAGEMENT_ENDPOINT, "ftp://x")]))
            .unwrap_err();
    assert_eq!(
        endpoint.to_string(),
        r#"WSPUSH_MANAGEMENT_ENDPOINT must be an http(s) URL, got "ftp://x""#
    );
    let url = PusherSettings::read(&settings(&[
        (TABLE, "t"),
        (WEBSOCKET_URL, "https://x/prod"),
    ]))
    .unwrap_err();
    assert_eq!(
        url.to_string(),
        r#"WSPUSH_WEBSOCKET_URL must be a ws:// or wss:// URL, got "https://x/prod""#
    );
}

#[test]
fn each_function_reads_its_table_and_fails_naming_it() {
    assert_eq!(
        DisconnectSettings::read(&settings(&[(TABLE, "t")])).map(|s| s.table),
        Ok("t".to_owned())
    );
    for error in [
        ConnectSettings::read(&settings(&[])).unwrap_err(),
        DisconnectSettings::read(&settings(&[])).unwrap_err(),
        SubscribeSettings::read(&settings(&[])).unwrap_err(),
        PusherSettings::read(&settings(&[])).unwrap_err(),
    ] {
        assert_eq!(error, SettingsError::Missing(TABLE));
    }
}
