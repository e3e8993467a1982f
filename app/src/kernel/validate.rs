//! Input newtypes: each `parse` is the one place a rule lives, and the error
//! it returns names the field so forms and problem+json can point at it.

use crate::kernel::error::{AppError, FieldError};

/// Collects field errors so a form reports every bad field at once.
#[derive(Default)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the value if it parsed, records the message otherwise.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(message) => {
                self.0.push(FieldError::new(field, message));
                None
            }
        }
    }

    /// Records a message for `field`.
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// Whether nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was recorded.
    pub fn finish(self) -> Result<(), AppError> {
        if self.0.is_empty() { Ok(()) } else { Err(AppError::Validation(self.0)) }
    }
}

/// A syntactically valid email address, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err("Enter an email address.".into());
        }
        if email.chars().count() > 254 {
            return Err("An email address is at most 254 characters.".into());
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err("Enter an email address like name@example.com.".into());
        };
        let domain_ok = !domain.is_empty()
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain.contains('.')
            && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        let local_ok = !local.is_empty()
            && local.chars().count() <= 64
            && !local.chars().any(|c| c.is_whitespace() || c == '@' || c.is_control());
        if !domain_ok || !local_ok {
            return Err("Enter an email address like name@example.com.".into());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that meets the length policy. Never printed.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    pub const MIN_CHARS: usize = 12;
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(format!("Use at least {} characters.", Self::MIN_CHARS));
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(format!("Use at most {} characters.", Self::MAX_CHARS));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A team slug: `[a-z0-9-]{2,40}`, used in URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let slug = raw.trim();
        let ok_chars = slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !(2..=40).contains(&slug.len()) || !ok_chars {
            return Err("Use 2 to 40 characters: lowercase letters, digits and hyphens.".into());
        }
        // a team is addressed by its slug or its id: a slug cannot be an id
        if slug.len() == 36 && uuid::Uuid::parse_str(slug).is_ok() {
            return Err("Choose a slug that does not look like a team id.".into());
        }
        Ok(Self(slug.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A resource name used in URLs and S3 keys (datasets, later models and jobs):
/// 1 to 100 characters of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn resource_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    let ok = (1..=100).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err("Use 1 to 100 characters: a-z, 0-9, '.', '_' and '-', starting with a letter or digit.".into())
    }
}

/// Tags: trimmed, lower-cased, de-duplicated; at most 20 of at most 40 characters each.
pub fn tags(raw: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for tag in raw.iter().map(|t| t.trim().to_lowercase()).filter(|t| !t.is_empty()) {
        if tag.chars().count() > 40 || tag.chars().any(|c| c.is_control() || c == ',') {
            return Err(format!("Tag {tag:?} is not allowed: at most 40 characters, no commas."));
        }
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    if out.len() > 20 {
        return Err("Use at most 20 tags.".into());
    }
    Ok(out)
}

/// A human-readable name (team display name, user name): trimmed, 1..=max characters.
pub fn name(raw: &str, max: usize) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("Enter a name.".into());
    }
    if name.chars().count() > max {
        return Err(format!("Use at most {max} characters."));
    }
    if name.chars().any(char::is_control) {
        return Err("Control characters are not allowed.".into());
    }
    Ok(name.to_owned())
}

/// A percentage as a form gives it (`5`, `5 %`, `2.5`), as a fraction.
pub fn percent(raw: &str) -> Result<f64, String> {
    raw.trim()
        .trim_end_matches('%')
        .trim()
        .parse::<f64>()
        .map(|p| p / 100.0)
        .map_err(|_| "Give a percentage such as 5.".to_owned())
}

/// A whole number as a form gives it.
pub fn whole(raw: &str) -> Result<i32, String> {
    raw.trim().parse::<i32>().map_err(|_| "Give a whole number.".to_owned())
}

/// Parses a role name as the UI and API spell it.
pub fn role(raw: &str) -> Result<crate::kernel::roles::Role, String> {
    raw.parse::<crate::kernel::roles::Role>()
}

/// An IAM role ARN (also the team setting's check).
pub fn role_arn(raw: &str) -> Result<String, String> {
    let arn = raw.trim();
    let ok = arn.starts_with("arn:aws")
        && arn.split(':').nth(2) == Some("iam")
        && arn.split(':').nth(4).is_some_and(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
        && arn.split(':').nth(5).is_some_and(|r| r.starts_with("role/") && r.len() > 5);
    if ok {
        Ok(arn.to_owned())
    } else {
        Err("Use an IAM role ARN like arn:aws:iam::123456789012:role/SageMakerTraining.".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised_and_checked() {
        assert_eq!(Email::parse(" Ada@Example.COM ").map(|e| e.0), Ok("ada@example.com".to_owned()));
        for bad in ["", "ada", "ada@", "@example.com", "ada@example", "ada@exa mple.com", "a b@example.com", "ada@.com"]
        {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn password_length_policy() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("elevenchars").is_err());
        assert!(Password::parse("twelve chars").is_ok());
        // 12 characters of 2 bytes each count as 12 characters
        assert!(Password::parse(&"é".repeat(12)).is_ok());
        assert!(Password::parse(&"x".repeat(1024)).is_ok());
        assert!(Password::parse(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn password_debug_hides_secret() {
        let p = Password::parse("correct horse battery").expect("valid");
        assert!(!format!("{p:?}").contains("horse"));
    }

    #[test]
    fn slug_rules() {
        assert!(Slug::parse("ml-platform").is_ok());
        assert!(Slug::parse("a1").is_ok());
        assert!(Slug::parse(&"a".repeat(40)).is_ok());
        // a slug shaped like a team id would shadow that team's id in URLs
        let id_like = "01a23ad3-2840-7418-bd03-89a7bf99036e";
        for bad in ["a", "ML", "ml_platform", "ml platform", "ünï", &"a".repeat(41), id_like] {
            assert!(Slug::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("  Vision  ", 10), Ok("Vision".to_owned()));
        assert!(name("   ", 10).is_err());
        assert!(name("abcdefghijk", 10).is_err());
        assert!(name("tab\tname", 10).is_err());
    }

    #[test]
    fn resource_names_and_tags() {
        assert_eq!(resource_name(" churn-2024.v2 "), Ok("churn-2024.v2".into()));
        for bad in ["", "-x", "Churn", "a b", "a/b", &"a".repeat(101)] {
            assert!(resource_name(bad).is_err(), "{bad:?} should be rejected");
        }
        let t = tags(&["CV".into(), " cv ".into(), "".into(), "images".into()]).expect("valid");
        assert_eq!(t, ["cv", "images"]);
        assert!(tags(&["a,b".into()]).is_err());
        assert!(tags(&(0..21).map(|i| format!("t{i}")).collect::<Vec<_>>()).is_err());
    }

    #[test]
    fn errors_collects_every_field() {
        let mut errors = Errors::new();
        assert!(errors.check("email", Email::parse("nope")).is_none());
        assert!(errors.check("password", Password::parse("short")).is_none());
        match errors.finish() {
            Err(AppError::Validation(fields)) => {
                let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
                assert_eq!(names, ["email", "password"]);
            }
            other => panic!("expected validation error, got {other:?}"),
        }
    }
}
