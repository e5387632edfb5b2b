//! The deployable functions under the local gateway (`wspush-local --lambdas DIR`): each
//! function's `bootstrap` (as `sam build` or `cargo lambda build` leaves it) runs as a child
//! process polling a Lambda Runtime API the gateway serves, with the environment
//! `deploy/template.yaml` gives it, and `$connect`, `$disconnect`, the routes and the pusher
//! go through them instead of the in-process handlers.
//!
//! The rooms: `template` (the functions and their environment, references resolved),
//! `environment` (what else Lambda sets, and the check against what the code reads),
//! `runtime` (the Runtime API and each function's queue), `process` (starting, watching and
//! replacing instances), `queue` (the notification queue polled as the event source mapping
//! would).

mod environment;
mod process;
mod queue;
mod runtime;
mod template;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::ApiGatewayProxyResponse;
use axum::body::Bytes;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use queue::SqsEndpoint;
pub use template::TemplateError;

use crate::functions::process::{Launch, Start};
use crate::functions::runtime::{Invocation, RuntimeApi};
use crate::functions::template::{FunctionSpec, Locals};

/// How the gateway runs the deployable functions.
#[derive(Debug, Clone)]
pub struct FunctionsConfig {
    /// Where the `bootstrap` binaries are: `deploy/.aws-sam/build` as `sam build` leaves it
    /// (`{LogicalId}/bootstrap`), or cargo-lambda's `target/lambda` (`{binary}/bootstrap`).
    pub dir: PathBuf,
    /// The template whose functions these are (`deploy/template.yaml`).
    pub template: PathBuf,
    /// Template parameters, as `sam deploy --parameter-overrides` would set them (the
    /// gateway's options); the others keep their defaults.
    pub parameters: BTreeMap<String, String>,
    /// An SQS endpoint (moto): the template's queue is created there, and polled as the
    /// pusher's event source mapping would.
    pub sqs: Option<SqsEndpoint>,
}

/// An invocation that did not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InvokeError {
    /// The function answered with an error (`/invocation/{id}/error`).
    #[error("{function} failed the invocation: {error_type}: {message}")]
    Function {
        /// The function.
        function: String,
        /// Its `errorType`.
        error_type: String,
        /// Its `errorMessage`.
        message: String,
    },
    /// The instance exited while it ran the invocation.
    #[error("{function} exited ({status}) while running the invocation\n{output}")]
    Crashed {
        /// The function.
        function: String,
        /// How it exited.
        status: String,
        /// The last lines it wrote.
        output: String,
    },
    /// The instance failed to start.
    #[error("{function} failed to start: {report}")]
    InitFailed {
        /// The function.
        function: String,
        /// Why.
        report: String,
    },
    /// The invocation ran past the function's timeout (its instance is killed).
    #[error("{function} timed out after {timeout:?}")]
    TimedOut {
        /// The function.
        function: String,
        /// Its `Timeout`.
        timeout: Duration,
    },
    /// The answer is not the JSON the event's caller reads.
    #[error("{function} answered what is not {expected}: {problem}")]
    BadAnswer {
        /// The function.
        function: String,
        /// What was expected.
        expected: &'static str,
        /// The parser's words.
        problem: String,
    },
    /// The gateway is stopping.
    #[error("the local gateway is stopping")]
    Stopped,
}

/// The functions could not be started.
#[derive(Debug, thiserror::Error)]
pub enum FunctionsError {
    /// The template cannot be read or resolved.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A function's binary is not where the build leaves it.
    #[error("{function}: no bootstrap at {} or {} (run `sam build` in deploy/, or `cargo lambda build --release`)", .tried[0].display(), .tried[1].display())]
    NoBinary {
        /// The function.
        function: String,
        /// Where it was looked for.
        tried: [PathBuf; 2],
    },
    /// A function's environment is not what its code reads.
    #[error("{function}: {problem} (its environment comes from {template})")]
    Environment {
        /// The function.
        function: String,
        /// What is wrong, naming the variable.
        problem: String,
        /// The template.
        template: PathBuf,
    },
    /// A function exited before it was ready.
    #[error("{function} failed to start: {report}")]
    Start {
        /// The function.
        function: String,
        /// Why, with its last lines of output.
        report: String,
    },
    /// The SQS endpoint cannot be used.
    #[error("the SQS endpoint: {0}")]
    Sqs(String),
}

