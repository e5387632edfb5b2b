//! Least privilege in `deploy/template.yaml`, read as YAML (CloudFormation tags included):
//!
//! - every function's permissions are a list of inline statements this test can read (no
//!   SAM policy templates, managed policies, custom roles or connectors; resources and
//!   actions as plain strings, `!Sub` strings or `!GetAtt`), and no IAM resources live beside
//!   them;
//! - no Lambda permission is granted to every principal (`*`);
//! - no statement allows `*` actions or a resource with a wildcard, except the pusher's
//!   `POST @connections/*` (connection IDs are not known in advance);
//! - `execute-api:ManageConnections` is granted to the pusher, and to the subscribe function
//!   only under `HasHistory` (a resume posts what the client missed), scoped to this
//!   template's WebSocket API and stage, `POST @connections`; `DELETE @connections` (a
//!   backend's control disconnect) to the pusher alone;
//! - no SQS action but `sqs:SendMessage`, and that on the notification queue only: the pusher's (continuations), and the
//!   subscribe and disconnect functions' under `HasPresence` (joins and leaves);
//! - every DynamoDB statement on the table itself carries a `dynamodb:LeadingKeys` condition
//!   (`ForAllValues:StringLike`) naming the item kinds it may reach: connections and their
//!   subscriptions (`c#*`) for every function, each with its own calls only (the disconnect
//!   function's `GetItem` under `HasPresence` only), the request ledger (`r#*`) for the pusher
//!   alone and only for the ledger's calls, history (`s#*`) for the pusher's appends and the
//!   subscribe function's reads alone, both under `HasHistory`, presence (`p#*`) for the
//!   pusher, subscribe and disconnect functions' `GetItem` and `UpdateItem` alone, under
//!   `HasPresence`.
//!
//! `hardening.rs` checks the rest of the operations side: throttles, reserved concurrency,
//! access logs, and the table kept with point-in-time recovery.
//!
//! The checkers are also run on broken copies of the template, so each rule is shown to fail.

mod hardening;

use serde_norway::Value;
use serde_norway::value::TaggedValue;

const TEMPLATE: &str = include_str!("../../../deploy/template.yaml");
const PUSHER: &str = "PusherFunction";
const TABLE_ARN: &str = "GetAtt(ConnectionsTable.Arn)";
/// What the pusher's request ledger calls.
const LEDGER_ACTIONS: [&str; 3] = [
    "dynamodb:getitem",
    "dynamodb:putitem",
    "dynamodb:deleteitem",
];
const MANAGE_CONNECTIONS: &str = "execute-api:ManageConnections";
const SUBSCRIBE: &str = "SubscribeFunction";
/// What the pusher's appends call on history items.
const APPEND_ACTIONS: [&str; 4] = [
    "dynamodb:getitem",
    "dynamodb:putitem",
    "dynamodb:updateitem",
    "dynamodb:deleteitem",
];
/// What a resume calls on history items.
const HISTORY_READ_ACTIONS: [&str; 2] = ["dynamodb:getitem", "dynamodb:query"];
/// The condition history permissions are granted under.
const HAS_HISTORY: &str = "HasHistory";
/// The condition presence permissions are granted under.
const HAS_PRESENCE: &str = "HasPresence";
const DISCONNECT: &str = "DisconnectFunction";
/// What presence calls on presence items.
const PRESENCE_ACTIONS: [&str; 2] = ["dynamodb:getitem", "dynamodb:updateitem"];
const QUEUE_ARN: &str = "GetAtt(NotificationsQueue.Arn)";

fn template() -> Value {
    serde_norway::from_str(TEMPLATE).expect("deploy/template.yaml is YAML")
}

/// What a resource or action that cannot be read is shown as.
const UNREADABLE: &str = "<unreadable>";

/// A resource or action as text: plain strings as they are, a `!Sub` string as its pattern,
/// `!GetAtt X.Arn` as `GetAtt(X.Arn)`, `!Ref P` of a parameter whose `AllowedPattern` admits
/// no wildcard as `Ref(P)`. Anything else (`!Ref` of a parameter that could be `*`, `!Join`,
/// `!If`, a `!Sub` with variables of its own) is [`UNREADABLE`]: never trusted.
fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Tagged(tagged) => {
            let TaggedValue { tag, value } = &**tagged;
            match (tag.to_string().trim_start_matches('!'), value) {
                // `!Sub "${X.Arn}"` is `!GetAtt X.Arn` written another way.
                ("Sub", Value::String(text)) => match text
                    .strip_prefix("${")
                    .and_then(|rest| rest.strip_suffix('}'))
                {
                    Some(attribute) if !attribute.contains(['$', '{', '}']) => {
                        format!("GetAtt({attribute})")
                    }
                    _ => text.clone(),
                },
                ("GetAtt", Value::String(text)) => format!("GetAtt({text})"),
                ("Ref", Value::String(name)) if parameter_admits_no_wildcard(name) => {
                    format!("Ref({name})")
                }
                _ => UNREADABLE.to_owned(),
            }
        }
        _ => UNREADABLE.to_owned(),
    }
}

