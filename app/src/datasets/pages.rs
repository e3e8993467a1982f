//! Dataset pages: the team's datasets, the dataset page (versions, new
//! version from a prefix or an upload) and the version page (totals, manifest,
//! preview and schema, drift check). Pages refresh themselves while a scan,
//! upload or check is in progress.

use crate::datasets::rpc::preview_object;
use crate::datasets::rpc::{ArchiveDataset, CreateDataset, get_dataset, list_datasets};
use crate::datasets::rpc::{
    CreateVersion, DeleteVersion, VerifyVersion, get_version, latest_check, list_drift, list_manifest, list_versions,
};
use crate::datasets::types::DatasetQuery;
use crate::datasets::types::{DatasetVersion, VersionStatus};
use crate::kernel::error::AppError;
use crate::kernel::form::{Form, FormAction};
use crate::kernel::format::encode;
use crate::kernel::format::human_bytes;
use crate::kernel::roles::Role;
use crate::kernel::widgets::{ConfirmButton, FieldMessage, FormError, PageHeader, Time};
use crate::kernel::widgets::{CopyButton, ErrorBox, use_refresh};
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use uuid::Uuid;

#[component]
pub fn DatasetsPage() -> impl IntoView {
    use leptos_router::hooks::{use_params_map, use_query_map};
    let params = use_params_map();
    let query = use_query_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let create = FormAction::<CreateDataset>::new();
    let archive = FormAction::<ArchiveDataset>::new();
    let err = create.error();
    let archive_err = archive.error();
    let filter = move || {
        let q = query.get();
        DatasetQuery {
            q: q.get("q").filter(|v| !v.is_empty()),
            archived: q.get("archived").is_some_and(|v| v == "on"),
            cursor: q.get("cursor").filter(|v| !v.is_empty()),
            limit: None,
        }
    };
    let datasets = Resource::new(
        move || (team(), filter(), create.version().get(), archive.version().get()),
        |(t, f, ..)| list_datasets(t, f),
    );
    let team_info = Resource::new(team, crate::teams::rpc::get_team);
    let q_value = move || query.with(|q| q.get("q").unwrap_or_default());
    view! {
        <PageHeader title="Datasets" subtitle="The data this team trains on. Members register datasets; admins archive them."/>
        <div class="grid-2 wide-left">
            <section class="card">
                <form method="get" class="filters">
                    <label>"Search" <input name="q" placeholder="name or tag" value=q_value/></label>
                    <label class="check"><input type="checkbox" name="archived"/>" include archived"</label>
                    <button type="submit" class="secondary">"Search"</button>
                </form>
                <FormError error=archive_err/>
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || {
                        let can_archive = team_info.get().and_then(Result::ok).is_some_and(|t| t.my_role.is_none_or(|r| r == Role::Admin));
                        datasets.get().map(|res| match res {
                            Err(e) => view! { <crate::kernel::widgets::ErrorBox error=e/> }.into_any(),
                            Ok(page) if page.items.is_empty() => view! { <p class="empty">"No datasets yet."</p> }.into_any(),
                            Ok(page) => view! {
                                <div class="table-wrap"><table class="data" id="datasets">
                                    <thead><tr><th>"Name"</th><th>"Tags"</th><th>"Versions"</th><th>"Created"</th><th></th></tr></thead>
                                    <tbody>
                                    {page.items.into_iter().map(|d| view! {
                                        <tr class:revoked=d.archived_at.is_some()>
                                            <td><a href=format!("/teams/{}/datasets/{}", d.team, d.id)><strong>{d.name.clone()}</strong></a><br/><span class="muted">{d.description.clone()}</span></td>
                                            <td>{d.tags.iter().map(|t| view! { <span class="pill">{t.clone()}</span> }).collect_view()}</td>
                                            <td class="versions">{d.version_count}{d.latest_version.map(|n| view! { <br/><span class="muted">{format!("latest ready v{n}")}</span> })}</td>
                                            <td><Time at=d.created_at/><br/><span class="muted">{d.created_by.clone()}</span></td>
                                            <td>{(can_archive && d.archived_at.is_none()).then(|| view! {
                                                <Form action=archive attr:class="inline">
                                                    <input type="hidden" name="id" value=d.id.to_string()/>
                                                    <ConfirmButton label="Archive" question=format!("Archive dataset {}?", d.name)/>
                                                </Form>
                                            })}</td>
                                        </tr>
                                    }).collect_view()}
                                    </tbody>
                                </table></div>
                                {page.next_cursor.map(|c| {
                                    let q = query.with(|q| q.get("q")).unwrap_or_default();
                                    let archived = if filter().archived { "&archived=on" } else { "" };
                                    view! { <p><a href=format!("?q={}{archived}&cursor={c}", crate::kernel::format::encode(&q))>"Next page →"</a></p> }
                                })}
                            }.into_any(),
                        })
                    }}
                </Suspense>
            </section>
            <section class="card">
                <h2>"Register a dataset"</h2>
                <Form action=create node_ref=crate::kernel::form::cleared_on_success(create) attr:class="stack" attr:id="create-dataset">
                    <FormError error=err/>
                    <input type="hidden" name="team" value=team/>
                    <label>"Name" <input name="name" placeholder="churn-events" required/></label>
                    <FieldMessage error=err field="name"/>
                    <label>"Description" <input name="description" placeholder="What the data is and where it comes from"/></label>
                    <FieldMessage error=err field="description"/>
                    <label>"Tags (comma-separated)" <input name="tags" placeholder="tabular, churn"/></label>
                    <FieldMessage error=err field="tags"/>
                    <button type="submit" disabled=move || create.pending().get()>"Register dataset"</button>
                </Form>
            </section>
        </div>
    }
}

