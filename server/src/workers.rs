//! Every background loop of a Capstan process: housekeeping (expired
//! sessions and old login attempts deleted, browser uploads left unfinished
//! for a day aborted), dataset scans left by a stopped process, training,
//! and audit anchors. Several processes may share one database: housekeeping
//! and anchoring run in one of them at a time (an advisory lock), scans and
//! drift checks hold leases (see `app::datasets::versions`), and so do
//! training jobs (see `app::training::engine`).

use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower_sessions::session_store::ExpiredDeletion as _;
use tower_sessions_sqlx_store::PostgresStore;

/// Runs until `stop` is cancelled.
pub async fn housekeeping(state: app::kernel::state::AppState, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(300));
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                if let Err(e) = housekeep_once(&state).await {
                    tracing::warn!(error = %e, "housekeeping could not take its lock");
                }
            }
        }
    }
    tracing::info!("housekeeping stopped");
}

/// Advisory lock keys of the loops that run once per deployment.
pub const HOUSEKEEPING_LOCK: i64 = 0x6361_7073_0001;
const ANCHORING_LOCK: i64 = 0x6361_7073_0002;

/// Runs `work` if no other process on this database is running the same
/// loop (`key`) right now; `Ok(false)` when one is. The lock is held for the
/// transaction, so a process that dies lets go of it at once.
async fn once_per_deployment<F: std::future::Future<Output = ()>>(
    pool: &sqlx::PgPool,
    key: i64,
    work: F,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let locked: bool = sqlx::query_scalar("select pg_try_advisory_xact_lock($1)").bind(key).fetch_one(&mut *tx).await?;
    if locked {
        work.await;
    }
    tx.commit().await?;
    Ok(locked)
}

/// One round of housekeeping, unless another process is doing it; true when
/// this process did it.
pub async fn housekeep_once(state: &app::kernel::state::AppState) -> Result<bool, sqlx::Error> {
    let pool = state.pool.clone();
    once_per_deployment(&state.pool, HOUSEKEEPING_LOCK, async {
        if let Err(e) = PostgresStore::new(pool.clone()).delete_expired().await {
            tracing::warn!(error = %e, "failed to delete expired sessions");
        }
        let old =
            sqlx::query("delete from login_attempt where created_at < now() - interval '1 day'").execute(&pool).await;
        if let Err(e) = old {
            tracing::warn!(error = %e, "failed to delete old login attempts");
        }
        match app::endpoints::outcomes::prune(&pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(outcomes = n, "deleted outcomes past their keeping time"),
            Err(e) => tracing::warn!(error = %e, "failed to delete old outcomes"),
        }
        match app::datasets::upload::clean_stale(state, time::Duration::days(1)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(versions = n, "aborted unfinished uploads older than a day"),
            Err(e) => tracing::warn!(error = %e, "failed to clean up unfinished uploads"),
        }
    })
    .await
}

/// Takes over dataset scans and drift checks that no live process holds
/// (their process stopped or died: its leases ran out), every `every`, until
/// `stop` is cancelled. Several Capstan processes on one database each run
/// this; a lease makes sure each scan runs in one of them.
pub async fn scans(state: app::kernel::state::AppState, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                app::datasets::versions::resume_scans(state.clone()).await;
            }
        }
    }
}

