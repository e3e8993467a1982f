//! The API tokens page.

use crate::kernel::form::{Form, FormAction};
use crate::kernel::widgets::{ConfirmButton, FieldMessage, FormError, PageHeader, Time};
use crate::tokens::rpc::{CreateToken, RevokeToken, list_tokens};
use leptos::prelude::*;

#[component]
pub fn TokensPage() -> impl IntoView {
    let create = FormAction::<CreateToken>::new();
    let revoke = FormAction::<RevokeToken>::new();
    let err = create.error();
    let revoke_err = revoke.error();
    let tokens =
        Resource::new(move || (create.version().get(), revoke.version().get()), |_| list_tokens(None, Some(200)));
    let created = move || create.value().get().and_then(Result::ok);
    view! {
        <PageHeader title="API tokens" subtitle="Tokens act as you in scripts and CI: send them as Authorization: Bearer <token>."/>
        <Show when=move || created().is_some()>
            {move || created().map(|c| view! {
                <section class="card secret-card" id="new-token">
                    <h2>"Copy your new token now"</h2>
                    <p>"This is the only time it is shown. Store it in your secret manager."</p>
                    <div class="secret-row">
                        <code id="token-secret">{c.secret.clone()}</code>
                        <crate::kernel::widgets::CopyButton text=c.secret.clone()/>
                    </div>
                </section>
            })}
        </Show>
        <div class="grid-2">
            <section class="card">
                <h2>"Your tokens"</h2>
                <FormError error=revoke_err/>
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || tokens.get().map(|res| match res {
                        Err(e) => view! { <crate::kernel::widgets::ErrorBox error=e/> }.into_any(),
                        Ok(page) if page.items.is_empty() => view! { <p class="empty">"No tokens yet."</p> }.into_any(),
                        Ok(page) => view! {
                            <div class="table-wrap"><table class="data" id="tokens">
                                <thead><tr><th>"Name"</th><th>"Prefix"</th><th>"Created"</th><th>"Last used"</th><th>"Expires"</th><th></th></tr></thead>
                                <tbody>
                                {page.items.into_iter().map(|t| view! {
                                    <tr class:revoked=t.revoked_at.is_some()>
                                        <td>{t.name.clone()}</td>
                                        <td><code>{t.prefix.clone()}"…"</code></td>
                                        <td><Time at=t.created_at/></td>
                                        <td>{t.last_used_at.map(|at| view! { <Time at=at/> }.into_any()).unwrap_or_else(|| view! { <span class="muted">"never"</span> }.into_any())}</td>
                                        <td>{t.expires_at.map(|at| view! { <Time at=at/> }.into_any()).unwrap_or_else(|| view! { <span class="muted">"never"</span> }.into_any())}</td>
                                        <td>{if t.revoked_at.is_some() {
                                            view! { <span class="pill danger">"revoked"</span> }.into_any()
                                        } else {
                                            view! {
                                                <Form action=revoke attr:class="inline">
                                                    <input type="hidden" name="token_id" value=t.id.to_string()/>
                                                    <ConfirmButton label="Revoke" question=format!("Revoke token {}? Scripts using it will stop working.", t.name)/>
                                                </Form>
                                            }.into_any()
                                        }}</td>
                                    </tr>
                                }).collect_view()}
                                </tbody>
                            </table></div>
                        }.into_any(),
                    })}
                </Suspense>
            </section>
            <section class="card">
                <h2>"Create a token"</h2>
                <Form action=create node_ref=crate::kernel::form::cleared_on_success(create) attr:class="stack" attr:id="create-token">
                    <FormError error=err/>
                    <label>"Name" <input name="name" placeholder="ci-pipeline" required maxlength="100"/></label>
                    <FieldMessage error=err field="name"/>
                    <label>"Expires"
                        <select name="expires_in_days">
                            <option value="30">"in 30 days"</option>
                            <option value="90" selected>"in 90 days"</option>
                            <option value="365">"in a year"</option>
                            <option value="0">"never"</option>
                        </select>
                    </label>
                    <FieldMessage error=err field="expires_in_days"/>
                    <FieldMessage error=err field="expires_at"/>
                    <button type="submit" disabled=move || create.pending().get()>"Create token"</button>
                </Form>
            </section>
        </div>
    }
}
