//! The launch form (also for clones): what to run, resources with the
//! worst-case cost, input channels, hyperparameters and metric definitions.

use crate::kernel::error::AppError;
use crate::kernel::format::usd;
use crate::kernel::widgets::{ErrorBox, FormError, PageHeader};
use crate::training::rpc::{check_metric_regex, get_launch_options, get_training_job, launch_training};
use crate::training::types::{ChannelInput, KeyValue, LaunchRequest, MetricDefinition, worst_case};
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Messages of the field errors about row `i` of the list `prefix`
/// (`metric_definitions[2].regex`), without the raw field path.
fn row_errors(err: Option<&AppError>, prefix: &str, i: usize) -> Vec<String> {
    let row = format!("{prefix}[{i}]");
    match err {
        Some(AppError::Validation(fields)) => fields
            .iter()
            .filter(|f| f.field == row || f.field.starts_with(&format!("{row}.")))
            .map(|f| f.message.clone())
            .collect(),
        _ => Vec::new(),
    }
}

/// Messages of field errors about the list `prefix` as a whole (not one row).
fn list_errors(err: Option<AppError>, prefix: &str) -> Vec<String> {
    match err {
        Some(AppError::Validation(fields)) => fields
            .into_iter()
            .filter(|f| f.field == prefix || (f.field.starts_with(prefix) && !f.field[prefix.len()..].starts_with('[')))
            .map(|f| f.message)
            .collect(),
        _ => Vec::new(),
    }
}

/// Editable key/value rows (hyperparameters, metrics, tags); the errors a
/// launch or a live check found for a row are shown under that row.
#[component]
fn PairRows(
    rows: RwSignal<Vec<(String, String)>>,
    key_label: &'static str,
    value_label: &'static str,
    name: &'static str,
    /// The launch request's field holding these rows (`metric_definitions`).
    field: &'static str,
    error: Signal<Option<AppError>>,
    /// Called with (row, value) when a value is entered (on change), to check it.
    #[prop(optional)]
    check_value: Option<Callback<(usize, String)>>,
    /// Problems found by `check_value`, by row.
    #[prop(optional)]
    value_errors: Option<RwSignal<BTreeMap<usize, String>>>,
) -> impl IntoView {
    let add = move |_| rows.update(|r| r.push((String::new(), String::new())));
    let messages = move |i: usize| {
        let mut all: Vec<String> = value_errors.and_then(|e| e.with(|e| e.get(&i).cloned())).into_iter().collect();
        for m in error.with(|e| row_errors(e.as_ref(), field, i)) {
            if !all.contains(&m) {
                all.push(m);
            }
        }
        all
    };
    view! {
        <div class="rows" data-rows=name>
            {move || rows.get().into_iter().enumerate().map(|(i, (k, v))| view! {
                <div class="row">
                    <input placeholder=key_label aria-label=key_label prop:value=k data-key=format!("{name}-{i}")
                        on:input=move |ev| rows.update(|r| if let Some(row) = r.get_mut(i) { row.0 = event_target_value(&ev) })/>
                    <input placeholder=value_label aria-label=value_label prop:value=v data-value=format!("{name}-{i}")
                        aria-invalid=move || (!messages(i).is_empty()).then_some("true")
                        on:input=move |ev| rows.update(|r| if let Some(row) = r.get_mut(i) { row.1 = event_target_value(&ev) })
                        on:change=move |ev| if let Some(check) = check_value { check.run((i, event_target_value(&ev))) }/>
                    <button type="button" class="link" on:click=move |_| {
                        rows.update(|r| { if i < r.len() { r.remove(i); } });
                        if let Some(e) = value_errors { e.update(BTreeMap::clear) }
                    }>"Remove"</button>
                </div>
                {move || messages(i).into_iter().map(|m| view! { <p class="field-error" data-row-error=format!("{name}-{i}")>{m}</p> }).collect_view()}
            }.into_any()).collect_view()}
            <button type="button" class="secondary" on:click=add>{format!("Add {name}")}</button>
            <ListErrors error=error field=field/>
        </div>
    }
    .into_any()
}

