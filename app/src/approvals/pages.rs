//! Review pages: the team's inbox (needs my review, my requests, all) and a
//! request's page (diff with metrics side by side, the rule and who still
//! has to approve, approve/reject with a comment, withdraw, the timeline),
//! refreshed every second while the request can still change; an endpoint
//! change's split before and after as two bars. The new-request page
//! proposes an alias move, or an endpoint change handed over by an
//! endpoint page in the query string.

use crate::approvals::rpc::{DecideChangeRequest, get_change_request, list_change_requests};
use crate::approvals::types::{ChangeRequest, State};
use crate::kernel::chart::SplitBar;
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
                {(!r.diff.split.is_empty()).then(|| {
                    let names: Vec<String> = r.diff.split.iter().map(|s| s.variant.clone()).collect();
                    let side = |pick: fn(&crate::approvals::types::SplitRow) -> Option<f64>| {
                        crate::endpoints::types::shares(&r.diff.split.iter().map(|s| pick(s).unwrap_or(0.0)).collect::<Vec<_>>())
                    };
                    let (before, after) = (side(|s| s.before), side(|s| s.after));
                    view! {
                        <div id="diff-split">
                            <p class="muted">"Traffic split before"</p>
                            <div data-side="before"><SplitBar names=names.clone() shares=before/></div>
                            <p class="muted">"after"</p>
                            <div data-side="after"><SplitBar names=names shares=after/></div>
                            <table class="data">
                                <thead><tr><th>"Variant"</th><th>"Serves"</th><th>"Weight before"</th><th>"after"</th></tr></thead>
                                <tbody>{r.diff.split.iter().map(|s| view! {
                                    <tr data-variant=s.variant.clone()>
                                        <td>{s.variant.clone()}</td><td>{s.version.clone()}</td>
                                        <td class="num">{s.before.map(|w| format!("{w}")).unwrap_or_else(|| "—".into())}</td>
                                        <td class="num">{s.after.map(|w| format!("{w}")).unwrap_or_else(|| "—".into())}</td>
                                    </tr>
                                }).collect_view()}</tbody>
                            </table>
                        </div>
                    }
                })}
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
/// version, say why; or an endpoint change (`?kind=endpoint.…`, see
/// [`EndpointRequest`]).
#[component]
pub fn NewRequestPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    move || {
        let fields: Vec<(String, String)> =
            query.with(|q| q.latest_values().map(|(k, v)| (k.to_string(), v.to_owned())).collect());
        if fields.iter().any(|(k, v)| k == "kind" && v.starts_with("endpoint.")) {
            view! { <EndpointRequest team=team() fields/> }.into_any()
        } else {
            view! { <AliasMoveRequest/> }.into_any()
        }
    }
}

/// What an endpoint page hands over, as `(variant, weight)` of the
/// production variants after the change: the weights editor's `variant[i]`
/// and `weight[i]`, or the variant rows' `variants[i][…]` (rows without a
/// version left out).
fn proposed_split(fields: &[(String, String)]) -> Vec<(String, f64)> {
    let get = |k: String| fields.iter().find(|(q, _)| *q == k).map(|(_, v)| v.trim().to_owned());
    let weight = |w: Option<String>| w.and_then(|w| w.parse::<f64>().ok()).unwrap_or(0.0);
    let mut out = Vec::new();
    for i in 0..crate::endpoints::types::MAX_VARIANTS + 1 {
        if let Some(name) = get(format!("variant[{i}]")) {
            out.push((name, weight(get(format!("weight[{i}]")))));
        } else if let Some(name) = get(format!("variants[{i}][name]"))
            && get(format!("variants[{i}][version_id]")).is_some_and(|v| !v.is_empty())
        {
            out.push((name, weight(get(format!("variants[{i}][weight]")))));
        }
    }
    out
}

