//! The Run the demo button of the empty home page.

use crate::training::rpc::CreateDemo;
use leptos::prelude::*;

/// "Run the demo": creates the demo and opens its training job.
#[component]
pub fn DemoButton() -> impl IntoView {
    let demo = ServerAction::<CreateDemo>::new();
    let err = Signal::derive(move || demo.value().get().and_then(Result::err));
    let navigate = leptos_router::hooks::use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(job)) = demo.value().get() {
            navigate(&format!("/teams/{}/training/{}", job.team, job.id), Default::default());
        }
    });
    view! {
        <crate::kernel::widgets::FormError error=err/>
        <ActionForm action=demo attr:class="inline" attr:id="demo-form">
            <button type="submit" disabled=move || demo.pending().get()>
                {move || if demo.pending().get() { "Setting up the demo…" } else { "Run the demo" }}
            </button>
        </ActionForm>
    }
}
