//! An alias's page: the version it names, whether it is protected (and the
//! way to request a move), and every change of it from the audit log.

use crate::kernel::error::AppError;
use crate::kernel::widgets::{ErrorBox, PageHeader};
use crate::registry::pages::history::ChangeHistory;
use crate::registry::rpc::{alias_changes, get_model, list_aliases};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use uuid::Uuid;

#[component]
pub fn AliasPage() -> impl IntoView {
    let params = use_params_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let id = move || params.with(|p| p.get("id").and_then(|s| s.parse::<Uuid>().ok()));
    let alias = move || params.with(|p| p.get("alias").unwrap_or_default());
    let model = Resource::new(id, |id| async move {
        match id {
            Some(id) => get_model(id).await,
            None => Err(AppError::NotFound("Model".into())),
        }
    });
    let current = Resource::new(
        move || (id(), alias()),
        |(id, alias)| async move {
            match id {
                Some(id) => list_aliases(id).await.map(|list| list.into_iter().find(|a| a.alias == alias)),
                None => Err(AppError::NotFound("Model".into())),
            }
        },
    );
    let changes = Resource::new(
        move || (id(), alias()),
        |(id, alias)| async move {
            match id {
                Some(id) => alias_changes(id, alias).await,
                None => Err(AppError::NotFound("Model".into())),
            }
        },
    );
    let model_href = move || format!("/teams/{}/models/{}", team(), id().map(|i| i.to_string()).unwrap_or_default());
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || model.get().map(|res| match res {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                Ok(m) => view! {
                    <PageHeader title=format!("{} of {}", alias(), m.name) subtitle="Alias"/>
                    <p class="muted"><a href=model_href()>{format!("← Model {}", m.name)}</a></p>
                }.into_any(),
            })}
        </Suspense>
        <section class="card" id="alias-now">
            <h2>"Now"</h2>
            <Suspense fallback=|| ()>
                {move || current.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(None) => view! { <p class="empty">"This alias names no version now."</p> }.into_any(),
                    Ok(Some(a)) => view! {
                        <p data-alias=a.alias.clone()>
                            <strong>{a.alias.clone()}</strong>" → "
                            <a href=format!("/teams/{}/model-versions/{}", team(), a.version_id)>{format!("v{}", a.number)}</a>
                            {a.protected.then(|| view! {
                                " "<span class="pill">"protected"</span>
                                " "<a class="request-move" href=format!("/teams/{}/reviews/new?model={}&alias={}", team(), id().map(|i| i.to_string()).unwrap_or_default(), a.alias)>"Request a move →"</a>
                            })}
                        </p>
                    }.into_any(),
                })}
            </Suspense>
        </section>
        <section class="card">
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
