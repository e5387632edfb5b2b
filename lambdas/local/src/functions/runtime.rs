//! The Lambda Runtime API a function's instance polls: `GET /runtime/invocation/next` hands it
//! the next invocation (with the request ID, deadline and function ARN headers), and it
//! answers with `/response` or `/error`, or reports a failed start with `/init/error`.
//!
//! One queue per function, shared by the instances it has over time. Each instance is served
//! on its own port and knows its generation: once an instance is replaced, its handlers hand
//! out nothing more, so no invocation goes to a process that is gone.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::functions::{InvokeError, uuid};

/// The Runtime API's version prefix.
const PREFIX: &str = "/2018-06-01/runtime";

/// What one invocation's caller waits on.
pub(crate) type Answer = oneshot::Sender<Result<Bytes, InvokeError>>;

/// An invocation waiting for an instance.
pub(crate) struct Invocation {
    pub(crate) payload: Bytes,
    pub(crate) answer: Answer,
}

/// An invocation an instance has taken.
struct Taken {
    generation: u64,
    answer: Answer,
}

/// The function's queue and what its instances have taken.
#[derive(Default)]
struct Queue {
    /// The instance that may take invocations; older ones get none.
    generation: u64,
    pending: VecDeque<Invocation>,
    taken: HashMap<String, Taken>,
    /// When the current instance asked for its first invocation (it is then initialised).
    ready_at: Option<Instant>,
    /// What the current instance reported to `/init/error`.
    init_error: Option<String>,
    /// The instance whose invocation ran out of time, to be killed.
    timed_out: Option<u64>,
}

/// The Runtime API of one function.
pub(crate) struct RuntimeApi {
    /// The function's logical ID (for errors).
    pub(crate) name: String,
    /// Its ARN, given in every invocation's headers.
    arn: String,
    /// How long an invocation may run.
    timeout: Duration,
    queue: Mutex<Queue>,
    /// Wakes handlers waiting for an invocation (or for their instance to be replaced).
    arrived: Notify,
    /// Wakes the supervisor to kill an instance whose invocation ran out of time.
    pub(crate) timed_out: Notify,
    /// Wakes the supervisor when an instance asks for its first invocation.
    pub(crate) ready: Notify,
}

impl RuntimeApi {
    pub(crate) fn new(name: &str, region: &str, timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            arn: format!("arn:aws:lambda:{region}:000000000000:function:{name}"),
            timeout,
            queue: Mutex::default(),
            arrived: Notify::new(),
            timed_out: Notify::new(),
            ready: Notify::new(),
        })
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues an invocation for the next instance that asks.
    pub(crate) fn enqueue(&self, invocation: Invocation) {
        self.queue().pending.push_back(invocation);
        self.arrived.notify_waiters();
    }

    /// Starts serving instance `generation` on a free port of 127.0.0.1; it is the one that
    /// takes invocations from now on. Returns its address (`AWS_LAMBDA_RUNTIME_API`).
    pub(crate) async fn serve(
        self: &Arc<Self>,
        generation: u64,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        {
            let mut queue = self.queue();
            queue.generation = generation;
            queue.ready_at = None;
            queue.init_error = None;
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let router = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next))
            .route(
                &format!("{PREFIX}/invocation/{{id}}/response"),
                post(response),
            )
            .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(error))
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(Instance {
                api: Arc::clone(self),
                generation,
            });
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::warn!(%error, "a Runtime API server stopped");
            }
        });
        Ok((address, server))
    }

    /// Instance `generation` is gone: it takes nothing more, and what it had taken fails
    /// with `failure`. If it never finished its start, the invocations waiting fail too (as
    /// Lambda fails the invocation whose cold start failed); the next instance takes later
    /// ones.
    pub(crate) fn instance_gone(&self, generation: u64, failure: impl Fn() -> InvokeError) {
        let (taken, pending) = {
            let mut queue = self.queue();
            if queue.generation == generation {
                queue.generation += 1;
            }
            let ids: Vec<String> = queue
                .taken
                .iter()
                .filter(|(_, taken)| taken.generation == generation)
                .map(|(id, _)| id.clone())
                .collect();
            let taken: Vec<Taken> = ids.iter().filter_map(|id| queue.taken.remove(id)).collect();
            let pending: Vec<Invocation> = match queue.ready_at {
                None => queue.pending.drain(..).collect(),
                Some(_) => Vec::new(),
            };
            (taken, pending)
        };
        self.arrived.notify_waiters();
        fail(taken, pending, failure);
    }

    /// When the current instance asked for its first invocation, if it has.
    pub(crate) fn ready_at(&self) -> Option<Instant> {
        self.queue().ready_at
    }

    /// What the current instance reported to `/init/error`.
    pub(crate) fn init_error(&self) -> Option<String> {
        self.queue().init_error.clone()
    }

    /// Fails what is still waiting: the gateway is stopping.
    pub(crate) fn close(&self) {
        let (taken, pending) = {
            let mut queue = self.queue();
            queue.generation += 1;
            let taken: Vec<Taken> = queue.taken.drain().map(|(_, taken)| taken).collect();
            let pending: Vec<Invocation> = queue.pending.drain(..).collect();
            (taken, pending)
        };
        self.arrived.notify_waiters();
        fail(taken, pending, || InvokeError::Stopped);
    }

    /// Instance `generation` has exited: it takes nothing more from now on.
    pub(crate) fn retire(&self, generation: u64) {
        let mut queue = self.queue();
        if queue.generation == generation {
            queue.generation += 1;
        }
        drop(queue);
        self.arrived.notify_waiters();
    }

    /// Whether instance `generation` ran an invocation out of time (and is to be killed).
    pub(crate) fn take_timed_out(&self, generation: u64) -> bool {
        let mut queue = self.queue();
        match queue.timed_out {
            Some(timed_out) if timed_out == generation => {
                queue.timed_out = None;
                true
            }
            _ => false,
        }
    }

    /// Answers the caller of invocation `id`, if it is still waiting; the generation of the
    /// instance that had taken it.
    fn answer(&self, id: &str, result: Result<Bytes, InvokeError>) -> Option<u64> {
        let taken = self.queue().taken.remove(id)?;
        let _ = taken.answer.send(result);
        Some(taken.generation)
    }
}

