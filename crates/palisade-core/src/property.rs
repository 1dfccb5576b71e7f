//! Device and group properties: names, which ones are credentials, and inheritance.
//!
//! Credential properties are encrypted at rest, never returned by the API (they read back as
//! [`MASK`]) and handed only to the collector that monitors the device. A property is a
//! credential when its name matches the documented pattern ([`is_credential`]):
//!
//! - ends in `.pass`, `.password`, `.key`, `.secret`, `.token`, `.privtoken`, `.authtoken`
//!   (case-insensitive), or
//! - is `snmp.community`, or starts with `snmp.auth` or `snmp.priv` (`snmp.authToken`,
//!   `snmp.privToken`, …), or
//! - is one of `ssh.pass`, `ssh.key`, `wmi.pass`, `jdbc.pass`, `http.pass`,
//!   `http.bearer`, `api.key`.
//!
//! A write that sends [`MASK`] as the value keeps the stored credential unchanged.

use std::collections::BTreeMap;

/// What credential values read back as.
pub const MASK: &str = "********";

/// The longest property name.
pub const MAX_NAME: usize = 255;
/// The longest property value (bytes).
pub const MAX_VALUE: usize = 64 * 1024;

/// Why a property is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PropertyError {
    /// Bad name.
    #[error("property name `{0}` is invalid: use 1 to 255 letters, digits, `.`, `_` or `-`")]
    Name(String),
    /// Value too long.
    #[error("the value of property `{0}` is longer than 64 KiB")]
    TooLong(String),
    /// `system.*` and `auto.*` are set by Palisade.
    #[error("property `{0}` is set by Palisade and cannot be written")]
    Reserved(String),
    /// A new credential sent as the mask.
    #[error(
        "property `{0}` has no stored value to keep; send the real value instead of `********`"
    )]
    NothingToKeep(String),
}

/// Whether a property holds a credential (see the module documentation).
pub fn is_credential(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    const SUFFIXES: &[&str] = &[
        ".pass",
        ".password",
        ".key",
        ".secret",
        ".token",
        ".privtoken",
        ".authtoken",
    ];
    const EXACT: &[&str] = &[
        "snmp.community",
        "ssh.pass",
        "ssh.key",
        "wmi.pass",
        "jdbc.pass",
        "http.pass",
        "http.bearer",
        "api.key",
    ];
    SUFFIXES.iter().any(|s| n.ends_with(s))
        || EXACT.contains(&n.as_str())
        || n.starts_with("snmp.auth")
        || n.starts_with("snmp.priv")
}

/// Checks a property name written through the API.
pub fn validate(name: &str, value: &str) -> Result<(), PropertyError> {
    if name.is_empty()
        || name.len() > MAX_NAME
        || !name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    {
        return Err(PropertyError::Name(name.chars().take(64).collect()));
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("system.") || lower.starts_with("auto.") {
        return Err(PropertyError::Reserved(name.into()));
    }
    if value.len() > MAX_VALUE {
        return Err(PropertyError::TooLong(name.into()));
    }
    Ok(())
}

/// Merges property levels from the least specific (the root group) to the most specific
/// (the device itself): a nearer level wins. Names compare case-insensitively; the
/// spelling of the winning level is kept.
pub fn inherit<'a, I, L>(levels: I) -> BTreeMap<String, (String, &'a str)>
where
    I: IntoIterator<Item = L>,
    L: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut out: BTreeMap<String, (String, &'a str)> = BTreeMap::new();
    for level in levels {
        for (name, value) in level {
            out.insert(name.to_ascii_lowercase(), (name.to_string(), value));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn credential_pattern() {
        for c in [
            "snmp.community",
            "snmp.authToken",
            "snmp.privToken",
            "snmp.auth",
            "ssh.pass",
            "SSH.KEY",
            "wmi.pass",
            "mysql.pass",
            "aws.secret",
            "api.key",
            "vault.token",
        ] {
            assert!(is_credential(c), "{c}");
        }
        for p in [
            "snmp.version",
            "snmp.port",
            "ssh.user",
            "system.hostname",
            "location",
            "passenger",
            "keys.count",
        ] {
            assert!(!is_credential(p), "{p}");
        }
    }

    #[test]
    fn names_and_reserved() {
        assert!(validate("location", "x").is_ok());
        assert!(validate("", "x").is_err());
        assert!(validate("a b", "x").is_err());
        assert!(validate("system.hostname", "x").is_err());
        assert!(validate("auto.x", "x").is_err());
        assert!(validate(&"a".repeat(256), "x").is_err());
        assert!(validate("a", &"x".repeat(MAX_VALUE + 1)).is_err());
    }

    #[test]
    fn nearest_level_wins() {
        let root = vec![("snmp.community", "public"), ("location", "eu")];
        let group = vec![("Location", "berlin")];
        let device = vec![("snmp.community", "secret")];
        let m = inherit([root, group, device]);
        assert_eq!(m["snmp.community"].1, "secret");
        assert_eq!(m["location"], ("Location".to_string(), "berlin"));
    }
}
