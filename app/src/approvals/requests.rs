//! Change requests: proposed by members, decided by the reviewers the
//! team's policy names, applied by the worker ([`crate::approvals::apply`]).
//!
//! - Every transition asks [`next`] first, so the table there is the only
//!   place that says what may happen in which state.
//! - A request keeps its base (the target's state when proposed or last
//!   edited); a target that changed since makes it `stale`.
//! - Approving locks the request's row: two approvals at the same instant
//!   are counted one after the other, so the quorum is reached once, and
//!   that approval writes the outbox row in its own transaction.
//! - The author never counts: they cannot approve or reject their own
//!   request. The same reviewer approving twice counts once. A rejection
//!   by any eligible reviewer is final (the author may open a new request).
//! - Site admins review as team admins do.

use crate::approvals::types::{
    Change, ChangeRequest, Decision, Diff, Event, NewRequest, RequestEdit, RequestQuery, RequestSummary, Review, Rule,
    State, TimelineEntry, VersionRef, next,
};
use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::page::{self, Page};
use crate::kernel::roles::{Action, Role};
use crate::registry::types::ModelVersionStatus;
use serde_json::{Value, json};
use sqlx::PgConnection;
use std::collections::BTreeMap;
use uuid::Uuid;

/// How long a request stays open when no policy says otherwise.
pub const DEFAULT_EXPIRY_HOURS: i32 = 168;

/// The rule when no policy covers a request (a protected alias always
/// needs one): one approval by an approver.
pub const DEFAULT_RULE: Rule = Rule { approvals_required: 1, min_role: Role::Approver, require_admin: false };

/// What a change is aimed at, as stored with the request.
pub(crate) struct Target {
    /// The model of a registry change.
    pub model_id: Option<Uuid>,
    /// The endpoint of an endpoint change (none for a new endpoint).
    pub endpoint_id: Option<Uuid>,
    pub alias: Option<String>,
    pub version_id: Option<Uuid>,
    /// `team/model` or `team/endpoint`
    pub name: String,
}

/// The target of an endpoint change in team `team_id` and its base: the
/// endpoint's variants and weights (a new endpoint's: whether its name is
/// taken); `None` for a registry change.
async fn endpoint_target(
    conn: &mut PgConnection,
    pool: &sqlx::PgPool,
    team_id: Uuid,
    change: &Change,
) -> Result<Option<(Target, Value)>, AppError> {
    use crate::endpoints::domain::{change_base, name_base};
    let target =
        |endpoint_id, name: String| Target { model_id: None, endpoint_id, alias: None, version_id: None, name };
    let slug = sqlx::query_scalar!("select slug from team where team_id = $1", team_id).fetch_one(&mut *conn).await?;
    Ok(match change {
        Change::EndpointCreate { endpoint } => {
            let base = name_base(pool, team_id, &endpoint.name).await?;
            Some((target(None, format!("{slug}/{}", endpoint.name.trim())), base))
        }
        Change::EndpointUpdate { endpoint_id: id, .. }
        | Change::EndpointDelete { endpoint_id: id }
        | Change::EndpointWeights { endpoint_id: id, .. }
        | Change::EndpointRollout { endpoint_id: id, .. }
        | Change::EndpointBandit { endpoint_id: id, .. } => {
            let base = change_base(pool, team_id, *id).await?.ok_or_else(|| AppError::NotFound("Endpoint".into()))?;
            let name = format!("{slug}/{}", base["name"].as_str().unwrap_or_default());
            Some((target(Some(*id), name), base))
        }
        _ => None,
    })
}

/// The target of `change` in team `team_id`, and its state now (the base).
/// Another team's model, version or endpoint is as unknown as a missing one.
pub(crate) async fn target(
    conn: &mut PgConnection,
    pool: &sqlx::PgPool,
    team_id: Uuid,
    change: &Change,
) -> Result<(Target, Value), AppError> {
    if let Some(found) = endpoint_target(conn, pool, team_id, change).await? {
        return Ok(found);
    }
    let (model_id, alias) = match change {
        Change::AliasMove { model_id, alias, .. }
        | Change::AliasDelete { model_id, alias }
        | Change::AliasProtect { model_id, alias }
        | Change::AliasUnprotect { model_id, alias } => (*model_id, Some(alias.clone())),
        Change::VersionStatus { version_id, .. } => {
            let model = sqlx::query_scalar!(
                "select v.model_id from model_version v join model m on m.model_id = v.model_id
                 where v.version_id = $1 and m.team_id = $2",
                version_id,
                team_id
            )
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| AppError::NotFound("Model version".into()))?;
            (model, None)
        }
        Change::EndpointCreate { .. }
        | Change::EndpointUpdate { .. }
        | Change::EndpointDelete { .. }
        | Change::EndpointWeights { .. }
        | Change::EndpointRollout { .. }
        | Change::EndpointBandit { .. } => return Err(AppError::Internal),
    };
    let model_name = sqlx::query_scalar!(
        r#"select t.slug || '/' || m.name as "name!" from model m join team t on t.team_id = m.team_id
           where m.model_id = $1 and m.team_id = $2"#,
        model_id,
        team_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| AppError::NotFound("Model".into()))?;
    let alias_row = match &alias {
        Some(a) => {
            sqlx::query!(
                "select version_id, protected from model_alias where model_id = $1 and alias = $2",
                model_id,
                a
            )
            .fetch_optional(&mut *conn)
            .await?
        }
        None => None,
    };
    let protected = alias_row.as_ref().is_some_and(|r| r.protected);
    let (version_id, base) = match change {
        Change::AliasMove { .. } | Change::AliasDelete { .. } => {
            (None, json!({ "version_id": alias_row.as_ref().map(|r| r.version_id) }))
        }
        Change::AliasProtect { .. } | Change::AliasUnprotect { .. } => (None, json!({ "protected": protected })),
        Change::VersionStatus { version_id, .. } => {
            let status = sqlx::query_scalar!(
                r#"select status as "status: ModelVersionStatus" from model_version where version_id = $1"#,
                version_id
            )
            .fetch_one(&mut *conn)
            .await?;
            (Some(*version_id), json!({ "status": status.as_str() }))
        }
        _ => (None, Value::Null),
    };
    Ok((Target { model_id: Some(model_id), endpoint_id: None, alias, version_id, name: model_name }, base))
}

