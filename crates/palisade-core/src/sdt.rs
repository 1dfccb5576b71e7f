//! Scheduled downtime (SDT) schedules in LogicMonitor's shape, and when they are in force.
//!
//! An SDT pauses notifications, not collection or evaluation (the portal still evaluates
//! thresholds and marks alerts `sdted`). Its schedule is one of LogicMonitor's `sdtType`s:
//!
//! | `sdtType` | fields | window |
//! |---|---|---|
//! | `oneTime` | `startDateTime`, `endDateTime` (epoch ms) | once, `[start, end)` |
//! | `daily` | `hour`, `minute`, `endHour`, `endMinute` | every day |
//! | `weekly` | + `weekDay` | on that day of the week |
//! | `monthly` | + `monthDay` (1–31) | on that day of the month |
//! | `monthlyByWeek` | + `weekOfMonth` (`First`…`Fourth`, `Last`), `weekDay` | e.g. the last Friday |
//!
//! # Rules
//!
//! - **Windows are half-open**, `[start, end)`: active at the start millisecond, over at the end.
//! - **Recurring windows are wall-clock times in the SDT's `timezone`** (an IANA name such as
//!   `Europe/Berlin`; empty or missing means `UTC`), so a 22:00 window stays at 22:00 local
//!   time across daylight-saving changes, and its real length changes on the night of the
//!   change (22:00–06:00 across the spring change in Berlin lasts 7 hours).
//! - **Crossing midnight:** when the end time is earlier than the start time the window ends
//!   the next day (weekly Saturday 23:00–01:00 ends on Sunday). Equal start and end times are
//!   refused as ambiguous (empty or 24 hours?); a whole day is 00:00–23:59.
//! - **Local times that occur twice** (autumn change) mean the first occurrence.
//! - **Local times that do not exist** (spring change) are moved later by the length of the
//!   gap, as Java's `ZonedDateTime` does: in Berlin on the last Sunday of March 02:30 means
//!   03:30 CEST, so a daily 02:00–02:30 window runs 03:00–03:30 that day. If that would put
//!   the start after the end (a start inside the gap with an end just after it, e.g.
//!   02:30–03:10), the window starts when the gap ends (03:00 CEST); a window left empty by
//!   this (02:30–03:00) does not happen that day.
//! - **`monthDay` past the end of the month means the month's last day** (31 is 28 or 29
//!   February, 30 April); 29–31 therefore never skip a month.
//! - **`weekOfMonth`:** First is days 1–7, Second 8–14, Third 15–21, Fourth 22–28 of the
//!   month; Last is the last such weekday (the fourth or the fifth).
//! - **`weekDay`** is LogicMonitor's 1 = Sunday … 7 = Saturday, or the English day name
//!   (`"Sunday"`, any case) as the v3 SDK sends it; [`Schedule::to_lm`] writes the name.
//! - **`duration` (minutes), as LogicMonitor reports it:** `(end - start) / 60000` rounded
//!   down for `oneTime`; for recurring SDTs the nominal length from the start to the end time
//!   (`(end - start) mod 1440`), not adjusted for a daylight-saving change.
//! - **`from_lm` input:** fields that do not belong to the `sdtType` are ignored (LogicMonitor
//!   echoes them with defaults); a missing `endDateTime` (or `endHour` and `endMinute`) may be
//!   given as `duration` instead.
//!
//! ```
//! use palisade_core::sdt::{LmSdt, Schedule};
//! let lm: LmSdt = serde_json::from_str(r#"{"sdtType": "daily", "timezone": "Europe/Berlin",
//!     "hour": 22, "minute": 0, "endHour": 6, "endMinute": 0}"#).unwrap();
//! let s = Schedule::from_lm(&lm).unwrap();
//! assert_eq!(s.duration_minutes(), 480);
//! // 2024-01-15 21:30 UTC is 22:30 in Berlin
//! assert!(s.is_active(1_705_354_200_000));
//! assert_eq!(
//!     s.current_or_next_window(1_705_354_200_000),
//!     Some((1_705_352_400_000, 1_705_381_200_000)) // 21:00 UTC to 05:00 UTC
//! );
//! ```

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, Offset, TimeZone, Weekday};
use chrono_tz::Tz;

/// Longest accepted `timezone` name, in bytes.
pub const MAX_TIMEZONE_LEN: usize = 64;
/// How far ahead [`Schedule::current_or_next_window`] looks for a recurring window, in days.
const LOOKAHEAD_DAYS: usize = 100;
const MINUTE_MS: i64 = 60_000;
const DAY_MINUTES: i64 = 24 * 60;

/// A day of the week, with LogicMonitor's numbers (1 = Sunday … 7 = Saturday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeekDay {
    /// 1
    Sunday = 1,
    /// 2
    Monday = 2,
    /// 3
    Tuesday = 3,
    /// 4
    Wednesday = 4,
    /// 5
    Thursday = 5,
    /// 6
    Friday = 6,
    /// 7
    Saturday = 7,
}

impl WeekDay {
    const ALL: [WeekDay; 7] = [
        WeekDay::Sunday,
        WeekDay::Monday,
        WeekDay::Tuesday,
        WeekDay::Wednesday,
        WeekDay::Thursday,
        WeekDay::Friday,
        WeekDay::Saturday,
    ];

    /// LogicMonitor's number, 1 = Sunday … 7 = Saturday.
    pub fn as_lm(self) -> u8 {
        self as u8
    }

    /// The day for LogicMonitor's number, `None` outside 1–7.
    pub fn from_lm(n: i64) -> Option<WeekDay> {
        usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| WeekDay::ALL.get(i).copied())
    }

    /// The English name, `"Sunday"` … `"Saturday"`.
    pub fn name(self) -> &'static str {
        match self {
            WeekDay::Sunday => "Sunday",
            WeekDay::Monday => "Monday",
            WeekDay::Tuesday => "Tuesday",
            WeekDay::Wednesday => "Wednesday",
            WeekDay::Thursday => "Thursday",
            WeekDay::Friday => "Friday",
            WeekDay::Saturday => "Saturday",
        }
    }

    /// The day for an English name (any case) or a number 1–7 in text.
    pub fn from_name(s: &str) -> Option<WeekDay> {
        let s = s.trim();
        if let Ok(n) = s.parse::<i64>() {
            return WeekDay::from_lm(n);
        }
        WeekDay::ALL
            .iter()
            .copied()
            .find(|d| d.name().eq_ignore_ascii_case(s))
    }

    fn to_chrono(self) -> Weekday {
        match self {
            WeekDay::Sunday => Weekday::Sun,
            WeekDay::Monday => Weekday::Mon,
            WeekDay::Tuesday => Weekday::Tue,
            WeekDay::Wednesday => Weekday::Wed,
            WeekDay::Thursday => Weekday::Thu,
            WeekDay::Friday => Weekday::Fri,
            WeekDay::Saturday => Weekday::Sat,
        }
    }
}

/// Which occurrence of a weekday in the month (`weekOfMonth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeekOfMonth {
    /// Days 1–7.
    First,
    /// Days 8–14.
    Second,
    /// Days 15–21.
    Third,
    /// Days 22–28.
    Fourth,
    /// The last such weekday of the month.
    Last,
}

