//! The functions of `deploy/template.yaml` as the local gateway runs them: each one's binary,
//! timeout, memory size and environment (the `Globals` and its own), with the template's
//! references resolved to their local counterparts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_norway::Value;
use serde_norway::value::TaggedValue;

/// The four functions the gateway routes to, by their logical IDs in the template.
pub(crate) const CONNECT: &str = "ConnectFunction";
pub(crate) const DISCONNECT: &str = "DisconnectFunction";
pub(crate) const SUBSCRIBE: &str = "SubscribeFunction";
pub(crate) const PUSHER: &str = "PusherFunction";
pub(crate) const FUNCTIONS: [&str; 4] = [CONNECT, DISCONNECT, SUBSCRIBE, PUSHER];

/// One function of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FunctionSpec {
    /// Its logical ID (`ConnectFunction`).
    pub(crate) name: String,
    /// The cargo binary it is built from (`Metadata.BuildProperties.Binary`): cargo-lambda's
    /// `target/lambda/{binary}/bootstrap`.
    pub(crate) binary: String,
    /// `Timeout`: an invocation still running this long after it started is ended, and its
    /// instance killed, as Lambda does.
    pub(crate) timeout: Duration,
    /// `MemorySize`, in MB (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
    pub(crate) memory_mb: u64,
    /// The application log level (`LoggingConfig.ApplicationLogLevel`), if set.
    pub(crate) log_level: Option<String>,
    /// Its environment, resolved. A variable whose reference has no local counterpart (the
    /// queue, with no SQS endpoint) is left out.
    pub(crate) environment: BTreeMap<String, String>,
    /// The `BatchSize` of its SQS event source, if it has one.
    pub(crate) queue_batch_size: Option<u32>,
}

/// What the template's references resolve to locally.
#[derive(Debug, Clone, Default)]
pub(crate) struct Locals {
    /// `!Ref ConnectionsTable`.
    pub(crate) table: String,
    /// The `@connections` endpoint (`https://${WebSocketApi}.execute-api...`).
    pub(crate) management_endpoint: String,
    /// `!Ref NotificationsQueue`, when the gateway has an SQS endpoint.
    pub(crate) queue_url: Option<String>,
    /// `AWS::Region`.
    pub(crate) region: String,
    /// Parameter values that replace the template's defaults (the gateway's options, as
    /// `sam deploy --parameter-overrides` would pass them).
    pub(crate) parameters: BTreeMap<String, String>,
}

/// The template cannot be run locally, and why.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The file cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The template.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not YAML.
    #[error("{path} is not YAML: {source}")]
    Yaml {
        /// The template.
        path: PathBuf,
        /// The parser's words.
        source: serde_norway::Error,
    },
    /// Something the gateway needs is missing or not of the shape it reads.
    #[error("{path}: {problem}")]
    Shape {
        /// The template.
        path: PathBuf,
        /// What.
        problem: String,
    },
}

/// `!Ref` of the template's resources, as they resolve locally.
const TABLE_RESOURCE: &str = "ConnectionsTable";
const QUEUE_RESOURCE: &str = "NotificationsQueue";
/// The `!Sub` string of the `@connections` endpoint.
const MANAGEMENT_ENDPOINT_SUB: &str =
    "https://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${StageName}";

/// Reads the four functions of the template at `path`.
pub(crate) fn read(path: &Path, locals: &Locals) -> Result<Vec<FunctionSpec>, TemplateError> {
    let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
        path: path.to_owned(),
        source,
    })?;
    let template: Value = serde_norway::from_str(&text).map_err(|source| TemplateError::Yaml {
        path: path.to_owned(),
        source,
    })?;
    let shape = |problem: String| TemplateError::Shape {
        path: path.to_owned(),
        problem,
    };
    let resolver = Resolver::new(&template, locals).map_err(shape)?;
    let globals = &template["Globals"]["Function"];
    FUNCTIONS
        .iter()
        .map(|name| {
            let resource = &template["Resources"][*name];
            if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
                return Err(shape(format!(
                    "Resources.{name} is not an AWS::Serverless::Function"
                )));
            }
            function(name, resource, globals, &resolver).map_err(shape)
        })
        .collect()
}

