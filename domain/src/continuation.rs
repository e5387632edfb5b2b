//! Continuations: what a push that could not finish hands back to the notification queue.
//!
//! A push leaves a [`Leftover`] when it stops at its deadline, when a large broadcast is
//! scattered, or when connections still fail after their retries. [`plan_continuations`]
//! turns it into narrowed notification requests that, together with what the push did,
//! cover the audience exactly once:
//!
//! | leftover | continuation | generation |
//! |---|---|---|
//! | a source not started | the source from the start (users are grouped in one request) | same |
//! | a source partly read | the source with `cursor` (one user, one topic, or one `segment`) | same |
//! | connections read, never posted | `connections`, no exclusions (already applied) | same |
//! | connections answered 429 or 5xx whose retry fell after the stop point | `connections` | + 1 |
//! | connections that failed after their retries | `connections` | + 1 |
//! | a source whose read failed | the source with `cursor` | + 1 |
//!
//! Failures, and posts whose retry the stop point cut off, are re-enqueued for at most
//! [`ContinuationLimits::max_generations`] generations; past that the request itself must be
//! reported failed (so SQS retries it and then dead-letters it). A connection that was tried
//! takes the next generation even though it did not fail for good: otherwise a post that
//! answers 500 after API Gateway delivered it, with a window too short for its retry, would
//! be continued (and delivered again) for ever.
//!
//! A request whose sources overlap (several topics, or users with
//! topics or connections) never leaves unfinished sources behind: the push reads them to the
//! end instead, since a source resumed in another message could not know what the first
//! message already sent.
//!
//! Every continuation gets an ID derived from its parent's and from its own content
//! ([`RequestId::derive`]), so one enqueued twice (after a redelivery of its parent) is pushed
//! once, and each fits in one queue message ([`ContinuationLimits::max_message_bytes`]):
//! connection and user lists are split across messages as needed.

use crate::audience::Source;
use crate::ids::{ConnectionId, RequestId, UserId};
use crate::limits::SQS_MAX_MESSAGE_BYTES;
use crate::notification::{Narrowed, NotificationRequest};

/// Where one source of an audience resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The source.
    pub source: Source,
    /// The store's cursor into it; `None` to read it from the start.
    pub cursor: Option<String>,
}

/// What a push left undone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftover {
    /// Sources not finished because the push stopped (deadline or scatter).
    pub sources: Vec<Resume>,
    /// Connections read and admitted but never posted to.
    pub unsent: Vec<ConnectionId>,
    /// Connections posted to and answered 429 or 5xx, whose retry would have come after the
    /// stop point.
    pub retry_later: Vec<ConnectionId>,
    /// Connections whose posts still failed after their retries.
    pub failed: Vec<ConnectionId>,
    /// Sources whose reading failed, where they stopped.
    pub failed_sources: Vec<Resume>,
}

impl Leftover {
    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
            && self.unsent.is_empty()
            && self.retry_later.is_empty()
            && self.failed.is_empty()
            && self.failed_sources.is_empty()
    }

    /// Whether anything was tried and left for the next generation (as opposed to being
    /// left for lack of time before it was tried).
    pub fn has_failures(&self) -> bool {
        !self.failed.is_empty() || !self.retry_later.is_empty() || !self.failed_sources.is_empty()
    }
}

/// Bounds on continuations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContinuationLimits {
    /// The highest generation a re-enqueued failure may reach.
    pub max_generations: u32,
    /// The largest continuation, as JSON text.
    pub max_message_bytes: usize,
}

impl Default for ContinuationLimits {
    fn default() -> Self {
        Self {
            max_generations: 3,
            max_message_bytes: SQS_MAX_MESSAGE_BYTES,
        }
    }
}

/// Why a leftover cannot be continued; the request must then be reported failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContinuationError {
    /// Failures at the last generation allowed.
    #[error(
        "deliveries still fail at generation {generation}, the last of {max} allowed; the request must be retried by its source"
    )]
    GenerationsExhausted {
        /// The request's generation.
        generation: u32,
        /// The configured bound.
        max: u32,
    },
    /// An unfinished source of a request whose sources overlap.
    #[error(
        "a source of a request whose sources overlap cannot be resumed in another message without sending twice"
    )]
    OverlappingSources,
    /// A continuation that cannot fit in one message however it is split.
    #[error("a continuation is {bytes} bytes as JSON; the queue takes at most {max}")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
}

