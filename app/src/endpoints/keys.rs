//! Invoke keys: an access key id and secret for one endpoint, so that the
//! AWS SDKs' SageMaker Runtime clients (`boto3.client("sagemaker-runtime",
//! endpoint_url=<capstan>)`, the Rust SDK's `invoke_endpoint`) call the
//! gateway unchanged, signing with AWS Signature Version 4. Members create,
//! list and revoke them; the secret is shown once.

use crate::endpoints::invoke::{Failure, Invocation, Invoked, send};
use crate::endpoints::routes::route;
use crate::endpoints::types::{CreatedInvokeKey, InvokeKey, NewInvokeKey};
use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::Action;
use hmac::{Hmac, Mac as _};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

/// How far a request's `X-Amz-Date` may be from now (as on AWS).
const MAX_SKEW: time::Duration = time::Duration::minutes(15);

fn random(n: usize, alphabet: &[u8]) -> String {
    use rand::Rng as _;
    let mut rng = rand::rng();
    (0..n).map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())])).collect()
}

struct Row {
    key_id: String,
    endpoint_id: Uuid,
    name: String,
    created_by: String,
    created_at: time::OffsetDateTime,
    revoked_at: Option<time::OffsetDateTime>,
}

impl From<Row> for InvokeKey {
    fn from(r: Row) -> Self {
        Self {
            id: r.key_id,
            endpoint_id: r.endpoint_id,
            name: r.name,
            created_by: r.created_by,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        }
    }
}

/// A new key for endpoint `id` (members).
pub async fn create(ctx: &Ctx, id: Uuid, input: NewInvokeKey) -> Result<CreatedInvokeKey, AppError> {
    let (endpoint, team_id) = crate::endpoints::domain::load(ctx, id, Action::Contribute).await?;
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::field("name", "Name the key in 1-100 characters (what uses it)."));
    }
    let actor = ctx.actor()?;
    let key_id = format!("AKCP{}", random(16, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"));
    let secret = random(40, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
    let mut tx = ctx.pool().begin().await?;
    sqlx::query!(
        "insert into endpoint_invoke_key (key_id, endpoint_id, name, secret, created_by) values ($1, $2, $3, $4, $5)",
        key_id,
        id,
        name,
        secret,
        actor.user_id
    )
    .execute(&mut *tx)
    .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "endpoint.invoke_key_created",
            target_type: "endpoint",
            target_id: Some(id.to_string()),
            summary: json!({ "endpoint": endpoint.name, "key_id": key_id, "name": name }),
        },
    )
    .await?;
    tx.commit().await?;
    let key = list(ctx, id).await?.into_iter().find(|k| k.id == key_id).ok_or(AppError::Internal)?;
    Ok(CreatedInvokeKey { key, secret_access_key: secret })
}

/// The endpoint's keys, newest first (members; never the secrets).
pub async fn list(ctx: &Ctx, id: Uuid) -> Result<Vec<InvokeKey>, AppError> {
    crate::endpoints::domain::load(ctx, id, Action::Contribute).await?;
    Ok(sqlx::query_as!(
        Row,
        "select k.key_id, k.endpoint_id, k.name, u.email as created_by, k.created_at, k.revoked_at
         from endpoint_invoke_key k join app_user u on u.user_id = k.created_by
         where k.endpoint_id = $1 order by k.created_at desc",
        id
    )
    .fetch_all(ctx.pool())
    .await?
    .into_iter()
    .map(InvokeKey::from)
    .collect())
}

/// Revokes a key (members): signatures made with it are refused at once, on every process.
pub async fn revoke(ctx: &Ctx, id: Uuid, key_id: &str) -> Result<(), AppError> {
    let (endpoint, team_id) = crate::endpoints::domain::load(ctx, id, Action::Contribute).await?;
    let mut tx = ctx.pool().begin().await?;
    let done = sqlx::query!(
        "update endpoint_invoke_key set revoked_at = now()
         where key_id = $1 and endpoint_id = $2 and revoked_at is null",
        key_id,
        id
    )
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(AppError::NotFound("Invoke key".into()));
    }
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "endpoint.invoke_key_revoked",
            target_type: "endpoint",
            target_id: Some(id.to_string()),
            summary: json!({ "endpoint": endpoint.name, "key_id": key_id }),
        },
    )
    .await?;
    tx.commit().await?;
    ctx.state.cache.invalidate(&format!("invoke-key:{key_id}"));
    Ok(())
}

