//! Real local components started as child processes, on free ports, stopped with the test
//! binary however it ends.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A component started by [`start`], listening on 127.0.0.1.
pub struct LocalProcess {
    /// Its endpoint, `http://127.0.0.1:<port>`.
    pub endpoint: String,
    // The watchdog shell that owns the process; kept so that it is not reaped early.
    _watchdog: Mutex<Child>,
}

/// The repository's root folder (where `node_modules/` and `.venv/` are installed).
pub fn repository_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| std::path::PathBuf::from("."), Path::to_path_buf)
}

/// The endpoint of an already running component, when the variable `var` names one
/// (`DYNAMODB_ENDPOINT`, `MOTO_ENDPOINT`): the one place the harness reads the environment.
pub fn given_endpoint(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// A port nobody listens on right now.
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| format!("finding a free port: {error}"))
}

/// Starts `program` with `args` (where `{port}` stands for the port chosen) and waits until
/// it accepts connections on that port.
///
/// A watchdog shell runs the program and stops it as soon as this process is gone, however
/// it ends: statics are never dropped, so nothing in-process could stop it.
pub fn start(name: &str, program: &Path, args: &[&str]) -> Result<LocalProcess, String> {
    let port = free_port()?;
    let log = std::env::temp_dir().join(format!("wspush-{name}-{port}.log"));
    let script = r#"
        parent=$1; log=$2; shift 2
        "$@" >"$log" 2>&1 &
        child=$!
        while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.5; done
        kill "$child" 2>/dev/null
        wait "$child"
    "#;
    let mut watchdog = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(format!("wspush-{name}"))
        .arg(std::process::id().to_string())
        .arg(&log)
        .arg(program)
        .args(
            args.iter()
                .map(|arg| arg.replace("{port}", &port.to_string())),
        )
        .stdin(Stdio::null())
        // Not this process's output: a caller reading it to the end (as a test running a
        // binary with `output()` does) would wait for the watchdog, and the watchdog for
        // that caller to reap this process.
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("starting sh for {name}: {error}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(LocalProcess {
                endpoint: format!("http://127.0.0.1:{port}"),
                _watchdog: Mutex::new(watchdog),
            });
        }
        if let Ok(Some(status)) = watchdog.try_wait() {
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!(
                "{name} ({}) exited ({status}) before answering on port {port}. Its output:\n{output}",
                program.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = watchdog.kill();
    Err(format!(
        "{name} did not answer on 127.0.0.1:{port} within 60 s; see {}",
        log.display()
    ))
}
