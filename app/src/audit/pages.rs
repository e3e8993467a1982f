//! The audit page: events newest first, filtered by team, action prefix,
//! target and time.

use crate::audit::rpc::list_audit_events;
use crate::audit::types::AuditQuery;
use leptos::prelude::*;

/// The distinguishing end of an id (`…3f9a1c2e`); UUID v7 ids share their
/// time-ordered start with every event of the same moment.
fn short_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 12 {
        id.to_owned()
    } else {
        format!("…{}", chars[chars.len() - 8..].iter().collect::<String>())
    }
}

#[component]
pub fn AuditPage() -> impl IntoView {
    use leptos_router::hooks::use_query_map;
    let query = use_query_map();
    let filter = move || {
        let q = query.get();
        let get = |k: &str| q.get(k).filter(|v| !v.is_empty());
        AuditQuery {
            team: get("team"),
            actor: get("actor"),
            action: get("action"),
            from: get("from"),
            to: get("to"),
            cursor: get("cursor"),
            limit: None,
        }
    };
    let events = Resource::new(filter, list_audit_events);
    let value = move |k: &'static str| query.with(|q| q.get(k).unwrap_or_default());
    view! {
        <crate::kernel::widgets::PageHeader title="Audit log" subtitle="Every change, who made it, and when. Each team's events are hash-chained."/>
        <form method="get" class="filters">
            <label>"Team" <input name="team" placeholder="team slug" value=move || value("team")/></label>
            <label>"Actor" <input name="actor" type="email" placeholder="email" value=move || value("actor")/></label>
            <label>"Action" <input name="action" placeholder="team.created or training_job" title="An action, or the start of one" value=move || value("action")/></label>
            <label>"From" <input name="from" placeholder="2026-01-01" title="A date (UTC) or an RFC 3339 time" value=move || value("from")/></label>
            <label>"To (inclusive)" <input name="to" placeholder="2026-12-31" title="A date (UTC, the whole day counts) or an RFC 3339 time" value=move || value("to")/></label>
            <input type="hidden" name="trail" value=""/>
            <button type="submit">"Filter"</button>
        </form>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || events.get().map(|res| match res {
                Err(e) => view! { <crate::kernel::widgets::ErrorBox error=e/> }.into_any(),
                Ok(page) if page.items.is_empty() => view! { <p class="empty">"No events match."</p> }.into_any(),
                Ok(page) => {
                    // `trail` remembers the cursors of the newer pages, so a reader can go back
                    let here = query.with_untracked(|q| q.get("cursor").unwrap_or_default());
                    let trail = query.with_untracked(|q| q.get("trail").unwrap_or_default());
                    let with = |cursor: &str, trail: &str| {
                        let mut q = query.get_untracked();
                        q.replace("cursor", cursor.to_owned());
                        q.replace("trail", trail.to_owned());
                        format!("?{}", q.to_query_string().trim_start_matches('?'))
                    };
                    let next = page.next_cursor.clone().map(|c| {
                        let deeper = if here.is_empty() && trail.is_empty() { "-".to_owned() } else { format!("{trail}.{}", if here.is_empty() { "-" } else { &here }) };
                        with(&c, deeper.trim_start_matches('.'))
                    });
                    let newer = (!here.is_empty()).then(|| {
                        let (rest, last) = trail.rsplit_once('.').unwrap_or(("", trail.as_str()));
                        with(if last == "-" { "" } else { last }, rest)
                    });
                    let newest = (!here.is_empty()).then(|| with("", ""));
                    view! {
                        <div class="table-wrap">
                        <table class="data audit-table">
                            <thead><tr><th>"Time"</th><th>"Actor"</th><th>"Team"</th><th>"Action"</th><th>"Target"</th><th>"Change"</th></tr></thead>
                            <tbody>
                            {page.items.into_iter().map(|e| view! {
                                <tr>
                                    <td class="nowrap"><crate::kernel::widgets::Time at=e.occurred_at/></td>
                                    <td>{e.actor}{e.actor_token_id.map(|_| view! { <span class="pill">"token"</span> })}</td>
                                    <td>{e.team_slug.unwrap_or_else(|| "—".into())}</td>
                                    <td><code>{e.action}</code></td>
                                    <td>{e.target_type}" "{e.target_id.map(|id| {
                                        // ids are time-ordered: their end tells them apart
                                        let short = short_id(&id);
                                        view! { <span class="muted target-id" title=id.clone() data-id=id>{short}</span> }
                                    })}</td>
                                    <td>{
                                        let summary = e.summary.to_string();
                                        let full = summary.clone();
                                        view! { <code class="summary" title=full>{summary}</code> }
                                    }</td>
                                </tr>
                            }).collect_view()}
                            </tbody>
                        </table>
                        </div>
                        <p class="pager">
                            {newest.map(|href| view! { <a href=href class="button secondary">"⇤ Newest"</a>" " })}
                            {newer.map(|href| view! { <a href=href class="button secondary" data-testid="newer">"← Newer events"</a>" " })}
                            {next.map(|href| view! { <a href=href class="button secondary" data-testid="older">"Older events →"</a> })}
                        </p>
                    }.into_any()
                }
            })}
        </Suspense>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_ids_show_the_distinguishing_end() {
        assert_eq!(super::short_id("019ae0f1-7c2b-7d3e-9a51-3f9a1c2e4b6d"), "…1c2e4b6d");
        assert_eq!(super::short_id("ml.m5.large"), "ml.m5.large");
    }
}
