//! An endpoint's event timeline, read from the team's audit log (the record
//! `capstan audit verify` checks), not from a table of our own: created,
//! variants changed, weights changed, in service, failed, keys, sample
//! traffic, deleted — each with who, when, and what changed in words.

use crate::endpoints::types::EndpointEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::Action;
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

/// How many events the timeline shows, newest first.
const LIMIT: i64 = 100;

/// The endpoint's events, newest first (readers of the team).
pub async fn list(ctx: &Ctx, id: Uuid) -> Result<Vec<EndpointEvent>, AppError> {
    let (team_id, _) = crate::endpoints::domain::authorized(ctx, id, Action::ReadTeam).await?;
    let rows = sqlx::query!(
        r#"select audit_event_id as id, occurred_at as at, actor_label as by, action, summary
           from audit_event
           where target_type = 'endpoint' and target_id = $2 and team_id = $1
           order by occurred_at desc, audit_event_id desc limit $3"#,
        team_id,
        id.to_string(),
        LIMIT
    )
    .fetch_all(ctx.pool())
    .await?;
    // the versions the events name, as "model vN", in one query
    let ids: Vec<Uuid> = rows
        .iter()
        .flat_map(|r| variants_of(&r.summary))
        .filter_map(|v| v.get("version_id").and_then(Value::as_str).and_then(|s| s.parse().ok()))
        .collect();
    let names: HashMap<Uuid, String> = sqlx::query!(
        "select v.version_id, m.name, v.number from model_version v join model m on m.model_id = v.model_id
         where v.version_id = any($1) and m.team_id = $2",
        &ids,
        team_id
    )
    .fetch_all(ctx.pool())
    .await?
    .into_iter()
    .map(|r| (r.version_id, format!("{} v{}", r.name, r.number)))
    .collect();
    Ok(rows
        .into_iter()
        .map(|r| EndpointEvent {
            id: r.id,
            at: r.at,
            by: r.by,
            text: describe(&r.action, &r.summary, &names),
            action: r.action,
        })
        .collect())
}

fn variants_of(summary: &Value) -> impl Iterator<Item = &Value> {
    ["before", "after"].into_iter().filter_map(|side| summary.get(side)?.get("variants")?.as_array()).flatten()
}

/// What an event did, in words.
pub fn describe(action: &str, summary: &Value, versions: &HashMap<Uuid, String>) -> String {
    let after = &summary["after"];
    let before = &summary["before"];
    match action {
        "endpoint.created" => {
            let variants = after["variants"].as_array().map(Vec::as_slice).unwrap_or_default();
            let mut text = format!(
                "Created with {}",
                variants.iter().map(|v| variant(v, versions)).collect::<Vec<_>>().join("; ")
            );
            if let Some(p) = after["capture_percent"].as_i64() {
                text.push_str(&format!("; data capture {p} %"));
            }
            text
        }
        "endpoint.updated" => {
            let changes = variant_changes(before, after, versions);
            if changes.is_empty() { "Variants redeployed unchanged".into() } else { changes.join("; ") }
        }
        "endpoint.weights_changed" => {
            let old = before["weights"].as_object();
            let new = after["weights"].as_object();
            let changed: Vec<String> = new
                .into_iter()
                .flatten()
                .filter_map(|(name, w)| {
                    let was = old.and_then(|o| o.get(name));
                    (was != Some(w)).then(|| format!("{name} {} → {}", number(was.unwrap_or(&Value::Null)), number(w)))
                })
                .collect();
            if changed.is_empty() {
                "Weights set, unchanged".into()
            } else {
                format!("Weights: {}", changed.join(", "))
            }
        }
        "endpoint.in_service" => "In service".into(),
        "endpoint.failed" => match after["failure_reason"].as_str() {
            Some(reason) => format!("Failed: {reason}"),
            None => "Failed".into(),
        },
        "endpoint.deleted" => "Deleted".into(),
        "endpoint.invoke_key_created" => format!(
            "Invoke key {} created ({})",
            summary["key_id"].as_str().unwrap_or("?"),
            summary["name"].as_str().unwrap_or_default()
        ),
        "endpoint.invoke_key_revoked" => format!("Invoke key {} revoked", summary["key_id"].as_str().unwrap_or("?")),
        "endpoint.sample_traffic" => format!(
            "Sample traffic: {} requests/s for {} s ({})",
            number(&after["rate"]),
            number(&after["seconds"]),
            after["content_type"].as_str().unwrap_or_default()
        ),
        other => other.strip_prefix("endpoint.").unwrap_or(other).replace('_', " "),
    }
}

fn number(v: &Value) -> String {
    match v.as_f64() {
        // shortest form: 1, 0.5, 9.25
        Some(n) => format!("{n}"),
        None => "—".into(),
    }
}

fn version(v: &Value, versions: &HashMap<Uuid, String>) -> String {
    v["version_id"]
        .as_str()
        .and_then(|s| s.parse::<Uuid>().ok())
        .and_then(|id| versions.get(&id).cloned())
        .unwrap_or_else(|| "a deleted version".into())
}