impl WeekOfMonth {
    /// LogicMonitor's spelling: `First`, `Second`, `Third`, `Fourth`, `Last`.
    pub fn name(self) -> &'static str {
        match self {
            WeekOfMonth::First => "First",
            WeekOfMonth::Second => "Second",
            WeekOfMonth::Third => "Third",
            WeekOfMonth::Fourth => "Fourth",
            WeekOfMonth::Last => "Last",
        }
    }

    /// The value for a name, any case.
    pub fn from_name(s: &str) -> Option<WeekOfMonth> {
        let s = s.trim();
        [
            WeekOfMonth::First,
            WeekOfMonth::Second,
            WeekOfMonth::Third,
            WeekOfMonth::Fourth,
            WeekOfMonth::Last,
        ]
        .into_iter()
        .find(|w| w.name().eq_ignore_ascii_case(s))
    }
}

/// A wall-clock time of day, hours 0–23 and minutes 0–59.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimeOfDay {
    hour: u8,
    minute: u8,
}

impl TimeOfDay {
    /// A time of day; `None` unless `hour` is 0–23 and `minute` 0–59.
    pub fn new(hour: i64, minute: i64) -> Option<TimeOfDay> {
        let hour = u8::try_from(hour).ok().filter(|h| *h < 24)?;
        let minute = u8::try_from(minute).ok().filter(|m| *m < 60)?;
        Some(TimeOfDay { hour, minute })
    }

    /// The hour, 0–23.
    pub fn hour(self) -> u8 {
        self.hour
    }

    /// The minute, 0–59.
    pub fn minute(self) -> u8 {
        self.minute
    }

    /// Minutes since midnight, 0–1439.
    pub fn minutes(self) -> i64 {
        i64::from(self.hour) * 60 + i64::from(self.minute)
    }

    fn on(self, date: NaiveDate) -> Option<NaiveDateTime> {
        date.and_hms_opt(u32::from(self.hour), u32::from(self.minute), 0)
    }
}

/// On which days a recurring SDT happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repeat {
    /// Every day (`daily`).
    Daily,
    /// Every week on one day (`weekly`).
    Weekly {
        /// The day.
        week_day: WeekDay,
    },
    /// Every month on one day, 1–31 (`monthly`); past the month's end, its last day.
    Monthly {
        /// The day of the month.
        month_day: u8,
    },
    /// Every month on one weekday occurrence (`monthlyByWeek`).
    MonthlyByWeek {
        /// Which occurrence.
        week_of_month: WeekOfMonth,
        /// The weekday.
        week_day: WeekDay,
    },
}

impl Repeat {
    fn occurs_on(self, d: NaiveDate) -> bool {
        match self {
            Repeat::Daily => true,
            Repeat::Weekly { week_day } => d.weekday() == week_day.to_chrono(),
            Repeat::Monthly { month_day } => {
                u32::from(month_day).min(u32::from(d.num_days_in_month())) == d.day()
            }
            Repeat::MonthlyByWeek {
                week_of_month,
                week_day,
            } => {
                d.weekday() == week_day.to_chrono()
                    && match week_of_month {
                        WeekOfMonth::First => d.day() <= 7,
                        WeekOfMonth::Second => (8..=14).contains(&d.day()),
                        WeekOfMonth::Third => (15..=21).contains(&d.day()),
                        WeekOfMonth::Fourth => (22..=28).contains(&d.day()),
                        WeekOfMonth::Last => d.day() + 7 > u32::from(d.num_days_in_month()),
                    }
            }
        }
    }
}

/// What a schedule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScheduleKind {
    /// One window (`oneTime`), epoch milliseconds, `start_ms < end_ms`.
    OneTime {
        /// Start (inclusive).
        start_ms: i64,
        /// End (exclusive).
        end_ms: i64,
    },
    /// A window repeating on the days of `repeat`, from `start` to `end` local time (to the
    /// next day when `end < start`).
    Recurring {
        /// Which days.
        repeat: Repeat,
        /// Local start time.
        start: TimeOfDay,
        /// Local end time.
        end: TimeOfDay,
    },
}

/// Why an SDT schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdtError {
    /// A field the `sdtType` needs is missing.
    #[error("SDT: {0} is required")]
    MissingField(&'static str),
    /// An `sdtType` that is not one of LogicMonitor's.
    #[error("SDT: unknown sdtType {0:?}; use oneTime, daily, weekly, monthly or monthlyByWeek")]
    UnknownType(String),
    /// An hour outside 0–23.
    #[error("SDT: {field} must be 0 to 23, not {value}")]
    Hour {
        /// `hour` or `endHour`.
        field: &'static str,
        /// The value given.
        value: i64,
    },
    /// A minute outside 0–59.
    #[error("SDT: {field} must be 0 to 59, not {value}")]
    Minute {
        /// `minute` or `endMinute`.
        field: &'static str,
        /// The value given.
        value: i64,
    },
    /// A recurring window whose end time equals its start time.
    #[error("SDT: the end time must differ from the start time")]
    EmptyWindow,
    /// A `oneTime` window that does not end after it starts.
    #[error("SDT: endDateTime ({end_ms}) must be after startDateTime ({start_ms})")]
    EndNotAfterStart {
        /// `startDateTime`.
        start_ms: i64,
        /// `endDateTime`.
        end_ms: i64,
    },
    /// A `duration` that is not a positive number of minutes (below a day for recurring SDTs).
    #[error("SDT: duration {0} is out of range")]
    Duration(i64),
    /// A `weekDay` that is neither 1–7 nor a day name.
    #[error("SDT: weekDay {0:?} must be 1 (Sunday) to 7 (Saturday) or a day name")]
    WeekDay(String),
    /// A `weekOfMonth` that is not First, Second, Third, Fourth or Last.
    #[error("SDT: weekOfMonth {0:?} must be First, Second, Third, Fourth or Last")]
    WeekOfMonth(String),
    /// A `monthDay` outside 1–31.
    #[error("SDT: monthDay must be 1 to 31, not {0}")]
    MonthDay(i64),
    /// A `timezone` that is not an IANA time zone name.
    #[error("SDT: unknown timezone {0:?}; use an IANA name such as Europe/Berlin")]
    UnknownTimezone(String),
}

/// `weekDay` as LogicMonitor sends it: a number 1–7 or a day name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum LmWeekDay {
    /// 1 = Sunday … 7 = Saturday.
    Number(i64),
    /// `"Sunday"` … `"Saturday"`.
    Name(String),
}

/// The schedule fields of a LogicMonitor SDT object, as they appear in JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LmSdt {
    /// `oneTime`, `daily`, `weekly`, `monthly` or `monthlyByWeek`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdt_type: Option<String>,
    /// IANA time zone name; `UTC` when empty or missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// `oneTime` start, epoch ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_date_time: Option<i64>,
    /// `oneTime` end, epoch ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<i64>,
    /// Recurring start hour, 0–23.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hour: Option<i64>,
    /// Recurring start minute, 0–59.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minute: Option<i64>,
    /// Recurring end hour, 0–23.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_hour: Option<i64>,
    /// Recurring end minute, 0–59.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_minute: Option<i64>,
    /// `weekly` and `monthlyByWeek` day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub week_day: Option<LmWeekDay>,
    /// `monthlyByWeek` occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub week_of_month: Option<String>,
    /// `monthly` day, 1–31.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub month_day: Option<i64>,
    /// Length in minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
}

