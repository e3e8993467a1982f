//! The browser side of uploads: pick or drop files, cut them into the parts
//! Capstan planned, PUT the parts straight to S3 through presigned URLs (four
//! at a time), show progress per file and overall, and complete, or cancel
//! (in-flight requests are aborted, then the multipart uploads).

use leptos::prelude::*;
use uuid::Uuid;

/// One picked file and how many of its bytes have been sent.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    path: String,
    size: i64,
    sent: i64,
}

#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum Phase {
    Idle,
    Uploading,
    Cancelling,
    Done { number: i32, id: Uuid },
    Failed(String),
    Cancelled,
}

#[component]
pub fn Uploader(dataset_id: Uuid, team: String, on_done: Callback<()>) -> impl IntoView {
    #[cfg(not(feature = "hydrate"))]
    let _ = (dataset_id, on_done);
    let rows = RwSignal::new(Vec::<Row>::new());
    let phase = RwSignal::new(Phase::Idle);
    let cancel = RwSignal::new(false);
    let dragging = RwSignal::new(false);
    // whether files are chosen and not yet sent; a finished upload clears the picker
    let chosen = RwSignal::new(false);
    let picker = NodeRef::<leptos::html::Input>::new();
    #[cfg(feature = "hydrate")]
    let picked = StoredValue::new_local(Vec::<web_sys::File>::new());
    #[cfg(feature = "hydrate")]
    let take = move |list: Option<web_sys::FileList>| {
        let Some(list) = list else { return };
        let files: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
        rows.set(files.iter().map(|f| Row { path: f.name(), size: f.size() as i64, sent: 0 }).collect());
        chosen.set(!files.is_empty());
        picked.set_value(files);
        phase.set(Phase::Idle);
    };
    let on_change = move |_ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast as _;
            let input = _ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok());
            take(input.and_then(|i| i.files()));
        }
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        #[cfg(feature = "hydrate")]
        take(ev.data_transfer().and_then(|d| d.files()));
    };
    let start = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let files = picked.get_value();
            if files.is_empty() {
                phase.set(Phase::Failed("Choose at least one file.".into()));
                return;
            }
            cancel.set(false);
            rows.update(|r| r.iter_mut().for_each(|row| row.sent = 0));
            phase.set(Phase::Uploading);
            leptos::task::spawn_local(async move {
                let outcome = client::run(dataset_id, files, rows, cancel).await;
                if outcome.is_ok() {
                    picked.set_value(Vec::new());
                    chosen.set(false);
                    if let Some(input) = picker.get_untracked() {
                        input.set_value("");
                    }
                }
                match outcome {
                    Ok(v) => phase.set(Phase::Done { number: v.number, id: v.id }),
                    Err(client::Stop::Cancelled) => phase.set(Phase::Cancelled),
                    Err(client::Stop::Failed(message)) => phase.set(Phase::Failed(message)),
                }
                // the version list changed either way (a new, or a failed, version)
                on_done.run(());
            });
        }
    };
    let total = move || rows.with(|r| r.iter().map(|x| x.size).sum::<i64>());
    let sent = move || rows.with(|r| r.iter().map(|x| x.sent).sum::<i64>());
    let busy = move || matches!(phase.get(), Phase::Uploading | Phase::Cancelling);
    view! {
        <div class="uploader" id="uploader">
            <label class="dropzone" class:dragging=move || dragging.get()
                on:dragover=move |ev: leptos::ev::DragEvent| { ev.prevent_default(); dragging.set(true); }
                on:dragleave=move |_| dragging.set(false)
                on:drop=on_drop>
                <input type="file" multiple id="upload-files" node_ref=picker on:change=on_change disabled=busy/>
                <span>"Drop files here or choose them. Files go straight to S3; Capstan never carries the data."</span>
            </label>
            <Show when=move || !rows.with(Vec::is_empty)>
                <ul class="files">
                    <For each=move || rows.get().into_iter().enumerate() key=|(i, r)| (*i, r.path.clone(), r.sent) let:item>
                        <li>
                            <span class="name">{item.1.path.clone()}</span>
                            <progress class="file-progress" max=item.1.size value=item.1.sent></progress>
                            <span class="muted">{crate::kernel::format::human_bytes(item.1.size)}</span>
                        </li>
                    </For>
                </ul>
                <p class="overall">"Overall " <progress id="overall-progress" max=total value=sent></progress>
                    " " {move || format!("{} of {}", crate::kernel::format::human_bytes(sent()), crate::kernel::format::human_bytes(total()))}</p>
            </Show>
            <div class="actions">
                <button type="button" id="upload-start" on:click=start disabled=move || busy() || !chosen.get()>"Upload as new version"</button>
                <Show when=busy>
                    <button type="button" class="secondary" id="upload-cancel"
                        on:click=move |_| { cancel.set(true); phase.set(Phase::Cancelling); }>"Cancel"</button>
                </Show>
            </div>
            {move || match phase.get() {
                Phase::Idle => ().into_any(),
                Phase::Uploading => view! { <p class="muted">"Uploading…"</p> }.into_any(),
                Phase::Cancelling => view! { <p class="muted">"Cancelling…"</p> }.into_any(),
                Phase::Cancelled => view! { <p class="muted" id="upload-status">"Upload cancelled."</p> }.into_any(),
                Phase::Failed(m) => view! { <p class="error" role="alert" id="upload-status">{m}</p> }.into_any(),
                Phase::Done { number, id } => view! {
                    <p id="upload-status">"Uploaded. " <a href=format!("/teams/{team}/versions/{id}")>{format!("Open v{number}")}</a></p>
                }.into_any(),
            }}
        </div>
    }
}