#[component]
fn Status(status: VersionStatus) -> impl IntoView {
    let class = match status {
        VersionStatus::Ready => "pill ok",
        VersionStatus::Failed => "pill danger",
        _ => "pill busy",
    };
    view! { <span class=class data-status=status.as_str()>{status.as_str()}</span> }
}

fn short(digest: &Option<String>) -> String {
    digest.as_deref().map(|d| d.chars().take(12).collect()).unwrap_or_else(|| "—".into())
}

#[component]
pub fn DatasetPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let id = move || params.with(|p| p.get("id").and_then(|s| s.parse::<Uuid>().ok()));
    let cursor = move || query.with(|q| q.get("cursor").filter(|c| !c.is_empty()));
    let create = FormAction::<CreateVersion>::new();
    let err = create.error();
    let uploaded = RwSignal::new(0_u32);
    let active = RwSignal::new(false);
    let tick = use_refresh(active);
    let dataset = Resource::new(id, |id| async move {
        match id {
            Some(id) => get_dataset(id).await,
            None => Err(AppError::NotFound("Dataset".into())),
        }
    });
    let versions = Resource::new(
        move || (id(), cursor(), create.version().get(), uploaded.get(), tick.get()),
        |(id, cursor, ..)| async move {
            match id {
                Some(id) => list_versions(id, cursor).await,
                None => Err(AppError::NotFound("Dataset".into())),
            }
        },
    );
    Effect::new(move |_| {
        if let Some(Ok(page)) = versions.get() {
            active.set(page.items.iter().any(|v| v.status.in_progress()));
        }
    });
    let header = move || {
        dataset.get().map(|res| match res {
            Ok(d) => view! {
                <PageHeader title=d.name.clone() subtitle=d.description.clone()/>
                <p class="crumbs"><a href=format!("/teams/{}/datasets", d.team)>"← Datasets"</a>
                    {d.tags.iter().map(|t| view! { <span class="pill">{t.clone()}</span> }).collect_view()}
                    {d.archived_at.is_some().then(|| view! { <span class="pill danger">"archived"</span> })}
                </p>
            }
            .into_any(),
            Err(e) => view! { <ErrorBox error=e/> }.into_any(),
        })
    };
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>{header}</Suspense>
        <div class="grid-2 wide-left">
            <section class="card">
                <h2>"Versions"</h2>
                <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || versions.get().map(|res| match res {
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                        Ok(page) if page.items.is_empty() => view! {
                            <p class="empty">"No versions yet. Register an S3 prefix or upload files."</p>
                        }.into_any(),
                        Ok(page) => {
                            let next = page.next_cursor.clone();
                            view! {
                                <div class="table-wrap"><table class="data" id="versions">
                                    <thead><tr><th>"#"</th><th>"Source"</th><th>"Objects"</th><th>"Size"</th><th>"Digest"</th><th>"Status"</th><th>"Created"</th></tr></thead>
                                    <tbody>
                                    {page.items.into_iter().map(|v| version_row(&team(), v)).collect_view()}
                                    </tbody>
                                </table></div>
                                {next.map(|c| view! { <p><a href=format!("?cursor={c}")>"Older versions →"</a></p> })}
                            }.into_any()
                        }
                    })}
                </Transition>
            </section>
            <section class="card">
                <h2>"New version"</h2>
                <h3>"From an S3 prefix"</h3>
                <Form action=create attr:class="stack" attr:id="prefix-form">
                    <FormError error=err/>
                    <input type="hidden" name="dataset_id" value=move || id().map(|i| i.to_string()).unwrap_or_default()/>
                    <label>"S3 URI" <input name="source_uri" placeholder="s3://bucket/prefix/" required/></label>
                    <FieldMessage error=err field="source_uri"/>
                    <label class="check"><input type="checkbox" name="snapshot"/>" Snapshot: copy the objects into Capstan's bucket"</label>
                    <button type="submit" disabled=move || create.pending().get()>"Register version"</button>
                </Form>
                <h3>"Upload files"</h3>
                {move || id().map(|dataset_id| view! {
                    <crate::datasets::uploader::Uploader dataset_id team=team() on_done=Callback::new(move |_| uploaded.update(|n| *n += 1))/>
                })}
            </section>
        </div>
    }
    .into_any()
}

