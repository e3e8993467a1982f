//! Behaviour users rely on: validation that writes nothing, uniqueness by
//! constraint, last-admin protection, token lifecycle, rate limiting, setup,
//! pagination, audit verification, CSRF, and the operational endpoints.

mod common;

use common::{Auth, PASSWORD, TestApp};
use http::{Method, StatusCode, header};
use serde_json::{Value, json};
use sqlx::PgPool;

fn bearer(u: &common::TestUser) -> Auth {
    Auth::Bearer(u.token.clone())
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn bad_team_input_names_fields_and_writes_nothing(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", false).await;
    let before = app.count("select count(*) from audit_event").await;

    let res =
        app.call(Method::POST, "/api/v1/teams", &bearer(&ada), Some(json!({"slug": "Bad Slug!", "name": "  "}))).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(res.headers[header::CONTENT_TYPE], "application/problem+json");
    let body = res.json();
    let fields: Vec<&str> =
        body["errors"].as_array().expect("errors").iter().map(|e| e["field"].as_str().expect("field")).collect();
    assert_eq!(fields, ["slug", "name"]);
    assert_eq!(body["status"], 422);
    assert!(body["type"].as_str().is_some() && body["title"].as_str().is_some() && body["detail"].as_str().is_some());

    // malformed JSON and wrong content type
    let req = http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/teams")
        .header(header::AUTHORIZATION, format!("Bearer {}", ada.token))
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from("{not json"))
        .expect("request");
    let res = app.send(req).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.headers[header::CONTENT_TYPE], "application/problem+json");
    let req = http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/teams")
        .header(header::AUTHORIZATION, format!("Bearer {}", ada.token))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(axum::body::Body::from(r#"{"slug":"ok-slug","name":"x"}"#))
        .expect("request");
    assert_eq!(app.send(req).await.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    assert_eq!(app.count("select count(*) from team").await, 0);
    assert_eq!(app.count("select count(*) from audit_event").await, before);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn duplicate_slug_is_a_conflict_on_the_slug_field(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", false).await;
    let bob = app.user("bob@example.com", false).await;
    let res =
        app.call(Method::POST, "/api/v1/teams", &bearer(&ada), Some(json!({"slug": "vision", "name": "Vision"}))).await;
    assert_eq!(res.status, StatusCode::CREATED);
    let audits = app.audit_count("team.created").await;
    let res =
        app.call(Method::POST, "/api/v1/teams", &bearer(&bob), Some(json!({"slug": "vision", "name": "Other"}))).await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert_eq!(res.json()["errors"][0]["field"], "slug");
    assert_eq!(app.count("select count(*) from team").await, 1);
    assert_eq!(app.audit_count("team.created").await, audits);
    // bob is not in the team he failed to create
    let res = app.call(Method::GET, "/api/v1/teams/vision", &bearer(&bob), None).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_last_admin_cannot_leave_or_be_demoted(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", false).await;
    let bob = app.user("bob@example.com", false).await;
    app.call(Method::POST, "/api/v1/teams", &bearer(&ada), Some(json!({"slug": "vision", "name": "Vision"}))).await;
    let path = format!("/api/v1/teams/vision/members/{}", ada.id);
    let res = app.call(Method::PATCH, &path, &bearer(&ada), Some(json!({"role": "member"}))).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
    let res = app.call(Method::DELETE, &path, &bearer(&ada), None).await;
    assert_eq!(res.status, StatusCode::CONFLICT);

    // With a second admin, the first may step down.
    let res = app
        .call(
            Method::POST,
            "/api/v1/teams/vision/members",
            &bearer(&ada),
            Some(json!({"email": "BOB@example.com", "role": "admin"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let res = app.call(Method::PATCH, &path, &bearer(&ada), Some(json!({"role": "viewer"}))).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["role"], "viewer");
    // ...and is now refused admin actions
    let res = app.call(Method::DELETE, &format!("/api/v1/teams/vision/members/{}", bob.id), &bearer(&ada), None).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);

    let res = app.call(Method::PATCH, &path, &bearer(&bob), Some(json!({"role": "owner"}))).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(res.json()["errors"][0]["field"], "role");
    let summary: serde_json::Value = sqlx::query_scalar(
        "select summary from audit_event where action = 'team.member_role_changed' order by occurred_at desc limit 1",
    )
    .fetch_one(&app.pool)
    .await
    .expect("event");
    assert_eq!(summary["before"]["role"], "admin");
    assert_eq!(summary["after"]["role"], "viewer");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn tokens_are_shown_once_hashed_and_stop_working_when_revoked_or_expired(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", false).await;
    let res = app.call(Method::POST, "/api/v1/tokens", &bearer(&ada), Some(json!({"name": "ci"}))).await;
    let created = res.json();
    let secret = created["secret"].as_str().expect("secret").to_owned();
    let id = created["token"]["id"].as_str().expect("id").to_owned();
    assert!(secret.starts_with(created["token"]["prefix"].as_str().expect("prefix")));
    // the secret is stored only as a hash
    let stored = app
        .count(&format!("select count(*) from api_token where encode(secret_hash, 'escape') like '%{secret}%'"))
        .await;
    assert_eq!(stored, 0);
    let listed = app.call(Method::GET, "/api/v1/tokens", &bearer(&ada), None).await.text();
    assert!(!listed.contains(&secret));

    let me = app.call(Method::GET, "/api/v1/me", &Auth::Bearer(secret.clone()), None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["email"], "ada@example.com");
    assert_eq!(me.json()["token_id"], id.as_str());

    let res = app.call(Method::DELETE, &format!("/api/v1/tokens/{id}"), &bearer(&ada), None).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    let me = app.call(Method::GET, "/api/v1/me", &Auth::Bearer(secret), None).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.headers[header::CONTENT_TYPE], "application/problem+json");

    // expiry in the past is refused; a token that has expired stops working
    let res = app
        .call(
            Method::POST,
            "/api/v1/tokens",
            &bearer(&ada),
            Some(json!({"name": "old", "expires_at": "2020-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(res.json()["errors"][0]["field"], "expires_at");
    let res =
        app.call(Method::POST, "/api/v1/tokens", &bearer(&ada), Some(json!({"name": "", "expires_at": "soon"}))).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    let res = app
        .call(
            Method::POST,
            "/api/v1/tokens",
            &bearer(&ada),
            Some(json!({"name": "short", "expires_at": "2099-01-01T00:00:00Z"})),
        )
        .await;
    let short = res.json()["secret"].as_str().expect("secret").to_owned();
    sqlx::query("update api_token set expires_at = now() - interval '1 second' where name = 'short'")
        .execute(&app.pool)
        .await
        .expect("expire");
    let me = app.call(Method::GET, "/api/v1/me", &Auth::Bearer(short), None).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    let me = app.call(Method::GET, "/api/v1/me", &Auth::Bearer("cap_not_a_real_token".into()), None).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn sign_in_is_rate_limited_and_audited(pool: PgPool) {
    let settings = app::kernel::state::Settings {
        login_max_failures: 3,
        login_window: time::Duration::minutes(15),
        ..Default::default()
    };
    let app = TestApp::with_settings(pool, settings, server::HttpOptions::default()).await;
    let _ada = app.user("ada@example.com", false).await;
    for _ in 0..3 {
        let res = app.login("ada@example.com", "wrong password!!").await.expect_err("wrong password");
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let res = app.login("ada@example.com", PASSWORD).await.expect_err("rate limited even with the right password");
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(res.text().contains("RateLimited"), "{}", res.text());
    assert_eq!(app.audit_count("auth.login_failed").await, 3);
    assert_eq!(app.audit_count("auth.login").await, 1);
}

/// Attempts checked together used to all pass the limit before any was
/// counted; now each is counted before its password is checked.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn concurrent_sign_in_attempts_cannot_outrun_the_limit(pool: PgPool) {
    let settings = app::kernel::state::Settings {
        login_max_failures: 3,
        login_window: time::Duration::minutes(15),
        ..Default::default()
    };
    let app = TestApp::with_settings(pool, settings, server::HttpOptions::default()).await;
    let _ada = app.user("ada@example.com", false).await;
    let attempts = (0..12).map(|i| {
        let app = &app;
        async move { app.login("ada@example.com", &format!("wrong password {i:02}")).await.expect_err("wrong").status }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY).count();
    let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((checked, limited), (3, 9), "{statuses:?}");
    assert_eq!(app.audit_count("auth.login_failed").await, 3);
}

/// A stranger failing on purpose delays the owner's next attempt by seconds,
/// not the whole window; the owner's own address is not limited by it.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn failures_from_elsewhere_delay_an_account_but_do_not_lock_it(pool: PgPool) {
    let proxy: std::net::IpAddr = "10.0.0.2".parse().expect("ip");
    let settings = app::kernel::state::Settings {
        login_max_failures: 3,
        login_window: time::Duration::minutes(15),
        trusted_proxies: vec![proxy],
        ..Default::default()
    };
    let app = TestApp::with_settings(pool, settings, server::HttpOptions::default()).await;
    let _ada = app.user("ada@example.com", false).await;
    let login_from = |client: &'static str, password: &'static str| {
        let mut req = http::Request::builder()
            .method(Method::POST)
            .uri("/rpc/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .header("x-forwarded-for", client)
            .body(axum::body::Body::from(format!("email=ada%40example.com&password={}", common::urlencode(password))))
            .expect("request");
        req.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::new(proxy, 40000)));
        app.send(req)
    };
    for _ in 0..3 {
        assert_eq!(login_from("203.0.113.66", "wrong password!!").await.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    // the attacker's address is now limited for the window
    assert_eq!(login_from("203.0.113.66", PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS);
    // the owner, elsewhere, waits out the account's short delay, then signs in
    let res = login_from("198.51.100.5", PASSWORD).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.text());
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let res = login_from("198.51.100.5", PASSWORD).await;
    assert!(res.status.is_success() || res.status.is_redirection(), "{}: {}", res.status, res.text());
    let addrs: Vec<String> = sqlx::query_scalar("select distinct client_addr from login_attempt order by 1")
        .fetch_all(&app.pool)
        .await
        .expect("attempts");
    assert!(addrs.contains(&"198.51.100.5".to_owned()) && addrs.contains(&"203.0.113.66".to_owned()), "{addrs:?}");
}

/// A changed password used to leave every other session signed in.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_password_change_ends_other_sessions_and_sign_out_everywhere_ends_all(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", false).await;
    let laptop = Auth::Cookie(app.login("ada@example.com", PASSWORD).await.expect("login"));
    let phone = Auth::Cookie(app.login("ada@example.com", PASSWORD).await.expect("login"));
    let new_password = "a brand new password 42";
    let res = app
        .server_fn("change_password", &laptop, &[("current_password", PASSWORD), ("new_password", new_password)])
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    // the session that changed it goes on under a new cookie; the other ends
    let laptop = match res
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("capstan_session="))
    {
        Some(c) => Auth::Cookie(c.split(';').next().unwrap_or_default().to_owned()),
        None => laptop,
    };
    assert_eq!(app.call(Method::GET, "/api/v1/me", &laptop, None).await.status, StatusCode::OK);
    assert_eq!(app.call(Method::GET, "/api/v1/me", &phone, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.call(Method::GET, "/api/v1/me", &bearer(&ada), None).await.status, StatusCode::OK, "tokens stay");

    let other = Auth::Cookie(app.login("ada@example.com", new_password).await.expect("login"));
    let res = app.server_fn("sign_out_everywhere", &laptop, &[]).await;
    assert!(res.status.is_success() || res.status.is_redirection(), "{}", res.text());
    assert_eq!(app.call(Method::GET, "/api/v1/me", &laptop, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.call(Method::GET, "/api/v1/me", &other, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.audit_count("user.signed_out_everywhere").await, 1);
}

/// Sessions had only an idle expiry: an active one lived for ever.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn sessions_end_at_their_absolute_lifetime(pool: PgPool) {
    let settings = app::kernel::state::Settings { session_max_age: time::Duration::seconds(2), ..Default::default() };
    let app = TestApp::with_settings(pool, settings, server::HttpOptions::default()).await;
    let ada = app.user("ada@example.com", false).await;
    let cookie = Auth::Cookie(ada.cookie.clone());
    assert_eq!(app.call(Method::GET, "/api/v1/me", &cookie, None).await.status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(app.call(Method::GET, "/api/v1/me", &cookie, None).await.status, StatusCode::UNAUTHORIZED);
}

/// Site admins disable an account: its sessions and tokens stop at once.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_disabled_account_loses_its_sessions_and_tokens_at_once(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let root = app.user("root@example.com", true).await;
    let ada = app.user("ada@example.com", false).await;
    let path = format!("/api/v1/users/{}", ada.id);
    let res = app.call(Method::PATCH, &path, &bearer(&ada), Some(json!({"disabled": true}))).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "only site admins");
    let res = app
        .call(Method::PATCH, &format!("/api/v1/users/{}", root.id), &bearer(&root), Some(json!({"disabled": true})))
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "not one's own");
    let res = app.call(Method::PATCH, &path, &bearer(&root), Some(json!({"disabled": true}))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["disabled"], true);
    assert_eq!(app.call(Method::GET, "/api/v1/me", &bearer(&ada), None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.call(Method::GET, "/api/v1/me", &Auth::Cookie(ada.cookie.clone()), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let res = app.login("ada@example.com", PASSWORD).await.expect_err("disabled");
    assert!(res.text().contains("disabled"), "{}", res.text());
    let res = app.call(Method::PATCH, &path, &bearer(&root), Some(json!({"disabled": false}))).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        app.call(Method::GET, "/api/v1/me", &bearer(&ada), None).await.status,
        StatusCode::OK,
        "tokens work again"
    );
    assert_eq!(app.audit_count("user.disabled").await, 1);
    assert_eq!(app.audit_count("user.enabled").await, 1);
}

/// A short-lived token used to mint one that never expires.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_token_cannot_mint_a_token_that_outlives_it(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", false).await;
    let res = app
        .server_fn("create_token", &Auth::Cookie(ada.cookie.clone()), &[("name", "ci"), ("expires_in_days", "1")])
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let short = Auth::Bearer(res.json()["secret"].as_str().expect("secret").to_owned());
    let res = app.call(Method::POST, "/api/v1/tokens", &short, Some(json!({"name": "forever"}))).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let expires = res.json()["token"]["expires_at"].clone();
    assert!(expires.is_string(), "capped at the creating token's expiry: {}", res.text());
    let until =
        time::OffsetDateTime::parse(expires.as_str().expect("str"), &time::format_description::well_known::Rfc3339)
            .expect("time");
    assert!(until <= time::OffsetDateTime::now_utc() + time::Duration::days(1));
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn sessions_cycle_on_login_and_die_on_logout(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", false).await;
    let second = app.login("ada@example.com", PASSWORD).await.expect("login");
    assert_ne!(second, ada.cookie, "a new session id at every sign-in");
    let cookie = Auth::Cookie(second.clone());
    let res = app.server_fn("logout", &cookie, &[]).await;
    assert_eq!(res.status, StatusCode::OK);
    let me = app.call(Method::GET, "/api/v1/me", &cookie, None).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "the old session id is dead after sign-out");
    let login = app.server_fn("login", &Auth::None, &[("email", "ada@example.com"), ("password", PASSWORD)]).await;
    let set_cookie = login.headers[header::SET_COOKIE].to_str().expect("ascii").to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "plain http in tests: {set_cookie}");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn setup_needs_the_console_token_and_works_once(pool: PgPool) {
    let app = TestApp::new(pool).await;
    *app.state.setup_token.lock().expect("lock") = Some("right-token".into());
    let args = |token: &'static str| {
        [("token", token), ("email", "root@example.com"), ("display_name", "Root"), ("password", PASSWORD)]
    };
    let res = app.server_fn("setup", &Auth::None, &args("wrong-token")).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.count("select count(*) from app_user").await, 0);
    let res = app.server_fn("setup", &Auth::None, &args("right-token")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(app.count("select count(*) from app_user where is_site_admin").await, 1);
    let res = app.server_fn("setup", &Auth::None, &args("right-token")).await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert_eq!(app.count("select count(*) from app_user").await, 1);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn audit_list_pages_filters_and_rejects_bad_params(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", true).await;
    for i in 0..7 {
        let res = app
            .call(Method::POST, "/api/v1/teams", &bearer(&ada), Some(json!({"slug": format!("team-{i}"), "name": "T"})))
            .await;
        assert_eq!(res.status, StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/audit-events?action=team.created&limit=3&cursor={c}"),
            None => "/api/v1/audit-events?action=team.created&limit=3".to_owned(),
        };
        let page = app.call(Method::GET, &path, &bearer(&ada), None).await.json();
        for e in page["items"].as_array().expect("items") {
            seen.push(e["summary"]["after"]["slug"].as_str().expect("slug").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).rev().map(|i| format!("team-{i}")).collect();
    assert_eq!(seen, expected, "newest first, every event once");

    let res = app.call(Method::GET, "/api/v1/audit-events?team=team-3", &bearer(&ada), None).await.json();
    assert_eq!(res["items"].as_array().expect("items").len(), 1);
    for bad in ["limit=0", "limit=201", "cursor=garbage", "from=yesterday", "limit=abc"] {
        let res = app.call(Method::GET, &format!("/api/v1/audit-events?{bad}"), &bearer(&ada), None).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{bad}: {}", res.text());
        assert_eq!(res.headers[header::CONTENT_TYPE], "application/problem+json");
    }
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn audit_verify_finds_an_edited_event(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", false).await;
    for slug in ["one", "two"] {
        app.call(Method::POST, "/api/v1/teams", &bearer(&ada), Some(json!({"slug": slug, "name": slug}))).await;
    }
    app.call(Method::PATCH, "/api/v1/teams/one", &bearer(&ada), Some(json!({"name": "Renamed"}))).await;
    let report = app::audit::domain::verify(&app.pool).await.expect("verify");
    assert!(report.broken.is_none(), "{report:?}");
    assert!(report.events >= 5 && report.chains == 3, "{report:?}");

    let victim: uuid::Uuid = sqlx::query_scalar(
        "select audit_event_id from audit_event where action = 'team.created' and chain_seq = 1 limit 1",
    )
    .fetch_one(&app.pool)
    .await
    .expect("event");
    sqlx::query("update audit_event set summary = '{\"after\":{\"slug\":\"forged\"}}' where audit_event_id = $1")
        .bind(victim)
        .execute(&app.pool)
        .await
        .expect("tamper");
    let report = app::audit::domain::verify(&app.pool).await.expect("verify");
    let broken = report.broken.expect("tampering detected");
    assert_eq!(broken.event_id, Some(victim));
}

/// Whoever can write the database can rebuild a chain that checks out; the
/// anchor, signed with a key the database does not hold, shows the rewrite.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn an_anchor_reveals_a_chain_rebuilt_after_it(pool: PgPool) {
    use app::audit::domain::{check_anchor, take_anchor, verify};
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", false).await;
    app.call(Method::POST, "/api/v1/teams", &bearer(&ada), Some(json!({"slug": "one", "name": "one"}))).await;
    app.call(Method::PATCH, "/api/v1/teams/one", &bearer(&ada), Some(json!({"name": "Renamed"}))).await;
    let key = b"an anchor key kept outside the database";
    let anchor = take_anchor(&app.pool, key).await.expect("anchor");
    assert_eq!(check_anchor(&app.pool, &anchor, key).await.expect("check"), None);
    // later events are fine: the anchor pins only what came before it
    app.call(Method::PATCH, "/api/v1/teams/one", &bearer(&ada), Some(json!({"name": "Again"}))).await;
    assert_eq!(check_anchor(&app.pool, &anchor, key).await.expect("check"), None);
    let forged = app::audit::domain::Anchor { mac: "00".repeat(32), ..anchor.clone() };
    let wrong = check_anchor(&app.pool, &forged, key).await.expect("check").expect("signature refused");
    assert!(wrong.reason.contains("signature"), "{}", wrong.reason);

    // a database writer erases the team's history and writes a new, consistent one
    let chain: String = sqlx::query_scalar("select chain_key from audit_event where action = 'team.created'")
        .fetch_one(&app.pool)
        .await
        .expect("chain");
    sqlx::query("delete from audit_event where chain_key = $1").bind(&chain).execute(&app.pool).await.expect("delete");
    sqlx::query("delete from audit_chain where chain_key = $1").bind(&chain).execute(&app.pool).await.expect("delete");
    for name in ["Quiet", "Nothing happened"] {
        app.call(Method::PATCH, "/api/v1/teams/one", &bearer(&ada), Some(json!({"name": name}))).await;
    }
    assert_eq!(verify(&app.pool).await.expect("verify").broken, None, "the rebuilt chain checks out by itself");
    let found = check_anchor(&app.pool, &anchor, key).await.expect("check").expect("the rewrite is found");
    assert_eq!(found.chain_key, chain);
    assert!(found.reason.contains("rewritten before the anchor"), "{}", found.reason);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn audit_verify_finds_a_deleted_event(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", false).await;
    app.call(Method::POST, "/api/v1/teams", &bearer(&ada), Some(json!({"slug": "one", "name": "one"}))).await;
    app.call(Method::PATCH, "/api/v1/teams/one", &bearer(&ada), Some(json!({"name": "Renamed"}))).await;
    sqlx::query("delete from audit_event where action = 'team.updated'").execute(&app.pool).await.expect("delete");
    let report = app::audit::domain::verify(&app.pool).await.expect("verify");
    assert!(report.broken.is_some(), "removing the newest event must be detected");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn cross_site_cookie_mutations_are_refused_but_bearer_calls_pass(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", false).await;
    let post = |auth: Option<String>, cookie: bool, site: &str| {
        let mut b = http::Request::builder()
            .method(Method::POST)
            .uri("/api/v1/teams")
            .header(header::CONTENT_TYPE, "application/json")
            .header("sec-fetch-site", site);
        if cookie {
            b = b.header(header::COOKIE, ada.cookie.as_str());
        }
        if let Some(t) = auth {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        b.body(axum::body::Body::from(format!(r#"{{"slug":"s-{}","name":"x"}}"#, site.len()))).expect("request")
    };
    assert_eq!(app.send(post(None, true, "cross-site")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("select count(*) from team").await, 0);
    assert_eq!(app.send(post(None, true, "same-origin")).await.status, StatusCode::CREATED);
    assert_eq!(app.send(post(Some(ada.token.clone()), false, "cross-site")).await.status, StatusCode::CREATED);
    // Origin check when Fetch Metadata is absent
    let req = http::Request::builder()
        .method(Method::POST)
        .uri("/rpc/create_team")
        .header(header::HOST, "capstan.test")
        .header(header::ORIGIN, "https://evil.example")
        .header(header::COOKIE, ada.cookie.as_str())
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(axum::body::Body::from("slug=evil&name=x"))
        .expect("request");
    assert_eq!(app.send(req).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("select count(*) from team where slug = 'evil'").await, 0);
}

/// Behind a proxy with Basic or Negotiate auth, browsers add `Authorization`
/// to cross-site form posts: only `Bearer` may skip the CSRF check, and any
/// other scheme never falls back to the session cookie.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_non_bearer_authorization_header_neither_skips_csrf_nor_uses_the_cookie(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", false).await;
    let post = |site: &str, slug: &str| {
        http::Request::builder()
            .method(Method::POST)
            .uri("/api/v1/teams")
            .header(header::CONTENT_TYPE, "application/json")
            .header("sec-fetch-site", site)
            .header(header::COOKIE, ada.cookie.as_str())
            .header(header::AUTHORIZATION, "Basic YWRhOnByb3h5LXBhc3N3b3Jk")
            .body(axum::body::Body::from(format!(r#"{{"slug":"{slug}","name":"x"}}"#)))
            .expect("request")
    };
    assert_eq!(app.send(post("cross-site", "forged")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.send(post("same-origin", "proxied")).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.count("select count(*) from team").await, 0);
    // the scheme is case-insensitive for real tokens
    let lower = http::Request::builder()
        .uri("/api/v1/me")
        .header(header::AUTHORIZATION, format!("bEaReR {}", ada.token))
        .body(axum::body::Body::empty())
        .expect("request");
    assert_eq!(app.send(lower).await.status, StatusCode::OK);
}

/// A client's `x-request-id` went into the audit chain as is: ids are the
/// server's own now, and HSTS is sent when the public URL is https.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn request_ids_are_the_servers_and_https_sites_send_hsts(pool: PgPool) {
    let opts = server::HttpOptions { public_origin: Some("https://capstan.example.com".into()), ..Default::default() };
    let app = TestApp::with_settings(pool, Default::default(), opts).await;
    let ada = app.user("ada@example.com", false).await;
    let req = http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/teams")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {}", ada.token))
        .header("x-request-id", "forged-id")
        .body(axum::body::Body::from(r#"{"slug":"one","name":"One"}"#))
        .expect("request");
    let res = app.send(req).await;
    assert_eq!(res.status, StatusCode::CREATED);
    let id = res.headers["x-request-id"].to_str().expect("id").to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "a server-made id: {id}");
    assert!(res.headers[header::STRICT_TRANSPORT_SECURITY].to_str().expect("hsts").contains("max-age="));
    let recorded: Option<String> =
        sqlx::query_scalar("select request_id from audit_event where action = 'team.created'")
            .fetch_one(&app.pool)
            .await
            .expect("event");
    assert_eq!(recorded.as_deref(), Some(id.as_str()));
}

/// NUL reached PostgreSQL and came back as 500; it is the caller's input.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn nul_bytes_in_paths_and_bodies_are_client_errors(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", false).await;
    let auth = bearer(&ada);
    let res = app.call(Method::GET, "/api/v1/teams/%00", &auth, None).await;
    assert!(res.status.is_client_error(), "{}: {}", res.status, res.text());
    let res = app.call(Method::POST, "/api/v1/teams", &auth, Some(json!({"slug": "ok", "name": "a\u{0}b"}))).await;
    assert!(res.status.is_client_error(), "{}: {}", res.status, res.text());
    let res = app.call(Method::POST, "/api/v1/teams", &auth, Some(json!({"slug": "ok", "name": "ok"}))).await;
    assert_eq!(res.status, StatusCode::CREATED);
    let res = app
        .call(Method::POST, "/api/v1/teams/ok/datasets", &auth, Some(json!({"name": "d", "description": "x\u{0}"})))
        .await;
    assert!(res.status.is_client_error(), "{}: {}", res.status, res.text());
    assert_eq!(app.count("select count(*) from dataset").await, 0, "nothing written");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_public_origin_passes_the_csrf_check_behind_a_proxy(pool: PgPool) {
    let opts = server::HttpOptions { public_origin: Some("https://capstan.example.com".into()), ..Default::default() };
    let app = TestApp::with_settings(pool, Default::default(), opts).await;
    let ada = app.user("ada@example.com", false).await;
    let post = |origin: &str, slug: &str| {
        http::Request::builder()
            .method(Method::POST)
            .uri("/rpc/create_team")
            .header(header::HOST, "10.0.0.5:3000")
            .header(header::ORIGIN, origin)
            .header(header::COOKIE, ada.cookie.as_str())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(axum::body::Body::from(format!("slug={slug}&name=x")))
            .expect("request")
    };
    assert_eq!(app.send(post("https://capstan.example.com", "proxied")).await.status, StatusCode::OK);
    assert_eq!(app.send(post("https://evil.example", "evil")).await.status, StatusCode::FORBIDDEN);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn operational_endpoints_and_headers(pool: PgPool) {
    let opts = server::HttpOptions { max_body_bytes: 1024, ..Default::default() };
    let app = TestApp::with_settings(pool, Default::default(), opts).await;
    let res = app.call(Method::GET, "/healthz", &Auth::None, None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.headers.contains_key("x-request-id"));
    assert!(!res.headers.contains_key(header::STRICT_TRANSPORT_SECURITY), "no HSTS over plain http");
    // /metrics can be kept for a scraper holding a token
    let opts = server::HttpOptions { metrics_token: Some("scrape-token-123".into()), ..Default::default() };
    let locked = TestApp::with_settings(app.pool.clone(), Default::default(), opts).await;
    assert_eq!(locked.call(Method::GET, "/metrics", &Auth::None, None).await.status, StatusCode::UNAUTHORIZED);
    let wrong = Auth::Bearer("scrape-token-124".into());
    assert_eq!(locked.call(Method::GET, "/metrics", &wrong, None).await.status, StatusCode::UNAUTHORIZED);
    let right = Auth::Bearer("scrape-token-123".into());
    assert_eq!(locked.call(Method::GET, "/metrics", &right, None).await.status, StatusCode::OK);
    let csp = res.headers[header::CONTENT_SECURITY_POLICY].to_str().expect("csp");
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(res.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(res.headers.contains_key(header::REFERRER_POLICY));

    assert_eq!(app.call(Method::GET, "/readyz", &Auth::None, None).await.status, StatusCode::OK);
    let metrics = app.call(Method::GET, "/metrics", &Auth::None, None).await.text();
    assert!(
        metrics.contains(r#"capstan_http_requests_total{method="GET",route="/readyz",status="200"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("capstan_http_request_duration_seconds_bucket"));
    assert!(metrics.contains("capstan_db_pool_connections"));

    let doc = app.call(Method::GET, "/api/v1/openapi.json", &Auth::None, None).await.json();
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));
    for path in [
        "/api/v1/me",
        "/api/v1/teams",
        "/api/v1/teams/{team}/members/{user_id}",
        "/api/v1/tokens/{token_id}",
        "/api/v1/audit-events",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    // errors are documented as they are sent: problem+json, with 401 on every
    // operation (all need a token) and 415 wherever a JSON body is taken
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item
            .as_object()
            .expect("item")
            .iter()
            .filter(|(m, _)| ["get", "put", "post", "delete", "patch"].contains(&m.as_str()))
        {
            operations += 1;
            let responses = op["responses"].as_object().expect("responses");
            assert!(responses.contains_key("401"), "{method} {path} documents 401");
            if op["requestBody"]["content"].get("application/json").is_some() {
                assert!(responses.contains_key("415"), "{method} {path} documents 415");
            }
            for (code, response) in responses.iter().filter(|(c, _)| c.starts_with('4') || c.starts_with('5')) {
                let types: Vec<&String> =
                    response["content"].as_object().map(|c| c.keys().collect()).unwrap_or_default();
                assert_eq!(types, ["application/problem+json"], "{method} {path} {code}");
            }
            // a parameter is in the path only if the path names it; the others are in the query
            for param in op["parameters"].as_array().into_iter().flatten() {
                let name = param["name"].as_str().expect("name");
                let place = if path.contains(&format!("{{{name}}}")) { "path" } else { "query" };
                assert_eq!(param["in"], place, "{method} {path} {name}");
                if name == "limit" {
                    assert_eq!(param["schema"]["minimum"], 1, "{method} {path} limit");
                    assert!(param["schema"]["maximum"].as_i64().is_some(), "{method} {path} limit");
                }
            }
            // a body is required where one is taken, and a JSON body refuses unknown fields
            if let Some(body) = op.get("requestBody") {
                assert_eq!(body["required"], true, "{method} {path}");
                if let Some(schema) = body["content"]["application/json"]["schema"]["$ref"].as_str() {
                    let name = schema.rsplit('/').next().expect("name");
                    let component = &doc["components"]["schemas"][name];
                    assert_eq!(component["additionalProperties"], false, "{method} {path} {name}");
                }
            }
        }
    }
    assert!(operations > 30, "{operations} operations documented");
    // one component per wire type: the model and the dataset version statuses are two
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["ModelVersionStatus"]["enum"],
        json!(["PendingManualApproval", "Approved", "Rejected", "Archived"])
    );
    assert!(schemas["VersionStatus"]["enum"].as_array().is_some_and(|e| e.contains(&json!("ready"))));
    // text fields say which characters they take, and named fields their own rules
    let team = &doc["components"]["schemas"]["NewTeam"]["properties"];
    assert_eq!(team["slug"]["pattern"], "^[a-z0-9-]{2,40}$");
    let text = doc["components"]["schemas"]["NewDataset"]["properties"]["description"]["pattern"].as_str();
    assert!(text.is_some_and(|p| p.contains("\\x00-\\x08")), "{text:?}");
    // authentication comes first: no credentials is a 401 even with a bad query or body
    let res = app
        .call(Method::GET, &format!("/api/v1/dataset-versions/{}/preview", uuid::Uuid::nil()), &Auth::None, None)
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    let res = app.call(Method::GET, "/api/v1/teams?limit=0", &Auth::None, None).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    let docs = app.call(Method::GET, "/api/docs/", &Auth::None, None).await;
    assert_eq!(docs.status, StatusCode::OK);
    assert!(!docs.text().contains("cdn"), "API reference is served locally");

    let ada = app.user("ada@example.com", false).await;
    let big = json!({"slug": "x".repeat(4096), "name": "x"});
    let res = app.call(Method::POST, "/api/v1/teams", &bearer(&ada), Some(big)).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    // undecodable server-function arguments are a client error, not a 500
    let res = app.server_fn("get_dataset", &Auth::Cookie(ada.cookie.clone()), &[("id", "not-a-uuid")]).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    let res = app.call(Method::GET, "/api/v1/nope", &bearer(&ada), None).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.headers[header::CONTENT_TYPE], "application/problem+json");
    // a whole number written with a fraction is an integer, as JSON Schema counts it
    let res = app.call(Method::POST, "/api/v1/teams", &bearer(&ada), Some(json!({"slug": "ok", "name": "Ok"}))).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let dataset = app
        .call(Method::POST, "/api/v1/teams/ok/datasets", &bearer(&ada), Some(json!({"name": "d"})))
        .await
        .json()["id"]
        .as_str()
        .expect("dataset")
        .to_owned();
    let files = json!({"files": [{"path": "a.csv", "size": 3.0}]});
    let res = app.call(Method::POST, &format!("/api/v1/datasets/{dataset}/uploads"), &bearer(&ada), Some(files)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    // an empty expiry is not a time (omit it, or send null, for a token that does not expire)
    let res =
        app.call(Method::POST, "/api/v1/tokens", &bearer(&ada), Some(json!({"name": "t", "expires_at": ""}))).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    // a body is an object: serde would read a struct of optional fields from an array
    let res = app.call(Method::PATCH, "/api/v1/teams/ok", &bearer(&ada), Some(json!([null, null]))).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    // a team is addressed by its slug or its id
    let team = app.call(Method::GET, "/api/v1/teams/ok", &bearer(&ada), None).await.json();
    let by_id = app
        .call(Method::GET, &format!("/api/v1/teams/{}", team["id"].as_str().expect("id")), &bearer(&ada), None)
        .await;
    assert_eq!((by_id.status, by_id.json()["slug"].as_str()), (StatusCode::OK, Some("ok")));
    // an upload that is not multipart is a 415, as problem+json
    let res = app.call(Method::POST, "/api/v1/teams/ok/training-sources", &bearer(&ada), Some(json!({}))).await;
    assert_eq!(res.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", res.text());
    assert_eq!(res.headers[header::CONTENT_TYPE], "application/problem+json");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn site_admins_create_accounts_and_bad_input_writes_nothing(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let root = app.user("root@example.com", true).await;
    let users = app.count("select count(*) from app_user").await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/users",
            &bearer(&root),
            Some(json!({"email": "not-an-email", "display_name": "", "password": "short"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> = res.json()["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(fields, ["email", "display_name", "password"]);
    let res = app
        .call(
            Method::POST,
            "/api/v1/users",
            &bearer(&root),
            Some(json!({"email": "ROOT@example.com", "display_name": "Dup", "password": "long enough password"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert_eq!(res.json()["errors"][0]["field"], "email");
    assert_eq!(app.count("select count(*) from app_user").await, users);

    let res = app
        .call(
            Method::POST,
            "/api/v1/users",
            &bearer(&root),
            Some(json!({"email": "new@example.com", "display_name": "New", "password": "long enough password"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    assert_eq!(res.json()["is_site_admin"], false);
    app.login("new@example.com", "long enough password").await.expect("the new account can sign in");
    let actor: String = sqlx::query_scalar(
        "select actor_label from audit_event where action = 'user.created' order by occurred_at desc limit 1",
    )
    .fetch_one(&app.pool)
    .await
    .expect("event");
    assert_eq!(actor, "root@example.com");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn audit_events_of_other_teams_stay_hidden(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", false).await;
    let bob = app.user("bob@example.com", false).await;
    app.call(Method::POST, "/api/v1/teams", &bearer(&ada), Some(json!({"slug": "secret", "name": "Secret"}))).await;
    app.call(Method::POST, "/api/v1/teams", &bearer(&bob), Some(json!({"slug": "open", "name": "Open"}))).await;
    let page = app.call(Method::GET, "/api/v1/audit-events?limit=200", &bearer(&bob), None).await.json();
    let slugs: Vec<&str> =
        page["items"].as_array().expect("items").iter().filter_map(|e| e["team_slug"].as_str()).collect();
    assert!(slugs.contains(&"open"), "{slugs:?}");
    assert!(!slugs.contains(&"secret"), "bob must not see another team's events: {slugs:?}");
    let actors: Vec<&str> =
        page["items"].as_array().expect("items").iter().filter_map(|e| e["actor"].as_str()).collect();
    assert!(actors.iter().all(|a| *a == "bob@example.com" || *a == "test"), "{actors:?}");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn not_ready_without_object_storage(pool: PgPool) {
    let mut app = TestApp::new(pool).await;
    assert_eq!(app.call(Method::GET, "/readyz", &Auth::None, None).await.status, StatusCode::OK);
    app.s3.take().expect("running").stop().await;
    let res = app.call(Method::GET, "/readyz", &Auth::None, None).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.text(), "object storage unreachable");
    assert_eq!(app.call(Method::GET, "/healthz", &Auth::None, None).await.status, StatusCode::OK);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn datasets_are_named_uniquely_searched_and_archived(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", false).await;
    let bob = app.user("bob@example.com", false).await;
    app.call(Method::POST, "/api/v1/teams", &bearer(&ada), Some(json!({"slug": "vision", "name": "Vision"}))).await;
    let create = |name: &str, tags: serde_json::Value| json!({"name": name, "description": "d", "tags": tags});
    let res = app
        .call(
            Method::POST,
            "/api/v1/teams/vision/datasets",
            &bearer(&ada),
            Some(create("churn", json!(["Tabular", "tabular"]))),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    assert_eq!(res.json()["tags"], json!(["tabular"]));
    let churn = res.json()["id"].as_str().expect("id").to_owned();
    app.call(Method::POST, "/api/v1/teams/vision/datasets", &bearer(&ada), Some(create("images", json!(["cv"])))).await;

    let before = app.count("select count(*) from audit_event").await;
    let res =
        app.call(Method::POST, "/api/v1/teams/vision/datasets", &bearer(&ada), Some(create("churn", json!([])))).await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert_eq!(res.json()["errors"][0]["field"], "name");
    let res = app
        .call(Method::POST, "/api/v1/teams/vision/datasets", &bearer(&ada), Some(create("Bad Name/", json!(["a,b"]))))
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = res.json()["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or(""))
        .map(|f| if f == "name" { "name" } else { "tags" })
        .collect();
    assert_eq!(fields, ["name", "tags"]);
    assert_eq!(app.count("select count(*) from dataset").await, 2);
    assert_eq!(app.count("select count(*) from audit_event").await, before);

    let names = |page: serde_json::Value| -> Vec<String> {
        page["items"].as_array().expect("items").iter().map(|d| d["name"].as_str().unwrap_or("").to_owned()).collect()
    };
    let all = app.call(Method::GET, "/api/v1/teams/vision/datasets", &bearer(&ada), None).await.json();
    assert_eq!(names(all), ["churn", "images"]);
    let by_tag = app.call(Method::GET, "/api/v1/teams/vision/datasets?q=CV", &bearer(&ada), None).await.json();
    assert_eq!(names(by_tag), ["images"]);
    let by_name = app.call(Method::GET, "/api/v1/teams/vision/datasets?q=chu", &bearer(&ada), None).await.json();
    assert_eq!(names(by_name), ["churn"]);

    let res = app.call(Method::POST, &format!("/api/v1/datasets/{churn}/archive"), &bearer(&ada), None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.json()["archived_at"].is_string());
    let listed = app.call(Method::GET, "/api/v1/teams/vision/datasets", &bearer(&ada), None).await.json();
    assert_eq!(names(listed), ["images"]);
    let with_archived =
        app.call(Method::GET, "/api/v1/teams/vision/datasets?archived=true", &bearer(&ada), None).await.json();
    assert_eq!(names(with_archived), ["churn", "images"]);
    let still = app.call(Method::GET, &format!("/api/v1/datasets/{churn}"), &bearer(&ada), None).await;
    assert_eq!(still.status, StatusCode::OK, "archived datasets stay resolvable");
    // another team's dataset is not found, not forbidden
    let res = app.call(Method::GET, &format!("/api/v1/datasets/{churn}"), &bearer(&bob), None).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let res = app.call(Method::GET, "/api/v1/datasets/not-a-uuid", &bearer(&ada), None).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn unknown_json_fields_are_refused_by_name_and_write_nothing(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", false).await;
    let tokens = app.count("select count(*) from api_token").await;
    // a misspelt lifetime must not give a token that never expires
    let res = app
        .call(Method::POST, "/api/v1/tokens", &bearer(&ada), Some(json!({"name": "ci", "expires_in_days": 30})))
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    let body = res.json();
    assert_eq!(body["errors"][0]["field"], "expires_in_days");
    assert!(body["errors"][0]["message"].as_str().is_some_and(|m| m.contains("expires_at")), "{body}");
    assert_eq!(app.count("select count(*) from api_token").await, tokens, "no token was created");
    // the same for every request body
    let res = app
        .call(
            Method::POST,
            "/api/v1/teams",
            &bearer(&ada),
            Some(json!({"slug": "vision", "name": "Vision", "owner": "x"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    assert_eq!(res.json()["errors"][0]["field"], "owner");
    assert_eq!(app.count("select count(*) from team").await, 0);
}

/// `body` with one string at a time replaced by `value`.
fn with_each_string(body: &Value, value: &str) -> Vec<Value> {
    fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::String(_) => out.push(at),
            Value::Array(items) => items.iter().enumerate().for_each(|(i, x)| pointers(x, format!("{at}/{i}"), out)),
            Value::Object(map) => map.iter().for_each(|(k, x)| pointers(x, format!("{at}/{k}"), out)),
            _ => {}
        }
    }
    let mut at = Vec::new();
    pointers(body, String::new(), &mut at);
    at.into_iter()
        .map(|p| {
            let mut b = body.clone();
            if let Some(slot) = b.pointer_mut(&p) {
                *slot = Value::String(value.to_owned());
            }
            b
        })
        .collect()
}

/// NUL and other control characters in every string field of every create
/// and update route: refused as the caller's input, never a 5xx.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn control_characters_in_any_field_never_answer_5xx(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", true).await;
    let auth = bearer(&ada);
    app.team_with_members("ml", &auth, &[]).await;
    let res = app.call(Method::POST, "/api/v1/teams/ml/datasets", &auth, Some(json!({"name": "base"}))).await;
    let dataset = res.json()["id"].as_str().expect("id").to_owned();
    let routes: Vec<(Method, String, Value)> = vec![
        (Method::POST, "/api/v1/teams".into(), json!({"slug": "t-one", "name": "T"})),
        (
            Method::PATCH,
            "/api/v1/teams/ml".into(),
            json!({"name": "ML", "sagemaker_role_arn": "arn:aws:iam::123456789012:role/X"}),
        ),
        (Method::POST, "/api/v1/teams/ml/members".into(), json!({"email": "bob@example.com", "role": "viewer"})),
        (Method::POST, "/api/v1/tokens".into(), json!({"name": "ci", "expires_at": "2030-01-01T00:00:00Z"})),
        (
            Method::POST,
            "/api/v1/users".into(),
            json!({"email": "c@example.com", "display_name": "C", "password": "long enough password"}),
        ),
        (Method::POST, "/api/v1/teams/ml/datasets".into(), json!({"name": "d1", "description": "x", "tags": ["a"]})),
        (Method::PATCH, format!("/api/v1/datasets/{dataset}"), json!({"description": "y", "tags": ["b"]})),
        (Method::POST, format!("/api/v1/datasets/{dataset}/versions"), json!({"source_uri": "s3://capstan/fuzz/"})),
        (Method::POST, format!("/api/v1/datasets/{dataset}/uploads"), json!({"files": [{"path": "a.csv", "size": 3}]})),
        (
            Method::POST,
            "/api/v1/teams/ml/training-jobs".into(),
            json!({"name": "j", "entry_point": "train.py", "source_uri": "s3://capstan/jobs/ml/sources/x/sourcedir.tar.gz",
                   "instance_type": "ml.m5.large", "hyperparameters": [{"key": "k", "value": "v"}],
                   "metric_definitions": [{"name": "loss", "regex": "loss=([0-9.]+)"}], "tags": [{"key": "a", "value": "b"}],
                   "output_uri": "s3://capstan/jobs/ml/", "role_arn": "", "framework": "sklearn-1.2"}),
        ),
    ];
    let mut fives = Vec::new();
    for (method, path, body) in &routes {
        for value in ["\u{0}", "a\u{0}b", "\u{1b}[2J", "x\u{7f}", "\u{0}/../x"] {
            for variant in with_each_string(body, value) {
                let res = app.call(method.clone(), path, &auth, Some(variant.clone())).await;
                if res.status.is_server_error() {
                    fives.push(format!("{method} {path} {variant}: {} {}", res.status, res.text()));
                }
            }
        }
        // and in the path
        let res = app.call(method.clone(), &format!("{path}%00"), &auth, Some(body.clone())).await;
        if res.status.is_server_error() {
            fives.push(format!("{method} {path}%00: {}", res.status));
        }
    }
    assert!(fives.is_empty(), "5xx answers:\n{}", fives.join("\n"));
    // and the field is named, nothing written
    let body = json!({"name": "d2", "description": "ok", "tags": ["fine", "bad\u{0}"]});
    let res = app.call(Method::POST, "/api/v1/teams/ml/datasets", &auth, Some(body)).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    assert_eq!(res.json()["errors"][0]["field"], "tags[1]");
    let body = json!({"name": "d3", "description": "two\nlines\twith a tab"});
    let res = app.call(Method::POST, "/api/v1/teams/ml/datasets", &auth, Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "line breaks and tabs are text: {}", res.text());
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn housekeeping_runs_in_one_process_at_a_time(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let old = "insert into login_attempt (email, client_addr, succeeded, created_at)
               values ('old@example.com', '203.0.113.9', false, now() - interval '2 days')";
    sqlx::query(old).execute(&app.pool).await.expect("row");
    // another process is housekeeping (it holds the lock): this one skips its round
    let mut other = app.pool.begin().await.expect("tx");
    let held: bool = sqlx::query_scalar("select pg_try_advisory_xact_lock($1)")
        .bind(server::workers::HOUSEKEEPING_LOCK)
        .fetch_one(&mut *other)
        .await
        .expect("lock");
    assert!(held);
    assert!(!server::workers::housekeep_once(&app.state).await.expect("round"), "skipped while another runs it");
    assert_eq!(app.count("select count(*) from login_attempt").await, 1, "nothing done");
    // the other process finished (or died): this one does the round
    other.rollback().await.expect("release");
    assert!(server::workers::housekeep_once(&app.state).await.expect("round"));
    assert_eq!(app.count("select count(*) from login_attempt").await, 0, "old attempts deleted");
}
