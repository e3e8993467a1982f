//! Registry pages: the team's models (search, new model) and a model's page
//! (its versions with their metrics, parameters and lineage), and the form
//! that registers a completed training job, shown on the job's page.

use crate::kernel::error::AppError;
use crate::kernel::format::encode;
use crate::kernel::roles::Role;
use crate::kernel::widgets::{ErrorBox, FieldMessage, FormError, PageHeader, Time};
use crate::registry::rpc::{
    CreateModel, PointAlias, RegisterJob, SetVersionStatus, get_model, list_aliases, list_model_versions, list_models,
};
use crate::registry::types::{ModelQuery, ModelVersionStatus};
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use uuid::Uuid;

#[component]
pub fn ModelsPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let create = ServerAction::<CreateModel>::new();
    let err = Signal::derive(move || create.value().get().and_then(Result::err));
    let filter = move || {
        let q = query.get();
        ModelQuery {
            q: q.get("q").filter(|v| !v.is_empty()),
            cursor: q.get("cursor").filter(|v| !v.is_empty()),
            ..ModelQuery::default()
        }
    };
    let models = Resource::new(move || (team(), filter(), create.version().get()), |(t, f, _)| list_models(t, f));
    let q_value = move || query.with(|q| q.get("q").unwrap_or_default());
    view! {
        <PageHeader title="Models" subtitle="The team's models and their versions. Register a completed training job from its page, or create a model here."/>
        <div class="grid-2 wide-left">
            <section class="card">
                <form method="get" class="filters">
                    <label>"Search" <input name="q" placeholder="name" value=q_value/></label>
                    <button type="submit" class="secondary">"Search"</button>
                </form>
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || models.get().map(|res| match res {
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                        Ok(page) if page.items.is_empty() => view! {
                            <p class="empty">"No models yet. Run a training job (or the demo), then register it from the job's page."</p>
                        }.into_any(),
                        Ok(page) => view! {
                            <div class="table-wrap"><table class="data" id="models">
                                <thead><tr><th>"Name"</th><th>"Versions"</th><th>"Created"</th></tr></thead>
                                <tbody>
                                {page.items.into_iter().map(|m| view! {
                                    <tr>
                                        <td><a href=format!("/teams/{}/models/{}", m.team, m.id)><strong>{m.name.clone()}</strong></a><br/><span class="muted">{m.description.clone()}</span></td>
                                        <td>{m.version_count}{m.latest_version.map(|n| view! { <br/><span class="muted">{format!("latest v{n}")}</span> })}</td>
                                        <td><Time at=m.created_at/><br/><span class="muted">{m.created_by.clone()}</span></td>
                                    </tr>
                                }).collect_view()}
                                </tbody>
                            </table></div>
                            {page.next_cursor.map(|c| {
                                let q = query.with(|q| q.get("q")).unwrap_or_default();
                                view! { <p><a href=format!("?q={}&cursor={c}", encode(&q))>"Next page →"</a></p> }
                            })}
                        }.into_any(),
                    })}
                </Suspense>
            </section>
            <section class="card">
                <h2>"New model"</h2>
                <ActionForm action=create node_ref=crate::kernel::widgets::cleared_on_success(create) attr:class="stack" attr:id="create-model">
                    <FormError error=err/>
                    <input type="hidden" name="team" value=team/>
                    <label>"Name" <input name="name" placeholder="churn" required/></label>
                    <FieldMessage error=err field="name"/>
                    <label>"Description" <input name="description" placeholder="What it predicts, for whom"/></label>
                    <FieldMessage error=err field="description"/>
                    <button type="submit" disabled=move || create.pending().get()>"Create model"</button>
                </ActionForm>
            </section>
        </div>
    }
}

fn status_class(status: ModelVersionStatus) -> &'static str {
    match status {
        ModelVersionStatus::Approved => "pill ok",
        ModelVersionStatus::Rejected => "pill danger",
        ModelVersionStatus::Archived => "pill",
        ModelVersionStatus::PendingManualApproval => "pill busy",
    }
}