/// Proposes an endpoint change handed over by an endpoint page whose
/// change the team's policy covers (`?kind=endpoint.weights&endpoint=<id>&
/// variant[0]=a&weight[0]=3…`): the split now and after, a title and a
/// reason; the change's fields are posted as they came.
#[component]
fn EndpointRequest(team: String, fields: Vec<(String, String)>) -> impl IntoView {
    use crate::approvals::rpc::RequestEndpointChange;
    let kind = fields.iter().find(|(k, _)| k == "kind").map(|(_, v)| v.clone()).unwrap_or_default();
    let endpoint = fields.iter().find(|(k, _)| k == "endpoint").and_then(|(_, v)| v.parse::<Uuid>().ok());
    let open = FormAction::<RequestEndpointChange>::new();
    let err = open.error();
    let current = Resource::new(
        move || endpoint,
        |id| async move {
            match id {
                Some(id) => crate::endpoints::rpc::get_endpoint(id).await.map(Some),
                None => Ok(None),
            }
        },
    );
    let field =
        |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
    let (baseline, candidate) = (field("baseline"), field("candidate"));
    // the split after the change, from the split now
    let proposed = proposed_split(&fields);
    let after = {
        let kind = kind.clone();
        move |now: &[(String, f64)]| -> Vec<(String, f64)> {
            match kind.as_str() {
                "endpoint.delete" => Vec::new(),
                "endpoint.rollout" => crate::endpoints::types::rollout_end(now, &baseline, &candidate),
                _ => proposed.clone(),
            }
        }
    };
    let (what, title) = match kind.as_str() {
        "endpoint.create" => ("Request a new endpoint", "Create endpoint"),
        "endpoint.update" => ("Request a change of variants", "Change variants"),
        "endpoint.delete" => ("Request deleting an endpoint", "Delete endpoint"),
        "endpoint.rollout" => ("Request a rollout", "Start a rollout"),
        "endpoint.bandit" => ("Request bandit allocation", "Let the bandit set the weights"),
        _ => ("Request new weights", "Change weights"),
    };
    let bandit = (kind == "endpoint.bandit").then(|| {
        format!(
            "After: the weights follow Thompson sampling on `{}`, every {} s, each variant between {} % and {} %.",
            field("metric"),
            field("interval_seconds"),
            field("min_percent"),
            field("max_percent")
        )
    });
    // a rollout's and a bandit's fields go under their own names
    let prefix = match kind.as_str() {
        "endpoint.rollout" => Some("rollout"),
        "endpoint.bandit" => Some("bandit"),
        _ => None,
    };
    let hidden: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "team" | "title" | "justification"))
        .map(|(k, v)| match prefix {
            Some(p) if !matches!(k.as_str(), "kind" | "endpoint") => (format!("{p}[{k}]"), v.clone()),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    // the messages of fields this page does not show (they come from the endpoint page)
    let messages = move || match err.get() {
        Some(crate::kernel::error::AppError::Validation(list)) => list
            .into_iter()
            .filter(|f| f.field != "title" && f.field != "justification")
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect(),
        _ => Vec::new(),
    };
    view! {
        <PageHeader title=what subtitle="The team's approval policy covers this change: it is made once the team's reviewers approve, exactly once. If the endpoint changes meanwhile, the request goes stale."/>
        <section class="card" id="proposed-split">
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || current.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(_) if bandit.is_some() => view! { <p id="bandit-after">{bandit.clone()}</p> }.into_any(),
                    Ok(now) => {
                        let now: Vec<(String, f64)> = now.map(|e| e.variants.iter().map(|v| (v.name.clone(), v.weight)).collect()).unwrap_or_default();
                        let after = after(&now);
                        let mut names: Vec<String> = now.iter().map(|(n, _)| n.clone()).collect();
                        for (n, _) in &after {
                            if !names.contains(n) {
                                names.push(n.clone());
                            }
                        }
                        let side = |list: &[(String, f64)]| crate::endpoints::types::shares(
                            &names.iter().map(|n| list.iter().find(|(m, _)| m == n).map_or(0.0, |(_, w)| *w)).collect::<Vec<_>>());
                        let (before, later) = (side(&now), side(&after));
                        view! {
                            {endpoint.is_some().then(|| view! {
                                <p class="muted">"Traffic split now"</p>
                                <div data-side="before"><SplitBar names=names.clone() shares=before/></div>
                            })}
                            <p class="muted">{if after.is_empty() { "After: no traffic (deleted)" } else { "After the change" }}</p>
                            <div data-side="after"><SplitBar names=names.clone() shares=later/></div>
                        }.into_any()
                    }
                })}
            </Suspense>
        </section>
        <section class="card">
            <Form action=open attr:class="stack" attr:id="request-form">
                <FormError error=err/>
                {move || {
                    let list: Vec<String> = messages();
                    (!list.is_empty()).then(|| view! {
                        <ul class="form-error" role="alert">{list.into_iter().map(|m| view! { <li>{m}</li> }).collect_view()}</ul>
                    })
                }}
                <input type="hidden" name="team" value=team/>
                {hidden.into_iter().map(|(k, v)| view! { <input type="hidden" name=k value=v/> }).collect_view()}
                <label>"Title" <input name="title" required maxlength="200" value=title/></label>
                <FieldMessage error=err field="title"/>
                <label>"Why" <textarea name="justification" rows="3"></textarea></label>
                <button type="submit" disabled=move || open.pending().get()>"Open request"</button>
            </Form>
        </section>
    }
}

/// Proposes moving a protected alias (`?model=<id>&alias=<name>`).
#[component]
fn AliasMoveRequest() -> impl IntoView {
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
