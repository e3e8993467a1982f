//! `capstan`: reads configuration and dispatches to the server or a CLI command.

use anyhow::{Context as _, bail};
use app::kernel::audit::{AuditActor, AuditMeta};
use clap::Parser as _;
use server::config::{AuditCommand, Cli, Command, Config, DbCommand, TokenCommand, UserCommand};
use server::localdb::LocalPostgres;
use std::io::{IsTerminal as _, Read as _};
use tokio_util::sync::CancellationToken;

/// mimalloc: under the gateway's load glibc's allocator spent a tenth of the
/// process's time in its own bookkeeping (bench/endpoints.sh, with perf).
/// Built without transparent huge pages (feature `no_thp`): with them an
/// idle Capstan held 10 MB more.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // Leptos renders a page by recursion on the worker's stack; pages are kept
    // shallow (type-erased sections), and a larger stack is a safety margin only.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build()
        .context("failed to start the async runtime")?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    cli.config.validate()?;
    cli.config.resolve_paths()?;
    init_tracing(&cli.config);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config, None).await,
        Command::Demo { email, traffic } => serve(cli.config, Some((email, traffic))).await,
        Command::Migrate => {
            let (db, local) = connect(&cli.config).await?;
            migrate(&db).await?;
            println!("migrations applied");
            finish(db, local).await
        }
        Command::User(UserCommand::Create { email, name, site_admin }) => {
            let (db, local) = connect(&cli.config).await?;
            migrate(&db).await?;
            let password = read_password()?;
            let name = name.unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
            let input =
                app::accounts::domain::NewUser::parse(&email, &name, &password, site_admin).map_err(user_error)?;
            let id = app::accounts::domain::create_user(&db, &cli_actor(), &AuditMeta::default(), input)
                .await
                .map_err(user_error)?;
            println!("created user {email} ({id}){}", if site_admin { " as site admin" } else { "" });
            finish(db, local).await
        }
        Command::Token(TokenCommand::Create { email, name, expires_in }) => {
            let (db, local) = connect(&cli.config).await?;
            migrate(&db).await?;
            let expires_at = expires_in
                .map(|d| server::config::parse_duration(&d).map(|d| time::OffsetDateTime::now_utc() + d))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--expires-in: {e}"))?;
            let user_id = sqlx::query_scalar::<_, uuid::Uuid>("select user_id from app_user where email = $1")
                .bind(email.trim().to_lowercase())
                .fetch_optional(&db)
                .await?
                .with_context(|| format!("no user with email {email}"))?;
            let actor = app::kernel::context::actor_by_id(&db, user_id)
                .await
                .map_err(user_error)?
                .with_context(|| format!("no user with email {email}"))?;
            let audit_actor = AuditActor { user_id: Some(actor.user_id), token_id: None, label: actor.email.clone() };
            let meta = AuditMeta { request_id: None, client_addr: Some("cli".into()) };
            let created = app::tokens::domain::create_for(&db, &actor, &audit_actor, &meta, &name, expires_at)
                .await
                .map_err(user_error)?;
            eprintln!("Created token {} ({}). It is shown only once:", created.token.name, created.token.id);
            println!("{}", created.secret);
            finish(db, local).await
        }
        Command::Audit(AuditCommand::Anchor { out }) => {
            let key = anchor_key(&cli.config)?;
            let (db, local) = connect(&cli.config).await?;
            let anchor = app::audit::domain::take_anchor(&db, &key).await.map_err(user_error);
            finish(db, local).await?;
            let anchor = anchor?;
            let place = match out {
                Some(path) => {
                    std::fs::write(&path, serde_json::to_vec_pretty(&anchor)?)
                        .with_context(|| format!("failed to write {}", path.display()))?;
                    path.display().to_string()
                }
                None => anchor_store(&cli.config).await?.save(&anchor).await?,
            };
            println!("audit anchor of {} chains written to {place}", anchor.heads.len());
            Ok(())
        }
        Command::Audit(AuditCommand::Verify { anchor }) => {
            let anchor = match (anchor, cli.config.audit_anchor_key.is_some()) {
                (Some(path), _) => Some(server::anchors::read_file(&path)?),
                (None, true) => anchor_store(&cli.config).await?.latest().await?,
                (None, false) => None,
            };
            let key = if anchor.is_some() { anchor_key(&cli.config)? } else { Vec::new() };
            let (db, local) = connect(&cli.config).await?;
            let report = app::audit::domain::verify(&db).await.map_err(user_error);
            let anchored = match (&report, &anchor) {
                (Ok(r), Some(a)) if r.broken.is_none() => {
                    app::audit::domain::check_anchor(&db, a, &key).await.map_err(user_error)
                }
                _ => Ok(None),
            };
            finish(db, local).await?;
            let mut report = report?;
            if report.broken.is_none() {
                report.broken = anchored?;
            }
            if let Some(a) = &anchor
                && report.broken.is_none()
            {
                println!("checked against the audit anchor of {}", a.created_at);
            }
            let broken = report.broken.clone();
            match broken {
                None => {
                    println!("audit log intact: {} events in {} chains verified", report.events, report.chains);
                    Ok(())
                }
                Some(b) => {
                    println!(
                        "audit log BROKEN at event {} (chain {}, position {}): {}",
                        b.event_id.map_or_else(|| "-".to_owned(), |id| id.to_string()),
                        b.chain_key,
                        b.chain_seq,
                        b.reason
                    );
                    std::process::exit(1);
                }
            }
        }
        Command::Db(DbCommand::Start) => {
            anyhow::ensure!(
                cli.config.database_url.is_none(),
                "DATABASE_URL is set: there is no private cluster to start"
            );
            let mut pg = LocalPostgres::ensure_running(&cli.config.data_dir, cli.config.pg_bin.as_deref()).await?;
            pg.release();
            println!("{}", pg.url());
            Ok(())
        }
        Command::Db(DbCommand::Stop) => {
            anyhow::ensure!(
                cli.config.database_url.is_none(),
                "DATABASE_URL is set: there is no private cluster to stop"
            );
            LocalPostgres::locate(&cli.config.data_dir, cli.config.pg_bin.as_deref())?.stop(true)
        }
    }
}

