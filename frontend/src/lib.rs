//! The wasm entry point: hydrates the server-rendered page.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Each page is a lazily loaded chunk (app::routes): hydration waits for
    // the current page's chunk, which the HTML already asked the browser to
    // fetch beside the main module.
    wasm_bindgen_futures::spawn_local(async {
        let owner =
            leptos::mount::hydrate_from_async(leptos::prelude::document().body().expect("a body"), app::App).await;
        owner.forget();
        // Lets end-to-end tests wait until the page is interactive.
        if let Some(body) = leptos::prelude::document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
}
