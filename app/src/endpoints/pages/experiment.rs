//! An endpoint's experiment: the verdict, each production variant's rate or
//! mean with its lift over the baseline and always-valid interval, the
//! interval over time as a chart, the sample-ratio-mismatch warning, and
//! the settings (metric, how it is read, which way is better, baseline, α);
//! and the bandit allocation: its runs (each variant's chance of being best
//! and share), the shares over time, and its settings.

use crate::endpoints::rpc::{SetBanditForm, SetExperimentForm, StopBandit, get_bandit, get_endpoint, get_experiment};
use crate::endpoints::types::{Bandit, Endpoint, Experiment};
use crate::kernel::chart::{ChartLine, LineChart};
use crate::kernel::error::AppError;
use crate::kernel::form::{Form, FormAction};
use crate::kernel::widgets::{ErrorBox, FieldMessage, FormError, PageHeader, Time, use_refresh};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use uuid::Uuid;

fn percent(x: f64) -> String {
    format!("{:+.2} %", x * 100.0)
}

#[component]
pub fn ExperimentPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|s| s.parse::<Uuid>().ok()));
    let save = FormAction::<SetExperimentForm>::new();
    let tick = use_refresh(RwSignal::new(true));
    let missing = || AppError::NotFound("Endpoint".into());
    let endpoint = Resource::new(id, move |id| async move {
        match id {
            Some(id) => get_endpoint(id).await,
            None => Err(missing()),
        }
    });
    let load = move |id: Option<Uuid>| async move {
        match id {
            Some(id) => get_experiment(id).await,
            None => Err(missing()),
        }
    };
    // the analysis follows the traffic (rollups are written every 10 s)
    let analysis = Resource::new(move || (id(), save.version().get(), tick.get() / 10), move |(id, ..)| load(id));
    // what the settings form starts from: only after a change made here
    let settings = Resource::new(move || (id(), save.version().get()), move |(id, _)| load(id));
    let bandit_save = FormAction::<SetBanditForm>::new();
    let bandit_stop = FormAction::<StopBandit>::new();
    let bandit = Resource::new(
        move || (id(), bandit_save.version().get(), bandit_stop.version().get(), tick.get() / 10),
        move |(id, ..)| async move {
            match id {
                Some(id) => get_bandit(id).await,
                None => Err(missing()),
            }
        },
    );
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || endpoint.get().map(|res| match res {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                Ok(e) => view! {
                    <PageHeader title=format!("{} · experiment", e.name)
                        subtitle="Which production variant does better on an outcome your application reports. The intervals stay valid however often you look."/>
                    <p class="muted"><a href=format!("/teams/{}/endpoints/{}", e.team, e.id)>"← Endpoint"</a></p>
                }.into_any(),
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || analysis.get().map(|res| match res {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                Ok(None) => view! {
                    <p class="empty" id="no-experiment">"No experiment yet. Choose the metric below; then report outcomes with "
                        <code>"POST /api/v1/endpoints/{id}/outcomes"</code>", naming each invocation by the "
                        <code>"x-capstan-invocation-id"</code>" header the gateway answers with."</p>
                }.into_any(),
                Ok(Some(x)) => view! { <Analysis experiment=x/> }.into_any(),
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || match (endpoint.get(), settings.get()) {
                (Some(Ok(e)), Some(Ok(x))) => Some(view! { <Settings endpoint=e experiment=x action=save/> }),
                _ => None,
            }}
        </Transition>
        <Transition fallback=|| ()>
            {move || match (endpoint.get(), bandit.get(), settings.get()) {
                (Some(Ok(e)), Some(Ok(b)), Some(Ok(x))) => Some(view! {
                    <BanditCard endpoint=e bandit=b experiment=x save=bandit_save stop=bandit_stop/>
                }.into_any()),
                (_, Some(Err(e)), _) => Some(view! { <ErrorBox error=e/> }.into_any()),
                _ => None,
            }}
        </Transition>
    }
}

#[component]
fn BanditCard(
    endpoint: Endpoint,
    bandit: Option<Bandit>,
    experiment: Option<Experiment>,
    save: FormAction<SetBanditForm>,
    stop: FormAction<StopBandit>,
) -> impl IntoView {
    let err = save.error();
    let stop_err = stop.error();
    let on = bandit.is_some();
    let by_request = endpoint.needs_request.iter().any(|k| k == "endpoint.bandit" || k == "endpoint.weights");
    let settings = bandit.as_ref().map(|b| b.settings.clone());
    let metric = settings.as_ref().map(|s| s.metric.clone()).or_else(|| experiment.as_ref().map(|x| x.metric.clone()));
    let kind = settings.as_ref().map(|s| s.kind.clone()).or_else(|| experiment.as_ref().map(|x| x.kind.clone()));
    let goal = settings.as_ref().map(|s| s.goal.clone()).or_else(|| experiment.as_ref().map(|x| x.goal.clone()));
    let kind = kind.unwrap_or_else(|| "binary".into());
    let goal = goal.unwrap_or_else(|| "increase".into());
    let interval = settings.as_ref().map_or(300, |s| s.interval_seconds);
    let min = settings.as_ref().map_or(5.0, |s| s.min_share * 100.0);
    let max = settings.as_ref().map_or(90.0, |s| s.max_share * 100.0);
    let option = |value: &'static str, label: &'static str, current: &str| {
        view! { <option value=value selected=current == value>{label}</option> }
    };
    let runs = bandit.as_ref().map(|b| b.runs.clone()).unwrap_or_default();
    let last = runs.first().cloned();
    // the shares over time, oldest first
    let chart = (runs.len() > 1).then(|| {
        let names: Vec<String> = endpoint.variants.iter().map(|v| v.name.clone()).collect();
        let lines: Vec<ChartLine> = names
            .iter()
            .map(|n| ChartLine {
                label: n.clone(),
                values: runs
                    .iter()
                    .rev()
                    .map(|r| r.variants.iter().find(|v| v.variant == *n).map_or(0.0, |v| v.share * 100.0))
                    .collect(),
            })
            .collect();
        view! { <LineChart name="share of traffic (%, by run)".to_owned() lines=lines/> }
    });
    view! {
        <section class="card" id="bandit">
            <h2>"Bandit allocation"</h2>
            <p class="muted">"Let the weights follow the outcomes: every interval, Thompson sampling gives each production variant a share by its chance of being the best, within the bounds you set. Each change is audited; where the team's policy covers weights, turning it on takes a change request."</p>
            {bandit.as_ref().map(|b| view! {
                <p class="notice" id="bandit-status">
                    {format!("On: {} ({}, {} is better), every {} s, each variant {} %–{} % · started by {} · ",
                        b.settings.metric, b.settings.kind, if b.settings.goal == "decrease" { "lower" } else { "higher" },
                        b.settings.interval_seconds, b.settings.min_share * 100.0, b.settings.max_share * 100.0, b.started_by)}
                    "next run "<Time at=b.next_at/>
                </p>
            })}
            {last.map(|run| view! {
                <table id="bandit-variants">
                    <thead><tr><th>"Variant"</th><th class="num">"Units"</th><th class="num">"Mean"</th>
                        <th class="num">"Chance best"</th><th class="num">"Share"</th></tr></thead>
                    <tbody>
                        {run.variants.into_iter().map(|v| view! {
                            <tr data-variant=v.variant.clone()>
                                <td>{v.variant.clone()}</td>
                                <td class="num">{v.units}</td>
                                <td class="num">{format!("{:.4}", v.mean)}</td>
                                <td class="num">{format!("{:.1} %", v.chance_best * 100.0)}</td>
                                <td class="num">{format!("{:.1} %", v.share * 100.0)}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
            {chart}
            {let fields = view! {
                <div class="grid-2">
                    <label>"Metric" <input name="metric" value=metric.unwrap_or_else(|| "conversion".into()) required/>
                        <FieldMessage error=err field="metric"/></label>
                    <label>"Read as" <select name="metric_kind">
                        {option("binary", "binary (Beta–Bernoulli)", &kind)}
                        {option("real", "real (Normal)", &kind)}
                    </select><FieldMessage error=err field="kind"/></label>
                    <label>"Better when it" <select name="goal">
                        {option("increase", "increases", &goal)}
                        {option("decrease", "decreases", &goal)}
                    </select><FieldMessage error=err field="goal"/></label>
                    <label>"Every (seconds)" <input name="interval_seconds" type="number" min="1" max="86400" value=interval.to_string()/>
                        <FieldMessage error=err field="interval_seconds"/></label>
                    <label>"Least share (%)" <input name="min_percent" type="number" step="any" min="0" max="50" value=min.to_string()/>
                        <FieldMessage error=err field="min_share"/></label>
                    <label>"Most share (%)" <input name="max_percent" type="number" step="any" min="50" max="100" value=max.to_string()/>
                        <FieldMessage error=err field="max_share"/></label>
                </div>
            };
            if by_request {
                view! {
                    <p class="notice">"The team's approval policy covers the bandit (or the weights it changes): it runs once its change request is approved, within the bounds approved."</p>
                    <super::RequestForm team=endpoint.team.clone() kind="endpoint.bandit" endpoint=Some(endpoint.id) id="request-bandit">
                        {fields}
                        <button type="submit">{if on { "Request these settings" } else { "Request bandit allocation" }}</button>
                    </super::RequestForm>
                }.into_any()
            } else {
                view! {
                    <Form action=save>
                        <input type="hidden" name="id" value=endpoint.id.to_string()/>
                        {fields}
                        <FormError error=err/>
                        <button type="submit" id="bandit-save" disabled=move || save.pending().get()>{if on { "Save" } else { "Turn on" }}</button>
                    </Form>
                }.into_any()
            }}
            {on.then(|| view! {
                <Form action=stop attr:class="inline">
                    <input type="hidden" name="id" value=endpoint.id.to_string()/>
                    <FormError error=stop_err/>
                    <button type="submit" class="secondary" id="bandit-stop">"Stop (keep the weights as they are)"</button>
                </Form>
            })}
        </section>
    }
}

#[component]
fn Analysis(experiment: Experiment) -> impl IntoView {
    let x = experiment;
    let better = if x.goal == "increase" { "higher is better" } else { "lower is better" };
    let reading = if x.kind == "binary" { "rate per invocation" } else { "mean of the values reported" };
    let significant = x.verdict.starts_with("significant");
    let charts: Vec<_> = x
        .variants
        .iter()
        .filter(|v| !v.history.is_empty())
        .map(|v| {
            let pct = |f: &dyn Fn(&crate::endpoints::types::LiftPoint) -> f64| -> Vec<f64> {
                v.history.iter().map(|p| f(p) * 100.0).collect()
            };
            let lines = vec![
                ChartLine { label: "lift %".into(), values: pct(&|p| p.estimate) },
                ChartLine { label: "low".into(), values: pct(&|p| p.low) },
                ChartLine { label: "high".into(), values: pct(&|p| p.high) },
                ChartLine { label: "no change".into(), values: vec![0.0; v.history.len()] },
            ];
            view! { <LineChart name=format!("{} vs {} (%, by minute)", v.variant, x.baseline) lines=lines/> }
        })
        .collect();
    view! {
        <section class="card" id="experiment">
            <h2>"Result"</h2>
            <p class=if significant { "notice strong" } else { "notice" } id="experiment-verdict">{x.verdict.clone()}</p>
            {x.srm_warning.then(|| view! {
                <div class="form-error" role="alert" id="srm-warning">
                    {format!("Sample ratio mismatch (p = {:.2e}): the variants did not get the traffic their weights say. Find the cause before trusting the result.", x.srm_p_value)}
                </div>
            })}
            <p class="muted">
                {format!("Metric {} ({reading}, {better}) · α {} · ", x.metric, x.alpha)}
                "counting from "<Time at=x.window_from/>
                {format!(" · split check p = {:.3}", x.srm_p_value)}
            </p>
            <table id="experiment-variants">
                <thead><tr>
                    <th>"Variant"</th><th class="num">"Weight"</th><th class="num">"Invocations"</th><th class="num">"Units"</th>
                    <th class="num">{if x.kind == "binary" { "Rate" } else { "Mean" }}</th>
                    <th class="num">"Lift"</th><th>"Interval"</th><th class="num">"p"</th><th>"Status"</th>
                </tr></thead>
                <tbody>
                    {x.variants.iter().map(|v| {
                        let pill = match v.status.as_str() {
                            "better" => "pill ok",
                            "worse" => "pill danger",
                            _ => "pill",
                        };
                        view! {
                            <tr data-variant=v.variant.clone()>
                                <td>{v.variant.clone()}</td>
                                <td class="num">{format!("{}", v.weight)}</td>
                                <td class="num">{v.invocations}</td>
                                <td class="num">{v.units}</td>
                                <td class="num">{if x.kind == "binary" { format!("{:.2} %", v.mean * 100.0) } else { format!("{:.4}", v.mean) }}</td>
                                <td class="num">{v.lift.map(|l| percent(l.estimate)).unwrap_or_else(|| "—".into())}</td>
                                <td>{v.lift.map(|l| format!("{} … {}", percent(l.low), percent(l.high))).unwrap_or_default()}</td>
                                <td class="num">{v.lift.map(|l| format!("{:.3}", l.p_value)).unwrap_or_default()}</td>
                                <td><span class=pill>{v.status.clone()}</span></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            <div class="grid-2 charts">{charts}</div>
        </section>
    }
}

#[component]
fn Settings(
    endpoint: Endpoint,
    experiment: Option<Experiment>,
    action: FormAction<SetExperimentForm>,
) -> impl IntoView {
    let err = action.error();
    let x = experiment;
    let metric = x.as_ref().map_or_else(|| "conversion".to_owned(), |x| x.metric.clone());
    let kind = x.as_ref().map_or_else(|| "binary".to_owned(), |x| x.kind.clone());
    let goal = x.as_ref().map_or_else(|| "increase".to_owned(), |x| x.goal.clone());
    let baseline = x.as_ref().map(|x| x.baseline.clone());
    let alpha = x.as_ref().map_or(0.05, |x| x.alpha);
    let started = x.is_some();
    let option = |value: &'static str, label: &'static str, current: &str| {
        view! { <option value=value selected=current == value>{label}</option> }
    };
    view! {
        <section class="card" id="experiment-settings">
            <h2>{if started { "Settings" } else { "Start an experiment" }}</h2>
            <Form action=action>
                <input type="hidden" name="id" value=endpoint.id.to_string()/>
                <div class="grid-2">
                    <label>"Metric" <input name="metric" value=metric required/>
                        <FieldMessage error=err field="metric"/></label>
                    <label>"Read as" <select name="kind">
                        {option("binary", "binary: a rate per invocation (conversion)", &kind)}
                        {option("real", "real: the mean of the values (revenue, rating)", &kind)}
                    </select><FieldMessage error=err field="kind"/></label>
                    <label>"Better when it" <select name="goal">
                        {option("increase", "increases", &goal)}
                        {option("decrease", "decreases", &goal)}
                    </select><FieldMessage error=err field="goal"/></label>
                    <label>"Baseline" <select name="baseline">
                        {endpoint.variants.iter().map(|v| {
                            let chosen = baseline.as_deref().map_or(v.name == endpoint.variants[0].name, |b| b == v.name);
                            view! { <option value=v.name.clone() selected=chosen>{format!("{} ({} v{})", v.name, v.model, v.version)}</option> }
                        }).collect_view()}
                    </select><FieldMessage error=err field="baseline"/></label>
                    <label>"α (false-positive rate)" <input name="alpha" type="number" step="0.001" min="0.001" max="0.2" value=alpha.to_string()/>
                        <FieldMessage error=err field="alpha"/></label>
                    {started.then(|| view! { <label class="check"><input type="checkbox" name="restart" value="on"/>" Start counting again from now"</label> })}
                </div>
                <FormError error=err/>
                <button type="submit" disabled=move || action.pending().get()>{if started { "Save" } else { "Start experiment" }}</button>
            </Form>
        </section>
    }
}