fn init_tracing(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// A user-facing CLI error from a domain error.
fn user_error(e: app::kernel::error::AppError) -> anyhow::Error {
    match e {
        app::kernel::error::AppError::Validation(fields) => anyhow::anyhow!(
            "{}",
            fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ")
        ),
        other => anyhow::anyhow!("{other}"),
    }
}

fn cli_actor() -> AuditActor {
    AuditActor { user_id: None, token_id: None, label: "cli".into() }
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password (at least 12 characters): ")?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        if first != second {
            bail!("the passwords do not match");
        }
        Ok(first)
    } else {
        let mut input = String::new();
        std::io::stdin().read_to_string(&mut input).context("failed to read the password from stdin")?;
        Ok(input.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// Connects to `DATABASE_URL`, or to the private cluster (starting it if needed).
async fn connect(config: &Config) -> anyhow::Result<(sqlx::PgPool, Option<LocalPostgres>)> {
    let (url, local) = match &config.database_url {
        Some(url) => (url.expose().to_owned(), None),
        None => {
            let pg = LocalPostgres::ensure_running(&config.data_dir, config.pg_bin.as_deref()).await?;
            (pg.url(), Some(pg))
        }
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect(&url)
        .await
        .context("failed to connect to PostgreSQL")?;
    Ok((pool, local))
}

async fn migrate(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    server::MIGRATOR.run(pool).await.context("failed to apply migrations")?;
    server::migrate_sessions(pool).await
}

async fn finish(pool: sqlx::PgPool, local: Option<LocalPostgres>) -> anyhow::Result<()> {
    pool.close().await;
    if let Some(pg) = local {
        pg.stop(false)?;
    }
    Ok(())
}

/// Runs the server; with `demo` set (whose: an email, or `None` for the first
/// site admin; and whether to send its endpoint sample traffic), also creates
/// the demo once it is up.
async fn serve(config: Config, demo: Option<(Option<String>, bool)>) -> anyhow::Result<()> {
    // Before anything starts: local mode refuses to run user code unsandboxed.
    let sandbox = server::engines::sandbox(&config)?;
    let (pool, local) = connect(&config).await?;
    migrate(&pool).await?;
    let settings = app::kernel::state::Settings {
        login_max_failures: config.login_max_failures,
        login_window: time::Duration::minutes(config.login_window_minutes),
        region: config.region(),
        sagemaker_role_arn: config.sagemaker_role_arn.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
        session_max_age: time::Duration::days(config.session_max_days),
        webhooks_allow_private: config.webhooks_allow_private,
        webhooks_require_https: config.mode == server::config::Mode::Aws,
    };
    let (storage, local_s3) = server::objects::connect(&config).await?;
    let backend = server::engines::training_backend(&config, &storage, sandbox.clone()).await;
    let serving = server::engines::serving_backend(&config, &storage, sandbox).await?;
    let mut state = server::state(pool.clone(), &config.site_root.to_string_lossy(), settings, storage, backend);
    state.serving = serving;
    state.packages = server::engines::model_packages(&config).await;
    app::training::launch::check_bundled_data().map_err(anyhow::Error::msg)?;
    app::training::prices::seed(&pool).await.map_err(user_error)?;
    if app::accounts::domain::user_count(&pool).await.map_err(user_error)? == 0 {
        let token = {
            use rand::RngCore as _;
            let mut bytes = [0u8; 24];
            rand::rng().fill_bytes(&mut bytes);
            hex::encode(bytes)
        };
        println!(
            "\nNo account exists yet. Create the first (site admin) account here:\n\n    {}/setup?token={token}\n",
            config.public_url()
        );
        if let Ok(mut slot) = state.setup_token.lock() {
            *slot = Some(token);
        }
    }
    let opts = server::HttpOptions {
        secure_cookies: config.secure_cookies(),
        session_idle: time::Duration::minutes(config.session_idle_minutes),
        max_body_bytes: config.max_body_bytes,
        request_timeout: std::time::Duration::from_secs(config.request_timeout_secs),
        public_origin: config.public_origin(),
        metrics_token: config.metrics_token.as_ref().map(|t| t.expose().to_owned()),
    };
    let stop = CancellationToken::new();
    // the cache of hot reads is used while this process hears the database's invalidations
    let cache_listener = tokio::spawn(app::kernel::cache::listen(state.pool.clone(), state.cache.clone()));
    // scans left by a stopped process (here or elsewhere) start again at once
    let scanner = tokio::spawn(server::workers::scans(state.clone(), std::time::Duration::from_secs(10), stop.clone()));
    let worker = tokio::spawn(server::workers::housekeeping(state.clone(), stop.clone()));
    let anchoring = match config.audit_anchor_key.is_some() {
        true => {
            let store = server::anchors::AnchorStore::for_mode(&config, &state.storage);
            let every = std::time::Duration::from_secs(config.audit_anchor_minutes.max(1) * 60);
            Some(tokio::spawn(server::workers::anchoring(
                state.clone(),
                anchor_key(&config)?,
                store,
                every,
                stop.clone(),
            )))
        }
        false => None,
    };
    let trainer = tokio::spawn(server::workers::training(state.clone(), config.training_poll(), stop.clone()));
    let hooks = tokio::spawn(server::workers::webhooks(state.clone(), std::time::Duration::from_secs(1), stop.clone()));
    let endpoints =
        tokio::spawn(server::workers::serving(state.clone(), std::time::Duration::from_secs(1), stop.clone()));
    let traffic =
        tokio::spawn(server::workers::traffic(state.clone(), std::time::Duration::from_secs(10), stop.clone()));
    let budgets =
        tokio::spawn(server::workers::budgets(state.clone(), std::time::Duration::from_secs(60), stop.clone()));
    let rollouts =
        tokio::spawn(server::workers::rollouts(state.clone(), std::time::Duration::from_secs(2), stop.clone()));
    let health = tokio::spawn(server::workers::health(state.clone(), std::time::Duration::from_secs(60), stop.clone()));
    if let Some((email, traffic)) = demo {
        let (demo, ctx) = create_demo(&state, email.as_deref()).await?;
        let job = &demo.job;
        if traffic {
            println!("Traffic with outcomes goes to the demo's endpoint once it serves (after its job is trained).");
            let team = job.team.clone();
            tokio::spawn(async move {
                if let Err(e) = app::endpoints::demo::send_traffic_when_ready(ctx, team).await {
                    tracing::warn!(error = %e, "the demo's sample traffic did not start");
                }
            });
        }
        println!("Demo training job launched: {}/teams/{}/training/{}", config.public_url(), job.team, job.id);
        println!(
            "Its challenger (other hyperparameters): {}/teams/{}/training/{}",
            config.public_url(),
            demo.challenger.team,
            demo.challenger.id
        );
        if let Some(r) = &demo.reviewer {
            println!(
                "Created the demo's reviewer {} with password {} (shown only once): sign in as them in a private \
                 window to approve a change request.",
                r.email, r.password
            );
        }
    }
    let app = server::router(state, &opts);
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("failed to listen on {} (CAPSTAN_ADDR)", config.addr))?;
    tracing::info!(url = %config.public_url(), "Capstan is listening");
    println!("Capstan is running at {}", config.public_url());
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server error")?;
    tracing::info!("draining finished; stopping workers");
    stop.cancel();
    cache_listener.abort();
    let _ = worker.await;
    let _ = scanner.await;
    let _ = trainer.await;
    let _ = hooks.await;
    let _ = endpoints.await;
    let _ = traffic.await;
    let _ = budgets.await;
    let _ = rollouts.await;
    let _ = health.await;
    if let Some(task) = anchoring {
        let _ = task.await;
    }
    if let Some(s3) = local_s3 {
        s3.stop().await;
    }
    finish(pool, local).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested");
}

/// The demo for `email` (default: the first site admin; with no account at
/// all, a new site admin `demo@example.com` whose password is printed once).
async fn create_demo(
    state: &app::kernel::state::AppState,
    email: Option<&str>,
) -> anyhow::Result<(app::training::types::Demo, app::kernel::context::Ctx)> {
    let pool = &state.pool;
    let user_id = match email {
        Some(email) => sqlx::query_scalar::<_, uuid::Uuid>("select user_id from app_user where email = $1")
            .bind(email.trim().to_lowercase())
            .fetch_optional(pool)
            .await?
            .with_context(|| format!("no user with email {email}"))?,
        None => {
            let first = sqlx::query_scalar::<_, uuid::Uuid>(
                "select user_id from app_user where is_site_admin order by created_at limit 1",
            )
            .fetch_optional(pool)
            .await?;
            match first {
                Some(id) => id,
                None => {
                    let password = {
                        use rand::RngCore as _;
                        let mut bytes = [0u8; 12];
                        rand::rng().fill_bytes(&mut bytes);
                        hex::encode(bytes)
                    };
                    let input = app::accounts::domain::NewUser::parse("demo@example.com", "Demo", &password, true)
                        .map_err(user_error)?;
                    let id = app::accounts::domain::create_user(pool, &cli_actor(), &AuditMeta::default(), input)
                        .await
                        .map_err(user_error)?;
                    println!("Created the site admin demo@example.com with password {password} (shown only once).");
                    if let Ok(mut slot) = state.setup_token.lock() {
                        *slot = None;
                    }
                    id
                }
            }
        }
    };
    let actor = app::kernel::context::actor_by_id(pool, user_id)
        .await
        .map_err(user_error)?
        .context("the demo user vanished")?;
    let ctx = app::kernel::context::Ctx {
        state: state.clone(),
        actor: Some(actor),
        request_id: None,
        client_addr: "cli".into(),
    };
    let demo = app::training::demo::create(&ctx).await.map_err(user_error)?;
    Ok((demo, ctx))
}

/// The audit anchor key, required by the commands that sign or check anchors.
fn anchor_key(config: &Config) -> anyhow::Result<Vec<u8>> {
    let key = config
        .audit_anchor_key
        .as_ref()
        .context("set CAPSTAN_AUDIT_ANCHOR_KEY (kept outside the database) to sign and check audit anchors")?;
    anyhow::ensure!(key.expose().len() >= 16, "CAPSTAN_AUDIT_ANCHOR_KEY must be at least 16 characters");
    Ok(key.expose().as_bytes().to_vec())
}

/// Where the CLI keeps anchors: the bucket in AWS mode, the data directory in local mode.
async fn anchor_store(config: &Config) -> anyhow::Result<server::anchors::AnchorStore> {
    // (local mode's folder needs no object store: serve may hold its port)
    if config.mode == server::config::Mode::Aws {
        let (storage, _) = server::objects::connect(config).await?;
        Ok(server::anchors::AnchorStore::Bucket(storage))
    } else {
        Ok(server::anchors::AnchorStore::Folder(config.data_dir.join("audit-anchors")))
    }
}
