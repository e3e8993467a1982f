//! The job page: status, timeline, cost, metric charts and the live log.

use crate::kernel::chart::{ChartLine, LineChart};
use crate::kernel::error::AppError;
use crate::kernel::form::{Form, FormAction};
use crate::kernel::format::usd;
use crate::kernel::widgets::{ErrorBox, FormError, PageHeader, Time, use_refresh};
use crate::training::pages::{JobStatus, duration};
use crate::training::rpc::{get_training_job, training_metrics};
use crate::training::types::{LogLine, TrainingJob};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use uuid::Uuid;

/// `/teams/:team/training/:id`
#[component]
pub fn JobPage(
    /// What a completed job's page offers next (the registry's "register as
    /// model version", given by the app so training need not know it):
    /// called with the team, the job's id and its name.
    #[prop(optional)]
    on_completed: Option<fn(String, Uuid, String) -> AnyView>,
) -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|s| s.parse::<Uuid>().ok()));
    let active = RwSignal::new(false);
    let tick = use_refresh(active);
    let stop = FormAction::<crate::training::rpc::StopTrainingJob>::new();
    let stop_err = stop.error();
    let job = Resource::new(
        move || (id(), tick.get(), stop.version().get()),
        |(id, ..)| async move {
            match id {
                Some(id) => get_training_job(id).await,
                None => Err(AppError::NotFound("Training job".into())),
            }
        },
    );
    let metrics = Resource::new(
        move || (id(), tick.get()),
        |(id, _)| async move {
            match id {
                Some(id) => training_metrics(id).await,
                None => Ok(Vec::new()),
            }
        },
    );
    Effect::new(move |_| {
        if let Some(Ok(j)) = job.get() {
            active.set(!j.is_final());
        }
    });
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || job.get().map(|res| match res {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                Ok(j) => {
                    let next = on_completed
                        .filter(|_| j.status == crate::training::types::TrainingStatus::Completed && j.artifact_uri.is_some())
                        .map(|f| f(j.team.clone(), j.id, j.name.clone()));
                    view! { <JobView job=j stop=stop stop_err=stop_err/> {next} }.into_any()
                }
            })}
        </Suspense>
        <section class="card">
            <h2>"Metrics"</h2>
            <Transition fallback=|| ()>
                {move || metrics.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(series) if series.is_empty() => view! { <p class="muted">"No metric values yet. Values appear as log lines match the metric definitions."</p> }.into_any(),
                    Ok(series) => view! { <div class="charts">{series.into_iter().map(|s| {
                        let line = ChartLine { label: s.name.clone(), values: s.points.iter().map(|p| p.value).collect() };
                        view! { <LineChart name=s.name lines=vec![line]/> }
                    }).collect_view()}</div> }.into_any(),
                })}
            </Transition>
        </section>
        {move || id().map(|id| view! { <LogViewer id/> })}
    }
}