/// Runs the training worker until `stop` is cancelled: launches requested
/// jobs, reconciles in-flight ones and reads their logs every `every`
/// (sooner when woken by a launch or stop), backing off up to a minute
/// while the engine throttles.
pub async fn training(state: app::kernel::state::AppState, every: Duration, stop: CancellationToken) {
    use app::training::engine::{
        LEASE_SECS, StepError, follow_logs, launch_due, reconcile, release_leases, renew_leases,
    };
    // the leases of this process's jobs stay fresh however long a cycle or a back-off takes
    let renewer = tokio::spawn({
        let state = state.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(LEASE_SECS / 3.0));
            loop {
                tick.tick().await;
                if let Err(e) = renew_leases(&state).await {
                    tracing::warn!(error = %e, "failed to renew training job leases");
                }
            }
        }
    });
    let mut delay = every;
    loop {
        let mut throttled = false;
        if let Err(e) = launch_due(&state).await {
            throttled |= matches!(e, StepError::Throttled(_));
            tracing::warn!(error = %e, "launching training jobs failed");
        }
        match reconcile(&state).await {
            Ok(stats) if stats.updated > 0 => tracing::debug!(?stats, "reconciled training jobs"),
            Ok(_) => {}
            Err(e) => {
                throttled |= matches!(e, StepError::Throttled(_));
                tracing::warn!(error = %e, "reconciling training jobs failed");
            }
        }
        // the demo's completed job becomes version 1 of model `churn`, named `champion`, protected,
        // and is deployed to the demo's endpoint `churn`; the demo's policy covers moving `champion`
        match app::approvals::demo::step(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "registered the demo's training job in the model registry"),
            Err(e) => tracing::warn!(error = %e, "registering the demo's training job failed"),
        }
        // AWS mode: registered versions and status changes reach SageMaker's model registry
        match app::registry::packages::sync_due(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(versions = n, "synced model versions to SageMaker"),
            Err(e) => {
                throttled |= matches!(e, StepError::Throttled(_));
                tracing::warn!(error = %e, "syncing model versions to SageMaker failed");
            }
        }
        // approved change requests applied exactly once; open ones past their time expire
        match app::approvals::apply::expire_due(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(requests = n, "expired change requests"),
            Err(e) => tracing::warn!(error = %e, "expiring change requests failed"),
        }
        match app::approvals::apply::apply_due(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(requests = n, "applied change requests"),
            Err(e) => tracing::warn!(error = %e, "applying change requests failed"),
        }
        if let Err(e) = follow_logs(&state).await {
            throttled |= matches!(e, StepError::Throttled(_));
            tracing::warn!(error = %e, "reading training logs failed");
        }
        delay = if throttled { (delay * 2).min(Duration::from_secs(60)) } else { every };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = state.training_wake.notified() => {}
            _ = tokio::time::sleep(delay) => {}
        }
    }
    renewer.abort();
    // another process takes this one's jobs over at once (its local jobs stop with it)
    match release_leases(&state).await {
        Ok(n) if n > 0 => tracing::info!(jobs = n, "released training job leases"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "failed to release training job leases"),
    }
    tracing::info!("training worker stopped");
}

/// Signs the audit chains' heads every `every` and keeps the anchor outside
/// the database, until `stop` is cancelled (one last anchor on the way out).
pub async fn anchoring(
    state: app::kernel::state::AppState,
    key: Vec<u8>,
    store: crate::anchors::AnchorStore,
    every: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        let last = tokio::select! {
            () = stop.cancelled() => true,
            _ = tick.tick() => false,
        };
        // one anchor per period for the deployment, whichever process writes it
        let anchored = once_per_deployment(&state.pool, ANCHORING_LOCK, async {
            match app::audit::domain::take_anchor(&state.pool, &key).await {
                Ok(anchor) => match store.save(&anchor).await {
                    Ok(place) => tracing::info!(%place, chains = anchor.heads.len(), "audit anchor written"),
                    Err(e) => tracing::warn!(error = ?e, "failed to store the audit anchor"),
                },
                Err(e) => tracing::warn!(error = ?e, "failed to take an audit anchor"),
            }
        })
        .await;
        if let Err(e) = anchored {
            tracing::warn!(error = %e, "audit anchoring could not take its lock");
        }
        if last {
            break;
        }
    }
}

/// Sends webhook deliveries every `every` (sooner when woken), until `stop`
/// is cancelled; several processes share them by lease.
pub async fn webhooks(state: app::kernel::state::AppState, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                match app::webhooks::deliver::deliver_due(&state).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(deliveries = n, "webhooks delivered"),
                    Err(e) => tracing::warn!(error = %e, "delivering webhooks failed"),
                }
            }
        }
    }
}

/// The advisory lock of the process that runs local endpoints' processes.
const SERVING_LOCK: i64 = 0x6361_7073_0003;