#[component]
fn ListErrors(error: Signal<Option<AppError>>, field: &'static str) -> impl IntoView {
    move || {
        list_errors(error.get(), field)
            .into_iter()
            .map(|m| view! { <p class="field-error" data-field=field>{m}</p> })
            .collect_view()
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

/// The runtime units the form offers, in seconds.
const RUNTIME_UNITS: [(i32, &str); 3] = [(3600, "hours"), (60, "minutes"), (1, "seconds")];

/// The largest unit that states `seconds` (and `also`, if given) exactly.
fn runtime_unit(seconds: i32, also: Option<i32>) -> i32 {
    RUNTIME_UNITS.iter().map(|(u, _)| *u).find(|u| seconds % u == 0 && also.is_none_or(|a| a % u == 0)).unwrap_or(1)
}

/// Instance types with accelerators, which the local runner cannot give a job.
fn has_accelerator(instance_type: &str) -> bool {
    ["ml.p", "ml.g", "ml.trn", "ml.inf"].iter().any(|f| instance_type.starts_with(f))
}

/// Every value the launch form edits; the sections below share it.
#[derive(Clone, Copy)]
struct Fields {
    local: bool,
    err: Signal<Option<AppError>>,
    name: RwSignal<String>,
    mode_script: RwSignal<bool>,
    image: RwSignal<String>,
    entry: RwSignal<String>,
    source: RwSignal<String>,
    source_files: RwSignal<Vec<String>>,
    source_state: RwSignal<String>,
    /// Why the last source upload failed, shown as every form shows errors.
    source_error: RwSignal<Option<AppError>>,
    framework: RwSignal<String>,
    instance_type: RwSignal<String>,
    count: RwSignal<String>,
    volume: RwSignal<String>,
    runtime: RwSignal<String>,
    /// Seconds per unit of `runtime` and `max_wait`.
    unit: RwSignal<i32>,
    spot: RwSignal<bool>,
    max_wait: RwSignal<String>,
    checkpoint: RwSignal<String>,
    output: RwSignal<String>,
    role: RwSignal<String>,
    hps: RwSignal<Vec<(String, String)>>,
    metrics: RwSignal<Vec<(String, String)>>,
    regex_errors: RwSignal<BTreeMap<usize, String>>,
    tags: RwSignal<Vec<(String, String)>>,
    channels: RwSignal<Vec<(String, String)>>,
}

impl Fields {
    fn new(
        local: bool,
        err: Signal<Option<AppError>>,
        options: &crate::training::types::LaunchOptions,
        start: &LaunchRequest,
    ) -> Self {
        let pairs = |kvs: &[KeyValue]| kvs.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect::<Vec<_>>();
        let unit = runtime_unit(start.max_runtime_seconds, start.max_wait_seconds);
        Self {
            local,
            err,
            name: RwSignal::new(start.name.clone()),
            mode_script: RwSignal::new(start.image.is_none() || start.entry_point.is_some()),
            image: RwSignal::new(start.image.clone().unwrap_or_default()),
            entry: RwSignal::new(start.entry_point.clone().unwrap_or_else(|| "train.py".into())),
            source: RwSignal::new(start.source_uri.clone().unwrap_or_default()),
            source_files: RwSignal::new(Vec::new()),
            source_state: RwSignal::new(String::new()),
            source_error: RwSignal::new(None),
            framework: RwSignal::new(
                start
                    .framework
                    .clone()
                    .or_else(|| options.frameworks.first().map(|f| f.key.clone()))
                    .unwrap_or_default(),
            ),
            instance_type: RwSignal::new(start.instance_type.clone()),
            count: RwSignal::new(start.instance_count.to_string()),
            volume: RwSignal::new(start.volume_gb.to_string()),
            runtime: RwSignal::new((start.max_runtime_seconds / unit).to_string()),
            unit: RwSignal::new(unit),
            spot: RwSignal::new(start.spot),
            max_wait: RwSignal::new(start.max_wait_seconds.map(|w| (w / unit).to_string()).unwrap_or_default()),
            checkpoint: RwSignal::new(start.checkpoint_uri.clone().unwrap_or_default()),
            output: RwSignal::new(start.output_uri.clone().unwrap_or_else(|| options.default_output_uri.clone())),
            role: RwSignal::new(
                start.role_arn.clone().or_else(|| options.default_role_arn.clone()).unwrap_or_default(),
            ),
            hps: RwSignal::new(pairs(&start.hyperparameters)),
            metrics: RwSignal::new(
                start.metric_definitions.iter().map(|m| (m.name.clone(), m.regex.clone())).collect(),
            ),
            regex_errors: RwSignal::new(BTreeMap::new()),
            tags: RwSignal::new(pairs(&start.tags)),
            channels: RwSignal::new(
                start.channels.iter().map(|c| (c.name.clone(), c.version_id.to_string())).collect(),
            ),
        }
    }

    /// A duration field in seconds (`runtime`, `max_wait`), from its value in the chosen unit.
    fn seconds(self, value: RwSignal<String>) -> Option<i32> {
        value.get().trim().parse::<i32>().ok().map(|v| v.saturating_mul(self.unit.get()))
    }

    fn seconds_untracked(self, value: RwSignal<String>) -> Option<i32> {
        value.get_untracked().trim().parse::<i32>().ok().map(|v| v.saturating_mul(self.unit.get_untracked()))
    }

    /// The request the form describes.
    fn request(self) -> LaunchRequest {
        let int = |s: RwSignal<String>| s.get_untracked().trim().parse::<i32>().unwrap_or(0);
        let some = |s: RwSignal<String>| Some(s.get_untracked()).filter(|v| !v.trim().is_empty());
        let pairs = |s: RwSignal<Vec<(String, String)>>| {
            s.get_untracked().into_iter().map(|(key, value)| KeyValue { key, value }).collect()
        };
        let (script, local, spot) = (self.mode_script.get_untracked(), self.local, self.spot.get_untracked());
        LaunchRequest {
            name: self.name.get_untracked(),
            image: if script && local { None } else { some(self.image) },
            entry_point: if script { some(self.entry) } else { None },
            source_uri: if script { some(self.source) } else { None },
            framework: if script && !local { some(self.framework) } else { None },
            instance_type: self.instance_type.get_untracked(),
            instance_count: int(self.count),
            volume_gb: int(self.volume),
            max_runtime_seconds: self.seconds_untracked(self.runtime).unwrap_or(0),
            spot,
            max_wait_seconds: if spot { self.seconds_untracked(self.max_wait) } else { None },
            checkpoint_uri: if spot { some(self.checkpoint) } else { None },
            hyperparameters: pairs(self.hps),
            metric_definitions: self
                .metrics
                .get_untracked()
                .into_iter()
                .map(|(name, regex)| MetricDefinition { name, regex })
                .collect(),
            channels: self
                .channels
                .get_untracked()
                .into_iter()
                .map(|(name, v)| ChannelInput { name, version_id: v.parse().unwrap_or_else(|_| Uuid::nil()) })
                .collect(),
            output_uri: some(self.output),
            tags: pairs(self.tags),
            role_arn: if local { None } else { some(self.role) },
        }
    }

    /// The message for one field, shown inside its label.
    fn message(self, field: &'static str) -> AnyView {
        view! { <crate::kernel::widgets::FieldMessage error=self.err field=field/> }.into_any()
    }
}

#[component]
fn LaunchForm(team: String, options: crate::training::types::LaunchOptions, start: LaunchRequest) -> impl IntoView {
    let local = options.backend == "local";
    let launch = Action::new(move |(team, request): &(String, LaunchRequest)| {
        let (team, request) = (team.clone(), request.clone());
        async move { launch_training(team, request).await }
    });
    let err = Signal::derive(move || launch.value().get().and_then(Result::err));
    let f = Fields::new(local, err, &options, &start);
    let navigate = leptos_router::hooks::use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(job)) = launch.value().get() {
            navigate(&format!("/teams/{}/training/{}", job.team, job.id), Default::default());
        }
    });
    let team_for_submit = team.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        launch.dispatch((team_for_submit.clone(), f.request()));
    };
    view! {
        <form class="card stack launch" id="launch-form" on:submit=submit>
            <FormError error=err/>
            {local.then(|| view! { <p class="notice">"Local mode: the job runs on this machine with the local runner (script mode, one instance, on the CPU). Cost is what the same run would cost on SageMaker."</p> })}
            <label>"Job name" <input name="name" required prop:value=move || f.name.get() on:input=move |ev| f.name.set(event_target_value(&ev))/>{f.message("name")}</label>
            <WhatToRun f team=team.clone() frameworks=options.frameworks.clone()/>
            <Resources f instance_types=options.instance_types.clone()/>
            <Channels f versions=options.versions.clone()/>
            <Parameters f team=team.clone()/>
            <Output f/>
            <button type="submit" disabled=move || launch.pending().get()>"Launch"</button>
        </form>
    }
    .into_any()
}