#[component]
fn JobView(
    job: TrainingJob,
    stop: FormAction<crate::training::rpc::StopTrainingJob>,
    stop_err: Signal<Option<AppError>>,
) -> impl IntoView {
    let j = job;
    let clone_href = format!("/teams/{}/training/new?clone={}", j.team, j.id);
    let cost = j.cost.clone();
    let local = j.backend == "local";
    let running = !j.is_final();
    view! {
        <PageHeader title=j.name.clone() subtitle=format!("{} job {}", if local { "Local" } else { "SageMaker" }, j.engine_name)/>
        <p class="crumbs"><a href=format!("/teams/{}/training", j.team)>"← Training"</a>
            <JobStatus status=j.status/>
            // SageMaker's secondary status adds something only when it says more than the status
            {j.secondary_status.clone().filter(|s| !s.eq_ignore_ascii_case(j.status.as_str())).map(|s| view! { <span class="muted" data-testid="secondary-status">" "{s}</span> })}
        </p>
        <div class="toolbar">
            {running.then(|| view! {
                <Form action=stop attr:class="inline">
                    <input type="hidden" name="id" value=j.id.to_string()/>
                    <button type="submit" class="danger" disabled=move || stop.pending().get()>"Stop"</button>
                </Form>
            })}
            <a class="button secondary" href=clone_href>"Clone"</a>
        </div>
        <FormError error=stop_err/>
        {j.failure_reason.clone().map(|f| view! {
            <div class="form-error failure" role="alert"><strong>{j.error_code.clone().unwrap_or_else(|| "Failed".into())}</strong><pre>{f}</pre></div>
        })}
        {j.last_error.clone().map(|e| view! { <p class="notice">"Retrying: "{e}</p> })}
        <div class="grid-2">
            <section class="card">
                <h2>"Cost"</h2>
                <dl class="facts" data-testid="cost">
                    <dt>"Price"</dt><dd>{cost.usd_per_hour.map_or_else(|| "not in the price table".to_owned(), |p| format!("${p}/h per instance"))}</dd>
                    <dt>"Worst case"</dt><dd>{cost.worst_case_usd.map_or_else(|| "—".to_owned(), usd)}</dd>
                    {cost.accrued_usd.map(|a| view! { <dt>"So far"</dt><dd data-testid="accrued">{usd(a)}</dd> })}
                    {cost.actual_usd.map(|a| view! { <dt>"Actual"</dt><dd data-testid="actual-cost">{usd(a)}</dd> })}
                    {cost.spot_savings.map(|s| view! { <dt>"Spot savings"</dt><dd>{format!("{:.0}%", s * 100.0)}</dd> })}
                    {j.billable_seconds.map(|b| view! { <dt>"Billable"</dt><dd>{duration(b)}</dd> })}
                </dl>
                {local.then(|| view! { <p class="muted">"Local runs cost nothing; this is what the same run would cost on SageMaker."</p> })}
            </section>
            <section class="card">
                <h2>"Timeline"</h2>
                <ol class="timeline" data-testid="timeline">
                    {j.transitions.iter().map(|t| {
                        let took = t.end.map(|e| duration((e - t.start).whole_seconds()));
                        view! { <li><strong>{t.status.clone()}</strong>" "<Time at=t.start/>{took.map(|d| view! { <span class="muted">" ("{d}")"</span> })}<br/><span class="muted">{t.message.clone()}</span></li> }
                    }).collect_view()}
                </ol>
            </section>
        </div>
        <section class="card">
            <h2>"Details"</h2>
            <dl class="facts">
                <dt>"Instances"</dt><dd><code>{j.request.instance_type.clone()}</code>" × "{j.request.instance_count}", "{j.request.volume_gb}" GB"</dd>
                <dt>"Max runtime"</dt><dd>{duration(i64::from(j.request.max_runtime_seconds))}</dd>
                {j.request.entry_point.clone().map(|e| view! { <dt>"Entry point"</dt><dd><code>{e}</code></dd> })}
                {j.request.image.clone().map(|i| view! { <dt>"Image"</dt><dd><code>{i}</code></dd> })}
                <dt>"Channels"</dt><dd>{j.channels.iter().map(|c| view! {
                    <div><code>{c.name.clone()}</code>" ← "<a href=format!("/teams/{}/versions/{}", j.team, c.version_id)>{format!("{} v{}", c.dataset, c.version)}</a></div>
                }).collect_view()}</dd>
                <dt>"Hyperparameters"</dt><dd>{j.request.hyperparameters.iter().map(|kv| view! { <div><code>{format!("--{} {}", kv.key, kv.value)}</code></div> }).collect_view()}</dd>
                <dt>"Output"</dt><dd><code>{j.output_uri.clone()}</code></dd>
                {j.artifact_uri.clone().map(|a| view! { <dt>"Model artifact"</dt><dd><code data-testid="artifact">{a.clone()}</code>" "<crate::kernel::widgets::CopyButton text=a/></dd> })}
                {(!j.final_metrics.is_empty()).then(|| view! {
                    <dt>"Final metrics"</dt><dd>{j.final_metrics.iter().map(|m| view! { <div><code>{m.name.clone()}</code>" = "{m.value}</div> }).collect_view()}</dd>
                })}
                <dt>"Launched"</dt><dd><Time at=j.created_at/>" by "{j.created_by.clone()}</dd>
            </dl>
        </section>
    }
}

