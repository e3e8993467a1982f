//! Rollouts: an endpoint's rollouts with the form that starts one (canary,
//! linear or manual, the candidate an existing variant or a new version),
//! and a rollout's page: the steps planned and taken (who, when, the
//! guardrails' figures, passed or failed), the commands (promote, pause,
//! resume, abort), and the traffic share of each variant with the error
//! rate and p99 beneath it.

use crate::endpoints::pages::TrafficLines;
use crate::endpoints::rpc::{
    RolloutCommand, SetFaultForm, StartRolloutForm, endpoint_metrics, endpoint_options, get_endpoint, get_rollout,
    list_rollouts,
};
use crate::endpoints::types::{Endpoint, Rollout};
use crate::kernel::chart::LineChart;
use crate::kernel::error::AppError;
use crate::kernel::form::{Form, FormAction};
use crate::kernel::widgets::{ErrorBox, FieldMessage, FormError, PageHeader, Time, use_refresh};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use uuid::Uuid;

fn state_class(state: &str) -> &'static str {
    match state {
        "completed" => "pill ok",
        "rolled_back" | "aborted" => "pill danger",
        _ => "pill busy",
    }
}

/// An endpoint's rollouts and the form that starts one.
#[component]
pub fn RolloutsPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|s| s.parse::<Uuid>().ok()));
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let start = FormAction::<StartRolloutForm>::new();
    let missing = || AppError::NotFound("Endpoint".into());
    let endpoint = Resource::new(id, move |id| async move {
        match id {
            Some(id) => get_endpoint(id).await,
            None => Err(missing()),
        }
    });
    let options = Resource::new(team, endpoint_options);
    let tick = use_refresh(RwSignal::new(true));
    let rollouts = Resource::new(
        move || (id(), start.version().get(), tick.get() / 5),
        move |(id, ..)| async move {
            match id {
                Some(id) => list_rollouts(id).await,
                None => Err(missing()),
            }
        },
    );
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || endpoint.get().map(|res| match res {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                Ok(e) => view! {
                    <PageHeader title=format!("{} · rollouts", e.name)
                        subtitle="Move traffic from a baseline variant to a candidate step by step; a failed guardrail sends it back to the baseline."/>
                    <p class="muted"><a href=format!("/teams/{}/endpoints/{}", e.team, e.id)>"← Endpoint"</a></p>
                }.into_any(),
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || rollouts.get().map(|res| match res {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                Ok(list) if list.is_empty() => view! { <p class="empty" id="no-rollouts">"No rollout yet: start one below."</p> }.into_any(),
                Ok(list) => view! {
                    <table id="rollouts">
                        <thead><tr><th>"Started"</th><th>"From → to"</th><th>"Strategy"</th><th class="num">"Candidate share"</th><th>"State"</th></tr></thead>
                        <tbody>
                            {list.into_iter().map(|r| view! {
                                <tr data-rollout=r.id.to_string()>
                                    <td><a href=format!("/teams/{}/rollouts/{}", r.team, r.id)><Time at=r.created_at/></a></td>
                                    <td>{format!("{} → {}", r.baseline, r.candidate)}</td>
                                    <td>{r.strategy.clone()}</td>
                                    <td class="num">{format!("{} %", r.percent)}</td>
                                    <td><span class=state_class(&r.state)>{r.state.replace('_', " ")}</span></td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || match (endpoint.get(), options.get()) {
                (Some(Ok(e)), Some(Ok(o))) => Some(view! { <StartForm endpoint=e versions=o.versions action=start/> }),
                _ => None,
            }}
        </Transition>
    }
}

#[component]
fn StartForm(
    endpoint: Endpoint,
    versions: Vec<crate::endpoints::types::VersionChoice>,
    action: FormAction<StartRolloutForm>,
) -> impl IntoView {
    let err = action.error();
    let names: Vec<String> = endpoint.variants.iter().map(|v| v.name.clone()).collect();
    let by_request = endpoint.needs_request.iter().any(|k| k == "endpoint.rollout" || k == "endpoint.weights");
    let fields = view! {
                <div class="grid-2">
                    <label>"From (baseline)" <select name="baseline">
                        {names.iter().map(|n| view! { <option value=n.clone()>{n.clone()}</option> }).collect_view()}
                    </select><FieldMessage error=err field="baseline"/></label>
                    <label>"To (candidate variant)" <input name="candidate" required placeholder="challenger"/>
                        <FieldMessage error=err field="candidate"/></label>
                    <label>"Candidate's version (for a new variant)" <select name="candidate_version_id">
                        <option value="">"— an existing variant —"</option>
                        {versions.into_iter().map(|v| view! { <option value=v.id.to_string()>{v.label}</option> }).collect_view()}
                    </select><FieldMessage error=err field="candidate_version_id"/></label>
                    <label>"Strategy" <select name="strategy">
                        <option value="canary">"canary: a share for the bake time, then all"</option>
                        <option value="linear">"linear: a share more every interval"</option>
                        <option value="manual">"manual: a share more each time you promote"</option>
                    </select><FieldMessage error=err field="strategy"/></label>
                    <label>"Step (%)" <input name="step_percent" type="number" min="1" max="50" value="10"/>
                        <FieldMessage error=err field="step_percent"/></label>
                    <label>"Interval / bake time (s)" <input name="interval_seconds" type="number" min="0" max="3600" value="300"/>
                        <FieldMessage error=err field="interval_seconds"/></label>
                    <label>"Roll back above this error rate (%)" <input name="max_error_rate" type="number" min="0" max="100" step="any" value="5"/>
                        <FieldMessage error=err field="guardrails.max_error_rate"/></label>
                    <label>"Requests before judging a step" <input name="min_requests" type="number" min="1" value="50"/>
                        <FieldMessage error=err field="guardrails.min_requests"/></label>
                </div>
                <p class="muted">"The candidate is also rolled back when its error rate passes twice the baseline's, or its p99 latency 1.5× the baseline's (change these through the API)."</p>
    };
    view! {
        <section class="card" id="start-rollout">
            <h2>"Start a rollout"</h2>
            {if by_request {
                view! {
                    <p class="notice">"The team's approval policy covers rollouts (or the weights they change): a rollout starts once its change request is approved."</p>
                    <super::RequestForm team=endpoint.team.clone() kind="endpoint.rollout" endpoint=Some(endpoint.id) id="request-rollout">
                        {fields}
                        <button type="submit">"Request this rollout"</button>
                    </super::RequestForm>
                }.into_any()
            } else {
                view! {
                    <Form action=action>
                        <input type="hidden" name="id" value=endpoint.id.to_string()/>
                        <FormError error=err/>
                        {fields}
                        <button type="submit" disabled=move || action.pending().get()>"Start rollout"</button>
                    </Form>
                }.into_any()
            }}
        </section>
    }
}

/// A rollout: its steps, the commands, the traffic.
#[component]
pub fn RolloutPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("rollout").and_then(|s| s.parse::<Uuid>().ok()));
    let command = FormAction::<RolloutCommand>::new();
    let tick = use_refresh(RwSignal::new(true));
    let rollout = Resource::new(
        move || (id(), command.version().get(), tick.get() / 3),
        move |(id, ..)| async move {
            match id {
                Some(id) => get_rollout(id).await,
                None => Err(AppError::NotFound("Rollout".into())),
            }
        },
    );
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || rollout.get().map(|res| match res {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                Ok(r) => view! { <RolloutView rollout=r command=command/> }.into_any(),
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || rollout.get().and_then(Result::ok).filter(|r| matches!(r.state.as_str(), "running" | "paused"))
                .map(|r| view! { <FaultSwitch endpoint=r.endpoint_id variant=r.candidate/> })}
        </Transition>
        <Transition fallback=|| ()>
            {move || rollout.get().and_then(Result::ok).map(|r| view! { <RolloutTraffic endpoint=r.endpoint_id/> })}
        </Transition>
    }
}

/// The fault-injection switch on a live rollout's candidate: see the
/// guardrails roll it back without breaking a model.
#[component]
fn FaultSwitch(endpoint: Uuid, variant: String) -> impl IntoView {
    let action = FormAction::<SetFaultForm>::new();
    let err = action.error();
    let current = Resource::new(move || action.version().get(), move |_| get_endpoint(endpoint));
    let name = variant.clone();
    let shown = variant.clone();
    let label = format!("Inject errors (%) into {variant}");
    let clear = variant.clone();
    let now = move || {
        current
            .get()
            .and_then(Result::ok)
            .and_then(|e| e.variants.iter().find(|v| v.name == name).and_then(|v| v.fault_percent))
    };
    view! {
        <section class="card" id="fault-switch">
            <h2>"Test the guardrails"</h2>
            <p class="muted">"Have the gateway answer a share of the candidate's requests with an error instead of calling it (fault injection): its error-rate guardrail should roll it back. Only on endpoints whose changes need no review."</p>
            <p id="fault-now">{move || match now() {
                Some(p) => format!("{p} % of {shown}'s requests fail now."),
                None => "No fault injected.".to_owned(),
            }}</p>
            <div class="toolbar">
                <Form action=action attr:class="inline">
                    <input type="hidden" name="id" value=endpoint.to_string()/>
                    <input type="hidden" name="variant" value=variant.clone()/>
                    <input name="error_percent" type="number" min="1" max="100" value="30" aria-label="error share (%)"/>
                    <button type="submit" class="danger small" id="fault-inject">{label.clone()}</button>
                </Form>
                <Form action=action attr:class="inline">
                    <input type="hidden" name="id" value=endpoint.to_string()/>
                    <input type="hidden" name="variant" value=clear.clone()/>
                    <input type="hidden" name="error_percent" value="0"/>
                    <button type="submit" class="secondary small" id="fault-clear">"Clear"</button>
                </Form>
            </div>
            <FormError error=err/>
        </section>
    }
}

#[component]
fn RolloutView(rollout: Rollout, command: FormAction<RolloutCommand>) -> impl IntoView {
    let r = rollout;
    let err = command.error();
    let live = matches!(r.state.as_str(), "running" | "paused");
    let button = |what: &'static str, label: &'static str, show: bool| {
        show.then(|| {
            view! {
                <Form action=command attr:class="inline">
                    <input type="hidden" name="id" value=r.id.to_string()/>
                    <input type="hidden" name="command" value=what/>
                    <button type="submit" class=if what == "abort" { "danger small" } else { "secondary small" } id=format!("rollout-{what}")>{label}</button>
                </Form>
            }
        })
    };
    let taken: Vec<i32> = r.steps.iter().map(|s| s.percent).collect();
    view! {
        <PageHeader title=format!("Rollout {} → {}", r.baseline, r.candidate)
            subtitle=format!("{} on endpoint {}: {} · step {} % · interval {} s", r.strategy, r.endpoint, r.planned.iter().map(|p| format!("{p} %")).collect::<Vec<_>>().join(" → "), r.step_percent, r.interval_seconds)/>
        <p class="muted"><a href=format!("/teams/{}/endpoints/{}/rollouts", r.team, r.endpoint_id)>"← Rollouts"</a></p>
        <div class="toolbar">
            <span class=state_class(&r.state) id="rollout-state" data-state=r.state.clone()>{r.state.replace('_', " ")}</span>
            <span class="muted" id="rollout-share">{format!("{} has {} % of {}'s and its traffic", r.candidate, r.percent, r.baseline)}</span>
            {button("promote", "Promote now", r.state == "running")}
            {button("pause", "Pause", r.state == "running")}
            {button("resume", "Resume", r.state == "paused")}
            {button("abort", "Abort", live)}
        </div>
        <FormError error=err/>
        {r.reason.clone().map(|why| view! { <div class="form-error" role="alert" id="rollout-reason">{why}</div> })}
        <section class="card">
            <h2>"Steps"</h2>
            <table id="rollout-steps">
                <thead><tr><th>"Share"</th><th>"Started"</th><th>"By"</th><th>"Result"</th><th>"Guardrails"</th></tr></thead>
                <tbody>
                    {r.steps.iter().map(|s| view! {
                        <tr data-percent=s.percent>
                            <td>{format!("{} %", s.percent)}</td>
                            <td><Time at=s.started_at/></td>
                            <td>{s.started_by.clone()}</td>
                            <td>{s.result.clone().unwrap_or_else(|| "under way".into())}</td>
                            <td>
                                <ul class="checks">
                                    {s.checks.iter().map(|c| view! {
                                        <li data-check=c.name.clone() data-status=c.status.clone()>
                                            <span class=match c.status.as_str() { "pass" => "pill ok", "fail" => "pill danger", _ => "pill" }>{c.status.clone()}</span>
                                            " "{c.text.clone()}
                                        </li>
                                    }).collect_view()}
                                </ul>
                            </td>
                        </tr>
                    }).collect_view()}
                    {r.planned.iter().filter(|p| !taken.contains(p)).map(|p| view! {
                        <tr class="muted" data-planned=*p><td>{format!("{p} %")}</td><td colspan="4">"planned"</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

/// The endpoint's traffic share per variant over the last hour, with the
/// error rate and p99 beneath it.
#[component]
fn RolloutTraffic(endpoint: Uuid) -> impl IntoView {
    let tick = use_refresh(RwSignal::new(true));
    let metrics = Resource::new(move || tick.get() / 10, move |_| endpoint_metrics(endpoint, "1h".into()));
    view! {
        <section class="card" id="rollout-traffic">
            <h2>"Traffic, last hour"</h2>
            <Transition fallback=|| ()>
                {move || metrics.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(m) => {
                        let TrafficLines { share, errors, p99, .. } = TrafficLines::of(&m);
                        view! {
                            <LineChart name="traffic share" lines=share/>
                            <div class="grid-2 charts">
                                <LineChart name="error rate" lines=errors/>
                                <LineChart name="p99 latency (ms)" lines=p99/>
                            </div>
                        }.into_any()
                    }
                })}
            </Transition>
        </section>
    }
}