/// Whether `deploy/template.yaml`'s parameter `name` has an `AllowedPattern` that
/// [admits no wildcard](pattern_admits_no_wildcard).
fn parameter_admits_no_wildcard(name: &str) -> bool {
    template()["Parameters"][name]["AllowedPattern"]
        .as_str()
        .is_some_and(pattern_admits_no_wildcard)
}

/// Whether a regular expression can never match a `*` or `?`: outside its character classes
/// (none of which holds them, or negates) it has no `*`, `?`, `.` or escape, so only literal
/// text, classes, `{m,n}` counts, `+`, groups and anchors.
fn pattern_admits_no_wildcard(pattern: &str) -> bool {
    let mut outside = String::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('[') {
        outside.push_str(&rest[..open]);
        let Some(close) = rest[open..].find(']') else {
            return false;
        };
        let class = &rest[open + 1..open + close];
        if class.starts_with('^') || class.contains(['*', '?', '\\']) {
            return false;
        }
        rest = &rest[open + close + 1..];
    }
    outside.push_str(rest);
    !outside.contains(['*', '?', '.', '\\'])
}

/// A field that may be one value or a list of them, as text.
fn texts(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Sequence(items)) => items.iter().map(text).collect(),
        Some(single) => vec![text(single)],
        None => Vec::new(),
    }
}

fn resources(template: &Value) -> Vec<(String, &Value)> {
    template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .map(|(name, resource)| (name.as_str().expect("a name").to_owned(), resource))
        .collect()
}

