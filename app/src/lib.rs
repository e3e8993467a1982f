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
//! [`training`] < [`registry`], and [`layout`] frames the pages; [`routes`]
//! makes each page a lazy route (a chunk of the browser bundle of its own).
//! `ARCHITECTURE.md` has the rules; `scripts/check-imports.sh` enforces them.
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
pub mod routes;
pub mod teams;
pub mod tokens;
pub mod training;
pub mod webhooks;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{Lazy, SsrMode, path};

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
            <Routes fallback=layout::pages::NotFound>
                <Route path=path!("/login") view={Lazy::<routes::Login>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/setup") view={Lazy::<routes::Setup>::new()} ssr=SsrMode::Async/>
                <ParentRoute path=path!("") view=layout::pages::Layout ssr=SsrMode::Async>
                    <Route path=path!("") view={Lazy::<routes::Home>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams") view={Lazy::<routes::Home>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team") view={Lazy::<routes::Members>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/datasets") view={Lazy::<routes::Datasets>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/datasets/:id") view={Lazy::<routes::Dataset>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/versions/:vid") view={Lazy::<routes::DatasetVersion>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/training") view={Lazy::<routes::TrainingList>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/training/new") view={Lazy::<routes::Launch>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/training/:id") view={Lazy::<routes::Job>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/models") view={Lazy::<routes::Models>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/endpoints") view={Lazy::<routes::Endpoints>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/endpoints/new") view={Lazy::<routes::NewEndpoint>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/endpoints/:id") view={Lazy::<routes::Endpoint>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/endpoints/:id/experiment") view={Lazy::<routes::EndpointExperiment>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/endpoints/:id/rollouts") view={Lazy::<routes::EndpointRollouts>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/rollouts/:rollout") view={Lazy::<routes::EndpointRollout>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/budget") view={Lazy::<routes::Budget>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/reviews") view={Lazy::<routes::Reviews>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/webhooks") view={Lazy::<routes::Webhooks>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/webhooks/:id") view={Lazy::<routes::Webhook>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/reviews/new") view={Lazy::<routes::NewRequest>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/change-requests/:id") view={Lazy::<routes::Request>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/sagemaker/import") view={Lazy::<routes::Import>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/models/:id") view={Lazy::<routes::Model>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/models/:id/aliases/:alias") view={Lazy::<routes::Alias>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/model-versions") view={Lazy::<routes::VersionSearch>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/model-versions/:id") view={Lazy::<routes::ModelVersion>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/teams/:team/compare") view={Lazy::<routes::Compare>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/tokens") view={Lazy::<routes::Tokens>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/prices") view={Lazy::<routes::Prices>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/audit") view={Lazy::<routes::Audit>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/account") view={Lazy::<routes::Account>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/users") view={Lazy::<routes::Users>::new()} ssr=SsrMode::Async/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}
