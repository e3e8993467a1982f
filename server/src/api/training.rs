//! Training jobs over REST: launch, list, inspect, stop, logs (paged, as a
//! text download, or live as server-sent events) and metric series; plus
//! the source-folder upload that script mode launches from.

use super::{ApiJson, ApiPath, ApiQuery};
use app::kernel::context::Ctx;
use app::kernel::error::AppError;
use app::kernel::error::ssr::Problem;
use app::kernel::page::Page;
use app::kernel::state::AppState;
use app::training::types::{
    JobQuery, LaunchRequest, LogLine, LogQuery, MetricSeries, MonthCost, SourceArchive, TrainingJob,
    TrainingJobSummary, TrainingStatus,
};
use axum::Json;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use std::time::Duration;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, launch))
        .routes(routes!(month_cost))
        .routes(routes!(upload_source))
        .routes(routes!(get_one))
        .routes(routes!(stop))
        .routes(routes!(logs))
        .routes(routes!(metrics))
}

/// The team's training jobs, newest first (`status=running` for all not finished).
#[utoipa::path(get, path = "/teams/{team}/training-jobs", tag = "training", params(("team" = String, Path), JobQuery),
    responses((status = 200, body = Page<TrainingJobSummary>), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn list(
    ctx: Ctx,
    ApiPath(team): ApiPath<String>,
    ApiQuery(q): ApiQuery<JobQuery>,
) -> Result<Json<Page<TrainingJobSummary>>, AppError> {
    Ok(Json(app::training::jobs::list(&ctx, &team, q).await?))
}

/// Launches a training job (members and up). The job is recorded as
/// `requested` before any engine call and then created exactly once.
#[utoipa::path(post, path = "/teams/{team}/training-jobs", tag = "training", params(("team" = String, Path)),
    request_body = LaunchRequest,
    responses((status = 201, body = TrainingJob), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn launch(
    ctx: Ctx,
    ApiPath(team): ApiPath<String>,
    ApiJson(input): ApiJson<LaunchRequest>,
) -> Result<(StatusCode, Json<TrainingJob>), AppError> {
    Ok((StatusCode::CREATED, Json(app::training::launch::launch(&ctx, &team, input).await?)))
}

/// The team's training spend this month (UTC): finished jobs' actual cost
/// plus what running jobs have accrued.
#[utoipa::path(get, path = "/teams/{team}/training-cost", tag = "training", params(("team" = String, Path)),
    responses((status = 200, body = MonthCost), (status = 404, body = Problem)))]
async fn month_cost(ctx: Ctx, ApiPath(team): ApiPath<String>) -> Result<Json<MonthCost>, AppError> {
    Ok(Json(app::training::jobs::month_cost(&ctx, &team).await?))
}

/// Stores a script-mode source folder (members and up): `multipart/form-data`
/// with one part per file, each part's file name its path in the folder
/// (e.g. `src/train.py`). Answers the `source_uri` to launch with; equal
/// folders get the same URI.
#[utoipa::path(post, path = "/teams/{team}/training-sources", tag = "training", params(("team" = String, Path)),
    request_body(content_type = "multipart/form-data", description = "One part per file; the part's file name is the path."),
    responses((status = 201, body = SourceArchive), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 413, body = Problem), (status = 422, body = Problem)))]
async fn upload_source(
    ctx: Ctx,
    ApiPath(team): ApiPath<String>,
    form: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<(StatusCode, Json<SourceArchive>), AppError> {
    let mut form = form.map_err(|_| {
        AppError::UnsupportedMediaType("Send the files as multipart/form-data, one part per file.".into())
    })?;
    let bad = |e: axum::extract::multipart::MultipartError| AppError::BadRequest(format!("Unreadable upload: {e}"));
    let mut files = Vec::new();
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let Some(path) = field.file_name().map(str::to_owned) else { continue };
        let body = field.bytes().await.map_err(bad)?;
        files.push((path, body.to_vec()));
    }
    Ok((StatusCode::CREATED, Json(app::training::launch::store_source(&ctx, &team, files).await?)))
}

/// One job: status, timeline, channels, cost, artifact and final metrics.
#[utoipa::path(get, path = "/training-jobs/{id}", tag = "training", params(("id" = Uuid, Path)),
    responses((status = 200, body = TrainingJob), (status = 404, body = Problem)))]
async fn get_one(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<TrainingJob>, AppError> {
    Ok(Json(app::training::jobs::get(&ctx, id).await?))
}

/// Stops a job (members and up): a job not launched yet never will be; a
/// running one is asked to stop (SIGTERM, then SIGKILL, on the local runner).
#[utoipa::path(post, path = "/training-jobs/{id}/stop", tag = "training", params(("id" = Uuid, Path)),
    responses((status = 200, body = TrainingJob), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem)))]
