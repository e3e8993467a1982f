//! Searching the team's versions of every model by metric, parameter, tag
//! or status, in the filter language the API takes; the results can be
//! compared side by side.

use crate::kernel::format::encode;
use crate::kernel::widgets::{ErrorBox, PageHeader, Time};
use crate::registry::pages::status_class;
use crate::registry::rpc::search_versions;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

#[component]
pub fn VersionSearchPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let get = move |key: &'static str| move || query.with(|q| q.get(key).filter(|v| !v.is_empty()));
    let (filter, order, cursor) = (get("filter"), get("order_by"), get("cursor"));
    let results = Resource::new(
        move || (team(), filter(), order(), cursor()),
        |(team, filter, order, cursor)| search_versions(team, filter, order, cursor),
    );
    view! {
        <PageHeader title="Search versions" subtitle="Every model of the team: filter by metrics, parameters, tags and status, order by a metric, then compare."/>
        <section class="card">
            <form method="get" class="stack" id="version-search">
                <label>"Filter"
                    <input name="filter" class="mono" value=move || filter().unwrap_or_default()
                        placeholder="metrics.auc > 0.9 and params.C = '1.0' and status = 'Approved'"/>
                </label>
                <div class="toolbar">
                    <label>"Order by " <input name="order_by" class="mono" size="24" value=move || order().unwrap_or_default() placeholder="metrics.auc desc"/></label>
                    <button type="submit">"Search"</button>
                </div>
                <p class="muted">
                    "Fields: metrics.<name>, params.<name>, tags.<key>, status, created_at, number, model, source, run_id. "
                    "Compare with = != < <= > >= like; join with and, or and parentheses."
                </p>
            </form>
        </section>
        <section class="card">
            <Suspense fallback=|| view! { <p class="muted">"Searching…"</p> }>
                {move || results.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(page) if page.items.is_empty() => view! {
                        <p class="empty">"No version matches. Loosen the filter, or register versions from completed training jobs."</p>
                    }.into_any(),
                    Ok(page) => {
                        let metric_names: std::collections::BTreeSet<String> =
                            page.items.iter().flat_map(|v| v.metrics.keys().cloned()).collect();
                        let metric_names: Vec<String> = metric_names.into_iter().take(6).collect();
                        view! {
                            <form method="get" action=format!("/teams/{}/compare", team()) id="compare-form">
                                <div class="table-wrap"><table class="data" id="search-results">
                                    <thead><tr>
                                        <th>"Compare"</th><th>"Version"</th><th>"Status"</th>
                                        {metric_names.iter().map(|m| view! { <th class="num">{m.clone()}</th> }).collect_view()}
                                        <th>"Registered"</th>
                                    </tr></thead>
                                    <tbody>
                                    {page.items.into_iter().map(|v| view! {
                                        <tr data-version=format!("{}/{}", v.model, v.number)>
                                            <td><input type="checkbox" name="v" value=v.id.to_string() aria-label=format!("Compare {} v{}", v.model, v.number)/></td>
                                            <td><a href=format!("/teams/{}/model-versions/{}", v.team, v.id)><strong>{format!("{} v{}", v.model, v.number)}</strong></a></td>
                                            <td><span class=status_class(v.status)>{v.status.as_str()}</span></td>
                                            {metric_names.iter().map(|m| view! { <td class="num">{v.metrics.get(m).map(|x| format!("{x:.4}"))}</td> }).collect_view()}
                                            <td><Time at=v.created_at/></td>
                                        </tr>
                                    }).collect_view()}
                                    </tbody>
                                </table></div>
                                <button type="submit" class="secondary">"Compare selected (2 to 5)"</button>
                            </form>
                            {page.next_cursor.map(|c| {
                                let here = format!(
                                    "?filter={}&order_by={}&cursor={c}",
                                    encode(&filter().unwrap_or_default()),
                                    encode(&order().unwrap_or_default())
                                );
                                view! { <p><a href=here>"More versions →"</a></p> }
                            })}
                        }.into_any()
                    }
                })}
            </Suspense>
        </section>
    }
}
