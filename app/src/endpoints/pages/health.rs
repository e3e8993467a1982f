//! An endpoint's health card: the score with its parts and figures, the
//! score over the last day against the threshold, and its settings (the
//! latency SLO, the threshold, whether to roll back the last rollout).

use crate::endpoints::rpc::{SetHealthForm, get_health};
use crate::endpoints::types::Health;
use crate::kernel::chart::{ChartLine, LineChart};
use crate::kernel::form::{Form, FormAction};
use crate::kernel::widgets::{ErrorBox, FieldMessage, FormError, use_refresh};
use leptos::prelude::*;
use uuid::Uuid;

#[component]
pub fn HealthCard(endpoint: Uuid) -> impl IntoView {
    let save = FormAction::<SetHealthForm>::new();
    let tick = use_refresh(RwSignal::new(true));
    let health = Resource::new(move || (save.version().get(), tick.get() / 30), move |_| get_health(endpoint));
    // what the settings form starts from: only after a change made here
    let settings = Resource::new(move || save.version().get(), move |_| get_health(endpoint));
    view! {
        <section class="card" id="health">
            <h2>"Health"</h2>
            <Transition fallback=|| ()>
                {move || health.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(h) => view! { <Score health=h/> }.into_any(),
                })}
            </Transition>
            <Transition fallback=|| ()>
                {move || settings.get().and_then(Result::ok).map(|h| view! { <Settings health=h endpoint=endpoint action=save/> })}
            </Transition>
        </section>
    }
}

#[component]
fn Score(health: Health) -> impl IntoView {
    let h = health;
    let (class, words) = match (h.score, h.below) {
        (None, _) => ("pill", "not judged yet".to_owned()),
        (Some(s), true) => ("pill danger", format!("{s:.1} / 100: below {}", h.settings.threshold)),
        (Some(s), false) => ("pill ok", format!("{s:.1} / 100")),
    };
    let history = (h.history.len() > 1).then(|| {
        let lines = vec![
            ChartLine { label: "score".into(), values: h.history.iter().map(|p| p.score.unwrap_or(0.0)).collect() },
            ChartLine { label: "threshold".into(), values: vec![f64::from(h.settings.threshold); h.history.len()] },
        ];
        view! { <LineChart name="health score, last day (by minute)" lines=lines/> }
    });
    view! {
        <p><span class=class id="health-score" data-below=h.below.to_string()>{words}</span>
            <span class="muted">{format!(" over the last {} minutes", h.window_minutes)}</span></p>
        <table id="health-parts">
            <thead><tr><th>"Part"</th><th class="num">"Weight"</th><th class="num">"Score"</th><th>"Figures"</th></tr></thead>
            <tbody>
                {h.parts.into_iter().map(|p| view! {
                    <tr data-part=p.name.clone()>
                        <td>{p.name.clone()}</td>
                        <td class="num">{p.weight}</td>
                        <td class="num">{p.score.map_or_else(|| "—".to_owned(), |s| format!("{s:.0}"))}</td>
                        <td class="muted">{p.text}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        {history}
    }
}

#[component]
fn Settings(health: Health, endpoint: Uuid, action: FormAction<SetHealthForm>) -> impl IntoView {
    let err = action.error();
    let s = health.settings;
    view! {
        <Form action=action>
            <input type="hidden" name="id" value=endpoint.to_string()/>
            <div class="grid-2">
                <label>"Latency SLO, p99 (ms)" <input name="latency_slo_ms" type="number" min="1" value=s.latency_slo_ms.to_string()/>
                    <FieldMessage error=err field="latency_slo_ms"/></label>
                <label>"Alert below" <input name="threshold" type="number" min="1" max="100" value=s.threshold.to_string()/>
                    <FieldMessage error=err field="threshold"/></label>
                <label class="check"><input type="checkbox" name="auto_rollback" value="on" checked=s.auto_rollback/>
                    " Below it, roll back the last rollout"</label>
            </div>
            <FormError error=err/>
            <button type="submit" class="secondary" id="health-save">"Save"</button>
        </Form>
    }
}
