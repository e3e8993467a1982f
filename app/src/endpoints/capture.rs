//! Data capture for endpoints in local mode, as SageMaker captures (on
//! SageMaker the endpoint does it itself): the gateway keeps a sampled share
//! of requests and answers in memory ([`serving::capture::Captures`]), and
//! the traffic worker writes them in batches, one JSON Lines object per
//! variant and flush, to
//! `endpoints/<team>/<engine>/data-capture/<engine>/<variant>/yyyy/mm/dd/hh/`
//! in the bucket, each line in SageMaker's capture format.

use crate::kernel::error::AppError;
use base64::Engine as _;
use serde_json::json;

/// One captured invocation as a line of SageMaker's capture format.
pub fn record(request: &serving::Request, answer: &serving::Answer) -> String {
    let now = time::OffsetDateTime::now_utc();
    let inference_time = now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    json!({
        "captureData": {
            "endpointInput": data("INPUT", request.content_type.as_deref(), &request.body),
            "endpointOutput": data("OUTPUT", answer.content_type.as_deref(), &answer.body),
        },
        "eventMetadata": { "eventId": uuid::Uuid::new_v4().to_string(), "inferenceTime": inference_time },
        "eventVersion": "0",
    })
    .to_string()
}

/// A body as SageMaker writes it: CSV and JSON as text, anything else in
/// base64.
fn data(mode: &str, content_type: Option<&str>, body: &[u8]) -> serde_json::Value {
    let kind = content_type.unwrap_or("application/octet-stream");
    let essence = kind.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let encoding = match essence.as_str() {
        "text/csv" => Some("CSV"),
        "application/json" | "application/jsonlines" => Some("JSON"),
        _ => None,
    };
    match (encoding, std::str::from_utf8(body)) {
        (Some(encoding), Ok(text)) => {
            json!({ "observedContentType": kind, "mode": mode, "data": text, "encoding": encoding })
        }
        _ => json!({
            "observedContentType": kind,
            "mode": mode,
            "data": base64::engine::general_purpose::STANDARD.encode(body),
            "encoding": "BASE64",
        }),
    }
}

/// Writes what the gateway captured since the last flush; returns how many
/// records. What cannot be written is kept for the next flush.
pub async fn flush(state: &crate::kernel::state::AppState) -> Result<usize, AppError> {
    let taken = state.captures.take();
    let mut written = 0;
    let mut failed = None;
    for (destination, lines) in taken {
        let now = time::OffsetDateTime::now_utc();
        let key = format!(
            "{destination}{:04}/{:02}/{:02}/{:02}/{:02}-{:02}-{:03}-{}.jsonl",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.millisecond(),
            uuid::Uuid::new_v4()
        );
        let mut body = lines.join("\n");
        body.push('\n');
        let put = state
            .storage
            .client
            .put_object()
            .bucket(&state.storage.bucket)
            .key(&key)
            .content_type("application/jsonlines")
            .body(body.into_bytes().into())
            .send()
            .await;
        match put {
            Ok(_) => written += lines.len(),
            Err(e) => {
                failed = Some(format!("{}", storage::aws_sdk_s3::error::DisplayErrorContext(&e)));
                state.captures.put_back(destination, lines);
            }
        }
    }
    match failed {
        Some(e) => Err(AppError::Upstream(format!("writing data capture: {e}"))),
        None => Ok(written),
    }
}
