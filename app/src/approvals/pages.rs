//! Review pages: the team's inbox (needs my review, my requests, all) and a
//! request's page (diff with metrics side by side, the rule and who still
//! has to approve, approve/reject with a comment, withdraw, the timeline),
//! refreshed every second while the request can still change.

use crate::approvals::rpc::{DecideChangeRequest, get_change_request, list_change_requests};
use crate::approvals::types::{ChangeRequest, State};
use crate::kernel::form::{Form, FormAction};
use crate::kernel::widgets::{ErrorBox, FieldMessage, FormError, PageHeader, Time, use_refresh};
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use uuid::Uuid;

/// The pill class of a request's state.
fn state_class(state: State) -> &'static str {
    match state {
        State::Open | State::Approved | State::Applying => "pill busy",
        State::Applied => "pill ok",
        State::Failed | State::Rejected | State::Stale => "pill danger",
        State::Withdrawn | State::Expired => "pill",
    }
}

#[component]
pub fn ReviewsPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let tab = move || query.with(|q| q.get("tab").unwrap_or_else(|| "review".into()));
    let requests = Resource::new(move || (team(), tab()), |(team, tab)| list_change_requests(team, tab));
    let tabs = [("review", "Needs my review"), ("mine", "My requests"), ("all", "All (team)")];
    view! {
        <PageHeader title="Reviews" subtitle="Change requests of the team: protected aliases and the changes the team's approval policies cover are applied once approved."/>
        <nav class="tabs" id="review-tabs">
            {tabs.into_iter().map(|(key, label)| view! {
                <a href=move || format!("/teams/{}/reviews?tab={key}", team()) class:active=move || tab() == key>{label}</a>
            }).collect_view()}
        </nav>
        <section class="card">
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || requests.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(page) if page.items.is_empty() => view! {
                        <p class="empty">"Nothing here. To propose a change, open a model and use \"Request a move\" on a protected alias."</p>
                    }.into_any(),
                    Ok(page) => view! {
                        <div class="table-wrap"><table class="data" id="requests">
                            <thead><tr><th>"Request"</th><th>"State"</th><th>"Approvals"</th><th>"Author"</th><th>"Opened"</th></tr></thead>
                            <tbody>{page.items.into_iter().map(|r| view! {
                                <tr data-request=r.id.to_string()>
                                    <td><a href=format!("/teams/{}/change-requests/{}", r.team, r.id)><strong>{r.title.clone()}</strong></a><br/><span class="muted mono">{r.kind.clone()}</span></td>
                                    <td><span class=state_class(r.state)>{r.state.as_str()}</span></td>
                                    <td>{format!("{} of {}", r.approvals, r.approvals_required)}</td>
                                    <td>{r.author.clone()}</td>
                                    <td><Time at=r.created_at/></td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table></div>
                    }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

#[component]
pub fn RequestPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|s| s.parse::<Uuid>().ok()));
    let decide = FormAction::<DecideChangeRequest>::new();
    let err = decide.error();
    // live while someone else may still act on it
    let live = RwSignal::new(true);
    let tick = use_refresh(live);
    let request = Resource::new(
        move || (id(), decide.version().get(), tick.get() / 2),
        |(id, _, _)| async move {
            match id {
                Some(id) => get_change_request(id).await,
                None => Err(crate::kernel::error::AppError::NotFound("Change request".into())),
            }
        },
    );
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || request.get().map(|res| match res {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                Ok(r) => {
                    live.set(!r.state.is_final());
                    view! { <Request r decide err/> }.into_any()
                }
            })}
        </Transition>
    }
}