/// A validated SDT schedule in a time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    kind: ScheduleKind,
    tz: Tz,
}

impl Schedule {
    /// A schedule after checking it: `oneTime` must end after it starts, a recurring window
    /// must not start and end at the same time, `monthDay` must be 1–31, and `timezone` must
    /// be an IANA name (empty means UTC).
    pub fn new(kind: ScheduleKind, timezone: &str) -> Result<Schedule, SdtError> {
        match kind {
            ScheduleKind::OneTime { start_ms, end_ms } if end_ms <= start_ms => {
                return Err(SdtError::EndNotAfterStart { start_ms, end_ms });
            }
            ScheduleKind::Recurring { start, end, .. } if start == end => {
                return Err(SdtError::EmptyWindow);
            }
            ScheduleKind::Recurring {
                repeat: Repeat::Monthly { month_day },
                ..
            } if !(1..=31).contains(&month_day) => {
                return Err(SdtError::MonthDay(i64::from(month_day)));
            }
            _ => {}
        }
        Ok(Schedule {
            kind,
            tz: parse_timezone(timezone)?,
        })
    }

    /// A schedule from LogicMonitor's SDT fields (see the module doc).
    pub fn from_lm(lm: &LmSdt) -> Result<Schedule, SdtError> {
        let sdt_type = lm
            .sdt_type
            .as_deref()
            .ok_or(SdtError::MissingField("sdtType"))?;
        let timezone = lm.timezone.as_deref().unwrap_or("");
        let kind = if sdt_type.eq_ignore_ascii_case("oneTime") {
            let start_ms = lm
                .start_date_time
                .ok_or(SdtError::MissingField("startDateTime"))?;
            let end_ms = match (lm.end_date_time, lm.duration) {
                (Some(end), _) => end,
                (None, Some(d)) => d
                    .checked_mul(MINUTE_MS)
                    .filter(|ms| *ms > 0)
                    .and_then(|ms| start_ms.checked_add(ms))
                    .ok_or(SdtError::Duration(d))?,
                (None, None) => return Err(SdtError::MissingField("endDateTime")),
            };
            ScheduleKind::OneTime { start_ms, end_ms }
        } else {
            let repeat = if sdt_type.eq_ignore_ascii_case("daily") {
                Repeat::Daily
            } else if sdt_type.eq_ignore_ascii_case("weekly") {
                Repeat::Weekly {
                    week_day: lm_week_day(lm)?,
                }
            } else if sdt_type.eq_ignore_ascii_case("monthly") {
                let d = lm.month_day.ok_or(SdtError::MissingField("monthDay"))?;
                Repeat::Monthly {
                    month_day: u8::try_from(d)
                        .ok()
                        .filter(|d| (1..=31).contains(d))
                        .ok_or(SdtError::MonthDay(d))?,
                }
            } else if sdt_type.eq_ignore_ascii_case("monthlyByWeek") {
                let w = lm
                    .week_of_month
                    .as_deref()
                    .ok_or(SdtError::MissingField("weekOfMonth"))?;
                Repeat::MonthlyByWeek {
                    week_of_month: WeekOfMonth::from_name(w)
                        .ok_or_else(|| SdtError::WeekOfMonth(truncate(w)))?,
                    week_day: lm_week_day(lm)?,
                }
            } else {
                return Err(SdtError::UnknownType(truncate(sdt_type)));
            };
            let start = time_of_day(lm.hour, "hour", lm.minute, "minute")?;
            let end = match (lm.end_hour, lm.end_minute, lm.duration) {
                (None, None, Some(d)) => {
                    if !(1..DAY_MINUTES).contains(&d) {
                        return Err(SdtError::Duration(d));
                    }
                    let m = (start.minutes() + d).rem_euclid(DAY_MINUTES);
                    TimeOfDay::new(m / 60, m % 60).ok_or(SdtError::Duration(d))?
                }
                (h, m, _) => time_of_day(h, "endHour", m, "endMinute")?,
            };
            ScheduleKind::Recurring { repeat, start, end }
        };
        Schedule::new(kind, timezone)
    }

    /// The schedule as LogicMonitor's fields (`weekDay` as a day name), with `duration`.
    pub fn to_lm(&self) -> LmSdt {
        let mut lm = LmSdt {
            timezone: Some(self.timezone().to_string()),
            duration: Some(self.duration_minutes()),
            sdt_type: Some(self.sdt_type().to_string()),
            ..LmSdt::default()
        };
        match self.kind {
            ScheduleKind::OneTime { start_ms, end_ms } => {
                lm.start_date_time = Some(start_ms);
                lm.end_date_time = Some(end_ms);
            }
            ScheduleKind::Recurring { repeat, start, end } => {
                lm.hour = Some(i64::from(start.hour));
                lm.minute = Some(i64::from(start.minute));
                lm.end_hour = Some(i64::from(end.hour));
                lm.end_minute = Some(i64::from(end.minute));
                match repeat {
                    Repeat::Daily => {}
                    Repeat::Weekly { week_day } => {
                        lm.week_day = Some(LmWeekDay::Name(week_day.name().into()));
                    }
                    Repeat::Monthly { month_day } => lm.month_day = Some(i64::from(month_day)),
                    Repeat::MonthlyByWeek {
                        week_of_month,
                        week_day,
                    } => {
                        lm.week_of_month = Some(week_of_month.name().into());
                        lm.week_day = Some(LmWeekDay::Name(week_day.name().into()));
                    }
                }
            }
        }
        lm
    }

    /// What the schedule is.
    pub fn kind(&self) -> &ScheduleKind {
        &self.kind
    }

