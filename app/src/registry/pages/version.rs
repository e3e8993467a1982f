//! A model version's page: where it came from (the lineage graph), its
//! metrics and parameters, its artifact with a download link, and its
//! status with approve/reject for approvers, and its history (status
//! decisions, edits, aliases that named it, with their change requests).

use crate::kernel::error::AppError;
use crate::kernel::form::{Form, FormAction};
use crate::kernel::roles::Role;
use crate::kernel::widgets::{ErrorBox, FormError, PageHeader, Time};
use crate::registry::pages::card::CardSection;
use crate::registry::pages::history::ChangeHistory;
use crate::registry::pages::lineage::LineageGraph;
use crate::registry::pages::status_class;
use crate::registry::rpc::{SetVersionStatus, get_model_version, version_changes, version_lineage, version_package};
use crate::registry::types::{ModelVersion, ModelVersionStatus, PackageSync};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use uuid::Uuid;

#[component]
pub fn VersionPage() -> impl IntoView {
    let params = use_params_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let id = move || params.with(|p| p.get("id").and_then(|s| s.parse::<Uuid>().ok()));
    let decide = FormAction::<SetVersionStatus>::new();
    let decide_err = decide.error();
    let team_info = Resource::new(team, crate::teams::rpc::get_team);
    let version = Resource::new(
        move || (id(), decide.version().get()),
        |(id, _)| async move {
            match id {
                Some(id) => get_model_version(id).await,
                None => Err(AppError::NotFound("Model version".into())),
            }
        },
    );
    let package = Resource::new(
        move || (id(), decide.version().get()),
        |(id, _)| async move {
            match id {
                Some(id) => version_package(id).await,
                None => Ok(None),
            }
        },
    );
    let changes = Resource::new(
        move || (id(), decide.version().get()),
        |(id, _)| async move {
            match id {
                Some(id) => version_changes(id).await,
                None => Err(AppError::NotFound("Model version".into())),
            }
        },
    );
    let lineage = Resource::new(id, |id| async move {
        match id {
            Some(id) => version_lineage(id).await,
            None => Err(AppError::NotFound("Model version".into())),
        }
    });
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || version.get().map(|res| match res {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                Ok(v) => {
                    // approvers (and site admins) decide on a version's status
                    let can_decide = team_info.get().and_then(Result::ok).is_some_and(|t| t.my_role.is_none_or(|r| r >= Role::Approver));
                    view! { <Summary v can_decide decide decide_err/> }.into_any()
                }
            })}
        </Suspense>
        <Suspense fallback=|| ()>
            {move || package.get().and_then(Result::ok).flatten().map(|p| view! { <Package p/> })}
        </Suspense>
        {move || id().map(|id| {
            // members and up (and site admins) edit the card
            let can_edit = Signal::derive(move || {
                team_info.get().and_then(Result::ok).is_some_and(|t| t.my_role.is_none_or(|r| r >= Role::Member))
            });
            view! { <CardSection id can_edit/> }
        })}
        <section class="card">
            <h2>"Lineage"</h2>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || lineage.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(l) => view! { <LineageGraph lineage=l/> }.into_any(),
                })}
            </Suspense>
        </section>
        <section class="card" id="version-history">
            <h2>"History"</h2>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || changes.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) => view! { <ChangeHistory team=team() changes=list/> }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn Summary(
    v: ModelVersion,
    can_decide: bool,
    decide: FormAction<SetVersionStatus>,
    decide_err: Signal<Option<AppError>>,
) -> impl IntoView {
    let title = format!("{} v{}", v.model, v.number);
    let file = !v.artifact_uri.ends_with('/');
    view! {
        <PageHeader title=title subtitle=v.description.clone()/>
        <p class="muted"><a href=format!("/teams/{}/models/{}", v.team, v.model_id)>{format!("← {}", v.model)}</a></p>
        <div class="grid-2">
            <section class="card">
                <h2>"Status"</h2>
                <FormError error=decide_err/>
                <p>
                    <span class=status_class(v.status) id="version-status" data-status=v.status.as_str()>{v.status.as_str()}</span>
                    {can_decide.then(|| [ModelVersionStatus::Approved, ModelVersionStatus::Rejected, ModelVersionStatus::Archived]
                        .into_iter()
                        .filter(|to| v.status.may_become(*to))
                        .map(|to| view! {
                            <Form action=decide attr:class="inline">
                                <input type="hidden" name="id" value=v.id.to_string()/>
                                <input type="hidden" name="status" value=to.as_str()/>
                                <button type="submit" class="secondary small">{match to {
                                    ModelVersionStatus::Approved => "Approve",
                                    ModelVersionStatus::Rejected => "Reject",
                                    _ => "Archive",
                                }}</button>
                            </Form>
                        })
                        .collect_view())}
                </p>
                <dl class="facts">
                    <dt>"Registered"</dt><dd><Time at=v.created_at/>" by "{v.created_by.clone()}</dd>
                    <dt>"From"</dt><dd>{match v.source.as_str() {
                        "training_job" => "a training job",
                        "sagemaker" => "a SageMaker model package (imported)",
                        _ => "an artifact",
                    }}</dd>
                    <dt>"Artifact"</dt>
                    <dd>
                        <span class="mono">{v.artifact_uri.clone()}</span>
                        {file.then(|| view! { " " <a href=format!("/api/v1/model-versions/{}/download", v.id) rel="external" id="download">"Download"</a> })}
                    </dd>
                    {v.image.clone().map(|i| view! { <dt>"Image"</dt><dd class="mono">{i}</dd> })}
                    {v.framework.clone().map(|f| view! { <dt>"Framework"</dt><dd>{f}</dd> })}
                    {v.entry_point.clone().map(|e| view! { <dt>"Entry point"</dt><dd class="mono">{e}</dd> })}
                    {(!v.tags.is_empty()).then(|| view! {
                        <dt>"Tags"</dt>
                        <dd>{v.tags.iter().map(|(k, x)| view! { <span class="pill">{format!("{k} = {x}")}</span> }).collect_view()}</dd>
                    })}
                </dl>
            </section>
            <section class="card">
                <h2>"Metrics"</h2>
                {if v.metrics.is_empty() {
                    view! { <p class="empty">"This version has no metrics."</p> }.into_any()
                } else {
                    view! {
                        <table class="data" id="metrics">
                            <tbody>{v.metrics.iter().map(|(k, x)| view! { <tr><th>{k.clone()}</th><td class="num">{format!("{x:.6}")}</td></tr> }).collect_view()}</tbody>
                        </table>
                    }.into_any()
                }}
                <h2>"Parameters"</h2>
                {if v.parameters.is_empty() {
                    view! { <p class="empty">"This version has no parameters."</p> }.into_any()
                } else {
                    view! {
                        <table class="data" id="parameters">
                            <tbody>{v.parameters.iter().map(|(k, x)| view! { <tr><th>{k.clone()}</th><td class="mono">{x.clone()}</td></tr> }).collect_view()}</tbody>
                        </table>
                    }.into_any()
                }}
            </section>
        </div>
    }
}

/// SageMaker's copy of the version (AWS mode).
#[component]
fn Package(p: PackageSync) -> impl IntoView {
    let state = match (&p.package_arn, p.pending) {
        (_, true) => "pill busy",
        (Some(_), false) => "pill ok",
        (None, false) => "pill",
    };
    view! {
        <section class="card" id="sagemaker-package">
            <h2>"SageMaker model package"</h2>
            <dl class="facts">
                <dt>"Group"</dt><dd class="mono">{p.group.clone()}</dd>
                <dt>"Package"</dt><dd class="mono">{p.package_arn.clone().unwrap_or_else(|| "not created yet".into())}</dd>
                <dt>"In SageMaker"</dt>
                <dd>
                    <span class=state>{if p.pending { "sync pending" } else { "in sync" }}</span>
                    {p.synced_status.map(|s| format!(" approval status {}", if s == ModelVersionStatus::Archived { "Rejected (archived here)" } else { s.as_str() }))}
                    {p.synced_at.map(|at| view! { " · " <Time at/> })}
                </dd>
                {p.last_error.clone().map(|e| view! { <dt>"Last attempt"</dt><dd class="error">{e}" (retried automatically)"</dd> })}
            </dl>
        </section>
    }
}
