//! Training pages: the team's job list with this month's spend, the launch
//! form (also for clones), and the job page with its timeline, cost, live
//! log stream and metric charts.

use crate::error::AppError;
use crate::training::{
    ChannelInput, KeyValue, LaunchRequest, LogLine, MetricDefinition, MetricSeries, TrainingJob, TrainingJobSummary,
    check_metric_regex, get_launch_options, get_training_job, launch_training, list_training_jobs, training_metrics,
    training_month_cost, usd, worst_case,
};
use crate::ui::{ErrorBox, FormError, PageHeader, Time, use_refresh};
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use std::collections::BTreeMap;
use uuid::Uuid;

#[component]
fn JobStatus(#[prop(into)] status: String) -> impl IntoView {
    let class = match status.as_str() {
        "completed" => "pill ok",
        "failed" => "pill danger",
        "stopped" => "pill",
        _ => "pill busy",
    };
    view! { <span class=class data-status=status.clone()>{status.clone()}</span> }
}

fn duration(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

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
            active.set(page.items.iter().any(|j| !crate::training::is_final(&j.status)));
        }
    });
    let selected = move |s: &str| status().as_deref() == Some(s);
    view! {
        <PageHeader title="Training" subtitle="Jobs this team ran on SageMaker or the local runner, with their cost."/>
        <div class="toolbar">
            <a class="button" href=move || format!("/teams/{}/training/new", team())>"Launch a job"</a>
            <form method="get" class="filters inline">
                <select name="status" aria-label="Status" onchange="this.form.submit()">
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
                        <strong>{usd(m.total_usd)}</strong>" over "{crate::ui::count(u64::try_from(m.jobs).unwrap_or(0), "job", "jobs")}</p>
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
                            <crate::demo::DemoButton/>
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
            <td><JobStatus status=j.status.clone()/></td>
            <td><code>{j.instance_type.clone()}</code>" × "{j.instance_count}</td>
            <td>{j.duration_seconds.map_or_else(|| "—".to_owned(), duration)}</td>
            <td>{cost}</td>
            <td><Time at=j.created_at/><br/><span class="muted">{j.created_by.clone()}</span></td>
        </tr>
    }
}

/// Editable key/value rows (hyperparameters, tags).
#[component]
fn PairRows(
    rows: RwSignal<Vec<(String, String)>>,
    key_label: &'static str,
    value_label: &'static str,
    name: &'static str,
    /// Called with (row, value) when a value is entered (on change), to check it.
    #[prop(optional)]
    check_value: Option<Callback<(usize, String)>>,
    /// Problems found by `check_value`, by row.
    #[prop(optional)]
    value_errors: Option<RwSignal<BTreeMap<usize, String>>>,
) -> impl IntoView {
    let add = move |_| rows.update(|r| r.push((String::new(), String::new())));
    let row_error = move |i: usize| value_errors.and_then(|e| e.with(|e| e.get(&i).cloned()));
    view! {
        <div class="rows" data-rows=name>
            {move || rows.get().into_iter().enumerate().map(|(i, (k, v))| view! {
                <div class="row">
                    <input placeholder=key_label aria-label=key_label prop:value=k data-key=format!("{name}-{i}")
                        on:input=move |ev| rows.update(|r| if let Some(row) = r.get_mut(i) { row.0 = event_target_value(&ev) })/>
                    <input placeholder=value_label aria-label=value_label prop:value=v data-value=format!("{name}-{i}")
                        aria-invalid=move || row_error(i).map(|_| "true")
                        on:input=move |ev| rows.update(|r| if let Some(row) = r.get_mut(i) { row.1 = event_target_value(&ev) })
                        on:change=move |ev| if let Some(check) = check_value { check.run((i, event_target_value(&ev))) }/>
                    <button type="button" class="link" on:click=move |_| {
                        rows.update(|r| { if i < r.len() { r.remove(i); } });
                        if let Some(e) = value_errors { e.update(BTreeMap::clear) }
                    }>"Remove"</button>
                </div>
                {move || row_error(i).map(|m| view! { <p class="field-error" data-row-error=format!("{name}-{i}")>{m}</p> })}
            }).collect_view()}
            <button type="button" class="secondary" on:click=add>{format!("Add {name}")}</button>
        </div>
    }
}

/// Messages of every field error whose name starts with `prefix`.
fn errors_under(err: Option<AppError>, prefix: &str) -> Vec<String> {
    match err {
        Some(AppError::Validation(fields)) => fields
            .into_iter()
            .filter(|f| f.field.starts_with(prefix))
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect(),
        _ => Vec::new(),
    }
}

