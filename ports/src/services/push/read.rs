//! Reading: the audience as pages from the store, a few sources at once, through the
//! request's targeting, handed to the senders as they come; and where each source stands
//! when the run ends.

use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use wspush_domain::{
    Admission, Connection, Leftover, NotificationRequest, Resume, Source, Targeting, Timestamp,
};

use crate::causes::with_causes;
use crate::gateway::ConnectionGateway;
use crate::report::{PushReport, Stop};
use crate::services::push::PushService;
use crate::services::push::plan::Plan;
use crate::services::push::send::Shared;
use crate::store::{ConnectionStore, Cursor, StoreError};

/// How far one audience source has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    /// Not read yet.
    Untouched,
    /// A page is being read.
    Reading,
    /// Stopped with pages left (at its cursor).
    Interrupted,
    /// Read to its end.
    Done,
    /// A read failed (at its cursor).
    Failed,
}

struct SourceRead {
    source: Source,
    cursor: Option<Cursor>,
    state: ReadState,
}

/// How far a run read its audience.
pub(super) struct Reads {
    sources: Vec<SourceRead>,
    /// Pages read that handed no connection on (all skipped, or empty), which moved a
    /// cursor past connections that need nothing more.
    pub(super) pages_passed: usize,
}

impl Reads {
    /// Whether a user, topic or segment was read to its end. Such a source is done with for
    /// good: what it held is settled or carried on as a connection list, which is less work.
    /// A list read to its end is only the same list again.
    pub(super) fn finished_any(&self) -> bool {
        self.sources.iter().any(|read| {
            read.state == ReadState::Done && !matches!(read.source, Source::Connections(_))
        })
    }

    /// Adds what is left of each source to `leftover`: unfinished ones to resume, failed
    /// ones to retry. A cursor that cannot be resumed from is a read error in `report`.
    pub(super) fn leave(self, leftover: &mut Leftover, report: &mut PushReport) {
        for read in self.sources {
            let resume = match read.state {
                ReadState::Done => continue,
                ReadState::Untouched | ReadState::Reading | ReadState::Interrupted => {
                    &mut leftover.sources
                }
                ReadState::Failed => &mut leftover.failed_sources,
            };
            match resume_of(read.source, read.cursor) {
                Ok(Some(left)) => resume.push(left),
                Ok(None) => continue,
                Err(error) => report.read_errors.push(with_causes(&error)),
            }
        }
    }
}

impl<S, G> PushService<S, G>
where
    S: ConnectionStore + ?Sized,
    G: ConnectionGateway + ?Sized,
{
    /// Reads the audience page by page, applies the targeting, and hands admitted
    /// connections to the senders. Returns how far each source was read, and how many pages
    /// were read that handed no connection on (all skipped, or empty: DynamoDB's pages may
    /// be, once expired items are filtered out).
    ///
    /// Each source has at most one page read at a time and `read_concurrency` sources are
    /// read at once. A source's cursor only moves past a page once that page's connections
    /// are handed on, so a stop at any moment leaves every source at a cursor from which
    /// nothing was lost and nothing will be read twice. At the stop point a request whose
    /// sources overlap is still read to its end (nothing is posted), since only this push's
    /// de-duplication knows which connections it already admitted.
    pub(super) async fn read_audience(
        &self,
        request: &NotificationRequest,
        now: Timestamp,
        plan: &Plan,
        pages_tx: mpsc::Sender<Vec<Connection>>,
        shared: Shared<'_>,
        report: &mut PushReport,
    ) -> Reads {
        let mut targeting = Targeting::for_request(request);
        let read_to_the_end = targeting.deduplicates();
        let segments = if plan.segments.is_empty() {
            &self.segments
        } else {
            &plan.segments
        };
        let mut reads: Vec<SourceRead> = Source::for_request(request, segments)
            .into_iter()
            .map(|source| SourceRead {
                source,
                cursor: None,
                state: ReadState::Untouched,
            })
            .collect();
        if let (Some(cursor), [only]) = (request.cursor(), reads.as_mut_slice()) {
            only.cursor = Some(Cursor::new(cursor));
        }
        let page_size = self.config.page_size;
        let read_page = |index: usize, read: &SourceRead| {
            let store = Arc::clone(&self.store);
            let source = read.source.clone();
            let cursor = read.cursor.clone();
            async move { (index, store.page(&source, cursor, page_size, now).await) }
        };
        let past_stop = || plan.stop_at.is_some_and(|stop| Instant::now() >= stop);
        let mut scattered = false;
        let may_read = |scattered: bool| {
            !shared.halt.is_set() && !scattered && (read_to_the_end || !past_stop())
        };
        let mut in_flight = FuturesUnordered::new();
        let mut next_source = 0;
        let mut connections_read = 0usize;
        let mut pages_passed = 0usize;
        loop {
            while may_read(scattered)
                && in_flight.len() < self.config.read_concurrency
                && next_source < reads.len()
            {
                reads[next_source].state = ReadState::Reading;
                in_flight.push(read_page(next_source, &reads[next_source]));
                next_source += 1;
            }
            let Some((index, page)) = in_flight.next().await else {
                break;
            };
            if !may_read(scattered) {
                // Dropped unread: the source stays at the cursor this page started from.
                reads[index].state = ReadState::Interrupted;
                continue;
            }
            let page = match page {
                Ok(page) => page,
                Err(error) => {
                    let message = with_causes(&error);
                    tracing::warn!(error = %message, "reading the audience failed");
                    report.read_errors.push(message);
                    reads[index].state = ReadState::Failed;
                    continue;
                }
            };
            connections_read += page.connections.len();
            reads[index].cursor = page.next;
            if let Some(above) = plan.scatter_above
                && connections_read > above
                && !scattered
            {
                tracing::info!(
                    connections_read,
                    above,
                    "the broadcast is larger than the scatter threshold; handing the rest on"
                );
                scattered = true;
                report.stopped = Some(Stop::Scatter);
            }
            if reads[index].cursor.is_none() {
                reads[index].state = ReadState::Done;
            } else if may_read(scattered) {
                in_flight.push(read_page(index, &reads[index]));
            } else {
                reads[index].state = ReadState::Interrupted;
            }
            let admitted: Vec<Connection> = page
                .connections
                .into_iter()
                .filter(|connection| match targeting.admit(connection) {
                    Admission::Admit => true,
                    Admission::Excluded => {
                        report.excluded += 1;
                        false
                    }
                    Admission::Duplicate => {
                        report.duplicates += 1;
                        false
                    }
                })
                .collect();
            shared.tail.read(admitted.len());
            if admitted.is_empty() {
                pages_passed += 1;
            } else if pages_tx.send(admitted).await.is_err() {
                break;
            }
        }
        Reads {
            sources: reads,
            pages_passed,
        }
    }
}

/// Where `source` resumes from `cursor`; `None` when nothing is left of it. A list of
/// connections resumes as the rest of the list, since its cursor is a position in it.
fn resume_of(source: Source, cursor: Option<Cursor>) -> Result<Option<Resume>, StoreError> {
    match source {
        Source::Connections(ids) => {
            let start = Cursor::offset_of(cursor.as_ref())?;
            let rest = ids.get(start..).unwrap_or_default().to_vec();
            if rest.is_empty() {
                return Ok(None);
            }
            Ok(Some(Resume {
                source: Source::Connections(rest),
                cursor: None,
            }))
        }
        source => Ok(Some(Resume {
            source,
            cursor: cursor.map(|cursor| cursor.as_str().to_owned()),
        })),
    }
}