/// Every way `template` breaks the rules in the module docs.
fn violations(template: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let all = resources(template);
    let api = all
        .iter()
        .find(|(_, resource)| resource["Type"].as_str() == Some("AWS::ApiGatewayV2::Api"))
        .map(|(name, _)| name.clone());
    let connections_arn = |method: &str| {
        api.as_ref().map(|api| {
            format!(
                "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{api}}}/${{StageName}}/{method}/@connections/*"
            )
        })
    };
    let (post_arn, delete_arn) = (connections_arn("POST"), connections_arn("DELETE"));
    let manage_connections = MANAGE_CONNECTIONS.to_ascii_lowercase();
    if template["Globals"]["Function"].get("Policies").is_some() {
        found.push("Globals: function policies must be per function".to_owned());
    }
    for (name, resource) in &all {
        let kind = resource["Type"].as_str().unwrap_or_default();
        if kind.starts_with("AWS::IAM::") || kind == "AWS::Serverless::Connector" {
            found.push(format!(
                "{name}: {kind} is not checked by this test; add it here"
            ));
        }
        if kind == "AWS::Lambda::Permission" && text(&resource["Properties"]["Principal"]) == "*" {
            found.push(format!("{name}: a Lambda permission for every principal"));
        }
        if kind != "AWS::Serverless::Function" {
            continue;
        }
        let properties = &resource["Properties"];
        if properties.get("Role").is_some() {
            found.push(format!("{name}: a custom Role is not checked by this test"));
        }
        let policies = match properties.get("Policies") {
            None => Vec::new(),
            Some(Value::Sequence(policies)) => policies.clone(),
            Some(other) => {
                let shown = serde_norway::to_string(other).unwrap_or_default();
                found.push(format!(
                    "{name}: Policies is not a list of inline statements: {}",
                    shown.trim()
                ));
                continue;
            }
        };
        for (condition, policy) in policies.iter().flat_map(conditional_branches) {
            let Some(statements) = policy.get("Statement").and_then(Value::as_sequence) else {
                found.push(format!(
                    "{name}: policy {} is not an inline Statement list",
                    text(policy)
                ));
                continue;
            };
            for statement in statements {
                if statement["Effect"].as_str() != Some("Allow") {
                    continue;
                }
                // IAM compares actions without regard to case.
                let actions: Vec<String> = texts(statement.get("Action"))
                    .into_iter()
                    .map(|action| match action.as_str() {
                        UNREADABLE => action,
                        _ => action.to_ascii_lowercase(),
                    })
                    .collect();
                let targets = texts(statement.get("Resource"));
                if statement.get("NotAction").is_some() || statement.get("NotResource").is_some() {
                    found.push(format!("{name}: NotAction / NotResource allow too much"));
                }
                for action in &actions {
                    if action == UNREADABLE {
                        found.push(format!("{name}: an action this test cannot read"));
                    } else if action.contains(['*', '?']) {
                        found.push(format!("{name}: action `{action}` is a wildcard"));
                    }
                }
                let manages = actions.contains(&manage_connections);
                let resumes = name == SUBSCRIBE && condition == Some(HAS_HISTORY);
                if manages && name != PUSHER && !resumes {
                    found.push(format!("{name}: only the pusher may post to connections"));
                }
                if targets.is_empty() {
                    found.push(format!("{name}: a statement without Resource"));
                }
                if let Some(action) = actions
                    .iter()
                    .find(|action| action.starts_with("sqs:") && *action != "sqs:sendmessage")
                {
                    found.push(format!("{name}: `{action}` on a queue is not a send"));
                }
                if actions.iter().any(|action| action == "sqs:sendmessage") {
                    let announces = matches!(name.as_str(), SUBSCRIBE | DISCONNECT)
                        && condition == Some(HAS_PRESENCE);
                    if name != PUSHER && !announces {
                        found.push(format!(
                            "{name}: only the pusher, and the subscribe and disconnect functions under {HAS_PRESENCE}, may send to the queue"
                        ));
                    }
                    if targets.iter().any(|target| target != QUEUE_ARN) {
                        found.push(format!(
                            "{name}: sqs:SendMessage beyond the notification queue"
                        ));
                    }
                }
                let dynamodb = actions.iter().any(|action| action.starts_with("dynamodb:"));
                if dynamodb && targets.iter().any(|target| target == TABLE_ARN) {
                    found.extend(leading_keys(name, condition, statement, &actions));
                }
                for target in &targets {
                    let posts = Some(target) == post_arn.as_ref();
                    let closes = Some(target) == delete_arn.as_ref();
                    let is_connections = manages && (posts || closes);
                    if target == UNREADABLE {
                        found.push(format!("{name}: a resource this test cannot read"));
                    } else if manages && closes && name != PUSHER {
                        found.push(format!(
                            "{name}: only the pusher may close connections (DELETE @connections)"
                        ));
                    } else if manages && !is_connections {
                        found.push(format!(
                            "{name}: {MANAGE_CONNECTIONS} on `{target}`, not this API's POST or DELETE @connections"
                        ));
                    } else if target.contains(['*', '?']) && !is_connections {
                        found.push(format!("{name}: resource `{target}` is a wildcard"));
                    }
                }
            }
        }
    }
    found
}

/// A policy as the policies it may be, each with the condition it is granted under: both
/// branches of `!If [condition, a, b]` (but `!Ref AWS::NoValue`), or itself.
fn conditional_branches(policy: &Value) -> Vec<(Option<&str>, &Value)> {
    if let Value::Tagged(tagged) = policy
        && tagged.tag.to_string().trim_start_matches('!') == "If"
        && let Value::Sequence(branches) = &tagged.value
        && branches.len() == 3
    {
        let condition = branches[0].as_str();
        return branches[1..]
            .iter()
            .filter(|branch| text(branch) != "Ref(AWS::NoValue)" && !is_no_value(branch))
            .enumerate()
            // Only the first branch holds under the condition.
            .map(|(index, branch)| (condition.filter(|_| index == 0), branch))
            .collect();
    }
    vec![(None, policy)]
}

fn is_no_value(value: &Value) -> bool {
    matches!(value, Value::Tagged(tagged)
        if tagged.tag.to_string().trim_start_matches('!') == "Ref"
            && tagged.value.as_str() == Some("AWS::NoValue"))
}