/// What a valid signature proves: the endpoint its key may invoke.
#[derive(Debug, Clone)]
pub struct Signed {
    pub key_id: String,
    pub endpoint_id: Uuid,
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
struct Authorization<'a> {
    key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256")?.trim_start();
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',').map(str::trim) {
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let mut scope = credential?.split('/');
    let (key_id, date, region, service, terminal) =
        (scope.next()?, scope.next()?, scope.next()?, scope.next()?, scope.next()?);
    if terminal != "aws4_request" || scope.next().is_some() {
        return None;
    }
    Some(Authorization {
        key_id,
        date,
        region,
        service,
        signed_headers: signed?.split(';').collect(),
        signature: signature?,
    })
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The AWS Signature Version 4 of a request, as the SDKs compute it.
#[allow(clippy::too_many_arguments)]
pub fn signature(
    secret: &str,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    body: &[u8],
    amz_date: &str,
    scope: (&str, &str, &str),
) -> String {
    let (date, region, service) = scope;
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    pairs.sort();
    let canonical_query = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let canonical_headers: String =
        headers.iter().map(|(k, v)| format!("{k}:{}\n", v.split_whitespace().collect::<Vec<_>>().join(" "))).collect();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let canonical = format!(
        "{method}\n{path}\n{canonical_query}\n{canonical_headers}\n{}\n{}",
        signed.join(";"),
        hex::encode(Sha256::digest(body))
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
    let key = [date, region, service, "aws4_request"]
        .into_iter()
        .fold(format!("AWS4{secret}").into_bytes(), |key, part| hmac(&key, part.as_bytes()));
    hex::encode(hmac(&key, to_sign.as_bytes()))
}

/// Checks a request signed with AWS Signature Version 4 by an invoke key.
pub async fn verify(
    state: &crate::kernel::state::AppState,
    authorization: &str,
    method: &str,
    path: &str,
    query: &str,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<Signed, Failure> {
    let denied = |m: &str| Failure::AccessDenied(m.to_owned());
    let auth = parse_authorization(authorization)
        .ok_or_else(|| denied("The Authorization header is not a SigV4 signature."))?;
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| denied("A signed request needs X-Amz-Date."))?;
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let at = time::PrimitiveDateTime::parse(amz_date, &format)
        .map_err(|_| denied("X-Amz-Date is not a date such as 20261203T120000Z."))?
        .assume_utc();
    if (time::OffsetDateTime::now_utc() - at).abs() > MAX_SKEW || !amz_date.starts_with(auth.date) {
        return Err(denied("Signature expired: X-Amz-Date is more than 15 minutes from the server's time."));
    }
    if !auth.signed_headers.contains(&"host") {
        return Err(denied("The signature must cover the Host header."));
    }
    let key = key(state, auth.key_id).await.map_err(|e| Failure::Internal(e.to_string()))?;
    let Some((secret, endpoint_id)) = key else {
        return Err(Failure::UnrecognizedClient("The security token included in the request is invalid.".into()));
    };
    let mut signed = Vec::new();
    for name in &auth.signed_headers {
        let values: Vec<&str> = headers.get_all(*name).iter().filter_map(|v| v.to_str().ok()).map(str::trim).collect();
        if values.is_empty() {
            return Err(denied(&format!("The signed header {name} is missing.")));
        }
        signed.push(((*name).to_owned(), values.join(",")));
    }
    let expected =
        signature(&secret, method, path, query, &signed, body, amz_date, (auth.date, auth.region, auth.service));
    if !crate::accounts::domain::constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        return Err(denied(
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ));
    }
    Ok(Signed { key_id: auth.key_id.to_owned(), endpoint_id })
}

/// Routes an invocation signed with an invoke key (checked by [`verify`]),
/// which is good for its endpoint only.
pub async fn invoke_signed(
    state: &crate::kernel::state::AppState,
    name: &str,
    key: &Signed,
    invocation: Invocation,
) -> Result<Invoked, Failure> {
    let route = route(state, name).await.map_err(|e| Failure::Internal(e.to_string()))?;
    match route {
        Some(route) if route.endpoint_id == key.endpoint_id => send(state, &route, invocation).await,
        _ => Err(Failure::AccessDenied(format!("Access key {} may not invoke endpoint {name}.", key.key_id))),
    }
}

/// A live key's secret and endpoint, from the cache when it can.
async fn key(state: &crate::kernel::state::AppState, key_id: &str) -> Result<Option<(String, Uuid)>, AppError> {
    if key_id.len() != 20 || !key_id.starts_with("AKCP") {
        return Ok(None);
    }
    let pool = state.pool.clone();
    let id = key_id.to_owned();
    state
        .cache
        .get_or_load(format!("invoke-key:{key_id}"), std::time::Duration::from_secs(300), async move {
            let row = sqlx::query!(
                "select secret, endpoint_id from endpoint_invoke_key where key_id = $1 and revoked_at is null",
                id
            )
            .fetch_optional(&pool)
            .await?;
            Ok::<_, AppError>(row.map(|r| (r.secret, r.endpoint_id)))
        })
        .await
}

#[cfg(test)]
mod tests {
    /// The example of AWS's Signature Version 4 documentation (the
    /// `get-vanilla` case of the SigV4 test suite).
    #[test]
    fn signs_as_aws_documents() {
        let headers = vec![
            ("host".to_owned(), "example.amazonaws.com".to_owned()),
            ("x-amz-date".to_owned(), "20150830T123600Z".to_owned()),
        ];
        let sig = super::signature(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "GET",
            "/",
            "",
            &headers,
            b"",
            "20150830T123600Z",
            ("20150830", "us-east-1", "service"),
        );
        assert_eq!(sig, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    }
}
