//! Per-account lockout after repeated failed sign-ins (wrong passwords and wrong second-factor
//! codes alike).
//!
//! [`MAX_FAILURES`] (10) consecutive failures lock the account for [`BASE_LOCK_MS`]
//! (15 minutes), doubled for every earlier lock since the last success, capped at
//! [`MAX_LOCK_MS`] (24 hours): 15 min, 30 min, 1 h, 2 h, 4 h, 8 h, 16 h, 24 h, 24 h, …
//! The state is three integers that the store persists with the account, so a restart
//! forgets nothing; the caller reads it, refuses the attempt while [`LockState::locked`]
//! says so, and writes back the result of [`LockState::on_failure`] or
//! [`LockState::on_success`].
//!
//! ```text
//!                 failure (failures < 9): failures += 1
//!                  +------+
//!                  |      v
//!   success   +-----------------+   10th failure: failures = 0,          +----------------+
//!  ---------->|      OPEN       |-- locked_until = now + 15 min · 2^k --->|     LOCKED     |
//!  failures=0 | failures = 0..9 |   (≤ 24 h), k = lock_count += 1         | now < locked_  |
//!  k = 0      +-----------------+                                         |   until        |
//!                  ^                                                      +----------------+
//!                  |            now >= locked_until (time passes; k is kept)      |
//!                  +---------------------------------------------------------------+
//!  LOCKED: attempts are refused before any password check; a failure reported anyway
//!  changes nothing, so an attacker cannot extend a running lock.
//!  Any state --success--> OPEN with failures = 0 and lock_count = 0.
//! ```
//!
//! Decision: a success resets `lock_count` as well as `failures`. The doubling exists to slow
//! a sustained guessing run; a correct password plus second factor proves the owner is
//! back, and without the reset a user who once fat-fingered their way into a lock would get a
//! longer lock the next time. An administrator's unlock is `LockState::default()`.
//! `lock_count * MAX_FAILURES + failures` is the number of consecutive failures since the
//! last success (NIST SP 800-63B caps it at 100 before other measures must apply; the
//! doubling makes reaching 100 take more than three days).
//!
//! ```
//! use palisade_core::lockout::{LockState, MAX_FAILURES};
//! let mut s = LockState::default();
//! for _ in 0..MAX_FAILURES {
//!     s = s.on_failure(0);
//! }
//! assert_eq!(s.locked(0), Some(15 * 60));
//! assert_eq!(s.locked(15 * 60 * 1000), None);
//! ```

/// Consecutive failures that start a lock.
pub const MAX_FAILURES: u32 = 10;
/// Length of the first lock: 15 minutes.
pub const BASE_LOCK_MS: i64 = 15 * 60 * 1000;
/// Longest lock: 24 hours.
pub const MAX_LOCK_MS: i64 = 24 * 60 * 60 * 1000;

/// The lockout state of one account: plain integers, persisted with the account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockState {
    /// Consecutive failures since the last success or the start of the last lock.
    pub failures: u32,
    /// End of the current or most recent lock (milliseconds since the epoch).
    pub locked_until_ms: Option<i64>,
    /// Locks since the last success; the next lock lasts `BASE_LOCK_MS · 2^lock_count`.
    pub lock_count: u32,
}

/// The length of the lock that starts after `lock_count` earlier locks.
pub fn lock_duration_ms(lock_count: u32) -> i64 {
    let factor = 1i64.checked_shl(lock_count.min(32)).unwrap_or(i64::MAX);
    BASE_LOCK_MS.saturating_mul(factor).min(MAX_LOCK_MS)
}

impl LockState {
    /// The state after a failed attempt at `now_ms`. While a lock runs nothing changes.
    pub fn on_failure(self, now_ms: i64) -> LockState {
        if self.locked(now_ms).is_some() {
            return self;
        }
        let failures = self.failures.saturating_add(1);
        if failures < MAX_FAILURES {
            return LockState { failures, ..self };
        }
        LockState {
            failures: 0,
            locked_until_ms: Some(now_ms.saturating_add(lock_duration_ms(self.lock_count))),
            lock_count: self.lock_count.saturating_add(1),
        }
    }

    /// The state after a successful sign-in: everything reset (see the module doc).
    pub fn on_success(self) -> LockState {
        LockState::default()
    }

    /// Seconds until the lock ends (rounded up, at least 1), or `None` when not locked.
    pub fn locked(&self, now_ms: i64) -> Option<i64> {
        let until = self.locked_until_ms?;
        (now_ms < until).then(|| {
            let remaining = until.saturating_sub(now_ms);
            (remaining.saturating_add(999) / 1000).max(1)
        })
    }