/// What is wrong with the `dynamodb:LeadingKeys` condition of `function`'s statement on
/// the table: it must exist, hold only `c#*` (connections and subscriptions), `r#*`
/// (request items) or `s#*` (history); `r#*` is the pusher's, for the ledger's calls alone,
/// and `s#*` the pusher's appends and the subscribe function's reads, under `HasHistory`.
fn leading_keys(
    function: &str,
    granted_under: Option<&str>,
    statement: &Value,
    actions: &[String],
) -> Vec<String> {
    let condition = &statement["Condition"];
    let keys = condition
        .get("ForAllValues:StringLike")
        .and_then(|like| like.get("dynamodb:LeadingKeys"));
    let Some(keys) = keys else {
        return vec![format!(
            "{function}: DynamoDB on the table without a ForAllValues:StringLike dynamodb:LeadingKeys condition"
        )];
    };
    let keys = texts(Some(keys));
    let mut found = Vec::new();
    if keys.is_empty() {
        found.push(format!(
            "{function}: an empty dynamodb:LeadingKeys condition"
        ));
    }
    for key in &keys {
        match key.as_str() {
            "c#*" => {
                let allowed: &[&str] = match (function, granted_under) {
                    ("ConnectFunction", _) => &["dynamodb:putitem"],
                    (DISCONNECT, Some(HAS_PRESENCE)) => &["dynamodb:getitem"],
                    (DISCONNECT, _) => &[
                        "dynamodb:query",
                        "dynamodb:batchwriteitem",
                        "dynamodb:deleteitem",
                    ],
                    (SUBSCRIBE, _) => &[
                        "dynamodb:getitem",
                        "dynamodb:query",
                        "dynamodb:putitem",
                        "dynamodb:updateitem",
                        "dynamodb:batchwriteitem",
                        "dynamodb:deleteitem",
                    ],
                    (PUSHER, _) => &[
                        "dynamodb:batchgetitem",
                        "dynamodb:getitem",
                        "dynamodb:query",
                        "dynamodb:putitem",
                        "dynamodb:updateitem",
                        "dynamodb:batchwriteitem",
                        "dynamodb:deleteitem",
                    ],
                    _ => &[],
                };
                if let Some(action) = actions
                    .iter()
                    .find(|action| !allowed.contains(&action.as_str()))
                {
                    found.push(format!(
                        "{function}: `{action}` on connection items (c#*) is not one of its calls{}",
                        granted_under.map_or(String::new(), |condition| format!(" under {condition}"))
                    ));
                }
            }
            "r#*" if function != PUSHER => found.push(format!(
                "{function}: only the pusher may reach request items (r#*)"
            )),
            "r#*" => {
                if let Some(action) = actions
                    .iter()
                    .find(|action| !LEDGER_ACTIONS.contains(&action.as_str()))
                {
                    found.push(format!(
                        "{function}: `{action}` on request items (r#*) is not a ledger call"
                    ));
                }
            }
            "s#*" => {
                let allowed: &[&str] = match function {
                    PUSHER => &APPEND_ACTIONS,
                    SUBSCRIBE => &HISTORY_READ_ACTIONS,
                    _ => &[],
                };
                if allowed.is_empty() || granted_under != Some(HAS_HISTORY) {
                    found.push(format!(
                        "{function}: only the pusher and the subscribe function may reach history items (s#*), under {HAS_HISTORY}"
                    ));
                } else if let Some(action) = actions
                    .iter()
                    .find(|action| !allowed.contains(&action.as_str()))
                {
                    found.push(format!(
                        "{function}: `{action}` on history items (s#*) is not one of its history calls"
                    ));
                }
            }
            "p#*" => {
                let presence = matches!(function, PUSHER | SUBSCRIBE | DISCONNECT);
                if !presence || granted_under != Some(HAS_PRESENCE) {
                    found.push(format!(
                        "{function}: only the pusher, subscribe and disconnect functions may reach presence items (p#*), under {HAS_PRESENCE}"
                    ));
                } else if let Some(action) = actions
                    .iter()
                    .find(|action| !PRESENCE_ACTIONS.contains(&action.as_str()))
                {
                    found.push(format!(
                        "{function}: `{action}` on presence items (p#*) is not a presence call"
                    ));
                }
            }
            other => found.push(format!(
                "{function}: dynamodb:LeadingKeys `{other}` is not an item kind (c#*, r#*, s#* or p#*)"
            )),
        }
    }
    found
}

/// The template with `edit` applied to the pusher's or `function`'s first policy statements.
fn edited(function: &str, edit: impl FnOnce(&mut Vec<Value>)) -> Value {
    let mut template = template();
    let statements = template["Resources"][function]["Properties"]["Policies"][0]["Statement"]
        .as_sequence_mut()
        .expect("inline statements");
    edit(statements);
    template
}

fn statement(yaml: &str) -> Value {
    serde_norway::from_str(yaml).expect("a statement")
}

#[test]
fn the_template_grants_each_function_only_what_it_needs() {
    assert_eq!(violations(&template()), Vec::<String>::new());
}