fn function(
    name: &str,
    resource: &Value,
    globals: &Value,
    resolver: &Resolver<'_>,
) -> Result<FunctionSpec, String> {
    let properties = &resource["Properties"];
    let setting = |key: &str| match &properties[key] {
        Value::Null => &globals[key],
        value => value,
    };
    let number = |key: &str, default: u64| -> Result<u64, String> {
        match setting(key) {
            Value::Null => Ok(default),
            value => resolver
                .resolve(value, &format!("{name}.{key}"))?
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| format!("{name}.{key} is not a whole number")),
        }
    };
    let binary = resource["Metadata"]["BuildProperties"]["Binary"]
        .as_str()
        .ok_or_else(|| format!("{name} has no Metadata.BuildProperties.Binary"))?
        .to_owned();
    let mut environment = BTreeMap::new();
    for variables in [
        &globals["Environment"]["Variables"],
        &properties["Environment"]["Variables"],
    ] {
        let Value::Mapping(variables) = variables else {
            continue;
        };
        for (key, value) in variables {
            let key = key
                .as_str()
                .ok_or_else(|| format!("{name} has an environment variable that is not named"))?;
            match resolver.resolve(value, &format!("{name}: variable {key}"))? {
                Some(value) => environment.insert(key.to_owned(), value),
                None => environment.remove(key),
            };
        }
    }
    let log_level = match &setting("LoggingConfig")["ApplicationLogLevel"] {
        Value::Null => None,
        value => resolver.resolve(value, &format!("{name}: ApplicationLogLevel"))?,
    };
    let queue_batch_size = match &properties["Events"] {
        Value::Mapping(events) => events
            .values()
            .find(|event| event["Type"].as_str() == Some("SQS"))
            .map(|event| match &event["Properties"]["BatchSize"] {
                Value::Null => Ok(10),
                Value::Number(size) => size
                    .as_u64()
                    .and_then(|size| u32::try_from(size).ok())
                    .ok_or_else(|| format!("{name}: BatchSize {size} is not a batch size")),
                _ => Err(format!("{name}: BatchSize is not a number")),
            })
            .transpose()?,
        _ => None,
    };
    Ok(FunctionSpec {
        name: name.to_owned(),
        binary,
        timeout: Duration::from_secs(number("Timeout", 3)?),
        memory_mb: number("MemorySize", 128)?,
        log_level,
        environment,
        queue_batch_size,
    })
}

/// Resolves `!Ref`, `!Sub` and plain values to text; `None` for what has no local
/// counterpart (the variable is then left out, as `AWS::NoValue` would leave it).
struct Resolver<'a> {
    parameters: BTreeMap<&'a str, String>,
    locals: &'a Locals,
}

impl<'a> Resolver<'a> {
    fn new(template: &'a Value, locals: &'a Locals) -> Result<Self, String> {
        let Value::Mapping(declared) = &template["Parameters"] else {
            return Err("the template has no Parameters".to_owned());
        };
        let mut parameters = BTreeMap::new();
        for (name, declaration) in declared {
            let name = name.as_str().ok_or("a parameter is not named")?;
            let default = match &declaration["Default"] {
                Value::Null => None,
                value => Some(plain(value).ok_or_else(|| {
                    format!("parameter {name}: its Default is not a plain value")
                })?),
            };
            let value = match locals.parameters.get(name) {
                Some(value) => value.clone(),
                None => match default {
                    Some(default) => default,
                    // Left for a reference to fail on, by name.
                    None => continue,
                },
            };
            if let Value::Sequence(allowed) = &declaration["AllowedValues"]
                && !allowed
                    .iter()
                    .filter_map(plain)
                    .any(|allowed| allowed == value)
            {
                return Err(format!(
                    "parameter {name}: {value:?} is not one of its AllowedValues"
                ));
            }
            parameters.insert(name, value);
        }
        if let Some(unknown) = locals
            .parameters
            .keys()
            .find(|name| !parameters.contains_key(name.as_str()))
        {
            return Err(format!(
                "the local gateway sets parameter {unknown}, which the template does not declare"
            ));
        }
        Ok(Self { parameters, locals })
    }

