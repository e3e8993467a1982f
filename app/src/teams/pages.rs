//! The teams page (home) and a team's members page with its settings.

use crate::kernel::form::{Form, FormAction};
use crate::kernel::roles::Role;
use crate::kernel::widgets::{ConfirmButton, FieldMessage, FormError, PageHeader, Time};
use crate::teams::rpc::{
    AddMember, ChangeMemberRole, CreateTeam, RemoveMember, UpdateTeam, get_team, list_members, list_teams,
};
use leptos::prelude::*;

/// The home page: the caller's teams and a form to create one. `first_steps`
/// is offered beside the empty list (the app shell passes the demo button,
/// which lives with training, a capability above teams).
#[component]
pub fn TeamsPage(#[prop(into, optional)] first_steps: ViewFn) -> impl IntoView {
    let create = FormAction::<CreateTeam>::new();
    let err = create.error();
    let teams = Resource::new(move || create.version().get(), |_| list_teams(None, Some(200)));
    view! {
        <PageHeader title="Teams" subtitle="Teams own datasets, jobs, models and endpoints. You see the teams you belong to."/>
        <div class="grid-2">
            <section class="card">
                <h2>"Your teams"</h2>
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || teams.get().map(|res| match res {
                        Err(e) => view! { <crate::kernel::widgets::ErrorBox error=e/> }.into_any(),
                        Ok(page) if page.items.is_empty() => view! {
                            <div class="empty">
                                <p>"You are not in any team yet. Create one to get started, or run the demo: it makes a demo team with a generated dataset and trains a model on it, so you can watch a job run within a minute."</p>
                                {first_steps.run()}
                            </div>
                        }.into_any(),
                        Ok(page) => view! {
                            <ul class="team-list">
                                {page.items.into_iter().map(|t| view! {
                                    <li>
                                        <a href=format!("/teams/{}", t.slug)><strong>{t.name}</strong>" "<span class="muted">{t.slug.clone()}</span></a>
                                        <span class="pill">{t.my_role.map(|r| r.to_string()).unwrap_or_else(|| "site admin".into())}</span>
                                    </li>
                                }).collect_view()}
                            </ul>
                        }.into_any(),
                    })}
                </Suspense>
            </section>
            <section class="card">
                <h2>"Create a team"</h2>
                <Form action=create node_ref=crate::kernel::form::cleared_on_success(create) attr:class="stack" attr:id="create-team">
                    <FormError error=err/>
                    <label>"Slug" <input name="slug" placeholder="ml-platform" required pattern="[a-z0-9\\-]{2,40}" aria-describedby="slug-help"
                        title="2 to 40 characters: lowercase letters a–z, digits 0–9 and hyphens"/>
                        <span class="help muted" id="slug-help">"2 to 40 characters: lowercase letters a–z, digits 0–9 and hyphens (it appears in URLs and S3 paths)."</span></label>
                    <FieldMessage error=err field="slug"/>
                    <label>"Display name" <input name="name" placeholder="ML Platform" required/></label>
                    <FieldMessage error=err field="name"/>
                    <button type="submit" disabled=move || create.pending().get()>"Create team"</button>
                </Form>
            </section>
        </div>
    }
}

