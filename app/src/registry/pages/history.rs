//! A registry target's change history (an alias, a model version), read
//! from the audit log: when, what, who, and the change request with its
//! author and approvers.

use crate::kernel::widgets::Time;
use crate::registry::types::TargetChange;
use leptos::prelude::*;

/// The changes, newest first; `team` builds the requests' links.
#[component]
pub fn ChangeHistory(team: String, changes: Vec<TargetChange>) -> impl IntoView {
    if changes.is_empty() {
        return view! { <p class="empty">"No changes recorded yet."</p> }.into_any();
    }
    view! {
        <div class="table-wrap"><table class="data" id="changes">
            <thead><tr><th>"Applied"</th><th>"Change"</th><th>"By"</th><th>"Change request"</th></tr></thead>
            <tbody>
            {changes.into_iter().map(|c| {
                let request = c.request.map(|r| {
                    let approved = if r.approvers.is_empty() { "no approvals".to_owned() } else { r.approvers.join(", ") };
                    view! {
                        <a href=format!("/teams/{team}/change-requests/{}", r.id)>{r.title}</a>
                        <div class="muted small">"asked by "<span class="author">{r.author}</span>", approved by "<span class="approvers">{approved}</span></div>
                    }
                });
                let direct = request.is_none();
                view! {
                    <tr data-action=c.action>
                        <td><Time at=c.at/></td>
                        <td class="what"><span class="change">{c.what}</span>{c.reason.filter(|_| direct).map(|r| view! { <div class="muted small">{r}</div> })}</td>
                        <td class="by">{c.by}</td>
                        <td class="request">{request.map(|v| v.into_any()).unwrap_or_else(|| view! { <span class="muted">"direct"</span> }.into_any())}</td>
                    </tr>
                }
            }).collect_view()}
            </tbody>
        </table></div>
    }
    .into_any()
}
