//! Portal settings kept in the database (`palisade settings set KEY VALUE`), validated
//! here. Deadlines and switches are settings, not code; every change is audited.

use crate::error::ApiError;
use crate::portal::{Actor, Portal};

/// A known setting: its key, what it means and how its value is checked.
#[derive(Debug, Clone, Copy)]
pub struct Known {
    /// Key.
    pub key: &'static str,
    /// Meaning and accepted values.
    pub help: &'static str,
    validate: fn(&str) -> Result<String, String>,
}

fn date_or_none(v: &str) -> Result<String, String> {
    if v.eq_ignore_ascii_case("none") || v.is_empty() {
        return Ok(String::new());
    }
    parse_date_ms(v)
        .map(|_| v.to_string())
        .ok_or_else(|| "expected a date YYYY-MM-DD (UTC) or `none`".into())
}

fn hours_0_720(v: &str) -> Result<String, String> {
    match v.parse::<i64>() {
        Ok(n) if (0..=720).contains(&n) => Ok(n.to_string()),
        _ => Err("expected a whole number of hours from 0 to 720 (30 days)".into()),
    }
}

fn boolean(v: &str) -> Result<String, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok("true".into()),
        "false" | "off" | "no" | "0" => Ok("false".into()),
        _ => Err("expected true or false".into()),
    }
}

fn usernames(v: &str) -> Result<String, String> {
    let names: Vec<&str> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if names.iter().all(|n| n.len() <= 64) {
        Ok(names.join(","))
    } else {
        Err("expected a comma-separated list of usernames".into())
    }
}

fn hours_0_8760(v: &str) -> Result<String, String> {
    match v.parse::<i64>() {
        Ok(n) if (0..=8760).contains(&n) => Ok(n.to_string()),
        _ => Err("expected a whole number of hours from 0 to 8760".into()),
    }
}

fn days_1_3650(v: &str) -> Result<String, String> {
    match v.parse::<i64>() {
        Ok(n) if (1..=3650).contains(&n) => Ok(n.to_string()),
        _ => Err("expected a whole number of days from 1 to 3650".into()),
    }
}

fn seconds_30_86400(v: &str) -> Result<String, String> {
    match v.parse::<i64>() {
        Ok(n) if (30..=86_400).contains(&n) => Ok(n.to_string()),
        _ => Err("expected a whole number of seconds from 30 to 86400".into()),
    }
}

fn days_0_365(v: &str) -> Result<String, String> {
    match v.parse::<i64>() {
        Ok(n) if (0..=365).contains(&n) => Ok(n.to_string()),
        _ => Err("expected a whole number of days from 0 to 365".into()),
    }
}

/// Every setting Palisade knows.
pub const KNOWN: &[Known] = &[
    Known { key: "mfa.enforcement_date", help: "date (YYYY-MM-DD, UTC) from which local users without a second factor are confined to enrolment; `none` = not enforced account-wide", validate: date_or_none },
    Known { key: "mfa.grace_hours", help: "grace period of a new local user before enrolment is forced (0-720, default 72)", validate: hours_0_720 },
    Known { key: "sso.restrict", help: "true: password sign-in is refused except for the break-glass accounts", validate: boolean },
    Known { key: "sso.break_glass", help: "comma-separated usernames allowed to sign in with a password when sso.restrict is on (they must have a second factor)", validate: usernames },
    Known { key: "tsdb.raw_retention_days", help: "days of raw samples the embedded time-series store keeps (default 30; read at start)", validate: days_1_3650 },
    Known { key: "tsdb.rollup_retention_days", help: "days of hourly rollups the embedded time-series store keeps (default 365; read at start)", validate: days_1_3650 },
    Known { key: "collector.down_after_seconds", help: "how long a collector may miss heartbeats before it shows as down and its devices fail over to its backup or group (30-86400, default 180)", validate: seconds_30_86400 },
    Known { key: "token.migration_grace_days", help: "days a replaced API token stays disabled and unused before it is deleted (0-365, default 14); any use in that time keeps it", validate: days_0_365 },
    Known { key: "token.imported_violating_until", help: "date (YYYY-MM-DD, UTC) until which imported API tokens whose owner breaks the token mandate keep working; `none` (default) = they keep working, flagged", validate: date_or_none },
    Known { key: "ingest.backfill_hours", help: "how old pushed samples may be (default: 10 minutes; for imports and backfill)", validate: hours_0_8760 },
];

