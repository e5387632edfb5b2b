//! `wspush-local` refuses bad arguments before it binds anything, naming the argument.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn run(args: &[&str]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wspush-local"));
    command.args(["--port", "0"]).args(args);
    for key in [
        "WSPUSH_JWT_HS256_SECRET",
        "WSPUSH_JWT_ISSUER",
        "WSPUSH_JWT_AUDIENCE",
        "WSPUSH_JWT_TOPICS_CLAIM",
        "WSPUSH_JWT_LEEWAY_SECONDS",
        "WSPUSH_ALLOWED_NAMESPACES",
        "WSPUSH_MAX_SUBSCRIPTIONS_PER_CONNECTION",
        "WSPUSH_MAX_TOPICS_PER_MESSAGE",
    ] {
        command.env_remove(key);
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wspush-local runs");
    // A gateway that accepted the arguments would serve until stopped: stop it and fail.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().expect("kill");
            child.wait().expect("reap");
            panic!("wspush-local {args:?} accepted its arguments and kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    (status.code(), stderr)
}

#[test]
fn bad_arguments_exit_non_zero_naming_the_argument() {
    let secret = "local-secret-local-secret-local-secret";
    let cases: [(&[&str], &str); 8] = [
        (
            &["--jwt-issuer", "i", "--jwt-audience", "a"],
            "tokens need a key",
        ),
        (
            &[
                "--jwt-hs256-secret",
                secret,
                "--jwt-issuer",
                "i",
                "--jwt-audience",
                "a",
                "--jwt-leeway-secs",
                "3600",
            ],
            "WSPUSH_JWT_LEEWAY_SECONDS",
        ),
        (
            &["--throttle-rate", "2"],
            "--throttle-rate must be between 0 and 1, got 2",
        ),
        (
            &["--max-posts-per-second", "0"],
            "expected a positive number or `off`",
        ),
        (
            &["--max-topics-per-message", "0"],
            "--max-topics-per-message must be at least 1",
        ),
        (
            &[
                "--jwt-hs256-secret",
                "short",
                "--jwt-issuer",
                "i",
                "--jwt-audience",
                "a",
            ],
            "the HS256 secret is 5 bytes; at least 32 are required",
        ),
        (
            &["--jwt-hs256-secret", secret, "--jwt-audience", "a"],
            "environment variable WSPUSH_JWT_ISSUER is not set",
        ),
        (
            &["--jwt-jwks-file", "/nonexistent/jwks.json"],
            "reading --jwt-jwks-file /nonexistent/jwks.json",
        ),
    ];

    for (args, words) in cases {
        let (code, stderr) = run(args);

        assert_ne!(code, Some(0), "{args:?}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
    }
}