#[test]
fn history_outside_its_condition_or_beyond_its_calls_is_caught() {
    let broken = edited("DisconnectFunction", |statements| {
        statements.push(statement(
            "{Effect: Allow, Action: [dynamodb:GetItem], Resource: !GetAtt ConnectionsTable.Arn, Condition: {'ForAllValues:StringLike': {'dynamodb:LeadingKeys': ['s#*']}}}",
        ));
    });
    assert_eq!(
        violations(&broken),
        [
            "DisconnectFunction: only the pusher and the subscribe function may reach history items (s#*), under HasHistory"
        ]
    );

    let mut broken = template();
    let reads = &mut broken["Resources"][SUBSCRIBE]["Properties"]["Policies"][1];
    let Value::Tagged(tagged) = reads else {
        panic!("the resume policy is an !If");
    };
    tagged.value[1]["Statement"][0]["Action"]
        .as_sequence_mut()
        .expect("actions")
        .push(Value::String("dynamodb:PutItem".into()));
    assert_eq!(
        violations(&broken),
        [
            "SubscribeFunction: `dynamodb:putitem` on history items (s#*) is not one of its history calls"
        ]
    );
}

#[test]
fn presence_outside_its_condition_or_beyond_its_calls_is_caught() {
    let broken = edited(DISCONNECT, |statements| {
        statements.push(statement(
            "{Effect: Allow, Action: [dynamodb:UpdateItem], Resource: !GetAtt ConnectionsTable.Arn, Condition: {'ForAllValues:StringLike': {'dynamodb:LeadingKeys': ['p#*']}}}",
        ));
    });
    assert_eq!(
        violations(&broken),
        [
            "DisconnectFunction: only the pusher, subscribe and disconnect functions may reach presence items (p#*), under HasPresence"
        ]
    );

    let broken = edited("ConnectFunction", |statements| {
        statements.push(statement(
            "{Effect: Allow, Action: [dynamodb:GetItem], Resource: !GetAtt ConnectionsTable.Arn, Condition: {'ForAllValues:StringLike': {'dynamodb:LeadingKeys': ['p#*']}}}",
        ));
    });
    assert_eq!(
        violations(&broken),
        [
            "ConnectFunction: only the pusher, subscribe and disconnect functions may reach presence items (p#*), under HasPresence"
        ]
    );

    let mut broken = template();
    let presence = &mut broken["Resources"][PUSHER]["Properties"]["Policies"][2];
    let Value::Tagged(tagged) = presence else {
        panic!("the pusher's presence policy is an !If");
    };
    tagged.value[1]["Statement"][0]["Action"]
        .as_sequence_mut()
        .expect("actions")
        .push(Value::String("dynamodb:DeleteItem".into()));
    assert_eq!(
        violations(&broken),
        ["PusherFunction: `dynamodb:deleteitem` on presence items (p#*) is not a presence call"]
    );
}

#[test]
fn a_call_on_connection_items_beyond_a_functions_own_is_caught() {
    let broken = edited("ConnectFunction", |statements| {
        statements[0]["Action"]
            .as_sequence_mut()
            .expect("actions")
            .push(Value::String("dynamodb:UpdateItem".into()));
    });
    assert_eq!(
        violations(&broken),
        [
            "ConnectFunction: `dynamodb:updateitem` on connection items (c#*) is not one of its calls"
        ]
    );

    // The disconnect function reads a connection (its user) only for presence.
    let broken = edited(DISCONNECT, |statements| {
        statements[0]["Action"]
            .as_sequence_mut()
            .expect("actions")
            .push(Value::String("dynamodb:GetItem".into()));
    });
    assert_eq!(
        violations(&broken),
        [
            "DisconnectFunction: `dynamodb:getitem` on connection items (c#*) is not one of its calls"
        ]
    );
}

#[test]
fn a_queue_action_other_than_a_send_is_caught() {
    let broken = edited(PUSHER, |statements| {
        statements.push(statement(
            "{Effect: Allow, Action: [sqs:PurgeQueue], Resource: !GetAtt NotificationsQueue.Arn}",
        ));
    });
    assert_eq!(
        violations(&broken),
        ["PusherFunction: `sqs:purgequeue` on a queue is not a send"]
    );
}

