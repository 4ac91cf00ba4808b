//! Time as the application sees it. Tests move it forward instead of sleeping.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicI64, Ordering},
};

/// Unix seconds, system time plus an offset that only tests change.
#[derive(Clone, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
    /// Set by `freeze`: `offset` is then the time itself.
    frozen: Arc<AtomicBool>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Now, in unix seconds.
    pub fn now(&self) -> i64 {
        if self.frozen.load(Ordering::Acquire) {
            return self.offset.load(Ordering::Acquire);
        }
        let system = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        system + self.offset.load(Ordering::Relaxed)
    }

    /// How far this clock is ahead of the system's, in seconds (0 outside tests).
    pub fn offset(&self) -> i64 {
        if self.frozen.load(Ordering::Acquire) {
            return self.now() - Clock::system().now();
        }
        self.offset.load(Ordering::Relaxed)
    }

    /// Stops this clock (and every clone of it) at `now()`, so that work
    /// done at different instants sees one time; `advance` still moves it.
    /// For tests, before the clock is in use elsewhere: nothing else calls it.
    pub fn freeze(&self) {
        if !self.frozen.load(Ordering::Acquire) {
            self.offset.store(self.now(), Ordering::Release);
            self.frozen.store(true, Ordering::Release);
        }
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::Relaxed);
    }
}

/// Reads an RFC 3339 time (any offset) as unix seconds (fractions dropped).
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Formats unix seconds as RFC 3339 (UTC), the form used in JSON and on screen.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_rfc3339_time_reads_back_as_the_instant_it_names_whatever_its_offset() {
        let at = 1_764_580_800; // 2025-12-01T09:20:00Z
        assert_eq!(parse_rfc3339(&rfc3339(at)), Some(at));
        assert_eq!(parse_rfc3339("2025-12-01T11:20:00+02:00"), Some(at));
        assert_eq!(parse_rfc3339("2025-12-01T09:20:00.75Z"), Some(at));
        for bad in ["2025-12-01", "yesterday", "2025-12-01T25:00:00Z", ""] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