#[component]
fn FieldErrors(#[prop(into)] error: Signal<Option<AppError>>, prefix: &'static str) -> impl IntoView {
    view! {
        {move || errors_under(error.get(), prefix).into_iter().map(|m| view! {
            <p class="field-error" data-field=prefix>{m}</p>
        }).collect_view()}
    }
}

/// `/teams/:team/training/new` (`?clone=<job id>` starts from an earlier job).
#[component]
pub fn LaunchPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let clone_of = move || query.with(|q| q.get("clone").and_then(|c| c.parse::<Uuid>().ok()));
    let options = Resource::new(team, get_launch_options);
    let original = Resource::new(clone_of, |id| async move {
        match id {
            Some(id) => get_training_job(id).await.map(Some),
            None => Ok(None),
        }
    });
    view! {
        <PageHeader title="Launch a training job" subtitle="Script mode runs your entry point the way SageMaker does, on SageMaker or on this machine."/>
        <p class="crumbs"><a href=move || format!("/teams/{}/training", team())>"← Training"</a></p>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || match (options.get(), original.get()) {
                (Some(Ok(opts)), Some(Ok(orig))) => {
                    let start = orig.map(|j| LaunchRequest { name: format!("{}-clone", j.name), ..j.request });
                    view! { <LaunchForm team=team() options=opts start=start.unwrap_or_default()/> }.into_any()
                }
                (Some(Err(e)), _) | (_, Some(Err(e))) => view! { <ErrorBox error=e/> }.into_any(),
                _ => view! { <p class="muted">"Loading…"</p> }.into_any(),
            }}
        </Suspense>
    }
}

