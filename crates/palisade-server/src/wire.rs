//! Records turned into LogicMonitor's JSON shapes. Responses always carry the fields the
//! SDK requires (`Admin.username/email/roles`, full roles with `name` and `privileges`).

use palisade_store::{AuditEntry, RoleRecord, TokenRecord, UserRecord};
use serde_json::{json, Value};

/// Fields that `fields=` never drops from users.
pub const ADMIN_REQUIRED: &[&str] = &["username", "email", "roles"];
/// Fields that `fields=` never drops from roles.
pub const ROLE_REQUIRED: &[&str] = &["name", "privileges"];
/// Fields that `fields=` never drops from tokens.
pub const TOKEN_REQUIRED: &[&str] = &["adminId", "accessId", "status"];
/// Fields that `fields=` never drops from audit entries.
pub const AUDIT_REQUIRED: &[&str] = &["username", "happenedOn"];

fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// A role.
pub fn role(r: &RoleRecord, user_count: i64) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "privileges": r.privileges,
        "twoFARequired": r.two_fa_required,
        "acctRequireTwoFA": false,
        "requireEULA": false,
        "associatedUserCount": user_count,
        "roleGroupId": 0,
        "customHelpLabel": "",
        "customHelpURL": "",
        "builtIn": r.builtin,
    })
}

/// A user, with its roles in full and a summary of its tokens (no secrets).
pub fn user(u: &UserRecord, roles: &[RoleRecord], tokens: &[TokenRecord], two_fa: bool) -> Value {
    let held: Vec<Value> = roles
        .iter()
        .filter(|r| u.role_ids.contains(&r.id))
        .map(|r| role(r, 0))
        .collect();
    let toks: Vec<Value> = tokens
        .iter()
        .filter(|t| t.user_id == u.id)
        .map(|t| token(t, &u.username, &[]))
        .collect();
    json!({
        "id": u.id,
        "username": u.username,
        "email": u.email,
        "firstName": u.first_name,
        "lastName": u.last_name,
        "phone": u.phone,
        "note": u.note,
        "status": u.status,
        "apionly": u.apionly,
        "userType": if u.apionly { "apiOnly" } else { "normal" },
        "roles": held,
        "twoFAEnabled": two_fa,
        "authSource": u.auth_source,
        "forcePasswordChange": u.force_password_change,
        "timezone": u.timezone,
        "smsEmail": u.sms_email,
        "smsEmailFormat": u.sms_email_format,
        "contactMethod": u.contact_method,
        "createdBy": u.created_by,
        "createdOn": secs(u.created_on),
        "lastLoginOn": u.last_login_on.map(secs).unwrap_or(0),
        "builtIn": u.builtin.is_some(),
        "apiTokens": toks,
    })
}

/// A token, never with its secret.
pub fn token(t: &TokenRecord, owner: &str, owner_roles: &[String]) -> Value {
    json!({
        "id": t.id,
        "adminId": t.user_id,
        "adminName": owner,
        "accessId": t.access_id,
        "accessKey": "",
        "type": t.kind.as_str(),
        // The one dashboard of a widget token (0 for LMv1 and Bearer tokens).
        "dashboardId": t.dashboard_id.unwrap_or(0),
        "status": t.status,
        "note": t.note,
        "createdOn": secs(t.created_on),
        "createdBy": t.created_by,
        "expiresOn": t.expires_on.map(secs).unwrap_or(0),
        "lastUsedOn": t.last_used_on.map(secs).unwrap_or(0),
        "lastAuthIp": t.last_auth_ip.clone().unwrap_or_default(),
        "recentIps": t.recent_ips,
        "roles": owner_roles,
    })
}

/// An audit entry.
pub fn audit(e: &AuditEntry) -> Value {
    json!({
        "id": e.seq.to_string(),
        "username": e.event.username,
        "ip": e.event.ip,
        "description": e.event.description,
        "happenedOn": secs(e.event.happened_on_ms),
        "happenedOnLocal": utc_text(e.event.happened_on_ms),
        "happenedOnMs": e.event.happened_on_ms,
        "action": e.event.action,
        "method": e.event.method,
        "path": e.event.path,
        "status": e.event.status,
        "userAgent": e.event.user_agent,
        "tokenId": e.event.token_id,
        "userId": e.event.user_id,
        "hash": e.hash,
    })
}

/// `YYYY-MM-DD HH:MM:SS UTC` for epoch milliseconds.
pub fn utc_text(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_text() {
        assert_eq!(super::utc_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            super::utc_text(1_700_000_000_000),
            "2023-11-14 22:13:20 UTC"
        );
        assert_eq!(super::utc_text(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }
}