#[test]
fn sending_to_the_queue_without_presence_or_beyond_it_is_caught() {
    let broken = edited(DISCONNECT, |statements| {
        statements.push(statement(
            "{Effect: Allow, Action: [sqs:SendMessage], Resource: !GetAtt NotificationsQueue.Arn}",
        ));
    });
    assert_eq!(
        violations(&broken),
        [
            "DisconnectFunction: only the pusher, and the subscribe and disconnect functions under HasPresence, may send to the queue"
        ]
    );

    let broken = edited(PUSHER, |statements| {
        statements.push(statement(
            "{Effect: Allow, Action: [sqs:SendMessage], Resource: !GetAtt NotificationsDeadLetterQueue.Arn}",
        ));
    });
    assert_eq!(
        violations(&broken),
        ["PusherFunction: sqs:SendMessage beyond the notification queue"]
    );
}

#[test]
fn closing_connections_from_another_function_is_caught() {
    let mut broken = template();
    let resume = &mut broken["Resources"][SUBSCRIBE]["Properties"]["Policies"][1];
    let Value::Tagged(tagged) = resume else {
        panic!("the resume policy is an !If");
    };
    let statements = tagged.value[1]["Statement"]
        .as_sequence_mut()
        .expect("statements");
    let posting = statements
        .iter_mut()
        .find(|statement| {
            texts(statement.get("Action"))
                .iter()
                .any(|action| action == MANAGE_CONNECTIONS)
        })
        .expect("the resume's post");
    let resource = text(&posting["Resource"]).replace("/POST/", "/DELETE/");
    let resource = resource
        .trim_start_matches("Sub(")
        .trim_end_matches(')')
        .to_owned();
    posting["Resource"] = Value::Tagged(Box::new(TaggedValue {
        tag: serde_norway::value::Tag::new("Sub"),
        value: Value::String(resource),
    }));
    assert_eq!(
        violations(&broken),
        ["SubscribeFunction: only the pusher may close connections (DELETE @connections)"]
    );
}

#[test]
fn only_the_pusher_and_a_resuming_subscribe_mention_manage_connections() {
    let template = template();
    let posters: Vec<String> = resources(&template)
        .into_iter()
        .filter(|(_, resource)| {
            let policies = &resource["Properties"]["Policies"];
            serde_norway::to_string(policies)
                .expect("yaml")
                .contains(MANAGE_CONNECTIONS)
        })
        .map(|(name, _)| name)
        .collect();

    assert_eq!(posters, [SUBSCRIBE, PUSHER]);
}

#[test]
fn a_star_resource_is_caught() {
    let broken = edited("ConnectFunction", |statements| {
        statements.push(statement(
            "{Effect: Allow, Action: [dynamodb:Scan], Resource: '*'}",
        ));
    });

    assert_eq!(
        violations(&broken),
        ["ConnectFunction: resource `*` is a wildcard"]
    );
}

#[test]
fn a_wildcard_action_or_an_index_wildcard_is_caught() {
    let broken = edited("SubscribeFunction", |statements| {
        statements.push(statement(
            "{Effect: Allow, Action: 'dynamodb:*', Resource: !Sub '${ConnectionsTable.Arn}/index/*'}",
        ));
    });

    assert_eq!(
        violations(&broken),
        [
            "SubscribeFunction: action `dynamodb:*` is a wildcard",
            "SubscribeFunction: resource `${ConnectionsTable.Arn}/index/*` is a wildcard",
        ]
    );
}

#[test]
fn posting_from_another_function_is_caught() {
    let broken = edited("SubscribeFunction", |statements| {
        statements.push(statement(
            "{Effect: Allow, Action: [execute-api:ManageConnections], Resource: !Sub 'arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${StageName}/POST/@connections/*'}",
        ));
    });

    assert_eq!(
        violations(&broken),
        ["SubscribeFunction: only the pusher may post to connections"]
    );
}

#[test]
fn manage_connections_on_another_api_or_every_api_is_caught() {
    for (target, shown) in [
        (
            "!Sub 'arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${OtherApi}/${StageName}/POST/@connections/*'",
            "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${OtherApi}/${StageName}/POST/@connections/*",
        ),
        (
            "!Sub 'arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:*'",
            "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:*",
        ),
    ] {
        let broken = edited(PUSHER, |statements| {
            let last = statements
                .last_mut()
                .expect("the ManageConnections statement");
            last["Resource"] = serde_norway::from_str(target).expect("yaml");
        });

        assert_eq!(
            violations(&broken),
            [format!(
                "PusherFunction: {MANAGE_CONNECTIONS} on `{shown}`, not this API's POST or DELETE @connections"
            )],
            "{target}"
        );
    }
}