/// Looks a setting up.
pub fn known(key: &str) -> Option<&'static Known> {
    KNOWN.iter().find(|k| k.key == key)
}

/// Validates and stores a setting.
pub async fn set(
    portal: &Portal,
    actor: &Actor,
    key: &str,
    value: &str,
) -> Result<String, ApiError> {
    let k = known(key).ok_or_else(|| {
        let keys: Vec<&str> = KNOWN.iter().map(|k| k.key).collect();
        ApiError::BadRequest(format!(
            "unknown setting `{key}`; known: {}",
            keys.join(", ")
        ))
    })?;
    let value =
        (k.validate)(value.trim()).map_err(|e| ApiError::BadRequest(format!("{key}: {e}")))?;
    let audit = actor.event(
        portal.now(),
        "setting.change",
        format!("Set {key} = {value:?}"),
    );
    portal.store.set_setting(key, &value, audit).await?;
    Ok(value)
}

/// Reads a setting (empty string when unset).
pub async fn get(portal: &Portal, key: &str) -> Result<String, ApiError> {
    Ok(portal.store.get_setting(key).await?.unwrap_or_default())
}

/// Two-factor and SSO settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SigninSettings {
    /// Account-wide enforcement date, epoch ms.
    pub enforcement_date_ms: Option<i64>,
    /// Grace period.
    pub grace_ms: i64,
    /// Password sign-in restricted to break-glass accounts.
    pub restrict_to_sso: bool,
    /// Break-glass usernames (lower case).
    pub break_glass: Vec<String>,
}

impl SigninSettings {
    /// Loads them.
    pub async fn load(portal: &Portal) -> Result<SigninSettings, ApiError> {
        let date = get(portal, "mfa.enforcement_date").await?;
        let grace = get(portal, "mfa.grace_hours").await?;
        Ok(SigninSettings {
            enforcement_date_ms: parse_date_ms(&date),
            grace_ms: grace
                .parse::<i64>()
                .map(|h| h * 3_600_000)
                .unwrap_or(palisade_core::mfa::DEFAULT_GRACE_MS),
            restrict_to_sso: get(portal, "sso.restrict").await? == "true",
            break_glass: get(portal, "sso.break_glass")
                .await?
                .split(',')
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
        })
    }

    /// Whether a username is a break-glass account.
    pub fn is_break_glass(&self, username: &str) -> bool {
        self.break_glass
            .iter()
            .any(|b| b.eq_ignore_ascii_case(username))
    }
}

/// `YYYY-MM-DD` (UTC midnight) to epoch ms.
pub fn parse_date_ms(s: &str) -> Option<i64> {
    let mut it = s.trim().splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date_ms("1970-01-01"), Some(0));
        assert_eq!(parse_date_ms("2024-12-31"), Some(1_735_603_200_000));
        assert_eq!(parse_date_ms("2000-02-29"), Some(951_782_400_000));
        assert_eq!(parse_date_ms("2024-13-01"), None);
        assert_eq!(parse_date_ms("soon"), None);
    }

    #[test]
    fn validation() {
        assert!(known("mfa.grace_hours").is_some_and(|k| (k.validate)("721").is_err()));
        assert_eq!(
            known("sso.restrict").map(|k| (k.validate)("ON")),
            Some(Ok("true".into()))
        );
        assert_eq!(
            known("sso.break_glass").map(|k| (k.validate)(" a, b ,")),
            Some(Ok("a,b".into()))
        );
    }
}
