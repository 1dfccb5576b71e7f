//! Per-key rate limiters (per token, per source address) over
//! [`palisade_core::ratelimit`]. Counters live in memory per portal instance.

use palisade_core::ratelimit::{Decision, Limit, Window};
use std::collections::HashMap;
use std::sync::Mutex;

/// A limiter for one kind of key.
#[derive(Debug)]
pub struct Limiter {
    limit: Limit,
    windows: Mutex<HashMap<String, Window>>,
}

impl Limiter {
    /// A limiter of `max` requests per `window_secs`.
    pub fn new(max: u32, window_secs: u64) -> Self {
        Limiter {
            limit: Limit {
                max,
                window_ms: i64::try_from(window_secs.max(1) * 1000).unwrap_or(60_000),
            },
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request for `key` at `now_ms`.
    pub fn hit(&self, key: &str, now_ms: i64) -> Decision {
        let mut map = match self.windows.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if map.len() > 50_000 {
            let limit = self.limit;
            map.retain(|_, w| !w.is_idle(&limit, now_ms));
        }
        map.entry(key.to_string())
            .or_default()
            .hit(&self.limit, now_ms)
    }
}
