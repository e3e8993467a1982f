//! Background housekeeping: expired sessions and old login attempts are
//! deleted, and browser uploads left unfinished for a day are aborted, every
//! few minutes until shutdown.

use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower_sessions::session_store::ExpiredDeletion as _;
use tower_sessions_sqlx_store::PostgresStore;

/// Runs until `stop` is cancelled.
pub async fn housekeeping(state: app::state::AppState, stop: CancellationToken) {
    let pool = state.pool.clone();
    let store = PostgresStore::new(pool.clone());
    let mut tick = tokio::time::interval(Duration::from_secs(300));
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                if let Err(e) = store.delete_expired().await {
                    tracing::warn!(error = %e, "failed to delete expired sessions");
                }
                let old = sqlx::query("delete from login_attempt where created_at < now() - interval '1 day'")
                    .execute(&pool)
                    .await;
                if let Err(e) = old {
                    tracing::warn!(error = %e, "failed to delete old login attempts");
                }
                match app::upload::ssr::clean_stale(&state, time::Duration::days(1)).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(versions = n, "aborted unfinished uploads older than a day"),
                    Err(e) => tracing::warn!(error = %e, "failed to clean up unfinished uploads"),
                }
            }
        }
    }
    tracing::info!("housekeeping stopped");
}
