//! Push metrics as CloudWatch Embedded Metric Format (EMF) lines.
//!
//! In Lambda, a JSON object written on its own line to stdout with an `_aws` member is turned
//! into CloudWatch metrics by the Logs service: no API calls, no agent. Each push writes one
//! line in the namespace given (dimension `Function`), with the metrics `Delivered`,
//! `Pruned`, `Throttled`, `Retries`, `Failed`, `NotAttempted`, `Unsent` (left for a
//! continuation at the deadline), `Continuations` (requests enqueued), `HistoryAppends`
//! (history streams the request was appended to) (counts) and `Duration`
//! (milliseconds), and properties that do not become metrics but can be searched in Logs
//! Insights: `Complete`, `Audience`, `Excluded`, `Duplicates`, `ReadErrors`, `Aborted`,
//! `Stopped` (`deadline` or `scatter`), `UnreadSources`, `Generation` and `RequestId` (the
//! request's own `id`; the SQS message ID is in the log lines of its span).

use std::io::Write;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use wspush_domain::NotificationRequest;
use wspush_ports::{PushObserver, PushReport};

/// Writes one EMF line per push.
pub struct EmfMetrics {
    namespace: String,
    function: String,
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for EmfMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmfMetrics")
            .field("namespace", &self.namespace)
            .field("function", &self.function)
            .finish_non_exhaustive()
    }
}

impl EmfMetrics {
    /// Lines to stdout, where Lambda's log capture finds them.
    pub fn stdout(namespace: impl Into<String>, function: impl Into<String>) -> Self {
        Self::to_writer(namespace, function, Box::new(std::io::stdout()))
    }

    /// Lines to `out`.
    pub fn to_writer(
        namespace: impl Into<String>,
        function: impl Into<String>,
        out: Box<dyn Write + Send>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            function: function.into(),
            out: Mutex::new(out),
        }
    }
}

impl PushObserver for EmfMetrics {
    fn pushed(&self, request: &NotificationRequest, report: &PushReport) {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|now| u64::try_from(now.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or_default();
        let line = render(&self.namespace, &self.function, now_ms, request, report);
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        // A metrics line that cannot be written must not fail the push it describes.
        if let Err(error) = writeln!(out, "{line}").and_then(|()| out.flush()) {
            tracing::warn!(%error, "writing the push metrics failed");
        }
    }
}

/// The EMF line of one push, at `timestamp_ms` (milliseconds since the Unix epoch).
pub fn render(
    namespace: &str,
    function: &str,
    timestamp_ms: u64,
    request: &NotificationRequest,
    report: &PushReport,
) -> String {
    let counts = [
        ("Delivered", report.delivered),
        ("Pruned", report.pruned),
        ("Throttled", report.throttled),
        ("Retries", report.retries),
        ("Failed", report.failed.len()),
        ("NotAttempted", report.not_attempted),
        ("Unsent", report.unsent),
        ("Continuations", report.continuations),
        ("HistoryAppends", report.history_appends),
    ];
    let mut metrics: Vec<Value> = counts
        .iter()
        .map(|(name, _)| json!({"Name": name, "Unit": "Count"}))
        .collect();
    metrics.push(json!({"Name": "Duration", "Unit": "Milliseconds"}));
    let mut line = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Function"]],
                "Metrics": metrics,
            }],
        },
        "Function": function,
        "Duration": report.elapsed.as_secs_f64() * 1000.0,
        "Complete": report.is_complete(),
        "Audience": if request.is_broadcast() { "broadcast" } else { "targeted" },
        "Excluded": report.excluded,
        "Duplicates": report.duplicates,
        "ReadErrors": report.read_errors.len(),
        "Aborted": report.aborted,
        "Stopped": report.stopped,
        "UnreadSources": report.unread_sources,
        "Generation": request.generation(),
        "RequestId": request.id().map(|id| id.as_str()),
    });
    if let Some(fields) = line.as_object_mut() {
        for (name, count) in counts {
            fields.insert(name.to_owned(), count.into());
        }
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use wspush_domain::ConnectionId;
    use wspush_ports::{FailedDelivery, FailureReason};

    use super::*;

    fn report() -> PushReport {
        PushReport {
            delivered: 7,
            pruned: 2,
            throttled: 3,
            retries: 4,
            failed: vec![FailedDelivery {
                connection: ConnectionId::parse("c-1").expect("valid"),
                reason: FailureReason::Throttled,
                attempts: 6,
            }],
            excluded: 1,
            unsent: 5,
            continuations: 2,
            history_appends: 1,
            stopped: Some(wspush_ports::Stop::Deadline),
            elapsed: Duration::from_millis(1500),
            ..PushReport::default()
        }
    }

    #[test]
    fn every_declared_metric_is_a_number_in_the_line_and_the_dimension_is_set() {
        let request = NotificationRequest::parse(
            r#"{"users":["u-1"],"data":{"secret":"x"},"id":"order-9","generation":1}"#,
        )
        .expect("valid");

        let line: Value = serde_json::from_str(&render(
            "wspush",
            "pusher",
            1_795_334_400_123,
            &request,
            &report(),
        ))
        .expect("one JSON object");

        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(line["_aws"]["Timestamp"], 1_795_334_400_123u64);
        assert_eq!(directive["Namespace"], "wspush");
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(line["Function"], "pusher");
        let declared: Vec<&str> = directive["Metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .map(|metric| metric["Name"].as_str().expect("a name"))
            .collect();
        assert_eq!(
            declared,
            [
                "Delivered",
                "Pruned",
                "Throttled",
                "Retries",
                "Failed",
                "NotAttempted",
                "Unsent",
                "Continuations",
                "HistoryAppends",
                "Duration"
            ]
        );
        let values: Vec<f64> = declared
            .iter()
            .map(|name| line[name].as_f64().expect("a number"))
            .collect();
        assert_eq!(
            values,
            [7.0, 2.0, 3.0, 4.0, 1.0, 0.0, 5.0, 2.0, 1.0, 1500.0]
        );
        assert_eq!(line["Stopped"], "deadline");
        assert_eq!(line["Generation"], 1);
        assert_eq!(line["RequestId"], "order-9");
        assert_eq!(line["Complete"], false);
        assert_eq!(line["Audience"], "targeted");
        assert!(
            !line.to_string().contains("secret"),
            "the message body never reaches the metrics"
        );
    }

    #[test]
    fn the_observer_writes_one_line_per_push() {
        #[derive(Clone, Default)]
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let written = Shared::default();
        let metrics = EmfMetrics::to_writer("wspush", "pusher", Box::new(written.clone()));
        let request = NotificationRequest::parse(r#"{"data":{}}"#).expect("a broadcast");

        metrics.pushed(&request, &report());
        metrics.pushed(&request, &PushReport::default());

        let text = String::from_utf8(written.0.lock().expect("lock").clone()).expect("UTF-8");
        let lines: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("JSON"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["Audience"], "broadcast");
        assert_eq!(lines[0]["Delivered"], 7);
        assert_eq!(lines[1]["Delivered"], 0);
        assert_eq!(lines[1]["Complete"], true);
    }
}
