//! Capstan's web application: pages, components and server functions, with
//! the domain logic (queries, validation, authorization) in `ssr` modules
//! that the REST API in `server` calls as well.
//!
//! Tour: [`roles`] holds the one authorization rule, [`state`] the request
//! context, [`audit`] the hash-chained log, then one module per noun:
//! [`accounts`], [`users`], [`teams`], [`tokens`].
#![recursion_limit = "256"]

pub mod accounts;
pub mod audit;
pub mod dataset_pages;
pub mod datasets;
pub mod demo;
pub mod error;
pub mod page;
pub mod preview;
pub mod prices;
pub mod roles;
#[cfg(feature = "ssr")]
pub mod state;
pub mod teams;
pub mod tokens;
pub mod training;
#[cfg(feature = "ssr")]
pub mod training_engine;
pub mod training_pages;
pub mod ui;
pub mod upload;
pub mod uploader;
pub mod users;
pub mod validate;
pub mod versions;

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

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title formatter=|t: String| if t.is_empty() { "Capstan".to_owned() } else { format!("{t} · Capstan") }/>
        <Router>
            <Routes fallback=ui::NotFound>
                <Route path=path!("/login") view=accounts::LoginPage ssr=SsrMode::Async/>
                <Route path=path!("/setup") view=accounts::SetupPage ssr=SsrMode::Async/>
                <ParentRoute path=path!("") view=ui::Layout ssr=SsrMode::Async>
                    <Route path=path!("") view=teams::TeamsPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams") view=teams::TeamsPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team") view=teams::MembersPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/datasets") view=datasets::DatasetsPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/datasets/:id") view=dataset_pages::DatasetPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/versions/:vid") view=dataset_pages::VersionPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/training") view=training_pages::TrainingListPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/training/new") view=training_pages::LaunchPage ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/training/:id") view=training_pages::JobPage ssr=SsrMode::Async/>
                    <Route path=path!("/tokens") view=tokens::TokensPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/prices") view=prices::PricesPage ssr=SsrMode::Async/>
                    <Route path=path!("/audit") view=audit::AuditPage ssr=SsrMode::Async/>
                    <Route path=path!("/account") view=accounts::AccountPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/users") view=users::UsersPage ssr=SsrMode::Async/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}