/// The target's state now, to compare with a request's base; `None` when
/// the target is gone.
pub(crate) async fn current_base(
    conn: &mut PgConnection,
    pool: &sqlx::PgPool,
    team_id: Uuid,
    change: &Change,
) -> Result<Option<Value>, AppError> {
    match target(conn, pool, team_id, change).await {
        Ok((_, base)) => Ok(Some(base)),
        Err(AppError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Refuses an endpoint change that the endpoint's own domain function
/// would refuse, or that changes nothing.
async fn check_endpoint_change(ctx: &Ctx, team: (&str, Uuid), change: &Change) -> Result<(), AppError> {
    use crate::endpoints::domain::{check_change, check_new};
    match change {
        Change::EndpointCreate { endpoint } => check_new(ctx, team, endpoint).await,
        Change::EndpointUpdate { endpoint_id, update } => {
            check_change(ctx, team.1, *endpoint_id, Some(update), None).await
        }
        Change::EndpointWeights { endpoint_id, weights } => {
            let weights = crate::endpoints::types::Weights { weights: weights.clone() };
            check_change(ctx, team.1, *endpoint_id, None, Some(&weights)).await
        }
        Change::EndpointDelete { endpoint_id } => check_change(ctx, team.1, *endpoint_id, None, None).await,
        Change::EndpointRollout { endpoint_id, rollout } => {
            crate::endpoints::rollouts::check(ctx, team.1, *endpoint_id, rollout).await
        }
        Change::EndpointBandit { endpoint_id, bandit } => {
            crate::endpoints::bandit::check(ctx, team.1, *endpoint_id, bandit).await
        }
        _ => Ok(()),
    }
}

/// Refuses a change that is malformed or changes nothing, with the field to blame.
async fn check_change(
    ctx: &Ctx,
    conn: &mut PgConnection,
    team: (&str, Uuid),
    change: &Change,
    target: &Target,
    base: &Value,
) -> Result<(), AppError> {
    if crate::kernel::changes::kinds::is_endpoint(change.kind()) {
        return check_endpoint_change(ctx, team, change).await;
    }
    if let Some(alias) = &target.alias {
        crate::registry::aliases::alias_name(alias).map_err(|m| AppError::field("change.alias", m))?;
    }
    let current_version = base["version_id"].as_str().and_then(|v| v.parse::<Uuid>().ok());
    match change {
        Change::AliasMove { model_id, version_id, alias } => {
            let number = sqlx::query_scalar!(
                "select number from model_version where version_id = $1 and model_id = $2",
                version_id,
                model_id
            )
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| AppError::field("change.version_id", "Name a version of this model."))?;
            if current_version == Some(*version_id) {
                return Err(AppError::field(
                    "change.version_id",
                    format!("Alias {alias} names version {number} already: nothing would change."),
                ));
            }
        }
        Change::AliasDelete { alias, .. }
        | Change::AliasProtect { alias, .. }
        | Change::AliasUnprotect { alias, .. }
            if current_version.is_none() && base.get("version_id").is_some() =>
        {
            return Err(AppError::NotFound(format!("Alias {alias}")));
        }
        Change::AliasDelete { .. } => {}
        Change::AliasProtect { alias, .. } | Change::AliasUnprotect { alias, .. } => {
            let exists = sqlx::query_scalar!(
                r#"select exists(select 1 from model_alias where model_id = $1 and alias = $2) as "e!""#,
                target.model_id,
                alias
            )
            .fetch_one(&mut *conn)
            .await?;
            if !exists {
                return Err(AppError::NotFound(format!("Alias {alias}")));
            }
            let wants = matches!(change, Change::AliasProtect { .. });
            if base["protected"].as_bool() == Some(wants) {
                let state = if wants { "protected" } else { "not protected" };
                return Err(AppError::field("change.kind", format!("Alias {alias} is {state} already.")));
            }
        }
        Change::VersionStatus { status, .. } => {
            if !matches!(status, ModelVersionStatus::Approved | ModelVersionStatus::Rejected) {
                return Err(AppError::field("change.status", "A request decides Approved or Rejected."));
            }
            let from = match base["status"].as_str() {
                Some("Approved") => ModelVersionStatus::Approved,
                Some("Rejected") => ModelVersionStatus::Rejected,
                Some("Archived") => ModelVersionStatus::Archived,
                _ => ModelVersionStatus::PendingManualApproval,
            };
            if from == *status {
                return Err(AppError::field("change.status", format!("The version is {} already.", from.as_str())));
            }
            if !from.may_become(*status) {
                return Err(AppError::field(
                    "change.status",
                    format!("A version that is {} cannot become {}.", from.as_str(), status.as_str()),
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// The rule of the most specific policy covering the target (the model's
/// alias, the model, the kind), with its expiry; the default when none does.
async fn rule_for(
    conn: &mut PgConnection,
    team_id: Uuid,
    kind: &str,
    target: &Target,
) -> Result<(Rule, i32), AppError> {
    let policy = sqlx::query!(
        r#"select approvals_required, min_role as "min_role: Role", require_admin, expires_after_hours
           from approval_policy
           where team_id = $1 and kind = $2 and (model_id is null or model_id = $3) and (alias is null or alias = $4)
           order by (alias is not null) desc, (model_id is not null) desc limit 1"#,
        team_id,
        kind,
        target.model_id,
        target.alias
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match policy {
        Some(p) => (
            Rule { approvals_required: p.approvals_required, min_role: p.min_role, require_admin: p.require_admin },
            p.expires_after_hours,
        ),
        // deleting an endpoint is an admin's decision (directly, only admins may)
        None if kind == crate::kernel::changes::kinds::ENDPOINT_DELETE => {
            (Rule { min_role: Role::Admin, ..DEFAULT_RULE }, DEFAULT_EXPIRY_HOURS)
        }
        None => (DEFAULT_RULE, DEFAULT_EXPIRY_HOURS),
    })
}

fn text(raw: &str, field: &str, min: usize, max: usize) -> Result<String, AppError> {
    let t = raw.trim();
    let n = t.chars().count();
    if n < min || n > max {
        let what =
            if min > 0 { format!("Use {min} to {max} characters.") } else { format!("Use at most {max} characters.") };
        return Err(AppError::field(field, what));
    }
    Ok(t.to_owned())
}

async fn event(
    conn: &mut PgConnection,
    request: Uuid,
    actor: Option<Uuid>,
    action: &str,
    from: Option<State>,
    to: Option<State>,
    comment: &str,
) -> Result<(), AppError> {
    sqlx::query!(
        "insert into change_request_event (event_id, request_id, actor_id, action, from_state, to_state, comment)
         values ($1, $2, $3, $4, $5, $6, $7)",
        Uuid::now_v7(),
        request,
        actor,
        action,
        from as Option<State>,
        to as Option<State>,
        comment
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Proposes a change (members and up of the team).
pub async fn create(ctx: &Ctx, team: &str, input: NewRequest) -> Result<ChangeRequest, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::Contribute).await?;
    let actor = ctx.actor()?;
    let title = text(&input.title, "title", 1, 200)?;
    let justification = text(&input.justification, "justification", 0, 10_000)?;
    let mut tx = ctx.pool().begin().await?;
    let (target, base) = target(&mut tx, ctx.pool(), team.id, &input.change).await?;
    check_change(ctx, &mut tx, (&team.slug, team.id), &input.change, &target, &base).await?;
    let kind = input.change.kind();
    let (rule, hours) = rule_for(&mut tx, team.id, kind, &target).await?;
    let id = Uuid::now_v7();
    sqlx::query!(
        "insert into change_request (request_id, team_id, kind, model_id, alias, version_id, proposal, base, title,
                                     justification, author_id, approvals_required, min_role, require_admin, expires_at,
                                     endpoint_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, now() + make_interval(hours => $15),
                 $16)",
        id,
        team.id,
        kind,
        target.model_id,
        target.alias,
        target.version_id,
        json!(input.change),
        base,
        title,
        justification,
        actor.user_id,
        rule.approvals_required,
        rule.min_role as Role,
        rule.require_admin,
        hours,
        target.endpoint_id
    )
    .execute(&mut *tx)
    .await?;
    event(&mut tx, id, Some(actor.user_id), "open", None, Some(State::Open), &justification).await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team.id),
            action: "change_request.opened",
            target_type: "change_request",
            target_id: Some(id.to_string()),
            summary: json!({ "after": { "kind": kind, "change": input.change, "base": base, "title": title,
                                        "target": target.name } }),
        },
    )
    .await?;
    tx.commit().await?;
    get(ctx, id).await
}

/// A request's row as the domain needs it.
#[derive(sqlx::FromRow)]
struct Row {
    team_id: Uuid,
    team: String,
    model_id: Option<Uuid>,
    proposal: Value,
    base: Value,
    title: String,
    justification: String,
    author_id: Uuid,
    author: String,
    state: State,
    approvals_required: i32,
    min_role: Role,
    require_admin: bool,
    revision: i32,
    error: Option<String>,
    expires_at: time::OffsetDateTime,
    created_at: time::OffsetDateTime,
    applied_at: Option<time::OffsetDateTime>,
    my_role: Option<Role>,
}

async fn row(conn: &mut PgConnection, id: Uuid, me: Uuid, lock: bool) -> Result<Option<Row>, AppError> {
    let lock = if lock { " for update of r" } else { "" };
    let q = format!(
        r#"select r.team_id, t.slug as team, r.model_id, r.proposal, r.base, r.title, r.justification, r.author_id,
                  u.email as author, r.state, r.approvals_required, r.min_role, r.require_admin, r.revision,
                  r.error, r.expires_at, r.created_at, r.applied_at, tm.role as my_role
           from change_request r join team t on t.team_id = r.team_id join app_user u on u.user_id = r.author_id
           left join team_member tm on tm.team_id = r.team_id and tm.user_id = $2
           where r.request_id = $1{lock}"#
    );
    Ok(sqlx::query_as::<_, Row>(&q).bind(id).bind(me).fetch_optional(conn).await?)
}

/// The request `id` if the caller may read its team (another team's is not found).
async fn readable(ctx: &Ctx, conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Row, AppError> {
    let actor = ctx.actor()?;
    let r = row(conn, id, actor.user_id, lock).await?.ok_or_else(|| AppError::NotFound("Change request".into()))?;
    crate::kernel::roles::authorize_owned(&actor.principal(), Action::ReadTeam, r.my_role, "Change request")?;
    Ok(r)
}

/// The role a reviewer reviews with: their team role, or admin for a site admin.
fn review_role(ctx: &Ctx, r: &Row) -> Option<Role> {
    let site_admin = ctx.actor.as_ref().is_some_and(|a| a.is_site_admin);
    if site_admin { Some(Role::Admin) } else { r.my_role }
}

/// Why the caller may not review `r`, if they may not.
fn review_refusal(ctx: &Ctx, r: &Row) -> Option<AppError> {
    let me = ctx.actor.as_ref()?.user_id;
    if me == r.author_id {
        return Some(AppError::Conflict {
            field: None,
            message: "You opened this request: another reviewer decides on it.".into(),
        });
    }
    match review_role(ctx, r) {
        Some(role) if role >= r.min_role => None,
        _ => Some(AppError::Forbidden),
    }
}

fn transition(state: State, e: Event) -> Result<State, AppError> {
    next(state, e).map_err(|m| AppError::Conflict { field: Some("state".into()), message: m })
}

/// The approvals of the current revision and whether one is an admin's.
async fn tally(conn: &mut PgConnection, id: Uuid, revision: i32) -> Result<(i32, bool), AppError> {
    let r = sqlx::query!(
        r#"select count(*) as "n!", coalesce(bool_or(role = 'admin'), false) as "admin!"
           from change_request_review where request_id = $1 and revision = $2 and decision = 'approve'"#,
        id,
        revision
    )
    .fetch_one(conn)
    .await?;
    Ok((i32::try_from(r.n).unwrap_or(i32::MAX), r.admin))
}

/// Marks the request stale when its target changed since its base; true when it did.
async fn went_stale(ctx: &Ctx, tx: &mut PgConnection, id: Uuid, r: &Row) -> Result<bool, AppError> {
    let change: Change = serde_json::from_value(r.proposal.clone()).map_err(anyhow::Error::from)?;
    if current_base(tx, ctx.pool(), r.team_id, &change).await?.as_ref() == Some(&r.base) {
        return Ok(false);
    }
    let to = transition(r.state, Event::Invalidate)?;
    let why = "The target changed since the request was proposed.";
    sqlx::query!(
        "update change_request set state = $2, error = $3, updated_at = now() where request_id = $1",
        id,
        to as State,
        why
    )
    .execute(&mut *tx)
    .await?;
    let actor = ctx.actor.as_ref().map(|a| a.user_id);
    event(tx, id, actor, "stale", Some(r.state), Some(to), why).await?;
    Ok(true)
}

/// Approves the request (an eligible reviewer, not its author); the
/// approval that reaches the quorum writes the outbox row.
pub async fn approve(ctx: &Ctx, id: Uuid, d: Decision) -> Result<ChangeRequest, AppError> {
    let comment = text(&d.comment, "comment", 0, 10_000)?;
    let actor = ctx.actor()?.clone();
    let mut tx = ctx.pool().begin().await?;
    let r = readable(ctx, &mut tx, id, true).await?;
    transition(r.state, Event::Approve)?;
    if let Some(refusal) = review_refusal(ctx, &r) {
        return Err(refusal);
    }
    if went_stale(ctx, &mut tx, id, &r).await? {
        tx.commit().await?;
        return Err(AppError::Conflict {
            field: Some("state".into()),
            message: "The target changed since the request was proposed: it is stale now. Open a new request.".into(),
        });
    }
    let role = review_role(ctx, &r).unwrap_or(Role::Viewer);
    let added = sqlx::query!(
        "insert into change_request_review (request_id, reviewer_id, revision, decision, role, comment)
         values ($1, $2, $3, 'approve', $4, $5) on conflict do nothing",
        id,
        actor.user_id,
        r.revision,
        role as Role,
        comment
    )
    .execute(&mut *tx)
    .await?;
    if added.rows_affected() == 0 {
        // approving twice counts once
        tx.commit().await?;
        return get(ctx, id).await;
    }
    let (approvals, admin) = tally(&mut tx, id, r.revision).await?;
    let quorum = approvals >= r.approvals_required && (!r.require_admin || admin);
    let to = transition(r.state, if quorum { Event::Quorum } else { Event::Approve })?;
    if quorum {
        sqlx::query!("update change_request set state = $2, updated_at = now() where request_id = $1", id, to as State)
            .execute(&mut *tx)
            .await?;
        sqlx::query!("insert into change_request_outbox (request_id) values ($1)", id).execute(&mut *tx).await?;
    }
    event(&mut tx, id, Some(actor.user_id), "approve", Some(r.state), Some(to), &comment).await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(r.team_id),
            action: "change_request.approved",
            target_type: "change_request",
            target_id: Some(id.to_string()),
            summary: json!({ "approvals": approvals, "required": r.approvals_required, "quorum": quorum,
                             "comment": comment, "before": { "state": r.state.as_str() },
                             "after": { "state": to.as_str() } }),
        },
    )
    .await?;
    tx.commit().await?;
    if quorum {
        crate::kernel::changes::fault_point("approvals:after-quorum");
        ctx.state.training_wake.notify_one();
    }
    get(ctx, id).await
}

/// Rejects the request (an eligible reviewer, not its author): final.
pub async fn reject(ctx: &Ctx, id: Uuid, d: Decision) -> Result<ChangeRequest, AppError> {
    let comment = text(&d.comment, "comment", 0, 10_000)?;
    let actor = ctx.actor()?.clone();
    let mut tx = ctx.pool().begin().await?;
    let r = readable(ctx, &mut tx, id, true).await?;
    let to = transition(r.state, Event::Reject)?;
    if let Some(refusal) = review_refusal(ctx, &r) {
        return Err(refusal);
    }
    let role = review_role(ctx, &r).unwrap_or(Role::Viewer);
    sqlx::query!(
        "insert into change_request_review (request_id, reviewer_id, revision, decision, role, comment)
         values ($1, $2, $3, 'reject', $4, $5)
         on conflict (request_id, reviewer_id, revision) do update set decision = 'reject', comment = $5",
        id,
        actor.user_id,
        r.revision,
        role as Role,
        comment
    )
    .execute(&mut *tx)
    .await?;
    close(ctx, &mut tx, id, &r, to, "reject", &comment, "change_request.rejected").await?;
    tx.commit().await?;
    get(ctx, id).await
}

/// Withdraws the request (its author, or a team admin).
pub async fn withdraw(ctx: &Ctx, id: Uuid, d: Decision) -> Result<ChangeRequest, AppError> {
    let comment = text(&d.comment, "comment", 0, 10_000)?;
    let actor = ctx.actor()?.clone();
    let mut tx = ctx.pool().begin().await?;
    let r = readable(ctx, &mut tx, id, true).await?;
    let admin = review_role(ctx, &r) == Some(Role::Admin);
    if actor.user_id != r.author_id && !admin {
        return Err(AppError::Forbidden);
    }
    let to = transition(r.state, Event::Withdraw)?;
    close(ctx, &mut tx, id, &r, to, "withdraw", &comment, "change_request.withdrawn").await?;
    tx.commit().await?;
    get(ctx, id).await
}

#[allow(clippy::too_many_arguments)]
async fn close(
    ctx: &Ctx,
    tx: &mut PgConnection,
    id: Uuid,
    r: &Row,
    to: State,
    action: &str,
    comment: &str,
    audit: &str,
) -> Result<(), AppError> {
    sqlx::query!("update change_request set state = $2, updated_at = now() where request_id = $1", id, to as State)
        .execute(&mut *tx)
        .await?;
    let actor = ctx.actor()?.user_id;
    event(tx, id, Some(actor), action, Some(r.state), Some(to), comment).await?;
    ctx.record(
        tx,
        NewEvent {
            team_id: Some(r.team_id),
            action: audit,
            target_type: "change_request",
            target_id: Some(id.to_string()),
            summary: json!({ "comment": comment, "before": { "state": r.state.as_str() },
                             "after": { "state": to.as_str() } }),
        },
    )
    .await?;
    Ok(())
}

/// Edits an open request (its author): a new revision, whose base is the
/// target's state now; approvals given so far stop counting.
pub async fn edit(ctx: &Ctx, id: Uuid, input: RequestEdit) -> Result<ChangeRequest, AppError> {
    let actor = ctx.actor()?.clone();
    let mut tx = ctx.pool().begin().await?;
    let r = readable(ctx, &mut tx, id, true).await?;
    if actor.user_id != r.author_id {
        return Err(AppError::Forbidden);
    }
    transition(r.state, Event::Edit)?;
    let title = input.title.as_deref().map(|t| text(t, "title", 1, 200)).transpose()?.unwrap_or(r.title.clone());
    let justification = input
        .justification
        .as_deref()
        .map(|t| text(t, "justification", 0, 10_000))
        .transpose()?
        .unwrap_or(r.justification.clone());
    let change = match input.change {
        Some(c) => c,
        None => serde_json::from_value(r.proposal.clone()).map_err(anyhow::Error::from)?,
    };
    let (target, base) = target(&mut tx, ctx.pool(), r.team_id, &change).await?;
    check_change(ctx, &mut tx, (&r.team, r.team_id), &change, &target, &base).await?;
    sqlx::query!(
        "update change_request set kind = $2, model_id = $3, alias = $4, version_id = $5, proposal = $6, base = $7,
                title = $8, justification = $9, revision = revision + 1, updated_at = now(), endpoint_id = $10
         where request_id = $1",
        id,
        change.kind(),
        target.model_id,
        target.alias,
        target.version_id,
        json!(change),
        base,
        title,
        justification,
        target.endpoint_id
    )
    .execute(&mut *tx)
    .await?;
    event(&mut tx, id, Some(actor.user_id), "edit", Some(r.state), Some(r.state), "").await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(r.team_id),
            action: "change_request.edited",
            target_type: "change_request",
            target_id: Some(id.to_string()),
            summary: json!({ "before": { "change": r.proposal, "title": r.title },
                             "after": { "change": change, "title": title } }),
        },
    )
    .await?;
    tx.commit().await?;
    get(ctx, id).await
}

/// One request with its diff, reviews and timeline (readers of its team).
pub async fn get(ctx: &Ctx, id: Uuid) -> Result<ChangeRequest, AppError> {
    let mut conn = ctx.pool().acquire().await?;
    let r = readable(ctx, &mut conn, id, false).await?;
    let change: Change = serde_json::from_value(r.proposal.clone()).map_err(anyhow::Error::from)?;
    let reviews = sqlx::query!(
        r#"select u.email, v.role as "role: Role", v.decision, v.comment, v.revision, v.created_at
           from change_request_review v join app_user u on u.user_id = v.reviewer_id
           where v.request_id = $1 order by v.created_at"#,
        id
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|v| Review {
        counts: v.revision == r.revision && v.decision == "approve",
        reviewer: v.email,
        role: v.role,
        decision: v.decision,
        comment: v.comment,
        revision: v.revision,
        at: v.created_at,
    })
    .collect::<Vec<_>>();
    let timeline = sqlx::query!(
        r#"select u.email as "email?", e.action, e.to_state as "to_state: State", e.comment, e.created_at
           from change_request_event e left join app_user u on u.user_id = e.actor_id
           where e.request_id = $1 order by e.event_id"#,
        id
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|e| TimelineEntry {
        actor: e.email,
        action: e.action,
        to_state: e.to_state,
        comment: e.comment,
        at: e.created_at,
    })
    .collect();
    let diff = diff(&mut conn, &r, &change).await?;
    // who may still give an approval that counts: members of the rule's
    // role or above, not the author, not disabled, undecided on this revision
    let waiting_on = if r.state == State::Open {
        sqlx::query_scalar!(
            r#"select u.email from team_member m join app_user u on u.user_id = m.user_id
               where m.team_id = $1 and m.role >= $2 and m.user_id <> $3 and u.disabled_at is null
                 and not exists (select 1 from change_request_review v
                                 where v.request_id = $4 and v.revision = $5 and v.reviewer_id = m.user_id)
               order by (m.role = 'admin') desc, u.email limit 50"#,
            r.team_id,
            r.min_role as Role,
            r.author_id,
            id,
            r.revision
        )
        .fetch_all(&mut *conn)
        .await?
    } else {
        Vec::new()
    };
    let me = &ctx.actor()?.email;
    let decided = reviews.iter().any(|v| v.revision == r.revision && v.reviewer == *me);
    let can_review = r.state == State::Open && review_refusal(ctx, &r).is_none() && !decided;
    Ok(ChangeRequest {
        id,
        team: r.team.clone(),
        change,
        title: r.title.clone(),
        justification: r.justification.clone(),
        author: r.author.clone(),
        state: r.state,
        rule: Rule { approvals_required: r.approvals_required, min_role: r.min_role, require_admin: r.require_admin },
        approvals: i32::try_from(reviews.iter().filter(|v| v.counts).count()).unwrap_or(i32::MAX),
        revision: r.revision,
        diff,
        reviews,
        timeline,
        error: r.error.clone(),
        can_review,
        waiting_on,
        expires_at: r.expires_at,
        created_at: r.created_at,
        applied_at: r.applied_at,
    })
}

/// A production variant as a split shows it: name, version, weight.
type Side = Vec<(String, Uuid, f64)>;

/// An endpoint change for people: the production variants' weights before
/// (the request's base) and after, the versions they serve with their
/// metrics, the shadow and the data capture.
async fn endpoint_diff(conn: &mut PgConnection, r: &Row, change: &Change) -> Result<Diff, AppError> {
    use crate::approvals::types::SplitRow;
    let variants = r.base["variants"].as_array().cloned().unwrap_or_default();
    let before: Side = variants
        .iter()
        .filter(|v| v["shadow_percent"].is_null())
        .filter_map(|v| {
            Some((v["name"].as_str()?.to_owned(), v["version_id"].as_str()?.parse().ok()?, v["weight"].as_f64()?))
        })
        .collect();
    let shadow_before = variants
        .iter()
        .find(|v| !v["shadow_percent"].is_null())
        .map(|v| (v["name"].as_str().unwrap_or_default().to_owned(), v["shadow_percent"].as_i64().unwrap_or_default()));
    let capture_before = r.base["capture_percent"].as_i64();
    let as_side = |vs: &[crate::endpoints::types::NewVariant]| -> Side {
        vs.iter().map(|v| (v.name.trim().to_owned(), v.version_id, v.weight)).collect()
    };
    let as_shadow =
        |s: &Option<crate::endpoints::types::NewShadow>| s.as_ref().map(|s| (s.name.clone(), i64::from(s.percent)));
    let (name, after, shadow_after, capture_after) = match change {
        Change::EndpointCreate { endpoint } => (
            endpoint.name.trim().to_owned(),
            as_side(&endpoint.variants),
            as_shadow(&endpoint.shadow),
            endpoint.capture_percent.map(i64::from),
        ),
        Change::EndpointUpdate { update, .. } => (
            r.base["name"].as_str().unwrap_or_default().to_owned(),
            update.variants.as_deref().map_or_else(|| before.clone(), as_side),
            update.shadow.as_ref().map_or_else(|| shadow_before.clone(), as_shadow),
            update.capture_percent.map_or(capture_before, |c| c.map(i64::from)),
        ),
        Change::EndpointWeights { weights, .. } => {
            let after = before
                .iter()
                .map(|(n, v, w)| (n.clone(), *v, weights.iter().find(|x| x.variant == *n).map_or(*w, |x| x.weight)))
                .collect();
            (r.base["name"].as_str().unwrap_or_default().to_owned(), after, shadow_before.clone(), capture_before)
        }
        // where the rollout ends: the candidate with the baseline's and its own weight
        Change::EndpointRollout { rollout, .. } => {
            let now: Vec<(String, f64)> = before.iter().map(|(n, _, w)| (n.clone(), *w)).collect();
            // each variant's version: its own, or for a candidate to be added the one the rollout names
            let version =
                |name: &str| before.iter().find(|x| x.0 == name).map(|x| x.1).or(rollout.candidate_version_id);
            let after: Side = crate::endpoints::types::rollout_end(&now, &rollout.baseline, &rollout.candidate)
                .into_iter()
                .filter_map(|(n, w)| Some((n.clone(), version(&n)?, w)))
                .collect();
            (r.base["name"].as_str().unwrap_or_default().to_owned(), after, shadow_before.clone(), capture_before)
        }
        // the bandit starts from the split as it is
        Change::EndpointBandit { .. } => (
            r.base["name"].as_str().unwrap_or_default().to_owned(),
            before.clone(),
            shadow_before.clone(),
            capture_before,
        ),
        _ => (r.base["name"].as_str().unwrap_or_default().to_owned(), Vec::new(), None, None),
    };
    let mut ids: Vec<Uuid> = before.iter().chain(&after).map(|x| x.1).collect();
    ids.dedup();
    let rows = sqlx::query!(
        r#"select v.version_id, m.name || ' v' || v.number as "label!", v.number,
                  v.status as "status: ModelVersionStatus", v.metrics
           from model_version v join model m on m.model_id = v.model_id
           where v.version_id = any($1) order by m.name, v.number"#,
        &ids
    )
    .fetch_all(&mut *conn)
    .await?;
    let label =
        |id: &Uuid| rows.iter().find(|v| v.version_id == *id).map_or_else(|| "?".to_owned(), |v| v.label.clone());
    let mut split: Vec<SplitRow> = before
        .iter()
        .map(|(n, v, w)| SplitRow { variant: n.clone(), version: label(v), before: Some(*w), after: None })
        .collect();
    for (n, v, w) in &after {
        match split.iter_mut().find(|s| s.variant == *n) {
            Some(row) => {
                row.after = Some(*w);
                row.version = label(v);
            }
            None => split.push(SplitRow { variant: n.clone(), version: label(v), before: None, after: Some(*w) }),
        }
    }
    let say = |side: &Side, shadow: &Option<(String, i64)>, capture: Option<i64>| {
        let weights: Vec<f64> = side.iter().map(|x| x.2).collect();
        let shares = crate::endpoints::types::shares(&weights);
        let mut parts: Vec<String> =
            side.iter().zip(shares).map(|((n, v, _), s)| format!("{n} ({}) {:.1} %", label(v), s * 100.0)).collect();
        if let Some((n, p)) = shadow {
            parts.push(format!("shadow {n} copies {p} %"));
        }
        if let Some(p) = capture {
            parts.push(format!("capture {p} %"));
        }
        parts.join(", ")
    };
    let (before_text, after_text) = match change {
        Change::EndpointCreate { .. } => ("no endpoint".to_owned(), say(&after, &shadow_after, capture_after)),
        Change::EndpointDelete { .. } => (say(&before, &shadow_before, capture_before), "deleted".to_owned()),
        Change::EndpointRollout { rollout, .. } => (
            say(&before, &shadow_before, capture_before),
            format!(
                "{} after a {} rollout from {} to {} ({} % steps, {} s; rolled back if a guardrail fails)",
                say(&after, &shadow_after, capture_after),
                rollout.strategy,
                rollout.baseline,
                rollout.candidate,
                rollout.step_percent,
                rollout.interval_seconds
            ),
        ),
        Change::EndpointBandit { bandit, .. } => (
            say(&before, &shadow_before, capture_before),
            format!(
                "weights set by Thompson sampling on {} ({}, {} is better) every {} s, each variant between {} % \
                 and {} % of the traffic",
                bandit.metric,
                bandit.kind,
                if bandit.goal == "decrease" { "lower" } else { "higher" },
                bandit.interval_seconds,
                bandit.min_share * 100.0,
                bandit.max_share * 100.0
            ),
        ),
        Change::EndpointUpdate {
            update: crate::endpoints::types::EndpointUpdate { deployment: Some(d), .. }, ..
        } => (
            say(&before, &shadow_before, capture_before),
            format!(
                "{}, deployed by SageMaker blue/green: traffic {}{}, {} s bake after each shift{}",
                say(&after, &shadow_after, capture_after),
                d.traffic.replace('_', " "),
                d.step_percent.map(|p| format!(" {p} %")).unwrap_or_default(),
                d.wait_seconds,
                if d.alarm_names.is_empty() {
                    String::new()
                } else {
                    format!(", rolled back on alarm {}", d.alarm_names.join(", "))
                }
            ),
        ),
        _ => (say(&before, &shadow_before, capture_before), say(&after, &shadow_after, capture_after)),
    };
    let versions = rows
        .iter()
        .map(|v| VersionRef {
            id: v.version_id,
            number: v.number,
            status: v.status,
            metrics: serde_json::from_value::<BTreeMap<String, f64>>(v.metrics.clone()).unwrap_or_default(),
        })
        .collect();
    Ok(Diff { target: format!("{}/{name} endpoint", r.team), before: before_text, after: after_text, versions, split })
}

/// Before → after for people: the alias's versions with their metrics, or
/// the status; an endpoint's split ([`endpoint_diff`]).
async fn diff(conn: &mut PgConnection, r: &Row, change: &Change) -> Result<Diff, AppError> {
    if crate::kernel::changes::kinds::is_endpoint(change.kind()) {
        return endpoint_diff(conn, r, change).await;
    }
    let version = async |conn: &mut PgConnection, id: Option<Uuid>| -> Result<Option<VersionRef>, AppError> {
        let Some(id) = id else { return Ok(None) };
        let v = sqlx::query!(
            r#"select number, status as "status: ModelVersionStatus", metrics from model_version where version_id = $1"#,
            id
        )
        .fetch_optional(conn)
        .await?;
        Ok(v.map(|v| VersionRef {
            id,
            number: v.number,
            status: v.status,
            metrics: serde_json::from_value::<BTreeMap<String, f64>>(v.metrics).unwrap_or_default(),
        }))
    };
    let model = sqlx::query_scalar!(
        r#"select t.slug || '/' || m.name as "n!" from model m join team t on t.team_id = m.team_id
           where m.model_id = $1"#,
        r.model_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .unwrap_or_default();
    let base_version = r.base["version_id"].as_str().and_then(|v| v.parse::<Uuid>().ok());
    let number = |v: &Option<VersionRef>| v.as_ref().map_or_else(|| "none".to_owned(), |v| format!("v{}", v.number));
    Ok(match change {
        Change::AliasMove { alias, version_id, .. } => {
            let from = version(conn, base_version).await?;
            let to = version(conn, Some(*version_id)).await?;
            Diff {
                target: format!("{model} alias {alias}"),
                before: number(&from),
                after: number(&to),
                versions: from.into_iter().chain(to).collect(),
                split: Vec::new(),
            }
        }
        Change::AliasDelete { alias, .. } => {
            let from = version(conn, base_version).await?;
            Diff {
                target: format!("{model} alias {alias}"),
                before: number(&from),
                after: "deleted".into(),
                versions: from.into_iter().collect(),
                split: Vec::new(),
            }
        }
        Change::AliasProtect { alias, .. } | Change::AliasUnprotect { alias, .. } => {
            let wants = matches!(change, Change::AliasProtect { .. });
            let say = |p: bool| if p { "protected" } else { "not protected" }.to_owned();
            Diff {
                target: format!("{model} alias {alias}"),
                before: say(!wants),
                after: say(wants),
                versions: Vec::new(),
                split: Vec::new(),
            }
        }
        Change::VersionStatus { version_id, status } => {
            let v = version(conn, Some(*version_id)).await?;
            Diff {
                target: format!("{model} {}", number(&v)),
                before: r.base["status"].as_str().unwrap_or_default().to_owned(),
                after: status.as_str().to_owned(),
                versions: v.into_iter().collect(),
                split: Vec::new(),
            }
        }
        _ => return Err(AppError::Internal),
    })
}

/// The team's requests, newest first, filtered.
pub async fn list(ctx: &Ctx, team: &str, q: RequestQuery) -> Result<Page<RequestSummary>, AppError> {
    let (team, role) = crate::teams::domain::load(ctx, team, Action::ReadTeam).await?;
    let actor = ctx.actor()?;
    let limit = page::limit(q.limit)?;
    let after: Option<Uuid> = page::ssr::decode(q.cursor.as_deref())?;
    if let Some(kind) = &q.kind
        && !crate::kernel::changes::kinds::ALL.contains(&kind.as_str())
    {
        return Err(AppError::query("kind", format!("Use one of {}.", crate::kernel::changes::kinds::ALL.join(", "))));
    }
    let my_role = if actor.is_site_admin { Some(Role::Admin) } else { role };
    let rows = sqlx::query!(
        r#"select r.request_id, t.slug, r.kind, r.title, u.email, r.state as "state: State", r.approvals_required,
                  (select count(*) from change_request_review v where v.request_id = r.request_id
                     and v.revision = r.revision and v.decision = 'approve') as "approvals!",
                  r.created_at
           from change_request r join team t on t.team_id = r.team_id join app_user u on u.user_id = r.author_id
           where r.team_id = $1 and r.request_id < $2
             and ($3::change_request_state is null or r.state = $3)
             and ($4::text is null or r.kind = $4)
             and ($5::text is null or u.email = $5)
             and (not $6 or (r.state = 'open' and r.author_id <> $7 and $8::team_role >= r.min_role
                  and not exists (select 1 from change_request_review v where v.request_id = r.request_id
                                  and v.revision = r.revision and v.reviewer_id = $7)))
             and (not $10 or r.author_id = $7)
           order by r.request_id desc limit $9"#,
        team.id,
        after.unwrap_or(Uuid::max()),
        q.state as Option<State>,
        q.kind,
        q.author,
        q.needs_my_review,
        actor.user_id,
        my_role as Option<Role>,
        limit + 1,
        q.mine
    )
    .fetch_all(ctx.pool())
    .await?;
    let items = rows
        .into_iter()
        .map(|r| RequestSummary {
            id: r.request_id,
            team: r.slug,
            kind: r.kind,
            title: r.title,
            author: r.email,
            state: r.state,
            approvals: i32::try_from(r.approvals).unwrap_or(i32::MAX),
            approvals_required: r.approvals_required,
            created_at: r.created_at,
        })
        .collect();
    Ok(page::ssr::build(items, limit, |r: &RequestSummary| r.id))
}

/// How many open requests, in all the caller's teams, wait for the caller's review.
pub async fn waiting_for_me(ctx: &Ctx) -> Result<i64, AppError> {
    let actor = ctx.actor()?;
    Ok(sqlx::query_scalar!(
        r#"select count(*) as "n!" from change_request r
           left join team_member tm on tm.team_id = r.team_id and tm.user_id = $1
           where r.state = 'open' and r.author_id <> $1
             and (case when $2 then 'admin'::team_role else tm.role end) >= r.min_role
             and not exists (select 1 from change_request_review v where v.request_id = r.request_id
                             and v.revision = r.revision and v.reviewer_id = $1)"#,
        actor.user_id,
        actor.is_site_admin
    )
    .fetch_one(ctx.pool())
    .await?)
}