/// Runs endpoints: one process of the deployment (the holder of a
/// session advisory lock, held on a connection of its own) starts every
/// endpoint that should run, deploys each new generation of an endpoint's
/// variants, removes deleted endpoints, and writes what its processes do
/// (every `every`, sooner when woken). When that process dies its lock goes
/// with its connection, and the next process to poll takes over and starts
/// the endpoints again.
pub async fn serving(state: app::kernel::state::AppState, every: Duration, stop: CancellationToken) {
    use app::endpoints::deploy;
    let Some(backend) = state.serving.clone() else { return };
    let mut holder: Option<sqlx::PgConnection> = None;
    let mut saved = std::collections::HashMap::new();
    // the last read of SageMaker's CloudWatch metrics (AWS mode), once a minute
    let mut pulled: Option<std::time::Instant> = None;
    loop {
        if holder.is_none() {
            match take_serving_lock(&state.pool).await {
                Ok(Some(conn)) => {
                    holder = Some(conn);
                    saved.clear();
                    tracing::info!("this process runs the endpoints");
                    match deploy::running(&state.pool).await {
                        Ok(running) => {
                            for deploy::Running { spec, .. } in running {
                                if let Err(e) = backend.deploy(&spec).await {
                                    tracing::warn!(endpoint = %spec.name, error = %e, "could not start an endpoint");
                                }
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "could not read the endpoints to start"),
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not ask for the serving lock"),
            }
        }
        if let Some(conn) = holder.as_mut() {
            if sqlx::query("select 1").execute(&mut *conn).await.is_err() {
                // the lock went with the connection: stop serving until it is ours again
                tracing::warn!("lost the serving lock's connection; stopping this process's endpoints");
                for name in backend.running() {
                    backend.stop(&name);
                }
                holder = None;
                continue;
            }
            serving_round(&state, backend.as_ref(), &mut saved).await;
            if pulled.is_none_or(|at| at.elapsed() >= CLOUDWATCH_EVERY) {
                pulled = Some(std::time::Instant::now());
                if let Err(e) = app::endpoints::metrics::pull_cloudwatch(&state).await {
                    tracing::warn!(error = %e, "could not add CloudWatch's figures to the endpoint metrics");
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = state.serving_wake.notified() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
    for name in backend.running() {
        backend.stop(&name);
    }
    tracing::info!("serving worker stopped");
}

/// How often the serving process reads the variants' CloudWatch metrics
/// (AWS mode; a no-op in local mode, where the gateway sees every request).
const CLOUDWATCH_EVERY: Duration = Duration::from_secs(60);

async fn take_serving_lock(pool: &sqlx::PgPool) -> Result<Option<sqlx::PgConnection>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let locked: bool =
        sqlx::query_scalar("select pg_try_advisory_lock($1)").bind(SERVING_LOCK).fetch_one(&mut *conn).await?;
    // a connection of its own, outside the pool: the lock lives as long as it does
    Ok(if locked { Some(conn.detach()) } else { None })
}

/// One pass of the serving process: new generations deployed, deleted
/// endpoints removed, processes' state written and endpoints' status settled.
///
/// `saved` holds the processes last written per endpoint, so an unchanged
/// endpoint costs no write.
async fn serving_round(
    state: &app::kernel::state::AppState,
    backend: &dyn serving::Serving,
    saved: &mut std::collections::HashMap<uuid::Uuid, Vec<serving::Instance>>,
) {
    use app::endpoints::deploy;
    match deploy::pending(&state.pool).await {
        Ok(pending) => {
            for p in pending {
                if p.deleted {
                    match backend.remove(&p.engine_name).await {
                        Ok(()) => {
                            if let Err(e) = deploy::removed(&state.pool, p.endpoint_id).await {
                                tracing::warn!(endpoint = %p.engine_name, error = %e, "could not remove a deleted endpoint's rows");
                            }
                        }
                        Err(serving::ServingError::Busy(why)) => {
                            tracing::debug!(endpoint = %p.engine_name, %why, "removal in progress")
                        }
                        Err(e) => tracing::warn!(endpoint = %p.engine_name, error = %e, "could not remove an endpoint"),
                    }
                    continue;
                }
                match backend.deploy(&p.spec).await {
                    Ok(()) => {
                        if let Err(e) = deploy::mark_deployed(&state.pool, p.endpoint_id, p.generation).await {
                            tracing::warn!(endpoint = %p.engine_name, error = %e, "could not record a deployment");
                        }
                    }
                    Err(serving::ServingError::Invalid(reason)) => {
                        let done = async {
                            deploy::mark_deployed(&state.pool, p.endpoint_id, p.generation).await?;
                            deploy::set_status(&state.pool, p.endpoint_id, "Failed", Some(&reason)).await
                        };
                        if let Err(e) = done.await {
                            tracing::warn!(endpoint = %p.engine_name, error = %e, "could not record a failed deployment");
                        }
                    }
                    Err(serving::ServingError::Busy(why)) => {
                        tracing::debug!(endpoint = %p.engine_name, %why, "the endpoint is changing; deploying later")
                    }
                    Err(e) => {
                        tracing::warn!(endpoint = %p.engine_name, error = %e, "deploying an endpoint failed; retrying")
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read the endpoints to deploy"),
    }
    let running = match deploy::running(&state.pool).await {
        Ok(running) => running,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the running endpoints");
            return;
        }
    };
    saved.retain(|id, _| running.iter().any(|r| r.endpoint_id == *id));
    for deploy::Running { endpoint_id: id, status: current, spec } in running {
        // SageMaker keeps a status of its own; locally it follows from the processes
        let described = match backend.describe(&spec.name).await {
            Ok(described) => described,
            Err(e) => {
                tracing::warn!(endpoint = %spec.name, error = %e, "could not ask how an endpoint is doing");
                continue;
            }
        };
        let instances = match &described {
            Some(d) => d.instances.clone(),
            None => backend.instances(&spec.name),
        };
        // written only when they changed since this process last wrote them
        if saved.get(&id) != Some(&instances) {
            if let Err(e) = deploy::save_instances(&state.pool, id, &instances).await {
                tracing::warn!(endpoint = %spec.name, error = %e, "could not record an endpoint's processes");
                continue;
            }
            saved.insert(id, instances.clone());
        }
        let settled = match described {
            Some(d) => Some((d.status, d.reason)),
            None => deploy::settled(&spec, &instances),
        };
        if let Some((status, reason)) = settled
            && status != current
            && let Err(e) = deploy::set_status(&state.pool, id, status, reason.as_deref()).await
        {
            tracing::warn!(endpoint = %spec.name, error = %e, "could not record an endpoint's status");
        }
    }
}

/// Checks every team's budget against the month's spend every `every`
/// (any process; an alert is raised once whoever checks).
pub async fn budgets(state: app::kernel::state::AppState, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
        match app::budgets::check::run(&state.pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(alerts = n, "budget alerts raised"),
            Err(e) => tracing::warn!(error = %e, "could not check the budgets"),
        }
    }
}

/// Adds what this process's gateway counted to the per-minute rollups of
/// endpoint metrics every `every`, in one statement, and writes the data it
/// captured to the bucket; once more on the way out. Every process runs it
/// (each counts and captures its own traffic).
pub async fn traffic(state: app::kernel::state::AppState, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = app::endpoints::metrics::flush(&state).await {
            tracing::warn!(error = %e, "could not write endpoint metrics; keeping them for the next flush");
        }
        if let Err(e) = app::endpoints::capture::flush(&state).await {
            tracing::warn!(error = %e, "could not write data capture; keeping it for the next flush");
        }
    }
    if let Err(e) = app::endpoints::metrics::flush(&state).await {
        tracing::warn!(error = %e, "could not write the last endpoint metrics");
    }
    if let Err(e) = app::endpoints::capture::flush(&state).await {
        tracing::warn!(error = %e, "could not write the last data capture");
    }
}

/// Steps the rollouts every `every`, and at once when one is started or
/// commanded: judges each step by its guardrails, rolls a failing candidate
/// back, takes the next step when its time has come; and recomputes the
/// weights of the bandits whose interval has passed. Every process runs it;
/// a rollout or bandit is moved by one process at a time (its row is locked).
pub async fn rollouts(state: app::kernel::state::AppState, every: Duration, stop: CancellationToken) {
    loop {
        if let Err(e) = app::endpoints::rollouts::tick(&state).await {
            tracing::warn!(error = %e, "could not step the rollouts");
        }
        if let Err(e) = app::endpoints::bandit::tick(&state).await {
            tracing::warn!(error = %e, "could not run the bandits");
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = state.rollouts_wake.notified() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Scores the health of every serving endpoint once every `every` (a
/// minute), recording each minute once across processes; alerts and, where
/// an endpoint opts in, rolls back its last rollout when the score falls
/// below its threshold.
pub async fn health(state: app::kernel::state::AppState, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = app::endpoints::health::tick(&state).await {
            tracing::warn!(error = %e, "could not score the endpoints' health");
        }
    }
}