#[component]
fn Request(
    r: ChangeRequest,
    decide: FormAction<DecideChangeRequest>,
    err: Signal<Option<crate::kernel::error::AppError>>,
) -> impl IntoView {
    let metric_names: Vec<String> = {
        let mut names: Vec<String> = r.diff.versions.iter().flat_map(|v| v.metrics.keys().cloned()).collect();
        names.sort();
        names.dedup();
        names
    };
    let still = (r.rule.approvals_required - r.approvals).max(0);
    let rule = format!(
        "{} approval(s) from a {} or above{}; the author does not count.",
        r.rule.approvals_required,
        r.rule.min_role.as_str(),
        if r.rule.require_admin { ", one of them an admin" } else { "" }
    );
    let id = r.id.to_string();
    let open = r.state == State::Open;
    view! {
        <PageHeader title=r.title.clone() subtitle=format!("{} · opened by {}", r.change.kind(), r.author)/>
        <p class="muted"><a href=format!("/teams/{}/reviews", r.team)>"← Reviews"</a></p>
        <div class="grid-2">
            <section class="card">
                <h2>"Change"</h2>
                <p>
                    <span class=state_class(r.state) id="request-state" data-state=r.state.as_str()>{r.state.as_str()}</span>
                    " "{r.diff.target.clone()}": "
                    <strong id="diff-before">{r.diff.before.clone()}</strong>" → "<strong id="diff-after">{r.diff.after.clone()}</strong>
                </p>
                {r.error.clone().map(|e| view! { <p class="error">{e}</p> })}
                {(!r.diff.versions.is_empty()).then(|| view! {
                    <table class="data" id="diff-metrics">
                        <thead><tr><th>"Metric"</th>{r.diff.versions.iter().map(|v| view! { <th>{format!("v{}", v.number)}</th> }).collect_view()}</tr></thead>
                        <tbody>{metric_names.iter().map(|m| view! {
                            <tr><th>{m.clone()}</th>{r.diff.versions.iter().map(|v| view! {
                                <td class="num">{v.metrics.get(m).map(|x| format!("{x:.6}")).unwrap_or_else(|| "—".into())}</td>
                            }).collect_view()}</tr>
                        }).collect_view()}</tbody>
                    </table>
                })}
                {(!r.justification.is_empty()).then(|| view! { <h3>"Why"</h3><p>{r.justification.clone()}</p> })}
            </section>
            <section class="card">
                <h2>"Approvals"</h2>
                <p id="rule">{rule}</p>
                <p id="approvals">{format!("{} of {} given", r.approvals, r.rule.approvals_required)}{(open && still > 0).then(|| format!(" · {still} more needed"))}</p>
                {(open && still > 0).then(|| if r.waiting_on.is_empty() {
                    view! { <p class="error" id="waiting-on">"Nobody in the team may approve it: add a member with that role."</p> }.into_any()
                } else {
                    view! { <p class="muted" id="waiting-on">"May approve: "{r.waiting_on.join(", ")}</p> }.into_any()
                })}
                <FormError error=err/>
                {r.can_review.then(|| {
                    let id = id.clone();
                    view! {
                        <Form action=decide attr:class="stack" attr:id="review-form">
                            <input type="hidden" name="id" value=id/>
                            <label>"Comment" <textarea name="comment" rows="2"></textarea></label>
                            <FieldMessage error=err field="comment"/>
                            <div class="row">
                                <button type="submit" name="decision" value="approve">"Approve"</button>
                                <button type="submit" name="decision" value="reject" class="secondary">"Reject"</button>
                            </div>
                        </Form>
                    }
                })}
                {open.then(|| view! {
                    <Form action=decide attr:class="inline" attr:id="withdraw-form">
                        <input type="hidden" name="id" value=id.clone()/>
                        <input type="hidden" name="decision" value="withdraw"/>
                        <input type="hidden" name="comment" value=""/>
                        <button type="submit" class="secondary small">"Withdraw"</button>
                    </Form>
                })}
                <ul class="reviews">{r.reviews.iter().map(|v| view! {
                    <li>
                        <strong>{v.reviewer.clone()}</strong>" ("{v.role.as_str()}") "{v.decision.clone()}
                        {(!v.counts && v.decision == "approve").then_some(" (an earlier revision: does not count)")}
                        " · "<Time at=v.at/>
                        {(!v.comment.is_empty()).then(|| view! { <br/><span class="muted">{v.comment.clone()}</span> })}
                    </li>
                }).collect_view()}</ul>
            </section>
        </div>
        <section class="card">
            <h2>"Timeline"</h2>
            <ol class="timeline" id="timeline">{r.timeline.iter().map(|e| view! {
                <li>
                    <Time at=e.at/>" "<strong>{e.action.clone()}</strong>
                    {e.to_state.map(|s| format!(" → {}", s.as_str()))}
                    " by "{e.actor.clone().unwrap_or_else(|| "Capstan".into())}
                    {(!e.comment.is_empty()).then(|| view! { <br/><span class="muted">{e.comment.clone()}</span> })}
                </li>
            }).collect_view()}</ol>
            <p class="muted">"Expires "<Time at=r.expires_at/>{r.applied_at.map(|at| view! { " · applied "<Time at/> })}</p>
        </section>
    }
}

/// Proposes moving a protected alias (`?model=<id>&alias=<name>`): pick the
/// version, say why.
#[component]
pub fn NewRequestPage() -> impl IntoView {
    use crate::approvals::rpc::RequestAliasMove;
    let params = use_params_map();
    let query = use_query_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let model = move || query.with(|q| q.get("model").and_then(|m| m.parse::<Uuid>().ok()));
    let alias = move || query.with(|q| q.get("alias").unwrap_or_else(|| "champion".into()));
    let open = FormAction::<RequestAliasMove>::new();
    let err = open.error();
    let versions = Resource::new(model, |model| async move {
        match model {
            Some(m) => crate::registry::rpc::list_model_versions(m, None, None).await.map(|p| p.items),
            None => Err(crate::kernel::error::AppError::NotFound("Model".into())),
        }
    });
    view! {
        <PageHeader title="Request an alias move" subtitle="A protected alias moves once the team's reviewers approve. The request keeps the alias's current version: if it moves meanwhile, the request goes stale."/>
        {move || open.value().get().and_then(Result::ok).map(|r| view! {
            <div class="notice" id="request-opened">
                "Request opened: "<a href=format!("/teams/{}/change-requests/{}", r.team, r.id)>{r.title.clone()}</a>
            </div>
        })}
        <section class="card">
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || versions.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) => view! {
                        <Form action=open attr:class="stack" attr:id="request-form">
                            <FormError error=err/>
                            <input type="hidden" name="team" value=team/>
                            <input type="hidden" name="model" value=move || model().map(|m| m.to_string()).unwrap_or_default()/>
                            <label>"Alias" <input name="alias" value=alias required/></label>
                            <FieldMessage error=err field="change.alias"/>
                            <label>"Move to version"
                                <select name="version" required>
                                    {list.into_iter().map(|v| view! {
                                        <option value=v.id.to_string()>{format!("v{} · {} · {}", v.number, v.status.as_str(),
                                            v.metrics.iter().map(|(k, x)| format!("{k} {x:.4}")).collect::<Vec<_>>().join(", "))}</option>
                                    }).collect_view()}
                                </select>
                            </label>
                            <FieldMessage error=err field="change.version_id"/>
                            <label>"Title" <input name="title" required maxlength="200" placeholder="Promote v2: higher AUC"/></label>
                            <FieldMessage error=err field="title"/>
                            <label>"Why" <textarea name="justification" rows="3"></textarea></label>
                            <button type="submit" disabled=move || open.pending().get()>"Open request"</button>
                        </Form>
                    }.into_any(),
                })}
            </Suspense>
        </section>
    }
}
