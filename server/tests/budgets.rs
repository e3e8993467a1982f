//! Team budgets: admins set a monthly budget over training and endpoints;
//! the month's spend crossing its alert percentage, then 100 %, raises
//! `budget.crossed` once a month per level (an audit event that webhooks
//! deliver) and a banner on the team's pages.

mod common;

use common::{Auth, TestApp};
use http::{Method, StatusCode, header};
use serde_json::json;
use sqlx::PgPool;

/// GET a page as a browser navigation would.
async fn page(app: &TestApp, path: &str, auth: &Auth) -> common::Response {
    let mut req = http::Request::builder().method(Method::GET).uri(path).header(header::ACCEPT, "text/html");
    if let Auth::Cookie(c) = auth {
        req = req.header(header::COOKIE, c.as_str());
    }
    app.send(req.body(axum::body::Body::empty()).expect("request")).await
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn crossing_a_budget_raises_one_event_a_month_per_level_and_a_banner(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let admin = Auth::Bearer(app.user("admin@example.com", false).await.token);
    let member = Auth::Bearer(app.user("member@example.com", false).await.token);
    let viewer_user = app.user("viewer@example.com", false).await;
    let viewer = Auth::Bearer(viewer_user.token.clone());
    app.team_with_members("ml", &admin, &[("member@example.com", "member"), ("viewer@example.com", "viewer")]).await;
    let path = "/api/v1/teams/ml/budget";
    let res = app.call(Method::GET, path, &viewer, None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!((res.json()["budget"].clone(), res.json()["level"].clone()), (json!(null), json!(null)));

    // admins only; bad amounts are refused on their field and write nothing
    let res = app.call(Method::PUT, path, &member, Some(json!({"monthly_usd": 100}))).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    for (bad, field) in [
        (json!({"monthly_usd": 0}), "monthly_usd"),
        (json!({"monthly_usd": -5}), "monthly_usd"),
        (json!({"monthly_usd": 100, "alert_percent": 0}), "alert_percent"),
        (json!({"monthly_usd": 100, "alert_percent": 101}), "alert_percent"),
    ] {
        let res = app.call(Method::PUT, path, &admin, Some(bad.clone())).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {}", res.text());
        assert_eq!(res.json()["errors"][0]["field"], field, "{bad}: {}", res.text());
    }
    assert_eq!(app.count("select count(*) from team_budget").await, 0);

    // a webhook for the event, and an hour of a $10/h endpoint variant this month
    let res = app
        .call(
            Method::POST,
            "/api/v1/teams/ml/webhooks",
            &admin,
            Some(json!({"url": "https://example.com/hook", "event_types": ["budget.crossed"]})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    sqlx::query(
        "insert into endpoint_usage (usage_id, endpoint_id, team_id, endpoint_name, variant, instance_type,
                                     instance_count, usd_per_hour, shadow, started_at)
         select gen_random_uuid(), gen_random_uuid(), team_id, 'big', 'a', 'ml.p3.2xlarge', 1, 10, false,
                greatest(date_trunc('month', now()), now() - interval '1 hour')
         from team where slug = 'ml'",
    )
    .execute(&app.pool)
    .await
    .expect("usage");
    let spent = app.call(Method::GET, path, &viewer, None).await.json()["endpoints_usd"].as_f64().expect("spent");
    assert!(spent > 0.0 && spent < 10.1, "at most an hour at $10/h: {spent}");
    let crossed = || app.audit_count("budget.crossed");

    // past the alert percentage (spent is two thirds of it): one alert, once
    let res = app.call(Method::PUT, path, &admin, Some(json!({"monthly_usd": spent * 1.5, "alert_percent": 50}))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["level"], "alert", "{}", res.text());
    assert_eq!(app::budgets::check::run(&app.pool).await.expect("check"), 1);
    assert_eq!(app::budgets::check::run(&app.pool).await.expect("check"), 0, "once a month");
    assert_eq!(crossed().await, 1);

    // a lower budget is crossed afresh, past 100 % too
    let res = app.call(Method::PUT, path, &admin, Some(json!({"monthly_usd": spent / 2.0}))).await;
    assert_eq!(res.json()["level"], "exceeded", "{}", res.text());
    assert_eq!(res.json()["budget"]["alert_percent"], 80, "the default alert percentage");
    assert_eq!(app::budgets::check::run(&app.pool).await.expect("check"), 2);
    assert_eq!(app::budgets::check::run(&app.pool).await.expect("check"), 0);
    assert_eq!(crossed().await, 3);
    assert_eq!(
        app.count("select count(*) from webhook_delivery where event_type = 'budget.crossed'").await,
        3,
        "each crossing goes to the team's webhook"
    );
    assert_eq!(
        app.count(
            "select count(*) from audit_event where action = 'budget.crossed' and summary->>'level' = 'exceeded'"
        )
        .await,
        1
    );

    // the banner on the team's pages, for whoever sees the team
    let html = page(&app, "/teams/ml/endpoints", &Auth::Cookie(viewer_user.cookie.clone())).await.text();
    assert!(html.contains(r#"id="budget-banner""#) && html.contains(r#"data-level="exceeded""#), "{html}");
    assert!(html.contains("Over budget"), "{html}");

    // removed: no level, no banner
    let res = app.call(Method::DELETE, path, &member, None).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(app.call(Method::DELETE, path, &admin, None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.call(Method::GET, path, &viewer, None).await.json()["level"], json!(null));
    let html = page(&app, "/teams/ml/endpoints", &Auth::Cookie(viewer_user.cookie.clone())).await.text();
    assert!(!html.contains(r#"id="budget-banner""#), "{html}");
    assert_eq!((app.audit_count("budget.set").await, app.audit_count("budget.removed").await), (2, 1));
}