/// The narrowed requests that carry `leftover` on. `parent` is the ID of the request being
/// pushed (its own `id`, or the message ID that carried it), from which the continuations'
/// IDs are derived.
pub fn plan_continuations(
    request: &NotificationRequest,
    parent: Option<&RequestId>,
    leftover: Leftover,
    limits: ContinuationLimits,
) -> Result<Vec<NotificationRequest>, ContinuationError> {
    let generation = request.generation();
    if leftover.has_failures() && generation >= limits.max_generations {
        return Err(ContinuationError::GenerationsExhausted {
            generation,
            max: limits.max_generations,
        });
    }
    let sources_left = !leftover.sources.is_empty() || !leftover.failed_sources.is_empty();
    if request.sources_overlap() && sources_left {
        return Err(ContinuationError::OverlappingSources);
    }
    let max = limits.max_message_bytes;
    let mut planned = Vec::new();
    let mut tried = leftover.retry_later;
    tried.extend(leftover.failed);
    for (resumes, unsent, generation) in [
        (leftover.sources, leftover.unsent, generation),
        (leftover.failed_sources, tried, generation + 1),
    ] {
        let first = planned.len();
        narrow_sources(request, resumes, max, &mut planned);
        for chunk in chunks(&unsent, max, |ids| {
            request.narrowed_to_connections(ids.to_vec())
        }) {
            planned.push(request.narrowed_to_connections(chunk));
        }
        for continuation in &mut planned[first..] {
            *continuation = continuation.clone().with_generation(generation);
        }
    }
    planned
        .into_iter()
        .map(|continuation| {
            let id = parent.map(|parent| parent.derive(&continuation.to_json()));
            let continuation = continuation.with_id(id);
            let bytes = continuation.to_json().len();
            if bytes > max {
                return Err(ContinuationError::TooLarge { bytes, max });
            }
            Ok(continuation)
        })
        .collect()
}

/// One request per resumed source, except that users read from the start share requests.
fn narrow_sources(
    request: &NotificationRequest,
    resumes: Vec<Resume>,
    max: usize,
    planned: &mut Vec<NotificationRequest>,
) {
    let mut fresh_users: Vec<UserId> = Vec::new();
    for Resume { source, cursor } in resumes {
        let narrowed = match (source, cursor) {
            (Source::User(user), None) => {
                fresh_users.push(user);
                continue;
            }
            (Source::User(user), cursor) => Narrowed::User(user, cursor),
            (Source::Topic(topic), cursor) => Narrowed::Topic(topic, cursor),
            (Source::All(segment), cursor) => Narrowed::Segment(segment, cursor),
            // The push resolves a list's cursor into the rest of the list.
            (Source::Connections(ids), _) => {
                for chunk in chunks(&ids, max, |ids| {
                    request.narrowed_to(Narrowed::Connections(ids.to_vec()))
                }) {
                    planned.push(request.narrowed_to(Narrowed::Connections(chunk)));
                }
                continue;
            }
        };
        planned.push(request.narrowed_to(narrowed));
    }
    for chunk in chunks(&fresh_users, max, |users| {
        request.narrowed_to(Narrowed::Users(users.to_vec()))
    }) {
        planned.push(request.narrowed_to(Narrowed::Users(chunk)));
    }
}

