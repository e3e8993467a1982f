//! The team's training jobs with this month's spend and a status filter.

use crate::kernel::format::usd;
use crate::kernel::widgets::{ErrorBox, PageHeader, Time, use_refresh};
use crate::training::pages::{JobStatus, duration};
use crate::training::rpc::{list_training_jobs, training_month_cost};
use crate::training::types::{TrainingJobSummary, TrainingStatus};
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

/// `/teams/:team/training`
#[component]
pub fn TrainingListPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let status = move || query.with(|q| q.get("status").filter(|s| !s.is_empty()));
    let cursor = move || query.with(|q| q.get("cursor").filter(|s| !s.is_empty()));
    let active = RwSignal::new(false);
    let tick = use_refresh(active);
    let jobs =
        Resource::new(move || (team(), status(), cursor(), tick.get()), |(t, s, c, _)| list_training_jobs(t, s, c));
    let month = Resource::new(move || (team(), tick.get()), |(t, _)| training_month_cost(t));
    Effect::new(move |_| {
        if let Some(Ok(page)) = jobs.get() {
            active.set(page.items.iter().any(|j| !j.status.is_final()));
        }
    });
    let selected = move |s: &str| status().as_deref() == Some(s);
    let navigate = leptos_router::hooks::use_navigate();
    view! {
        <PageHeader title="Training" subtitle="Jobs this team ran on SageMaker or the local runner, with their cost."/>
        <div class="toolbar">
            <a class="button" href=move || format!("/teams/{}/training/new", team())>"Launch a job"</a>
            <form method="get" class="filters inline">
                <select name="status" aria-label="Status" on:change=move |ev| {
                    let status = event_target_value(&ev);
                    let query = if status.is_empty() { String::new() } else { format!("?status={status}") };
                    navigate(&format!("/teams/{}/training{query}", team()), Default::default());
                }>
                    <option value="" selected=move || status().is_none()>"All statuses"</option>
                    {["running", "completed", "failed", "stopped"].into_iter().map(|s| view! {
                        <option value=s selected=move || selected(s)>{s}</option>
                    }).collect_view()}
                </select>
                <noscript><button type="submit">"Filter"</button></noscript>
            </form>
            <Suspense fallback=|| ()>
                {move || month.get().and_then(Result::ok).map(|m| view! {
                    <p class="month-cost" data-testid="month-cost">"This month ("{m.month.clone()}"): "
                        <strong>{usd(m.total_usd)}</strong>" over "{crate::kernel::format::count(u64::try_from(m.jobs).unwrap_or(0), "job", "jobs")}</p>
                })}
            </Suspense>
        </div>
        <section class="card">
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || jobs.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(page) if page.items.is_empty() => view! {
                        <div class="empty">
                            <p>"No training jobs yet. Launch one on a dataset version of this team, or run the demo: it creates a demo team with a generated dataset and trains a model on it with the local runner."</p>
                            <crate::training::pages::demo::DemoButton/>
                        </div>
                    }.into_any(),
                    Ok(page) => {
                        let next = page.next_cursor.clone();
                        let t = team();
                        view! {
                            <div class="table-wrap"><table class="data" id="jobs">
                                <thead><tr><th>"Name"</th><th>"Status"</th><th>"Instances"</th><th>"Duration"</th><th>"Cost"</th><th>"Launched"</th></tr></thead>
                                <tbody>{page.items.into_iter().map(|j| job_row(&t, j)).collect_view()}</tbody>
                            </table></div>
                            {next.map(|c| view! { <p><a href=format!("?cursor={c}")>"Older jobs →"</a></p> })}
                        }.into_any()
                    }
                })}
            </Transition>
        </section>
    }
}

fn job_row(team: &str, j: TrainingJobSummary) -> impl IntoView + use<> {
    let cost = j.cost.so_far().map_or_else(|| "—".to_owned(), usd);
    view! {
        <tr data-name=j.name.clone()>
            <td><a href=format!("/teams/{team}/training/{}", j.id)><strong>{j.name.clone()}</strong></a>
                {(j.backend == "local").then(|| view! { <span class="pill">"local"</span> })}</td>
            <td><JobStatus status=j.status/>
                // a completed job's page offers to register it in the model registry
                {(j.status == TrainingStatus::Completed).then(|| view! {
                    <br/><a class="small" href=format!("/teams/{team}/training/{}#register-job", j.id)>"Register as model version"</a>
                })}</td>
            <td><code>{j.instance_type.clone()}</code>" × "{j.instance_count}</td>
            <td>{j.duration_seconds.map_or_else(|| "—".to_owned(), duration)}</td>
            <td>{cost}</td>
            <td><Time at=j.created_at/><br/><span class="muted">{j.created_by.clone()}</span></td>
        </tr>
    }
}
