//! `##property##` templates: URLs and script arguments filled in from a device's
//! properties (`https://##system.hostname##:8443/health`).
//!
//! A token is `##`, a property name (letters, digits, `.`, `_`, `-`, `:`), `##`. Property
//! names are case-insensitive and handed to the lookup in lowercase, as in
//! [`crate::applies_to`]. Values are inserted as they are. A template cannot contain a
//! literal `##`.

/// Longest template, in bytes.
pub const MAX_TEMPLATE_LEN: usize = 2048;

/// Why a template is malformed (a short phrase completing "`template` …").
pub(crate) type TemplateProblem = &'static str;

/// The property names a template reads, lowercase, in order, each once.
pub(crate) fn template_properties(template: &str) -> Result<Vec<String>, TemplateProblem> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("##") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("##") else {
            return Err("has a `##` without its closing `##`");
        };
        let name = &after[..end];
        if name.is_empty() {
            return Err("has an empty `####` token");
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'))
        {
            return Err("has a `##…##` token that is not a property name");
        }
        let lower = name.to_ascii_lowercase();
        if !out.contains(&lower) {
            out.push(lower);
        }
        rest = &after[end + 2..];
    }
    Ok(out)
}

/// Fills in a template from a device's properties, read through `props` (names in
/// lowercase). `None` when the template is malformed or a property it reads is missing or
/// empty: the collector then reports no data rather than contacting a wrong address.
///
/// ```
/// use palisade_core::datasource::expand_template;
/// let props = |name: &str| (name == "system.hostname").then(|| "web-01".to_string());
/// assert_eq!(
///     expand_template("https://##SYSTEM.hostname##/health", &props).as_deref(),
///     Some("https://web-01/health")
/// );
/// assert_eq!(expand_template("http://##http.host##/", &props), None);
/// ```
pub fn expand_template(template: &str, props: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    template_properties(template).ok()?;
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("##") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("##")?;
        let value = props(&after[..end].to_ascii_lowercase())?;
        if value.is_empty() {
            return None;
        }
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_listed_once_in_lowercase() {
        assert_eq!(
            template_properties("http://##System.Hostname##:##http.port##/##system.hostname##")
                .unwrap(),
            vec!["system.hostname", "http.port"]
        );
        assert!(template_properties("plain").unwrap().is_empty());
    }

    #[test]
    fn malformed_templates() {
        assert!(template_properties("http://##system.hostname/").is_err());
        assert!(template_properties("a####b").is_err());
        assert!(template_properties("##a b##").is_err());
        assert!(template_properties("##a/b##").is_err());
    }

    #[test]
    fn expansion() {
        let props = |n: &str| match n {
            "system.hostname" => Some("10.0.0.1".to_string()),
            "empty" => Some(String::new()),
            _ => None,
        };
        assert_eq!(
            expand_template("##system.hostname##:9100", &props).unwrap(),
            "10.0.0.1:9100"
        );
        assert_eq!(expand_template("x##empty##", &props), None);
        assert_eq!(expand_template("x##missing##", &props), None);
        assert_eq!(expand_template("x##bad", &props), None);
        assert_eq!(expand_template("no tokens", &props).unwrap(), "no tokens");
    }
}
