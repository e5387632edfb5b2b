//! The operations side of `deploy/template.yaml`: the stage throttles client messages and
//! `$connect` (parameters with defaults), writes access logs to a log group with a
//! retention, and never logs the query string (where a token can travel); the pusher's
//! concurrency can be reserved; the table is kept on stack deletion and replacement, with
//! point-in-time recovery. Each rule is also run on a broken copy.

use serde_norway::Value;
use serde_norway::value::TaggedValue;

use super::{PUSHER, resources, template};

/// `value` as `(tag, inner)` when it is tagged (`!Ref X` is `("Ref", "X")`).
fn tagged(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => {
            let TaggedValue { tag, value } = &**tagged;
            Some((tag.to_string().trim_start_matches('!').to_owned(), value))
        }
        _ => None,
    }
}

/// Whether `value` is `!Ref` of a parameter of `template` that has a numeric default.
fn parameter_with_default(template: &Value, value: &Value) -> bool {
    match tagged(value) {
        Some((tag, Value::String(name))) if tag == "Ref" => template["Parameters"][name.as_str()]
            .get("Default")
            .is_some_and(|default| default.as_u64().is_some()),
        _ => false,
    }
}

/// The one resource of `kind`.
fn only<'a>(template: &'a Value, kind: &str) -> Option<(String, &'a Value)> {
    let mut found = resources(template)
        .into_iter()
        .filter(|(_, resource)| resource["Type"].as_str() == Some(kind));
    let first = found.next();
    if found.next().is_some() {
        return None;
    }
    first
}

/// Every way `template` misses the rules in the module docs.
fn gaps(template: &Value) -> Vec<String> {
    let mut found = Vec::new();
    match only(template, "AWS::DynamoDB::Table") {
        None => found.push("not exactly one DynamoDB table".to_owned()),
        Some((name, table)) => {
            for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
                if table[policy].as_str() != Some("Retain") {
                    found.push(format!("{name}: {policy} is not Retain"));
                }
            }
            let recovery = &table["Properties"]["PointInTimeRecoverySpecification"];
            if recovery["PointInTimeRecoveryEnabled"].as_bool() != Some(true) {
                found.push(format!("{name}: point-in-time recovery is off"));
            }
        }
    }
    let Some((stage_name, stage)) = only(template, "AWS::ApiGatewayV2::Stage") else {
        found.push("not exactly one stage".to_owned());
        return found;
    };
    let properties = &stage["Properties"];
    for (what, settings) in [
        ("every route", &properties["DefaultRouteSettings"]),
        ("$connect", &properties["RouteSettings"]["$connect"]),
    ] {
        for limit in ["ThrottlingRateLimit", "ThrottlingBurstLimit"] {
            if !parameter_with_default(template, &settings[limit]) {
                found.push(format!(
                    "{stage_name}: {limit} for {what} is not a parameter with a default"
                ));
            }
        }
    }
    found.extend(access_log_gaps(
        template,
        &stage_name,
        &properties["AccessLogSettings"],
    ));
    let reserved = &template["Resources"][PUSHER]["Properties"]["ReservedConcurrentExecutions"];
    let reserved_parameter = match tagged(reserved) {
        // `!If [condition, !Ref Parameter, !Ref AWS::NoValue]`: reserved unless set to 0.
        Some((tag, Value::Sequence(branches))) if tag == "If" && branches.len() == 3 => {
            parameter_with_default(template, &branches[1])
        }
        _ => parameter_with_default(template, reserved),
    };
    if !reserved_parameter {
        found.push(format!(
            "{PUSHER}: ReservedConcurrentExecutions is not a parameter"
        ));
    }
    found
}

