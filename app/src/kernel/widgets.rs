//! Shared UI pieces: page headers, form and field errors, times,
//! confirmation and copy buttons, live refresh.

use crate::kernel::error::AppError;
use leptos::prelude::*;

#[component]
pub fn PageHeader(#[prop(into)] title: String, #[prop(into, optional)] subtitle: String) -> impl IntoView {
    view! {
        <div class="page-header">
            <h1>{title}</h1>
            {(!subtitle.is_empty()).then(|| view! { <p class="muted">{subtitle}</p> })}
        </div>
    }
}

/// The top-line message of a failed form submission. Errors that name a
/// field are shown under that field only, so they are not repeated here.
#[component]
pub fn FormError(#[prop(into)] error: Signal<Option<AppError>>) -> impl IntoView {
    view! {
        {move || error.get().filter(|e| !e.names_fields()).map(|e| view! { <div class="form-error" role="alert">{e.to_string()}</div> })}
    }
}

/// The message for one field, shown under its input.
#[component]
pub fn FieldMessage(#[prop(into)] error: Signal<Option<AppError>>, #[prop(into)] field: String) -> impl IntoView {
    view! {
        {move || error.get().and_then(|e| e.field_message(&field)).map(|m| view! {
            <p class="field-error" data-field=field.clone()>{m}</p>
        })}
    }
}

#[component]
pub fn ErrorBox(error: AppError) -> impl IntoView {
    let class = if matches!(error, AppError::NotFound(_)) { "notice" } else { "form-error" };
    // a bad query parameter names the parameter and what to enter instead
    let fields = match &error {
        AppError::InvalidQuery(f) | AppError::Validation(f) => f.clone(),
        _ => Vec::new(),
    };
    view! {
        <div class=class role="alert">{error.to_string()}
            {(!fields.is_empty()).then(|| view! {
                <ul class="field-list">{fields.into_iter().map(|f| view! { <li><strong>{f.field}</strong>": "{f.message}</li> }).collect_view()}</ul>
            })}
        </div>
    }
}

/// A timestamp rendered the same on server and client (UTC, minutes).
#[component]
pub fn Time(at: time::OffsetDateTime) -> impl IntoView {
    let iso = at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    let text = at.to_offset(time::UtcOffset::UTC).format(&fmt).unwrap_or_default();
    view! { <time datetime=iso.clone() title=iso>{text}</time> }
}

/// A submit button that asks before doing something destructive.
#[component]
pub fn ConfirmButton(label: &'static str, question: String) -> impl IntoView {
    let on_click = move |ev: leptos::ev::MouseEvent| {
        #[cfg(feature = "hydrate")]
        {
            let ok = window().confirm_with_message(&question).unwrap_or(false);
            if !ok {
                ev.prevent_default();
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (&ev, &question);
    };
    view! { <button type="submit" class="small danger" on:click=on_click>{label}</button> }
}

/// Copies `text` to the clipboard.
#[component]
pub fn CopyButton(text: String) -> impl IntoView {
    let copied = RwSignal::new(false);
    let on_click = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let _ = window().navigator().clipboard().write_text(&text);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &text;
        copied.set(true);
    };
    view! {
        <button type="button" class="small secondary" on:click=on_click>
            {move || if copied.get() { "Copied" } else { "Copy" }}
        </button>
    }
}

/// A counter that ticks every second while `active` holds (in the browser
/// only); resources keyed on it refetch, so in-progress work shows live.
pub fn use_refresh(active: RwSignal<bool>) -> RwSignal<u32> {
    let tick = RwSignal::new(0_u32);
    #[cfg(feature = "hydrate")]
    {
        let every = std::time::Duration::from_secs(1);
        let bump = move || {
            if active.get_untracked() {
                tick.update(|t| *t += 1);
            }
        };
        if let Ok(handle) = leptos::leptos_dom::helpers::set_interval_with_handle(bump, every) {
            on_cleanup(move || handle.clear());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = active;
    tick
}
