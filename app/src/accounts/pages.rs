//! The sign-in and setup pages, the account page (password, sessions) and
//! the site admins' user list.

use crate::accounts::rpc::{
    ChangePassword, CreateUser, Login, SetUserDisabled, Setup, SignOutEverywhere, list_users, setup_open,
};
use crate::kernel::error::AppError;
use crate::kernel::form::{Form, FormAction};
use crate::kernel::widgets::Time;
use crate::kernel::widgets::{FieldMessage, FormError, PageHeader};
use leptos::prelude::*;

#[component]
pub fn LoginPage() -> impl IntoView {
    let action = FormAction::<Login>::new();
    let err = action.error();
    let setup = Resource::new(|| (), |_| setup_open());
    view! {
        <div class="auth-card">
            <h1 class="brand-big">"Capstan"</h1>
            <p class="muted">"Sign in to your ML control plane."</p>
            <Suspense fallback=|| ()>
                {move || setup.get().and_then(Result::ok).filter(|open| *open).map(|_| view! {
                    <p class="notice">"No account exists yet. Open the setup link printed in the server console to create the first one."</p>
                })}
            </Suspense>
            <Form action=action attr:class="stack">
                <FormError error=err/>
                <label>"Email" <input type="email" name="email" autocomplete="username" required/></label>
                <FieldMessage error=err field="email"/>
                <label>"Password" <input type="password" name="password" autocomplete="current-password" required/></label>
                <FieldMessage error=err field="password"/>
                <button type="submit" disabled=move || action.pending().get()>"Sign in"</button>
            </Form>
        </div>
    }
}

#[component]
pub fn SetupPage() -> impl IntoView {
    use leptos_router::hooks::use_query_map;
    let query = use_query_map();
    let token = move || query.with(|q| q.get("token").unwrap_or_default());
    let action = FormAction::<Setup>::new();
    let err = action.error();
    let open = Resource::new(|| (), |_| setup_open());
    view! {
        <div class="auth-card">
            <h1 class="brand-big">"Welcome to Capstan"</h1>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || open.get().map(|open| match open {
                Ok(false) => view! {
                    <p class="notice" data-testid="setup-done">"Setup is already complete: this link has been used. "
                        <a href="/login">"Sign in"</a>" with your account, or ask a site admin for one."</p>
                }.into_any(),
                _ => view! { <SetupForm action err token/> }.into_any(),
            })}
            </Suspense>
        </div>
    }
}

#[component]
fn SetupForm(
    action: FormAction<Setup>,
    err: Signal<Option<AppError>>,
    token: impl Fn() -> String + Send + Sync + 'static,
) -> impl IntoView {
    view! {
        <p class="muted">"Create the first account. It becomes the site administrator."</p>
            <Form action=action attr:class="stack">
                <FormError error=err/>
                <input type="hidden" name="token" value=token/>
                <FieldMessage error=err field="token"/>
                <label>"Email" <input type="email" name="email" autocomplete="username" required/></label>
                <FieldMessage error=err field="email"/>
                <label>"Your name" <input name="display_name" autocomplete="name" required/></label>
                <FieldMessage error=err field="display_name"/>
                <label>"Password (at least 12 characters)" <input type="password" name="password" autocomplete="new-password" required minlength="12"/></label>
                <FieldMessage error=err field="password"/>
                <button type="submit" disabled=move || action.pending().get()>"Create account"</button>
            </Form>
    }
}

