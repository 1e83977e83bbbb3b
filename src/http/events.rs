//! The change log over HTTP: `GET /v1/events` (long-polled JSON pages) and
//! `GET /v1/events/stream` (server-sent events, resumable with `Last-Event-ID`).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::access::Caller;
use super::error::ApiError;
use super::wire::raw;
use crate::auth::Principal;
use crate::broker::{Broker, EventFilter, EventPage, EventQuery, Start};
use axum::Extension;

/// The query of both routes (`limit` and `wait_ms` only for the JSON one).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// Events with a seq above this one. Default: from the oldest kept.
    after: Option<u64>,
    /// Start after this cursor's seq instead (not together with `after`).
    cursor: Option<String>,
    /// Most events. Default: 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// When no matching event is there yet, wait up to this long for one. Default: 0.
    #[param(maximum = 30000)]
    wait_ms: Option<u64>,
    /// Comma-separated event types; a name ending in `*` is a prefix (`job.*,message`).
    /// Default: every type.
    types: Option<String>,
    /// Only the events of this queue. Default: every queue.
    queue: Option<String>,
    /// The caller's tenant, for a tenant's key (never from the query).
    #[serde(skip)]
    tenant: Option<String>,
}

impl EventsParams {
    fn filter(&self) -> EventFilter {
        EventFilter {
            types: self.types.as_deref().map_or_else(Vec::new, |types| {
                types
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
            queue: self.queue.clone(),
            tenant: self.tenant.clone(),
        }
    }

    fn start(&self) -> Result<Start, ApiError> {
        match (self.after, &self.cursor) {
            (Some(_), Some(_)) => Err(ApiError::invalid("give after or cursor, not both")),
            (Some(after), None) => Ok(Start::After(after)),
            (None, Some(cursor)) => Ok(Start::Cursor(cursor.clone())),
            (None, None) => Ok(Start::Oldest),
        }
    }
}

fn params(
    by: &Principal,
    query: Result<Query<EventsParams>, QueryRejection>,
) -> Result<EventsParams, ApiError> {
    // Like JSON bodies: unknown parameters and values of the wrong type are 422.
    let mut params = query
        .map(|Query(p)| p)
        .map_err(|e| ApiError::invalid(e.body_text()))?;
    // Names as the caller spells them, to full names. A name no queue can have would filter
    // out every event: say so instead.
    use crate::broker::BrokerError::{InvalidCursorName, InvalidQueueName};
    let full = |name: Option<String>, invalid| {
        name.map(|n| super::names::full_name_or(Some(by), &n, invalid))
            .transpose()
    };
    params.queue = full(params.queue.take(), InvalidQueueName)?;
    params.cursor = full(params.cursor.take(), InvalidCursorName)?;
    // A tenant's key reads its tenant's events only.
    if !by.is_operator() {
        params.tenant = Some(by.tenant.clone());
    }
    // A key limited to some queues reads the events of one of them at a time: the log also
    // holds other queues' events and outbox messages.
    if !by.queues.is_any() {
        let Some(queue) = &params.queue else {
            return Err(ApiError::new(
                super::error::ErrorCode::Forbidden,
                "this key may touch only some queues: name one with queue=",
            ));
        };
        super::access::check_queue(by, queue)?;
    }
    Ok(params)
}

/// `{"events": [...], "next_after", "head", "oldest"}`.
#[derive(serde::Serialize, ToSchema)]
pub struct PageOut {
    /// The matching events, in seq order.
    #[schema(value_type = Vec<super::schema::EventOut>)]
    events: Vec<Box<RawValue>>,
    /// Where the next read starts (`after=`): past every event this read looked at.
    next_after: u64,
    /// The last event readers can see now.
    head: u64,
    /// The oldest event still kept.
    oldest: u64,
}

/// `GET /v1/events?after=SEQ&limit=N&wait_ms=MS&types=job.*,message&queue=Q` (or
/// `cursor=NAME` instead of `after`).
#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "read_events",
    tag = "events",
    summary = "Read the change log (long-poll)",
    description = "See docs/api.md#get-v1events-read-the-change-log.",
    params(EventsParams),
    responses((status = 200, description = "A page of events.", body = PageOut)),
)]
pub async fn list(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    query: Result<Query<EventsParams>, QueryRejection>,
) -> Result<axum::Json<PageOut>, ApiError> {
    let broker = app.broker()?;
    let params = params(&by, query)?;
    let query = EventQuery {
        start: params.start()?,
        limit: params.limit.unwrap_or(100),
        wait_ms: params.wait_ms.unwrap_or(0),
        filter: params.filter(),
    };
    let page = broker.events(query).await?;
    let out = PageOut {
        events: page.events.into_iter().map(|e| raw(e.json)).collect(),
        next_after: page.next_after,
        head: page.head,
        oldest: page.oldest,
    };
    Ok(axum::Json(out))
}

