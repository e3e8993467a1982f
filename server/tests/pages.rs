//! Pages as a browser first loads them: every route rendered in full on the
//! server (on a test thread's small stack, as a pasted URL is), the same
//! bytes for the same request, no inline event handlers, a nonce on every
//! script, and forms that work before (or without) JavaScript.

mod common;

use common::{Auth, TestApp};
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use sqlx::PgPool;

/// The demo (team, dataset, ready version, job) for a signed-in site admin.
struct Demo {
    app: TestApp,
    cookie: Auth,
    job: Value,
    dataset: String,
    version: String,
}

async fn demo(pool: PgPool) -> Demo {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", true).await;
    let cookie = Auth::Cookie(ada.cookie.clone());
    let res = app.server_fn("create_demo", &cookie, &[]).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let job = res.json()["job"].clone();
    let version = job["channels"][0]["version_id"].as_str().expect("version id").to_owned();
    let bearer = Auth::Bearer(ada.token.clone());
    let v = app.wait_for(&format!("/api/v1/dataset-versions/{version}"), &bearer, |v| v["status"] == "ready").await;
    let dataset = v["dataset_id"].as_str().expect("dataset id").to_owned();
    Demo { app, cookie, job, dataset, version }
}

/// GET a page as a full navigation would.
async fn page(app: &TestApp, path: &str, auth: &Auth) -> common::Response {
    let mut req = Request::builder().method(Method::GET).uri(path).header(header::ACCEPT, "text/html");
    if let Auth::Cookie(c) = auth {
        req = req.header(header::COOKIE, c.as_str());
    }
    app.send(req.body(axum::body::Body::empty()).expect("request")).await
}

/// Attributes such as `onclick="…"`, which the page's CSP blocks.
fn inline_handlers(html: &str) -> Vec<String> {
    let bytes = html.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(pos) = html[i..].find(" on") {
        let start = i + pos + 1;
        let name: String = html[start..].chars().take_while(|c| c.is_ascii_lowercase()).collect();
        let after = start + name.len();
        if name.len() > 2 && bytes.get(after) == Some(&b'=') && html[..start].rfind('<') > html[..start].rfind('>') {
            found.push(name);
        }
        i = start;
    }
    found
}

/// `html` with the values of every `attr"…"` emptied.
fn blank_attr(html: &str, attr: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(pos) = rest.find(attr) {
        out.push_str(&rest[..pos + attr.len()]);
        rest = &rest[pos + attr.len()..];
        rest = &rest[rest.find('"').unwrap_or(0)..];
    }
    out.push_str(rest);
    out
}

/// The page's text with per-request values (CSP nonces) blanked, and the
/// serialized resources (`__RESOLVED_RESOURCES[i] = …;`, written in the
/// order their queries happen to finish) moved to the end in index order.
/// Each resource must be serialized exactly once.
fn normalized(html: &str) -> String {
    let blanked = blank_attr(&blank_attr(html, "nonce=\""), "crossorigin=\"");
    let mut rest = blanked.as_str();
    let mut resources = std::collections::BTreeMap::new();
    let mut markup = String::new();
    let marker = "__RESOLVED_RESOURCES[";
    while let Some(pos) = rest.find(marker) {
        markup.push_str(&rest[..pos]);
        let after = &rest[pos + marker.len()..];
        let index: usize = after[..after.find(']').expect("index")].parse().expect("numeric index");
        // the value is a JSON string literal; it ends at the first unescaped `";`
        let body_start = after.find(" = \"").expect("assignment") + 4;
        let bytes = after.as_bytes();
        let mut end = body_start;
        while !(bytes[end] == b'"' && bytes[end - 1] != b'\\' && bytes.get(end + 1) == Some(&b';')) {
            end += 1;
        }
        let value = after[body_start..end].to_owned();
        assert!(resources.insert(index, value).is_none(), "resource {index} is serialized twice");
        rest = &after[end + 2..];
    }
    markup.push_str(rest);
    // how many resources share one script chunk depends on timing as well
    let mut compact = String::with_capacity(markup.len());
    let mut rest = markup.as_str();
    while let Some(pos) = rest.find("<script nonce=\"\">") {
        let inner = &rest[pos + 17..];
        let end = inner.find("</script>").map_or(inner.len(), |close| close + 9);
        compact.push_str(&rest[..pos]);
        if !inner[..end].trim_end_matches("</script>").trim().is_empty() {
            compact.push_str(&rest[pos..pos + 17 + end]);
        }
        rest = &inner[end..];
    }
    compact.push_str(rest);
    format!("{compact}\n{resources:?}")
}

