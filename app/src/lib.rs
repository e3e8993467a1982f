//! Capstan's web application: pages, components and server functions, with
//! the domain logic (queries, validation, authorization, audit) in modules
//! built for the server only, which the REST API in `server` calls as well.
//!
//! [`kernel`] holds what every capability shares and imports none of them.
//! Each capability has a folder with the same file roles: `types` (wire types
//! shared by server and browser), `rpc` (server functions), `pages`
//! (components) and, on the server only, its domain files (SQL, rules,
//! audit). Capabilities build on each other in one direction:
//! [`accounts`] < [`teams`] < [`tokens`] < [`audit`] < [`datasets`] <
//! [`training`] < [`registry`], and [`layout`] frames the pages. `ARCHITECTURE.md` has the
//! rules; `scripts/check-imports.sh` enforces them.
#![recursion_limit = "256"]

pub mod kernel;

pub mod accounts;
pub mod approvals;
pub mod audit;
pub mod budgets;
pub mod datasets;
pub mod endpoints;
pub mod layout;
pub mod registry;
pub mod teams;
pub mod tokens;
pub mod training;
pub mod webhooks;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{SsrMode, path};

/// The stylesheet's URL: content-hashed when the site was built by
/// `scripts/build.sh` (the names are in the same hash file leptos reads for
/// the bundle), plain otherwise.
fn stylesheet_href(options: &LeptosOptions) -> String {
    static HREF: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HREF.get_or_init(|| {
        let hash =
            options.hash_files.then(|| std::fs::read_to_string(options.hash_file.as_ref()).ok()).flatten().and_then(
                |text| {
                    text.lines().find_map(|l| {
                        l.split_once(':').filter(|(k, _)| k.trim() == "css").map(|(_, h)| h.trim().to_owned())
                    })
                },
            );
        match hash {
            Some(h) => format!("/{}/{}.{h}.css", options.site_pkg_dir, options.output_name),
            None => format!("/{}/{}.css", options.site_pkg_dir, options.output_name),
        }
    })
    .clone()
}

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let css = stylesheet_href(&options);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="stylesheet" id="leptos" href=css/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// A training job's page; a completed job offers to become a model version.
#[component]
fn JobRoute() -> impl IntoView {
    fn register(team: String, job: uuid::Uuid, name: String) -> AnyView {
        view! { <registry::pages::register::RegisterJob team job suggested=name/> }.into_any()
    }
    view! { <training::pages::job::JobPage on_completed=register/> }
}

/// The teams page, offering the demo while the caller has no team.
#[component]
fn HomePage() -> impl IntoView {
    view! { <teams::pages::TeamsPage first_steps=|| view! { <training::pages::demo::DemoButton/> }/> }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title formatter=|t: String| if t.is_empty() { "Capstan".to_owned() } else { format!("{t} · Capstan") }/>
        <Router>
            <Routes fallback=layout::pages::NotFound>
                <Route path=path!("/login") view=accounts::pages::LoginPage ssr=SsrMode::Async/>
                <Route path=path!("/setup") view=accounts::pages::SetupPage ssr=SsrMode::Async/>
                <ParentRoute path=path!("") view=layout::pages::Layout ssr=SsrMode::Async>
                    <Route path=path!("") view=HomePage ssr=SsrMode::Async/>
                    <Route path=path!("/teams") view=HomePage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team") view=teams::pages::MembersPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/datasets") view=datasets::pages::DatasetsPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/datasets/:id") view=datasets::pages::DatasetPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/versions/:vid") view=datasets::pages::VersionPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/training") view=training::pages::list::TrainingListPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/training/new") view=training::pages::launch::LaunchPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/training/:id") view=JobRoute ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/models") view=registry::pages::models::ModelsPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/endpoints") view=endpoints::pages::EndpointsPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/endpoints/new") view=endpoints::pages::NewEndpointPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/endpoints/:id") view=endpoints::pages::EndpointPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/budget") view=budgets::pages::BudgetPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/reviews") view=approvals::pages::ReviewsPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/webhooks") view=webhooks::pages::WebhooksPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/webhooks/:id") view=webhooks::pages::WebhookPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/reviews/new") view=approvals::pages::NewRequestPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/change-requests/:id") view=approvals::pages::RequestPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/sagemaker/import") view=registry::pages::import::ImportPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/models/:id") view=registry::pages::model::ModelPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/models/:id/aliases/:alias") view=registry::pages::alias::AliasPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/model-versions") view=registry::pages::search::VersionSearchPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/model-versions/:id") view=registry::pages::version::VersionPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/compare") view=registry::pages::compare::ComparePage ssr=SsrMode::Async/>
                    <Route path=path!("/tokens") view=tokens::pages::TokensPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/prices") view=training::pages::prices::PricesPage ssr=SsrMode::Async/>
                    <Route path=path!("/audit") view=audit::pages::AuditPage ssr=SsrMode::Async/>
                    <Route path=path!("/account") view=accounts::pages::AccountPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/users") view=accounts::pages::UsersPage ssr=SsrMode::Async/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}
