//! Fixed-window request counters, as LogicMonitor describes its limits: at most `limit`
//! requests per `window`, reported through `X-Rate-Limit-Limit`, `X-Rate-Limit-Remaining`
//! and `X-Rate-Limit-Window`.
//!
//! ```
//! use palisade_core::ratelimit::{Limit, Window};
//! let limit = Limit { max: 2, window_ms: 60_000 };
//! let mut w = Window::default();
//! assert!(w.hit(&limit, 0).allowed);
//! assert!(w.hit(&limit, 1).allowed);
//! assert!(!w.hit(&limit, 2).allowed);
//! assert!(w.hit(&limit, 60_000).allowed);
//! ```

/// A limit: `max` requests per `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Requests allowed per window.
    pub max: u32,
    /// Window length in milliseconds.
    pub window_ms: i64,
}

/// The counter of one key (a token, an address).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    start_ms: i64,
    count: u32,
}

/// The outcome of one request against a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The limit per window.
    pub limit: u32,
    /// Requests left in this window.
    pub remaining: u32,
    /// The window in seconds.
    pub window_secs: i64,
    /// Seconds until the window resets (for `Retry-After`).
    pub reset_secs: i64,
}

impl Window {
    /// Counts a request at `now_ms`.
    pub fn hit(&mut self, limit: &Limit, now_ms: i64) -> Decision {
        let window_ms = limit.window_ms.max(1);
        if now_ms >= self.start_ms.saturating_add(window_ms) || now_ms < self.start_ms {
            self.start_ms = now_ms - now_ms.rem_euclid(window_ms);
            self.count = 0;
        }
        let allowed = self.count < limit.max;
        if allowed {
            self.count += 1;
        }
        let reset_ms = self.start_ms.saturating_add(window_ms) - now_ms;
        Decision {
            allowed,
            limit: limit.max,
            remaining: limit.max.saturating_sub(self.count),
            window_secs: (window_ms + 999) / 1000,
            reset_secs: ((reset_ms + 999) / 1000).max(1),
        }
    }

    /// Whether the window has expired at `now_ms` (the entry can be dropped).
    pub fn is_idle(&self, limit: &Limit, now_ms: i64) -> bool {
        now_ms >= self.start_ms.saturating_add(limit.window_ms.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_resets() {
        let l = Limit {
            max: 3,
            window_ms: 1000,
        };
        let mut w = Window::default();
        let d: Vec<_> = (0..4).map(|i| w.hit(&l, 10_000 + i)).collect();
        assert_eq!(d.iter().filter(|d| d.allowed).count(), 3);
        assert_eq!(d[2].remaining, 0);
        assert!(!d[3].allowed);
        assert_eq!(d[3].window_secs, 1);
        assert!(w.is_idle(&l, 11_000));
        assert!(w.hit(&l, 11_000).allowed);
    }
}
