//! Every page as a lazy route: the browser bundle's main module holds the
//! shell, the layout and the router, and each page's code is a chunk of its
//! own that the browser fetches when the page is first shown (the server
//! names the current page's chunks in the HTML, so a full load fetches them
//! at once, beside the main module). `scripts/build.sh` splits the bundle
//! (`capstan-split`).
//!
//! The split points that `#[lazy_route]` generates for the browser declare
//! foreign functions (`unsafe extern "C"`), which the workspace's
//! `unsafe_code` lint refuses everywhere else; this module writes no unsafe
//! code of its own.
#![allow(unsafe_code)]

use leptos::prelude::*;
use leptos_router::{LazyRoute, lazy_route};

/// Declares `$route`, a lazy route showing the component `$page`.
macro_rules! lazy_page {
    ($($route:ident => $page:expr;)*) => {$(
        #[doc = concat!("The page `", stringify!($page), "`, loaded on demand.")]
        pub struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                Self
            }

            fn view(_this: Self) -> AnyView {
                $page().into_any()
            }
        }
    )*};
}

/// A training job's page; a completed job offers to become a model version.
fn job_page() -> impl IntoView {
    fn register(team: String, job: uuid::Uuid, name: String) -> AnyView {
        view! { <crate::registry::pages::register::RegisterJob team job suggested=name/> }.into_any()
    }
    view! { <crate::training::pages::job::JobPage on_completed=register/> }
}

/// The teams page, offering the demo while the caller has no team.
fn home_page() -> impl IntoView {
    view! { <crate::teams::pages::TeamsPage first_steps=|| view! { <crate::training::pages::demo::DemoButton/> }/> }
}

lazy_page! {
    Login => crate::accounts::pages::LoginPage;
    Setup => crate::accounts::pages::SetupPage;
    Home => home_page;
    Members => crate::teams::pages::MembersPage;
    Datasets => crate::datasets::pages::DatasetsPage;
    Dataset => crate::datasets::pages::DatasetPage;
    DatasetVersion => crate::datasets::pages::VersionPage;
    TrainingList => crate::training::pages::list::TrainingListPage;
    Launch => crate::training::pages::launch::LaunchPage;
    Job => job_page;
    Models => crate::registry::pages::models::ModelsPage;
    Endpoints => crate::endpoints::pages::EndpointsPage;
    NewEndpoint => crate::endpoints::pages::NewEndpointPage;
    Endpoint => crate::endpoints::pages::EndpointPage;
    EndpointExperiment => crate::endpoints::pages::experiment::ExperimentPage;
    EndpointRollouts => crate::endpoints::pages::rollouts::RolloutsPage;
    EndpointRollout => crate::endpoints::pages::rollouts::RolloutPage;
    Budget => crate::budgets::pages::BudgetPage;
    Reviews => crate::approvals::pages::ReviewsPage;
    Webhooks => crate::webhooks::pages::WebhooksPage;
    Webhook => crate::webhooks::pages::WebhookPage;
    NewRequest => crate::approvals::pages::NewRequestPage;
    Request => crate::approvals::pages::RequestPage;
    Import => crate::registry::pages::import::ImportPage;
    Model => crate::registry::pages::model::ModelPage;
    Alias => crate::registry::pages::alias::AliasPage;
    VersionSearch => crate::registry::pages::search::VersionSearchPage;
    ModelVersion => crate::registry::pages::version::VersionPage;
    Compare => crate::registry::pages::compare::ComparePage;
    Tokens => crate::tokens::pages::TokensPage;
    Prices => crate::training::pages::prices::PricesPage;
    Audit => crate::audit::pages::AuditPage;
    Account => crate::accounts::pages::AccountPage;
    Users => crate::accounts::pages::UsersPage;
}
