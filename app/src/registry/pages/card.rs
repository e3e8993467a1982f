//! A version's model card: the card as rendered by the server, its
//! signature as a table, and for members an editor with a live preview and
//! the template to start from.

use crate::kernel::form::{Form, FormAction};
use crate::kernel::widgets::{ErrorBox, FieldMessage, FormError, Time};
use crate::registry::rpc::{SaveCard, get_card, preview_card};
use crate::registry::types::{CARD_TEMPLATE, ModelCard, Signature};
use leptos::prelude::*;
use uuid::Uuid;

#[component]
pub fn CardSection(id: Uuid, #[prop(into)] can_edit: Signal<bool>) -> impl IntoView {
    let save = FormAction::<SaveCard>::new();
    let card = Resource::new(move || save.version().get(), move |_| get_card(id));
    view! {
        <section class="card" id="card-section">
            <h2>"Model card"</h2>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || card.get().map(|res| match res {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(c) => view! { <Card card=c id save can_edit/> }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn Card(card: ModelCard, id: Uuid, save: FormAction<SaveCard>, can_edit: Signal<bool>) -> impl IntoView {
    let empty = card.markdown.trim().is_empty();
    let signature_json = card.signature.as_ref().and_then(|s| serde_json::to_string_pretty(s).ok()).unwrap_or_default();
    let (markdown, html) = (card.markdown.clone(), card.html.clone());
    view! {
        {if empty {
            view! { <p class="empty">"No model card yet. Members write one below: start from the template (intended use, limitations, evaluation, ethical considerations)."</p> }.into_any()
        } else {
            view! { <div class="markdown" id="model-card" inner_html=card.html.clone()></div> }.into_any()
        }}
        {card.updated_at.map(|at| view! { <p class="muted">"Last edited "<Time at/>{card.updated_by.clone().map(|u| format!(" by {u}"))}</p> })}
        {card.signature.clone().map(|s| view! { <SignatureTable signature=s/> })}
        {move || can_edit.get().then(|| view! {
            <CardEditor id save markdown=markdown.clone() html=html.clone() signature_json=signature_json.clone() open=empty/>
        })}
    }
}

/// The card's editor: markdown with a live preview rendered by the server,
/// the template to start from, and the signature as JSON.
#[component]
fn CardEditor(
    id: Uuid,
    save: FormAction<SaveCard>,
    markdown: String,
    html: String,
    signature_json: String,
    open: bool,
) -> impl IntoView {
    let err = save.error();
    let draft = RwSignal::new(markdown.clone());
    let preview = Action::new(|markdown: &String| preview_card(markdown.clone()));
    let preview_html = move || match preview.value().get() {
        Some(Ok(rendered)) => rendered,
        _ => html.clone(),
    };
    view! {
        <details class="card-editor" open=open>
            <summary>"Edit the card"</summary>
            <Form action=save attr:class="stack" attr:id="card-form">
                <FormError error=err/>
                <input type="hidden" name="id" value=id.to_string()/>
                <div class="grid-2">
                    <label>"Markdown"
                        <textarea name="markdown" rows="18" class="mono"
                            prop:value=move || draft.get()
                            on:input=move |ev| {
                                let text = event_target_value(&ev);
                                draft.set(text.clone());
                                preview.dispatch(text);
                            }>{markdown}</textarea>
                    </label>
                    <div>
                        <span class="muted">"Preview"</span>
                        <div class="markdown preview" id="card-preview" inner_html=preview_html></div>
                    </div>
                </div>
                <FieldMessage error=err field="markdown"/>
                <button type="button" class="secondary small" id="card-template"
                    on:click=move |_| {
                        let text = CARD_TEMPLATE.to_owned();
                        draft.set(text.clone());
                        preview.dispatch(text);
                    }>"Use the template"</button>
                <label>"Signature (JSON, optional)"
                    <textarea name="signature" rows="6" class="mono"
                        placeholder=r#"{"inputs": [{"name": "tenure", "type": "double"}], "outputs": [{"name": "churn", "type": "double"}]}"#>{signature_json}</textarea>
                </label>
                <FieldMessage error=err field="signature"/>
                <button type="submit" disabled=move || save.pending().get()>"Save card"</button>
            </Form>
        </details>
    }
}

#[component]
fn SignatureTable(signature: Signature) -> impl IntoView {
    let rows = |side: &'static str, fields: Vec<crate::registry::types::SignatureField>| {
        fields
            .into_iter()
            .map(move |f| {
                view! {
                    <tr><td>{side}</td><td class="mono">{f.name}</td><td class="mono">{f.kind}</td>
                    <td>{if f.optional { "optional" } else { "required" }}</td></tr>
                }
            })
            .collect_view()
    };
    view! {
        <h3>"Signature"</h3>
        <table class="data" id="signature">
            <thead><tr><th></th><th>"Column"</th><th>"Type"</th><th></th></tr></thead>
            <tbody>{rows("input", signature.inputs)}{rows("output", signature.outputs)}</tbody>
        </table>
    }
}
