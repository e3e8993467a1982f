//! The Run the demo button of the empty home page.

use crate::kernel::form::{Form, FormAction};
use crate::training::rpc::CreateDemo;
use leptos::prelude::*;

/// "Run the demo": creates the demo and opens its training job. When the
/// run created the demo's second user, it first shows that user's
/// password (once) with a link on to the job.
#[component]
pub fn DemoButton() -> impl IntoView {
    let demo = FormAction::<CreateDemo>::new();
    let err = demo.error();
    let navigate = leptos_router::hooks::use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(d)) = demo.value().get()
            && d.reviewer.is_none()
        {
            navigate(&format!("/teams/{}/training/{}", d.job.team, d.job.id), Default::default());
        }
    });
    let reviewer = move || {
        demo.value().get().and_then(Result::ok).and_then(|d| {
            let job = format!("/teams/{}/training/{}", d.job.team, d.job.id);
            d.reviewer.map(|r| view! {
                <div class="notice" id="demo-reviewer">
                    <p>"The demo is running. It also made a second user, an approver of the demo team, so you can try a change request from both sides:"</p>
                    <p>"Email "<code data-testid="reviewer-email">{r.email}</code>" · password "<code data-testid="reviewer-password">{r.password}</code></p>
                    <p class="muted">"Shown only this once: note it now. Sign in as them in a private window. When the jobs are done, the first one's version becomes champion of model churn, protected, and the second one's challenger; endpoint churn serves both (90 % and 10 %). Moving champion takes a change request that they approve."</p>
                    <p><a id="demo-continue" href=job>"Open the demo's training job →"</a></p>
                </div>
            })
        })
    };
    view! {
        <crate::kernel::widgets::FormError error=err/>
        {reviewer}
        <Form action=demo attr:class="inline" attr:id="demo-form">
            <button type="submit" disabled=move || demo.pending().get()>
                {move || if demo.pending().get() { "Setting up the demo…" } else { "Run the demo" }}
            </button>
        </Form>
    }
}
