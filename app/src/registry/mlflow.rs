//! How the MLflow-compatible API names Capstan's models. An MLflow name is
//! `<team>/<model>`, or `<team>~<model>` where MLflow's own client refuses a
//! `/` (its alias calls); a caller who belongs to exactly one team may also
//! use the bare `<model>` (and sees bare names in answers). Searches look
//! through every team of the caller, or the one team a `name` in the
//! filter names (`name = 'ml/churn'`, `name like 'ml/%'`).

use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::page::{self, Page};
use crate::registry::filter::{self, Expr, Field, Value};
use crate::registry::types::Model;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

/// How long a resolved name is served from the cache at most (a change
/// reaches every process's cache when it commits; this bounds a lost
/// notification).
const NAME_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// The caller's teams, which decide how names are read and written.
pub struct Naming {
    /// (team id, slug) of each team the caller belongs to
    teams: Vec<(Uuid, String)>,
}

impl Naming {
    /// The caller's teams, from the cache when it can (a membership change
    /// announces `teams-of:<user>`; team slugs never change).
    pub async fn of(ctx: &Ctx) -> Result<Self, AppError> {
        let actor = ctx.actor()?;
        let cache = &ctx.state.cache;
        let key = format!("teams-of:{}", actor.user_id);
        let load = async {
            Ok::<_, AppError>(
                sqlx::query!(
                    "select t.team_id, t.slug from team_member m join team t on t.team_id = m.team_id
             where m.user_id = $1 order by t.slug",
                    actor.user_id
                )
                .fetch_all(ctx.pool())
                .await?
                .into_iter()
                .map(|r| (r.team_id, r.slug))
                .collect::<Vec<(Uuid, String)>>(),
            )
        };
        let teams = cache.get_or_load(key, NAME_TTL, load).await?;
        Ok(Self { teams })
    }

    fn only_team(&self) -> Option<&str> {
        match self.teams.as_slice() {
            [(_, slug)] => Some(slug),
            _ => None,
        }
    }

    /// The MLflow name of model `model` of team `team` (slug).
    pub fn name(&self, team: &str, model: &str) -> String {
        if self.only_team() == Some(team) { model.to_owned() } else { format!("{team}/{model}") }
    }