/// Answers every invocation `taken` or `pending` with `failure`.
fn fail(taken: Vec<Taken>, pending: Vec<Invocation>, failure: impl Fn() -> InvokeError) {
    let answers = taken.into_iter().map(|taken| taken.answer);
    for answer in answers.chain(pending.into_iter().map(|invocation| invocation.answer)) {
        let _ = answer.send(Err(failure()));
    }
}

/// What each handler of one instance's server knows.
#[derive(Clone)]
struct Instance {
    api: Arc<RuntimeApi>,
    generation: u64,
}

/// `GET /runtime/invocation/next`: waits for an invocation and hands it over.
async fn next(State(instance): State<Instance>) -> Response {
    let api = &instance.api;
    loop {
        let arrived = api.arrived.notified();
        tokio::pin!(arrived);
        arrived.as_mut().enable();
        let handed = {
            let mut queue = api.queue();
            if queue.generation != instance.generation {
                return runtime_error(StatusCode::GONE, "this instance has been replaced");
            }
            if queue.ready_at.is_none() {
                queue.ready_at = Some(Instant::now());
                api.ready.notify_one();
            }
            match queue.pending.pop_front() {
                Some(invocation) => {
                    let id = uuid();
                    queue.taken.insert(
                        id.clone(),
                        Taken {
                            generation: instance.generation,
                            answer: invocation.answer,
                        },
                    );
                    Some((id, invocation.payload))
                }
                None => None,
            }
        };
        if let Some((id, payload)) = handed {
            let deadline = SystemTime::now() + api.timeout;
            tokio::spawn(expire(Arc::clone(api), id.clone(), api.timeout));
            return invocation_response(api, &id, deadline, payload);
        }
        arrived.await;
    }
}

fn invocation_response(
    api: &RuntimeApi,
    id: &str,
    deadline: SystemTime,
    payload: Bytes,
) -> Response {
    let deadline_ms = deadline
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", id.to_owned());
    set("lambda-runtime-deadline-ms", deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", api.arn.clone());
    set(
        "lambda-runtime-trace-id",
        format!(
            "Root=1-{:08x}-{:024x};Sampled=0",
            deadline_ms / 1000,
            fastrand::u128(..) >> 32
        ),
    );
    set("content-type", "application/json".to_owned());
    (StatusCode::OK, headers, payload).into_response()
}

/// Ends invocation `id` if it is still running at its deadline (and a moment), and has its
/// instance killed, as Lambda ends a function that times out.
async fn expire(api: Arc<RuntimeApi>, id: String, timeout: Duration) {
    tokio::time::sleep(timeout + Duration::from_millis(100)).await;
    let function = api.name.clone();
    if let Some(generation) = api.answer(&id, Err(InvokeError::TimedOut { function, timeout })) {
        api.queue().timed_out = Some(generation);
        api.timed_out.notify_one();
    }
}

/// `POST /runtime/invocation/{id}/response`.
async fn response(
    State(instance): State<Instance>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    match instance.api.answer(&id, Ok(body)) {
        Some(_) => accepted(),
        None => unknown(&id),
    }
}

/// `POST /runtime/invocation/{id}/error`: the function failed the invocation.
async fn error(State(instance): State<Instance>, Path(id): Path<String>, body: Bytes) -> Response {
    let (error_type, message) = diagnostic(&body);
    let failure = InvokeError::Function {
        function: instance.api.name.clone(),
        error_type,
        message,
    };
    match instance.api.answer(&id, Err(failure)) {
        Some(_) => accepted(),
        None => unknown(&id),
    }
}

/// `POST /runtime/init/error`: the instance could not start (it exits next).
async fn init_error(State(instance): State<Instance>, body: Bytes) -> Response {
    let (error_type, message) = diagnostic(&body);
    let mut queue = instance.api.queue();
    if queue.generation == instance.generation {
        queue.init_error = Some(format!("{error_type}: {message}"));
    }
    accepted()
}

/// The `errorType` and `errorMessage` of a Runtime API error body.
fn diagnostic(body: &[u8]) -> (String, String) {
    let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = |key: &str| parsed[key].as_str().map(str::to_owned);
    (
        text("errorType").unwrap_or_else(|| "Unknown".to_owned()),
        text("errorMessage").unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
    )
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, json!({"status": "OK"}).to_string()).into_response()
}

fn unknown(id: &str) -> Response {
    runtime_error(
        StatusCode::BAD_REQUEST,
        &format!("no invocation {id} is waiting for an answer (it ended, or timed out)"),
    )
}

fn runtime_error(status: StatusCode, message: &str) -> Response {
    let body = json!({"errorType": "InvalidRequestID", "errorMessage": message});
    (status, body.to_string()).into_response()
}
