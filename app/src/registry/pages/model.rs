//! A model's page: its aliases, its versions (status, metrics, parameters,
//! lineage, approve/reject, set alias), and registering an artifact.

use crate::kernel::error::AppError;
use crate::kernel::form::{Form, FormAction};
use crate::kernel::format::encode;
use crate::kernel::roles::Role;
use crate::kernel::widgets::{ErrorBox, FieldMessage, FormError, PageHeader, Time};
use crate::registry::pages::status_class;
use crate::registry::rpc::{
    PointAlias, RegisterArtifact, SetVersionStatus, get_model, list_aliases, list_model_versions,
};
use crate::registry::types::{ModelVersion, ModelVersionStatus};
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use uuid::Uuid;

#[component]
pub fn ModelPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let id = move || params.with(|p| p.get("id").and_then(|s| s.parse::<Uuid>().ok()));
    let cursor = move || query.with(|q| q.get("cursor").filter(|c| !c.is_empty()));
    let order = move || query.with(|q| q.get("order_by").filter(|c| !c.is_empty()));
    let decide = FormAction::<SetVersionStatus>::new();
    let decide_err = decide.error();
    let team_info = Resource::new(team, crate::teams::rpc::get_team);
    let set_alias = FormAction::<PointAlias>::new();
    let alias_err = set_alias.error();
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
    let register = FormAction::<RegisterArtifact>::new();
    let register_err = register.error();
    let versions = Resource::new(
        move || (id(), order(), cursor(), decide.version().get(), set_alias.version().get(), register.version().get()),
        |(id, order, cursor, ..)| async move {
            match id {
                Some(id) => list_model_versions(id, order, cursor).await,
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
                                    <a class="alias-page" href=format!("/teams/{}/models/{}/aliases/{}", team(), id().map(|i| i.to_string()).unwrap_or_default(), a.alias)><strong>{a.alias.clone()}</strong></a>{format!(" → v{}", a.number)}
                                    {a.protected.then(|| view! { <span class="pill">"protected"</span> })}
                                    {a.protected.then(|| view! {
                                        " "<a class="request-move" href=format!("/teams/{}/reviews/new?model={}&alias={}", team(), id().map(|i| i.to_string()).unwrap_or_default(), a.alias)>"Request a move →"</a>
                                    })}
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
                    Ok(page) => {
                    let columns = metric_columns(&page.items);
                    let current = order().unwrap_or_default();
                    view! {
                        <div class="table-wrap"><table class="data" id="versions">
                            <thead><tr>
                                <th>"Version"</th><th>"Status"</th>
                                {columns.iter().map(|name| {
                                    let (href, mark) = sort_link(name, &current);
                                    view! { <th class="num"><a href=href data-sort=name.clone()>{name.clone()}{mark}</a></th> }
                                }).collect_view()}
                                <th>"Parameters"</th><th>"Lineage"</th><th>"Registered"</th><th></th>
                            </tr></thead>
                            <tbody>
                            {page.items.into_iter().map(|v| view! {
                                <tr data-number=v.number>
                                    <td><a href=format!("/teams/{}/model-versions/{}", v.team, v.id)><strong>{format!("v{}", v.number)}</strong></a><br/><span class="muted mono">{v.artifact_uri.clone()}</span></td>
                                    <td>
                                        <span class=status_class(v.status) data-status=v.status.as_str()>{v.status.as_str()}</span>
                                        {can_decide.then(|| [ModelVersionStatus::Approved, ModelVersionStatus::Rejected]
                                            .into_iter()
                                            .filter(|to| v.status.may_become(*to))
                                            .map(|to| view! {
                                                <Form action=decide attr:class="inline">
                                                    <input type="hidden" name="id" value=v.id.to_string()/>
                                                    <input type="hidden" name="status" value=to.as_str()/>
                                                    <button type="submit" class="secondary small">{if to == ModelVersionStatus::Approved { "Approve" } else { "Reject" }}</button>
                                                </Form>
                                            })
                                            .collect_view())}
                                    </td>
                                    {columns.iter().map(|name| view! {
                                        <td class="num" data-metric=name.clone()>{v.metrics.get(name).map(|x| format!("{x:.4}"))}</td>
                                    }).collect_view()}
                                    <td>{v.parameters.iter().map(|(k, x)| view! { <span class="pill">{format!("{k} = {x}")}</span> }).collect_view()}</td>
                                    <td>
                                        {v.training_job_id.map(|j| view! { <a href=format!("/teams/{}/training/{j}", v.team)>"training job"</a> })}
                                        {v.dataset_versions.iter().map(|d| view! { <br/><a href=format!("/teams/{}/versions/{d}", v.team)>"dataset version"</a> }).collect_view()}
                                    </td>
                                    <td><Time at=v.created_at/><br/><span class="muted">{v.created_by.clone()}</span></td>
                                    <td>
                                        <Form action=set_alias attr:class="inline set-alias">
                                            <input type="hidden" name="model" value=v.model_id.to_string()/>
                                            <input type="hidden" name="version" value=v.id.to_string()/>
                                            <input name="alias" placeholder="champion" required size="10"/>
                                            <button type="submit" class="secondary small">"Set alias"</button>
                                        </Form>
                                    </td>
                                </tr>
                            }).collect_view()}
                            </tbody>
                        </table></div>
                        {page.next_cursor.map(|c| {
                            let order = current.clone();
                            view! { <p><a href=format!("?order_by={}&cursor={c}", encode(&order))>"More versions →"</a></p> }
                        })}
                    }.into_any()
                    }
                })
                }}
            </Suspense>
        </section>
        <section class="card">
            <h2>"Register an artifact"</h2>
            <p class="muted">"A model trained elsewhere: name its model.tar.gz (or its folder) in the team's area of the bucket, or in a location a site admin allowed for the team."</p>
            <Form action=register node_ref=crate::kernel::form::cleared_on_success(register) attr:class="stack" attr:id="register-artifact">
                <FormError error=register_err/>
                <input type="hidden" name="model" value=move || id().map(|i| i.to_string()).unwrap_or_default()/>
                <label>"Artifact" <input name="artifact_uri" placeholder="s3://bucket/models/team/model.tar.gz" required/></label>
                <FieldMessage error=register_err field="artifact_uri"/>
                <label>"Inference image (optional)" <input name="image" placeholder="123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1.0"/></label>
                <FieldMessage error=register_err field="image"/>
                <label>"Description" <input name="description"/></label>
                <FieldMessage error=register_err field="description"/>
                <button type="submit" disabled=move || register.pending().get()>"Register version"</button>
            </Form>
        </section>
    }
}

/// The metric columns of a page of versions: the names its versions report,
/// at most six.
fn metric_columns(versions: &[ModelVersion]) -> Vec<String> {
    let names: std::collections::BTreeSet<&String> = versions.iter().flat_map(|v| v.metrics.keys()).collect();
    names.into_iter().take(6).cloned().collect()
}

/// The link that sorts by metric `name` (best first: descending, then
/// ascending on a second click), and the mark of the current order.
fn sort_link(name: &str, current: &str) -> (String, &'static str) {
    let plain = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    let field = if plain { format!("metrics.{name}") } else { format!("metrics.`{name}`") };
    let desc = format!("{field} desc");
    if current == desc {
        (format!("?order_by={}", encode(&format!("{field} asc"))), " ▼")
    } else if current == format!("{field} asc") {
        (format!("?order_by={}", encode(&desc)), " ▲")
    } else {
        (format!("?order_by={}", encode(&desc)), "")
    }
}
