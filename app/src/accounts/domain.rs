//! Accounts on the server: the first-run setup, email + password sign-in with
//! rate limiting, sign-out (here or everywhere), password hashing and changes.

use crate::accounts::types::Me;
use crate::kernel::audit::{AuditActor, AuditMeta, NewEvent, record};
use crate::kernel::context::{Actor, Ctx, SESSION_AUTH_KEY, SessionAuth};
use crate::kernel::error::AppError;
use crate::kernel::validate::{Email, Errors, Password, name};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde_json::json;
use sqlx::PgPool;
use tower_sessions::Session;
use uuid::Uuid;

pub fn me(actor: &Actor) -> Me {
    Me {
        id: actor.user_id,
        email: actor.email.clone(),
        display_name: actor.display_name.clone(),
        is_site_admin: actor.is_site_admin,
        token_id: actor.token_id,
    }
}

/// Hashes a password with argon2id on the blocking pool.
pub async fn hash_password(password: Password) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default().hash_password(password.expose().as_bytes(), &salt).map(|h| h.to_string())
    })
    .await
    .map_err(|e| anyhow::anyhow!("hashing task failed: {e}"))?
    .map_err(|e| AppError::from(anyhow::anyhow!("failed to hash password: {e}")))
}

/// A valid argon2id hash of a random password, checked against when the
/// account does not exist so both paths take the same time.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1rBS1ZzquGqL1kwxL7XTSpRA6IVwaN6cGTrMRPz2pnE";

/// Checks a password on the blocking pool; a missing hash never matches.
pub async fn verify_password(password: String, hash: Option<String>) -> Result<bool, AppError> {
    tokio::task::spawn_blocking(move || {
        let stored = hash.as_deref().unwrap_or(DUMMY_HASH);
        let Ok(parsed) = PasswordHash::new(stored) else { return false };
        let ok = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        ok && hash.is_some()
    })
    .await
    .map_err(|e| AppError::from(anyhow::anyhow!("verification task failed: {e}")))
}

/// Validated input for a new account.
pub struct NewUser {
    pub email: Email,
    pub display_name: String,
    pub password: Password,
    pub is_site_admin: bool,
}

impl NewUser {
    pub fn parse(email: &str, display_name: &str, password: &str, is_site_admin: bool) -> Result<Self, AppError> {
        let mut errors = Errors::new();
        let email = errors.check("email", Email::parse(email));
        let display_name = errors.check("display_name", name(display_name, 100));
        let password = errors.check("password", Password::parse(password));
        errors.finish()?;
        match (email, display_name, password) {
            (Some(email), Some(display_name), Some(password)) => {
                Ok(Self { email, display_name, password, is_site_admin })
            }
            _ => Err(AppError::Internal),
        }
    }
}