    /// The IANA name of its time zone (`UTC` by default).
    pub fn timezone(&self) -> &'static str {
        self.tz.name()
    }

    /// LogicMonitor's `sdtType`.
    pub fn sdt_type(&self) -> &'static str {
        match self.kind {
            ScheduleKind::OneTime { .. } => "oneTime",
            ScheduleKind::Recurring { repeat, .. } => match repeat {
                Repeat::Daily => "daily",
                Repeat::Weekly { .. } => "weekly",
                Repeat::Monthly { .. } => "monthly",
                Repeat::MonthlyByWeek { .. } => "monthlyByWeek",
            },
        }
    }

    /// LogicMonitor's `duration` in minutes (see the module doc).
    pub fn duration_minutes(&self) -> i64 {
        match self.kind {
            ScheduleKind::OneTime { start_ms, end_ms } => {
                end_ms.saturating_sub(start_ms) / MINUTE_MS
            }
            ScheduleKind::Recurring { start, end, .. } => {
                (end.minutes() - start.minutes()).rem_euclid(DAY_MINUTES)
            }
        }
    }

    /// Whether a window is in force at `now_ms` (LogicMonitor's `isEffective`).
    pub fn is_active(&self, now_ms: i64) -> bool {
        match self.kind {
            ScheduleKind::OneTime { start_ms, end_ms } => start_ms <= now_ms && now_ms < end_ms,
            ScheduleKind::Recurring { repeat, start, end } => {
                let Some(today) = self.local_date(now_ms) else {
                    return false;
                };
                // A window lasts at most a day and an hour or so, so only windows starting the
                // day before yesterday up to tomorrow can contain `now_ms`.
                (-2..=1).any(|offset| {
                    shift_days(today, offset).is_some_and(|d| {
                        repeat.occurs_on(d)
                            && self
                                .window_on(d, start, end)
                                .is_some_and(|(s, e)| s <= now_ms && now_ms < e)
                    })
                })
            }
        }
    }

    /// The window in force at `now_ms`, or else the next one, as `(start_ms, end_ms)`;
    /// `None` once a `oneTime` window is over.
    pub fn current_or_next_window(&self, now_ms: i64) -> Option<(i64, i64)> {
        match self.kind {
            ScheduleKind::OneTime { start_ms, end_ms } => {
                (now_ms < end_ms).then_some((start_ms, end_ms))
            }
            ScheduleKind::Recurring { repeat, start, end } => {
                let first = shift_days(self.local_date(now_ms)?, -2)?;
                first
                    .iter_days()
                    .take(LOOKAHEAD_DAYS)
                    .filter(|d| repeat.occurs_on(*d))
                    .filter_map(|d| self.window_on(d, start, end))
                    .find(|(_, e)| *e > now_ms)
            }
        }
    }

    fn local_date(&self, now_ms: i64) -> Option<NaiveDate> {
        let utc = DateTime::from_timestamp_millis(now_ms)?;
        Some(utc.with_timezone(&self.tz).date_naive())
    }

    /// The window starting on local date `d`, `None` when it is empty that day.
    fn window_on(&self, d: NaiveDate, start: TimeOfDay, end: TimeOfDay) -> Option<(i64, i64)> {
        let end_date = if end < start { d.succ_opt()? } else { d };
        let start_local = start.on(d)?;
        let mut s = local_to_utc_ms(self.tz, start_local)?;
        let e = local_to_utc_ms(self.tz, end.on(end_date)?)?;
        if e <= s {
            s = gap_end_ms(self.tz, start_local)?;
        }
        (s < e).then_some((s, e))
    }
}

fn shift_days(d: NaiveDate, offset: i64) -> Option<NaiveDate> {
    let days = Days::new(offset.unsigned_abs());
    if offset < 0 {
        d.checked_sub_days(days)
    } else {
        d.checked_add_days(days)
    }
}

/// The instant of a local time: the first occurrence when it happens twice; when it does not
/// happen at all, moved later by the gap (read with the offset in force before the gap).
fn local_to_utc_ms(tz: Tz, local: NaiveDateTime) -> Option<i64> {
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => Some(t.timestamp_millis()),
        chrono::LocalResult::Ambiguous(first, _) => Some(first.timestamp_millis()),
        chrono::LocalResult::None => {
            let day_before = local.checked_sub_days(Days::new(1))?;
            let offset = tz.offset_from_utc_datetime(&day_before).fix();
            let utc = local.checked_sub_signed(chrono::TimeDelta::seconds(i64::from(
                offset.local_minus_utc(),
            )))?;
            Some(utc.and_utc().timestamp_millis())
        }
    }
}

/// The instant a daylight-saving gap containing `local` ends: the first whole local minute
/// after `local` that exists (transitions are on whole minutes in every current zone).
fn gap_end_ms(tz: Tz, local: NaiveDateTime) -> Option<i64> {
    let mut t = local;
    for _ in 0..=DAY_MINUTES {
        t = t.checked_add_signed(chrono::TimeDelta::minutes(1))?;
        if let Some(first) = tz.from_local_datetime(&t).earliest() {
            return Some(first.timestamp_millis());
        }
    }
    None
}

fn parse_timezone(name: &str) -> Result<Tz, SdtError> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(Tz::UTC);
    }
    if name.len() > MAX_TIMEZONE_LEN {
        return Err(SdtError::UnknownTimezone(truncate(name)));
    }
    name.parse::<Tz>()
        .map_err(|_| SdtError::UnknownTimezone(truncate(name)))
}

fn lm_week_day(lm: &LmSdt) -> Result<WeekDay, SdtError> {
    match lm.week_day.as_ref() {
        None => Err(SdtError::MissingField("weekDay")),
        Some(LmWeekDay::Number(n)) => {
            WeekDay::from_lm(*n).ok_or_else(|| SdtError::WeekDay(n.to_string()))
        }
        Some(LmWeekDay::Name(s)) => {
            WeekDay::from_name(s).ok_or_else(|| SdtError::WeekDay(truncate(s)))
        }
    }
}

fn time_of_day(
    hour: Option<i64>,
    hour_field: &'static str,
    minute: Option<i64>,
    minute_field: &'static str,
) -> Result<TimeOfDay, SdtError> {
    let h = hour.ok_or(SdtError::MissingField(hour_field))?;
    let m = minute.ok_or(SdtError::MissingField(minute_field))?;
    if !(0..24).contains(&h) {
        return Err(SdtError::Hour {
            field: hour_field,
            value: h,
        });
    }
    TimeOfDay::new(h, m).ok_or(SdtError::Minute {
        field: minute_field,
        value: m,
    })
}