    /// Consecutive failures since the last success, counting those behind earlier locks.
    pub fn consecutive_failures(&self) -> u64 {
        u64::from(self.lock_count) * u64::from(MAX_FAILURES) + u64::from(self.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn fail_n(mut s: LockState, n: u32, now_ms: i64) -> LockState {
        for _ in 0..n {
            s = s.on_failure(now_ms);
        }
        s
    }

    #[test]
    fn nine_failures_do_not_lock_the_tenth_does() {
        let s = fail_n(LockState::default(), 9, 0);
        assert_eq!(s.failures, 9);
        assert_eq!(s.locked(0), None);
        let s = s.on_failure(1_000);
        assert_eq!(
            s,
            LockState {
                failures: 0,
                locked_until_ms: Some(1_000 + 15 * MIN),
                lock_count: 1
            }
        );
        assert_eq!(s.locked(1_000), Some(15 * 60));
        assert_eq!(s.locked(1_000 + 15 * MIN - 1), Some(1));
        assert_eq!(s.locked(1_000 + 15 * MIN), None);
    }

    #[test]
    fn failures_during_a_lock_change_nothing() {
        let s = fail_n(LockState::default(), 10, 0);
        assert_eq!(fail_n(s, 50, 5 * MIN), s);
    }

    #[test]
    fn locks_double_and_cap_at_a_day() {
        let mut s = LockState::default();
        let mut now = 0;
        let expected_minutes = [15, 30, 60, 120, 240, 480, 960, 1440, 1440, 1440];
        for minutes in expected_minutes {
            s = fail_n(s, 10, now);
            assert_eq!(s.locked_until_ms, Some(now + minutes * MIN));
            now += minutes * MIN;
            assert_eq!(s.locked(now), None);
        }
        assert_eq!(s.lock_count, 10);
        assert_eq!(s.consecutive_failures(), 100);
        assert_eq!(lock_duration_ms(u32::MAX), MAX_LOCK_MS);
        assert_eq!(lock_duration_ms(63), MAX_LOCK_MS);
        assert_eq!(lock_duration_ms(0), BASE_LOCK_MS);
    }

    #[test]
    fn success_resets_failures_and_lock_count() {
        let s = fail_n(LockState::default(), 10, 0);
        let s = fail_n(s, 4, 20 * MIN);
        assert_eq!(s.failures, 4);
        assert_eq!(s.consecutive_failures(), 14);
        let s = s.on_success();
        assert_eq!(s, LockState::default());
        // the next lock is the short one again
        let s = fail_n(s, 10, 30 * MIN);
        assert_eq!(s.locked_until_ms, Some(45 * MIN));
    }

    #[test]
    fn failures_after_a_lock_count_from_zero() {
        let s = fail_n(LockState::default(), 10, 0);
        let s = fail_n(s, 9, 15 * MIN);
        assert_eq!(s.locked(15 * MIN), None);
        assert_eq!(s.failures, 9);
        let s = s.on_failure(16 * MIN);
        assert_eq!(s.locked(16 * MIN), Some(30 * 60));
    }

    #[test]
    fn extremes_do_not_overflow() {
        let s = LockState {
            failures: u32::MAX,
            locked_until_ms: None,
            lock_count: u32::MAX,
        };
        let s = s.on_failure(i64::MAX);
        assert_eq!(s.locked_until_ms, Some(i64::MAX));
        assert_eq!(s.lock_count, u32::MAX);
        assert_eq!(s.locked(i64::MIN), Some(i64::MAX / 1000));
        let s = LockState {
            failures: 0,
            locked_until_ms: Some(i64::MIN),
            lock_count: 0,
        };
        assert_eq!(s.locked(0), None);
        assert!(s.consecutive_failures() == 0);
    }

    #[test]
    fn serialises_as_plain_ints() {
        let s = fail_n(LockState::default(), 10, 7);
        assert_eq!(
            serde_json::to_value(s).unwrap(),
            serde_json::json!({"failures": 0, "locked_until_ms": 900_007, "lock_count": 1})
        );
        let back: LockState =
            serde_json::from_str(r#"{"failures":3,"locked_until_ms":null,"lock_count":2}"#)
                .unwrap();
        assert_eq!(back.failures, 3);
        assert_eq!(back.locked_until_ms, None);
    }
}