#[component]
pub fn AccountPage() -> impl IntoView {
    let action = FormAction::<ChangePassword>::new();
    let err = action.error();
    let done = move || matches!(action.value().get(), Some(Ok(())));
    let everywhere = FormAction::<SignOutEverywhere>::new();
    let everywhere_err = everywhere.error();
    let me = use_context::<crate::accounts::types::CurrentUser>();
    view! {
        <PageHeader title="Account" subtitle="Your profile and password."/>
        <Suspense fallback=|| ()>
            {move || me.and_then(|m| m.0.get()).and_then(Result::ok).flatten().map(|me| view! {
                <dl class="facts">
                    <dt>"Name"</dt><dd>{me.display_name}</dd>
                    <dt>"Email"</dt><dd>{me.email}</dd>
                    <dt>"Site admin"</dt><dd>{if me.is_site_admin { "yes" } else { "no" }}</dd>
                </dl>
            })}
        </Suspense>
        <section class="card">
            <h2>"Change password"</h2>
            <Form action=action attr:class="stack narrow">
                <FormError error=err/>
                <Show when=done><p class="success">"Password changed."</p></Show>
                <label>"Current password" <input type="password" name="current_password" autocomplete="current-password" required/></label>
                <FieldMessage error=err field="current_password"/>
                <label>"New password" <input type="password" name="new_password" autocomplete="new-password" required minlength="12"/></label>
                <FieldMessage error=err field="new_password"/>
                <button type="submit" disabled=move || action.pending().get()>"Change password"</button>
            </Form>
            <p class="muted">"Changing your password signs you out on every other browser."</p>
        </section>
        <section class="card" id="sessions">
            <h2>"Sessions"</h2>
            <p class="muted">"Signed in on a shared or lost computer? End every browser session of yours, this one too. API tokens keep working: revoke them on the API tokens page."</p>
            <Form action=everywhere>
                <FormError error=everywhere_err/>
                <button type="submit" class="secondary" disabled=move || everywhere.pending().get()>"Sign out everywhere"</button>
            </Form>
        </section>
    }
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let create = FormAction::<CreateUser>::new();
    let toggle = FormAction::<SetUserDisabled>::new();
    let err = create.error();
    let toggle_err = toggle.error();
    let created = move || create.value().get().and_then(Result::ok);
    let users =
        Resource::new(move || (create.version().get(), toggle.version().get()), |_| list_users(None, Some(200)));
    view! {
        <PageHeader title="Users" subtitle="Accounts on this Capstan. Team admins add existing accounts to their teams."/>
        <div class="grid-2">
            <section class="card">
                <h2>"Accounts"</h2>
                <FormError error=toggle_err/>
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || users.get().map(|res| match res {
                        Err(e) => view! { <crate::kernel::widgets::ErrorBox error=e/> }.into_any(),
                        Ok(page) => view! {
                            <div class="table-wrap"><table class="data" id="users">
                                <thead><tr><th>"Name"</th><th>"Email"</th><th>"Created"</th><th></th><th></th></tr></thead>
                                <tbody>
                                {page.items.into_iter().map(|u| view! {
                                    <tr>
                                        <td>{u.display_name}</td>
                                        <td>{u.email}</td>
                                        <td><Time at=u.created_at/></td>
                                        <td>
                                            {u.is_site_admin.then(|| view! { <span class="pill">"site admin"</span> })}
                                            {u.disabled.then(|| view! { <span class="pill danger">"disabled"</span> })}
                                        </td>
                                        <td>
                                            <Form action=toggle attr:class="inline">
                                                <input type="hidden" name="user_id" value=u.id.to_string()/>
                                                <input type="hidden" name="disabled" value=(!u.disabled).to_string()/>
                                                <button type="submit" class="link">{if u.disabled { "Enable" } else { "Disable" }}</button>
                                            </Form>
                                        </td>
                                    </tr>
                                }).collect_view()}
                                </tbody>
                            </table></div>
                        }.into_any(),
                    })}
                </Suspense>
            </section>
            <section class="card">
                <h2>"Create an account"</h2>
                <Form action=create node_ref=crate::kernel::form::cleared_on_success(create) attr:class="stack" attr:id="create-user">
                    <FormError error=err/>
                    {move || created().map(|u| view! { <p class="success">"Created "{u.email}". Share the password with them privately."</p> })}
                    <label>"Email" <input type="email" name="email" required/></label>
                    <FieldMessage error=err field="email"/>
                    <label>"Name" <input name="display_name" required/></label>
                    <FieldMessage error=err field="display_name"/>
                    <label>"Initial password (at least 12 characters)" <input type="password" name="password" autocomplete="new-password" required minlength="12"/></label>
                    <FieldMessage error=err field="password"/>
                    <label class="check"><input type="checkbox" name="is_site_admin"/>" Site administrator"</label>
                    <button type="submit" disabled=move || create.pending().get()>"Create account"</button>
                </Form>
            </section>
        </div>
    }
}
