//! Webhook pages (team admins): the team's endpoints with a form for a new
//! one (its secret shown once), and an endpoint's delivery log with
//! redelivery.

use crate::kernel::form::{Form, FormAction};
use crate::kernel::widgets::{ErrorBox, FieldMessage, FormError, PageHeader, Time, use_refresh};
use crate::webhooks::rpc::{
    CreateWebhook, RedeliverWebhook, SetWebhookActive, get_webhook, list_webhooks, webhook_deliveries,
};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use uuid::Uuid;

#[component]
pub fn WebhooksPage() -> impl IntoView {
    let params = use_params_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let create = FormAction::<CreateWebhook>::new();
    let toggle = FormAction::<SetWebhookActive>::new();
    let err = create.error();
    let hooks =
        Resource::new(move || (team(), create.version().get(), toggle.version().get()), |(t, _, _)| list_webhooks(t));
    view! {
        <PageHeader title="Webhooks" subtitle="Endpoints that receive the team's events, signed with the Standard Webhooks scheme (verify them with any of its libraries)."/>
        <p class="muted"><a href=move || format!("/teams/{}", team())>"← Team"</a></p>
        {move || create.value().get().and_then(Result::ok).map(|c| view! {
            <div class="notice" id="webhook-secret">
                "Signing secret for "{c.webhook.url.clone()}" (shown only now): "<code>{c.secret.clone()}</code>
            </div>
        })}
        <div class="grid-2 wide-left">
            <section class="card">
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || hooks.get().map(|res| match res {
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <p class="empty">"No endpoints yet. Add one to hear about change requests, training jobs and models as they happen."</p> }.into_any(),
                        Ok(list) => view! {
                            <table class="data" id="webhooks">
                                <thead><tr><th>"Endpoint"</th><th>"Events"</th><th>"State"</th><th></th></tr></thead>
                                <tbody>{list.into_iter().map(|w| view! {
                                    <tr>
                                        <td><a href=format!("/teams/{}/webhooks/{}", w.team, w.id) class="mono">{w.url.clone()}</a><br/><span class="muted">{w.description.clone()}</span></td>
                                        <td>{w.event_types.iter().map(|t| view! { <span class="pill">{t.clone()}</span> }).collect_view()}</td>
                                        <td>
                                            {if w.active { view! { <span class="pill ok">"active"</span> }.into_any() } else { view! { <span class="pill danger">"disabled"</span> }.into_any() }}
                                            {w.disabled_reason.clone().map(|r| view! { <br/><span class="error">{r}</span> })}
                                        </td>
                                        <td>
                                            <Form action=toggle attr:class="inline">
                                                <input type="hidden" name="id" value=w.id.to_string()/>
                                                <input type="hidden" name="active" value=(!w.active).to_string()/>
                                                <button type="submit" class="secondary small">{if w.active { "Disable" } else { "Enable" }}</button>
                                            </Form>
                                        </td>
                                    </tr>
                                }).collect_view()}</tbody>
                            </table>
                        }.into_any(),
                    })}
                </Suspense>
            </section>
            <section class="card">
                <h2>"New endpoint"</h2>
                <Form action=create attr:class="stack" attr:id="create-webhook">
                    <FormError error=err/>
                    <input type="hidden" name="team" value=team/>
                    <label>"URL" <input name="url" placeholder="https://hooks.example.com/capstan" required/></label>
                    <FieldMessage error=err field="url"/>
                    <label>"Events" <input name="event_types" value="*" placeholder="change_request.applied, model_alias.set"/></label>
                    <FieldMessage error=err field="event_types"/>
                    <label>"Description" <input name="description"/></label>
                    <button type="submit" disabled=move || create.pending().get()>"Add endpoint"</button>
                </Form>
            </section>
        </div>
    }
}

#[component]
pub fn WebhookPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|s| s.parse::<Uuid>().ok()));
    let redeliver = FormAction::<RedeliverWebhook>::new();
    let err = redeliver.error();
    let tick = use_refresh(RwSignal::new(true));
    let hook = Resource::new(id, |id| async move {
        match id {
            Some(id) => get_webhook(id).await,
            None => Err(crate::kernel::error::AppError::NotFound("Webhook".into())),
        }
    });
    let deliveries = Resource::new(
        move || (id(), redeliver.version().get(), tick.get() / 3),
        |(id, _, _)| async move {
            match id {
                Some(id) => webhook_deliveries(id, None).await,
                None => Err(crate::kernel::error::AppError::NotFound("Webhook".into())),
            }
        },
    );
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || hook.get().map(|res| match res {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                Ok(w) => view! {
                    <PageHeader title=w.url.clone() subtitle="Deliveries, newest first. A failed attempt is retried for a day."/>
                    <p class="muted"><a href=format!("/teams/{}/webhooks", w.team)>"← Webhooks"</a></p>
                }.into_any(),
            })}
        </Suspense>
        <FormError error=err/>
        <section class="card">
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || deliveries.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(page) if page.items.is_empty() => view! { <p class="empty">"Nothing sent yet."</p> }.into_any(),
                    Ok(page) => view! {
                        <table class="data" id="deliveries">
                            <thead><tr><th>"Event"</th><th>"State"</th><th>"Attempts"</th><th>"Answer"</th><th>"Sent"</th><th></th></tr></thead>
                            <tbody>{page.items.into_iter().map(|d| view! {
                                <tr data-delivery=d.id.to_string()>
                                    <td class="mono">{d.event_type.clone()}<br/><span class="muted">{d.message_id.clone()}</span></td>
                                    <td><span class=match d.state.as_str() { "delivered" => "pill ok", "failed" => "pill danger", _ => "pill busy" }>{d.state.clone()}</span></td>
                                    <td>{d.attempts}</td>
                                    <td>
                                        {d.status_code.map(|s| format!("HTTP {s}"))}{d.latency_ms.map(|l| format!(" · {l} ms"))}
                                        {d.error.clone().map(|e| view! { <br/><span class="error">{e}</span> })}
                                        {d.response_excerpt.clone().filter(|e| !e.is_empty()).map(|e| view! { <br/><span class="muted mono">{e}</span> })}
                                    </td>
                                    <td><Time at=d.created_at/></td>
                                    <td>
                                        <Form action=redeliver attr:class="inline">
                                            <input type="hidden" name="delivery" value=d.id.to_string()/>
                                            <button type="submit" class="secondary small">"Redeliver"</button>
                                        </Form>
                                    </td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}