#[component]
fn LaunchForm(team: String, options: crate::training::LaunchOptions, start: LaunchRequest) -> impl IntoView {
    let local = options.backend == "local";
    let name = RwSignal::new(start.name.clone());
    let mode_script = RwSignal::new(start.image.is_none() || start.entry_point.is_some());
    let image = RwSignal::new(start.image.clone().unwrap_or_default());
    let entry = RwSignal::new(start.entry_point.clone().unwrap_or_else(|| "train.py".into()));
    let source = RwSignal::new(start.source_uri.clone().unwrap_or_default());
    let source_files = RwSignal::new(Vec::<String>::new());
    let source_state = RwSignal::new(String::new());
    let framework = RwSignal::new(
        start.framework.clone().or_else(|| options.frameworks.first().map(|f| f.key.clone())).unwrap_or_default(),
    );
    let instance_type = RwSignal::new(start.instance_type.clone());
    let count = RwSignal::new(start.instance_count.to_string());
    let volume = RwSignal::new(start.volume_gb.to_string());
    let runtime = RwSignal::new(start.max_runtime_seconds.to_string());
    let spot = RwSignal::new(start.spot);
    let max_wait = RwSignal::new(start.max_wait_seconds.map(|w| w.to_string()).unwrap_or_default());
    let checkpoint = RwSignal::new(start.checkpoint_uri.clone().unwrap_or_default());
    let output = RwSignal::new(start.output_uri.clone().unwrap_or_else(|| options.default_output_uri.clone()));
    let role = RwSignal::new(start.role_arn.clone().or_else(|| options.default_role_arn.clone()).unwrap_or_default());
    let hps =
        RwSignal::new(start.hyperparameters.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect::<Vec<_>>());
    let metrics =
        RwSignal::new(start.metric_definitions.iter().map(|m| (m.name.clone(), m.regex.clone())).collect::<Vec<_>>());
    // each regex is checked by the server's own rules as soon as it is entered
    let regex_errors = RwSignal::new(BTreeMap::<usize, String>::new());
    let regex_team = team.clone();
    let check_regex = Callback::new(move |(row, regex): (usize, String)| {
        let team = regex_team.clone();
        leptos::task::spawn_local(async move {
            let problem = match check_metric_regex(team, regex).await {
                Ok(()) => None,
                Err(e) => Some(e.field_message("regex").unwrap_or_else(|| e.to_string())),
            };
            regex_errors.update(|errs| match problem {
                Some(m) => drop(errs.insert(row, m)),
                None => drop(errs.remove(&row)),
            });
        });
    });
    let tags = RwSignal::new(start.tags.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect::<Vec<_>>());
    let versions = options.versions.clone();
    let channels = RwSignal::new(
        start.channels.iter().map(|c| (c.name.clone(), c.version_id.to_string())).collect::<Vec<(String, String)>>(),
    );
    let prices = options.instance_types.clone();
    let worst = move || {
        let price = prices.iter().find(|(t, _)| *t == instance_type.get()).map(|(_, p)| *p)?;
        let c = count.get().trim().parse::<i32>().ok()?;
        let r = runtime.get().trim().parse::<i32>().ok()?;
        Some(worst_case(price, c, r))
    };
    let launch = Action::new(move |(team, request): &(String, LaunchRequest)| {
        let (team, request) = (team.clone(), request.clone());
        async move { launch_training(team, request).await }
    });
    let err = Signal::derive(move || launch.value().get().and_then(Result::err));
    let navigate = leptos_router::hooks::use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(job)) = launch.value().get() {
            navigate(&format!("/teams/{}/training/{}", job.team, job.id), Default::default());
        }
    });
    let team_for_submit = team.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let int = |s: RwSignal<String>, default: i32| s.get_untracked().trim().parse::<i32>().unwrap_or(default);
        let some = |s: RwSignal<String>| Some(s.get_untracked()).filter(|v| !v.trim().is_empty());
        let script = mode_script.get_untracked();
        let request = LaunchRequest {
            name: name.get_untracked(),
            image: if script && local { None } else { some(image) },
            entry_point: if script { some(entry) } else { None },
            source_uri: if script { some(source) } else { None },
            framework: if script && !local { some(framework) } else { None },
            instance_type: instance_type.get_untracked(),
            instance_count: int(count, 0),
            volume_gb: int(volume, 0),
            max_runtime_seconds: int(runtime, 0),
            spot: spot.get_untracked(),
            max_wait_seconds: if spot.get_untracked() {
                some(max_wait).and_then(|w| w.trim().parse().ok())
            } else {
                None
            },
            checkpoint_uri: if spot.get_untracked() { some(checkpoint) } else { None },
            hyperparameters: hps.get_untracked().into_iter().map(|(key, value)| KeyValue { key, value }).collect(),
            metric_definitions: metrics
                .get_untracked()
                .into_iter()
                .map(|(name, regex)| MetricDefinition { name, regex })
                .collect(),
            channels: channels
                .get_untracked()
                .into_iter()
                .map(|(name, v)| ChannelInput { name, version_id: v.parse().unwrap_or_else(|_| Uuid::nil()) })
                .collect(),
            output_uri: some(output),
            tags: tags.get_untracked().into_iter().map(|(key, value)| KeyValue { key, value }).collect(),
            role_arn: if local { None } else { some(role) },
        };
        launch.dispatch((team_for_submit.clone(), request));
    };
    let upload_team = team.clone();
    let on_files = move |ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast as _;
            let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) else { return };
            let Some(files) = input.files() else { return };
            let team = upload_team.clone();
            source_state.set("Uploading the source folder…".into());
            leptos::task::spawn_local(async move {
                match upload_source(&team, &files).await {
                    Ok(archive) => {
                        source.set(archive.source_uri);
                        source_state.set(format!(
                            "Stored {}, {} bytes.",
                            crate::ui::count(archive.files.len() as u64, "file", "files"),
                            archive.bytes
                        ));
                        if !archive.files.iter().any(|f| *f == entry.get_untracked())
                            && let Some(py) = archive.files.iter().find(|f| f.ends_with(".py"))
                        {
                            entry.set(py.clone());
                        }
                        source_files.set(archive.files);
                    }
                    Err(message) => source_state.set(message),
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (ev, &upload_team);
    };
    let field = move |f: &'static str| view! { <crate::ui::FieldMessage error=err field=f/> };
    let type_options = options.instance_types.clone();
    let framework_options = options.frameworks.clone();
    view! {
        <form class="card stack launch" id="launch-form" on:submit=submit>
            <FormError error=err/>
            {local.then(|| view! { <p class="notice">"Local mode: the job runs on this machine with the local runner (script mode, one instance). Cost is what the same run would cost on SageMaker."</p> })}
            <label>"Job name" <input name="name" required prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/></label>
            {field("name")}
            <fieldset>
                <legend>"What to run"</legend>
                {(!local).then(|| view! {
                    <label class="check"><input type="radio" name="mode" checked=move || mode_script.get() on:change=move |_| mode_script.set(true)/>" Script mode (entry point + source folder)"</label>
                    <label class="check"><input type="radio" name="mode" checked=move || !mode_script.get() on:change=move |_| mode_script.set(false)/>" Container image"</label>
                })}
                <div class:hidden=move || !mode_script.get()>
                    <label>"Source folder"
                        <input type="file" id="source-files" multiple prop:webkitdirectory=true on:change=on_files/>
                    </label>
                    <p class="muted" data-testid="source-state">{move || source_state.get()}</p>
                    <label>"…or a stored source archive" <input name="source_uri" placeholder="s3://…/sourcedir.tar.gz" prop:value=move || source.get() on:input=move |ev| source.set(event_target_value(&ev))/></label>
                    {field("source_uri")}
                    <label>"Entry point" <input name="entry_point" list="source-file-list" prop:value=move || entry.get() on:input=move |ev| entry.set(event_target_value(&ev))/></label>
                    <datalist id="source-file-list">{move || source_files.get().into_iter().map(|f| view! { <option value=f/> }).collect_view()}</datalist>
                    {field("entry_point")}
                    {(!local).then(|| view! {
                        <label>"Framework image"
                            <select name="framework" on:change=move |ev| framework.set(event_target_value(&ev))>
                                {framework_options.iter().map(|f| {
                                    let key = f.key.clone();
                                    let is = key.clone();
                                    view! { <option value=key selected=move || framework.get() == is>{f.label.clone()}</option> }
                                }).collect_view()}
                            </select>
                        </label>
                        {field("framework")}
                    })}
                </div>
                {(!local).then(|| view! {
                    <div class:hidden=move || mode_script.get()>
                        <label>"Image URI" <input name="image" placeholder="123456789012.dkr.ecr.us-east-1.amazonaws.com/train:latest" prop:value=move || image.get() on:input=move |ev| image.set(event_target_value(&ev))/></label>
                    </div>
                })}
                {field("image")}
            </fieldset>
            <fieldset>
                <legend>"Resources"</legend>
                <div class="grid-3">
                    <label>"Instance type"
                        <select name="instance_type" on:change=move |ev| instance_type.set(event_target_value(&ev))>
                            {type_options.iter().map(|(t, p)| {
                                let value = t.clone();
                                let is = t.clone();
                                view! { <option value=value selected=move || instance_type.get() == is>{format!("{t} · ${p}/h")}</option> }
                            }).collect_view()}
                        </select>
                    </label>
                    <label>"Instances" <input name="instance_count" type="number" min="1" prop:value=move || count.get() on:input=move |ev| count.set(event_target_value(&ev))/></label>
                    <label>"Volume (GB)" <input name="volume_gb" type="number" min="1" prop:value=move || volume.get() on:input=move |ev| volume.set(event_target_value(&ev))/></label>
                </div>
                {field("instance_type")}{field("instance_count")}{field("volume_gb")}
                <label>"Max runtime (seconds)" <input name="max_runtime_seconds" type="number" min="1" prop:value=move || runtime.get() on:input=move |ev| runtime.set(event_target_value(&ev))/></label>
                {field("max_runtime_seconds")}
                <p class="worst-case" data-testid="worst-case">"Worst case: "
                    <strong>{move || worst().map_or_else(|| "—".to_owned(), usd)}</strong>" (instances × price × max runtime)"</p>
                <label class="check"><input type="checkbox" name="spot" prop:checked=move || spot.get() on:change=move |ev| spot.set(event_target_checked(&ev))/>" Managed spot training"</label>
                <div class:hidden=move || !spot.get()>
                    <label>"Max wait (seconds, at least the max runtime)" <input name="max_wait_seconds" type="number" prop:value=move || max_wait.get() on:input=move |ev| max_wait.set(event_target_value(&ev))/></label>
                    {field("max_wait_seconds")}
                    <label>"Checkpoint S3 URI" <input name="checkpoint_uri" placeholder="s3://…/checkpoints/" prop:value=move || checkpoint.get() on:input=move |ev| checkpoint.set(event_target_value(&ev))/></label>
                    {field("checkpoint_uri")}
                </div>
            </fieldset>
            <fieldset>
                <legend>"Input channels"</legend>
                <p class="muted">"Each channel is a ready dataset version of this team; the script finds it in SM_CHANNEL_<NAME>."</p>
                <div class="rows" data-rows="channels">
                    {move || channels.get().into_iter().enumerate().map(|(i, (cname, vid))| {
                        let versions = versions.clone();
                        view! {
                            <div class="row">
                                <input placeholder="train" aria-label="Channel name" prop:value=cname data-key=format!("channel-{i}")
                                    on:input=move |ev| channels.update(|r| if let Some(row) = r.get_mut(i) { row.0 = event_target_value(&ev) })/>
                                <select aria-label="Dataset version" data-value=format!("channel-{i}")
                                    on:change=move |ev| channels.update(|r| if let Some(row) = r.get_mut(i) { row.1 = event_target_value(&ev) })>
                                    <option value="">"Choose a version…"</option>
                                    {versions.into_iter().map(|(id, label)| {
                                        let id = id.to_string();
                                        let is = id == vid;
                                        view! { <option value=id selected=is>{label}</option> }
                                    }).collect_view()}
                                </select>
                                <button type="button" class="link" on:click=move |_| channels.update(|r| { if i < r.len() { r.remove(i); } })>"Remove"</button>
                            </div>
                        }
                    }).collect_view()}
                    <button type="button" class="secondary" on:click=move |_| channels.update(|r| r.push((if r.is_empty() { "train".into() } else { String::new() }, String::new())))>"Add channel"</button>
                </div>
                <FieldErrors error=err prefix="channels"/>
            </fieldset>
            <fieldset>
                <legend>"Hyperparameters"</legend>
                <p class="muted">"Passed as --name value and in hyperparameters.json (all values are strings)."</p>
                <PairRows rows=hps key_label="name" value_label="value" name="hyperparameter"/>
                <FieldErrors error=err prefix="hyperparameters"/>
            </fieldset>
            <fieldset>
                <legend>"Metrics"</legend>
                <p class="muted">"A regex per metric; its first group is the value, read from every log line (e.g. loss=([0-9.]+))."</p>
                <PairRows rows=metrics key_label="metric name" value_label="regex" name="metric"
                    check_value=check_regex value_errors=regex_errors/>
                <FieldErrors error=err prefix="metric_definitions"/>
            </fieldset>
            <fieldset>
                <legend>"Output"</legend>
                <label>"Output S3 path" <input name="output_uri" prop:value=move || output.get() on:input=move |ev| output.set(event_target_value(&ev))/></label>
                {field("output_uri")}
                {(!local).then(|| view! {
                    <label>"IAM role ARN" <input name="role_arn" prop:value=move || role.get() on:input=move |ev| role.set(event_target_value(&ev))/></label>
                    {field("role_arn")}
                })}
                <p class="muted">"Tags"</p>
                <PairRows rows=tags key_label="key" value_label="value" name="tag"/>
                <FieldErrors error=err prefix="tags"/>
            </fieldset>
            <button type="submit" disabled=move || launch.pending().get()>"Launch"</button>
        </form>
    }
}

/// Posts the chosen folder's files to the source endpoint (browser only).
#[cfg(feature = "hydrate")]
async fn upload_source(team: &str, files: &web_sys::FileList) -> Result<crate::training::SourceArchive, String> {
    use wasm_bindgen::JsCast as _;
    let form = web_sys::FormData::new().map_err(|_| "The browser cannot build a form.".to_owned())?;
    for i in 0..files.length() {
        let Some(file) = files.get(i) else { continue };
        // A folder pick names files "<folder>/<path>": keep the path inside the folder.
        let relative = js_sys::Reflect::get(&file, &"webkitRelativePath".into())
            .ok()
            .and_then(|v| v.as_string())
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('/').map_or(p.clone(), |(_, rest)| rest.to_owned()))
            .unwrap_or_else(|| file.name());
        form.append_with_blob_and_filename("file", &file, &relative).map_err(|_| "Could not add a file.".to_owned())?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&form);
    let url = format!("/api/v1/teams/{team}/training-sources");
    let request = web_sys::Request::new_with_str_and_init(&url, &init).map_err(|_| "Bad request.".to_owned())?;
    let window = web_sys::window().ok_or("no window")?;
    let response: web_sys::Response = wasm_bindgen_futures::JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|_| "Could not reach Capstan.".to_owned())?
        .dyn_into()
        .map_err(|_| "Unexpected response.".to_owned())?;
    let text = wasm_bindgen_futures::JsFuture::from(response.text().map_err(|_| "Unreadable response.".to_owned())?)
        .await
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default();
    if !response.ok() {
        let detail = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["detail"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("HTTP {}", response.status()));
        return Err(format!("The source folder was not stored: {detail}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("Unexpected response: {e}"))
}

/// `/teams/:team/training/:id`
#[component]
pub fn JobPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|s| s.parse::<Uuid>().ok()));
    let active = RwSignal::new(false);
    let tick = use_refresh(active);
    let stop = ServerAction::<crate::training::StopTrainingJob>::new();
    let stop_err = Signal::derive(move || stop.value().get().and_then(Result::err));
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
                Ok(j) => view! { <JobView job=j stop=stop stop_err=stop_err/> }.into_any(),
            })}
        </Suspense>
        <section class="card">
            <h2>"Metrics"</h2>
            <Transition fallback=|| ()>
                {move || metrics.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(series) if series.is_empty() => view! { <p class="muted">"No metric values yet. Values appear as log lines match the metric definitions."</p> }.into_any(),
                    Ok(series) => view! { <div class="charts">{series.into_iter().map(|s| view! { <Chart series=s/> }).collect_view()}</div> }.into_any(),
                })}
            </Transition>
        </section>
        {move || id().map(|id| view! { <LogViewer id/> })}
    }
}