#[component]
fn WhatToRun(f: Fields, team: String, frameworks: Vec<crate::training::types::Framework>) -> impl IntoView {
    let local = f.local;
    let on_files = move |ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast as _;
            let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) else { return };
            let Some(files) = input.files() else { return };
            let team = team.clone();
            f.source_state.set("Uploading the source folder…".into());
            f.source_error.set(None);
            leptos::task::spawn_local(async move {
                match upload_source(&team, &files).await {
                    Ok(archive) => {
                        f.source.set(archive.source_uri);
                        f.source_state.set(format!(
                            "Stored {}, {} bytes.",
                            crate::kernel::format::count(archive.files.len() as u64, "file", "files"),
                            archive.bytes
                        ));
                        if !archive.files.iter().any(|file| *file == f.entry.get_untracked())
                            && let Some(py) = archive.files.iter().find(|file| file.ends_with(".py"))
                        {
                            f.entry.set(py.clone());
                        }
                        f.source_files.set(archive.files);
                    }
                    Err(error) => {
                        f.source_state.set("The source folder was not stored.".into());
                        f.source_error.set(Some(error));
                    }
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (ev, &team);
    };
    view! {
        <fieldset>
            <legend>"What to run"</legend>
            {(!local).then(|| view! {
                <label class="check"><input type="radio" name="mode" checked=move || f.mode_script.get() on:change=move |_| f.mode_script.set(true)/>" Script mode (entry point + source folder)"</label>
                <label class="check"><input type="radio" name="mode" checked=move || !f.mode_script.get() on:change=move |_| f.mode_script.set(false)/>" Container image"</label>
            })}
            <div class:hidden=move || !f.mode_script.get()>
                <p class="muted help" data-testid="script-help">"A script is a folder with an entry point such as "
                    <a href="/examples/train.py" download="train.py">"train.py"</a>
                    " (Capstan's own example, in "<code>"examples/"</code>" of its source: standard library only, runs as is). It runs the way SageMaker's script mode runs it: hyperparameters arrive as "
                    <code>"--name value"</code>", each channel's data in "<code>"SM_CHANNEL_<NAME>"</code>", and whatever the script writes to "
                    <code>"SM_MODEL_DIR"</code>" becomes the model. A "<code>"requirements.txt"</code>" in the folder is installed first."</p>
                <label>"Source folder"
                    <input type="file" id="source-files" multiple prop:webkitdirectory=true on:change=on_files/>
                </label>
                <p class="muted" data-testid="source-state">{move || f.source_state.get()}</p>
                {move || f.source_error.get().map(|error| view! { <ErrorBox error/> })}
                <label>"…or a stored source archive" <input name="source_uri" placeholder="s3://…/sourcedir.tar.gz" prop:value=move || f.source.get() on:input=move |ev| f.source.set(event_target_value(&ev))/>{f.message("source_uri")}</label>
                <label>"Entry point" <input name="entry_point" list="source-file-list" prop:value=move || f.entry.get() on:input=move |ev| f.entry.set(event_target_value(&ev))/>{f.message("entry_point")}</label>
                <datalist id="source-file-list">{move || f.source_files.get().into_iter().map(|file| view! { <option value=file/> }).collect_view()}</datalist>
                {(!local).then(|| view! {
                    <label>"Framework image"
                        <select name="framework" on:change=move |ev| f.framework.set(event_target_value(&ev))>
                            {frameworks.iter().map(|fw| {
                                let key = fw.key.clone();
                                let is = key.clone();
                                view! { <option value=key selected=move || f.framework.get() == is>{fw.label.clone()}</option> }
                            }).collect_view()}
                        </select>
                        {f.message("framework")}
                    </label>
                })}
            </div>
            {(!local).then(|| view! {
                <div class:hidden=move || f.mode_script.get()>
                    <label>"Image URI" <input name="image" placeholder="123456789012.dkr.ecr.us-east-1.amazonaws.com/train:latest" prop:value=move || f.image.get() on:input=move |ev| f.image.set(event_target_value(&ev))/></label>
                </div>
            })}
            {f.message("image")}
        </fieldset>
    }
    .into_any()
}

#[component]
fn Resources(f: Fields, instance_types: Vec<(String, f64)>) -> impl IntoView {
    let local = f.local;
    let prices = instance_types.clone();
    let worst = move || {
        let price = prices.iter().find(|(t, _)| *t == f.instance_type.get()).map(|(_, p)| *p)?;
        let c = f.count.get().trim().parse::<i32>().ok()?;
        Some(worst_case(price, c, f.seconds(f.runtime)?))
    };
    let unit_name = move || RUNTIME_UNITS.iter().find(|(u, _)| *u == f.unit.get()).map_or("seconds", |(_, n)| *n);
    view! {
        <fieldset>
            <legend>"Resources"</legend>
            {local.then(|| view! { <p class="muted help">"Local mode runs every instance type on this machine's CPU: the type only sets the cost shown. GPU types are marked."</p> })}
            <div class="grid-3">
                <label>"Instance type"
                    <select name="instance_type" on:change=move |ev| f.instance_type.set(event_target_value(&ev))>
                        {instance_types.iter().map(|(t, p)| {
                            let value = t.clone();
                            let is = t.clone();
                            let note = if local && has_accelerator(t) { " (GPU; runs on the CPU here)" } else { "" };
                            view! { <option value=value selected=move || f.instance_type.get() == is>{format!("{t} · ${p}/h{note}")}</option> }
                        }).collect_view()}
                    </select>
                    {f.message("instance_type")}
                </label>
                <label>"Instances" <input name="instance_count" type="number" min="1" prop:value=move || f.count.get() on:input=move |ev| f.count.set(event_target_value(&ev))/>{f.message("instance_count")}</label>
                <label>"Volume (GB)" <input name="volume_gb" type="number" min="1" prop:value=move || f.volume.get() on:input=move |ev| f.volume.set(event_target_value(&ev))/>{f.message("volume_gb")}</label>
            </div>
            <div class="grid-3">
                <label>"Max runtime" <input name="max_runtime" type="number" min="1" prop:value=move || f.runtime.get() on:input=move |ev| f.runtime.set(event_target_value(&ev))/>{f.message("max_runtime_seconds")}</label>
                <label>"Unit"
                    <select name="runtime_unit" on:change=move |ev| {
                        // keep the durations the same when only the unit changes
                        let new_unit = event_target_value(&ev).parse::<i32>().unwrap_or(1);
                        let old_unit = f.unit.get_untracked();
                        for field in [f.runtime, f.max_wait] {
                            if let Ok(v) = field.get_untracked().trim().parse::<i32>() {
                                let secs = v.saturating_mul(old_unit);
                                if secs % new_unit == 0 { field.set((secs / new_unit).to_string()); }
                            }
                        }
                        f.unit.set(new_unit);
                    }>
                        {RUNTIME_UNITS.iter().map(|(u, n)| view! { <option value=u.to_string() selected=move || f.unit.get() == *u>{*n}</option> }).collect_view()}
                    </select>
                </label>
            </div>
            <p class="worst-case" data-testid="worst-case">"Worst case: "
                <strong>{move || worst().map_or_else(|| "—".to_owned(), usd)}</strong>" (instances × price × max runtime)"</p>
            <label class="check"><input type="checkbox" name="spot" prop:checked=move || f.spot.get() on:change=move |ev| f.spot.set(event_target_checked(&ev))/>" Managed spot training"</label>
            <div class:hidden=move || !f.spot.get()>
                <label>{move || format!("Max wait ({}, at least the max runtime)", unit_name())} <input name="max_wait" type="number" prop:value=move || f.max_wait.get() on:input=move |ev| f.max_wait.set(event_target_value(&ev))/>{f.message("max_wait_seconds")}</label>
                <label>"Checkpoint S3 URI" <input name="checkpoint_uri" placeholder="s3://…/checkpoints/" prop:value=move || f.checkpoint.get() on:input=move |ev| f.checkpoint.set(event_target_value(&ev))/>{f.message("checkpoint_uri")}</label>
            </div>
        </fieldset>
    }
    .into_any()
}

#[component]
fn Channels(f: Fields, versions: Vec<(Uuid, String)>) -> impl IntoView {
    let channels = f.channels;
    view! {
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
                        {move || f.err.with(|e| row_errors(e.as_ref(), "channels", i)).into_iter().map(|m| view! { <p class="field-error" data-row-error=format!("channel-{i}")>{m}</p> }).collect_view()}
                    }.into_any()
                }).collect_view()}
                <button type="button" class="secondary" on:click=move |_| channels.update(|r| r.push((if r.is_empty() { "train".into() } else { String::new() }, String::new())))>"Add channel"</button>
                <ListErrors error=f.err field="channels"/>
            </div>
        </fieldset>
    }
    .into_any()
}