/// How long a function's first instance may take to start.
const INIT_LIMIT: Duration = Duration::from_secs(30);

/// What is known where the functions run.
pub(crate) struct Site<'a> {
    /// The DynamoDB endpoint and table.
    pub(crate) dynamodb_endpoint: &'a str,
    pub(crate) table: &'a str,
    /// The gateway's `@connections` endpoint.
    pub(crate) management_endpoint: String,
}

/// One function: its Runtime API and its instances' cold starts.
pub(crate) struct Function {
    api: Arc<RuntimeApi>,
    cold_starts: Arc<Mutex<Vec<Duration>>>,
}

impl Function {
    /// Invokes the function with `payload` and waits for its answer.
    pub(crate) async fn invoke(&self, payload: Bytes) -> Result<Bytes, InvokeError> {
        let (answer, answered) = oneshot::channel();
        self.api.enqueue(Invocation { payload, answer });
        answered.await.unwrap_or(Err(InvokeError::Stopped))
    }

    /// Invokes it with an API Gateway event and reads its proxy answer; a failed invocation
    /// is answered 502 (and logged), as API Gateway answers an integration that failed.
    pub(crate) async fn proxy(&self, event: &impl Serialize) -> ApiGatewayProxyResponse {
        let payload = match serde_json::to_vec(event) {
            Ok(payload) => Bytes::from(payload),
            Err(error) => return failed(&self.api.name, &error),
        };
        let answer = self.invoke(payload).await.and_then(|answer| {
            serde_json::from_slice::<ApiGatewayProxyResponse>(&answer).map_err(|error| {
                InvokeError::BadAnswer {
                    function: self.api.name.clone(),
                    expected: "an API Gateway proxy response",
                    problem: error.to_string(),
                }
            })
        });
        answer.unwrap_or_else(|error| failed(&self.api.name, &error))
    }

