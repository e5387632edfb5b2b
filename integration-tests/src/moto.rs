//! moto's server, speaking the SQS and SNS wire protocols, for the publisher tests.
//!
//! Found at `MOTO_ENDPOINT` if set, else started from `.venv/bin/moto_server` at the
//! repository root (`bash .ci/test` installs it: `pip install moto[server]`) on a free
//! 127.0.0.1 port, once per test binary, and stopped when the binary exits. If neither
//! works the test fails, saying what to install.

use std::sync::OnceLock;

use aws_config::SdkConfig;
use wspush_adapters::aws::local_sdk_config;

use crate::local_process::{self, LocalProcess, repository_root};

/// The variable that points the tests at a running moto server.
pub const ENDPOINT_VAR: &str = "MOTO_ENDPOINT";

/// moto's endpoint, starting it if needed.
///
/// # Panics
///
/// When moto can be neither found nor started.
pub fn endpoint() -> String {
    if let Some(endpoint) = crate::local_process::given_endpoint(ENDPOINT_VAR) {
        return endpoint;
    }
    static MOTO: OnceLock<LocalProcess> = OnceLock::new();
    MOTO.get_or_init(|| {
        let server = repository_root().join(".venv/bin/moto_server");
        if !server.is_file() {
            panic!(
                "moto is not installed ({} is missing). Run `bash .ci/test`, or \
                 `python3 -m venv .venv && .venv/bin/pip install 'moto[server]==5.2.5'` at the \
                 repository root, or set {ENDPOINT_VAR} to a running moto server.",
                server.display()
            );
        }
        local_process::start("moto", &server, &["-H", "127.0.0.1", "-p", "{port}"])
            .unwrap_or_else(|problem| panic!("{problem}"))
    })
    .endpoint
    .clone()
}

/// An SDK configuration for moto: fixed test credentials, `us-east-1`, moto's endpoint.
pub fn sdk_config() -> SdkConfig {
    local_sdk_config("us-east-1", "testing", "testing")
        .into_builder()
        .endpoint_url(endpoint())
        .build()
}

/// A new queue on moto named `<name>-<random>` (tests share one moto server); its URL.
pub async fn new_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.create_queue()
        .queue_name(format!("{name}-{}", fastrand::u32(..)))
        .send()
        .await
        .expect("create queue")
        .queue_url()
        .expect("queue URL")
        .to_owned()
}

/// The SQS event Lambda's event source mapping would hand the pusher for `messages`
/// (received from a moto queue), as JSON text.
pub fn sqs_event(messages: &[aws_sdk_sqs::types::Message]) -> String {
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|message| {
            serde_json::json!({
                "messageId": message.message_id(),
                "receiptHandle": message.receipt_handle(),
                "body": message.body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:notifications",
                "awsRegion": "us-east-1",
                "attributes": {}, "messageAttributes": {}
            })
        })
        .collect();
    serde_json::json!({ "Records": records }).to_string()
}
