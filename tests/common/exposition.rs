//! Reading `GET /metrics`: a parser of the Prometheus text exposition (0.0.4 and OpenMetrics
//! text), strict enough that a malformed line fails the test.

use std::collections::{BTreeMap, BTreeSet};

use super::TestServer;

/// The `Accept` header Prometheus sends.
pub const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed scrape.
#[derive(Debug, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    /// `# TYPE` of each family.
    pub types: BTreeMap<String, String>,
    /// Whether it ended with OpenMetrics's `# EOF`.
    pub eof: bool,
}

/// Scrapes `/metrics` with `key` (none: no `Authorization`), asking for OpenMetrics or not;
/// returns the content type and the parsed body.
pub async fn scrape(
    server: &TestServer,
    key: Option<&str>,
    openmetrics: bool,
) -> (String, Exposition) {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = Vec::new();
    if let Some(auth) = &auth {
        headers.push(("authorization", auth.as_str()));
    }
    if openmetrics {
        headers.push(("accept", PROMETHEUS_ACCEPT));
    }
    let (status, head, body) =
        wharf::client::request_full(server.addr, "GET", "/metrics", None, &headers)
            .await
            .unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(status, 200, "{text}");
    let content_type = head["content-type"].to_str().unwrap().to_owned();
    (content_type, Exposition::parse(&text))
}

impl Exposition {
    /// Parses `text`; panics on a line that is neither a comment nor a well-formed sample.
    pub fn parse(text: &str) -> Exposition {
        let mut out = Exposition::default();
        for line in text.lines() {
            assert!(!out.eof, "a line after # EOF: {line:?}");
            if line == "# EOF" {
                out.eof = true;
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                let before = out.types.insert(name.to_owned(), kind.to_owned());
                assert!(before.is_none(), "two TYPE lines for {name}");
            } else if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
            } else {
                out.samples.push(parse_sample(line));
            }
        }
        out
    }

    /// The samples named `name` whose labels include `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).is_some_and(|have| have == v))
            })
            .collect()
    }

    /// The value of the one sample named `name` with exactly `labels`; `None` if there is none.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let found: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.name == name && s.labels == want)
            .collect();
        assert!(found.len() <= 1, "{name}{labels:?} twice");
        found.first().map(|s| s.value)
    }

    /// Every sample's name.
    pub fn names(&self) -> BTreeSet<&str> {
        self.samples.iter().map(|s| s.name.as_str()).collect()
    }

    /// Every series (name and labels), without values.
    pub fn series(&self) -> BTreeSet<(String, Vec<(String, String)>)> {
        self.samples
            .iter()
            .map(|s| {
                let labels = s.labels.iter().map(|(k, v)| (k.clone(), v.clone()));
                (s.name.clone(), labels.collect())
            })
            .collect()
    }
}

/// `name{k="v",...} value`.
fn parse_sample(line: &str) -> Sample {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or_else(|| panic!("no value: {line:?}"));
    let name = &line[..name_end];
    assert!(!name.is_empty(), "no name: {line:?}");
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        loop {
            let (start, c) = chars.next().unwrap_or_else(|| panic!("unclosed: {line:?}"));
            if c == '}' {
                rest = &inner[start + 1..];
                break;
            }
            if c == ',' {
                continue;
            }
            let eq = inner[start..].find('=').unwrap() + start;
            let key = inner[start..eq].to_owned();
            while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                chars.next();
            }
            assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line:?}");
            let mut value = String::new();
            loop {
                match chars
                    .next()
                    .unwrap_or_else(|| panic!("unclosed value: {line:?}"))
                    .1
                {
                    '"' => break,
                    '\\' => match chars.next().unwrap().1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    other => value.push(other),
                }
            }
            if key == "le" {
                // `1` in one format is `1.0` in the other.
                let bound: f64 = value.parse().unwrap_or_else(|_| panic!("le {value:?}"));
                if bound.is_finite() {
                    value = bound.to_string();
                }
            }
            assert!(
                labels.insert(key, value).is_none(),
                "a label twice: {line:?}"
            );
        }
    }
    let value = rest.trim();
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("bad value {v:?}: {line:?}")),
    };
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}