    fn resolve(&self, value: &Value, at: &str) -> Result<Option<String>, String> {
        if let Some(text) = plain(value) {
            return Ok(Some(text));
        }
        // `!Ref X` as written, or `Ref: X` as `sam build` writes its copy.
        let (function, value) = match value {
            Value::Tagged(tagged) => {
                let TaggedValue { tag, value } = &**tagged;
                (tag.to_string().trim_start_matches('!').to_owned(), value)
            }
            Value::Mapping(mapping) if mapping.len() == 1 => {
                let (key, value) = mapping.iter().next().expect("one entry");
                let key = key.as_str().unwrap_or_default();
                (key.strip_prefix("Fn::").unwrap_or(key).to_owned(), value)
            }
            _ => return Err(format!("{at}: not a plain value, !Ref or !Sub")),
        };
        match (function.as_str(), value) {
            ("Ref", Value::String(name)) => self.reference(name, at),
            ("Sub", Value::String(text)) if text == MANAGEMENT_ENDPOINT_SUB => {
                Ok(Some(self.locals.management_endpoint.clone()))
            }
            ("Sub", Value::String(text)) => self.substitute(text, at).map(Some),
            (other, _) => Err(format!(
                "{at}: !{other} is not resolved by the local gateway (only !Ref and !Sub are)"
            )),
        }
    }

    fn reference(&self, name: &str, at: &str) -> Result<Option<String>, String> {
        if let Some(value) = self.parameters.get(name) {
            return Ok(Some(value.clone()));
        }
        match name {
            TABLE_RESOURCE => Ok(Some(self.locals.table.clone())),
            QUEUE_RESOURCE => Ok(self.locals.queue_url.clone()),
            "AWS::Region" => Ok(Some(self.locals.region.clone())),
            "AWS::NoValue" => Ok(None),
            _ => Err(format!(
                "{at}: !Ref {name} has no local counterpart (the gateway resolves the \
                 parameters, {TABLE_RESOURCE}, {QUEUE_RESOURCE} and AWS::Region)"
            )),
        }
    }

    fn substitute(&self, text: &str, at: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| format!("{at}: unclosed ${{ in !Sub {text:?}"))?;
            let name = &rest[start + 2..start + end];
            let value = match name {
                "AWS::Partition" => "aws".to_owned(),
                "AWS::URLSuffix" => "amazonaws.com".to_owned(),
                "AWS::AccountId" => "000000000000".to_owned(),
                _ => self.reference(name, at)?.ok_or_else(|| {
                    format!("{at}: ${{{name}}} in !Sub {text:?} has no local value")
                })?,
            };
            out.push_str(&value);
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// A string, number or boolean as text.
fn plain(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locals() -> Locals {
        Locals {
            table: "local-table".to_owned(),
            management_endpoint: "http://127.0.0.1:9/local".to_owned(),
            queue_url: None,
            region: "us-east-1".to_owned(),
            parameters: BTreeMap::from([("PusherMaxInFlight".to_owned(), "32".to_owned())]),
        }
    }

    fn deployed() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/template.yaml")
    }

