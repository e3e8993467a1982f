//! The field rules of a launch: job, channel and engine names, image URIs,
//! entry points, metric regexes, object URIs.

use storage::S3Uri;
use uuid::Uuid;

/// The engine name: the job name and the last 12 hex digits of its id
/// (random in a v7 UUID), so it is unique, stable across retries, and
/// legal for SageMaker (≤ 63 characters).
pub fn engine_name(name: &str, id: Uuid) -> String {
    let hex = id.simple().to_string();
    format!("{name}-{}", &hex[hex.len() - 12..])
}

pub(crate) fn job_name(raw: &str) -> Result<String, String> {
    let n = raw.trim();
    if n.len() <= 50 && training::is_legal_job_name(n) {
        Ok(n.to_owned())
    } else {
        Err("Use 1-50 letters, digits and hyphens, starting and ending with a letter or digit.".into())
    }
}

/// ECR image URIs: `<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repo>[:tag|@sha256:…]`.
pub fn image_uri(raw: &str) -> Result<String, String> {
    let bad =
        || "Use an ECR image URI like 123456789012.dkr.ecr.us-east-1.amazonaws.com/my-training:latest.".to_owned();
    let uri = raw.trim();
    let (host, path) = uri.split_once('/').ok_or_else(bad)?;
    let parts: Vec<&str> = host.split('.').collect();
    let host_ok = parts.len() >= 6
        && parts[0].len() == 12
        && parts[0].bytes().all(|b| b.is_ascii_digit())
        && parts[1] == "dkr"
        && parts[2] == "ecr"
        && !parts[3].is_empty()
        && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"));
    let (repo, reference) = match path.split_once('@') {
        Some((repo, digest)) => (repo, Some(digest)),
        None => match path.rsplit_once(':') {
            Some((repo, tag)) => (repo, Some(tag)),
            None => (path, None),
        },
    };
    let repo_ok =
        !repo.is_empty() && repo.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b));
    let reference_ok = reference.is_none_or(|r| {
        !r.is_empty() && r.len() <= 128 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
    });
    if host_ok && repo_ok && reference_ok { Ok(uri.to_owned()) } else { Err(bad()) }
}

pub(crate) fn entry_point(raw: &str) -> Result<String, String> {
    let e = raw.trim().trim_start_matches("./");
    let ok = !e.is_empty()
        && e.len() <= 256
        && storage::check_relative(e).is_ok()
        && (e.ends_with(".py") || e.ends_with(".sh"));
    if ok { Ok(e.to_owned()) } else { Err("Name a .py (or .sh) file inside the source folder, like train.py.".into()) }
}

pub(crate) fn channel_name(raw: &str) -> Result<String, String> {
    let n = raw.trim();
    let mut bytes = n.bytes();
    let ok = n.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(n.to_owned())
    } else {
        Err(format!("`{n}` is not a valid channel name: use a letter or _, then letters, digits or _ (like train)."))
    }
}

/// A compiled metric regex with a capture group for the value.
pub fn metric_regex(raw: &str) -> Result<regex::Regex, String> {
    let re = regex::Regex::new(raw).map_err(|e| format!("The regex does not compile: {e}"))?;
    if re.captures_len() < 2 {
        return Err("Add a capture group for the value, like loss=([0-9.]+).".into());
    }
    Ok(re)
}

/// Parses `s3://bucket/key` of one object.
pub(crate) fn object_uri(raw: &str) -> Result<(String, String), String> {
    let one_file = || "Use an s3://bucket/key URI of one file.".to_owned();
    let raw = raw.trim();
    if raw.ends_with('/') {
        return Err(one_file());
    }
    // the same rules as every location: a valid bucket, no dot segments
    let uri = S3Uri::parse(raw)?;
    match uri.prefix.strip_suffix('/') {
        Some(key) if !key.is_empty() => Ok((uri.bucket, key.to_owned())),
        _ => Err(one_file()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::validate::role_arn;

    #[test]
    fn engine_names_are_legal_and_stable() {
        let id = Uuid::now_v7();
        let long = "a".repeat(50);
        let name = engine_name(&long, id);
        assert_eq!(name.len(), 63);
        assert!(training::is_legal_job_name(&name));
        assert_eq!(name, engine_name(&long, id));
    }

    #[test]
    fn field_checks() {
        assert!(image_uri("123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1.0").is_ok());
        assert!(image_uri("123456789012.dkr.ecr.us-east-1.amazonaws.com/train@sha256:abc").is_ok());
        assert!(image_uri("docker.io/library/python:3").is_err());
        assert!(image_uri("not an image").is_err());
        assert!(metric_regex("loss=([0-9.]+)").is_ok());
        assert!(metric_regex("loss=[0-9.]+").is_err());
        assert!(metric_regex("loss=(").is_err());
        assert!(channel_name("train").is_ok() && channel_name("_x1").is_ok());
        assert!(channel_name("1train").is_err() && channel_name("tr-ain").is_err());
        assert!(entry_point("src/train.py").is_ok());
        assert!(entry_point("../train.py").is_err() && entry_point("/abs.py").is_err());
        assert!(role_arn("arn:aws:iam::123456789012:role/SageMaker").is_ok());
        assert!(role_arn("arn:aws:iam::123:role/x").is_err());
    }
}