#[component]
fn JobView(
    job: TrainingJob,
    stop: ServerAction<crate::training::StopTrainingJob>,
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
            <JobStatus status=j.status.clone()/>
            {j.secondary_status.clone().map(|s| view! { <span class="muted">" "{s}</span> })}
        </p>
        <div class="toolbar">
            {running.then(|| view! {
                <ActionForm action=stop attr:class="inline">
                    <input type="hidden" name="id" value=j.id.to_string()/>
                    <button type="submit" class="danger" disabled=move || stop.pending().get()>"Stop"</button>
                </ActionForm>
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
                {j.artifact_uri.clone().map(|a| view! { <dt>"Model artifact"</dt><dd><code data-testid="artifact">{a.clone()}</code>" "<crate::ui::CopyButton text=a/></dd> })}
                {(!j.final_metrics.is_empty()).then(|| view! {
                    <dt>"Final metrics"</dt><dd>{j.final_metrics.iter().map(|m| view! { <div><code>{m.name.clone()}</code>" = "{m.value}</div> }).collect_view()}</dd>
                })}
                <dt>"Launched"</dt><dd><Time at=j.created_at/>" by "{j.created_by.clone()}</dd>
            </dl>
        </section>
    }
}

/// One metric as an SVG line chart (x: log line order, y: value).
#[component]
fn Chart(series: MetricSeries) -> impl IntoView {
    let (w, h, pad) = (320.0_f64, 140.0_f64, 8.0_f64);
    let values: Vec<f64> = series.points.iter().map(|p| p.value).collect();
    let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let span = if (max - min).abs() < f64::EPSILON { 1.0 } else { max - min };
    let n = values.len().max(2) - 1;
    let points: String = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = pad + (w - 2.0 * pad) * i as f64 / n as f64;
            let y = h - pad - (h - 2.0 * pad) * (v - min) / span;
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ");
    let last = values.last().copied().unwrap_or_default();
    view! {
        <figure class="chart" data-metric=series.name.clone()>
            <figcaption><strong>{series.name.clone()}</strong>" "<span class="muted">{format!("last {last:.4} · min {min:.4} · max {max:.4} · {} points", values.len())}</span></figcaption>
            <svg viewBox=format!("0 0 {w} {h}") role="img" aria-label=format!("{} over time", series.name)>
                <rect x="0" y="0" width=w height=h class="chart-bg"/>
                <polyline points=points class="chart-line"/>
            </svg>
        </figure>
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
    let _ = (id, log_box);
    let shown = move || {
        let q = search.get().to_lowercase();
        lines.with(|l| {
            l.iter()
                .filter(|line| q.is_empty() || line.text.to_lowercase().contains(&q))
                .map(|line| format!("[{}] {}\n", line.stream, line.text))
                .collect::<String>()
        })
    };
    view! {
        <section class="card">
            <h2>"Logs " <span class="muted" data-testid="log-state">{move || state.get()}</span></h2>
            <div class="toolbar">
                <label class="check"><input type="checkbox" prop:checked=move || follow.get() on:change=move |ev| follow.set(event_target_checked(&ev))/>" Follow"</label>
                <input type="search" placeholder="Search the log" aria-label="Search the log" prop:value=move || search.get() on:input=move |ev| search.set(event_target_value(&ev))/>
                <a class="button secondary" href=format!("/api/v1/training-jobs/{id}/logs?format=text") rel="external" download="">"Download"</a>
                <span class="muted">{move || crate::ui::count(lines.with(Vec::len) as u64, "line", "lines")}</span>
            </div>
            <pre class="log" id="log" node_ref=log_box>{shown}</pre>
        </section>
    }
}