/// Events one stream read takes at a time.
const STREAM_BATCH: usize = 256;
/// How long one stream read waits before it looks again (the stream itself never ends on
/// its own; a comment line keeps an idle connection alive meanwhile).
const STREAM_WAIT_MS: u64 = 30_000;
/// How often an idle stream sends a comment line.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `GET /v1/events/stream?after=SEQ&types=...&queue=...`: one SSE event per change, `id:` the
/// seq, `event:` the type, `data:` the event JSON. A `Last-Event-ID` header (what a browser's
/// `EventSource` sends when it reconnects) takes the place of `after`.
#[utoipa::path(
    get,
    path = "/v1/events/stream",
    operation_id = "stream_events",
    tag = "events",
    summary = "Follow the change log as server-sent events",
    description = "One SSE event per change: `id:` its seq, `event:` its type, `data:` the event JSON (as in GET /v1/events). It never ends on its own; a reader that falls behind the trimmed start gets an `error` event and the stream ends. Takes the query of GET /v1/events but `limit` and `wait_ms`. See docs/api.md#get-v1eventsstream-server-sent-events.",
    params(
        ("after" = Option<u64>, Query, description = "Events with a seq above this one. Default: from the oldest kept."),
        ("cursor" = Option<String>, Query, description = "Start after this cursor's seq instead (not together with `after`)."),
        ("types" = Option<String>, Query, description = "Comma-separated event types; a name ending in `*` is a prefix."),
        ("queue" = Option<String>, Query, description = "Only the events of this queue."),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this seq (what a browser's EventSource sends when it reconnects); takes the place of `after`."),
    ),
    responses((status = 200, description = "The stream.", content_type = "text/event-stream", body = String)),
)]
pub async fn stream(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    headers: HeaderMap,
    query: Result<Query<EventsParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let broker = app.broker()?.clone();
    let params = params(&by, query)?;
    if params.limit.is_some() || params.wait_ms.is_some() {
        return Err(ApiError::invalid(
            "the stream takes no limit or wait_ms: it sends every event as it comes",
        ));
    }
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::invalid("Last-Event-ID must be an event's seq"))?,
        ),
    };
    let start = match resume {
        Some(seq) => Start::After(seq),
        None => params.start()?,
    };
    let filter = params.filter();
    // The first read answers errors (a trimmed position, an unknown cursor, a bad filter) with
    // a status, before the stream starts.
    let first = broker
        .events(EventQuery {
            start,
            limit: STREAM_BATCH,
            wait_ms: 0,
            filter: filter.clone(),
        })
        .await?;
    let reads = stream::unfold(
        Some(Reader {
            broker,
            filter,
            ready: Some(first),
            after: 0,
        }),
        |reader| async move { reader?.next().await },
    );
    let sse = Sse::new(flatten(reads)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    Ok(sse.into_response())
}

/// The reads behind one stream.
struct Reader {
    broker: std::sync::Arc<Broker>,
    filter: EventFilter,
    /// A page read already (the first one), to send before reading on.
    ready: Option<EventPage>,
    /// Where the next read starts.
    after: u64,
}

impl Reader {
    /// The SSE events of the next page, and the reader for the one after (`None` when the
    /// stream ends).
    async fn next(mut self) -> Option<(Vec<Result<SseEvent, Infallible>>, Option<Reader>)> {
        let page = match self.ready.take() {
            Some(page) => page,
            None if self.broker.is_shutting_down() => return None,
            None => {
                let query = EventQuery {
                    start: Start::After(self.after),
                    limit: STREAM_BATCH,
                    wait_ms: STREAM_WAIT_MS,
                    filter: self.filter.clone(),
                };
                match self.broker.events(query).await {
                    Ok(page) => page,
                    Err(error) => {
                        // A reader that fell behind the log's start mid-stream (or a failed
                        // store): say why in an `error` event, then end; a client reconnects
                        // with a new position.
                        let api = ApiError::from(error);
                        let data =
                            serde_json::json!({"code": api.code.as_str(), "message": api.message});
                        let event = SseEvent::default().event("error").data(data.to_string());
                        return Some((vec![Ok(event)], None));
                    }
                }
            }
        };
        self.after = page.next_after;
        let events = page
            .events
            .iter()
            .map(|e| {
                Ok(SseEvent::default()
                    .id(e.seq.to_string())
                    .event(e.kind)
                    .data(&e.json))
            })
            .collect();
        Some((events, Some(self)))
    }
}

/// The events of each step, one after another.
fn flatten(
    steps: impl Stream<Item = Vec<Result<SseEvent, Infallible>>>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    use futures_util::StreamExt;
    steps.flat_map(stream::iter)
}
