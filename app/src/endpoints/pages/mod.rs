//! Endpoint pages: the team's endpoints, the new-endpoint form (versions
//! picked from the registry), and an endpoint's page with its variants and
//! their processes, the traffic split, the weights editor with a live share
//! preview, the variants editor (add, remove, capacity), and the invoke panel;
//! its health card (`health`); the experiment page (`experiment`); rollouts
//! (`rollouts`).

pub mod experiment;
pub mod health;
pub mod rollouts;

use crate::endpoints::rpc::{
    CreateEndpointForm, CreateInvokeKey, DeleteEndpoint, RevokeInvokeKey, SendSampleTraffic, SetEndpointWeightsForm,
    TestInvoke, UpdateEndpointForm, endpoint_events, endpoint_metrics, endpoint_options, endpoint_spend, get_endpoint,
    list_endpoints, list_invoke_keys,
};
use crate::endpoints::types::{DeployChoices, Endpoint, Variant, shares};
use crate::kernel::chart::{ChartLine, LineChart, SplitBar};
use crate::kernel::error::AppError;
use crate::kernel::form::{Form, FormAction};
use crate::kernel::format::usd;
use crate::kernel::widgets::{ConfirmButton, ErrorBox, FieldMessage, FormError, PageHeader, Time, use_refresh};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use uuid::Uuid;

fn status_class(status: &str) -> &'static str {
    match status {
        "InService" | "Healthy" => "pill ok",
        "Failed" | "Crashed" | "Unhealthy" => "pill danger",
        _ => "pill busy",
    }
}