#[component]
pub fn ModelPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let id = move || params.with(|p| p.get("id").and_then(|s| s.parse::<Uuid>().ok()));
    let cursor = move || query.with(|q| q.get("cursor").filter(|c| !c.is_empty()));
    let decide = ServerAction::<SetVersionStatus>::new();
    let decide_err = Signal::derive(move || decide.value().get().and_then(Result::err));
    let team_info = Resource::new(team, crate::teams::rpc::get_team);
    let set_alias = ServerAction::<PointAlias>::new();
    let alias_err = Signal::derive(move || set_alias.value().get().and_then(Result::err));
    let aliases = Resource::new(
        move || (id(), set_alias.version().get()),
        |(id, _)| async move {
            match id {
                Some(id) => list_aliases(id).await,
                None => Ok(Vec::new()),
            }
        },
    );
    let model = Resource::new(id, |id| async move {
        match id {
            Some(id) => get_model(id).await,
            None => Err(AppError::NotFound("Model".into())),
        }
    });
    let versions = Resource::new(
        move || (id(), cursor(), decide.version().get(), set_alias.version().get()),
        |(id, cursor, ..)| async move {
            match id {
                Some(id) => list_model_versions(id, cursor).await,
                None => Err(AppError::NotFound("Model".into())),
            }
        },
    );
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || model.get().map(|res| match res {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                Ok(m) => view! {
                    <PageHeader title=m.name.clone() subtitle=m.description.clone()/>
                    <p class="muted"><a href=format!("/teams/{}/models", team())>"← All models"</a></p>
                }.into_any(),
            })}
        </Suspense>
        <section class="card">
            <h2>"Aliases"</h2>
            <FormError error=alias_err/>
            <FieldMessage error=alias_err field="alias"/>
            <Suspense fallback=|| ()>
                {move || aliases.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty">"No aliases yet. Name the version that matters, e.g. champion, with Set alias on its row."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <ul class="aliases" id="aliases">
                            {list.into_iter().map(|a| view! {
                                <li data-alias=a.alias.clone()>
                                    <strong>{a.alias.clone()}</strong>{format!(" → v{}", a.number)}
                                    {a.protected.then(|| view! { <span class="pill">"protected"</span> })}
                                    <span class="muted">" "{a.updated_by.clone()}" "</span><Time at=a.updated_at/>
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                })}
            </Suspense>
        </section>
        <section class="card">
            <h2>"Versions"</h2>
            <FormError error=decide_err/>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                // approvers (and site admins) decide on a version's status
                let can_decide = team_info.get().and_then(Result::ok).is_some_and(|t| t.my_role.is_none_or(|r| r >= Role::Approver));
                versions.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(page) if page.items.is_empty() => view! {
                        <p class="empty">"No versions yet. Open a completed training job and register it as a version of this model."</p>
                    }.into_any(),
                    Ok(page) => view! {
                        <div class="table-wrap"><table class="data" id="versions">
                            <thead><tr><th>"Version"</th><th>"Status"</th><th>"Metrics"</th><th>"Parameters"</th><th>"Lineage"</th><th>"Registered"</th><th></th></tr></thead>
                            <tbody>
                            {page.items.into_iter().map(|v| view! {
                                <tr data-number=v.number>
                                    <td><strong>{format!("v{}", v.number)}</strong><br/><span class="muted mono">{v.artifact_uri.clone()}</span></td>
                                    <td>
                                        <span class=status_class(v.status) data-status=v.status.as_str()>{v.status.as_str()}</span>
                                        {can_decide.then(|| [ModelVersionStatus::Approved, ModelVersionStatus::Rejected]
                                            .into_iter()
                                            .filter(|to| v.status.may_become(*to))
                                            .map(|to| view! {
                                                <ActionForm action=decide attr:class="inline">
                                                    <input type="hidden" name="id" value=v.id.to_string()/>
                                                    <input type="hidden" name="status" value=to.as_str()/>
                                                    <button type="submit" class="secondary small">{if to == ModelVersionStatus::Approved { "Approve" } else { "Reject" }}</button>
                                                </ActionForm>
                                            })
                                            .collect_view())}
                                    </td>
                                    <td>{v.metrics.iter().map(|(k, x)| view! { <span class="pill">{format!("{k} = {x:.4}")}</span> }).collect_view()}</td>
                                    <td>{v.parameters.iter().map(|(k, x)| view! { <span class="pill">{format!("{k} = {x}")}</span> }).collect_view()}</td>
                                    <td>
                                        {v.training_job_id.map(|j| view! { <a href=format!("/teams/{}/training/{j}", v.team)>"training job"</a> })}
                                        {v.dataset_versions.iter().map(|d| view! { <br/><a href=format!("/teams/{}/versions/{d}", v.team)>"dataset version"</a> }).collect_view()}
                                    </td>
                                    <td><Time at=v.created_at/><br/><span class="muted">{v.created_by.clone()}</span></td>
                                    <td>
                                        <ActionForm action=set_alias attr:class="inline set-alias">
                                            <input type="hidden" name="model" value=v.model_id.to_string()/>
                                            <input type="hidden" name="version" value=v.id.to_string()/>
                                            <input name="alias" placeholder="champion" required size="10"/>
                                            <button type="submit" class="secondary small">"Set alias"</button>
                                        </ActionForm>
                                    </td>
                                </tr>
                            }).collect_view()}
                            </tbody>
                        </table></div>
                        {page.next_cursor.map(|c| view! { <p><a href=format!("?cursor={c}")>"Older versions →"</a></p> })}
                    }.into_any(),
                })
                }}
            </Suspense>
        </section>
    }
}

/// "Register as model version": on a completed job's page, registers the job
/// as the next version of the named model (created if new).
#[component]
pub fn RegisterJob(team: String, job: Uuid, suggested: String) -> impl IntoView {
    let register = ServerAction::<RegisterJob>::new();
    let err = Signal::derive(move || register.value().get().and_then(Result::err));
    let done = move || register.value().get().and_then(Result::ok);
    view! {
        <section class="card" id="register-job">
            <h2>"Register as model version"</h2>
            {move || done().map(|v| view! {
                <p class="notice" role="status">
                    {format!("Registered as version {} of ", v.number)}
                    <a href=format!("/teams/{}/models/{}", v.team, v.model_id)>{v.model.clone()}</a>"."
                </p>
            })}
            <ActionForm action=register attr:class="inline">
                <FormError error=err/>
                <input type="hidden" name="team" value=team/>
                <input type="hidden" name="job" value=job.to_string()/>
                <label>"Model " <input name="model" value=suggested required/></label>
                <FieldMessage error=err field="model"/>
                <FieldMessage error=err field="training_job_id"/>
                <button type="submit" disabled=move || register.pending().get()>"Register"</button>
            </ActionForm>
        </section>
    }
}