#[cfg(feature = "hydrate")]
mod client {
    use super::Row;
    use crate::datasets::rpc::{abort_upload, complete_upload, presign_parts, start_upload};
    use crate::datasets::types::DatasetVersion;
    use crate::datasets::types::{UploadFile, UploadedFile, UploadedPart};
    use crate::kernel::error::AppError;
    use futures_util::StreamExt as _;
    use leptos::prelude::*;
    use uuid::Uuid;
    use wasm_bindgen::JsCast as _;

    /// Parts sent at once.
    const PARALLEL: usize = 4;

    pub enum Stop {
        Cancelled,
        Failed(String),
    }

    impl From<AppError> for Stop {
        fn from(e: AppError) -> Self {
            let detail = match &e {
                AppError::Validation(errors) => errors.iter().map(|f| f.message.clone()).collect::<Vec<_>>().join(" "),
                other => other.to_string(),
            };
            Stop::Failed(detail)
        }
    }

    fn js(e: wasm_bindgen::JsValue) -> Stop {
        Stop::Failed(e.as_string().unwrap_or_else(|| format!("{e:?}")))
    }

    pub async fn run(
        dataset_id: Uuid,
        files: Vec<web_sys::File>,
        rows: RwSignal<Vec<Row>>,
        cancel: RwSignal<bool>,
    ) -> Result<DatasetVersion, Stop> {
        let specs = files.iter().map(|f| UploadFile { path: f.name(), size: f.size() as i64 }).collect();
        let started = start_upload(dataset_id, specs).await?;
        let version = started.version.id;
        let controller = web_sys::AbortController::new().map_err(js)?;
        let result = send_all(version, &files, &started.files, rows, cancel, &controller).await;
        match result {
            Ok(done) => Ok(complete_upload(version, done).await?),
            Err(stop) => {
                controller.abort();
                let _ = abort_upload(version).await;
                Err(stop)
            }
        }
    }

    async fn send_all(
        version: Uuid,
        files: &[web_sys::File],
        plans: &[crate::datasets::types::UploadPlan],
        rows: RwSignal<Vec<Row>>,
        cancel: RwSignal<bool>,
        controller: &web_sys::AbortController,
    ) -> Result<Vec<UploadedFile>, Stop> {
        let mut tasks = Vec::new();
        for (i, plan) in plans.iter().enumerate() {
            let numbers: Vec<i32> = (1..=plan.part_count).collect();
            for chunk in numbers.chunks(1000) {
                for url in presign_parts(version, plan.path.clone(), chunk.to_vec()).await? {
                    let start = i64::from(url.number - 1) * plan.part_size;
                    let end = (start + plan.part_size).min(plan.size);
                    tasks.push((i, url, start, end));
                }
            }
        }
        let signal = controller.signal();
        let mut sends = futures_util::stream::iter(tasks.into_iter().map(|(i, url, start, end)| {
            let blob = files[i].slice_with_f64_and_f64(start as f64, end as f64);
            let signal = signal.clone();
            async move {
                let blob = blob.map_err(js)?;
                let etag = put(&url.url, &blob, &signal).await?;
                Ok::<_, Stop>((i, UploadedPart { number: url.number, etag }, end - start))
            }
        }))
        .buffer_unordered(PARALLEL);
        let mut done: Vec<UploadedFile> =
            plans.iter().map(|p| UploadedFile { path: p.path.clone(), parts: Vec::new() }).collect();
        while let Some(sent) = sends.next().await {
            if cancel.get_untracked() {
                return Err(Stop::Cancelled);
            }
            let (i, part, len) = sent?;
            rows.update(|r| {
                if let Some(row) = r.get_mut(i) {
                    row.sent += len;
                }
            });
            done[i].parts.push(part);
        }
        if cancel.get_untracked() {
            return Err(Stop::Cancelled);
        }
        Ok(done)
    }

    /// PUTs one part; returns the ETag S3 gave it.
    async fn put(url: &str, body: &web_sys::Blob, signal: &web_sys::AbortSignal) -> Result<String, Stop> {
        let init = web_sys::RequestInit::new();
        init.set_method("PUT");
        init.set_body(body);
        init.set_signal(Some(signal));
        let request = web_sys::Request::new_with_str_and_init(url, &init).map_err(js)?;
        let window = web_sys::window().ok_or_else(|| Stop::Failed("no window".into()))?;
        let response: web_sys::Response = wasm_bindgen_futures::JsFuture::from(window.fetch_with_request(&request))
            .await
            .map_err(|_| Stop::Failed("Could not reach the object store (network error or CORS).".into()))?
            .dyn_into()
            .map_err(js)?;
        if !response.ok() {
            return Err(Stop::Failed(format!("The object store refused a part (HTTP {}).", response.status())));
        }
        response.headers().get("ETag").map_err(js)?.ok_or_else(|| {
            Stop::Failed("The object store did not expose the ETag header: allow it in the bucket's CORS rules.".into())
        })
    }
}