    #[test]
    fn the_deployed_template_resolves_to_local_counterparts() {
        let functions = read(&deployed(), &locals()).expect("the template reads");
        let names: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, FUNCTIONS);
        let pusher = &functions[3];
        assert_eq!(pusher.binary, "pusher");
        assert_eq!(pusher.timeout, Duration::from_secs(60));
        assert_eq!(pusher.memory_mb, 512);
        assert_eq!(pusher.queue_batch_size, Some(10));
        assert_eq!(pusher.environment["WSPUSH_TABLE"], "local-table");
        assert_eq!(
            pusher.environment["WSPUSH_MANAGEMENT_ENDPOINT"],
            "http://127.0.0.1:9/local"
        );
        assert_eq!(
            pusher.environment["WSPUSH_MAX_IN_FLIGHT"], "32",
            "an override"
        );
        assert_eq!(pusher.environment["WSPUSH_TRANSPORT"], "lean", "a default");
        assert!(
            !pusher.environment.contains_key("WSPUSH_QUEUE_URL"),
            "no SQS endpoint, no queue"
        );
        let connect = &functions[0];
        assert_eq!(connect.timeout, Duration::from_secs(10), "from the Globals");
        assert_eq!(connect.environment["WSPUSH_IDENTITY_KEY"], "principalId");
        assert_eq!(connect.log_level.as_deref(), Some("INFO"));
        assert_eq!(connect.queue_batch_size, None);
    }

    #[test]
    fn a_queue_resolves_when_there_is_one() {
        let locals = Locals {
            queue_url: Some("http://127.0.0.1:5/000000000000/q".to_owned()),
            ..locals()
        };
        let functions = read(&deployed(), &locals).expect("the template reads");
        assert_eq!(
            functions[3].environment["WSPUSH_QUEUE_URL"],
            "http://127.0.0.1:5/000000000000/q"
        );
    }

    #[test]
    fn unknown_parameters_and_disallowed_values_are_refused_by_name() {
        let mut unknown = locals();
        unknown
            .parameters
            .insert("NoSuchParameter".to_owned(), "1".to_owned());
        let error = read(&deployed(), &unknown).unwrap_err().to_string();
        assert!(error.contains("parameter NoSuchParameter"), "{error}");

        let mut disallowed = locals();
        disallowed
            .parameters
            .insert("Transport".to_owned(), "carrier-pigeon".to_owned());
        let error = read(&deployed(), &disallowed).unwrap_err().to_string();
        assert!(
            error.contains("parameter Transport") && error.contains("AllowedValues"),
            "{error}"
        );
    }

    #[test]
    fn the_long_form_sam_build_writes_resolves_alike() {
        let dir = std::env::temp_dir().join(format!("wspush-template-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("template.yaml");
        let text = std::fs::read_to_string(deployed())
            .unwrap()
            .replace(
                "WSPUSH_IDENTITY_KEY: !Ref IdentityKey",
                "WSPUSH_IDENTITY_KEY:\n            Ref: IdentityKey",
            )
            .replace(
                "WSPUSH_MANAGEMENT_ENDPOINT: !Sub \"https://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${StageName}\"\n          WSPUSH_TRANSPORT: !Ref Transport\n          WSPUSH_MAX_IN_FLIGHT",
                "WSPUSH_MANAGEMENT_ENDPOINT:\n            Fn::Sub: \"https://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${StageName}\"\n          WSPUSH_TRANSPORT: !Ref Transport\n          WSPUSH_MAX_IN_FLIGHT",
            );
        std::fs::write(&path, &text).unwrap();
        let long = read(&path, &locals()).expect("the long form reads");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(text.contains("Fn::Sub"), "the edit was made");
        assert_eq!(
            long,
            read(&deployed(), &locals()).expect("the short form reads")
        );
    }

    #[test]
    fn references_without_a_local_counterpart_are_named() {
        let dir = std::env::temp_dir().join(format!("wspush-template-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("template.yaml");
        let text = std::fs::read_to_string(deployed()).unwrap().replace(
            "WSPUSH_IDENTITY_KEY: !Ref IdentityKey",
            "WSPUSH_IDENTITY_KEY: !GetAtt ConnectionsTable.Arn",
        );
        std::fs::write(&path, text).unwrap();
        let error = read(&path, &locals()).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            error.contains("ConnectFunction: variable WSPUSH_IDENTITY_KEY")
                && error.contains("!GetAtt"),
            "{error}"
        );
    }
}
