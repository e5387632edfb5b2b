//! A function's instances: its `bootstrap` started as a child process with the function's
//! environment and a Runtime API of its own, its output passed to the gateway's log, and a
//! new instance started when one exits or is killed for running out of time, as Lambda
//! replaces a failed execution environment.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::functions::InvokeError;
use crate::functions::runtime::RuntimeApi;

/// The lines of output kept for reports of a failed instance.
const KEPT_LINES: usize = 12;

/// How a function's instance is started.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// The `bootstrap` binary.
    pub(crate) binary: PathBuf,
    /// Its whole environment (nothing of the gateway's own is inherited, as in Lambda).
    pub(crate) environment: BTreeMap<String, String>,
}

/// Where a function's first instance got to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Start {
    /// Still starting.
    Starting,
    /// Ready for invocations, after this long (the cold start).
    Ready(Duration),
    /// It exited before it asked for an invocation.
    Failed(String),
}

/// The last lines a function wrote.
#[derive(Default)]
struct Output(Mutex<VecDeque<String>>);

impl Output {
    fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == KEPT_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    fn tail(&self) -> String {
        let lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

/// Runs instances of the function behind `api` until `stop` turns true: reports where the
/// first one got to on `start`, and every later cold start on `cold_starts`.
pub(crate) async fn supervise(
    api: Arc<RuntimeApi>,
    launch: Launch,
    start: watch::Sender<Start>,
    cold_starts: Arc<Mutex<Vec<Duration>>>,
    mut stop: watch::Receiver<bool>,
) {
    let output = Arc::new(Output::default());
    let mut backoff = Duration::from_millis(100);
    for generation in 1.. {
        let spawned = Instant::now();
        let (address, server) = match api.serve(generation).await {
            Ok(served) => served,
            Err(error) => {
                tracing::error!(function = %api.name, %error, "cannot serve a Runtime API");
                let _ = start.send(Start::Failed(format!("serving its Runtime API: {error}")));
                return;
            }
        };
        let mut child = match spawn(&launch, address, &api.name, &output) {
            Ok(child) => child,
            Err(error) => {
                let report = format!("starting {}: {error}", launch.binary.display());
                tracing::error!(function = %api.name, "{report}");
                api.instance_gone(generation, || InvokeError::InitFailed {
                    function: api.name.clone(),
                    report: report.clone(),
                });
                server.abort();
                let _ = start.send(Start::Failed(report));
                return;
            }
        };
        let ready = ready_watch(&api, spawned, &start, &cold_starts);
        tokio::pin!(ready);
        let ended = loop {
            tokio::select! {
                status = child.wait() => break Ended::Exited(status),
                // A wake-up for an instance already gone is not this one's.
                () = api.timed_out.notified() => if api.take_timed_out(generation) {
                    break Ended::TimedOut;
                },
                _ = stop.changed() => break Ended::Stopped,
                () = &mut ready => {}
            }
        };
        let initialised = api.ready_at().is_some();
        let (stopped, timed_out) = (
            matches!(ended, Ended::Stopped),
            matches!(ended, Ended::TimedOut),
        );
        let status = match ended {
            Ended::Exited(status) => status,
            Ended::TimedOut | Ended::Stopped => {
                let _ = child.kill().await;
                child.wait().await
            }
        };
        // From now on its Runtime API hands out nothing.
        api.retire(generation);
        server.abort();
        let status = status.map_or_else(|error| error.to_string(), describe);
        if stopped {
            return;
        }
        // Let the last lines it wrote reach the log (and the report).
        tokio::time::sleep(Duration::from_millis(50)).await;
        let tail = output.tail();
        if initialised {
            if !timed_out {
                tracing::error!(function = %api.name, %status, "the function exited; starting a new instance\n{tail}");
            }
            api.instance_gone(generation, || InvokeError::Crashed {
                function: api.name.clone(),
                status: status.clone(),
                output: tail.clone(),
            });
            backoff = Duration::from_millis(100);
        } else {
            let report = match api.init_error() {
                Some(init_error) => format!("{init_error} ({status})"),
                None => format!("{status} before it asked for an invocation\n{tail}"),
            };
            tracing::error!(function = %api.name, "the function failed to start: {report}");
            api.instance_gone(generation, || InvokeError::InitFailed {
                function: api.name.clone(),
                report: report.clone(),
            });
            if *start.borrow() == Start::Starting {
                let _ = start.send(Start::Failed(report));
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }
}

enum Ended {
    Exited(std::io::Result<ExitStatus>),
    TimedOut,
    Stopped,
}

/// Resolves once the instance asked for its first invocation, recording its cold start.
async fn ready_watch(
    api: &RuntimeApi,
    spawned: Instant,
    start: &watch::Sender<Start>,
    cold_starts: &Mutex<Vec<Duration>>,
) {
    loop {
        api.ready.notified().await;
        // A wake-up left by an earlier instance finds this one not ready yet.
        let Some(ready_at) = api.ready_at() else {
            continue;
        };
        let cold = ready_at.duration_since(spawned);
        tracing::info!(function = %api.name, cold_start_ms = cold.as_millis() as u64, "instance ready");
        cold_starts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(cold);
        start.send_if_modified(|start| match start {
            Start::Starting => {
                *start = Start::Ready(cold);
                true
            }
            _ => false,
        });
        return std::future::pending().await;
    }
}

fn spawn(
    launch: &Launch,
    runtime_api: std::net::SocketAddr,
    name: &str,
    output: &Arc<Output>,
) -> std::io::Result<Child> {
    let mut command = Command::new(&launch.binary);
    command
        .env_clear()
        .envs(&launch.environment)
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: Ctrl-C in the gateway's terminal stops the gateway, which
        // stops the functions after the sockets' `$disconnect`s, as it would be in Lambda.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = launch.binary.parent() {
        command.current_dir(dir);
    }
    let mut child = command.spawn()?;
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(relay(stdout, name.to_owned(), Arc::clone(output)));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(relay(stderr, name.to_owned(), Arc::clone(output)));
    }
    Ok(child)
}

/// Passes each line a function writes to the log, as CloudWatch Logs would keep it.
async fn relay(stream: impl AsyncRead + Unpin, function: String, output: Arc<Output>) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(target: "wspush_local::function", function = %function, "{line}");
        output.push(line);
    }
}

/// An exit status as Lambda's logs say it (`exit status 1`, `signal 9 (SIGKILL)`).
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => status.to_string(),
    }
}
