//! Forms that call a server function: [`FormAction`] and [`Form`], used
//! instead of Leptos' `ServerAction` and `ActionForm`.
//!
//! Without JavaScript a form posts its fields, URL-encoded, to the server
//! function's path, and the server parses them. With JavaScript, `ActionForm`
//! parsed the same fields into the function's arguments in the browser and
//! encoded them again to send them: a parser and an encoder of every form's
//! arguments went into the bundle, with an action per argument type. Here the
//! browser posts the fields as they are, exactly as without JavaScript, and
//! only reads the answer; what is generic per form is the result type alone.
//!
//! The state a page reads is the same as a `ServerAction`'s: `value`
//! (the last result), `version` (how many results so far), `pending`. An
//! error the server sent back to a page after a post without JavaScript (in
//! the URL, read by the router) is the starting value, as with `ServerAction`.

use crate::kernel::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

/// The state of one form's calls to the server function `S`.
pub struct FormAction<S: ServerFn> {
    value: RwSignal<Option<Result<S::Output, AppError>>>,
    version: RwSignal<usize>,
    pending: RwSignal<bool>,
    function: PhantomData<fn() -> S>,
}

impl<S: ServerFn> Clone for FormAction<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: ServerFn> Copy for FormAction<S> {}

impl<S> Default for FormAction<S>
where
    S: ServerFn<Error = AppError> + 'static,
    S::Output: DeserializeOwned + Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<S> FormAction<S>
