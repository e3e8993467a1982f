//! Benchmark of the training reconciler (run by `bench/training.sh`): JOBS
//! in-flight SageMaker jobs on the SageMaker stand-in, a private PostgreSQL,
//! and reconcile cycles as the worker runs them. Prints cycle times and AWS
//! calls per cycle: quiet cycles (nothing changed) and busy ones (1% of the
//! jobs moved on).

use std::sync::Arc;
use std::time::Instant;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let jobs: usize = std::env::var("JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let data = std::env::temp_dir().join(format!("capstan-reconcile-bench-{}", std::process::id()));
    std::fs::create_dir_all(&data)?;
    let pg = server::localdb::LocalPostgres::ensure_running(&data, None).await?;
    let result = run(&pg.url(), jobs).await;
    pg.stop(true)?;
    let _ = std::fs::remove_dir_all(&data);
    result
}

async fn run(url: &str, jobs: usize) -> anyhow::Result<()> {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(8).connect(url).await?;
    server::MIGRATOR.run(&pool).await?;
    let standin = training::standin::StandIn::start().await?;
    let shared = storage::sdk_config(Some("us-east-1"), Some(&("bench".to_owned(), "bench".to_owned())), None).await;
    let backend: Arc<dyn training::Backend> =
        Arc::new(training::sagemaker::SageMaker::new(&shared, Some(&standin.url), Some(&standin.url)));
    // The bucket is never touched by reconciliation; any client will do.
    let s3 = storage::S3Config {
        endpoint: Some(standin.url.clone()),
        region: Some("us-east-1".into()),
        credentials: Some(("bench".into(), "bench".into())),
        force_path_style: true,
    };
    let storage = storage::Storage::new(&s3, None, "capstan").await;
    let state =
        server::state(pool.clone(), "target/site", app::kernel::state::Settings::default(), storage, backend.clone());

    let user = uuid::Uuid::now_v7();
    let team = uuid::Uuid::now_v7();
    sqlx::query("insert into app_user (user_id, email, display_name, password_hash) values ($1, 'bench@example.com', 'Bench', 'x')")
        .bind(user)
        .execute(&pool)
        .await?;
    sqlx::query("insert into team (team_id, slug, name) values ($1, 'bench', 'Bench')")
        .bind(team)
        .execute(&pool)
        .await?;
    let started = Instant::now();
    for i in 0..jobs {
        let id = uuid::Uuid::now_v7();
        let name = app::training::validate::engine_name(&format!("bench-{i}"), id);
        let spec = training::JobSpec {
            name: name.clone(),
            job_id: id.to_string(),
            image: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1".into()),
            script: None,
            instance_type: "ml.m5.large".into(),
            instance_count: 1,
            volume_gb: 30,
            max_runtime_seconds: 3600,
            spot: None,
            hyperparameters: Default::default(),
            metric_definitions: Vec::new(),
            channels: Vec::new(),
            output_uri: "s3://capstan/jobs/bench/".into(),
            tags: Default::default(),
            role_arn: Some("arn:aws:iam::123456789012:role/Bench".into()),
            region: "us-east-1".into(),
            team: team.to_string(),
        };
        sqlx::query(
            "insert into training_job (job_id, team_id, name, engine_name, backend, status, request, spec, instance_type,
                 instance_count, max_runtime_seconds, region, usd_per_hour, output_uri, created_by, logs_done)
             values ($1, $2, $3, $4, 'sagemaker', 'starting', '{}', $5, 'ml.m5.large', 1, 3600, 'us-east-1', 0.115,
                 's3://capstan/jobs/bench/', $6, true)",
        )
        .bind(id)
        .bind(team)
        .bind(format!("bench-{i}"))
        .bind(&name)
        .bind(serde_json::to_value(&spec)?)
        .bind(user)
        .execute(&pool)
        .await?;
        backend.create(&spec).await?;
    }
    println!("{jobs} in-flight jobs created on the stand-in in {:.1} s", started.elapsed().as_secs_f64());

    let cycle = |label: &str| {
        let state = state.clone();
        let label = label.to_owned();
        let standin = &standin;
        async move {
            standin.reset_calls();
            let t = Instant::now();
            let stats = app::training::engine::reconcile(&state).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            println!(
                "{label:<28} {ms:>8.1} ms   AWS calls {:>5} (list {:>3}, describe {:>4})   rows updated {:>4}",
                standin.total_calls(),
                stats.list_calls,
                stats.describe_calls,
                stats.updated
            );
            anyhow::Ok((ms, standin.total_calls()))
        }
    };
    cycle("first cycle (learns all)").await?;
    let mut quiet = Vec::new();
    for _ in 0..5 {
        quiet.push(cycle("quiet cycle").await?);
    }
    let names = standin.job_names();
    let moved = (jobs / 100).max(1);
    let mut busy = Vec::new();
    for round in 0..5 {
        for name in names.iter().skip(round * moved).take(moved) {
            standin.set_status(name, "InProgress", "Training", None);
        }
        busy.push(cycle(&format!("busy cycle ({moved} changed)")).await?);
    }
    let avg = |v: &[(f64, u64)]| {
        (v.iter().map(|x| x.0).sum::<f64>() / v.len() as f64, v.iter().map(|x| x.1).sum::<u64>() / v.len() as u64)
    };
    let (qms, qcalls) = avg(&quiet);
    let (bms, bcalls) = avg(&busy);
    println!(
        "\n{jobs} in-flight jobs: quiet cycle {qms:.1} ms with {qcalls} AWS calls; busy cycle (1% changed) {bms:.1} ms with {bcalls} AWS calls"
    );
    println!(
        "pages of {} jobs: {}",
        training::sagemaker::PAGE_SIZE,
        jobs.div_ceil(training::sagemaker::PAGE_SIZE as usize)
    );
    Ok(())
}
