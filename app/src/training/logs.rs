//! A job's log lines: pages for the API, the tail the job page renders, and
//! the lines after a point for the live stream.

use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::page::Page;
use crate::kernel::roles::Action;
use crate::training::jobs::load;
use crate::training::types::{LogLine, LogQuery};
use uuid::Uuid;

pub async fn logs(ctx: &Ctx, id: Uuid, q: LogQuery) -> Result<Page<LogLine>, AppError> {
    load(ctx, id, Action::ReadTeam).await?;
    let limit = match q.limit {
        None => 500,
        Some(n) if (1..=5000).contains(&n) => n,
        Some(_) => return Err(AppError::query("limit", "Use a limit from 1 to 5000.")),
    };
    let after: i64 = crate::kernel::page::ssr::decode(q.cursor.as_deref())?.unwrap_or(0);
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let items = lines_after(ctx.pool(), id, after, search.as_deref(), limit + 1).await?;
    Ok(crate::kernel::page::ssr::build(items, limit, |l: &LogLine| l.seq))
}

/// The last `limit` stored log lines, oldest first.
pub async fn log_tail(ctx: &Ctx, id: Uuid, limit: i64) -> Result<Vec<LogLine>, AppError> {
    load(ctx, id, Action::ReadTeam).await?;
    let mut lines = sqlx::query_as!(
        LogLine,
        r#"select seq, at, stream, line as text from training_log
           where job_id = $1 order by seq desc limit $2"#,
        id,
        limit
    )
    .fetch_all(ctx.pool())
    .await?;
    lines.reverse();
    Ok(lines)
}

/// Stored log lines after `seq`, optionally only those containing `search`.
pub async fn lines_after(
    pool: &sqlx::PgPool,
    id: Uuid,
    seq: i64,
    search: Option<&str>,
    limit: i64,
) -> Result<Vec<LogLine>, AppError> {
    Ok(sqlx::query_as!(
        LogLine,
        r#"select seq, at, stream, line as text from training_log
           where job_id = $1 and seq > $2 and ($3::text is null or strpos(lower(line), lower($3)) > 0)
           order by seq limit $4"#,
        id,
        seq,
        search,
        limit
    )
    .fetch_all(pool)
    .await?)
}