    /// The cold starts of its instances so far.
    pub(crate) fn cold_starts(&self) -> Vec<Duration> {
        self.cold_starts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn failed(function: &str, error: &dyn std::fmt::Display) -> ApiGatewayProxyResponse {
    tracing::error!(function, "the integration failed: {error}");
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = 502;
    response.body = Some(Body::Text(
        json!({"message": "Internal server error"}).to_string(),
    ));
    response
}

/// The four functions, running.
pub(crate) struct Functions {
    pub(crate) connect: Function,
    pub(crate) disconnect: Function,
    pub(crate) subscribe: Function,
    pub(crate) pusher: Function,
    region: String,
    queue: Option<queue::Poller>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Functions {
    /// Reads the template, checks each function's environment against what its code reads,
    /// and starts the four, each ready (its first instance asking for an invocation) before
    /// this returns.
    pub(crate) async fn start(
        config: &FunctionsConfig,
        site: Site<'_>,
    ) -> Result<Self, FunctionsError> {
        let region = "us-east-1".to_owned();
        let queue = match &config.sqs {
            Some(sqs) => Some(queue::Poller::create(sqs, &region).await?),
            None => None,
        };
        let locals = Locals {
            table: site.table.to_owned(),
            management_endpoint: site.management_endpoint,
            queue_url: queue.as_ref().map(|queue| queue.url().to_owned()),
            region: region.clone(),
            parameters: config.parameters.clone(),
        };
        let specs = template::read(&config.template, &locals)?;
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut started = Vec::new();
        for spec in &specs {
            let binary = locate(&config.dir, spec)?;
            let environment =
                environment::of(spec, &region, site.dynamodb_endpoint, config.sqs.as_ref());
            environment::check(spec, &environment, &config.template)?;
            let api = RuntimeApi::new(&spec.name, &region, spec.timeout);
            let cold_starts = Arc::default();
            let (start, starting) = watch::channel(Start::Starting);
            tasks.push(tokio::spawn(process::supervise(
                Arc::clone(&api),
                Launch {
                    binary,
                    environment,
                },
                start,
                Arc::clone(&cold_starts),
                stopped.clone(),
            )));
            started.push((Function { api, cold_starts }, starting));
        }
        let mut functions = Vec::new();
        let mut failure = None;
        for (function, mut starting) in started {
            let name = function.api.name.clone();
            let outcome = tokio::time::timeout(
                INIT_LIMIT,
                starting.wait_for(|start| *start != Start::Starting),
            )
            .await;
            let report = match outcome {
                Ok(Ok(start)) => match &*start {
                    Start::Failed(report) => Some(report.clone()),
                    _ => None,
                },
                Ok(Err(_)) => Some("its supervisor stopped".to_owned()),
                Err(_) => Some(format!(
                    "it did not ask for an invocation within {INIT_LIMIT:?}"
                )),
            };
            if let (Some(report), None) = (report, &failure) {
                failure = Some(FunctionsError::Start {
                    function: name,
                    report,
                });
            }
            functions.push(function);
        }
        let mut functions = functions.into_iter();
        let mut next = || {
            functions
                .next()
                .expect("the template has the four functions")
        };
        let running = Self {
            connect: next(),
            disconnect: next(),
            subscribe: next(),
            pusher: next(),
            region,
            queue,
            stop,
            tasks: Mutex::new(tasks),
        };
        if let Some(failure) = failure {
            running.shutdown().await;
            return Err(failure);
        }
        if let Some(queue) = &running.queue {
            let batch_size = specs
                .iter()
                .find(|spec| spec.name == template::PUSHER)
                .and_then(|spec| spec.queue_batch_size)
                .unwrap_or(10);
            let poller = queue.poll(
                Arc::clone(&running.pusher.api),
                batch_size,
                running.stop.subscribe(),
            );
            running
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(poller);
        }
        Ok(running)
    }

    /// Invokes the pusher with an SQS event of one record holding `request` (a notification
    /// request's JSON), and answers with its batch item failures: 200 when there are none,
    /// 502 when the record failed or the invocation did.
    pub(crate) async fn notify(&self, request: &str) -> (u16, Value) {
        let message_id = uuid();
        let event = queue::event(&self.region, [(message_id.as_str(), request, "")]);
        let answer = self
            .pusher
            .invoke(Bytes::from(event.to_string()))
            .await
            .and_then(|answer| queue::batch_item_failures(&self.pusher.api.name, &answer));
        match answer {
            Ok(failures) if failures.is_empty() => (
                200,
                json!({"function": template::PUSHER, "messageId": message_id, "batchItemFailures": []}),
            ),
            Ok(failures) => (
                502,
                json!({"function": template::PUSHER, "messageId": message_id, "batchItemFailures": failures}),
            ),
            Err(error) => (
                502,
                json!({"function": template::PUSHER, "messageId": message_id, "error": error.to_string()}),
            ),
        }
    }

    /// The cold starts of each function's instances so far, by logical ID.
    pub(crate) fn cold_starts(&self) -> BTreeMap<String, Vec<Duration>> {
        [
            &self.connect,
            &self.disconnect,
            &self.subscribe,
            &self.pusher,
        ]
        .into_iter()
        .map(|function| (function.api.name.clone(), function.cold_starts()))
        .collect()
    }

    /// Stops the instances (and the queue's poller), failing what still waits.
    pub(crate) async fn shutdown(&self) {
        let _ = self.stop.send(true);
        for function in [
            &self.connect,
            &self.disconnect,
            &self.subscribe,
            &self.pusher,
        ] {
            function.api.close();
        }
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// The function's `bootstrap`: `{dir}/{LogicalId}/bootstrap` (`sam build`), else
/// `{dir}/{binary}/bootstrap` (cargo-lambda).
fn locate(dir: &Path, spec: &FunctionSpec) -> Result<PathBuf, FunctionsError> {
    let tried = [
        dir.join(&spec.name).join("bootstrap"),
        dir.join(&spec.binary).join("bootstrap"),
    ];
    match tried.iter().find(|path| path.is_file()) {
        Some(path) => Ok(path.clone()),
        None => Err(FunctionsError::NoBinary {
            function: spec.name.clone(),
            tried,
        }),
    }
}

/// A random ID in the UUID form Lambda's request IDs and SQS's message IDs have.
pub(crate) fn uuid() -> String {
    let hex = format!("{:032x}", fastrand::u128(..));
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