/// Creates an account and its audit event in one transaction.
pub async fn create_user(
    pool: &PgPool,
    actor: &AuditActor,
    meta: &AuditMeta,
    input: NewUser,
) -> Result<Uuid, AppError> {
    let hash = hash_password(input.password).await?;
    let mut tx = pool.begin().await?;
    let id = insert_user(&mut tx, &input.email, &input.display_name, &hash, input.is_site_admin).await?;
    record(
        &mut tx,
        actor,
        meta,
        NewEvent {
            team_id: None,
            action: "user.created",
            target_type: "user",
            target_id: Some(id.to_string()),
            summary: json!({ "after": { "email": input.email.as_str(), "is_site_admin": input.is_site_admin } }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

async fn insert_user(
    conn: &mut sqlx::PgConnection,
    email: &Email,
    display_name: &str,
    hash: &str,
    is_site_admin: bool,
) -> Result<Uuid, AppError> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "insert into app_user (user_id, email, display_name, password_hash, is_site_admin) values ($1, $2, $3, $4, $5)",
        id,
        email.as_str(),
        display_name,
        hash,
        is_site_admin,
    )
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

pub async fn user_count(pool: &PgPool) -> Result<i64, AppError> {
    Ok(sqlx::query_scalar!(r#"select count(*) as "n!" from app_user"#).fetch_one(pool).await?)
}

/// Longest wait an account's failures impose (its growing delay stops here).
const MAX_ACCOUNT_DELAY_SECS: i64 = 60;

/// Seconds an account waits after `failures` failed attempts in the
/// window: none below the limit, then 2, 4, 8 … up to a minute. A delay,
/// not a lockout: failing on purpose cannot shut the owner out for long.
pub fn account_delay(failures: i64, max_failures: i64) -> i64 {
    if failures < max_failures {
        return 0;
    }
    let steps = u32::try_from(failures - max_failures + 1).unwrap_or(u32::MAX).min(6);
    2_i64.pow(steps).min(MAX_ACCOUNT_DELAY_SECS)
}

/// Starts a password attempt for `email` from the caller's address, or
/// says how long to wait. The attempt is counted as failed at once (and
/// [`attempt_succeeded`] corrects it), under a lock per address and per
/// account, so concurrent attempts cannot all pass the check.
async fn begin_attempt(ctx: &Ctx, email: &str) -> Result<i64, AppError> {
    let settings = &ctx.state.settings;
    let since = time::OffsetDateTime::now_utc() - settings.login_window;
    let mut tx = ctx.pool().begin().await?;
    for key in [format!("login-addr:{}", ctx.client_addr), format!("login-email:{email}")] {
        // (unchecked: the function returns `void`, which the checked macros cannot type)
        sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))").bind(key).execute(&mut *tx).await?;
    }
    let row = sqlx::query!(
        r#"select
             (select count(*) from login_attempt where client_addr = $2 and not succeeded and created_at > $3) as "by_addr!",
             (select min(created_at) from login_attempt where client_addr = $2 and not succeeded and created_at > $3) as addr_oldest,
             (select count(*) from login_attempt where email = $1 and not succeeded and created_at > $3) as "by_email!",
             (select max(created_at) from login_attempt where email = $1 and not succeeded and created_at > $3) as email_latest"#,
        email,
        ctx.client_addr,
        since,
    )
    .fetch_one(&mut *tx)
    .await?;
    let now = time::OffsetDateTime::now_utc();
    let wait = |until: time::OffsetDateTime| u64::try_from((until - now).whole_seconds().max(1)).unwrap_or(60);
    if row.by_addr >= settings.login_max_failures {
        let until = row.addr_oldest.map_or(now + time::Duration::minutes(1), |o| o + settings.login_window);
        return Err(AppError::RateLimited { retry_after_secs: wait(until) });
    }
    let delay = account_delay(row.by_email, settings.login_max_failures);
    if let Some(latest) = row.email_latest
        && delay > 0
        && latest + time::Duration::seconds(delay) > now
    {
        return Err(AppError::RateLimited { retry_after_secs: wait(latest + time::Duration::seconds(delay)) });
    }
    let id = sqlx::query_scalar!(
        "insert into login_attempt (email, client_addr, succeeded) values ($1, $2, false) returning login_attempt_id",
        email,
        ctx.client_addr,
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

async fn attempt_succeeded(ctx: &Ctx, attempt: i64) -> Result<(), AppError> {
    sqlx::query!("update login_attempt set succeeded = true where login_attempt_id = $1", attempt)
        .execute(ctx.pool())
        .await?;
    Ok(())
}

/// Signs in with email and password: rate-limited per account and per
/// address, audited either way, session id cycled on success.
pub async fn login(ctx: &Ctx, session: &Session, email: &str, password: &str) -> Result<(), AppError> {
    let email_norm = email.trim().to_lowercase();
    let mut errors = Errors::new();
    errors.check("email", Email::parse(email));
    if password.is_empty() {
        errors.check::<()>("password", Err("Enter your password.".into()));
    } else if password.chars().count() > Password::MAX_CHARS {
        errors.check::<()>("password", Err(format!("Use at most {} characters.", Password::MAX_CHARS)));
    }
    errors.finish()?;
    let attempt = begin_attempt(ctx, &email_norm).await?;
    let user = sqlx::query!(
        r#"select user_id, password_hash, session_version, disabled_at is not null as "disabled!"
           from app_user where email = $1"#,
        email_norm
    )
    .fetch_optional(ctx.pool())
    .await?;
    let (user_id, hash, version, disabled) = match user {
        Some(u) => (Some(u.user_id), u.password_hash, u.session_version, u.disabled),
        None => (None, None, 0, false),
    };
    let ok = verify_password(password.to_owned(), hash).await?;
    // only someone who knows the password learns that the account is disabled
    if ok && disabled {
        return Err(AppError::field("email", "This account is disabled; ask a site admin."));
    }
    if ok {
        attempt_succeeded(ctx, attempt).await?;
    }
    let (_, meta) = ctx.audit();
    let mut tx = ctx.pool().begin().await?;
    let actor = AuditActor { user_id: if ok { user_id } else { None }, token_id: None, label: email_norm.clone() };
    record(
        &mut tx,
        &actor,
        &meta,
        NewEvent {
            team_id: None,
            action: if ok { "auth.login" } else { "auth.login_failed" },
            target_type: "user",
            target_id: user_id.map(|id| id.to_string()),
            summary: json!({ "email": email_norm }),
        },
    )
    .await?;
    tx.commit().await?;
    match (ok, user_id) {
        (true, Some(user_id)) => start_session(session, user_id, version).await,
        _ => Err(AppError::field("password", "Wrong email or password.")),
    }
}

async fn start_session(session: &Session, user_id: Uuid, version: i32) -> Result<(), AppError> {
    session.cycle_id().await.map_err(session_error)?;
    let auth = SessionAuth { user_id, version, signed_in_at: time::OffsetDateTime::now_utc().unix_timestamp() };
    session.insert(SESSION_AUTH_KEY, auth).await.map_err(session_error)?;
    Ok(())
}

/// Ends every session of the caller, this one included ("sign out
/// everywhere"): one audit event.
pub async fn sign_out_everywhere(ctx: &Ctx, session: &Session) -> Result<(), AppError> {
    let actor = ctx.actor()?;
    let mut tx = ctx.pool().begin().await?;
    sqlx::query!("update app_user set session_version = session_version + 1 where user_id = $1", actor.user_id)
        .execute(&mut *tx)
        .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: None,
            action: "user.signed_out_everywhere",
            target_type: "user",
            target_id: Some(actor.user_id.to_string()),
            summary: json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    session.flush().await.map_err(session_error)?;
    Ok(())
}

fn session_error(e: tower_sessions::session::Error) -> AppError {
    tracing::error!(error = %e, "session store failed");
    AppError::Internal
}

pub async fn logout(ctx: &Ctx, session: &Session) -> Result<(), AppError> {
    if ctx.actor.is_some() {
        let (actor, meta) = ctx.audit();
        let mut tx = ctx.pool().begin().await?;
        record(
            &mut tx,
            &actor,
            &meta,
            NewEvent {
                team_id: None,
                action: "auth.logout",
                target_type: "user",
                target_id: actor.user_id.map(|id| id.to_string()),
                summary: json!({}),
            },
        )
        .await?;
        tx.commit().await?;
    }
    // flush deletes the record and clears the cookie: the old id is dead
    session.flush().await.map_err(session_error)?;
    Ok(())
}

/// Creates the first account, guarded by the one-time setup token.
pub async fn setup(
    ctx: &Ctx,
    session: &Session,
    token: &str,
    email: &str,
    display_name: &str,
    password: &str,
) -> Result<(), AppError> {
    let expected = ctx.state.setup_token.lock().ok().and_then(|t| t.clone());
    let Some(expected) = expected else {
        return Err(AppError::Conflict { field: None, message: "Setup is already complete. Sign in instead.".into() });
    };
    if !constant_time_eq(expected.as_bytes(), token.trim().as_bytes()) {
        return Err(AppError::field(
            "token",
            "The setup link is not valid. Use the link printed in the server console.",
        ));
    }
    let input = NewUser::parse(email, display_name, password, true)?;
    let hash = hash_password(input.password).await?;
    let mut tx = ctx.pool().begin().await?;
    // Serialise concurrent setups: only the first one may create a user.
    sqlx::query!("lock table app_user in share row exclusive mode").execute(&mut *tx).await?;
    let existing = sqlx::query_scalar!(r#"select count(*) as "n!" from app_user"#).fetch_one(&mut *tx).await?;
    if existing > 0 {
        return Err(AppError::Conflict { field: None, message: "Setup is already complete. Sign in instead.".into() });
    }
    let id = insert_user(&mut tx, &input.email, &input.display_name, &hash, true).await?;
    let actor = AuditActor { user_id: Some(id), token_id: None, label: input.email.as_str().to_owned() };
    let (_, meta) = ctx.audit();
    record(
        &mut tx,
        &actor,
        &meta,
        NewEvent {
            team_id: None,
            action: "user.created",
            target_type: "user",
            target_id: Some(id.to_string()),
            summary: json!({ "after": { "email": input.email.as_str(), "is_site_admin": true }, "via": "setup" }),
        },
    )
    .await?;
    tx.commit().await?;
    if let Ok(mut t) = ctx.state.setup_token.lock() {
        *t = None;
    }
    start_session(session, id, 0).await
}

pub async fn change_password(ctx: &Ctx, session: &Session, current: &str, new: &str) -> Result<(), AppError> {
    let actor = ctx.actor()?;
    let mut errors = Errors::new();
    if current.is_empty() {
        errors.check::<()>("current_password", Err("Enter your current password.".into()));
    }
    let new = errors.check("new_password", Password::parse(new));
    errors.finish()?;
    let Some(new) = new else { return Err(AppError::Internal) };
    // guessing the current password of a session left open is a sign-in
    // attempt like any other: counted and limited the same way
    let attempt = begin_attempt(ctx, &actor.email.to_lowercase()).await?;
    let hash = sqlx::query_scalar!("select password_hash from app_user where user_id = $1", actor.user_id)
        .fetch_one(ctx.pool())
        .await?;
    if !verify_password(current.to_owned(), hash).await? {
        return Err(AppError::field("current_password", "This is not your current password."));
    }
    attempt_succeeded(ctx, attempt).await?;
    let new_hash = hash_password(new).await?;
    let mut tx = ctx.pool().begin().await?;
    // every other session ends with the old password
    let version = sqlx::query_scalar!(
        "update app_user set password_hash = $2, session_version = session_version + 1, updated_at = now()
         where user_id = $1 returning session_version",
        actor.user_id,
        new_hash
    )
    .fetch_one(&mut *tx)
    .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: None,
            action: "user.password_changed",
            target_type: "user",
            target_id: Some(actor.user_id.to_string()),
            summary: json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    if actor.token_id.is_none() {
        start_session(session, actor.user_id, version).await?;
    }
    Ok(())
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_delays_grow_and_stop_at_a_minute() {
        let delays: Vec<i64> = (0..12).map(|f| account_delay(f, 5)).collect();
        assert_eq!(delays, [0, 0, 0, 0, 0, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[tokio::test]
    async fn dummy_hash_is_valid_and_never_matches() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify_password("anything at all".into(), None).await.expect("runs"));
    }

    #[tokio::test]
    async fn hash_round_trip() {
        let hash = hash_password(Password::parse("correct horse battery").expect("valid")).await.expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery".into(), Some(hash.clone())).await.expect("runs"));
        assert!(!verify_password("wrong horse battery".into(), Some(hash)).await.expect("runs"));
    }
}