/// Splits `items` into the fewest consecutive runs whose request (made by `build`) fits in
/// `max` bytes, leaving room for an ID and a generation; a run has at least one item.
fn chunks<T: Clone + AsRef<str>>(
    items: &[T],
    max: usize,
    build: impl Fn(&[T]) -> NotificationRequest,
) -> Vec<Vec<T>> {
    // An ID (up to 128 bytes) and a generation, with their keys and quotes.
    const ROOM: usize = 200;
    let budget = max.saturating_sub(ROOM);
    let base = build(&[]).to_json().len() + 20;
    let mut runs = Vec::new();
    let mut run: Vec<T> = Vec::new();
    let mut size = base;
    for item in items {
        // Quotes, a comma, and escapes for `"` and `\` at most doubling the text.
        let cost = item.as_ref().len() + 3 + item.as_ref().matches(['"', '\\']).count();
        if !run.is_empty() && size + cost > budget {
            runs.push(std::mem::take(&mut run));
            size = base;
        }
        size += cost;
        run.push(item.clone());
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ExternalId;
    use crate::segment::Segment;

    fn request(json: &str) -> NotificationRequest {
        NotificationRequest::parse(json).expect("valid")
    }

    fn ids(prefix: &str, count: usize) -> Vec<ConnectionId> {
        (0..count)
            .map(|i| ConnectionId::parse(format!("{prefix}{i}")).expect("valid"))
            .collect()
    }

    /// The planned requests as the JSON texts they are enqueued as.
    fn jsons(planned: &[NotificationRequest]) -> Vec<String> {
        planned.iter().map(NotificationRequest::to_json).collect()
    }

    fn limits(max_generations: u32) -> ContinuationLimits {
        ContinuationLimits {
            max_generations,
            ..ContinuationLimits::default()
        }
    }

    #[test]
    fn an_empty_leftover_needs_no_continuation() {
        let planned = plan_continuations(
            &request(r#"{"data":1}"#),
            None,
            Leftover::default(),
            limits(3),
        );

        assert_eq!(planned, Ok(Vec::new()));
    }

    #[test]
    fn a_partly_read_segment_resumes_at_its_cursor_with_the_exclusions() {
        let segment = Segment::new(2, 8).expect("valid");
        let leftover = Leftover {
            sources: vec![Resume {
                source: Source::All(segment),
                cursor: Some("{\"pk\":\"c#x\"}".into()),
            }],
            ..Leftover::default()
        };

        let planned = plan_continuations(
            &request(r#"{"exclude_users":["u-1"],"data":{"a":1}}"#),
            None,
            leftover,
            limits(3),
        )
        .expect("planned");

        assert_eq!(
            jsons(&planned),
            [
                r#"{"exclude_users":["u-1"],"data":{"a":1},"segment":{"index":2,"total":8},"cursor":"{\"pk\":\"c#x\"}"}"#
            ]
        );
        assert_eq!(
            NotificationRequest::parse(&planned[0].to_json()).expect("valid"),
            planned[0]
        );
    }

    #[test]
    fn unsent_connections_keep_the_generation_and_failed_ones_take_the_next() {
        let leftover = Leftover {
            unsent: ids("u", 2),
            failed: ids("f", 1),
            ..Leftover::default()
        };

        let planned = plan_continuations(
            &request(r#"{"topics":["t"],"exclude_connections":["x"],"data":1,"generation":1}"#),
            None,
            leftover,
            limits(3),
        )
        .expect("planned");

        assert_eq!(
            jsons(&planned),
            [
                r#"{"connections":["u0","u1"],"data":1,"generation":1}"#,
                r#"{"connections":["f0"],"data":1,"generation":2}"#,
            ]
        );
    }

    #[test]
    fn connections_whose_retry_the_stop_cut_off_take_the_next_generation_up_to_the_bound() {
        let leftover = Leftover {
            unsent: ids("u", 1),
            retry_later: ids("r", 1),
            ..Leftover::default()
        };

        let planned = plan_continuations(
            &request(r#"{"connections":["u0","r0"],"data":1,"generation":1}"#),
            None,
            leftover.clone(),
            limits(3),
        )
        .expect("planned");
        let at_the_bound = plan_continuations(
            &request(r#"{"connections":["u0","r0"],"data":1,"generation":3}"#),
            None,
            leftover,
            limits(3),
        );

        assert_eq!(
            jsons(&planned),
            [
                r#"{"connections":["u0"],"data":1,"generation":1}"#,
                r#"{"connections":["r0"],"data":1,"generation":2}"#,
            ]
        );
        assert_eq!(
            at_the_bound,
            Err(ContinuationError::GenerationsExhausted {
                generation: 3,
                max: 3
            })
        );
    }

    #[test]
    fn failures_at_the_last_generation_cannot_be_continued() {
        let leftover = Leftover {
            failed: ids("f", 1),
            ..Leftover::default()
        };

        let error = plan_continuations(
            &request(r#"{"connections":["f0"],"data":1,"generation":2}"#),
            None,
            leftover,
            limits(2),
        )
        .expect_err("exhausted");

        assert_eq!(
            error,
            ContinuationError::GenerationsExhausted {
                generation: 2,
                max: 2
            }
        );
    }

    #[test]
    fn a_deadline_leftover_at_the_last_generation_is_still_continued() {
        let leftover = Leftover {
            unsent: ids("u", 1),
            ..Leftover::default()
        };

        let planned = plan_continuations(
            &request(r#"{"connections":["u0"],"data":1,"generation":2}"#),
            None,
            leftover,
            limits(2),
        )
        .expect("planned");

        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].generation(), 2);
    }

    #[test]
    fn unfinished_sources_of_overlapping_topics_are_refused() {
        let leftover = Leftover {
            sources: vec![Resume {
                source: Source::Topic(ExternalId::parse("b").expect("valid")),
                cursor: None,
            }],
            ..Leftover::default()
        };

        let error = plan_continuations(
            &request(r#"{"topics":["a","b"],"data":1}"#),
            None,
            leftover,
            limits(3),
        )
        .expect_err("overlap");

        assert_eq!(error, ContinuationError::OverlappingSources);
    }

    #[test]
    fn users_not_started_share_one_request_and_a_partly_read_user_gets_its_own() {
        let user = |id: &str| UserId::parse(id).expect("valid");
        let leftover = Leftover {
            sources: vec![
                Resume {
                    source: Source::User(user("a")),
                    cursor: Some("k".into()),
                },
                Resume {
                    source: Source::User(user("b")),
                    cursor: None,
                },
                Resume {
                    source: Source::User(user("c")),
                    cursor: None,
                },
            ],
            ..Leftover::default()
        };

        let planned = plan_continuations(
            &request(r#"{"users":["a","b","c","d"],"data":1}"#),
            None,
            leftover,
            limits(3),
        )
        .expect("planned");

        assert_eq!(
            jsons(&planned),
            [
                r#"{"users":["a"],"data":1,"cursor":"k"}"#,
                r#"{"users":["b","c"],"data":1}"#,
            ]
        );
    }

    #[test]
    fn a_large_leftover_is_split_into_messages_that_each_fit_the_queue() {
        let data = format!(r#"{{"data":"{}"}}"#, "x".repeat(100_000));
        let leftover = Leftover {
            unsent: ids("connection-", 20_000),
            ..Leftover::default()
        };

        let planned = plan_continuations(
            &request(&data),
            Some(&RequestId::parse("m-1").expect("valid")),
            leftover,
            ContinuationLimits::default(),
        )
        .expect("planned");

        assert!(planned.len() > 1);
        let mut carried = Vec::new();
        for continuation in &planned {
            let json = continuation.to_json();
            assert!(json.len() <= SQS_MAX_MESSAGE_BYTES, "{} bytes", json.len());
            assert!(NotificationRequest::parse(&json).is_ok());
            carried.extend(continuation.connections().iter().cloned());
        }
        assert_eq!(carried, ids("connection-", 20_000));
    }

    #[test]
    fn continuation_ids_derive_from_the_parent_and_differ_from_each_other() {
        let parent = RequestId::parse("m-1").expect("valid");
        let leftover = Leftover {
            unsent: ids("u", 1),
            failed: ids("f", 1),
            ..Leftover::default()
        };

        let planned = plan_continuations(
            &request(r#"{"data":1}"#),
            Some(&parent),
            leftover.clone(),
            limits(3),
        )
        .expect("planned");
        let again = plan_continuations(
            &request(r#"{"data":1}"#),
            Some(&parent),
            leftover,
            limits(3),
        )
        .expect("planned");

        let first = planned[0].id().expect("an id");
        let second = planned[1].id().expect("an id");
        assert!(first.as_str().starts_with("m-1~"));
        assert_ne!(first, second);
        assert_eq!(planned, again);
    }
}