#[sqlx::test(migrations = "../migrations")]
async fn every_page_renders_in_full_with_nonced_scripts_and_no_inline_handlers(pool: PgPool) {
    let d = demo(pool).await;
    let job = d.job["id"].as_str().expect("job id");
    // a model with a version registered from an artifact (the demo's job registers itself only once done)
    let bearer = Auth::Bearer(d.app.user("pages@example.com", false).await.token);
    d.app.team_with_members("pages", &bearer, &[]).await;
    d.app.put("capstan", "models/pages/model.tar.gz", b"weights".to_vec()).await;
    let model = d.app.call(Method::POST, "/api/v1/teams/pages/models", &bearer, Some(json!({"name": "m"}))).await;
    let model = model.json()["id"].as_str().expect("model id").to_owned();
    let artifact = json!({"artifact_uri": "s3://capstan/models/pages/model.tar.gz", "metrics": {"auc": 0.9}});
    let res = d.app.call(Method::POST, &format!("/api/v1/models/{model}/versions"), &bearer, Some(artifact)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let version = res.json()["id"].as_str().expect("version id").to_owned();
    // a protected alias and a request to move it, waiting for review
    let artifact = json!({"artifact_uri": "s3://capstan/models/pages/model.tar.gz", "metrics": {"auc": 0.93}});
    let res = d.app.call(Method::POST, &format!("/api/v1/models/{model}/versions"), &bearer, Some(artifact)).await;
    let version2 = res.json()["id"].as_str().expect("version id").to_owned();
    let alias = format!("/api/v1/models/{model}/aliases/champion");
    d.app.call(Method::PUT, &alias, &bearer, Some(json!({"version_id": version}))).await;
    d.app.call(Method::POST, &format!("{alias}/protect"), &bearer, None).await;
    let change = json!({"kind": "alias.move", "model_id": model, "alias": "champion", "version_id": version2});
    let res = d
        .app
        .call(
            Method::POST,
            "/api/v1/teams/pages/change-requests",
            &bearer,
            Some(json!({"change": change, "title": "Promote v2"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let request = res.json()["id"].as_str().expect("request id").to_owned();
    let html = page(&d.app, &format!("/teams/pages/change-requests/{request}"), &d.cookie).await.text();
    assert!(html.contains("id=\"diff-before\">v1<") && html.contains("id=\"diff-after\">v2<"), "the diff: {html}");
    assert!(html.contains("id=\"review-form\""), "a site admin may review: {html}");
    assert!(html.contains("id=\"reviews-badge\""), "the badge counts the waiting request: {html}");
    let hook = json!({"url": "https://hooks.example.com/pages", "event_types": ["*"]});
    let res = d.app.call(Method::POST, "/api/v1/teams/pages/webhooks", &bearer, Some(hook)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let webhook = res.json()["webhook"]["id"].as_str().expect("webhook id").to_owned();
    let routes = [
        "/".to_owned(),
        "/teams".into(),
        "/teams/demo".into(),
        "/teams/demo/datasets".into(),
        format!("/teams/demo/datasets/{}", d.dataset),
        format!("/teams/demo/versions/{}", d.version),
        format!("/teams/demo/versions/{}?key=train.csv", d.version),
        "/teams/demo/training".into(),
        "/teams/demo/training?status=running".into(),
        "/teams/demo/training/new".into(),
        format!("/teams/demo/training/new?clone={job}"),
        format!("/teams/demo/training/{job}"),
        "/teams/demo/models".into(),
        format!("/teams/pages/models/{model}"),
        format!("/teams/pages/models/{model}/aliases/champion"),
        format!("/teams/pages/model-versions/{version}"),
        "/teams/pages/model-versions?filter=metrics.auc+%3E+0.5".into(),
        format!("/teams/pages/compare?v={version}&v={version}"),
        "/teams/demo/sagemaker/import".into(),
        "/teams/pages/reviews".into(),
        "/teams/pages/webhooks".into(),
        format!("/teams/pages/webhooks/{webhook}"),
        "/teams/pages/reviews?tab=all".into(),
        "/teams/pages/reviews?tab=mine".into(),
        format!("/teams/pages/change-requests/{request}"),
        format!("/teams/pages/reviews/new?model={model}&alias=champion"),
        "/tokens".into(),
        "/admin/prices".into(),
        "/admin/users".into(),
        "/audit".into(),
        "/audit?team=demo".into(),
        "/account".into(),
    ];
    for path in &routes {
        let res = page(&d.app, path, &d.cookie).await;
        assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.text());
        let html = res.text();
        assert!(html.contains("</html>"), "{path} rendered in full");
        assert!(html.contains("class=\"topbar\""), "{path} has the navigation");
        assert_eq!(inline_handlers(&html), Vec::<String>::new(), "{path} has inline event handlers");
        assert_nonced(path, &res);
    }
    // local mode has no SageMaker to import from, and says so
    let html = page(&d.app, "/teams/demo/sagemaker/import", &d.cookie).await.text();
    assert!(html.contains("AWS mode only"), "{html}");
    for path in ["/login", "/setup"] {
        let res = page(&d.app, path, &Auth::None).await;
        assert_eq!(res.status, StatusCode::OK, "{path}");
        assert_eq!(inline_handlers(&res.text()), Vec::<String>::new(), "{path} has inline event handlers");
        assert_nonced(path, &res);
    }
    // the 404 page: navigation, and scripts the CSP lets run
    let res = page(&d.app, "/teams/demo/nothing-here", &d.cookie).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let html = res.text();
    assert!(html.contains("Page not found") && html.contains("class=\"topbar\""), "{html}");
    assert_nonced("404", &res);
}

/// Every `<script>` carries the nonce the response's CSP names.
fn assert_nonced(path: &str, res: &common::Response) {
    let csp = res.headers.get(header::CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let nonce = csp.split("'nonce-").nth(1).and_then(|r| r.split('\'').next()).unwrap_or_default();
    assert!(!nonce.is_empty(), "{path}: CSP without a nonce: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{path}: pages need no inline styles or scripts: {csp}");
    let html = res.text();
    let scripts = html.matches("<script").count();
    assert!(scripts > 0, "{path} has its hydration script");
    assert!(html.matches(&format!("nonce=\"{nonce}\"")).count() >= scripts, "{path}: a script lacks the nonce");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_version_page_renders_the_same_bytes_every_time(pool: PgPool) {
    let d = demo(pool).await;
    let path = format!("/teams/demo/versions/{}", d.version);
    let first = normalized(&page(&d.app, &path, &d.cookie).await.text());
    assert!(first.contains("train.csv"), "the manifest is rendered: {first}");
    for n in 1..20 {
        let body = normalized(&page(&d.app, &path, &d.cookie).await.text());
        assert_eq!(body.len(), first.len(), "render {n} differs in size");
        assert_eq!(body, first, "render {n} differs");
    }
}

/// A form posted without JavaScript (`Accept: text/html`).
async fn plain_post(app: &TestApp, name: &str, referer: &str, auth: &Auth, args: &[(&str, &str)]) -> common::Response {
    let body =
        args.iter().map(|(k, v)| format!("{}={}", common::urlencode(k), common::urlencode(v))).collect::<Vec<_>>();
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(format!("/rpc/{name}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "text/html,application/xhtml+xml")
        .header(header::REFERER, format!("http://localhost{referer}"));
    if let Auth::Cookie(c) = auth {
        req = req.header(header::COOKIE, c.as_str());
    }
    app.send(req.body(axum::body::Body::from(body.join("&"))).expect("request")).await
}

fn location(res: &common::Response) -> String {
    let loc = res.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    loc.strip_prefix("http://localhost").unwrap_or(loc).trim_end_matches('?').to_owned()
}

#[sqlx::test(migrations = "../migrations")]
async fn forms_work_without_javascript(pool: PgPool) {
    let d = demo(pool).await;
    // a wrong password: back to the sign-in page, which shows the message by its field
    let res =
        plain_post(&d.app, "login", "/login", &Auth::None, &[("email", "ada@example.com"), ("password", "nope")]).await;
    assert!(res.status.is_redirection(), "{}", res.text());
    let back = location(&res);
    assert!(back.starts_with("/login?"), "{back}");
    let html = page(&d.app, &back, &Auth::None).await.text();
    assert!(html.contains("Wrong email or password."), "{html}");
    assert!(!html.contains("{\"Validation\""), "no raw error: {html}");
    // the right password signs in and goes home
    let res = plain_post(
        &d.app,
        "login",
        "/login",
        &Auth::None,
        &[("email", "ada@example.com"), ("password", common::PASSWORD)],
    )
    .await;
    assert!(res.status.is_redirection());
    assert_eq!(location(&res), "/");
    // the dataset form as the server renders it names its team
    let html = page(&d.app, "/teams/demo/datasets", &d.cookie).await.text();
    assert!(html.contains(r#"type="hidden" name="team" value="demo""#), "{html}");
    let res = plain_post(
        &d.app,
        "create_dataset",
        "/teams/demo/datasets",
        &d.cookie,
        &[("team", "demo"), ("name", "no-js"), ("description", ""), ("tags", "")],
    )
    .await;
    assert!(res.status.is_redirection(), "{}", res.text());
    assert_eq!(location(&res), "/teams/demo/datasets");
    let html = page(&d.app, "/teams/demo/datasets", &d.cookie).await.text();
    assert!(html.contains("no-js"), "the new dataset is listed");
    // a taken team slug: the page comes back with the message by the field, once
    let res = plain_post(&d.app, "create_team", "/teams", &d.cookie, &[("slug", "demo"), ("name", "Demo again")]).await;
    assert!(res.status.is_redirection());
    let html = page(&d.app, &location(&res), &d.cookie).await.text();
    assert_eq!(html.matches("A team with this slug already exists.").count(), 1, "{html}");
    // the job page shows the stored log lines without JavaScript
    let job = d.job["id"].as_str().expect("job id");
    sqlx::query("insert into training_log (job_id, seq, at, stream, line) values ($1::uuid, 1, now(), 'stdout', 'epoch=1 loss=0.69')")
        .bind(job)
        .execute(&d.app.pool)
        .await
        .expect("log line");
    let html = page(&d.app, &format!("/teams/demo/training/{job}"), &d.cookie).await.text();
    assert!(html.contains("epoch=1 loss=0.69"), "{html}");
}