/// The live log: server-sent events from the log endpoint, with follow,
/// search (in the lines received) and download.
#[component]
fn LogViewer(id: Uuid) -> impl IntoView {
    let lines = RwSignal::new(Vec::<LogLine>::new());
    let follow = RwSignal::new(true);
    let search = RwSignal::new(String::new());
    let state = RwSignal::new("connecting…".to_owned());
    let log_box = NodeRef::<leptos::html::Pre>::new();
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast as _;
        use wasm_bindgen::closure::Closure;
        let url = format!("/api/v1/training-jobs/{id}/logs");
        if let Ok(source) = web_sys::EventSource::new(&url) {
            let on_line = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
                if let Some(text) = ev.data().as_string()
                    && let Ok(line) = serde_json::from_str::<LogLine>(&text)
                {
                    lines.update(|l| l.push(line));
                    state.set("live".into());
                }
            });
            source.set_onmessage(Some(on_line.as_ref().unchecked_ref()));
            on_line.forget();
            let on_status = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
                if let Some(s) = ev.data().as_string() {
                    state.set(format!("job {s}"));
                }
            });
            let _ = source.add_event_listener_with_callback("status", on_status.as_ref().unchecked_ref());
            on_status.forget();
            let closer = source.clone();
            let on_end = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
                state.set(format!("complete (job {})", ev.data().as_string().unwrap_or_default()));
                closer.close();
            });
            let _ = source.add_event_listener_with_callback("end", on_end.as_ref().unchecked_ref());
            on_end.forget();
            let cleanup = StoredValue::new_local(source);
            on_cleanup(move || cleanup.with_value(web_sys::EventSource::close));
        }
        Effect::new(move |_| {
            lines.track();
            if follow.get()
                && let Some(el) = log_box.get()
            {
                el.set_scroll_top(el.scroll_height());
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = log_box;
    // The server renders the last lines, so the page shows them without
    // JavaScript too; the live stream replaces them once it delivers.
    let tail = Resource::new(move || id, crate::training::rpc::training_log_tail);
    let current = move || {
        let live = lines.get();
        if live.is_empty() { tail.get().and_then(Result::ok).unwrap_or_default() } else { live }
    };
    let shown = move || {
        let q = search.get().to_lowercase();
        current()
            .iter()
            .filter(|line| q.is_empty() || line.text.to_lowercase().contains(&q))
            .map(|line| format!("[{}] {}\n", line.stream, line.text))
            .collect::<String>()
    };
    // Until the stream delivers, the lines shown are the stored tail.
    let status = move || {
        if lines.with(Vec::is_empty) {
            format!("{} (last {} stored lines shown)", state.get(), crate::training::rpc::LOG_TAIL_LINES)
        } else {
            state.get()
        }
    };
    view! {
        <section class="card">
            <h2>"Logs " <span class="muted" data-testid="log-state">{status}</span></h2>
            <div class="toolbar">
                <label class="check"><input type="checkbox" prop:checked=move || follow.get() on:change=move |ev| follow.set(event_target_checked(&ev))/>" Follow"</label>
                <input type="search" placeholder="Search the log" aria-label="Search the log" prop:value=move || search.get() on:input=move |ev| search.set(event_target_value(&ev))/>
                <a class="button secondary" href=format!("/api/v1/training-jobs/{id}/logs?format=text") rel="external" download="">"Download"</a>
                <Suspense fallback=|| ()>
                    <span class="muted" data-testid="log-count">{move || crate::kernel::format::count(current().len() as u64, "line", "lines")}</span>
                </Suspense>
            </div>
            <Suspense fallback=|| view! { <pre class="log">"Loading…"</pre> }>
                <pre class="log" id="log" node_ref=log_box>{shown}</pre>
            </Suspense>
        </section>
    }
}
