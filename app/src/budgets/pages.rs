//! The team's budget page: where the month stands; admins set the budget.
//! (The banner on a team's pages is the layout's, from `rpc::get_budget`.)

use crate::budgets::rpc::{RemoveBudget, SetBudgetForm, get_budget};
use crate::kernel::form::{Form, FormAction};
use crate::kernel::widgets::{ErrorBox, FieldMessage, FormError, PageHeader, Time};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

#[component]
pub fn BudgetPage() -> impl IntoView {
    let params = use_params_map();
    let team = move || params.with(|p| p.get("team").unwrap_or_default());
    let set = FormAction::<SetBudgetForm>::new();
    let remove = FormAction::<RemoveBudget>::new();
    let err = set.error();
    let remove_err = remove.error();
    let status =
        Resource::new(move || (team(), set.version().get(), remove.version().get()), |(t, _, _)| get_budget(t));
    view! {
        <PageHeader title="Budget" subtitle="A monthly budget over the team's training jobs and endpoints (UTC months): an alert at a percentage of it and at 100 %, as a banner on the team's pages and the webhook event budget.crossed."/>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || status.get().map(|res| match res {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                Ok(s) => {
                    let width = s.percent.unwrap_or(0.0).clamp(0.0, 100.0);
                    let (monthly, percent) = s.budget.as_ref().map_or((String::new(), "80".to_owned()), |b| (format!("{}", b.monthly_usd), b.alert_percent.to_string()));
                    view! {
                        <section class="card" id="budget-status">
                            <p>{s.summary()}</p>
                            {s.budget.is_some().then(|| view! {
                                <svg class="split" viewBox="0 0 100 4" preserveAspectRatio="none" role="img" aria-label="Spent of the budget">
                                    <rect x="0" y="0" width="100" height="4" fill="#e3e7ee"/>
                                    <rect x="0" y="0" width=format!("{width:.2}") height="4" fill=if s.level.is_some() { "#b03a48" } else { "#3a9d5d" }/>
                                </svg>
                            })}
                            {s.budget.as_ref().map(|b| view! {
                                <p class="muted">{format!("Alert at {} %; set by {} ", b.alert_percent, b.updated_by)}<Time at=b.updated_at/></p>
                            })}
                            {s.budget.is_none().then(|| view! { <p class="empty">"No budget yet: team admins set one below."</p> })}
                        </section>
                        <section class="card">
                            <h2>"Set the budget"</h2>
                            <Form action=set attr:class="stack" attr:id="set-budget">
                                <FormError error=err/>
                                <input type="hidden" name="team" value=team/>
                                <label>"USD per month" <input name="monthly_usd" type="number" min="0" step="any" required value=monthly/></label>
                                <FieldMessage error=err field="monthly_usd"/>
                                <label>"Alert at (% of the budget)" <input name="alert_percent" type="number" min="1" max="100" value=percent/></label>
                                <FieldMessage error=err field="alert_percent"/>
                                <button type="submit" disabled=move || set.pending().get()>"Save budget"</button>
                            </Form>
                            {s.budget.is_some().then(|| view! {
                                <Form action=remove attr:class="inline">
                                    <input type="hidden" name="team" value=team/>
                                    <button type="submit" class="secondary">"Remove the budget"</button>
                                </Form>
                            })}
                            <FormError error=remove_err/>
                        </section>
                    }.into_any()
                }
            })}
        </Transition>
    }
}