#[component]
pub fn EndpointsPage() -> impl IntoView {
    let params = use_params_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let tick = use_refresh(RwSignal::new(true));
    let endpoints = Resource::new(move || (team(), tick.get() / 5), |(t, _)| list_endpoints(t));
    let spend = Resource::new(move || (team(), tick.get() / 60), |(t, _)| endpoint_spend(t));
    view! {
        <PageHeader title="Endpoints" subtitle="Model versions serving traffic: production variants share it by weight, a shadow gets a copy."/>
        <div class="toolbar">
            <a class="button" href=move || format!("/teams/{}/endpoints/new", team())>"New endpoint"</a>
            <a href=move || format!("/teams/{}/budget", team())>"Budget"</a>
            <Transition fallback=|| ()>
                {move || spend.get().and_then(Result::ok).map(|s| view! {
                    <span class="muted" id="endpoint-spend" title="Instance-hours × the price table (in local mode: what the same endpoints would cost on SageMaker)">
                        {format!("{}: endpoints {} · training {}", s.month, usd(s.endpoints_usd), usd(s.training_usd))}
                        {(!s.by_version.is_empty()).then(|| format!(" · by version: {}", s.by_version.iter().take(5).map(|v| format!("{} {}", v.label, usd(v.usd))).collect::<Vec<_>>().join(", ")))}
                    </span>
                })}
            </Transition>
        </div>
        <section class="card">
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || endpoints.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty">"No endpoints yet. Deploy a registered model version to serve predictions over HTTP."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <table class="data" id="endpoints">
                            <thead><tr><th>"Endpoint"</th><th>"Status"</th><th>"Variants"</th><th>"Cost now"</th><th>"Cost today"</th><th>"Created"</th></tr></thead>
                            <tbody>{list.into_iter().map(|e| view! {
                                <tr data-endpoint=e.name.clone()>
                                    <td><a href=format!("/teams/{}/endpoints/{}", e.team, e.id)>{e.name.clone()}</a><br/><span class="muted mono">{e.engine_name.clone()}</span></td>
                                    <td><span class=status_class(&e.status)>{e.status.clone()}</span></td>
                                    <td>{e.variants.iter().map(|v| view! {
                                        <span class="pill">{format!("{} {:.0} % · {} v{}", v.name, v.share * 100.0, v.model, v.version)}</span>
                                    }).collect_view()}
                                    {e.shadow.as_ref().map(|s| view! { <span class="pill">{format!("shadow {} {} %", s.name, s.shadow_percent.unwrap_or(0))}</span> })}
                                    </td>
                                    <td class="num">{format!("{}/h", usd(e.cost.usd_per_hour))}</td>
                                    <td class="num cost-today">{usd(e.cost.today_usd)}</td>
                                    <td><Time at=e.created_at/></td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
pub fn NewEndpointPage() -> impl IntoView {
    let params = use_params_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let create = FormAction::<CreateEndpointForm>::new();
    let err = create.error();
    let options = Resource::new(team, endpoint_options);
    view! {
        <PageHeader title="New endpoint" subtitle="Pick registered versions as production variants; each gets weight / sum of weights of the traffic."/>
        <p class="muted"><a href=move || format!("/teams/{}/endpoints", team())>"← Endpoints"</a></p>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || options.get().map(|res| match res {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                Ok(o) if o.versions.is_empty() => view! {
                    <p class="empty">"No deployable model version yet: register one from a training job (or run the demo), then come back."</p>
                }.into_any(),
                Ok(o) => {
                    let first = o.versions.first().map(|v| v.id);
                        let fields = view! {
                            <label>"Name" <input name="name" required placeholder="churn-prod" pattern="[a-zA-Z0-9](-*[a-zA-Z0-9])*" maxlength="63"/></label>
                            <FieldMessage error=err field="name"/>
                            <FieldMessage error=err field="variants"/>
                            <table class="data form-rows">
                                <thead><tr><th>"Variant"</th><th>"Model version"</th><th>"Instance type"</th><th>"Count"</th><th>"Weight"</th></tr></thead>
                                <tbody>
                                    {(0..3).map(|i| {
                                        let name = format!("variants[{i}]");
                                        let f = |field: &str| format!("{name}.{field}");
                                        let default_name = ["primary", "challenger", "third"][i];
                                        view! {
                                            <tr data-row=i>
                                                <td><input name=format!("{name}[name]") value=default_name aria-label="Variant name"/><FieldMessage error=err field=f("name")/></td>
                                                <td><select name=format!("{name}[version_id]") aria-label="Model version">{version_options(&o, None, first.filter(|_| i == 0))}</select><FieldMessage error=err field=f("version_id")/></td>
                                                <td><select name=format!("{name}[instance_type]") aria-label="Instance type">{type_options(&o.instance_types, DEFAULT_TYPE)}</select><FieldMessage error=err field=f("instance_type")/></td>
                                                <td><input name=format!("{name}[instance_count]") type="number" min="1" max="10" value="1" aria-label="Instance count"/><FieldMessage error=err field=f("instance_count")/></td>
                                                <td><input name=format!("{name}[weight]") type="number" min="0" step="any" value=if i == 0 { "1" } else { "0" } aria-label="Weight"/><FieldMessage error=err field=f("weight")/></td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                            <p class="muted">"Rows without a version are left out. Add more variants (up to 10) through the API."</p>
                            <fieldset>
                                <legend>"Shadow variant (optional)"</legend>
                                <p class="muted">"Gets a copy of a sample of the requests; its answers are recorded, never returned. In AWS mode with several production variants the copy is made by Capstan's gateway, for traffic that goes through it."</p>
                                <div class="row">
                                    <label>"Name" <input name="shadow[name]" value="shadow"/></label>
                                    <label>"Model version" <select name="shadow[version_id]">{version_options(&o, None, None)}</select></label>
                                    <label>"Instance type" <select name="shadow[instance_type]">{type_options(&o.instance_types, DEFAULT_TYPE)}</select></label>
                                    <label>"Count" <input name="shadow[instance_count]" type="number" min="1" max="10" value="1"/></label>
                                    <label>"Sample %" <input name="shadow[weight]" type="number" min="1" max="100" value="10"/></label>
                                </div>
                                <FieldMessage error=err field="shadow.name"/>
                                <FieldMessage error=err field="shadow.version_id"/>
                                <FieldMessage error=err field="shadow.percent"/>
                            </fieldset>
                        };
                        if o.needs_request {
                            view! {
                                <div class="card">
                                    <p class="notice">"The team's approval policy covers new endpoints: this one is created once the team's reviewers approve it."</p>
                                    <RequestForm team=team() kind="endpoint.create" endpoint=None id="create-endpoint">
                                        {fields}
                                        <button type="submit">"Request this endpoint"</button>
                                    </RequestForm>
                                </div>
                            }.into_any()
                        } else {
                            view! {
                                <Form action=create attr:class="stack card" attr:id="create-endpoint">
                                    <FormError error=err/>
                                    <input type="hidden" name="team" value=team/>
                                    {fields}
                                    <button type="submit" disabled=move || create.pending().get()>"Create endpoint"</button>
                                </Form>
                            }.into_any()
                        }
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn EndpointPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|s| s.parse::<Uuid>().ok()));
    let weights = FormAction::<SetEndpointWeightsForm>::new();
    let update = FormAction::<UpdateEndpointForm>::new();
    let delete = FormAction::<DeleteEndpoint>::new();
    let tick = use_refresh(RwSignal::new(true));
    let load = |id: Option<Uuid>| async move {
        match id {
            Some(id) => get_endpoint(id).await,
            None => Err(AppError::NotFound("Endpoint".into())),
        }
    };
    // what changes by itself (status, processes), every few seconds
    let live = Resource::new(
        move || (id(), weights.version().get(), update.version().get(), delete.version().get(), tick.get() / 3),
        move |(id, ..)| load(id),
    );
    // what the editors start from: only after a change made here, so what
    // the user types is not wiped by the live refresh
    let config =
        Resource::new(move || (id(), weights.version().get(), update.version().get()), move |(id, ..)| load(id));
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || live.get().map(|res| match res {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                Ok(e) => view! { <EndpointView endpoint=e delete=delete/> }.into_any(),
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || config.get().and_then(Result::ok).map(|e| {
                let names: Vec<String> = e.variants.iter().map(|v| v.name.clone()).collect();
                view! {
                    <div class="grid-2">
                        <WeightsEditor endpoint=e.id team=e.team.clone() variants=e.variants.clone() action=weights
                            by_request=e.needs_request.iter().any(|k| k == "endpoint.weights")/>
                        <InvokePanel endpoint=e.id variants=names/>
                    </div>
                    <VariantsEditor endpoint=e.id team=e.team.clone() variants=e.variants.clone() action=update
                        aws=e.backend == "sagemaker" by_request=e.needs_request.iter().any(|k| k == "endpoint.update")/>
                    <TrafficCharts endpoint=e.id/>
                    <health::HealthCard endpoint=e.id/>
                    <InvokeKeys endpoint=e.id engine_name=e.engine_name.clone()/>
                    <Timeline endpoint=e.id changes=Signal::derive(move || weights.version().get() + update.version().get())/>
                }
            })}
        </Transition>
    }
}

/// The endpoint's state: status, traffic split, variants and processes.
#[component]
fn EndpointView(endpoint: Endpoint, delete: FormAction<DeleteEndpoint>) -> impl IntoView {
    let e = endpoint;
    let names: Vec<String> = e.variants.iter().map(|v| v.name.clone()).collect();
    let current: Vec<f64> = e.variants.iter().map(|v| v.share).collect();
    let delete_err = delete.error();
    let deleted = move || matches!(delete.value().get(), Some(Ok(())));
    view! {
        <PageHeader title=e.name.clone() subtitle=format!("Invoke with POST /endpoints/{}/invocations (SageMaker Runtime's path), or from the panel below.", e.engine_name)/>
        <p class="muted"><a href=format!("/teams/{}/endpoints", e.team)>"← Endpoints"</a></p>
        <div class="toolbar">
            <span class=status_class(&e.status) id="endpoint-status">{e.status.clone()}</span>
            <span class="muted">{format!("{} mode", e.backend)}" · created by "{e.created_by.clone()}" "<Time at=e.created_at/></span>
            <a class="button secondary small" id="experiment-link" href=format!("/teams/{}/endpoints/{}/experiment", e.team, e.id)>"Experiment"</a>
            <a class="button secondary small" id="rollouts-link" href=format!("/teams/{}/endpoints/{}/rollouts", e.team, e.id)>"Rollouts"</a>
            <span class="muted" id="endpoint-cost" title="Instance-hours × the price table (in local mode: what it would cost on SageMaker)">
                {format!("{}/h · today {} · this month {} · in all {}", usd(e.cost.usd_per_hour), usd(e.cost.today_usd), usd(e.cost.month_usd), usd(e.cost.total_usd))}
                {e.cost.unpriced.then_some(" · an instance type has no price")}
            </span>
            {if e.needs_request.iter().any(|k| k == "endpoint.delete") {
                view! {
                    <a class="button secondary small" id="request-delete"
                        href=format!("/teams/{}/reviews/new?kind=endpoint.delete&endpoint={}", e.team, e.id)>"Request deletion"</a>
                }.into_any()
            } else {
                view! {
                    <Form action=delete attr:class="inline">
                        <input type="hidden" name="id" value=e.id.to_string()/>
                        <ConfirmButton label="Delete endpoint" question=format!("Delete endpoint {}? It stops taking traffic at once.", e.name)/>
                    </Form>
                }.into_any()
            }}
        </div>
        <FormError error=delete_err/>
        {move || deleted().then(|| view! { <div class="notice">"Deleted: its processes are being stopped."</div> })}
        {e.failure_reason.clone().map(|r| view! { <div class="form-error" role="alert">{r}</div> })}
        <section class="card">
            <h2>"Traffic split"</h2>
            <SplitBar names=names shares=current/>
            <VariantsTable variants=e.variants.clone() shadow=e.shadow.clone() team=e.team.clone()/>
        </section>
    }
}

/// The production variants as editable rows: change a variant's version,
/// instance type or count, take it out ("remove" as its version), or add
/// one in the blank last row. Shown to those who may change the endpoint.
#[component]
fn VariantsEditor(
    endpoint: Uuid,
    team: String,
    variants: Vec<Variant>,
    action: FormAction<UpdateEndpointForm>,
    aws: bool,
    by_request: bool,
) -> impl IntoView {
    let err = action.error();
    let slug = team.clone();
    let options = Resource::new(move || team.clone(), endpoint_options);
    let rows = move |o: &DeployChoices| {
        let slots: Vec<Option<&Variant>> = variants.iter().map(Some).chain(std::iter::once(None)).collect();
        slots
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let name = format!("variants[{i}]");
                let f = |field: &str| format!("{name}.{field}");
                let versions = version_options(o, v, v.map(|v| v.version_id));
                let types = type_options(&o.instance_types, v.map_or(DEFAULT_TYPE, |v| v.instance_type.as_str()));
                view! {
                    <tr data-row=i>
                        <td><input name=format!("{name}[name]") value=v.map(|v| v.name.clone()).unwrap_or_default() placeholder="new variant" aria-label="Variant name"/><FieldMessage error=err field=f("name")/></td>
                        <td><select name=format!("{name}[version_id]") aria-label="Model version">{versions}</select><FieldMessage error=err field=f("version_id")/></td>
                        <td><select name=format!("{name}[instance_type]") aria-label="Instance type">{types}</select><FieldMessage error=err field=f("instance_type")/></td>
                        <td><input name=format!("{name}[instance_count]") type="number" min="1" max="10" value=v.map_or(1, |v| v.instance_count) aria-label="Instance count"/><FieldMessage error=err field=f("instance_count")/></td>
                        <td><input name=format!("{name}[weight]") type="number" min="0" step="any" value=v.map_or(0.0, |v| v.weight) aria-label="Weight"/><FieldMessage error=err field=f("weight")/></td>
                    </tr>
                }
            })
            .collect_view()
    };
    view! {
        <Transition fallback=|| ()>
            {move || {
                let rows = rows.clone();
                let slug = slug.clone();
                options.get().and_then(Result::ok).map(move |o| view! {
                <section class="card" id="variants-editor">
                    <h2>"Variants and capacity"</h2>
                    <p class="muted">"Change a variant's version, instance type or count; pick “remove” to take it out; fill the last row to add one (up to 10). Variants left as they are keep serving throughout."</p>
                    {let table = view! {
                        <table class="data form-rows">
                            <thead><tr><th>"Variant"</th><th>"Model version"</th><th>"Instance type"</th><th>"Count"</th><th>"Weight"</th></tr></thead>
                            <tbody>{rows(&o)}</tbody>
                        </table>
                    };
                    if by_request {
                        view! {
                            <p class="notice">"The team's approval policy covers variant changes: they go through a change request."</p>
                            <RequestForm team=slug.clone() kind="endpoint.update" endpoint=Some(endpoint) id="edit-variants">
                                {table}
                                <button type="submit">"Request these changes"</button>
                            </RequestForm>
                        }.into_any()
                    } else {
                        view! {
                            <Form action=action attr:class="stack" attr:id="edit-variants">
                                <FormError error=err/>
                                <FieldMessage error=err field="variants"/>
                                <input type="hidden" name="id" value=endpoint.to_string()/>
                                {table}
                                {aws.then(|| view! { <FleetFields error=err/> })}
                                <button type="submit" disabled=move || action.pending().get()>"Apply changes"</button>
                            </Form>
                        }.into_any()
                    }}
                </section>
            })}}
        </Transition>
    }
}

/// AWS mode: how SageMaker replaces a variant's fleet (blue/green), for an
/// update that keeps the variants' names.
#[component]
fn FleetFields(error: Signal<Option<AppError>>) -> impl IntoView {
    view! {
        <fieldset class="inline" id="fleet-deployment">
            <legend>"SageMaker fleet replacement (same variant names)"</legend>
            <select name="fleet[traffic]" aria-label="Traffic shifting">
                <option value="">"all at once (default)"</option>
                <option value="canary">"canary, then the rest"</option>
                <option value="linear">"linear steps"</option>
            </select>
            <label>"step % " <input name="fleet[step_percent]" type="number" min="1" max="50" class="short"/></label>
            <label>"bake s " <input name="fleet[wait_seconds]" type="number" min="0" max="3600" value="300" class="short"/></label>
            <label>"rollback alarms " <input name="fleet[alarm_names]" placeholder="alarm-a, alarm-b"/></label>
            {["deployment", "deployment.traffic", "deployment.step_percent", "deployment.wait_seconds", "deployment.alarm_names"]
                .map(|field| view! { <FieldMessage error=error field=field/> })}
        </fieldset>
    }
}

/// The instance type a new variant starts with.
const DEFAULT_TYPE: &str = "ml.m5.large";

/// The `<option>`s of a variant's model version: a blank one ("— remove"
/// on a deployed variant's row), the deployed version when the registry no
/// longer offers it, then the team's deployable versions; `selected` chosen.
fn version_options(choices: &DeployChoices, deployed: Option<&Variant>, selected: Option<Uuid>) -> Vec<AnyView> {
    let mut list =
        vec![view! { <option value="">{if deployed.is_some() { "— remove" } else { "—" }}</option> }.into_any()];
    if let Some(v) = deployed.filter(|v| !choices.versions.iter().any(|c| c.id == v.version_id)) {
        list.push(view! {
            <option value=v.version_id.to_string() selected=true>{format!("{} v{} (deployed)", v.model, v.version)}</option>
        }.into_any());
    }
    list.extend(choices.versions.iter().map(|c| {
        view! { <option value=c.id.to_string() selected=Some(c.id) == selected>{c.label.clone()}</option> }.into_any()
    }));
    list
}

/// The `<option>`s of an instance type select, `selected` chosen.
fn type_options(types: &[String], selected: &str) -> impl IntoView + use<> {
    types.iter().map(|t| view! { <option value=t.clone() selected=t == selected>{t.clone()}</option> }).collect_view()
}

/// Traffic share, requests per second, error rate and p99 latency per
/// variant over the last hour, day or week (`?window=`), from the rollups.
#[component]
fn TrafficCharts(endpoint: Uuid) -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let window = move || {
        query.with(|q| {
            q.get("window").filter(|w| ["1h", "24h", "7d"].contains(&w.as_str())).unwrap_or_else(|| "1h".into())
        })
    };
    let tick = use_refresh(RwSignal::new(true));
    let sample = FormAction::<SendSampleTraffic>::new();
    let sample_err = sample.error();
    // every 5 s while sample traffic runs (the rollups are written every 10 s), else every 15 s
    let every = move || if matches!(sample.value().get(), Some(Ok(_))) { 5 } else { 15 };
    let metrics = Resource::new(move || (window(), tick.get() / every()), move |(w, _)| endpoint_metrics(endpoint, w));
    view! {
        <section class="card" id="traffic">
            <h2>"Traffic"</h2>
            <Form action=sample attr:class="inline" attr:id="sample-traffic">
                <input type="hidden" name="id" value=endpoint.to_string()/>
                <input name="body" value="24,70.5,3" aria-label="Sample body" class="mono"/>
                <select name="content_type" aria-label="Content type">
                    <option value="text/csv">"text/csv"</option>
                    <option value="application/json">"application/json"</option>
                </select>
                <label>"per second " <input name="rate" type="number" min="1" max="50" value="10" class="short"/></label>
                <label>"for seconds " <input name="seconds" type="number" min="1" max="900" value="60" class="short"/></label>
                <button type="submit" class="secondary" disabled=move || sample.pending().get()>"Send sample traffic"</button>
            </Form>
            <FormError error=sample_err/>
            {move || sample.value().get().and_then(Result::ok).map(|s| view! {
                <p class="notice" id="sample-traffic-started">{format!("Sending {} requests/s for {} s, until ", s.rate, s.seconds)}<Time at=s.until/>"; the charts follow."</p>
            })}
            <p class="toolbar">
                {["1h", "24h", "7d"].into_iter().map(|w| view! {
                    <a href=format!("?window={w}") class:active=move || window() == w>{format!("last {w}")}</a>
                }).collect_view()}
            </p>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || metrics.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(m) if m.variants.iter().all(|v| v.requests.iter().all(|n| *n == 0)) => view! {
                        <p class="empty">"No requests in this window yet. Send sample traffic above, use the invoke panel, or a script."</p>
                    }.into_any(),
                    Ok(m) => {
                        let TrafficLines { share, rps, errors, p99 } = TrafficLines::of(&m);
                        view! {
                            <div class="grid-2 charts">
                                <LineChart name="traffic share" lines=share/>
                                <LineChart name="requests/s" lines=rps/>
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

/// An endpoint's series as chart lines, one per variant.
pub(crate) struct TrafficLines {
    /// Each variant's share of the step's requests.
    pub share: Vec<ChartLine>,
    pub rps: Vec<ChartLine>,
    pub errors: Vec<ChartLine>,
    /// In ms; 0 for a step without requests.
    pub p99: Vec<ChartLine>,
}

impl TrafficLines {
    pub fn of(m: &crate::endpoints::types::EndpointMetrics) -> Self {
        let totals: Vec<u64> =
            (0..m.at.len()).map(|i| m.variants.iter().map(|v| v.requests.get(i).copied().unwrap_or(0)).sum()).collect();
        let lines = |f: &dyn Fn(&crate::endpoints::types::VariantSeries) -> Vec<f64>| -> Vec<ChartLine> {
            m.variants.iter().map(|v| ChartLine { label: v.variant.clone(), values: f(v) }).collect()
        };
        Self {
            share: lines(&|v| {
                v.requests.iter().zip(&totals).map(|(n, t)| if *t == 0 { 0.0 } else { *n as f64 / *t as f64 }).collect()
            }),
            rps: lines(&|v| v.requests_per_second.clone()),
            errors: lines(&|v| v.error_rate.clone()),
            p99: lines(&|v| v.p99_ms.iter().map(|p| p.unwrap_or(0.0)).collect()),
        }
    }
}

/// Keys for the AWS SDKs (SigV4): create (the secret shown once), revoke.
#[component]
fn InvokeKeys(endpoint: Uuid, engine_name: String) -> impl IntoView {
    let create = FormAction::<CreateInvokeKey>::new();
    let revoke = FormAction::<RevokeInvokeKey>::new();
    let err = create.error();
    let keys =
        Resource::new(move || (create.version().get(), revoke.version().get()), move |_| list_invoke_keys(endpoint));
    view! {
        <section class="card" id="invoke-keys">
            <h2>"Invoke keys"</h2>
            <p class="muted">"For the AWS SDKs' SageMaker Runtime clients, unchanged: "
                <code>{format!("boto3.client(\"sagemaker-runtime\", endpoint_url=\"<Capstan's URL>\", aws_access_key_id=…, aws_secret_access_key=…).invoke_endpoint(EndpointName=\"{engine_name}\", …)")}</code></p>
            {move || create.value().get().and_then(Result::ok).map(|k| view! {
                <div class="notice" id="invoke-key-secret">
                    "Access key "<code>{k.key.id.clone()}</code>", secret (shown only now): "<code>{k.secret_access_key.clone()}</code>
                </div>
            })}
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || keys.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="empty">"No keys yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="data">
                            <thead><tr><th>"Access key"</th><th>"Name"</th><th>"Created"</th><th></th></tr></thead>
                            <tbody>{list.into_iter().map(|k| view! {
                                <tr>
                                    <td class="mono">{k.id.clone()}</td>
                                    <td>{k.name.clone()}<br/><span class="muted">{k.created_by.clone()}</span></td>
                                    <td><Time at=k.created_at/></td>
                                    <td>{match k.revoked_at {
                                        Some(at) => view! { <span class="pill danger">"revoked "<Time at=at/></span> }.into_any(),
                                        None => view! {
                                            <Form action=revoke attr:class="inline">
                                                <input type="hidden" name="id" value=endpoint.to_string()/>
                                                <input type="hidden" name="key" value=k.id.clone()/>
                                                <button type="submit" class="secondary small">"Revoke"</button>
                                            </Form>
                                        }.into_any(),
                                    }}</td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
            <Form action=create attr:class="inline">
                <input type="hidden" name="id" value=endpoint.to_string()/>
                <input name="name" placeholder="what uses it, e.g. batch scoring" required aria-label="Key name"/>
                <button type="submit" disabled=move || create.pending().get()>"New key"</button>
            </Form>
            <FormError error=err/>
            <FieldMessage error=err field="name"/>
        </section>
    }
}

/// What happened to the endpoint, newest first: who changed what, when it
/// came into service or failed (from the audit log).
#[component]
fn Timeline(endpoint: Uuid, changes: Signal<usize>) -> impl IntoView {
    let tick = use_refresh(RwSignal::new(true));
    let events = Resource::new(move || (changes.get(), tick.get() / 10), move |_| endpoint_events(endpoint));
    view! {
        <section class="card" id="events">
            <h2>"Events"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || events.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) => view! {
                        <table class="data">
                            <tbody>{list.into_iter().map(|ev| view! {
                                <tr data-action=ev.action>
                                    <td class="nowrap"><Time at=ev.at/></td>
                                    <td>{ev.text}</td>
                                    <td class="muted">{ev.by}</td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn VariantsTable(variants: Vec<Variant>, shadow: Option<Variant>, team: String) -> impl IntoView {
    let rows: Vec<(Variant, bool)> =
        variants.into_iter().map(|v| (v, false)).chain(shadow.map(|s| (s, true))).collect();
    view! {
        <table class="data" id="variants">
            <thead><tr><th>"Variant"</th><th>"Model version"</th><th>"Instances"</th><th>"Weight"</th><th>"Share"</th><th>"Cost"</th><th>"Processes"</th></tr></thead>
            <tbody>{rows.into_iter().map(|(v, is_shadow)| view! {
                <tr data-variant=v.name.clone()>
                    <td>{v.name.clone()}{is_shadow.then(|| view! { " "<span class="pill">"shadow"</span> })}
                        {v.fault_percent.map(|p| view! { " "<span class="pill danger" title="fault injection: the gateway answers this share of its requests with an error">{format!("fault {p} %")}</span> })}</td>
                    <td><a href=format!("/teams/{team}/model-versions/{}", v.version_id)>{format!("{} v{}", v.model, v.version)}</a></td>
                    <td class="mono">{format!("{} × {}", v.instance_count, v.instance_type)}</td>
                    <td class="num">{if is_shadow { "—".to_owned() } else { format!("{}", v.weight) }}</td>
                    <td class="num share">{if is_shadow { format!("copy of {} %", v.shadow_percent.unwrap_or(0)) } else { format!("{:.1} %", v.share * 100.0) }}</td>
                    <td class="num cost">{v.usd_per_hour.map_or_else(|| "no price".to_owned(), |r| format!("{}/h", usd(r)))}<br/><span class="muted">{format!("{} this month", usd(v.month_usd))}</span></td>
                    <td>{v.instances.iter().map(|i| view! {
                        <span class=status_class(&i.status) title=i.message.clone().unwrap_or_default()>
                            {format!("{}#{} {}", if i.previous { "previous " } else { "" }, i.ordinal, i.status)}{(i.restarts > 0).then(|| format!(" · {} restarts", i.restarts))}
                        </span>
                    }).collect_view()}
                    {v.instances.iter().find_map(|i| i.message.clone()).map(|m| view! { <pre class="log-excerpt">{m}</pre> })}
                    </td>
                </tr>
            }).collect_view()}</tbody>
        </table>
    }
}

/// One input per production variant, with the shares they would give,
/// updated as the user types.
#[component]
fn WeightsEditor(
    endpoint: Uuid,
    team: String,
    variants: Vec<Variant>,
    action: FormAction<SetEndpointWeightsForm>,
    by_request: bool,
) -> impl IntoView {
    let err = action.error();
    let typed: Vec<RwSignal<String>> = variants.iter().map(|v| RwSignal::new(format!("{}", v.weight))).collect();
    let names: Vec<String> = variants.iter().map(|v| v.name.clone()).collect();
    let preview = {
        let typed = typed.clone();
        move || shares(&typed.iter().map(|t| t.get().trim().parse::<f64>().unwrap_or(-1.0)).collect::<Vec<_>>())
    };
    let preview_names = names.clone();
    let fields = view! {
        {names.iter().zip(typed.iter()).enumerate().map(|(i, (name, value))| {
            let value = *value;
            view! {
                <input type="hidden" name=format!("variant[{i}]") value=name.clone()/>
                <label>{name.clone()}
                    <input name=format!("weight[{i}]") type="number" min="0" step="any" prop:value=move || value.get()
                        on:input=move |ev| value.set(event_target_value(&ev)) data-variant=name.clone()/>
                </label>
            }
        }).collect_view()}
        <p class="muted">"New split:"</p>
        <div id="weights-preview">{move || view! { <SplitBar names=preview_names.clone() shares=preview()/> }}</div>
    };
    view! {
        <section class="card">
            <h2>"Weights"</h2>
            {if by_request {
                view! {
                    <p class="notice">"The team's approval policy covers weight changes: new weights go through a change request."</p>
                    <RequestForm team=team kind="endpoint.weights" endpoint=Some(endpoint) id="weights">
                        {fields}
                        <button type="submit">"Request these weights"</button>
                    </RequestForm>
                }.into_any()
            } else {
                view! {
                    <Form action=action attr:class="stack" attr:id="weights">
                        <FormError error=err/>
                        <input type="hidden" name="id" value=endpoint.to_string()/>
                        {fields}
                        <button type="submit" disabled=move || action.pending().get()>"Apply weights"</button>
                    </Form>
                }.into_any()
            }}
        </section>
    }
}

/// A form that hands an endpoint change over to the new-request page (a
/// plain GET: the change's fields travel in the query string), for a change
/// the team's approval policy covers.
#[component]
pub(crate) fn RequestForm(
    team: String,
    kind: &'static str,
    endpoint: Option<Uuid>,
    id: &'static str,
    children: Children,
) -> impl IntoView {
    view! {
        <form method="get" action=format!("/teams/{team}/reviews/new") class="stack" id=id data-request=kind>
            <input type="hidden" name="kind" value=kind/>
            {endpoint.map(|e| view! { <input type="hidden" name="endpoint" value=e.to_string()/> })}
            {children()}
        </form>
    }
}

/// Sends a sample payload and shows the answer and the variant that gave it.
#[component]
fn InvokePanel(endpoint: Uuid, variants: Vec<String>) -> impl IntoView {
    let invoke = FormAction::<TestInvoke>::new();
    let err = invoke.error();
    view! {
        <section class="card">
            <h2>"Invoke"</h2>
            <Form action=invoke attr:class="stack" attr:id="invoke">
                <input type="hidden" name="id" value=endpoint.to_string()/>
                <label>"Body" <textarea name="body" rows="4">"24,70.5,3"</textarea></label>
                <label>"Content type"
                    <select name="content_type">
                        <option value="text/csv">"text/csv"</option>
                        <option value="application/json">"application/json"</option>
                    </select>
                </label>
                <label>"Variant"
                    <select name="variant">
                        <option value="">"by weight"</option>
                        {variants.into_iter().map(|v| view! { <option value=v.clone()>{format!("pin {v}")}</option> }).collect_view()}
                    </select>
                </label>
                <button type="submit" disabled=move || invoke.pending().get()>"Send"</button>
            </Form>
            <FormError error=err/>
            {move || invoke.value().get().and_then(Result::ok).map(|r| view! {
                <div id="invoke-result">
                    <p>"Answered by "<strong data-variant=r.variant.clone()>{r.variant.clone()}</strong>
                       {format!(" · HTTP {} · {:.1} ms", r.status, r.latency_ms)}</p>
                    <pre class="mono">{r.body.clone()}</pre>
                </div>
            })}
        </section>
    }
}
