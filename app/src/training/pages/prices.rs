//! The site admins' instance price table.

use crate::kernel::form::{Form, FormAction};
use crate::kernel::widgets::{FormError, PageHeader, Time};
use crate::training::rpc::{DeletePrice, SetPrice, get_prices};
use leptos::prelude::*;

/// `/admin/prices`: the table for the configured region, editable by site admins.
#[component]
pub fn PricesPage() -> impl IntoView {
    let set = FormAction::<SetPrice>::new();
    let delete = FormAction::<DeletePrice>::new();
    let table = Resource::new(move || (set.version().get(), delete.version().get()), |_| get_prices());
    let err = Signal::derive(move || {
        set.value().get().and_then(Result::err).or_else(|| delete.value().get().and_then(Result::err))
    });
    view! {
        <PageHeader title="Instance prices" subtitle="On-demand USD per instance-hour, used for cost estimates and actual cost of training jobs."/>
        <FormError error=err/>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || table.get().map(|r| match r {
                Err(e) => view! { <crate::kernel::widgets::ErrorBox error=e/> }.into_any(),
                Ok(t) => view! {
                    <section class="card">
                        <p class="muted">"Region "<strong>{t.region.clone()}</strong>". Seeded from: "{t.source.clone()}" (as of "{t.as_of.clone()}")."</p>
                        <table class="table" data-testid="prices">
                            <thead><tr><th>"Instance type"</th><th>"USD / hour"</th><th>"Edited"</th><th></th></tr></thead>
                            <tbody>
                                {t.prices.into_iter().map(|p| {
                                    let by = p.edited_by.clone().unwrap_or_default();
                                    let edited = p.edited_at.map(|at| view! { {by}" · "<Time at=at/> });
                                    let (t1, t2) = (p.instance_type.clone(), p.instance_type.clone());
                                    view! {
                                        <tr>
                                            <td><code>{p.instance_type.clone()}</code></td>
                                            <td>
                                                <Form action=set attr:class="inline">
                                                    <input type="hidden" name="instance_type" value=t1/>
                                                    <input name="usd_per_hour" value=format!("{}", p.usd_per_hour) size="8" aria-label="USD per hour"/>
                                                    <button type="submit" class="secondary">"Save"</button>
                                                </Form>
                                            </td>
                                            <td class="muted">{edited.map_or_else(|| view! { "from the data file" }.into_any(), IntoAny::into_any)}</td>
                                            <td>
                                                <Form action=delete attr:class="inline">
                                                    <input type="hidden" name="instance_type" value=t2/>
                                                    <button type="submit" class="link danger">"Remove"</button>
                                                </Form>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                        <h3>"Add an instance type"</h3>
                        <Form action=set attr:class="inline">
                            <input name="instance_type" placeholder="ml.m5.large" required/>
                            <input name="usd_per_hour" placeholder="0.115" size="8" required/>
                            <button type="submit">"Add"</button>
                        </Form>
                    </section>
                }.into_any(),
            })}
        </Suspense>
    }
}