/// `champion (churn v1, 1 × ml.m5.large, weight 9)`, or a shadow's share.
fn variant(v: &Value, versions: &HashMap<Uuid, String>) -> String {
    let share = match v["shadow_percent"].as_i64() {
        Some(p) => format!("shadow copy of {p} %"),
        None => format!("weight {}", number(&v["weight"])),
    };
    format!(
        "{} ({}, {} × {}, {share})",
        v["name"].as_str().unwrap_or("?"),
        version(v, versions),
        number(&v["instance_count"]),
        v["instance_type"].as_str().unwrap_or("?")
    )
}

/// What changed between two lists of variants, by name.
fn variant_changes(before: &Value, after: &Value, versions: &HashMap<Uuid, String>) -> Vec<String> {
    let by_name = |side: &Value| -> Vec<(String, Value)> {
        side["variants"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| (v["name"].as_str().unwrap_or_default().to_owned(), v.clone()))
            .collect()
    };
    let (old, new) = (by_name(before), by_name(after));
    let find = |list: &[(String, Value)], name: &str| list.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let mut changes = Vec::new();
    for (name, v) in &new {
        match find(&old, name) {
            None => changes.push(format!("added {}", variant(v, versions))),
            Some(was) => {
                let mut parts = Vec::new();
                if was["version_id"] != v["version_id"] {
                    parts.push(format!("{} → {}", version(&was, versions), version(v, versions)));
                }
                if was["instance_type"] != v["instance_type"] || was["instance_count"] != v["instance_count"] {
                    parts.push(format!(
                        "{} × {} → {} × {}",
                        number(&was["instance_count"]),
                        was["instance_type"].as_str().unwrap_or("?"),
                        number(&v["instance_count"]),
                        v["instance_type"].as_str().unwrap_or("?")
                    ));
                }
                if was["weight"] != v["weight"] && v["shadow_percent"].is_null() {
                    parts.push(format!("weight {} → {}", number(&was["weight"]), number(&v["weight"])));
                }
                if was["shadow_percent"] != v["shadow_percent"] && !v["shadow_percent"].is_null() {
                    parts.push(format!(
                        "shadow copy {} % → {} %",
                        number(&was["shadow_percent"]),
                        number(&v["shadow_percent"])
                    ));
                }
                if !parts.is_empty() {
                    changes.push(format!("{name}: {}", parts.join(", ")));
                }
            }
        }
    }
    for (name, _) in &old {
        if find(&new, name).is_none() {
            changes.push(format!("removed {name}"));
        }
    }
    if before["capture_percent"] != after["capture_percent"] {
        let capture = |v: &Value| v.as_i64().map_or_else(|| "off".to_owned(), |p| format!("{p} %"));
        changes.push(format!(
            "data capture {} → {}",
            capture(&before["capture_percent"]),
            capture(&after["capture_percent"])
        ));
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_read_as_what_changed() {
        let v1 = Uuid::now_v7();
        let v2 = Uuid::now_v7();
        let versions = HashMap::from([(v1, "churn v1".to_owned()), (v2, "churn v2".to_owned())]);
        let champion = json!({"name": "champion", "version_id": v1, "instance_type": "ml.m5.large",
                              "instance_count": 1, "weight": 1.0, "shadow_percent": null});
        let created = json!({"after": {"variants": [champion], "capture_percent": 10}});
        assert_eq!(
            describe("endpoint.created", &created, &versions),
            "Created with champion (churn v1, 1 × ml.m5.large, weight 1); data capture 10 %"
        );
        let challenger = json!({"name": "challenger", "version_id": v2, "instance_type": "ml.m5.large",
                                "instance_count": 1, "weight": 1.0, "shadow_percent": null});
        let mut scaled = champion.clone();
        scaled["instance_count"] = json!(2);
        scaled["weight"] = json!(9.0);
        let updated = json!({"before": {"variants": [champion], "capture_percent": 10},
                             "after": {"variants": [scaled, challenger], "capture_percent": null}});
        assert_eq!(
            describe("endpoint.updated", &updated, &versions),
            "champion: 1 × ml.m5.large → 2 × ml.m5.large, weight 1 → 9; \
             added challenger (churn v2, 1 × ml.m5.large, weight 1); data capture 10 % → off"
        );
        let removed = json!({"before": {"variants": [champion, challenger]}, "after": {"variants": [champion]}});
        assert_eq!(describe("endpoint.updated", &removed, &versions), "removed challenger");
        let weights = json!({"before": {"weights": {"champion": 9.0, "challenger": 1.0}},
                             "after": {"weights": {"champion": 5.0, "challenger": 1.0}}});
        assert_eq!(describe("endpoint.weights_changed", &weights, &versions), "Weights: champion 9 → 5");
        let failed = json!({"after": {"status": "Failed", "failure_reason": "variant a: process exited"}});
        assert_eq!(describe("endpoint.failed", &failed, &versions), "Failed: variant a: process exited");
        let unknown = json!({"after": {"variants": [{"name": "a", "version_id": Uuid::now_v7(), "instance_type": "ml.m5.large",
                                                      "instance_count": 1, "weight": 0.5, "shadow_percent": null}]}});
        assert_eq!(
            describe("endpoint.created", &unknown, &versions),
            "Created with a (a deleted version, 1 × ml.m5.large, weight 0.5)"
        );
    }
}