fn version_row(team: &str, v: DatasetVersion) -> impl IntoView + use<> {
    let href = format!("/teams/{team}/versions/{}", v.id);
    let source = if v.source == "upload" { "upload".to_owned() } else { v.source_uri.clone() };
    view! {
        <tr data-number=v.number>
            <td><a href=href><strong>{format!("v{}", v.number)}</strong></a></td>
            <td><code>{source}</code>{v.snapshot.then(|| view! { <span class="pill">"snapshot"</span> })}</td>
            <td>{v.object_count}</td>
            <td>{human_bytes(v.byte_count)}</td>
            <td><code title=v.digest.clone().unwrap_or_default()>{short(&v.digest)}</code></td>
            <td><Status status=v.status/>{v.failure.clone().map(|f| view! { <br/><span class="muted failure">{f}</span> })}</td>
            <td><Time at=v.created_at/><br/><span class="muted">{v.created_by.clone()}</span></td>
        </tr>
    }
}

#[component]
pub fn VersionPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let id = move || params.with(|p| p.get("vid").and_then(|s| s.parse::<Uuid>().ok()));
    let q = move |name: &str| query.with(|q| q.get(name).filter(|v| !v.is_empty()));
    let verify = FormAction::<VerifyVersion>::new();
    let delete = FormAction::<DeleteVersion>::new();
    let delete_err = delete.error();
    let team_info = Resource::new(team, crate::teams::rpc::get_team);
    let verify_err = verify.error();
    let active = RwSignal::new(false);
    let tick = use_refresh(active);
    let missing = || AppError::NotFound("Dataset version".into());
    let version = Resource::new(
        move || (id(), tick.get()),
        move |(id, _)| async move {
            match id {
                Some(id) => get_version(id).await,
                None => Err(missing()),
            }
        },
    );
    let navigate = leptos_router::hooks::use_navigate();
    Effect::new(move |_| {
        if let (Some(Ok(())), Some(Ok(v))) = (delete.value().get(), version.get_untracked()) {
            navigate(&format!("/teams/{}/datasets/{}", v.team, v.dataset_id), Default::default());
        }
    });
    let check = Resource::new(
        move || (id(), verify.version().get(), tick.get()),
        move |(id, ..)| async move {
            match id {
                Some(id) => latest_check(id).await,
                None => Err(missing()),
            }
        },
    );
    // Bumped (in the browser) when a scan or check finishes, so the lists
    // below load their final state. No resource keys on another resource's
    // value: on the server that re-runs loads after the page is rendered.
    let settled = RwSignal::new(0_u32);
    let drift = Resource::new(
        move || (id(), q("drift_cursor"), verify.version().get(), tick.get(), settled.get()),
        move |(id, cursor, ..)| async move {
            match id {
                Some(id) => list_drift(id, cursor).await,
                None => Err(missing()),
            }
        },
    );
    let manifest = Resource::new(
        move || (id(), q("prefix"), q("cursor"), tick.get(), settled.get()),
        move |(id, prefix, cursor, ..)| async move {
            match id {
                Some(id) => list_manifest(id, prefix, cursor).await,
                None => Err(missing()),
            }
        },
    );
    let preview = Resource::new(
        move || (id(), q("key")),
        move |(id, key)| async move {
            match (id, key) {
                (Some(id), Some(key)) => Some(preview_object(id, key).await),
                _ => None,
            }
        },
    );
    Effect::new(move |_| {
        let scanning = version.get().and_then(Result::ok).is_some_and(|v| v.status.in_progress());
        let checking = check.get().and_then(Result::ok).flatten().is_some_and(|c| c.status == "running");
        if active.get_untracked() && !(scanning || checking) {
            settled.update(|n| *n += 1);
        }
        active.set(scanning || checking);
    });
    // links keep the other query parameters of the page
    let link = move |set: &[(&str, String)]| {
        let mut pairs: Vec<(String, String)> = query.with(|q| {
            ["prefix", "cursor", "key", "drift_cursor"]
                .iter()
                .filter_map(|k| q.get(k).filter(|v| !v.is_empty()).map(|v| ((*k).to_owned(), v)))
                .collect()
        });
        for (k, v) in set {
            pairs.retain(|(pk, _)| pk != k);
            if !v.is_empty() {
                pairs.push(((*k).to_owned(), v.clone()));
            }
        }
        let qs: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
        format!("?{}", qs.join("&"))
    };

    let totals = move || {
        version.get().map(|res| match res {
            Err(e) => view! { <ErrorBox error=e/> }.into_any(),
            Ok(v) => view! {
                <PageHeader title=format!("{} v{}", v.dataset, v.number) subtitle="An immutable snapshot: training jobs reference it by id."/>
                <p class="crumbs"><a href=format!("/teams/{}/datasets/{}", team(), v.dataset_id)>{format!("← {}", v.dataset)}</a></p>
                <section class="card">
                    <dl class="facts" id="version-facts">
                        <dt>"Status"</dt><dd><Status status=v.status/>{v.failure.clone().map(|f| view! { " " <span class="failure">{f}</span> })}</dd>
                        <dt>"Objects"</dt><dd id="object-count">{v.object_count}</dd>
                        <dt>"Size"</dt><dd>{human_bytes(v.byte_count)}" ("{v.byte_count}" bytes)"</dd>
                        <dt>"Digest"</dt><dd>{match v.digest.clone() {
                            Some(d) => view! { <code class="digest">{d.clone()}</code>" "<CopyButton text=d/> }.into_any(),
                            None => view! { <span class="muted">"after the scan"</span> }.into_any(),
                        }}</dd>
                        <dt>"Location"</dt><dd><code id="location">{v.location.clone()}</code></dd>
                        <dt>"Source"</dt><dd>{if v.source == "upload" {
                            view! { <span data-testid="source">"browser upload"</span> }.into_any()
                        } else {
                            view! { <code data-testid="source">{v.source_uri.clone()}</code>{v.snapshot.then(|| view! { <span class="pill">"snapshot"</span> })} }.into_any()
                        }}</dd>
                        <dt>"Id"</dt><dd><code>{v.id.to_string()}</code></dd>
                        <dt>"Created"</dt><dd><Time at=v.created_at/>" by "{v.created_by.clone()}</dd>
                    </dl>
                    {
                        let (vid, number, dataset, busy) = (v.id, v.number, v.dataset.clone(), v.status.in_progress());
                        move || {
                        let dataset = dataset.clone();
                        let admin = team_info.get().and_then(Result::ok).is_some_and(|t| t.my_role.is_none_or(|r| r == crate::kernel::roles::Role::Admin));
                        (admin && !busy).then(|| view! {
                            <Form action=delete attr:class="inline danger-zone">
                                <input type="hidden" name="id" value=vid.to_string()/>
                                <ConfirmButton label="Delete version" question=format!("Delete v{number} of {dataset}? Capstan's copy of its objects is removed too.")/>
                            </Form>
                            <FormError error=delete_err/>
                        })
                    }}
                </section>
            }
            .into_any(),
        })
    };

    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>{totals}</Transition>
        <Suspense fallback=|| ()>
            {move || preview.get().flatten().map(|res| view! {
                <section class="card" id="preview">
                    {match res {
                        Err(e) => view! { <h2>"Preview"</h2><ErrorBox error=e/> }.into_any(),
                        Ok(p) => view! {
                            <h2>"Preview: " <code>{p.key.clone()}</code></h2>
                            <p class="muted">
                                {format!("{} · {}", p.format.clone().unwrap_or_else(|| "unknown format".into()), human_bytes(p.size))}
                                {match p.row_count {
                                    Some(n) if n > p.rows.len() as i64 => format!(" · showing {} of {n} rows", p.rows.len()),
                                    Some(n) => format!(" · {}", crate::kernel::format::count(u64::try_from(n).unwrap_or(0), "row", "rows")),
                                    None if !p.rows.is_empty() => format!(" · the first {} rows (the file was not read to its end)", p.rows.len()),
                                    None => String::new(),
                                }}
                                {format!(" · read {}", human_bytes(p.bytes_read))}
                            </p>
                            {p.note.clone().map(|n| view! { <p class="note">{n}</p> })}
                            {(!p.columns.is_empty()).then(|| view! {
                                <h3>"Schema"</h3>
                                <p class="schema">{p.columns.iter().map(|c| view! { <span class="col"><strong>{c.name.clone()}</strong>" "<span class="muted">{c.kind.clone()}</span></span> }).collect_view()}</p>
                            })}
                            {(!p.rows.is_empty()).then(|| view! {
                                <div class="table-wrap"><table class="data" id="preview-rows">
                                    <thead><tr>{p.columns.iter().map(|c| view! { <th>{c.name.clone()}</th> }).collect_view()}</tr></thead>
                                    <tbody>{p.rows.iter().map(|r| view! { <tr>{r.iter().map(|cell| view! { <td>{cell.clone()}</td> }).collect_view()}</tr> }).collect_view()}</tbody>
                                </table></div>
                            })}
                        }.into_any(),
                    }}
                </section>
            })}
        </Suspense>
        <div class="grid-2 wide-left">
            <section class="card">
                <h2>"Manifest"</h2>
                <form method="get" class="filters">
                    <label>"Key prefix" <input name="prefix" value=move || q("prefix").unwrap_or_default() placeholder="train/"/></label>
                    <button type="submit" class="secondary">"Filter"</button>
                </form>
                <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || manifest.get().map(|res| match res {
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                        Ok(page) if page.items.is_empty() => view! { <p class="empty">"No objects."</p> }.into_any(),
                        Ok(page) => view! {
                            <div class="table-wrap"><table class="data" id="manifest">
                                <thead><tr><th>"Key"</th><th>"Size"</th><th>"ETag"</th><th>"Modified"</th><th></th></tr></thead>
                                <tbody>{page.items.into_iter().map(|e| view! {
                                    <tr>
                                        <td><code>{e.key.clone()}</code></td>
                                        <td>{human_bytes(e.size)}</td>
                                        <td><code class="muted">{e.etag.chars().take(12).collect::<String>()}</code></td>
                                        <td>{e.last_modified.map(|t| view! { <Time at=t/> })}</td>
                                        <td><a href=link(&[("key", e.key.clone())])>"Preview"</a></td>
                                    </tr>
                                }).collect_view()}</tbody>
                            </table></div>
                            {page.next_cursor.map(|c| view! { <p><a href=link(&[("cursor", c)])>"Next page →"</a></p> })}
                        }.into_any(),
                    })}
                </Transition>
            </section>
            <section class="card">
                <h2>"Drift"</h2>
                <p class="muted">"Verify re-lists the version's location and compares every object with the manifest."</p>
                <Form action=verify attr:class="inline" attr:id="verify-form">
                    <input type="hidden" name="id" value=move || id().map(|i| i.to_string()).unwrap_or_default()/>
                    <button type="submit" disabled=move || verify.pending().get() || active.get()>"Verify"</button>
                </Form>
                <FormError error=verify_err/>
                <Transition fallback=|| ()>
                    {move || check.get().map(|res| match res {
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                        Ok(None) => view! { <p class="empty">"Not verified yet."</p> }.into_any(),
                        Ok(Some(c)) => view! {
                            <div id="check" data-status=c.status.clone()>
                                <p>
                                    {match c.status.as_str() {
                                        "running" => view! { <span class="pill busy">"checking…"</span> }.into_any(),
                                        "failed" => view! { <span class="pill danger">"failed"</span>" "{c.failure.clone().unwrap_or_default()} }.into_any(),
                                        _ if c.added + c.removed + c.changed == 0 => view! { <span class="pill ok">"no drift"</span> }.into_any(),
                                        _ => view! { <span class="pill danger">"drift"</span> }.into_any(),
                                    }}
                                    " "{c.checked_at.map(|t| view! { "checked " <Time at=t/> })}" by "{c.checked_by.clone()}
                                </p>
                                <p class="counts">{format!("{} added · {} removed · {} changed", c.added, c.removed, c.changed)}</p>
                            </div>
                        }.into_any(),
                    })}
                </Transition>
                <Transition fallback=|| ()>
                    {move || drift.get().and_then(Result::ok).filter(|p| !p.items.is_empty()).map(|page| view! {
                        <div class="table-wrap"><table class="data" id="drift">
                            <thead><tr><th>"Key"</th><th>"Change"</th><th>"Size"</th></tr></thead>
                            <tbody>{page.items.into_iter().map(|d| view! {
                                <tr>
                                    <td><code>{d.key.clone()}</code></td>
                                    <td><span class="pill">{d.change.clone()}</span></td>
                                    <td>{format!("{} → {}", d.old_size.map_or("—".into(), human_bytes), d.new_size.map_or("—".into(), human_bytes))}</td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table></div>
                        {page.next_cursor.map(|c| view! { <p><a href=link(&[("drift_cursor", c)])>"More →"</a></p> })}
                    })}
                </Transition>
            </section>
        </div>
    }
    .into_any()
}
