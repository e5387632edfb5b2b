//! The connections a benchmark pushes to, and its notification.

use anyhow::Context;
use futures::{StreamExt, TryStreamExt, stream};
use wspush_adapters::SystemClock;
use wspush_domain::{Connection, ConnectionId, ExternalId, NotificationRequest, UserId};
use wspush_ports::{Clock, ConnectionStore};

/// The measured audience: `N` connections subscribed to one topic.
pub(crate) const MEASURED: Audience = Audience {
    topic: "room:bench",
    prefix: "bench",
};
/// The warm-up audience: `C` connections on another topic, pushed to first so that the
/// measured push starts with the HTTP connection pool open, as in a warm Lambda.
pub(crate) const WARM_UP: Audience = Audience {
    topic: "room:warm-up",
    prefix: "warm",
};

/// Connections subscribed to one topic, with IDs `{prefix}{index:07}`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Audience {
    topic: &'static str,
    prefix: &'static str,
}

impl Audience {
    /// The topic the audience is subscribed to.
    pub(crate) fn topic(self) -> &'static str {
        self.topic
    }

    pub(crate) fn id(self, index: usize) -> String {
        format!("{}{index:07}", self.prefix)
    }

    /// Saves `count` connections, each subscribed to the topic, `concurrency` at a time.
    pub(crate) async fn load(
        self,
        store: &dyn ConnectionStore,
        count: usize,
        concurrency: usize,
    ) -> anyhow::Result<()> {
        let now = SystemClock.now();
        let topic = ExternalId::parse(self.topic)?;
        stream::iter(0..count)
            .map(|index| {
                let topic = topic.clone();
                async move {
                    let connection = Connection::open(
                        ConnectionId::parse(self.id(index))?,
                        UserId::parse(format!("{}-user-{index}", self.prefix))?,
                        now,
                    );
                    store.save(&connection).await?;
                    store.subscribe(&connection, &[topic], now).await?;
                    anyhow::Ok(())
                }
            })
            .buffer_unordered(concurrency)
            .try_collect::<()>()
            .await
            .with_context(|| format!("loading {count} connections"))
    }

    /// The notification pushed to the audience: about 200 bytes, like a live update.
    pub(crate) fn request(self) -> anyhow::Result<NotificationRequest> {
        let json = format!(
            r#"{{"topics":["{}"],"data":{{"type":"quote","symbol":"ACME","price":101.25,"change":-0.42,"sequence":18446744,"at":"2026-11-23T12:00:00.000Z","note":"benchmark payload of a realistic size for a live update"}}}}"#,
            self.topic
        );
        Ok(NotificationRequest::parse(&json)?)
    }
}