async fn stop(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<TrainingJob>, AppError> {
    Ok(Json(app::training::jobs::stop(&ctx, id).await?))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct LogParams {
    /// Only lines containing this text (case-insensitive).
    q: Option<String>,
    cursor: Option<String>,
    /// 1-5000, default 500.
    #[param(minimum = 1, maximum = 5000)]
    limit: Option<i64>,
    /// `text` downloads every line as plain text.
    format: Option<String>,
    /// For the event stream: start after this line number (or send `Last-Event-ID`).
    after: Option<i64>,
}

/// The job's log lines. Three forms: JSON pages (`cursor`, `limit` up to
/// 5000, `q` to search); `format=text` for a download of the whole log;
/// or, with `Accept: text/event-stream`, a live stream of server-sent
/// events — one `message` per line (`id` = line number, `data` = the line
/// as JSON), `status` events when the job's status changes, and `end` once
/// the job has finished and every line was sent.
#[utoipa::path(get, path = "/training-jobs/{id}/logs", tag = "training", params(("id" = Uuid, Path), LogParams),
    responses((status = 200, body = Page<LogLine>, description = "JSON page, text/plain download, or text/event-stream"),
              (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn logs(
    ctx: Ctx,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<LogParams>,
) -> Result<Response, AppError> {
    let wants_stream =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/event-stream"));
    if wants_stream {
        let job = app::training::jobs::authorize_read(&ctx, id).await?;
        let slot = ctx.state.stream_slot(ctx.actor()?.user_id, MAX_STREAMS_PER_USER)?;
        let last_event = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let after = last_event.or(params.after).unwrap_or(0);
        return Ok(stream(ctx, slot, id, after, job.status).into_response());
    }
    if params.format.as_deref() == Some("text") {
        let job = app::training::jobs::authorize_read(&ctx, id).await?;
        let disposition = format!("attachment; filename=\"{}.log\"", job.engine_name);
        return Ok((
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            axum::body::Body::from_stream(text_log(ctx.state.pool.clone(), id)),
        )
            .into_response());
    }
    Ok(Json(
        app::training::logs::logs(&ctx, id, LogQuery { q: params.q, cursor: params.cursor, limit: params.limit })
            .await?,
    )
    .into_response())
}

/// Live log streams one user may have open at once (tabs, scripts).
const MAX_STREAMS_PER_USER: usize = 8;
/// How often an open stream checks that its caller may still read the job.
const RECHECK: Duration = Duration::from_secs(30);

/// The whole log as text, read and sent a page at a time (never held whole).
fn text_log(
    pool: sqlx::PgPool,
    id: Uuid,
) -> impl futures_util::Stream<Item = Result<axum::body::Bytes, std::io::Error>> {
    futures_util::stream::unfold(Some(0_i64), move |after| {
        let pool = pool.clone();
        async move {
            let after = after?;
            match app::training::logs::lines_after(&pool, id, after, None, 5000).await {
                Ok(lines) if lines.is_empty() => None,
                Ok(lines) => {
                    let mut out = String::new();
                    for l in &lines {
                        let at = l.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
                        out.push_str(&format!("{at} [{}] {}\n", l.stream, l.text));
                    }
                    Some((Ok(axum::body::Bytes::from(out)), lines.last().map(|l| l.seq)))
                }
                Err(e) => {
                    tracing::warn!(job = %id, error = ?e, "log download failed midway");
                    Some((Err(std::io::Error::other("the log could not be read")), None))
                }
            }
        }
    })
}

/// Server-sent events of new log lines, polling the stored log. The caller's
/// access is checked again every [`RECHECK`]: a member removed from the team
/// stops receiving lines.
fn stream(
    ctx: Ctx,
    slot: app::kernel::state::StreamSlot,
    id: Uuid,
    after: i64,
    status: TrainingStatus,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    struct Cursor {
        ctx: Ctx,
        _slot: app::kernel::state::StreamSlot,
        checked: tokio::time::Instant,
        after: i64,
        status: TrainingStatus,
        announced: bool,
        ended: bool,
    }
    let checked = tokio::time::Instant::now();
    let start = Cursor { ctx, _slot: slot, checked, after, status, announced: false, ended: false };
    let events = futures_util::stream::unfold(start, move |mut c| async move {
        if c.ended {
            return None;
        }
        if c.checked.elapsed() >= RECHECK {
            if app::training::jobs::authorize_read(&c.ctx, id).await.is_err() {
                return None;
            }
            c.checked = tokio::time::Instant::now();
        }
        if !c.announced {
            c.announced = true;
            let event = Event::default().event("status").data(c.status.as_str());
            return Some((vec![Ok(event)], c));
        }
        loop {
            match app::training::logs::lines_after(&c.ctx.state.pool, id, c.after, None, 500).await {
                Ok(lines) if !lines.is_empty() => {
                    c.after = lines.last().map_or(c.after, |l| l.seq);
                    let events = lines
                        .iter()
                        .map(|l| {
                            Ok(Event::default()
                                .id(l.seq.to_string())
                                .data(serde_json::to_string(l).unwrap_or_default()))
                        })
                        .collect();
                    return Some((events, c));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(job = %id, error = %e, "log stream query failed");
                    return None;
                }
            }
            match app::training::jobs::progress(&c.ctx.state.pool, id).await {
                Ok((status, logs_done)) => {
                    if status != c.status {
                        c.status = status;
                        return Some((vec![Ok(Event::default().event("status").data(status.as_str()))], c));
                    }
                    if status.is_final() && logs_done {
                        c.ended = true;
                        return Some((vec![Ok(Event::default().event("end").data(status.as_str()))], c));
                    }
                }
                Err(_) => return None,
            }
            if c.checked.elapsed() >= RECHECK {
                return Some((Vec::new(), c));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let flat = futures_util::StreamExt::flat_map(events, futures_util::stream::iter);
    Sse::new(flat).keep_alive(KeepAlive::default())
}

/// Metric series found in the job's logs by its metric definitions.
#[utoipa::path(get, path = "/training-jobs/{id}/metrics", tag = "training", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<MetricSeries>), (status = 404, body = Problem)))]
async fn metrics(ctx: Ctx, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Vec<MetricSeries>>, AppError> {
    Ok(Json(app::training::jobs::metrics(&ctx, id).await?))
}