/// What is wrong with the stage's access logs: they must go to a log group of this
/// template, with a retention, in a format that leaves the query string out.
fn access_log_gaps(template: &Value, stage: &str, settings: &Value) -> Vec<String> {
    // Either the settings, or `!If [condition, settings, !Ref AWS::NoValue]`.
    let settings = match tagged(settings) {
        Some((tag, Value::Sequence(branches))) if tag == "If" && branches.len() == 3 => {
            &branches[1]
        }
        _ => settings,
    };
    let destination = match tagged(&settings["DestinationArn"]) {
        Some((tag, Value::String(target))) if tag == "GetAtt" => {
            target.strip_suffix(".Arn").map(str::to_owned)
        }
        _ => None,
    };
    let Some(group) = destination else {
        return vec![format!(
            "{stage}: no access logs to a log group of this template"
        )];
    };
    let mut found = Vec::new();
    let resource = &template["Resources"][group.as_str()];
    if resource["Type"].as_str() != Some("AWS::Logs::LogGroup") {
        found.push(format!(
            "{stage}: access logs go to {group}, not a log group"
        ));
    } else if resource["Properties"].get("RetentionInDays").is_none() {
        found.push(format!("{group}: the access logs are kept for ever"));
    }
    let format = settings["Format"].as_str().unwrap_or_default();
    if format.is_empty() {
        found.push(format!("{stage}: the access log has no format"));
    }
    if format.contains("requestQueryString") || format.contains("$context.requestOverride") {
        found.push(format!(
            "{stage}: the access log format writes the query string, where a token can travel"
        ));
    }
    found
}

#[test]
fn the_template_throttles_logs_and_keeps_its_data() {
    assert_eq!(gaps(&template()), Vec::<String>::new());
}

#[test]
fn a_table_that_can_be_deleted_or_has_no_recovery_is_caught() {
    let mut broken = template();
    let table = &mut broken["Resources"]["ConnectionsTable"];
    table["DeletionPolicy"] = Value::String("Delete".into());
    table
        .as_mapping_mut()
        .expect("a mapping")
        .remove("UpdateReplacePolicy");
    table["Properties"]
        .as_mapping_mut()
        .expect("properties")
        .remove("PointInTimeRecoverySpecification");

    assert_eq!(
        gaps(&broken),
        [
            "ConnectionsTable: DeletionPolicy is not Retain",
            "ConnectionsTable: UpdateReplacePolicy is not Retain",
            "ConnectionsTable: point-in-time recovery is off",
        ]
    );
}

#[test]
fn a_stage_without_throttles_or_a_fixed_one_is_caught() {
    let mut broken = template();
    let stage = &mut broken["Resources"]["Stage"]["Properties"];
    stage
        .as_mapping_mut()
        .expect("properties")
        .remove("DefaultRouteSettings");
    stage["RouteSettings"]["$connect"]["ThrottlingRateLimit"] = Value::from(100);

    assert_eq!(
        gaps(&broken),
        [
            "Stage: ThrottlingRateLimit for every route is not a parameter with a default",
            "Stage: ThrottlingBurstLimit for every route is not a parameter with a default",
            "Stage: ThrottlingRateLimit for $connect is not a parameter with a default",
        ]
    );
}

#[test]
fn access_logs_that_are_missing_kept_for_ever_or_hold_the_query_are_caught() {
    let mut no_logs = template();
    no_logs["Resources"]["Stage"]["Properties"]
        .as_mapping_mut()
        .expect("properties")
        .remove("AccessLogSettings");
    assert_eq!(
        gaps(&no_logs),
        ["Stage: no access logs to a log group of this template"]
    );

    let mut leaky = template();
    leaky["Resources"]["AccessLogs"]["Properties"]
        .as_mapping_mut()
        .expect("properties")
        .remove("RetentionInDays");
    let Some((_, Value::Sequence(branches))) =
        tagged(&leaky["Resources"]["Stage"]["Properties"]["AccessLogSettings"])
            .map(|(tag, value)| (tag, value.clone()))
    else {
        panic!("the access log settings are an !If");
    };
    let mut settings = branches[1].clone();
    settings["Format"] = Value::String(r#"{"query":"$context.requestQueryString"}"#.into());
    leaky["Resources"]["Stage"]["Properties"]["AccessLogSettings"] = settings;
    assert_eq!(
        gaps(&leaky),
        [
            "AccessLogs: the access logs are kept for ever",
            "Stage: the access log format writes the query string, where a token can travel",
        ]
    );
}

#[test]
fn a_pusher_whose_concurrency_cannot_be_reserved_is_caught() {
    let mut broken = template();
    broken["Resources"][PUSHER]["Properties"]
        .as_mapping_mut()
        .expect("properties")
        .remove("ReservedConcurrentExecutions");

    assert_eq!(
        gaps(&broken),
        ["PusherFunction: ReservedConcurrentExecutions is not a parameter"]
    );
}
