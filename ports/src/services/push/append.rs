//! History: a request that names history streams is appended to each of them once, before
//! its audience is read, and is then sent as an envelope with its positions.
//!
//! The append is keyed by the request's ID (its `id`, else the message ID that carried it),
//! so a redelivery finds the positions of the first delivery instead of appending again.
//! Continuations carry the positions in their `positions` field, so they are never appended
//! again either: a narrowed retry, a continuation at the deadline, and a scattered segment
//! (a broadcast, which names no stream) all send the first delivery's envelope.

use futures::{StreamExt, TryStreamExt};
use wspush_domain::{NotificationRequest, RequestId};

use crate::gateway::ConnectionGateway;
use crate::services::push::PushService;
use crate::store::{ConnectionStore, StoreError};

/// How many streams of one request are appended to at once.
const CONCURRENT_APPENDS: usize = 16;

/// A request once appended: with its positions, and how many of its streams were new
/// appends (0 for a redelivery).
pub(crate) struct AppendedRequest {
    pub(crate) request: NotificationRequest,
    pub(crate) appends: usize,
}

impl<S, G> PushService<S, G>
where
    S: ConnectionStore + ?Sized,
    G: ConnectionGateway + ?Sized,
{
    /// Appends `request` to its history streams. `None` when there is nothing to append:
    /// no history configured, no history stream named, or positions carried already.
    pub(crate) async fn append(
        &self,
        request: &NotificationRequest,
        id: Option<&RequestId>,
    ) -> Result<Option<AppendedRequest>, StoreError> {
        let Some((store, policy)) = &self.history else {
            return Ok(None);
        };
        if request.positions().is_some() {
            return Ok(None);
        }
        let streams = policy.streams_of(request);
        if streams.is_empty() {
            return Ok(None);
        }
        let now = self.clock.now();
        let retention = policy.retention();
        let appended: Vec<_> = futures::stream::iter(streams)
            .map(|stream| async move {
                let appended = store
                    .append(&stream, id, request.payload(), retention, now)
                    .await?;
                Ok::<_, StoreError>((stream, appended))
            })
            .buffered(CONCURRENT_APPENDS)
            .try_collect()
            .await?;
        let appends = appended.iter().filter(|(_, appended)| appended.new).count();
        let positions: Vec<_> = appended
            .into_iter()
            .map(|(stream, appended)| (stream, appended.position))
            .collect();
        if positions.len() > 1 {
            for (stream, position) in &positions {
                store.record_positions(stream, position, &positions).await?;
            }
        }
        tracing::debug!(streams = positions.len(), appends, "appended to history");
        Ok(Some(AppendedRequest {
            request: request.clone().with_positions(positions),
            appends,
        }))
    }
}