#[component]
pub fn MembersPage() -> impl IntoView {
    use leptos_router::hooks::use_params_map;
    let params = use_params_map();
    let slug = move || params.with(|p| p.get("team").unwrap_or_default());
    let add = FormAction::<AddMember>::new();
    let change = FormAction::<ChangeMemberRole>::new();
    let remove = FormAction::<RemoveMember>::new();
    let rename = FormAction::<UpdateTeam>::new();
    // refetch after a successful save only: a refused one keeps what was typed
    let saved = move || rename.value().get().and_then(Result::ok);
    let team = Resource::new(move || (slug(), saved()), |(s, _)| get_team(s));
    let members = Resource::new(
        move || (slug(), add.version().get(), change.version().get(), remove.version().get()),
        |(s, ..)| list_members(s, None, Some(200)),
    );
    let add_err = add.error();
    let change_err = Signal::derive(move || {
        change.value().get().and_then(Result::err).or_else(|| remove.value().get().and_then(Result::err))
    });
    let rename_err = rename.error();
    let me = use_context::<crate::accounts::types::CurrentUser>();
    let site_admin = move || me.and_then(|m| m.0.get()).and_then(Result::ok).flatten().is_some_and(|m| m.is_site_admin);
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || team.get().map(|res| match res {
                Err(e) => view! { <crate::kernel::widgets::ErrorBox error=e/> }.into_any(),
                Ok(t) => {
                    let is_admin = site_admin() || t.my_role == Some(Role::Admin);
                    let slug_v = t.slug.clone();
                    view! {
                        <PageHeader title=t.name.clone() subtitle=format!("Team {} · members and roles", t.slug)/>
                        {is_admin.then(|| view! {
                            <p class="muted"><a href=format!("/teams/{}/webhooks", t.slug) id="team-webhooks">"Webhooks →"</a></p>
                        })}
                        <section class="card">
                            <h2>"Members"</h2>
                            <FormError error=change_err/>
                            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                                {move || members.get().map(|res| match res {
                                    Err(e) => view! { <crate::kernel::widgets::ErrorBox error=e/> }.into_any(),
                                    Ok(page) => view! {
                                        <div class="table-wrap"><table class="data" id="members">
                                            <thead><tr><th>"Name"</th><th>"Email"</th><th>"Role"</th><th>"Joined"</th>{is_admin.then(|| view! { <th></th> })}</tr></thead>
                                            <tbody>
                                            {page.items.into_iter().map(|m| {
                                                let slug_c = slug();
                                                let slug_r = slug();
                                                let role_label = format!("Role of {}", m.email);
                                                let remove_question = format!("Remove {} from the team?", m.email);
                                                view! {
                                                    <tr>
                                                        <td>{m.display_name.clone()}</td>
                                                        <td>{m.email.clone()}</td>
                                                        <td>
                                                        {if is_admin {
                                                            view! {
                                                                <Form action=change attr:class="inline">
                                                                    <input type="hidden" name="team" value=slug_c/>
                                                                    <input type="hidden" name="user_id" value=m.user_id.to_string()/>
                                                                    <select name="role" aria-label=role_label>
                                                                        {Role::ALL.into_iter().map(|r| view! {
                                                                            <option value=r.as_str() selected=r == m.role>{r.as_str()}</option>
                                                                        }).collect_view()}
                                                                    </select>
                                                                    <button type="submit" class="small secondary">"Save"</button>
                                                                </Form>
                                                            }.into_any()
                                                        } else {
                                                            view! { <span class="pill">{m.role.to_string()}</span> }.into_any()
                                                        }}
                                                        </td>
                                                        <td><Time at=m.joined_at/></td>
                                                        {is_admin.then(|| view! {
                                                            <td>
                                                                <Form action=remove attr:class="inline">
                                                                    <input type="hidden" name="team" value=slug_r/>
                                                                    <input type="hidden" name="user_id" value=m.user_id.to_string()/>
                                                                    <ConfirmButton label="Remove" question=remove_question/>
                                                                </Form>
                                                            </td>
                                                        })}
                                                    </tr>
                                                }
                                            }).collect_view()}
                                            </tbody>
                                        </table></div>
                                    }.into_any(),
                                })}
                            </Suspense>
                        </section>
                        {is_admin.then(|| { let slug_a = slug_v.clone(); let slug_n = slug_v.clone(); view! {
                            <div class="grid-2">
                            <section class="card" id="add-member">
                                <h2>"Add a member"</h2>
                                <Form action=add attr:class="stack">
                                    <FormError error=add_err/>
                                    <input type="hidden" name="team" value=slug_a/>
                                    <label>"Email" <input type="email" name="email" required placeholder="colleague@example.com"/></label>
                                    <FieldMessage error=add_err field="email"/>
                                    <label>"Role"
                                        <select name="role">
                                            {Role::ALL.into_iter().map(|r| view! { <option value=r.as_str() selected=r == Role::Member>{r.as_str()}</option> }).collect_view()}
                                        </select>
                                    </label>
                                    <FieldMessage error=add_err field="role"/>
                                    <button type="submit" disabled=move || add.pending().get()>"Add member"</button>
                                </Form>
                            </section>
                            <section class="card" id="team-settings">
                                <h2>"Team settings"</h2>
                                <Form action=rename attr:class="stack">
                                    <FormError error=rename_err/>
                                    <input type="hidden" name="team" value=slug_n/>
                                    <label>"Display name" <input name="name" value=t.name.clone() required/></label>
                                    <FieldMessage error=rename_err field="name"/>
                                    <label>"SageMaker execution role"
                                        <input name="sagemaker_role_arn" value=t.sagemaker_role_arn.clone().unwrap_or_default()
                                            readonly=!site_admin()
                                            placeholder="arn:aws:iam::123456789012:role/SageMakerTraining"/>
                                    </label>
                                    <p class="muted">"The IAM role this team's SageMaker training jobs run as; empty uses the site's role. Only site admins change it: the role decides what the team's code may do in AWS."</p>
                                    <FieldMessage error=rename_err field="sagemaker_role_arn"/>
                                    <label>"Allowed locations outside Capstan's bucket"
                                        <textarea name="allowed_sources" rows="3" readonly=!site_admin()
                                            placeholder="s3://team-raw-data/exports/">{t.allowed_sources.join("\n")}</textarea>
                                    </label>
                                    <p class="muted">"One s3://bucket/prefix/ per line: dataset sources and training locations the team may name besides its own area of Capstan's bucket. Only site admins change them."</p>
                                    <FieldMessage error=rename_err field="allowed_sources"/>
                                    <label>"Other IAM roles launches may name"
                                        <textarea name="allowed_role_arns" rows="2" readonly=!site_admin()
                                            placeholder="arn:aws:iam::123456789012:role/GpuTraining">{t.allowed_role_arns.join("\n")}</textarea>
                                    </label>
                                    <p class="muted">"One role ARN per line, besides the execution role above, that a launch may choose. Only site admins change them."</p>
                                    <FieldMessage error=rename_err field="allowed_role_arns"/>
                                    <button type="submit" class="secondary">"Save settings"</button>
                                </Form>
                            </section>
                            </div>
                        }})}
                    }.into_any()
                }
            })}
        </Suspense>
    }
}