fn truncate(s: &str) -> String {
    s.chars().take(MAX_TIMEZONE_LEN).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    /// Epoch ms of a UTC date and time.
    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    fn lm(json: serde_json::Value) -> Schedule {
        let fields: LmSdt = serde_json::from_value(json).unwrap();
        Schedule::from_lm(&fields).unwrap()
    }

    fn lm_err(json: serde_json::Value) -> SdtError {
        let fields: LmSdt = serde_json::from_value(json).unwrap();
        Schedule::from_lm(&fields).unwrap_err()
    }

    fn daily(tz: &str, h: i64, m: i64, eh: i64, em: i64) -> Schedule {
        lm(serde_json::json!({"sdtType": "daily", "timezone": tz,
            "hour": h, "minute": m, "endHour": eh, "endMinute": em}))
    }

    /// `is_active` must agree with `current_or_next_window` everywhere.
    fn assert_consistent(s: &Schedule, from_ms: i64, to_ms: i64, step_ms: i64) {
        let mut t = from_ms;
        while t < to_ms {
            let w = s.current_or_next_window(t).unwrap();
            assert!(w.0 < w.1 && w.1 > t, "{s:?} at {t}: {w:?}");
            assert_eq!(s.is_active(t), w.0 <= t, "{s:?} at {t}: {w:?}");
            t += step_ms;
        }
    }

    #[test]
    fn week_day_numbers_and_names() {
        assert_eq!(WeekDay::from_lm(1), Some(WeekDay::Sunday));
        assert_eq!(WeekDay::from_lm(2), Some(WeekDay::Monday));
        assert_eq!(WeekDay::from_lm(7), Some(WeekDay::Saturday));
        assert_eq!(WeekDay::from_lm(0), None);
        assert_eq!(WeekDay::from_lm(8), None);
        assert_eq!(WeekDay::from_lm(-6), None);
        for d in WeekDay::ALL {
            assert_eq!(WeekDay::from_lm(i64::from(d.as_lm())), Some(d));
            assert_eq!(WeekDay::from_name(&d.name().to_uppercase()), Some(d));
        }
        assert_eq!(WeekDay::from_name(" 3 "), Some(WeekDay::Tuesday));
        assert_eq!(WeekDay::from_name("Funday"), None);
        assert_eq!(WeekOfMonth::from_name("last"), Some(WeekOfMonth::Last));
        assert_eq!(WeekOfMonth::from_name("Fifth"), None);
    }

    #[test]
    fn one_time_window() {
        let (start, end) = (utc(2024, 5, 1, 10, 0), utc(2024, 5, 1, 11, 30));
        let s = lm(serde_json::json!({"sdtType": "oneTime",
            "startDateTime": start, "endDateTime": end}));
        assert_eq!(s.sdt_type(), "oneTime");
        assert_eq!(s.timezone(), "UTC");
        assert_eq!(s.duration_minutes(), 90);
        assert!(!s.is_active(start - 1));
        assert!(s.is_active(start));
        assert!(s.is_active(end - 1));
        assert!(!s.is_active(end));
        assert_eq!(s.current_or_next_window(0), Some((start, end)));
        assert_eq!(s.current_or_next_window(end - 1), Some((start, end)));
        assert_eq!(s.current_or_next_window(end), None);
        // partial minutes are dropped from duration
        let s = Schedule::new(
            ScheduleKind::OneTime {
                start_ms: 0,
                end_ms: 90 * 60_000 + 59_999,
            },
            "",
        )
        .unwrap();
        assert_eq!(s.duration_minutes(), 90);
        // end from duration
        let s = lm(serde_json::json!({"sdtType": "oneTime",
            "startDateTime": start, "duration": 45}));
        assert_eq!(
            s.current_or_next_window(start),
            Some((start, start + 45 * 60_000))
        );
        // extreme but valid
        let s = Schedule::new(
            ScheduleKind::OneTime {
                start_ms: i64::MIN,
                end_ms: i64::MAX,
            },
            "",
        )
        .unwrap();
        assert!(s.is_active(0));
        assert_eq!(s.duration_minutes(), i64::MAX / 60_000);
    }

    #[test]
    fn daily_in_utc_by_default() {
        let s = lm(serde_json::json!({"sdtType": "daily",
            "hour": 9, "minute": 0, "endHour": 17, "endMinute": 30}));
        assert_eq!(s.timezone(), "UTC");
        assert_eq!(s.duration_minutes(), 510);
        let day = utc(2024, 6, 3, 0, 0);
        let today = (day + 9 * HOUR, day + 17 * HOUR + 30 * 60_000);
        assert_eq!(s.current_or_next_window(day), Some(today));
        assert!(!s.is_active(today.0 - 1));
        assert!(s.is_active(today.0));
        assert!(s.is_active(today.1 - 1));
        assert!(!s.is_active(today.1));
        assert_eq!(
            s.current_or_next_window(today.1),
            Some((today.0 + 24 * HOUR, today.1 + 24 * HOUR))
        );
        assert_consistent(&s, day, day + 3 * 24 * HOUR, 7 * 60_000);
    }

    #[test]
    fn daily_window_crossing_midnight() {
        let s = daily("UTC", 22, 0, 6, 0);
        assert_eq!(s.duration_minutes(), 480);
        let window = (utc(2024, 6, 3, 22, 0), utc(2024, 6, 4, 6, 0));
        assert!(!s.is_active(utc(2024, 6, 3, 21, 59)));
        assert!(s.is_active(utc(2024, 6, 3, 22, 0)));
        assert!(s.is_active(utc(2024, 6, 4, 0, 0)));
        assert!(s.is_active(utc(2024, 6, 4, 5, 59)));
        assert!(!s.is_active(utc(2024, 6, 4, 6, 0)));
        // after midnight, the current window is the one that started yesterday
        assert_eq!(
            s.current_or_next_window(utc(2024, 6, 4, 3, 0)),
            Some(window)
        );
        assert_eq!(
            s.current_or_next_window(utc(2024, 6, 3, 12, 0)),
            Some(window)
        );
        assert_consistent(&s, window.0 - 48 * HOUR, window.1 + 48 * HOUR, 11 * 60_000);
    }

    #[test]
    fn berlin_spring_forward_shortens_a_night_window() {
        // DST starts 2024-03-31: 02:00 CET becomes 03:00 CEST (01:00 UTC)
        let s = daily("Europe/Berlin", 22, 0, 6, 0);
        let before = s.current_or_next_window(utc(2024, 3, 30, 12, 0)).unwrap();
        // 22:00 CET = 21:00 UTC; 06:00 CEST = 04:00 UTC: 7 hours
        assert_eq!(before, (utc(2024, 3, 30, 21, 0), utc(2024, 3, 31, 4, 0)));
        assert_eq!(before.1 - before.0, 7 * HOUR);
        assert_eq!(s.duration_minutes(), 480);
        // the next night is in CEST: 22:00 = 20:00 UTC
        let after = s.current_or_next_window(before.1).unwrap();
        assert_eq!(after, (utc(2024, 3, 31, 20, 0), utc(2024, 4, 1, 4, 0)));
        // the night before is in CET throughout
        assert_eq!(
            s.current_or_next_window(utc(2024, 3, 29, 12, 0)),
            Some((utc(2024, 3, 29, 21, 0), utc(2024, 3, 30, 5, 0)))
        );
        assert!(s.is_active(utc(2024, 3, 31, 0, 59)));
        assert!(s.is_active(utc(2024, 3, 31, 1, 0)));
        assert!(!s.is_active(utc(2024, 3, 31, 4, 0)));
        assert_consistent(
            &s,
            utc(2024, 3, 28, 0, 0),
            utc(2024, 4, 3, 0, 0),
            13 * 60_000,
        );
    }

    #[test]
    fn berlin_fall_back_lengthens_a_window_and_takes_the_first_of_twice() {
        // DST ends 2024-10-27: 03:00 CEST becomes 02:00 CET (01:00 UTC)
        let s = daily("Europe/Berlin", 1, 0, 4, 0);
        // 01:00 CEST = 23:00 UTC the day before; 04:00 CET = 03:00 UTC: 4 hours
        assert_eq!(
            s.current_or_next_window(utc(2024, 10, 26, 12, 0)),
            Some((utc(2024, 10, 26, 23, 0), utc(2024, 10, 27, 3, 0)))
        );
        // 02:00-02:30 happens twice that night; the window is the first one
        let s = daily("Europe/Berlin", 2, 0, 2, 30);
        assert_eq!(
            s.current_or_next_window(utc(2024, 10, 26, 12, 0)),
            Some((utc(2024, 10, 27, 0, 0), utc(2024, 10, 27, 0, 30)))
        );
        assert!(s.is_active(utc(2024, 10, 27, 0, 15)));
        assert!(!s.is_active(utc(2024, 10, 27, 1, 15))); // 02:15 CET, the second time
                                                         // the day after, back to one hour off UTC
        assert_eq!(
            s.current_or_next_window(utc(2024, 10, 27, 0, 30)),
            Some((utc(2024, 10, 28, 1, 0), utc(2024, 10, 28, 1, 30)))
        );
        assert_consistent(
            &s,
            utc(2024, 10, 25, 0, 0),
            utc(2024, 10, 30, 0, 0),
            7 * 60_000,
        );
    }

    #[test]
    fn berlin_local_times_that_do_not_exist() {
        let day = utc(2024, 3, 30, 12, 0);
        // wholly inside the gap: moved an hour later, 03:00-03:30 CEST
        let s = daily("Europe/Berlin", 2, 0, 2, 30);
        assert_eq!(
            s.current_or_next_window(day),
            Some((utc(2024, 3, 31, 1, 0), utc(2024, 3, 31, 1, 30)))
        );
        // start in the gap, end after it: starts when the gap ends
        let s = daily("Europe/Berlin", 2, 30, 3, 10);
        assert_eq!(
            s.current_or_next_window(day),
            Some((utc(2024, 3, 31, 1, 0), utc(2024, 3, 31, 1, 10)))
        );
        let s = daily("Europe/Berlin", 2, 30, 3, 30);
        assert_eq!(
            s.current_or_next_window(day),
            Some((utc(2024, 3, 31, 1, 0), utc(2024, 3, 31, 1, 30)))
        );
        // nothing left of it: no window that day, the next is on 1 April (CEST)
        let s = daily("Europe/Berlin", 2, 30, 3, 0);
        assert_eq!(
            s.current_or_next_window(day),
            Some((utc(2024, 4, 1, 0, 30), utc(2024, 4, 1, 1, 0)))
        );
        assert!(!s.is_active(utc(2024, 3, 31, 1, 0)));
        // end in the gap: the window ends an hour later by the clock, 01:00 CET-03:30 CEST
        let s = daily("Europe/Berlin", 1, 0, 2, 30);
        assert_eq!(
            s.current_or_next_window(day),
            Some((utc(2024, 3, 31, 0, 0), utc(2024, 3, 31, 1, 30)))
        );
        for (h, m, eh, em) in [(2, 0, 2, 30), (2, 30, 3, 10), (2, 30, 3, 0), (1, 0, 2, 30)] {
            let s = daily("Europe/Berlin", h, m, eh, em);
            assert_consistent(
                &s,
                utc(2024, 3, 29, 0, 0),
                utc(2024, 4, 2, 0, 0),
                5 * 60_000,
            );
        }
    }

    #[test]
    fn new_york_weekly_across_both_changes() {
        // weekDay 1 = Sunday; 2024-03-10 02:00 EST -> 03:00 EDT, 2024-11-03 02:00 EDT -> 01:00 EST
        let s = lm(
            serde_json::json!({"sdtType": "weekly", "timezone": "America/New_York",
            "weekDay": 1, "hour": 1, "minute": 0, "endHour": 3, "endMinute": 0}),
        );
        assert_eq!(s.sdt_type(), "weekly");
        assert_eq!(s.duration_minutes(), 120);
        // 01:00 EST = 06:00 UTC, 03:00 EDT = 07:00 UTC: one real hour
        assert_eq!(
            s.current_or_next_window(utc(2024, 3, 5, 0, 0)),
            Some((utc(2024, 3, 10, 6, 0), utc(2024, 3, 10, 7, 0)))
        );
        // an ordinary EDT Sunday
        assert_eq!(
            s.current_or_next_window(utc(2024, 3, 10, 7, 0)),
            Some((utc(2024, 3, 17, 5, 0), utc(2024, 3, 17, 7, 0)))
        );
        // 01:00 happens twice: the first, EDT (05:00 UTC); 03:00 EST = 08:00 UTC: three hours
        assert_eq!(
            s.current_or_next_window(utc(2024, 10, 30, 0, 0)),
            Some((utc(2024, 11, 3, 5, 0), utc(2024, 11, 3, 8, 0)))
        );
        assert!(s.is_active(utc(2024, 11, 3, 7, 59)));
        assert!(!s.is_active(utc(2024, 11, 2, 7, 0)));
        assert_consistent(
            &s,
            utc(2024, 3, 1, 0, 0),
            utc(2024, 3, 20, 0, 0),
            37 * 60_000,
        );
        assert_consistent(
            &s,
            utc(2024, 10, 25, 0, 0),
            utc(2024, 11, 12, 0, 0),
            37 * 60_000,
        );
    }

    #[test]
    fn weekly_crossing_midnight_into_the_next_day() {
        // Saturday (7) 23:00 to Sunday 01:00; 2024-06-08 is a Saturday
        let s = lm(
            serde_json::json!({"sdtType": "weekly", "weekDay": "saturday",
            "hour": 23, "minute": 0, "endHour": 1, "endMinute": 0}),
        );
        assert!(s.is_active(utc(2024, 6, 9, 0, 30)));
        assert!(!s.is_active(utc(2024, 6, 9, 1, 0)));
        assert!(!s.is_active(utc(2024, 6, 7, 23, 30))); // Friday
        assert!(!s.is_active(utc(2024, 6, 9, 23, 30))); // Sunday
        assert_eq!(
            s.current_or_next_window(utc(2024, 6, 9, 0, 30)),
            Some((utc(2024, 6, 8, 23, 0), utc(2024, 6, 9, 1, 0)))
        );
        assert_eq!(
            s.current_or_next_window(utc(2024, 6, 9, 1, 0)),
            Some((utc(2024, 6, 15, 23, 0), utc(2024, 6, 16, 1, 0)))
        );
    }

    #[test]
    fn monthly_day_past_the_month_end_is_the_last_day() {
        let s = lm(serde_json::json!({"sdtType": "monthly", "monthDay": 31,
            "hour": 10, "minute": 0, "endHour": 11, "endMinute": 0}));
        let next = |t| s.current_or_next_window(t).unwrap().0;
        assert_eq!(next(utc(2024, 1, 31, 11, 0)), utc(2024, 2, 29, 10, 0)); // leap year
        assert_eq!(next(utc(2023, 2, 1, 0, 0)), utc(2023, 2, 28, 10, 0));
        assert_eq!(next(utc(2024, 3, 31, 11, 0)), utc(2024, 4, 30, 10, 0));
        assert_eq!(next(utc(2024, 4, 30, 11, 0)), utc(2024, 5, 31, 10, 0));
        assert_eq!(next(utc(2024, 12, 31, 11, 0)), utc(2025, 1, 31, 10, 0));
        assert!(s.is_active(utc(2023, 2, 28, 10, 30)));
        assert!(!s.is_active(utc(2023, 3, 1, 10, 30)));
        // the 30th in February, too
        let s = lm(serde_json::json!({"sdtType": "monthly", "monthDay": 30,
            "hour": 10, "minute": 0, "endHour": 11, "endMinute": 0}));
        assert_eq!(
            s.current_or_next_window(utc(2024, 2, 1, 0, 0)).unwrap().0,
            utc(2024, 2, 29, 10, 0)
        );
        assert_eq!(
            s.current_or_next_window(utc(2024, 3, 1, 0, 0)).unwrap().0,
            utc(2024, 3, 30, 10, 0)
        );
        // an ordinary day
        let s = lm(serde_json::json!({"sdtType": "monthly", "monthDay": 1,
            "hour": 0, "minute": 0, "endHour": 23, "endMinute": 59}));
        assert_eq!(s.duration_minutes(), 1439);
        assert_eq!(
            s.current_or_next_window(utc(2024, 2, 1, 23, 59)),
            Some((utc(2024, 3, 1, 0, 0), utc(2024, 3, 1, 23, 59)))
        );
    }

    #[test]
    fn monthly_crossing_into_the_next_month() {
        let s = lm(serde_json::json!({"sdtType": "monthly", "monthDay": 31,
            "hour": 23, "minute": 0, "endHour": 1, "endMinute": 0}));
        assert_eq!(s.duration_minutes(), 120);
        assert!(s.is_active(utc(2024, 2, 1, 0, 30)));
        assert!(s.is_active(utc(2024, 3, 1, 0, 30))); // from 29 February
        assert!(!s.is_active(utc(2024, 3, 2, 0, 30)));
        assert_eq!(
            s.current_or_next_window(utc(2024, 3, 1, 0, 30)),
            Some((utc(2024, 2, 29, 23, 0), utc(2024, 3, 1, 1, 0)))
        );
        assert_consistent(
            &s,
            utc(2024, 1, 1, 0, 0),
            utc(2024, 5, 1, 0, 0),
            97 * 60_000,
        );
    }

    #[test]
    fn monthly_by_week() {
        let by_week = |w: &str, d: i64| {
            lm(
                serde_json::json!({"sdtType": "monthlyByWeek", "weekOfMonth": w, "weekDay": d,
                "hour": 12, "minute": 0, "endHour": 13, "endMinute": 0}),
            )
        };
        let start = |s: &Schedule, t| s.current_or_next_window(t).unwrap().0;
        // Last Friday (6): February 2024 ends on Thursday 29th
        let last_friday = by_week("Last", 6);
        assert_eq!(
            start(&last_friday, utc(2024, 2, 1, 0, 0)),
            utc(2024, 2, 23, 12, 0)
        );
        assert_eq!(
            start(&last_friday, utc(2024, 2, 24, 0, 0)),
            utc(2024, 3, 29, 12, 0)
        );
        // Last Thursday (5) of February 2024 is its last day
        assert_eq!(
            start(&by_week("Last", 5), utc(2024, 2, 1, 0, 0)),
            utc(2024, 2, 29, 12, 0)
        );
        // First Monday (2) of March 2024; Fourth Thursday of November 2024
        assert_eq!(
            start(&by_week("First", 2), utc(2024, 2, 29, 0, 0)),
            utc(2024, 3, 4, 12, 0)
        );
        assert_eq!(
            start(&by_week("Fourth", 5), utc(2024, 11, 1, 0, 0)),
            utc(2024, 11, 28, 12, 0)
        );
        assert_eq!(
            start(&by_week("Second", 1), utc(2024, 9, 1, 0, 0)),
            utc(2024, 9, 8, 12, 0)
        );
        assert_eq!(
            start(&by_week("third", 1), utc(2024, 9, 1, 0, 0)),
            utc(2024, 9, 15, 12, 0)
        );
        // Last vs Fourth differ when a month has five of that weekday (Sundays of Sept 2024)
        assert_eq!(
            start(&by_week("Fourth", 1), utc(2024, 9, 1, 0, 0)),
            utc(2024, 9, 22, 12, 0)
        );
        assert_eq!(
            start(&by_week("Last", 1), utc(2024, 9, 1, 0, 0)),
            utc(2024, 9, 29, 12, 0)
        );
        assert!(last_friday.is_active(utc(2024, 2, 23, 12, 30)));
        assert!(!last_friday.is_active(utc(2024, 2, 16, 12, 30)));
    }

    #[test]
    fn monthly_by_week_on_the_dst_sundays_in_berlin() {
        // the last Sunday of March and October are the DST change days
        let s = lm(
            serde_json::json!({"sdtType": "monthlyByWeek", "weekOfMonth": "Last",
            "weekDay": "Sunday", "timezone": "Europe/Berlin",
            "hour": 2, "minute": 0, "endHour": 3, "endMinute": 0}),
        );
        // 31 March 2024: 02:00-03:00 never happens, so there is no window that month
        assert_eq!(
            s.current_or_next_window(utc(2024, 3, 1, 0, 0)),
            Some((utc(2024, 4, 28, 0, 0), utc(2024, 4, 28, 1, 0)))
        );
        // 27 October 2024: from the first 02:00 (CEST) to 03:00 CET, two real hours
        assert_eq!(
            s.current_or_next_window(utc(2024, 10, 1, 0, 0)),
            Some((utc(2024, 10, 27, 0, 0), utc(2024, 10, 27, 2, 0)))
        );
        assert_consistent(
            &s,
            utc(2024, 3, 1, 0, 0),
            utc(2024, 11, 1, 0, 0),
            6 * HOUR + 7,
        );
    }

    #[test]
    fn recurring_end_from_duration() {
        let s = lm(
            serde_json::json!({"sdtType": "daily", "hour": 23, "minute": 30,
            "duration": 90}),
        );
        assert_eq!(
            s.kind(),
            &ScheduleKind::Recurring {
                repeat: Repeat::Daily,
                start: TimeOfDay::new(23, 30).unwrap(),
                end: TimeOfDay::new(1, 0).unwrap()
            }
        );
        assert_eq!(s.duration_minutes(), 90);
    }

    #[test]
    fn refuses_bad_input() {
        use serde_json::json;
        let t = |extra: serde_json::Value| {
            let mut base = json!({"sdtType": "daily", "hour": 1, "minute": 0,
                "endHour": 2, "endMinute": 0});
            for (k, v) in extra.as_object().unwrap() {
                base[k] = v.clone();
            }
            lm_err(base)
        };
        assert_eq!(lm_err(json!({})), SdtError::MissingField("sdtType"));
        assert_eq!(
            t(json!({"sdtType": "yearly"})),
            SdtError::UnknownType("yearly".into())
        );
        assert_eq!(
            t(json!({"hour": 24})),
            SdtError::Hour {
                field: "hour",
                value: 24
            }
        );
        assert_eq!(
            t(json!({"endHour": -1})),
            SdtError::Hour {
                field: "endHour",
                value: -1
            }
        );
        assert_eq!(
            t(json!({"minute": 60})),
            SdtError::Minute {
                field: "minute",
                value: 60
            }
        );
        assert_eq!(
            t(json!({"endMinute": i64::MAX})),
            SdtError::Minute {
                field: "endMinute",
                value: i64::MAX
            }
        );
        assert_eq!(
            t(json!({"endHour": 1, "endMinute": 0})),
            SdtError::EmptyWindow
        );
        assert_eq!(t(json!({"hour": null})), SdtError::MissingField("hour"));
        assert_eq!(
            t(json!({"endMinute": null})),
            SdtError::MissingField("endMinute")
        );
        assert_eq!(
            t(json!({"endHour": null, "endMinute": null, "duration": 1440})),
            SdtError::Duration(1440)
        );
        assert_eq!(
            t(json!({"endHour": null, "endMinute": null, "duration": 0})),
            SdtError::Duration(0)
        );
        assert_eq!(
            t(json!({"timezone": "Mars/Olympus_Mons"})),
            SdtError::UnknownTimezone("Mars/Olympus_Mons".into())
        );
        assert_eq!(
            t(json!({"timezone": "europe/berlin"})),
            SdtError::UnknownTimezone("europe/berlin".into())
        );
        match t(json!({"timezone": "x".repeat(10_000)})) {
            SdtError::UnknownTimezone(s) => assert_eq!(s.len(), MAX_TIMEZONE_LEN),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            t(json!({"sdtType": "weekly"})),
            SdtError::MissingField("weekDay")
        );
        assert_eq!(
            t(json!({"sdtType": "weekly", "weekDay": 0})),
            SdtError::WeekDay("0".into())
        );
        assert_eq!(
            t(json!({"sdtType": "weekly", "weekDay": 8})),
            SdtError::WeekDay("8".into())
        );
        assert_eq!(
            t(json!({"sdtType": "weekly", "weekDay": "Funday"})),
            SdtError::WeekDay("Funday".into())
        );
        assert_eq!(
            t(json!({"sdtType": "monthly"})),
            SdtError::MissingField("monthDay")
        );
        for d in [0, 32, -1, 256] {
            assert_eq!(
                t(json!({"sdtType": "monthly", "monthDay": d})),
                SdtError::MonthDay(d)
            );
        }
        assert_eq!(
            t(json!({"sdtType": "monthlyByWeek", "weekDay": 1})),
            SdtError::MissingField("weekOfMonth")
        );
        assert_eq!(
            t(json!({"sdtType": "monthlyByWeek", "weekDay": 1, "weekOfMonth": "Fifth"})),
            SdtError::WeekOfMonth("Fifth".into())
        );
        let one = |extra: serde_json::Value| {
            let mut base = json!({"sdtType": "oneTime", "startDateTime": 1000});
            for (k, v) in extra.as_object().unwrap() {
                base[k] = v.clone();
            }
            lm_err(base)
        };
        assert_eq!(one(json!({})), SdtError::MissingField("endDateTime"));
        assert_eq!(
            one(json!({"endDateTime": 1000})),
            SdtError::EndNotAfterStart {
                start_ms: 1000,
                end_ms: 1000
            }
        );
        assert_eq!(
            one(json!({"endDateTime": 999})),
            SdtError::EndNotAfterStart {
                start_ms: 1000,
                end_ms: 999
            }
        );
        assert_eq!(one(json!({"duration": 0})), SdtError::Duration(0));
        assert_eq!(
            one(json!({"duration": i64::MAX})),
            SdtError::Duration(i64::MAX)
        );
        assert_eq!(
            lm_err(json!({"sdtType": "oneTime", "endDateTime": 5})),
            SdtError::MissingField("startDateTime")
        );
        // direct construction is checked too
        assert_eq!(
            Schedule::new(
                ScheduleKind::Recurring {
                    repeat: Repeat::Monthly { month_day: 0 },
                    start: TimeOfDay::new(0, 0).unwrap(),
                    end: TimeOfDay::new(1, 0).unwrap()
                },
                ""
            ),
            Err(SdtError::MonthDay(0))
        );
        assert_eq!(TimeOfDay::new(23, 59).map(TimeOfDay::minutes), Some(1439));
        assert_eq!(TimeOfDay::new(24, 0), None);
        assert_eq!(TimeOfDay::new(0, -1), None);
        // error messages escape control characters
        let e = t(json!({"sdtType": "\u{1b}[2J"}));
        assert!(!e.to_string().contains('\u{1b}'));
    }

    #[test]
    fn ignores_fields_of_other_types_and_is_case_lenient() {
        let s = lm(serde_json::json!({"sdtType": "ONETIME", "startDateTime": 0,
            "endDateTime": 60_000, "hour": 99, "weekDay": "nonsense", "monthDay": 0,
            "type": "ResourceSDT", "comment": "x", "timezone": " Europe/Berlin "}));
        assert_eq!(s.timezone(), "Europe/Berlin");
        assert_eq!(s.duration_minutes(), 1);
        let s = lm(
            serde_json::json!({"sdtType": "daily", "weekDay": 0, "monthDay": 99,
            "weekOfMonth": "?", "hour": 0, "minute": 0, "endHour": 0, "endMinute": 1,
            "timezone": ""}),
        );
        assert_eq!(s.timezone(), "UTC");
    }

    #[test]
    fn to_lm_round_trips() {
        let cases = [
            serde_json::json!({"sdtType": "oneTime", "startDateTime": 5, "endDateTime": 600_005,
                "timezone": "Asia/Kolkata"}),
            serde_json::json!({"sdtType": "daily", "hour": 22, "minute": 15, "endHour": 6,
                "endMinute": 45}),
            serde_json::json!({"sdtType": "weekly", "weekDay": 2, "hour": 1, "minute": 0,
                "endHour": 3, "endMinute": 0, "timezone": "America/New_York"}),
            serde_json::json!({"sdtType": "monthly", "monthDay": 31, "hour": 1, "minute": 0,
                "endHour": 3, "endMinute": 0}),
            serde_json::json!({"sdtType": "monthlyByWeek", "weekOfMonth": "Last",
                "weekDay": "friday", "hour": 1, "minute": 0, "endHour": 3, "endMinute": 0}),
        ];
        for json in cases {
            let s = lm(json);
            let out = s.to_lm();
            assert_eq!(Schedule::from_lm(&out), Ok(s));
            assert_eq!(out.duration, Some(s.duration_minutes()));
        }
        let weekly = lm(
            serde_json::json!({"sdtType": "weekly", "weekDay": 2, "hour": 1,
            "minute": 0, "endHour": 3, "endMinute": 0}),
        );
        assert_eq!(
            serde_json::to_value(weekly.to_lm()).unwrap(),
            serde_json::json!({"sdtType": "weekly", "timezone": "UTC", "hour": 1, "minute": 0,
                "endHour": 3, "endMinute": 0, "weekDay": "Monday", "duration": 120})
        );
    }

    #[test]
    fn instants_outside_the_calendar_are_never_active() {
        let s = daily("Europe/Berlin", 0, 0, 23, 59);
        assert!(!s.is_active(i64::MAX));
        assert!(!s.is_active(i64::MIN));
        assert_eq!(s.current_or_next_window(i64::MAX), None);
        assert_eq!(s.current_or_next_window(i64::MIN), None);
    }

    #[test]
    fn consistent_through_a_year_in_several_zones() {
        for tz in [
            "Europe/Berlin",
            "America/New_York",
            "Australia/Sydney",
            "Asia/Kolkata",
        ] {
            for (h, m, eh, em) in [(22, 0, 6, 0), (2, 0, 3, 0), (2, 30, 2, 15), (0, 0, 23, 59)] {
                let s = daily(tz, h, m, eh, em);
                assert_consistent(
                    &s,
                    utc(2024, 1, 1, 0, 0),
                    utc(2025, 1, 1, 0, 0),
                    3 * HOUR + 17 * 60_000,
                );
            }
        }
    }
}
