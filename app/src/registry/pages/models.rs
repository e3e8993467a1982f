//! The team's models: search by name, and a form for a new model.

use crate::kernel::form::{Form, FormAction};
use crate::kernel::format::encode;
use crate::kernel::widgets::{ErrorBox, FieldMessage, FormError, PageHeader, Time};
use crate::registry::rpc::{CreateModel, list_models};
use crate::registry::types::ModelQuery;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

#[component]
pub fn ModelsPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let create = FormAction::<CreateModel>::new();
    let err = create.error();
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
        <p><a href=move || format!("/teams/{}/model-versions", team()) id="search-versions">"Search versions by metric, parameter or tag →"</a>
            " · "<a href=move || format!("/teams/{}/sagemaker/import", team()) id="import-sagemaker">"Import from SageMaker (AWS mode) →"</a></p>
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
                                <thead><tr><th>"Name"</th><th>"Versions"</th><th>"Aliases"</th><th>"Created"</th></tr></thead>
                                <tbody>
                                {page.items.into_iter().map(|m| view! {
                                    <tr>
                                        <td><a href=format!("/teams/{}/models/{}", m.team, m.id)><strong>{m.name.clone()}</strong></a><br/><span class="muted">{m.description.clone()}</span></td>
                                        <td>{m.version_count}{m.latest_version.map(|n| view! { <br/><span class="muted">{format!("latest v{n}")}</span> })}</td>
                                        <td>{m.aliases.iter().map(|(a, n)| view! { <span class="pill" data-alias=a.clone()>{format!("{a} → v{n}")}</span> }).collect_view()}</td>
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
                <Form action=create node_ref=crate::kernel::form::cleared_on_success(create) attr:class="stack" attr:id="create-model">
                    <FormError error=err/>
                    <input type="hidden" name="team" value=team/>
                    <label>"Name" <input name="name" placeholder="churn" required/></label>
                    <FieldMessage error=err field="name"/>
                    <label>"Description" <input name="description" placeholder="What it predicts, for whom"/></label>
                    <FieldMessage error=err field="description"/>
                    <button type="submit" disabled=move || create.pending().get()>"Create model"</button>
                </Form>
            </section>
        </div>
    }
}
