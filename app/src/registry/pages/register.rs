//! "Register as model version" on a completed training job's page.

use crate::kernel::form::{Form, FormAction};
use crate::kernel::widgets::{FieldMessage, FormError};
use crate::registry::rpc::RegisterJob;
use leptos::prelude::*;
use uuid::Uuid;

/// "Register as model version": on a completed job's page, registers the job
/// as the next version of the named model (created if new).
#[component]
pub fn RegisterJob(team: String, job: Uuid, suggested: String) -> impl IntoView {
    let register = FormAction::<RegisterJob>::new();
    let err = register.error();
    let done = move || register.value().get().and_then(Result::ok);
    view! {
        <section class="card" id="register-job">
            <h2>"Register as model version"</h2>
            {move || done().map(|v| view! {
                <p class="notice" role="status">
                    {format!("Registered as version {} of ", v.number)}
                    <a href=format!("/teams/{}/models/{}", v.team, v.model_id)>{v.model.clone()}</a>"."
                </p>
            })}
            <Form action=register attr:class="inline">
                <FormError error=err/>
                <input type="hidden" name="team" value=team/>
                <input type="hidden" name="job" value=job.to_string()/>
                <label>"Model " <input name="model" value=suggested required/></label>
                <FieldMessage error=err field="model"/>
                <FieldMessage error=err field="training_job_id"/>
                <button type="submit" disabled=move || register.pending().get()>"Register"</button>
            </Form>
        </section>
    }
}
