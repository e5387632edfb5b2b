//! A function's whole environment: what Lambda sets, the endpoints of the local components
//! and the template's variables; and the check of the template's variables against what the
//! function's code reads.

use std::collections::BTreeMap;
use std::path::Path;

use wspush_handlers::settings::{
    self, ConnectSettings, DisconnectSettings, FunctionSettings, PusherSettings, Settings,
    SubscribeSettings,
};

use crate::functions::template::{self, FunctionSpec};
use crate::functions::{FunctionsError, SqsEndpoint};

/// The whole environment of a function's instances: what Lambda sets, the endpoints of the
/// local components, and the template's variables.
pub(crate) fn of(
    spec: &FunctionSpec,
    region: &str,
    dynamodb_endpoint: &str,
    sqs: Option<&SqsEndpoint>,
) -> BTreeMap<String, String> {
    let mut environment: BTreeMap<String, String> = [
        ("AWS_LAMBDA_FUNCTION_NAME", spec.name.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            spec.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", spec.name),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_owned()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
        ("AWS_REGION", region.to_owned()),
        ("AWS_DEFAULT_REGION", region.to_owned()),
        // Throwaway credentials: the local components check signatures' shape, not keys.
        ("AWS_ACCESS_KEY_ID", "local".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
        ("AWS_SESSION_TOKEN", "local".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint.to_owned()),
        ("_HANDLER", "bootstrap".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
        ("PATH", "/usr/local/bin:/usr/bin/:/bin".to_owned()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect();
    if let Some(level) = &spec.log_level {
        environment.insert("AWS_LAMBDA_LOG_LEVEL".to_owned(), level.clone());
    }
    if let Some(sqs) = sqs {
        environment.insert("AWS_ENDPOINT_URL_SQS".to_owned(), sqs.endpoint.clone());
    }
    environment.extend(spec.environment.clone());
    environment
}

/// Refuses, by name, a `WSPUSH_` variable no function reads (renamed on one side only), and
/// a variable the function's code requires that its environment lacks; both with the
/// settings code the function runs.
pub(crate) fn check(
    spec: &FunctionSpec,
    environment: &BTreeMap<String, String>,
    template: &Path,
) -> Result<(), FunctionsError> {
    let refuse = |problem: String| FunctionsError::Environment {
        function: spec.name.clone(),
        problem,
        template: template.to_owned(),
    };
    if let Some(unread) = spec.environment.keys().find(|key| {
        key.starts_with("WSPUSH_") && !settings::FUNCTION_VARIABLES.contains(&key.as_str())
    }) {
        return Err(refuse(format!(
            "the template sets {unread}, which no wspush function reads"
        )));
    }
    let lookup = Settings::from_lookup(|key: &str| environment.get(key).cloned());
    let read = match spec.name.as_str() {
        template::CONNECT => ConnectSettings::read(&lookup).map(drop),
        template::DISCONNECT => DisconnectSettings::read(&lookup).map(drop),
        template::SUBSCRIBE => SubscribeSettings::read(&lookup).map(drop),
        _ => PusherSettings::read(&lookup).map(drop),
    };
    read.map_err(|error| refuse(error.to_string()))
}
