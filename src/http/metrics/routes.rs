//! Requests and their latency by route and status: a fixed table, so that recording one takes
//! no map lookup, no lock around the table and no allocation, and the series stay bounded.
//!
//! The table has a row per route of [`access::ROUTES`] (method and path template, never the
//! raw path) and one for requests no route matched; each row has a slot per status wharf
//! answers with, and one for any other. A slot's counter and histogram are made by the first
//! request that lands in it, so a scrape shows only the routes and statuses seen.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::StatusCode;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Unit;

use super::super::access;

/// Upper bounds (seconds) of request latency: from a poll answered from memory (~50 µs) to a
/// long-poll that waited its full 30 s.
pub const REQUEST_SECONDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
];

/// Every status wharf answers with (each [`ErrorCode`](super::super::ErrorCode)'s, the SQS
/// endpoint's, and the successes), sorted. Any other is counted as `other`.
const STATUSES: [(u16, &str); 20] = [
    (200, "200"),
    (201, "201"),
    (204, "204"),
    (400, "400"),
    (401, "401"),
    (403, "403"),
    (404, "404"),
    (405, "405"),
    (408, "408"),
    (409, "409"),
    (410, "410"),
    (413, "413"),
    (414, "414"),
    (415, "415"),
    (422, "422"),
    (429, "429"),
    (431, "431"),
    (500, "500"),
    (503, "503"),
    (507, "507"),
];

/// The `status` label of the last slot of a row.
const OTHER_STATUS: &str = "other";

/// The labels of the row for requests that matched no route (or a route, but not its method).
const UNMATCHED: (&str, &str) = ("any", "unmatched");

/// The labels of one slot.
#[derive(Debug, Clone, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: &'static str,
    status: &'static str,
}

/// One slot's metrics.
#[derive(Debug)]
struct Slot {
    requests: Counter,
    duration: Histogram,
}

/// One route's slots, by status.
#[derive(Debug)]
struct Row {
    method: &'static str,
    route: &'static str,
    slots: [OnceLock<Slot>; STATUSES.len() + 1],
}

/// Requests and their latency, by route and status (see the module's doc).
#[derive(Debug)]
pub struct HttpMetrics {
    /// One row per route of [`access::ROUTES`], in its order, then the unmatched row.
    rows: Box<[Row]>,
}

impl HttpMetrics {
    /// An empty table with a row per route of [`access::ROUTES`].
    pub fn new() -> HttpMetrics {
        let rows = access::ROUTES
            .iter()
            .map(|(method, route, ..)| (method.as_str(), *route))
            .chain(std::iter::once(UNMATCHED))
            .map(|(method, route)| Row {
                method,
                route,
                slots: Default::default(),
            })
            .collect();
        HttpMetrics { rows }
    }

    /// Counts one request of route `row` (`None`: unmatched) that was answered with `status`
    /// after `elapsed`.
    pub fn record(&self, row: Option<usize>, status: StatusCode, elapsed: Duration) {
        let unmatched = self.rows.len() - 1;
        let Some(row) = self.rows.get(row.unwrap_or(unmatched)) else {
            return;
        };
        let slot = STATUSES
            .binary_search_by_key(&status.as_u16(), |(code, _)| *code)
            .unwrap_or(STATUSES.len());
        let Some(slot) = row.slots.get(slot) else {
            return;
        };
        let slot = slot.get_or_init(|| Slot {
            requests: Counter::default(),
            duration: Histogram::new(REQUEST_SECONDS),
        });
        slot.requests.inc();
        slot.duration.observe(elapsed.as_secs_f64());
    }

    /// Every slot in use, with its labels.
    fn slots(&self) -> impl Iterator<Item = (HttpLabels, &Slot)> {
        self.rows.iter().flat_map(|row| {
            row.slots.iter().enumerate().filter_map(|(i, slot)| {
                let status = STATUSES.get(i).map_or(OTHER_STATUS, |(_, text)| text);
                let labels = HttpLabels {
                    method: row.method,
                    route: row.route,
                    status,
                };
                slot.get().map(|slot| (labels, slot))
            })
        })
    }
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics::new()
    }
}

impl Collector for HttpMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "wharf_http_requests",
            "HTTP requests answered, by route (the matched template) and status.",
            None,
            MetricType::Counter,
        )?;
        for (labels, slot) in self.slots() {
            slot.requests.encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "wharf_http_request_duration",
            "Time from a request's arrival to its reply's head (a long-poll's wait included), by route and status.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (labels, slot) in self.slots() {
            slot.duration.encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::http::ErrorCode;

    #[test]
    fn every_error_status_has_its_own_slot() {
        assert!(STATUSES.is_sorted_by_key(|(code, _)| *code));
        for (code, text) in STATUSES {
            assert_eq!(code.to_string(), text);
        }
        for error in ErrorCode::ALL {
            let status = error.status().as_u16();
            assert!(
                STATUSES.iter().any(|(code, _)| *code == status),
                "{error:?} answers {status}, which has no slot"
            );
        }
    }

    #[test]
    fn requests_are_counted_by_route_and_status() {
        let metrics = HttpMetrics::new();
        let enqueue = access::row(&axum::http::Method::POST, "/v1/queues/{queue}/jobs");
        metrics.record(enqueue, StatusCode::CREATED, Duration::from_micros(300));
        metrics.record(enqueue, StatusCode::CREATED, Duration::from_millis(2));
        metrics.record(enqueue, StatusCode::IM_A_TEAPOT, Duration::ZERO);
        metrics.record(None, StatusCode::NOT_FOUND, Duration::ZERO);
        let seen: Vec<(HttpLabels, u64)> = metrics
            .slots()
            .map(|(labels, slot)| (labels, slot.requests.get()))
            .collect();
        let labels = |method, route, status| HttpLabels {
            method,
            route,
            status,
        };
        assert_eq!(
            seen,
            [
                (labels("POST", "/v1/queues/{queue}/jobs", "201"), 2),
                (labels("POST", "/v1/queues/{queue}/jobs", "other"), 1),
                (labels("any", "unmatched", "404"), 1),
            ]
        );
    }
}
