//! 2 to 5 versions side by side: metrics (best highlighted, differences to
//! the first), parameters (differences marked), each metric's training
//! curves overlaid on one chart, and the lineages. The URL names the
//! versions (`?v=…&v=…`), so it can be shared.

use crate::kernel::chart::{ChartLine, LineChart};
use crate::kernel::widgets::{ErrorBox, PageHeader};
use crate::registry::pages::lineage::LineageGraph;
use crate::registry::rpc::compare_versions;
use crate::registry::types::Comparison;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use std::collections::BTreeSet;

#[component]
pub fn ComparePage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let ids = move || query.with(|q| q.get_all("v").unwrap_or_default().join(","));
    let result = Resource::new(move || (team(), ids()), |(team, ids)| compare_versions(team, ids));
    view! {
        <PageHeader title="Compare versions" subtitle="Metrics, parameters, training curves and lineage side by side."/>
        <p class="muted"><a href=move || format!("/teams/{}/model-versions", team())>"← Search versions"</a></p>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || result.get().map(|res| match res {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                Ok(c) => view! { <Sides c/> }.into_any(),
            })}
        </Suspense>
    }
}

/// Whether every version has the same value.
fn all_same<T: PartialEq>(values: &[Option<T>]) -> bool {
    values.windows(2).all(|w| w[0] == w[1])
}

#[component]
fn Sides(c: Comparison) -> impl IntoView {
    let names: Vec<String> = c.versions.iter().map(|v| format!("{} v{}", v.model, v.number)).collect();
    let metrics: BTreeSet<String> = c.versions.iter().flat_map(|v| v.metrics.keys().cloned()).collect();
    let params: BTreeSet<String> = c.versions.iter().flat_map(|v| v.parameters.keys().cloned()).collect();
    let charted: BTreeSet<String> = c.series.iter().flatten().map(|s| s.name.clone()).collect();
    let columns = c.versions.len();
    view! {
        <section class="card">
            <div class="table-wrap"><table class="data compare" id="compare">
                <thead><tr><th></th>{c.versions.iter().zip(&names).map(|(v, name)| view! {
                    <th><a href=format!("/teams/{}/model-versions/{}", v.team, v.id)>{name.clone()}</a><br/><span class="muted">{v.status.as_str()}</span></th>
                }).collect_view()}</tr></thead>
                <tbody>
                    <tr><th colspan=columns + 1>"Metrics"</th></tr>
                    {metrics.iter().map(|m| {
                        let best = c.best.get(m).copied();
                        let lower = c.lower_is_better.contains(m);
                        let first = c.versions.first().and_then(|v| v.metrics.get(m).copied());
                        view! {
                            <tr data-metric=m.clone()>
                                <th>{m.clone()}<span class="muted">{if lower { " (lower is better)" } else { "" }}</span></th>
                                {c.versions.iter().enumerate().map(|(i, v)| {
                                    let value = v.metrics.get(m).copied();
                                    let class = if best == Some(v.id) { "num best" } else { "num" };
                                    let delta = match (i, value, first) {
                                        (1.., Some(x), Some(f)) => Some(format!("{:+.4} vs first", x - f)),
                                        _ => None,
                                    };
                                    view! { <td class=class>{value.map_or_else(|| "—".to_owned(), |x| format!("{x:.4}"))}{delta.map(|d| view! { <span class="delta">{d}</span> })}</td> }
                                }).collect_view()}
                            </tr>
                        }
                    }).collect_view()}
                    <tr><th colspan=columns + 1>"Parameters"</th></tr>
                    {params.iter().map(|p| {
                        let values: Vec<Option<String>> = c.versions.iter().map(|v| v.parameters.get(p).cloned()).collect();
                        let class = if all_same(&values) { "mono" } else { "mono differs" };
                        view! {
                            <tr data-param=p.clone()>
                                <th>{p.clone()}</th>
                                {values.into_iter().map(|x| view! { <td class=class>{x.unwrap_or_else(|| "—".into())}</td> }).collect_view()}
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table></div>
        </section>
        <section class="card">
            <h2>"Training curves"</h2>
            {if charted.is_empty() {
                view! { <p class="empty">"None of these versions came from a training job with logged metrics."</p> }.into_any()
            } else {
                view! {
                    <div class="charts" id="compare-charts">
                        {charted.into_iter().map(|metric| {
                            let lines: Vec<ChartLine> = c.series.iter().zip(&names).filter_map(|(series, name)| {
                                series.iter().find(|s| s.name == metric).map(|s| ChartLine {
                                    label: name.clone(),
                                    values: s.points.iter().map(|p| p.value).collect(),
                                })
                            }).collect();
                            view! { <LineChart name=metric lines/> }
                        }).collect_view()}
                    </div>
                }.into_any()
            }}
        </section>
        <section class="card">
            <h2>"Lineage"</h2>
            <div class="lineages">
                {c.lineages.into_iter().zip(names).map(|(l, name)| view! {
                    <div><h3>{name}</h3><LineageGraph lineage=l/></div>
                }).collect_view()}
            </div>
        </section>
    }
}
