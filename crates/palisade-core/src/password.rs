//! The password policy: 12 to 128 characters, not the username, not a well-known password.
//!
//! Following NIST SP 800-63B and OWASP ASVS 5 (see `identity-research.md` §D), length and a
//! blocklist count; composition rules do not.

/// Shortest accepted password, in characters.
pub const MIN_CHARS: usize = 12;
/// Longest accepted password, in characters.
pub const MAX_CHARS: usize = 128;

const BLOCKLIST: &[&str] = &[
    "123456789012",
    "1234567890123",
    "administrator",
    "changemechangeme",
    "letmeinletmein",
    "passwordpassword",
    "password1234",
    "password12345",
    "password123456",
    "qwertyuiopasdf",
    "qwertyuiop123",
    "iloveyou1234",
    "welcome12345",
    "logicmonitor123",
    "palisade1234",
    "aaaaaaaaaaaa",
];

/// Why a password is refused. The message never contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Too short.
    #[error("password must be at least {MIN_CHARS} characters long")]
    TooShort,
    /// Too long.
    #[error("password must be at most {MAX_CHARS} characters long")]
    TooLong,
    /// Equal to or containing the username.
    #[error("password must not contain the username")]
    ContainsUsername,
    /// On the list of common passwords, or one character repeated.
    #[error("password is too common; choose a longer passphrase")]
    Common,
}

/// Checks a password for a user.
pub fn check(password: &str, username: &str) -> Result<(), PasswordError> {
    let n = password.chars().count();
    if n < MIN_CHARS {
        return Err(PasswordError::TooShort);
    }
    if n > MAX_CHARS {
        return Err(PasswordError::TooLong);
    }
    let lower = password.to_lowercase();
    if !username.is_empty() && lower.contains(&username.to_lowercase()) {
        return Err(PasswordError::ContainsUsername);
    }
    let mut chars = lower.chars();
    let first = chars.next();
    if BLOCKLIST.contains(&lower.as_str()) || chars.all(|c| Some(c) == first) {
        return Err(PasswordError::Common);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert_eq!(check("short", "bob"), Err(PasswordError::TooShort));
        assert_eq!(check(&"x".repeat(129), "bob"), Err(PasswordError::TooLong));
        assert_eq!(
            check("my-bob-is-long-enough", "bob"),
            Err(PasswordError::ContainsUsername)
        );
        assert_eq!(check("Password1234", "carol"), Err(PasswordError::Common));
        assert_eq!(check("zzzzzzzzzzzzzz", "carol"), Err(PasswordError::Common));
        assert_eq!(check("correct horse battery", "carol"), Ok(()));
        assert!(!PasswordError::TooShort.to_string().contains("short\""));
    }
}
