//! The frame of signed-in pages: the top bar with the team switcher,
//! navigation and user menu, and the not-found page. Visitors are sent to
//! sign in.

use crate::accounts::rpc::{Logout, get_me};
use crate::accounts::types::CurrentUser;
use crate::accounts::types::Me;
use crate::kernel::error::AppError;
use crate::kernel::form::{Form, FormAction};
use crate::kernel::widgets::ErrorBox;
use leptos::prelude::*;
use leptos_router::components::{Outlet, Redirect};
use leptos_router::hooks::use_location;

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
    let team = Signal::derive(move || current_team(&location.pathname.get()));
    view! {
        <UserBar me visitor=|| view! { <Redirect path="/login"/> }.into_any()/>
        <main class="content"><BudgetBanner team/><Outlet/></main>
    }
}

/// The top bar for the signed-in user, or `visitor` for anyone else (an
/// error is shown in the bar's place).
#[component]
fn UserBar(me: Resource<Result<Option<Me>, AppError>>, visitor: fn() -> AnyView) -> impl IntoView {
    // Loaded here, not in the top bar: the bar may be drawn more than once
    // while the page streams, and each drawing must not load anew.
    let teams = Resource::new(|| (), |_| crate::teams::rpc::list_teams(None, Some(200)));
    let waiting = Resource::new(|| (), |_| crate::approvals::rpc::reviews_waiting());
    view! {
        <Transition fallback=|| view! { <div class="boot">"Loading…"</div> }>
            {move || Suspend::new(async move {
                // both loads are awaited before the bar is drawn, so the server
                // draws it as the browser will (a list still loading would not match)
                let (me, teams, waiting) = (me.await, teams.await, waiting.await);
                let teams = teams.map(|page| page.items).unwrap_or_default();
                let waiting = waiting.unwrap_or_default();
                match me {
                    Ok(Some(user)) => view! { <TopBar user=user teams=teams waiting/> }.into_any(),
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
fn TopBar(user: Me, teams: Vec<crate::teams::types::Team>, waiting: i64) -> impl IntoView {
    let location = use_location();
    let team = move || current_team(&location.pathname.get());
    let logout = FormAction::<Logout>::new();
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
                    let models = format!("/teams/{slug}/models");
                    let on_models = path.starts_with(&models);
                    let endpoints = format!("/teams/{slug}/endpoints");
                    let on_endpoints = path.starts_with(&endpoints);
                    let reviews = format!("/teams/{slug}/reviews");
                    let on_reviews = path.starts_with(&reviews) || path.starts_with(&format!("/teams/{slug}/change-requests/"));
                    view! {
                        <a href=datasets class:active=on_datasets>"Datasets"</a>
                        <a href=training class:active=on_training>"Training"</a>
                        <a href=models class:active=on_models>"Models"</a>
                        <a href=endpoints class:active=on_endpoints>"Endpoints"</a>
                        <a href=reviews class:active=on_reviews id="nav-reviews">
                            "Reviews"
                            {(waiting > 0).then(|| view! { " "<span class="badge" id="reviews-badge" title="Requests waiting for your review">{waiting}</span> })}
                        </a>
                        <a href=members class:active=!on_datasets && !on_training && !on_models && !on_endpoints && !on_reviews>"Members"</a>
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
                    <Form action=logout>
                        <button type="submit" class="link">"Sign out"</button>
                    </Form>
                </div>
            </details>
        </header>
    }
}

/// The banner on team `team`'s pages once the month's spend passes its
/// budget's alert percentage (nothing otherwise, or for who may not see it).
#[component]
fn BudgetBanner(#[prop(into)] team: Signal<Option<String>>) -> impl IntoView {
    let status = Resource::new(
        move || team.get(),
        |team| async move {
            match team {
                Some(t) => crate::budgets::rpc::get_budget(t).await.ok(),
                None => None,
            }
        },
    );
    view! {
        <Transition fallback=|| ()>
            {move || status.get().flatten().and_then(|s| {
                let level = s.level.clone()?;
                let team = team.get()?;
                let headline = if level == "exceeded" { "Over budget" } else { "Near the budget" };
                Some(view! {
                    <div class=if level == "exceeded" { "form-error budget-banner" } else { "notice budget-banner" } role="alert" id="budget-banner" data-level=level.clone()>
                        <strong>{headline}</strong>" · "{s.summary()}" · "<a href=format!("/teams/{team}/budget")>"Budget"</a>
                    </div>
                })
            })}
        </Transition>
    }
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
