//! The gateway's routing table of an endpoint: its production variants'
//! running sums of weights (for the weighted pick), the addresses of their
//! healthy processes in local mode, and the shadow; cached in every process
//! under `endpoint-route:<engine name>` and dropped by the database's
//! notifications when weights, variants, processes or faults change.

use crate::kernel::error::AppError;
use uuid::Uuid;

/// One production variant as the gateway routes to it.
#[derive(Debug, Clone)]
pub struct RouteVariant {
    pub name: String,
    /// The running sum of the weights up to and including this variant.
    pub cumulative: f64,
    pub weight: f64,
    /// Local mode: the processes answering `/ping`.
    pub addresses: Vec<std::net::SocketAddr>,
    /// Fault injection: the share of its invocations answered with a model
    /// error instead (0-1).
    pub fault: f64,
}

/// What the gateway needs to route an invocation of one endpoint.
#[derive(Debug, Clone)]
pub struct Route {
    pub endpoint_id: Uuid,
    pub team_id: Uuid,
    pub engine_name: String,
    pub backend: String,
    /// Production variants with a weight above 0 come first.
    pub variants: Vec<RouteVariant>,
    pub total: f64,
    /// The shadow and its sampling fraction (0-1].
    pub shadow: Option<(RouteVariant, f64)>,
    /// Every production variant name, for errors.
    pub names: Vec<String>,
    /// Data capture: the sampled fraction (0-1] and where in the bucket,
    /// `endpoints/<team>/<engine>/data-capture/<engine>/` (SageMaker's
    /// layout under the destination AWS mode gives it).
    pub capture: Option<(f64, String)>,
}

impl Route {
    /// The variant at `x` in [0, 1): the first whose running sum of weights
    /// passes `x × total` (each variant owns a slice as wide as its weight).
    pub fn pick(&self, x: f64) -> Option<&RouteVariant> {
        let target = x * self.total;
        let i = self.variants.partition_point(|v| v.cumulative <= target);
        self.variants.get(i.min(self.variants.len().saturating_sub(1))).filter(|v| v.weight > 0.0)
    }

    pub fn variant(&self, name: &str) -> Option<&RouteVariant> {
        self.variants.iter().find(|v| v.name == name)
    }
}

/// The routing table of endpoint `engine_name` (serving or not), from this
/// process's cache when it can; `None` when no endpoint has that name.
pub async fn route(
    state: &crate::kernel::state::AppState,
    engine_name: &str,
) -> Result<Option<std::sync::Arc<Route>>, AppError> {
    if !training::is_legal_job_name(engine_name) {
        return Ok(None);
    }
    let key = format!("endpoint-route:{engine_name}");
    state.cache.get_or_load(key, std::time::Duration::from_secs(60), load_route(&state.pool, engine_name)).await
}

async fn load_route(pool: &sqlx::PgPool, engine_name: &str) -> Result<Option<std::sync::Arc<Route>>, AppError> {
    let Some(head) = sqlx::query!(
        "select e.endpoint_id, e.team_id, e.engine_name, e.backend, e.capture_percent, t.slug
         from endpoint e join team t using (team_id)
         where e.engine_name = $1 and e.desired = 'running'",
        engine_name
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let variants = sqlx::query!(
        r#"select ev.name, ev.weight, ev.shadow_percent, f.error_percent as "fault?"
           from endpoint_variant ev
           left join endpoint_fault f on f.endpoint_id = ev.endpoint_id and f.variant = ev.name
           where ev.endpoint_id = $1 order by ev.position"#,
        head.endpoint_id
    )
    .fetch_all(pool)
    .await?;
    let instances = sqlx::query!(
        "select variant, address from endpoint_instance
         where endpoint_id = $1 and status = 'Healthy' and address is not null order by variant, ordinal",
        head.endpoint_id
    )
    .fetch_all(pool)
    .await?;
    let addresses = |variant: &str| -> Vec<std::net::SocketAddr> {
        instances
            .iter()
            .filter(|i| i.variant == variant)
            .filter_map(|i| i.address.as_deref().and_then(|a| a.parse().ok()))
            .collect()
    };
    let mut production: Vec<_> = variants.iter().filter(|v| v.shadow_percent.is_none()).collect();
    // weighted variants first, so a pick never lands on a zero-weight slice
    production.sort_by_key(|v| v.weight <= 0.0);
    let mut total = 0.0;
    let mut list = Vec::new();
    for v in &production {
        total += v.weight.max(0.0);
        list.push(RouteVariant {
            name: v.name.clone(),
            cumulative: total,
            weight: v.weight,
            addresses: addresses(&v.name),
            fault: f64::from(v.fault.unwrap_or(0)) / 100.0,
        });
    }
    let shadow = variants.iter().find_map(|v| {
        v.shadow_percent.map(|p| {
            (
                RouteVariant {
                    name: v.name.clone(),
                    cumulative: 0.0,
                    weight: 0.0,
                    addresses: addresses(&v.name),
                    fault: 0.0,
                },
                f64::from(p) / 100.0,
            )
        })
    });
    let names = production.iter().map(|v| v.name.clone()).collect();
    let capture = head.capture_percent.filter(|p| *p > 0).map(|p| {
        (
            f64::from(p) / 100.0,
            format!("endpoints/{}/{}/data-capture/{}/", head.slug, head.engine_name, head.engine_name),
        )
    });
    Ok(Some(std::sync::Arc::new(Route {
        endpoint_id: head.endpoint_id,
        team_id: head.team_id,
        engine_name: head.engine_name,
        backend: head.backend,
        variants: list,
        total,
        shadow,
        names,
        capture,
    })))
}
