//! Importing SageMaker Model Package Groups of the AWS account into the
//! team (team admins, AWS mode): each group with the Capstan model that
//! already mirrors it, or a form that imports it as a new model.

use crate::kernel::form::{Form, FormAction};
use crate::kernel::widgets::{ErrorBox, FieldMessage, FormError, PageHeader};
use crate::registry::rpc::{ImportGroup, package_groups};
use crate::registry::types::PackageGroup;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

#[component]
pub fn ImportPage() -> impl IntoView {
    let params = use_params_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let import = FormAction::<ImportGroup>::new();
    let err = import.error();
    let groups = Resource::new(move || (team(), import.version().get()), |(t, _)| package_groups(t));
    view! {
        <PageHeader title="Import from SageMaker" subtitle="Bring a Model Package Group of the AWS account into this team: each package whose artifact the team may reach becomes a version, with its approval status. From then on, status changes made here reach SageMaker."/>
        <p class="muted"><a href=move || format!("/teams/{}/models", team())>"← Models"</a></p>
        <FormError error=err/>
        {move || import.value().get().and_then(Result::ok).map(|done| view! {
            <div class="notice" id="imported">
                <a href=format!("/teams/{}/models/{}", done.model.team, done.model.id)>{done.model.name.clone()}</a>
                {format!(" imported with {} version(s).", done.versions)}
                {(!done.skipped.is_empty()).then(|| view! {
                    <ul>{done.skipped.iter().map(|s| view! { <li>{format!("Left out: {s}")}</li> }).collect_view()}</ul>
                })}
            </div>
        })}
        <section class="card">
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || groups.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(None) => view! {
                        <p class="empty" id="local-mode">"Capstan runs in local mode: importing from SageMaker works in AWS mode only (CAPSTAN_MODE=aws), where every registered version also gets a SageMaker model package."</p>
                    }.into_any(),
                    Ok(Some(list)) if list.is_empty() => view! {
                        <p class="empty">"This AWS account has no Model Package Groups. Register a version here: in AWS mode it gets one."</p>
                    }.into_any(),
                    Ok(Some(list)) => view! {
                        <div class="table-wrap"><table class="data" id="groups">
                            <thead><tr><th>"Group"</th><th>"In Capstan"</th></tr></thead>
                            <tbody>{list.into_iter().map(|g| view! { <GroupRow g team=team() import err/> }).collect_view()}</tbody>
                        </table></div>
                    }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn GroupRow(
    g: PackageGroup,
    team: String,
    import: FormAction<ImportGroup>,
    err: Signal<Option<crate::kernel::error::AppError>>,
) -> impl IntoView {
    let mirrored = g.model.clone();
    let name = g.name.clone();
    view! {
        <tr data-group=g.name.clone()>
            <td><strong>{g.name.clone()}</strong><br/><span class="muted">{g.description.clone().unwrap_or_default()}</span></td>
            <td>{match mirrored {
                Some(model) => view! { <span class="pill ok">{model}</span> }.into_any(),
                None => view! {
                    <Form action=import attr:class="inline">
                        <input type="hidden" name="team" value=team/>
                        <input type="hidden" name="group" value=name.clone()/>
                        <input name="name" placeholder=name aria-label="Model name"/>
                        <button type="submit" class="secondary small">"Import"</button>
                        <FieldMessage error=err field="name"/>
                    </Form>
                }.into_any(),
            }}</td>
        </tr>
    }
}