where
    S: ServerFn<Error = AppError> + 'static,
    S::Output: DeserializeOwned + Send + Sync + 'static,
{
    pub fn new() -> Self {
        Self {
            value: RwSignal::new(error_in_url(S::PATH).map(Err)),
            version: RwSignal::new(0),
            pending: RwSignal::new(false),
            function: PhantomData,
        }
    }

    /// The last result, `None` before the first.
    pub fn value(&self) -> RwSignal<Option<Result<S::Output, AppError>>> {
        self.value
    }

    /// How many results have come back.
    pub fn version(&self) -> RwSignal<usize> {
        self.version
    }

    /// Whether a call is on its way.
    pub fn pending(&self) -> ReadSignal<bool> {
        self.pending.read_only()
    }

    /// The last call's error, for [`FormError`](crate::kernel::widgets::FormError)
    /// and [`FieldMessage`](crate::kernel::widgets::FieldMessage).
    pub fn error(&self) -> Signal<Option<AppError>> {
        let value = self.value;
        Signal::derive(move || value.with(|v| v.as_ref().and_then(|r| r.as_ref().err().cloned())))
    }

    /// Whether the last call succeeded.
    pub fn succeeded(&self) -> bool {
        self.value.with(|v| matches!(v, Some(Ok(_))))
    }

    fn submit(self, ev: leptos::ev::SubmitEvent) {
        #[cfg(feature = "hydrate")]
        {
            if ev.default_prevented() {
                return;
            }
            ev.prevent_default();
            let (value, version, pending) = (self.value, self.version, self.pending);
            pending.set(true);
            browser::post_form(
                S::PATH,
                &ev,
                Box::new(move |res| {
                    let res = res.and_then(|bytes| {
                        <crate::kernel::codec::JsonText as leptos::server_fn::Decodes<S::Output>>::decode(bytes)
                            .map_err(|e| AppError::Transport(format!("unreadable answer: {e}")))
                    });
                    version.update(|n| *n += 1);
                    value.set(Some(res));
                    pending.set(false);
                }),
            );
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = ev;
    }
}

/// The error a post without JavaScript sent back to this page for the
/// function at `path` (the router provides it from the URL).
fn error_in_url(path: &str) -> Option<AppError> {
    use leptos::server::ServerActionError;
    use leptos::server_fn::error::ServerFnUrlError;
    let error = use_context::<ServerActionError>()?;
    (error.path() == path).then(|| ServerFnUrlError::<AppError>::decode_err(error.err()))
}

/// A `<form>` that posts to `action`'s server function: in the browser by
/// `fetch`, without JavaScript as a plain form post (the server sends the
/// browser back to the page, with the error if there was one).
#[component]
pub fn Form<S>(
    action: FormAction<S>,
    /// The `<form>` element, e.g. to reset it (see [`cleared_on_success`]).
    #[prop(optional)]
    node_ref: Option<NodeRef<leptos::html::Form>>,
    children: Children,
) -> impl IntoView
where
    S: ServerFn<Error = AppError> + 'static,
    S::Output: DeserializeOwned + Send + Sync + 'static,
{
    let node_ref = node_ref.unwrap_or_default();
    view! {
        <form action=S::PATH method="post" node_ref=node_ref on:submit=move |ev| action.submit(ev)>
            {children()}
        </form>
    }
}

/// A form reference that empties its form once `action` succeeds, so the
/// next entry starts fresh (without JavaScript the page reloads empty anyway).
pub fn cleared_on_success<S>(action: FormAction<S>) -> NodeRef<leptos::html::Form>
where
    S: ServerFn<Error = AppError> + 'static,
    S::Output: DeserializeOwned + Send + Sync + 'static,
{
    let form = NodeRef::<leptos::html::Form>::new();
    let version = action.version();
    Effect::new(move |_| {
        version.track();
        if action.succeeded()
            && let Some(el) = form.get_untracked()
        {
            el.reset();
        }
    });
    form
}

#[cfg(feature = "hydrate")]
mod browser {
    //! The one submit path every form shares, generic over nothing.
    use crate::kernel::error::AppError;
    use leptos::server_fn::client::{Client, browser::BrowserClient};
    use leptos::server_fn::error::FromServerFnError;
    use leptos::server_fn::request::{ClientReq, browser::BrowserRequest};
    use leptos::server_fn::response::ClientRes;
    use leptos::server_fn::{Bytes, redirect::call_redirect_hook};
    use wasm_bindgen::JsCast;

    pub(super) type Done = Box<dyn FnOnce(Result<Bytes, AppError>)>;

    /// Posts the fields of the submitted form (and its submit button's name
    /// and value, as the browser would) to `path`; `done` gets the answer.
    pub(super) fn post_form(path: &'static str, ev: &leptos::ev::SubmitEvent, done: Done) {
        let body = fields(ev);
        leptos::task::spawn_local(async move {
            let res = match body {
                Ok(body) => post(path, body).await,
                Err(e) => Err(e),
            };
            done(res);
        });
    }

    fn fields(ev: &leptos::ev::SubmitEvent) -> Result<String, AppError> {
        let unreadable = |_| AppError::Transport("the form could not be read".into());
        let form: web_sys::HtmlFormElement =
            ev.target().ok_or_else(|| AppError::Transport("no form".into()))?.unchecked_into();
        let data = web_sys::FormData::new_with_form(&form).map_err(unreadable)?;
        if let Some(button) = ev.submitter().and_then(|s| s.dyn_into::<web_sys::HtmlButtonElement>().ok())
            && !button.name().is_empty()
        {
            data.append_with_str(&button.name(), &button.value()).map_err(unreadable)?;
        }
        let query = web_sys::UrlSearchParams::new_with_str_sequence_sequence(&data).map_err(unreadable)?;
        Ok(String::from(query.to_string()))
    }

    async fn post(path: &str, body: String) -> Result<Bytes, AppError> {
        let req = <BrowserRequest as ClientReq<AppError>>::try_new_post(
            path,
            "application/x-www-form-urlencoded",
            "application/json",
            body,
        )?;
        let res = <BrowserClient as Client<AppError>>::send(req).await?;
        let status = ClientRes::<AppError>::status(&res);
        let location = ClientRes::<AppError>::location(&res);
        let redirect = ClientRes::<AppError>::has_redirect(&res);
        let bytes = ClientRes::<AppError>::try_into_bytes(res).await?;
        if (400..=599).contains(&status) {
            return Err(<AppError as FromServerFnError>::de(bytes));
        }
        if (300..=399).contains(&status) || redirect {
            call_redirect_hook(&location);
        }
        Ok(bytes)
    }
}
