//! Shared UI pieces: the page layout with top bar and navigation, form
//! error display, times, confirmation and copy buttons.

use crate::accounts::{Logout, Me, get_me};
use crate::error::AppError;
use leptos::prelude::*;
use leptos_router::components::{Outlet, Redirect};
use leptos_router::hooks::use_location;

/// The signed-in user, provided to every page inside the layout.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Option<Me>);

/// The team named by the current URL (`/teams/<slug>...`), if any.
fn current_team(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/teams/")?;
    let slug = rest.split('/').next()?;
    (!slug.is_empty()).then(|| slug.to_owned())
}

/// Whether the navigation link `href` names the page at `path`. "Teams" is
/// the team list only: a team's own pages light up Members or Datasets.
fn nav_active(href: &str, path: &str) -> bool {
    match href {
        "/teams" => path == "/teams" || path == "/",
        _ => path == href || path.starts_with(&format!("{href}/")),
    }
}

/// Layout for signed-in pages: top bar, navigation, and the page. Anonymous
/// visitors are sent to the sign-in page.
#[component]
pub fn Layout() -> impl IntoView {
    let location = use_location();
    // Re-checked on every navigation so sign-in and sign-out take effect at once.
    let me = Resource::new(move || location.pathname.get(), |_| get_me());
    view! {
        <Transition fallback=|| view! { <div class="boot">"Loading…"</div> }>
            {move || me.get().map(|res| match res {
                Ok(Some(user)) => {
                    provide_context(CurrentUser(Some(user.clone())));
                    view! {
                        <TopBar user=user/>
                        <main class="content"><Outlet/></main>
                    }.into_any()
                }
                Ok(None) => view! { <Redirect path="/login"/> }.into_any(),
                Err(e) => view! { <main class="content"><ErrorBox error=e/></main> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn TopBar(user: Me) -> impl IntoView {
    let location = use_location();
    let team = move || current_team(&location.pathname.get());
    let teams = Resource::new(|| (), |_| crate::teams::list_teams(None, Some(200)));
    let logout = ServerAction::<Logout>::new();
    let link = move |href: &'static str, label: &'static str| {
        let active = move || nav_active(href, &location.pathname.get());
        view! { <a href=href class:active=active>{label}</a> }
    };
    view! {
        <header class="topbar">
            <a href="/" class="brand">"⚓ Capstan"</a>
            <details class="menu team-switcher">
                <summary>{move || team().unwrap_or_else(|| "Select team".into())}" ▾"</summary>
                <div class="menu-body">
                    <Suspense fallback=|| ()>
                        {move || teams.get().and_then(Result::ok).map(|page| page.items.into_iter().map(|t| view! {
                            <a href=format!("/teams/{}", t.slug)>{t.name}" "<span class="muted">{t.slug.clone()}</span></a>
                        }).collect_view())}
                    </Suspense>
                    <a href="/teams" class="muted">"All teams…"</a>
                </div>
            </details>
            <nav class="mainnav">
                {link("/teams", "Teams")}
                {move || team().map(|slug| {
                    let path = location.pathname.get();
                    let members = format!("/teams/{slug}");
                    let datasets = format!("/teams/{slug}/datasets");
                    let training = format!("/teams/{slug}/training");
                    let on_datasets = path.starts_with(&datasets) || path.starts_with(&format!("/teams/{slug}/versions/"));
                    let on_training = path.starts_with(&training);
                    view! {
                        <a href=datasets class:active=on_datasets>"Datasets"</a>
                        <a href=training class:active=on_training>"Training"</a>
                        <a href=members class:active=!on_datasets && !on_training>"Members"</a>
                    }
                })}
                {link("/tokens", "API tokens")}
                {move || {
                    let href = team().map(|s| format!("/audit?team={s}")).unwrap_or_else(|| "/audit".into());
                    let active = move || location.pathname.get().starts_with("/audit");
                    view! { <a href=href class:active=active>"Audit"</a> }
                }}
                {user.is_site_admin.then(|| link("/admin/users", "Users"))}
                {user.is_site_admin.then(|| link("/admin/prices", "Prices"))}
                <a href="/api/docs" rel="external">"API"</a>
            </nav>
            <details class="menu user-menu">
                <summary>{user.display_name.clone()}" ▾"</summary>
                <div class="menu-body">
                    <span class="muted">{user.email.clone()}</span>
                    {user.is_site_admin.then(|| view! { <span class="pill">"site admin"</span> })}
                    {link("/account", "Account")}
                    <ActionForm action=logout>
                        <button type="submit" class="link">"Sign out"</button>
                    </ActionForm>
                </div>
            </details>
        </header>
    }
}

/// "1 line", "3 lines": a count with its noun in the right number.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[component]
pub fn PageHeader(#[prop(into)] title: String, #[prop(into, optional)] subtitle: String) -> impl IntoView {
    view! {
        <div class="page-header">
            <h1>{title}</h1>
            {(!subtitle.is_empty()).then(|| view! { <p class="muted">{subtitle}</p> })}
        </div>
    }
}

/// The top-line message of a failed form submission.
#[component]
pub fn FormError(#[prop(into)] error: Signal<Option<AppError>>) -> impl IntoView {
    view! {
        {move || error.get().map(|e| view! { <div class="form-error" role="alert">{e.to_string()}</div> })}
    }
}

/// The message for one field, shown under its input.
#[component]
pub fn FieldMessage(#[prop(into)] error: Signal<Option<AppError>>, field: &'static str) -> impl IntoView {
    view! {
        {move || error.get().and_then(|e| e.field_message(field)).map(|m| view! {
            <p class="field-error" data-field=field>{m}</p>
        })}
    }
}

#[component]
pub fn ErrorBox(error: AppError) -> impl IntoView {
    let class = if matches!(error, AppError::NotFound(_)) { "notice" } else { "form-error" };
    view! { <div class=class role="alert">{error.to_string()}</div> }
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

#[cfg(test)]
mod tests {
    #[test]
    fn nav_highlights_one_area() {
        assert!(super::nav_active("/teams", "/teams"));
        assert!(super::nav_active("/teams", "/"));
        assert!(!super::nav_active("/teams", "/teams/vision/datasets"));
        assert!(super::nav_active("/tokens", "/tokens"));
        assert!(!super::nav_active("/tokens", "/tokensmith"));
        assert!(super::nav_active("/admin/users", "/admin/users"));
    }

    #[test]
    fn team_from_path() {
        assert_eq!(super::current_team("/teams/vision"), Some("vision".into()));
        assert_eq!(super::current_team("/teams/vision/datasets"), Some("vision".into()));
        assert_eq!(super::current_team("/teams"), None);
        assert_eq!(super::current_team("/teams/"), None);
        assert_eq!(super::current_team("/audit"), None);
    }
}
