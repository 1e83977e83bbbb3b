//! Queue patterns: which queues a key may touch.

use crate::job::valid_queue_name;

/// One pattern of a key: a queue name, a prefix (`emails*`), or every queue (`*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueuePattern {
    /// Exactly this queue.
    Name(String),
    /// Every queue whose name starts with this (empty: every queue).
    Prefix(String),
}

impl QueuePattern {
    /// Parses a pattern: a valid queue name, optionally followed by one `*`, or `*` alone.
    pub fn parse(text: &str) -> Option<QueuePattern> {
        match text.strip_suffix('*') {
            Some("") => Some(QueuePattern::Prefix(String::new())),
            // A prefix is checked as a name: `a*` stands for names that start with "a".
            Some(prefix) => (valid_queue_name(prefix) || prefix == "." || prefix == "..")
                .then(|| QueuePattern::Prefix(prefix.to_owned())),
            None => valid_queue_name(text).then(|| QueuePattern::Name(text.to_owned())),
        }
    }

    /// Whether queue `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            QueuePattern::Name(exact) => exact == name,
            QueuePattern::Prefix(prefix) => name.starts_with(prefix.as_str()),
        }
    }

    /// Whether every queue `other` matches, this one matches too.
    pub fn covers(&self, other: &QueuePattern) -> bool {
        match (self, other) {
            (QueuePattern::Name(a), QueuePattern::Name(b)) => a == b,
            (QueuePattern::Name(_), QueuePattern::Prefix(_)) => false,
            (QueuePattern::Prefix(p), QueuePattern::Name(n) | QueuePattern::Prefix(n)) => {
                n.starts_with(p.as_str())
            }
        }
    }

    /// The pattern as written.
    pub fn text(&self) -> String {
        match self {
            QueuePattern::Name(name) => name.clone(),
            QueuePattern::Prefix(prefix) => format!("{prefix}*"),
        }
    }
}

/// A key's patterns; none means every queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueuePatterns(Vec<QueuePattern>);

impl QueuePatterns {
    /// Every queue.
    pub fn any() -> QueuePatterns {
        QueuePatterns::default()
    }

    /// No queue at all (no queue has an empty name).
    pub fn none() -> QueuePatterns {
        QueuePatterns(vec![QueuePattern::Name(String::new())])
    }

    /// Parses a key's patterns; the one that is not a pattern is the error.
    pub fn parse<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<QueuePatterns, &'a str> {
        let patterns = texts
            .into_iter()
            .map(|t| QueuePattern::parse(t).ok_or(t))
            .collect::<Result<Vec<_>, _>>()?;
        // `*` among others is still every queue.
        if patterns
            .iter()
            .any(|p| *p == QueuePattern::Prefix(String::new()))
        {
            return Ok(QueuePatterns::any());
        }
        Ok(QueuePatterns(patterns))
    }

    /// Whether these are every queue.
    pub fn is_any(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether queue `name` is one of these.
    pub fn allow(&self, name: &str) -> bool {
        self.is_any() || self.0.iter().any(|p| p.matches(name))
    }

    /// Whether every queue of `other` is one of these.
    pub fn covers(&self, other: &QueuePatterns) -> bool {
        self.is_any()
            || (!other.is_any() && other.0.iter().all(|o| self.0.iter().any(|p| p.covers(o))))
    }

    /// The patterns as written (empty: every queue).
    pub fn texts(&self) -> Vec<String> {
        self.0.iter().map(QueuePattern::text).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(texts: &[&str]) -> QueuePatterns {
        QueuePatterns::parse(texts.iter().copied()).unwrap()
    }

    #[test]
    fn names_prefixes_and_everything() {
        let p = patterns(&["emails*", "billing"]);
        assert!(p.allow("emails") && p.allow("emails.eu") && p.allow("billing"));
        assert!(!p.allow("billing2") && !p.allow("email") && !p.allow("sms"));
        assert!(patterns(&["*"]).allow("anything") && patterns(&[]).allow("x"));
        assert!(patterns(&["a", "*"]).is_any());
        for bad in ["", "a b", "a/*", "**", "*a", "é*"] {
            assert!(QueuePatterns::parse([bad]).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_key_may_hand_on_only_what_it_has() {
        let parent = patterns(&["emails*", "billing"]);
        assert!(parent.covers(&patterns(&["emails.eu*", "emails", "billing"])));
        assert!(!parent.covers(&patterns(&["billing*"])));
        assert!(!parent.covers(&patterns(&["sms"])));
        assert!(!parent.covers(&QueuePatterns::any()));
        assert!(QueuePatterns::any().covers(&parent));
    }
}