#[test]
fn a_policy_template_or_custom_role_is_caught_as_uncheckable() {
    let mut broken = template();
    let connect = &mut broken["Resources"]["ConnectFunction"]["Properties"];
    connect["Policies"]
        .as_sequence_mut()
        .expect("policies")
        .push(
            serde_norway::from_str("DynamoDBCrudPolicy: {TableName: !Ref ConnectionsTable}")
                .expect("yaml"),
        );
    connect["Role"] = Value::String("arn:aws:iam::123456789012:role/admin".into());

    let found = violations(&broken);

    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("custom Role"), "{found:?}");
    assert!(
        found[1].contains("not an inline Statement list"),
        "{found:?}"
    );
}

#[test]
fn policies_that_are_not_a_list_of_statements_are_caught() {
    for (policies, shown) in [
        ("AdministratorAccess", "AdministratorAccess"),
        (
            "{Statement: [{Effect: Allow, Action: '*', Resource: '*'}]}",
            "Statement:",
        ),
    ] {
        let mut broken = template();
        broken["Resources"]["ConnectFunction"]["Properties"]["Policies"] =
            serde_norway::from_str(policies).expect("yaml");

        let found = violations(&broken);

        assert_eq!(found.len(), 1, "{policies}: {found:?}");
        assert!(
            found[0].starts_with("ConnectFunction: Policies is not a list of inline statements")
                && found[0].contains(shown),
            "{found:?}"
        );
    }
}

#[test]
fn resources_and_actions_the_test_cannot_read_are_caught() {
    let broken = edited("DisconnectFunction", |statements| {
        statements.push(statement(
            "{Effect: Allow, Action: !Ref SomeParameter, Resource: !Join ['', ['arn:aws:dynamodb:*:*:table/*']]}",
        ));
        statements.push(statement(
            "{Effect: Allow, Action: [DynamoDB:GetItem], Resource: !Sub ['${X}', {X: '*'}]}",
        ));
    });

    assert_eq!(
        violations(&broken),
        [
            "DisconnectFunction: an action this test cannot read",
            "DisconnectFunction: a resource this test cannot read",
            "DisconnectFunction: a resource this test cannot read",
        ]
    );
}

#[test]
fn a_case_changed_manage_connections_or_an_open_lambda_permission_is_caught() {
    let mut broken = edited("SubscribeFunction", |statements| {
        statements.push(statement(
            "{Effect: Allow, Action: [Execute-API:manageconnections], Resource: !GetAtt ConnectionsTable.Arn}",
        ));
    });
    broken["Resources"]["SubscribeInvokePermission"]["Properties"]["Principal"] =
        Value::String("*".into());

    let found = violations(&broken);

    assert!(
        found.contains(&"SubscribeFunction: only the pusher may post to connections".to_owned()),
        "{found:?}"
    );
    assert!(
        found.contains(
            &"SubscribeInvokePermission: a Lambda permission for every principal".to_owned()
        ),
        "{found:?}"
    );
}

#[test]
fn a_table_statement_without_leading_keys_or_reaching_the_ledger_is_caught() {
    let broken = edited("SubscribeFunction", |statements| {
        statements[0]["Condition"] = Value::Null;
        statements.push(statement(
            "{Effect: Allow, Action: [dynamodb:DeleteItem], Resource: !GetAtt ConnectionsTable.Arn, Condition: {'ForAllValues:StringLike': {'dynamodb:LeadingKeys': ['r#*', '*']}}}",
        ));
    });

    assert_eq!(
        violations(&broken),
        [
            "SubscribeFunction: DynamoDB on the table without a ForAllValues:StringLike dynamodb:LeadingKeys condition",
            "SubscribeFunction: only the pusher may reach request items (r#*)",
            "SubscribeFunction: dynamodb:LeadingKeys `*` is not an item kind (c#*, r#*, s#* or p#*)",
        ]
    );
}

#[test]
fn the_table_written_as_a_sub_still_needs_leading_keys() {
    let broken = edited("DisconnectFunction", |statements| {
        statements.push(statement(
            "{Effect: Allow, Action: [dynamodb:DeleteItem], Resource: !Sub '${ConnectionsTable.Arn}'}",
        ));
    });

    assert_eq!(
        violations(&broken),
        [
            "DisconnectFunction: DynamoDB on the table without a ForAllValues:StringLike dynamodb:LeadingKeys condition"
        ]
    );
}