    /// The team (slug) and model name an MLflow name stands for.
    pub fn split(&self, name: &str) -> Result<(String, String), AppError> {
        let name = name.trim();
        if let Some((team, model)) = name.split_once(['/', '~']) {
            return Ok((team.to_owned(), model.to_owned()));
        }
        match self.only_team() {
            Some(team) => Ok((team.to_owned(), name.to_owned())),
            None if self.teams.is_empty() => Err(AppError::field(
                "name",
                format!("You belong to no team: name the model as '<team>/{name}' (a team a site admin may reach)."),
            )),
            None => Err(AppError::field(
                "name",
                format!(
                    "You belong to {} teams ({}): name the model as '<team>/{name}'.",
                    self.teams.len(),
                    self.teams.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }

    /// The model an MLflow name addresses. Whether the caller may act on it
    /// is checked by the domain function that acts.
    pub async fn model(&self, ctx: &Ctx, name: &str) -> Result<Uuid, AppError> {
        let (team, model) = self.split(name)?;
        // the key the registry's name lookups share (a rename or delete announces `model-name:`)
        let cache = &ctx.state.cache;
        let key = format!("model-name:{team}:{model}");
        let load = async {
            sqlx::query_scalar!(
                "select m.model_id from model m join team t on t.team_id = m.team_id where t.slug = $1 and m.name = $2",
                team,
                model
            )
            .fetch_optional(ctx.pool())
            .await?
            .ok_or_else(|| AppError::NotFound(format!("Registered model '{name}'")))
        };
        cache.get_or_load(key, NAME_TTL, load).await
    }

    /// The version `version` (its number, as text) of the model an MLflow name addresses.
    pub async fn version(&self, ctx: &Ctx, name: &str, version: &str) -> Result<Uuid, AppError> {
        let number: i32 = version
            .trim()
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| AppError::field("version", format!("'{version}' is not a version number.")))?;
        let model = self.model(ctx, name).await?;
        // a version's number never changes; its delete announces the key
        let cache = &ctx.state.cache;
        let key = format!("version-number:{model}:{number}");
        let load = async {
            sqlx::query_scalar!(
                "select version_id from model_version where model_id = $1 and number = $2",
                model,
                number
            )
            .fetch_optional(ctx.pool())
            .await?
            .ok_or_else(|| AppError::NotFound(format!("Model version '{name}' version {number}")))
        };
        cache.get_or_load(key, NAME_TTL, load).await
    }

    /// The teams a search looks through: the one a `name` in `filter` names
    /// with `team/…` (which must be one of the caller's), else all of them.
    pub fn search_teams(&self, filter: Option<&Expr>) -> Vec<Uuid> {
        let named = filter.and_then(named_team);
        self.teams.iter().filter(|(_, slug)| named.as_deref().is_none_or(|n| n == slug)).map(|(id, _)| *id).collect()
    }
}

/// The team a filter's `name` comparison names (`name = 'ml/churn'`), if
/// the filter requires it (it sits under `and`s only).
fn named_team(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Compare { field: Field::Model, value: Value::Text(v), .. } => {
            v.split_once(['/', '~']).map(|(team, _)| team.to_owned()).filter(|t| !t.contains(['%', '_']))
        }
        Expr::And(a, b) => named_team(a).or_else(|| named_team(b)),
        _ => None,
    }
}

/// Registered models of the caller's teams matching an MLflow filter
/// (`name` and `tags.<key>` comparisons), ordered by name (`name ASC`, the
/// default, or `name DESC`).
pub async fn search_models(
    ctx: &Ctx,
    naming: &Naming,
    filter: &str,
    order_by: Option<&str>,
    limit: i64,
    cursor: Option<&str>,
) -> Result<Listed, AppError> {
    let expr = filter::parse(filter).map_err(|e| AppError::query("filter", e.to_string()))?;
    if let Some(expr) = &expr {
        only_names_and_tags(expr)?;
    }
    let descending = match order_by.map(|o| o.trim().to_ascii_lowercase()) {
        None => false,
        Some(o) if o.is_empty() || o == "name" || o == "name asc" => false,
        Some(o) if o == "name desc" => true,
        Some(o) => {
            return Err(AppError::query(
                "order_by",
                format!("'{o}': registered models are ordered by name ASC or DESC."),
            ));
        }
    };
    let after: Option<(String, String)> = page::ssr::decode(cursor)?;
    let teams = naming.search_teams(expr.as_ref());
    // one team's pages come from the cache when they can (see registry::domain::list)
    if let [team] = teams.as_slice() {
        let cache = &ctx.state.cache;
        let prefix = crate::kernel::cache::PAGE_PREFIX;
        let key = format!("{prefix}{team}:mlflow-models:{descending}:{limit}:{}:{filter}", cursor.unwrap_or_default());
        let load = listed(ctx, teams, expr.as_ref(), descending, limit, after);
        return cache.get_or_load(key, crate::registry::domain::PAGE_TTL, load).await;
    }
    listed(ctx, teams, expr.as_ref(), descending, limit, after).await
}

/// A page of registered models as MLflow lists them: each model with its
/// newest version (MLflow's `latest_versions`), read together so that the
/// cache holds both.
#[derive(Clone)]
pub struct Listed {
    pub page: Page<Model>,
    /// The newest version of each model of the page that has one.
    pub latest: std::collections::HashMap<Uuid, crate::registry::types::ModelVersion>,
}

async fn listed(
    ctx: &Ctx,
    teams: Vec<Uuid>,
    expr: Option<&Expr>,
    descending: bool,
    limit: i64,
    after: Option<(String, String)>,
) -> Result<Listed, AppError> {
    let page = query_models(ctx, teams, expr, descending, limit, after).await?;
    let ids: Vec<Uuid> = page.items.iter().filter(|m| m.latest_version.is_some()).map(|m| m.id).collect();
    let latest =
        if ids.is_empty() { Default::default() } else { crate::registry::search::latest_of(ctx, &ids).await? };
    Ok(Listed { page, latest })
}

async fn query_models(
    ctx: &Ctx,
    teams: Vec<Uuid>,
    expr: Option<&Expr>,
    descending: bool,
    limit: i64,
    after: Option<(String, String)>,
) -> Result<Page<Model>, AppError> {
    let one_team = teams.len() == 1;
    let mut sql = QueryBuilder::<Postgres>::new(
        r#"select m.model_id as id, t.slug as team, m.name, m.description, m.tags, u.email as created_by,
                  m.created_at, m.archived_at,
                  m.version_count::int8 as version_count,
                  (select max(number) from model_version v where v.model_id = m.model_id) as latest_version,
                  coalesce((select jsonb_object_agg(a.alias, av.number) from model_alias a
                            join model_version av on av.version_id = a.version_id where a.model_id = m.model_id),
                           '{}') as aliases
           from model m join team t on t.team_id = m.team_id join app_user u on u.user_id = m.created_by
           where m.archived_at is null and m.team_id = any("#,
    );
    sql.push_bind(teams);
    sql.push(")");
    if let Some(expr) = expr {
        sql.push(" and ");
        model_condition(&mut sql, expr);
    }
    let dir = if descending { "desc" } else { "asc" };
    if let Some((team, name)) = after {
        sql.push(format!(" and (t.slug, m.name) {} (", if descending { "<" } else { ">" }));
        sql.push_bind(team);
        sql.push(", ");
        sql.push_bind(name);
        sql.push(")");
    }
    // within one team the slug is the same on every row: ordering by name
    // alone lets the (team, name) index serve the page without a sort
    if one_team {
        sql.push(format!(" order by m.name {dir} limit "));
    } else {
        sql.push(format!(" order by t.slug {dir}, m.name {dir} limit "));
    }
    sql.push_bind(limit + 1);
    let rows: Vec<ModelRow> = sql.build_query_as().fetch_all(ctx.pool()).await?;
    let items = rows.into_iter().map(Model::from).collect();
    Ok(page::ssr::build(items, limit, |m: &Model| (m.team.clone(), m.name.clone())))
}

#[derive(sqlx::FromRow)]
struct ModelRow {
    id: Uuid,
    team: String,
    name: String,
    description: String,
    tags: serde_json::Value,
    created_by: String,
    created_at: time::OffsetDateTime,
    archived_at: Option<time::OffsetDateTime>,
    version_count: Option<i64>,
    latest_version: Option<i32>,
    aliases: serde_json::Value,
}

impl From<ModelRow> for Model {
    fn from(r: ModelRow) -> Self {
        Self {
            id: r.id,
            team: r.team,
            name: r.name,
            description: r.description,
            tags: serde_json::from_value(r.tags).unwrap_or_default(),
            created_by: r.created_by,
            created_at: r.created_at,
            archived_at: r.archived_at,
            version_count: r.version_count.unwrap_or_default(),
            latest_version: r.latest_version,
            aliases: serde_json::from_value(r.aliases).unwrap_or_default(),
        }
    }
}

fn only_names_and_tags(expr: &Expr) -> Result<(), AppError> {
    match expr {
        Expr::And(a, b) | Expr::Or(a, b) => only_names_and_tags(a).and_then(|()| only_names_and_tags(b)),
        Expr::Compare { field: Field::Model | Field::Tag(_), .. } => Ok(()),
        Expr::Compare { .. } => {
            Err(AppError::query("filter", "Registered models are searched by name and tags.<key> only."))
        }
    }
}

fn model_condition(sql: &mut QueryBuilder<'_, Postgres>, expr: &Expr) {
    match expr {
        Expr::And(a, b) | Expr::Or(a, b) => {
            sql.push("(");
            model_condition(sql, a);
            sql.push(if matches!(expr, Expr::And(..)) { " and " } else { " or " });
            model_condition(sql, b);
            sql.push(")");
        }
        Expr::Compare { field, op, value } => {
            let text = match value {
                Value::Text(t) => t.clone(),
                Value::Number(n) => n.to_string(),
            };
            let o = op.sql();
            match field {
                Field::Tag(key) => {
                    // a model without the tag is not equal to any value (MLflow's own client
                    // leaves prompts out with `tags.`mlflow.prompt.is_prompt` != 'true'`)
                    let o = if *op == filter::Op::Ne { "is distinct from" } else { o };
                    sql.push("(m.tags ->> ");
                    sql.push_bind(key.clone());
                    sql.push(format!("::text) {o} "));
                    sql.push_bind(text);
                }
                _ => {
                    sql.push(format!("{} {o} ", crate::registry::search::model_name_column(&text)));
                    sql.push_bind(text);
                }
            }
        }
    }
}

/// The aliases naming each of `versions` (model id, version id), from the
/// cache where it can (an alias change announces `aliases-of:<model>:`);
/// the versions it does not hold are read in one query.
pub async fn aliases_of(
    ctx: &Ctx,
    versions: &[(Uuid, Uuid)],
) -> Result<std::collections::HashMap<Uuid, Vec<String>>, AppError> {
    let cache = &ctx.state.cache;
    let key = |model: &Uuid, version: &Uuid| format!("aliases-of:{model}:{version}");
    let mut named = std::collections::HashMap::with_capacity(versions.len());
    let mut missing = Vec::new();
    for (model, version) in versions {
        match cache.get::<Vec<String>>(&key(model, version)) {
            Some(names) => {
                named.insert(*version, names);
            }
            None => missing.push((*model, *version)),
        }
    }
    if missing.is_empty() {
        return Ok(named);
    }
    let ticket = cache.ticket();
    let ids: Vec<Uuid> = missing.iter().map(|(_, v)| *v).collect();
    let rows =
        sqlx::query!("select version_id, alias from model_alias where version_id = any($1) order by alias", &ids)
            .fetch_all(ctx.pool())
            .await?;
    let mut found: std::collections::HashMap<Uuid, Vec<String>> = std::collections::HashMap::new();
    for r in rows {
        found.entry(r.version_id).or_default().push(r.alias);
    }
    for (model, version) in missing {
        let names = found.remove(&version).unwrap_or_default();
        cache.put(key(&model, &version), names.clone(), ticket, NAME_TTL);
        named.insert(version, names);
    }
    Ok(named)
}
