//! Fuzz the push-metrics ingest body: arbitrary bytes must never panic the parser, whatever
//! the clock and backfill window, and an accepted body must hold only samples inside the
//! window with finite values; both answers must render.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_core::ingest::{self, Limits, DEFAULT_BACKFILL_MS};

const NOW_MS: i64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    for (now_ms, backfill_ms) in [
        (NOW_MS, DEFAULT_BACKFILL_MS),
        (NOW_MS, i64::MAX),
        (i64::MIN, -1),
    ] {
        match ingest::parse(data, &limits, now_ms, backfill_ms) {
            Ok(parsed) => {
                let _ = parsed.response_body();
                if now_ms == NOW_MS && backfill_ms == DEFAULT_BACKFILL_MS {
                    for payload in &parsed.payloads {
                        assert!(!payload.instances.is_empty());
                        for point in payload.instances.iter().flat_map(|i| &i.data_points) {
                            assert!(!point.values.is_empty());
                            for (ts, v) in &point.values {
                                assert!(v.is_finite());
                                assert!((NOW_MS - DEFAULT_BACKFILL_MS..=NOW_MS + 60_000)
                                    .contains(&(ts * 1000)));
                            }
                        }
                    }
                }
            }
            Err(e) => {
                let _ = e.response_body();
            }
        }
    }
});