#[test]
fn the_pusher_reaching_request_items_beyond_the_ledger_is_caught() {
    let broken = edited(PUSHER, |statements| {
        let ledger = statements
            .iter_mut()
            .find(|statement| {
                serde_norway::to_string(&statement["Condition"])
                    .expect("yaml")
                    .contains("r#*")
            })
            .expect("the ledger statement");
        ledger["Action"]
            .as_sequence_mut()
            .expect("actions")
            .push(Value::String("dynamodb:Query".into()));
    });

    assert_eq!(
        violations(&broken),
        ["PusherFunction: `dynamodb:query` on request items (r#*) is not a ledger call"]
    );
}

#[test]
fn the_secret_is_reachable_through_a_pattern_limited_parameter_only() {
    assert!(parameter_admits_no_wildcard("JwtHs256SecretArn"));
    assert!(
        !parameter_admits_no_wildcard("JwtIssuer"),
        "no pattern at all"
    );
    for pattern in [
        "^arn:aws:secretsmanager:.*$",
        "^arn:[*]$",
        "^arn:[^:]+$",
        "^arn:\\S+$",
        "^(arn)?$",
    ] {
        assert!(!pattern_admits_no_wildcard(pattern), "{pattern}");
    }

    let broken = edited("DisconnectFunction", |statements| {
        statements.push(statement(
            "{Effect: Allow, Action: [secretsmanager:GetSecretValue], Resource: !Ref JwtIssuer}",
        ));
    });
    assert_eq!(
        violations(&broken),
        ["DisconnectFunction: a resource this test cannot read"]
    );
}

#[test]
fn a_wildcard_inside_a_conditional_policy_is_caught() {
    let mut broken = template();
    let secret_policy = &mut broken["Resources"]["ConnectFunction"]["Properties"]["Policies"][1];
    let Value::Tagged(tagged) = secret_policy else {
        panic!("the secret's policy is an !If");
    };
    tagged.value[1]["Statement"][0]["Resource"] = Value::String("*".into());

    assert_eq!(
        violations(&broken),
        ["ConnectFunction: resource `*` is a wildcard"]
    );
}

#[test]
fn the_ping_route_is_answered_by_api_gateway_itself() {
    let template = template();
    let resources = &template["Resources"];
    let route = &resources["PingRoute"]["Properties"];
    let integration = &resources["PingIntegration"]["Properties"];
    let response = &resources["PingIntegrationResponse"]["Properties"];

    assert_eq!(route["RouteKey"].as_str(), Some("ping"));
    assert_eq!(
        route["RouteResponseSelectionExpression"].as_str(),
        Some("$default")
    );
    assert_eq!(text(&route["Target"]), "integrations/${PingIntegration}");
    assert_eq!(
        integration["IntegrationType"].as_str(),
        Some("MOCK"),
        "no Lambda runs for a ping"
    );
    assert_eq!(
        response["ResponseTemplates"]["$default"].as_str(),
        Some(r#"{"action": "pong"}"#)
    );
    assert_eq!(
        resources["PingRouteResponse"]["Properties"]["RouteResponseKey"].as_str(),
        Some("$default")
    );
    let deployed = texts(resources["Deployment"].get("DependsOn"));
    assert!(deployed.contains(&"PingRoute".to_owned()), "{deployed:?}");
}

/// `!Ref name` as the referenced name.
fn reference(value: &Value) -> Option<&str> {
    let Value::Tagged(tagged) = value else {
        return None;
    };
    (tagged.tag.to_string().trim_start_matches('!') == "Ref")
        .then(|| tagged.value.as_str())
        .flatten()
}

#[test]
fn the_transport_parameter_offers_what_the_code_reads_and_reaches_the_functions_that_post() {
    use wspush_domain::endpoint::Transport;

    let template = template();
    let parameter = &template["Parameters"]["Transport"];
    let allowed: Vec<String> = texts(parameter.get("AllowedValues"));

    assert_eq!(allowed, ["lean", "sdk"]);
    for value in &allowed {
        assert!(
            value.parse::<Transport>().is_ok(),
            "{value} is not a transport the code reads"
        );
    }
    assert_eq!(
        parameter["Default"].as_str(),
        Some(Transport::default().as_str()),
        "the template's default is the code's"
    );
    for function in ["PusherFunction", "SubscribeFunction"] {
        let variables = &template["Resources"][function]["Properties"]["Environment"]["Variables"];
        assert_eq!(
            reference(&variables["WSPUSH_TRANSPORT"]),
            Some("Transport"),
            "{function}"
        );
    }
}