#[component]
fn Parameters(f: Fields, team: String) -> impl IntoView {
    // each regex is checked by the server's own rules as soon as it is entered
    let regex_errors = f.regex_errors;
    let check_regex = Callback::new(move |(row, regex): (usize, String)| {
        let team = team.clone();
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
    view! {
        <fieldset>
            <legend>"Hyperparameters"</legend>
            <p class="muted">"Passed as --name value and in hyperparameters.json (all values are strings)."</p>
            <PairRows rows=f.hps key_label="name" value_label="value" name="hyperparameter" field="hyperparameters" error=f.err/>
        </fieldset>
        <fieldset>
            <legend>"Metrics"</legend>
            <p class="muted">"A regex per metric; its first group is the value, read from every log line (e.g. loss=([0-9.]+))."</p>
            <PairRows rows=f.metrics key_label="metric name" value_label="regex" name="metric" field="metric_definitions" error=f.err
                check_value=check_regex value_errors=regex_errors/>
        </fieldset>
    }
    .into_any()
}

#[component]
fn Output(f: Fields) -> impl IntoView {
    view! {
        <fieldset>
            <legend>"Output"</legend>
            <label>"Output S3 path" <input name="output_uri" prop:value=move || f.output.get() on:input=move |ev| f.output.set(event_target_value(&ev))/>{f.message("output_uri")}</label>
            {(!f.local).then(|| view! {
                <label>"IAM role ARN" <input name="role_arn" prop:value=move || f.role.get() on:input=move |ev| f.role.set(event_target_value(&ev))/>{f.message("role_arn")}</label>
            })}
            <p class="muted">"Tags"</p>
            <PairRows rows=f.tags key_label="key" value_label="value" name="tag" field="tags" error=f.err/>
        </fieldset>
    }
    .into_any()
}

/// Posts the chosen folder's files to the source endpoint (browser only).
#[cfg(feature = "hydrate")]
async fn upload_source(
    team: &str,
    files: &web_sys::FileList,
) -> Result<crate::training::types::SourceArchive, AppError> {
    use wasm_bindgen::JsCast as _;
    let browser = |what: &str| AppError::Transport(what.to_owned());
    let form = web_sys::FormData::new().map_err(|_| browser("The browser cannot build a form."))?;
    for i in 0..files.length() {
        let Some(file) = files.get(i) else { continue };
        // A folder pick names files "<folder>/<path>": keep the path inside the folder.
        let relative = js_sys::Reflect::get(&file, &"webkitRelativePath".into())
            .ok()
            .and_then(|v| v.as_string())
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('/').map_or(p.clone(), |(_, rest)| rest.to_owned()))
            .unwrap_or_else(|| file.name());
        form.append_with_blob_and_filename("file", &file, &relative).map_err(|_| browser("Could not add a file."))?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&form);
    let url = format!("/api/v1/teams/{team}/training-sources");
    let request = web_sys::Request::new_with_str_and_init(&url, &init).map_err(|_| browser("Bad request."))?;
    let window = web_sys::window().ok_or_else(|| browser("No window."))?;
    let response: web_sys::Response = wasm_bindgen_futures::JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|_| browser("Could not reach Capstan."))?
        .dyn_into()
        .map_err(|_| browser("Unexpected response."))?;
    let text = wasm_bindgen_futures::JsFuture::from(response.text().map_err(|_| browser("Unreadable response."))?)
        .await
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default();
    if !response.ok() {
        // problem+json, read back into the error the server raised
        return Err(AppError::from_problem(response.status(), &text));
    }
    serde_json::from_str(&text).map_err(|e| browser(&format!("Unexpected response: {e}")))
}
