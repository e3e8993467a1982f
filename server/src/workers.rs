//! Background housekeeping: expired sessions and old login attempts are
//! deleted every few minutes until shutdown.

use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower_sessions::session_store::ExpiredDeletion as _;
use tower_sessions_sqlx_store::PostgresStore;

/// Runs until `stop` is cancelled.
pub async fn housekeeping(pool: sqlx::PgPool, stop: CancellationToken) {
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
            }
        }
    }
    tracing::info!("housekeeping stopped");
}
