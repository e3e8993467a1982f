//! Shared UI pieces: the page layout with top bar and navigation, form
//! error display, times, confirmation and copy buttons.

use crate::accounts::{Logout, Me, get_me};
use crate::error::AppError;
use leptos::prelude::*;
use leptos_router::components::{Outlet, Redirect};
use leptos_router::hooks::use_location;

/// The signed-in user (`None` for visitors), as a load every page inside the
/// layout can read (inside a `Suspense`).
#[derive(Debug, Clone, Copy)]
pub struct CurrentUser(pub Resource<Result<Option<Me>, AppError>>);

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
    // Re-checked on every navigation in the browser, so sign-in and sign-out
    // take effect at once. On the server a page is rendered once: a reload of
    // the user there would build the whole page (and all its loads) again.
    let me = Resource::new(
        move || if cfg!(feature = "hydrate") { location.pathname.get() } else { String::new() },
        |_| get_me(),
    );
    provide_context(CurrentUser(me));
    // The page is built once, beside the top bar rather than inside the
    // user's load: a re-run of that load must not rebuild the page (and
    // start all of its loads again).
    view! {
        <UserBar me visitor=|| view! { <Redirect path="/login"/> }.into_any()/>
        <main class="content"><Outlet/></main>
    }
}

/// The top bar for the signed-in user, or `visitor` for anyone else (an
/// error is shown in the bar's place).
#[component]
fn UserBar(me: Resource<Result<Option<Me>, AppError>>, visitor: fn() -> AnyView) -> impl IntoView {
    // Loaded here, not in the top bar: the bar may be drawn more than once
    // while the page streams, and each drawing must not load anew.
    let teams = Resource::new(|| (), |_| crate::teams::list_teams(None, Some(200)));
    view! {
        <Transition fallback=|| view! { <div class="boot">"Loading…"</div> }>
            {move || Suspend::new(async move {
                // both loads are awaited before the bar is drawn, so the server
                // draws it as the browser will (a list still loading would not match)
                let (me, teams) = (me.await, teams.await);
                let teams = teams.map(|page| page.items).unwrap_or_default();
                match me {
                    Ok(Some(user)) => view! { <TopBar user=user teams=teams/> }.into_any(),
                    Ok(None) => visitor(),
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The page for an address that names nothing, with the navigation of any
/// other page (or a sign-in link for visitors).
#[component]
pub fn NotFound() -> impl IntoView {
    let me = Resource::new(|| (), |_| get_me());
    let visitor = || {
        view! {
            <header class="topbar">
                <a href="/" class="brand">"⚓ Capstan"</a>
                <nav class="mainnav"><a href="/login">"Sign in"</a></nav>
            </header>
        }
        .into_any()
    };
    view! {
        <UserBar me visitor/>
        <main class="content" data-testid="not-found">
            <h1>"Page not found"</h1>
            <p>"Nothing lives at this address. " <a href="/">"Back to your teams"</a></p>
        </main>
    }
}

#[component]
fn TopBar(user: Me, teams: Vec<crate::teams::Team>) -> impl IntoView {
    let location = use_location();
    let team = move || current_team(&location.pathname.get());
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
                    // plain data, no Suspense or load of its own: the bar is drawn when the
                    // user is known, at a moment that varies, and must not take a place in
                    // the page's order of loads and boundaries (the browser hydrates by it)
                    {teams.into_iter().map(|t| view! {
                        <a href=format!("/teams/{}", t.slug)>{t.name}" "<span class="muted">{t.slug.clone()}</span></a>
                    }).collect_view()}
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

/// A form reference that empties its form once `action` succeeds, so the
/// next entry starts fresh (without JavaScript the page reloads empty anyway).
pub fn cleared_on_success<S>(action: ServerAction<S>) -> NodeRef<leptos::html::Form>
where
    S: leptos::server_fn::ServerFn + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
    S::Error: Clone + Send + Sync + 'static,
{
    let form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move |_| {
        if matches!(action.value().get(), Some(Ok(_)))
            && let Some(el) = form.get_untracked()
        {
            el.reset();
        }
    });
    form
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
