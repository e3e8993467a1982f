//! Change requests: proposed by members, decided by the reviewers a team's
//! policy names, applied once by the worker — with the refusals that write
//! nothing, quorum, self-approval, expiry, staleness, edits that reset the
//! approvals, a race of two approvers and a crash between applying and
//! recording.

mod common;

use common::{Auth, TestApp};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

struct Fixture {
    app: TestApp,
    admin: Auth,
    admin_id: uuid::Uuid,
    approver: Auth,
    approver2: Auth,
    member: Auth,
    viewer: Auth,
    outsider: Auth,
    site_admin: Auth,
    model: String,
    v1: String,
    v2: String,
    v3: String,
}

/// Team `ml` (admin, two approvers, member, viewer) with model `churn`
/// (versions 1-3 from artifacts), its protected alias `champion` on v1;
/// team `beta` with its own admin.
async fn fixture(pool: PgPool) -> Fixture {
    let app = TestApp::new(pool).await;
    let mut auth = Vec::new();
    let mut admin_id = None;
    for email in ["admin", "approver", "approver2", "member", "viewer", "outsider", "site"] {
        let user = app.user(&format!("{email}@example.com"), email == "site").await;
        admin_id = admin_id.or(Some(user.id));
        auth.push(Auth::Bearer(user.token));
    }
    let Ok([admin, approver, approver2, member, viewer, outsider, site_admin]) = <[Auth; 7]>::try_from(auth) else {
        panic!("7 users")
    };
    let members = [
        ("approver@example.com", "approver"),
        ("approver2@example.com", "approver"),
        ("member@example.com", "member"),
        ("viewer@example.com", "viewer"),
    ];
    app.team_with_members("ml", &admin, &members).await;
    app.team_with_members("beta", &outsider, &[]).await;
    let res = app.call(Method::POST, "/api/v1/teams/ml/models", &admin, Some(json!({"name": "churn"}))).await;
    let model = res.json()["id"].as_str().expect("id").to_owned();
    app.put("capstan", "models/ml/churn/model.tar.gz", "model").await;
    let mut versions = Vec::new();
    for auc in [0.81, 0.86, 0.84] {
        let body = json!({"artifact_uri": "s3://capstan/models/ml/churn/model.tar.gz", "metrics": {"auc": auc}});
        let res = app.call(Method::POST, &format!("/api/v1/models/{model}/versions"), &admin, Some(body)).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        versions.push(res.json()["id"].as_str().expect("id").to_owned());
    }
    let alias = format!("/api/v1/models/{model}/aliases/champion");
    let res = app.call(Method::PUT, &alias, &admin, Some(json!({"version_id": versions[0]}))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let res = app.call(Method::POST, &format!("{alias}/protect"), &admin, None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let Ok([v1, v2, v3]) = <[String; 3]>::try_from(versions) else { panic!("3 versions") };
    let admin_id = admin_id.expect("admin");
    Fixture { app, admin, admin_id, approver, approver2, member, viewer, outsider, site_admin, model, v1, v2, v3 }
}

impl Fixture {
    async fn open(&self, who: &Auth, change: Value) -> common::Response {
        let body = json!({"change": change, "title": "Promote the better model", "justification": "AUC is higher"});
        self.app.call(Method::POST, "/api/v1/teams/ml/change-requests", who, Some(body)).await
    }

    fn move_to(&self, version: &str) -> Value {
        json!({"kind": "alias.move", "model_id": self.model, "alias": "champion", "version_id": version})
    }

    async fn decide(&self, who: &Auth, id: &str, decision: &str) -> common::Response {
        let path = format!("/api/v1/change-requests/{id}/{decision}");
        self.app.call(Method::POST, &path, who, Some(json!({"comment": "looked at it"}))).await
    }

    async fn request(&self, id: &str) -> Value {
        self.app.call(Method::GET, &format!("/api/v1/change-requests/{id}"), &self.admin, None).await.json()
    }

    async fn champion(&self) -> i64 {
        let path = format!("/api/v1/models/{}/aliases/champion", self.model);
        self.app.call(Method::GET, &path, &self.viewer, None).await.json()["number"].as_i64().expect("number")
    }

    async fn apply(&self) -> usize {
        app::approvals::apply::apply_due(&self.app.state).await.expect("apply")
    }

    async fn history_len(&self) -> i64 {
        self.app.count("select count(*) from model_alias_history where alias = 'champion'").await
    }
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_protected_alias_moves_once_approved_by_an_eligible_reviewer_and_exactly_once(pool: PgPool) {
    let f = fixture(pool).await;
    // moving the protected alias directly points at change requests, and writes nothing
    let path = format!("/api/v1/models/{}/aliases/champion", f.model);
    let res = f.app.call(Method::PUT, &path, &f.member, Some(json!({"version_id": f.v2}))).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
    assert!(res.text().contains("/api/v1/teams/ml/change-requests"), "{}", res.text());
    assert_eq!(f.champion().await, 1);

    // bad requests write nothing
    let before = f.app.count("select count(*) from change_request").await;
    for (who, change, status) in [
        (&f.viewer, f.move_to(&f.v2), StatusCode::FORBIDDEN),
        (&f.member, f.move_to(&f.v1), StatusCode::UNPROCESSABLE_ENTITY),
        (
            &f.member,
            json!({"kind": "alias.move", "model_id": f.model, "alias": "Champion!", "version_id": f.v2}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (&f.member, json!({"kind": "alias.delete", "model_id": f.model, "alias": "nobody"}), StatusCode::NOT_FOUND),
        (
            &f.member,
            json!({"kind": "version.status", "version_id": f.v1, "status": "Archived"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (&f.outsider, f.move_to(&f.v2), StatusCode::NOT_FOUND),
    ] {
        let res = f.open(who, change.clone()).await;
        assert_eq!(res.status, status, "{change}: {}", res.text());
    }
    let res = f
        .app
        .call(
            Method::POST,
            "/api/v1/teams/beta/change-requests",
            &f.outsider,
            Some(json!({"change": f.move_to(&f.v2), "title": "theirs"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "another team's model is not found: {}", res.text());
    let res = f
        .app
        .call(
            Method::POST,
            "/api/v1/teams/ml/change-requests",
            &f.member,
            Some(json!({"change": f.move_to(&f.v2), "title": " "})),
        )
        .await;
    assert_eq!(
        (res.status, res.json()["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("title"))
    );
    assert_eq!(f.app.count("select count(*) from change_request").await, before);

    // the member proposes; the diff shows v1 → v2 with their metrics
    let res = f.open(&f.member, f.move_to(&f.v2)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let r = res.json();
    let id = r["id"].as_str().expect("id").to_owned();
    assert_eq!(
        (r["state"].as_str(), r["diff"]["before"].as_str(), r["diff"]["after"].as_str()),
        (Some("open"), Some("v1"), Some("v2"))
    );
    assert_eq!(r["diff"]["versions"][1]["metrics"]["auc"], 0.86);
    assert_eq!(r["rule"], json!({"approvals_required": 1, "min_role": "approver", "require_admin": false}));

    // who may decide: not the author, not a viewer or member, not another team
    for (who, status) in [
        (&Auth::None, StatusCode::UNAUTHORIZED),
        (&f.member, StatusCode::CONFLICT),
        (&f.viewer, StatusCode::FORBIDDEN),
        (&f.outsider, StatusCode::NOT_FOUND),
    ] {
        assert_eq!(f.decide(who, &id, "approve").await.status, status);
        assert_eq!(f.decide(who, &id, "reject").await.status, status);
    }
    assert_eq!(f.request(&id).await["state"], "open");
    // the inbox and the badge count it for the approver, not for the author
    let waiting = async |who: &Auth| {
        let path = "/api/v1/teams/ml/change-requests?needs_my_review=true";
        f.app.call(Method::GET, path, who, None).await.json()["items"].as_array().map_or(0, Vec::len)
    };
    assert_eq!((waiting(&f.approver).await, waiting(&f.member).await), (1, 0));

    let res = f.decide(&f.approver, &id, "approve").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["state"], "approved");
    assert_eq!(f.app.count("select count(*) from change_request_outbox").await, 1);
    assert_eq!(
        f.decide(&f.approver2, &id, "approve").await.status,
        StatusCode::CONFLICT,
        "approved: not open any more"
    );
    assert_eq!(f.apply().await, 1);
    let r = f.request(&id).await;
    assert_eq!(r["state"], "applied", "{r}");
    assert_eq!(f.champion().await, 2);
    let history = f
        .app
        .call(Method::GET, &format!("/api/v1/models/{}/aliases/champion/history", f.model), &f.viewer, None)
        .await
        .json();
    let reason = history["items"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(&id) && reason.contains("approver@example.com"), "{history}");
    assert_eq!(history["items"][0]["changed_by"], "member@example.com", "who asked");
    let timeline: Vec<&str> =
        r["timeline"].as_array().expect("timeline").iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(timeline, ["open", "approve", "apply", "succeed"]);
    assert_eq!(f.apply().await, 0, "nothing left in the outbox");
    // the history of the alias and of both versions, read from the audit log, names the request and both people
    let changes = f
        .app
        .call(Method::GET, &format!("/api/v1/models/{}/aliases/champion/changes", f.model), &f.viewer, None)
        .await
        .json();
    let moved = &changes[0];
    assert_eq!((moved["what"].as_str(), moved["by"].as_str()), (Some("champion: v1 → v2"), Some("member@example.com")));
    assert_eq!(moved["request"]["id"], id.as_str(), "{changes}");
    assert_eq!(moved["request"]["title"], "Promote the better model");
    assert_eq!(moved["request"]["author"], "member@example.com");
    assert_eq!(moved["request"]["approvers"], json!(["approver@example.com"]), "the approval that counted");
    let kinds: Vec<&str> = changes.as_array().expect("list").iter().filter_map(|c| c["action"].as_str()).collect();
    assert_eq!(kinds, ["model_alias.set", "model_alias.protected", "model_alias.set"], "newest first");
    assert!(changes[1]["request"].is_null() && changes[2]["what"] == "champion set → v1", "{changes}");
    for (version, what) in [(&f.v2, "champion: v1 → v2"), (&f.v1, "champion: v1 → v2")] {
        let path = format!("/api/v1/model-versions/{version}/changes");
        let list = f.app.call(Method::GET, &path, &f.viewer, None).await.json();
        assert_eq!(list[0]["what"], what, "{list}");
        assert_eq!(list[0]["request"]["approvers"], json!(["approver@example.com"]), "{list}");
        assert_eq!(
            list.as_array().and_then(|l| l.last()).map(|c| c["action"].clone()),
            Some(json!("model_version.registered"))
        );
    }
    let res = f
        .app
        .call(Method::GET, &format!("/api/v1/models/{}/aliases/champion/changes", f.model), &f.outsider, None)
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "another team's history is not there");

    // a crash after the change committed, before the request recorded it: the retry records, and does not move again
    let id = f.open(&f.member, f.move_to(&f.v3)).await.json()["id"].as_str().expect("id").to_owned();
    assert_eq!(f.decide(&f.approver, &id, "approve").await.status, StatusCode::OK);
    let crashed = app::kernel::context::Ctx {
        state: f.app.state.clone(),
        actor: app::kernel::context::actor_by_id(&f.app.pool, f.admin_id).await.expect("actor"),
        request_id: None,
        client_addr: "test".into(),
    };
    let input = app::registry::types::SetAlias {
        version_id: f.v3.parse().expect("uuid"),
        reason: "applied, then the process died".into(),
    };
    let route = app::registry::gate::Route::ChangeRequest(id.parse().expect("uuid"));
    app::registry::aliases::set(&crashed, f.model.parse().expect("uuid"), "champion", input, route)
        .await
        .expect("applied");
    let moves = f.history_len().await;
    assert_eq!(f.apply().await, 1);
    assert_eq!((f.request(&id).await["state"].as_str(), f.champion().await), (Some("applied"), 3));
    assert_eq!(f.history_len().await, moves, "applied once");
    // and a second application of the same request is refused by the registry itself
    let again = app::registry::types::SetAlias { version_id: f.v1.parse().expect("uuid"), reason: String::new() };
    let res = app::registry::aliases::set(&crashed, f.model.parse().expect("uuid"), "champion", again, route).await;
    assert!(matches!(res, Err(app::kernel::error::AppError::Conflict { .. })), "{res:?}");
    assert_eq!(f.champion().await, 3);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn policies_set_the_quorum_and_edits_expiry_staleness_and_rejection_close_requests(pool: PgPool) {
    let f = fixture(pool).await;
    // bad policies write nothing
    for (policy, field) in [
        (
            json!({"kind": "alias.move", "approvals_required": 0, "min_role": "approver", "expires_after_hours": 24}),
            "policies[0].approvals_required",
        ),
        (
            json!({"kind": "alias.move", "approvals_required": 11, "min_role": "approver", "expires_after_hours": 24}),
            "policies[0].approvals_required",
        ),
        (
            json!({"kind": "alias.rename", "approvals_required": 1, "min_role": "approver", "expires_after_hours": 24}),
            "policies[0].kind",
        ),
        (
            json!({"kind": "alias.move", "approvals_required": 1, "min_role": "approver", "expires_after_hours": 2161}),
            "policies[0].expires_after_hours",
        ),
        (
            json!({"kind": "alias.move", "approvals_required": 1, "min_role": "approver", "expires_after_hours": 0}),
            "policies[0].expires_after_hours",
        ),
    ] {
        let res = f
            .app
            .call(Method::PUT, "/api/v1/teams/ml/approval-policies", &f.admin, Some(json!({"policies": [policy]})))
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
        assert_eq!(res.json()["errors"][0]["field"], field, "{}", res.text());
    }
    let res = f.app.call(Method::PUT, "/api/v1/teams/ml/approval-policies", &f.admin,
        Some(json!({"policies": [{"kind": "alias.move", "approvals_required": 1, "min_role": "owner", "expires_after_hours": 24}]}))).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "a role that is not one of the four: {}", res.text());
    assert_eq!(res.json()["errors"][0]["field"], "policies[0].min_role");
    assert_eq!(f.app.count("select count(*) from approval_policy").await, 0);
    let policies = json!({"policies": [
        {"kind": "alias.move", "model_id": f.model, "alias": "champion", "approvals_required": 2, "min_role": "approver",
         "require_admin": true, "expires_after_hours": 24},
        {"kind": "version.status", "approvals_required": 1, "min_role": "approver", "expires_after_hours": 24},
    ]});
    assert_eq!(
        f.app.call(Method::PUT, "/api/v1/teams/ml/approval-policies", &f.member, Some(policies.clone())).await.status,
        StatusCode::FORBIDDEN
    );
    let res = f.app.call(Method::PUT, "/api/v1/teams/ml/approval-policies", &f.admin, Some(policies)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(f.app.audit_count("approval_policies.updated").await, 1);

    // 2 approvals, one of them an admin's; an edit clears those given
    let id = f.open(&f.member, f.move_to(&f.v2)).await.json()["id"].as_str().expect("id").to_owned();
    assert_eq!(f.decide(&f.approver, &id, "approve").await.json()["approvals"], 1);
    assert_eq!(f.decide(&f.approver, &id, "approve").await.json()["approvals"], 1, "the same approver counts once");
    let res = f
        .app
        .call(
            Method::PATCH,
            &format!("/api/v1/change-requests/{id}"),
            &f.member,
            Some(json!({"title": "Promote v3 instead", "change": f.move_to(&f.v3)})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!((res.json()["approvals"].as_i64(), res.json()["revision"].as_i64()), (Some(0), Some(2)));
    assert_eq!(
        f.app
            .call(
                Method::PATCH,
                &format!("/api/v1/change-requests/{id}"),
                &f.approver,
                Some(json!({"title": "mine now"}))
            )
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(f.decide(&f.approver, &id, "approve").await.json()["state"], "open");
    assert_eq!(f.decide(&f.approver2, &id, "approve").await.json()["state"], "open", "two approvers, but no admin yet");
    assert_eq!(f.decide(&f.admin, &id, "approve").await.json()["state"], "approved");
    f.apply().await;
    assert_eq!(f.champion().await, 3);

    // a status decision under a policy: not directly, but by request
    let status = format!("/api/v1/model-versions/{}/status", f.v2);
    let res = f.app.call(Method::POST, &status, &f.approver, Some(json!({"status": "Approved"}))).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
    assert!(res.text().contains("change-requests"), "{}", res.text());
    let id = f
        .open(&f.member, json!({"kind": "version.status", "version_id": f.v2, "status": "Approved"}))
        .await
        .json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        f.decide(&f.site_admin, &id, "approve").await.json()["state"],
        "approved",
        "site admins review as admins"
    );
    f.apply().await;
    let v2 = f.app.call(Method::GET, &format!("/api/v1/model-versions/{}", f.v2), &f.viewer, None).await.json();
    assert_eq!(v2["status"], "Approved");

    // rejection is final; withdrawal is the author's
    let id = f.open(&f.member, f.move_to(&f.v1)).await.json()["id"].as_str().expect("id").to_owned();
    assert_eq!(f.decide(&f.approver, &id, "reject").await.json()["state"], "rejected");
    let res = f.decide(&f.admin, &id, "approve").await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert!(res.text().contains("rejected"), "{}", res.text());
    let id = f.open(&f.member, f.move_to(&f.v1)).await.json()["id"].as_str().expect("id").to_owned();
    assert_eq!(f.decide(&f.approver, &id, "withdraw").await.status, StatusCode::FORBIDDEN);
    assert_eq!(f.decide(&f.member, &id, "withdraw").await.json()["state"], "withdrawn");

    // expiry, by the worker
    let id = f.open(&f.member, f.move_to(&f.v1)).await.json()["id"].as_str().expect("id").to_owned();
    sqlx::query("update change_request set expires_at = now() - interval '1 minute' where request_id = $1::uuid")
        .bind(&id)
        .execute(&f.app.pool)
        .await
        .expect("age");
    assert_eq!(app::approvals::apply::expire_due(&f.app.state).await.expect("expire"), 1);
    let res = f.decide(&f.approver, &id, "approve").await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert!(res.text().contains("expired"), "{}", res.text());

    // stale: the target changed since the request was proposed
    let id = f.open(&f.member, f.move_to(&f.v1)).await.json()["id"].as_str().expect("id").to_owned();
    let alias = format!("/api/v1/models/{}/aliases/champion", f.model);
    assert_eq!(
        f.app
            .call(Method::PUT, "/api/v1/teams/ml/approval-policies", &f.admin, Some(json!({"policies": []})))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(f.app.call(Method::POST, &format!("{alias}/unprotect"), &f.admin, None).await.status, StatusCode::OK);
    assert_eq!(
        f.app.call(Method::PUT, &alias, &f.admin, Some(json!({"version_id": f.v2}))).await.status,
        StatusCode::OK
    );
    let res = f.decide(&f.approver, &id, "approve").await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
    assert_eq!(f.request(&id).await["state"], "stale");
    assert_eq!(f.champion().await, 2, "a stale request changes nothing");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn two_approvers_at_the_same_instant_reach_the_quorum_once(pool: PgPool) {
    let f = fixture(pool).await;
    for round in 0..5 {
        let to = if round % 2 == 0 { &f.v2 } else { &f.v1 };
        let id = f.open(&f.member, f.move_to(to)).await.json()["id"].as_str().expect("id").to_owned();
        let (a, b) = tokio::join!(f.decide(&f.approver, &id, "approve"), f.decide(&f.approver2, &id, "approve"));
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "one approval reaches the quorum, the other finds it approved");
        assert_eq!(f.app.count("select count(*) from change_request_outbox").await, 1);
        let moves = f.history_len().await;
        f.apply().await;
        assert_eq!(f.history_len().await, moves + 1, "applied once");
        assert_eq!(f.request(&id).await["state"], "applied");
    }
}

/// The demo lets one new user try a change request from both sides: a site
/// admin's demo creates a second user (an approver of the demo team, its
/// password shown once), and once the job is version 1 of `churn`,
/// `champion` is protected with the policy "1 approval by an approver".
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_demo_gives_a_protected_champion_a_policy_and_a_second_user_to_approve(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", true).await;
    let ada_bearer = Auth::Bearer(ada.token.clone());
    let res = app.server_fn("create_demo", &Auth::Cookie(ada.cookie.clone()), &[]).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let demo = res.json();
    let email = demo["reviewer"]["email"].as_str().expect("a reviewer").to_owned();
    let password = demo["reviewer"]["password"].as_str().expect("its password").to_owned();
    assert!(password.len() >= 12);
    // the password is shown once: a second demo run does not show it again
    let again = app.server_fn("create_demo", &Auth::Cookie(ada.cookie.clone()), &[]).await;
    assert_eq!(again.status, StatusCode::OK, "a second run at once is a second job: {}", again.text());
    let again = again.json();
    assert!(again["reviewer"].is_null(), "{again}");
    let stored = app.count(&format!("select count(*) from app_user where password_hash like '%{password}%'")).await;
    assert_eq!(stored, 0, "kept only as a hash");
    let reviewer = Auth::Cookie(app.login(&email, &password).await.expect("the reviewer signs in"));
    let members = app.call(Method::GET, "/api/v1/teams/demo/members", &ada_bearer, None).await.json();
    let role = members["items"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["email"] == email.as_str())
        .map(|m| m["role"].clone());
    assert_eq!(role, Some(json!("approver")), "{members}");

    let mut registered = 0;
    for job in [&demo["job"], &demo["challenger"], &again["job"], &again["challenger"]] {
        let id = job["id"].as_str().expect("job");
        let done = common::drive(&app, &ada_bearer, id, common::finished).await;
        assert_eq!(done["status"], "completed", "{done}");
        registered += app::approvals::demo::step(&app.state).await.expect("step");
    }
    assert_eq!(registered, 4, "both runs' two jobs became versions of churn");
    let models = app.call(Method::GET, "/api/v1/teams/demo/models", &ada_bearer, None).await.json();
    let model = models["items"][0]["id"].as_str().expect("churn").to_owned();
    let alias = app.call(Method::GET, &format!("/api/v1/models/{model}/aliases"), &ada_bearer, None).await.json();
    let named = |name: &str| alias.as_array().expect("aliases").iter().find(|a| a["alias"] == name).cloned();
    assert_eq!(named("champion").map(|a| a["protected"].clone()), Some(json!(true)), "{alias}");
    assert_eq!(named("challenger").map(|a| a["protected"].clone()), Some(json!(false)), "{alias}");
    let policies = app.call(Method::GET, "/api/v1/teams/demo/approval-policies", &ada_bearer, None).await.json();
    assert_eq!(
        policies["policies"],
        json!([{"kind": "alias.move", "model_id": model, "alias": "champion", "approvals_required": 1,
                "min_role": "approver", "require_admin": false, "expires_after_hours": 168}])
    );
    let versions = app.call(Method::GET, &format!("/api/v1/models/{model}/versions"), &ada_bearer, None).await.json();
    let v2 =
        versions["items"].as_array().expect("versions").iter().find(|v| v["number"] == 2).expect("v2")["id"].clone();

    // ada asks, the demo's reviewer approves, the worker moves champion
    let direct = app
        .call(
            Method::PUT,
            &format!("/api/v1/models/{model}/aliases/champion"),
            &ada_bearer,
            Some(json!({"version_id": v2})),
        )
        .await;
    assert_eq!(direct.status, StatusCode::CONFLICT, "{}", direct.text());
    let body = json!({"change": {"kind": "alias.move", "model_id": model, "alias": "champion", "version_id": v2},
                      "title": "The second demo run is champion"});
    let res = app.call(Method::POST, "/api/v1/teams/demo/change-requests", &ada_bearer, Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let id = res.json()["id"].as_str().expect("id").to_owned();
    let res =
        app.call(Method::POST, &format!("/api/v1/change-requests/{id}/approve"), &reviewer, Some(json!({}))).await;
    assert_eq!((res.status, res.json()["state"].clone()), (StatusCode::OK, json!("approved")), "{}", res.text());
    assert_eq!(app::approvals::apply::apply_due(&app.state).await.expect("apply"), 1);
    let now =
        app.call(Method::GET, &format!("/api/v1/models/{model}/aliases/champion"), &ada_bearer, None).await.json();
    assert_eq!(now["number"], 2, "{now}");
}

/// Endpoint changes (create, weights, variants, delete) go through change
/// requests where the team's policy covers them: the direct call is refused
/// and writes nothing, a request's diff shows the split before and after,
/// and the approved request changes the endpoint once (a second application
/// is refused by the endpoint's own domain function); a request whose
/// endpoint changed meanwhile goes stale.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn endpoint_changes_go_through_change_requests_when_the_policy_covers_them(pool: PgPool) {
    let f = fixture(pool).await;
    let variant = |name: &str, version: &str, weight: f64| json!({"name": name, "version_id": version, "instance_type": "ml.m5.large", "instance_count": 1, "weight": weight});
    let body = json!({"name": "web", "variants": [variant("a", &f.v1, 3.0), variant("b", &f.v2, 1.0)]});
    let res = f.app.call(Method::POST, "/api/v1/teams/ml/endpoints", &f.member, Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "no policy yet: {}", res.text());
    let endpoint = res.json()["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/endpoints/{endpoint}");
    let weights_of = async || -> Vec<f64> {
        let e = f.app.call(Method::GET, &path, &f.viewer, None).await.json();
        e["variants"].as_array().expect("variants").iter().map(|v| v["weight"].as_f64().expect("weight")).collect()
    };

    // an endpoint kind covers every endpoint of the team: no model
    let policy = |kind: &str, role: &str| json!({"kind": kind, "approvals_required": 1, "min_role": role, "expires_after_hours": 24});
    let mut narrowed = policy("endpoint.weights", "approver");
    narrowed["model_id"] = json!(f.model);
    let res = f
        .app
        .call(Method::PUT, "/api/v1/teams/ml/approval-policies", &f.admin, Some(json!({"policies": [narrowed]})))
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    assert_eq!(res.json()["errors"][0]["field"], "policies[0].model_id");
    let policies = json!({"policies": [policy("endpoint.create", "approver"), policy("endpoint.weights", "approver"),
                                       policy("endpoint.update", "approver"), policy("endpoint.delete", "admin")]});
    let res = f.app.call(Method::PUT, "/api/v1/teams/ml/approval-policies", &f.admin, Some(policies)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let e = f.app.call(Method::GET, &path, &f.viewer, None).await.json();
    assert_eq!(e["needs_request"], json!(["endpoint.delete", "endpoint.update", "endpoint.weights"]), "{e}");

    // direct changes are refused, pointing at change requests, and write nothing
    let events = f.app.count("select count(*) from audit_event where action like 'endpoint.%'").await;
    let weights = json!({"weights": [{"variant": "a", "weight": 1}]});
    for (method, at, who, body) in [
        (Method::PUT, format!("{path}/weights"), &f.member, Some(weights.clone())),
        (Method::PATCH, path.clone(), &f.member, Some(json!({"capture_percent": 5}))),
        (Method::DELETE, path.clone(), &f.admin, None),
        (
            Method::POST,
            "/api/v1/teams/ml/endpoints".to_owned(),
            &f.member,
            Some(json!({"name": "api", "variants": [variant("c", &f.v3, 1.0)]})),
        ),
    ] {
        let res = f.app.call(method.clone(), &at, who, body).await;
        assert_eq!(res.status, StatusCode::CONFLICT, "{method} {at}: {}", res.text());
        assert!(res.text().contains("/api/v1/teams/ml/change-requests"), "{}", res.text());
    }
    assert_eq!(weights_of().await, [3.0, 1.0]);
    assert_eq!(f.app.count("select count(*) from audit_event where action like 'endpoint.%'").await, events);

    // bad requests write nothing
    let before = f.app.count("select count(*) from change_request").await;
    let weights_change = |w: Value| json!({"kind": "endpoint.weights", "endpoint_id": endpoint, "weights": w});
    for (who, change, status, field) in [
        (
            &f.member,
            weights_change(json!([{"variant": "a", "weight": -1}])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "weights[0].weight",
        ),
        (
            &f.member,
            weights_change(json!([{"variant": "q", "weight": 1}])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "weights[0].variant",
        ),
        (
            &f.member,
            weights_change(json!([{"variant": "a", "weight": 3}])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "change.weights",
        ),
        (&f.viewer, weights_change(json!([{"variant": "a", "weight": 1}])), StatusCode::FORBIDDEN, ""),
        (
            &f.member,
            json!({"kind": "endpoint.create", "endpoint": {"name": "web", "variants": [variant("c", &f.v3, 1.0)]}}),
            StatusCode::CONFLICT,
            "name",
        ),
        (
            &f.member,
            json!({"kind": "endpoint.update", "endpoint_id": endpoint, "update": {"variants": [variant("a", &f.v1, 3.0), variant("b", &f.v2, 1.0)]}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "change.update",
        ),
    ] {
        let res = f.open(who, change.clone()).await;
        assert_eq!(res.status, status, "{change}: {}", res.text());
        if !field.is_empty() {
            let named = res.json()["errors"][0]["field"]
                .as_str()
                .map(str::to_owned)
                .or(res.json()["field"].as_str().map(str::to_owned));
            assert_eq!(named.as_deref(), Some(field), "{}", res.text());
        }
    }
    let res = f
        .app
        .call(
            Method::POST,
            "/api/v1/teams/beta/change-requests",
            &f.outsider,
            Some(json!({"change": {"kind": "endpoint.delete", "endpoint_id": endpoint}, "title": "theirs"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "another team's endpoint is not found: {}", res.text());
    assert_eq!(f.app.count("select count(*) from change_request").await, before);

    // new weights: the diff shows the split before and after
    let res = f.open(&f.member, weights_change(json!([{"variant": "a", "weight": 1}]))).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let r = res.json();
    let id = r["id"].as_str().expect("id").to_owned();
    assert_eq!(
        r["diff"]["split"],
        json!([{"variant": "a", "version": "churn v1", "before": 3.0, "after": 1.0},
               {"variant": "b", "version": "churn v2", "before": 1.0, "after": 1.0}]),
        "{r}"
    );
    assert_eq!(r["diff"]["before"], "a (churn v1) 75.0 %, b (churn v2) 25.0 %");
    assert_eq!(r["diff"]["after"], "a (churn v1) 50.0 %, b (churn v2) 50.0 %");
    assert_eq!(r["diff"]["target"], "ml/web endpoint");
    assert_eq!(f.decide(&f.approver, &id, "approve").await.json()["state"], "approved");
    assert_eq!(f.apply().await, 1);
    assert_eq!(f.request(&id).await["state"], "applied");
    assert_eq!(weights_of().await, [1.0, 1.0]);
    let audited = f
        .app
        .count(&format!(
            "select count(*) from audit_event where action = 'endpoint.weights_changed' and summary->>'request' = '{id}'"
        ))
        .await;
    assert_eq!(audited, 1, "the change names its request");
    // a second application is refused by the endpoint's own domain function
    let crashed = app::kernel::context::Ctx {
        state: f.app.state.clone(),
        actor: app::kernel::context::actor_by_id(&f.app.pool, f.admin_id).await.expect("actor"),
        request_id: None,
        client_addr: "test".into(),
    };
    let again = app::endpoints::types::Weights {
        weights: vec![app::endpoints::types::VariantWeight { variant: "a".into(), weight: 9.0 }],
    };
    let route = app::registry::gate::Route::ChangeRequest(id.parse().expect("uuid"));
    let res = app::endpoints::domain::set_weights(&crashed, endpoint.parse().expect("uuid"), again, route).await;
    assert!(matches!(res, Err(app::kernel::error::AppError::Conflict { .. })), "{res:?}");
    assert_eq!(weights_of().await, [1.0, 1.0]);

    // two requests on the same weights: the first applied makes the second stale
    let first = f.open(&f.member, weights_change(json!([{"variant": "a", "weight": 5}]))).await.json();
    let second = f.open(&f.member, weights_change(json!([{"variant": "b", "weight": 5}]))).await.json();
    for r in [&first, &second] {
        let id = r["id"].as_str().expect("id");
        assert_eq!(f.decide(&f.approver, id, "approve").await.status, StatusCode::OK);
    }
    assert_eq!(f.apply().await, 2);
    let (first, second) =
        (f.request(first["id"].as_str().expect("id")).await, f.request(second["id"].as_str().expect("id")).await);
    assert_eq!((first["state"].as_str(), second["state"].as_str()), (Some("applied"), Some("stale")), "{second}");
    assert_eq!(weights_of().await, [5.0, 1.0]);

    // a new endpoint, created as its author once approved
    let create =
        json!({"kind": "endpoint.create", "endpoint": {"name": "api", "variants": [variant("c", &f.v3, 1.0)]}});
    let r = f.open(&f.member, create).await.json();
    assert_eq!(
        (r["diff"]["before"].as_str(), r["diff"]["after"].as_str()),
        (Some("no endpoint"), Some("c (churn v3) 100.0 %"))
    );
    let id = r["id"].as_str().expect("id").to_owned();
    assert_eq!(f.decide(&f.approver, &id, "approve").await.status, StatusCode::OK);
    assert_eq!(f.apply().await, 1);
    let created = f.request(&id).await["result"].clone();
    let list = f.app.call(Method::GET, "/api/v1/teams/ml/endpoints", &f.viewer, None).await.json();
    let api = list.as_array().expect("list").iter().find(|e| e["name"] == "api").expect("created").clone();
    assert_eq!(api["created_by"], "member@example.com", "{created}");

    // deleting needs an admin's approval; an approver's is refused
    let r = f.open(&f.member, json!({"kind": "endpoint.delete", "endpoint_id": api["id"]})).await.json();
    let id = r["id"].as_str().expect("id").to_owned();
    assert_eq!(r["diff"]["after"], "deleted");
    assert_eq!(f.decide(&f.approver, &id, "approve").await.status, StatusCode::FORBIDDEN);
    assert_eq!(f.decide(&f.admin, &id, "approve").await.status, StatusCode::OK);
    assert_eq!(f.apply().await, 1);
    assert_eq!(f.request(&id).await["state"], "applied");
    let api = f
        .app
        .call(Method::GET, &format!("/api/v1/endpoints/{}", api["id"].as_str().expect("id")), &f.viewer, None)
        .await;
    assert_eq!(api.json()["status"], "Deleting", "{}", api.text());
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_rollout_starts_through_a_change_request_when_the_policy_covers_it(pool: PgPool) {
    let f = fixture(pool).await;
    let variant = |name: &str, version: &str, weight: f64| json!({"name": name, "version_id": version, "instance_type": "ml.m5.large", "instance_count": 1, "weight": weight});
    let body = json!({"name": "web", "variants": [variant("a", &f.v1, 1.0)]});
    let res = f.app.call(Method::POST, "/api/v1/teams/ml/endpoints", &f.member, Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let endpoint = res.json()["id"].as_str().expect("id").to_owned();
    let policy = json!({"policies": [{"kind": "endpoint.rollout", "approvals_required": 1, "min_role": "approver",
                                      "expires_after_hours": 24}]});
    let res = f.app.call(Method::PUT, "/api/v1/teams/ml/approval-policies", &f.admin, Some(policy)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());

    // a direct start is refused, names the kind to request, and writes nothing (no candidate added either)
    let rollout = json!({"baseline": "a", "candidate": "b", "candidate_version_id": f.v2, "strategy": "canary",
                         "step_percent": 10, "interval_seconds": 60});
    let res = f
        .app
        .call(Method::POST, &format!("/api/v1/endpoints/{endpoint}/rollouts"), &f.member, Some(rollout.clone()))
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
    assert!(res.text().contains("endpoint.rollout"), "{}", res.text());
    assert_eq!(f.app.count("select count(*) from rollout").await, 0);
    assert_eq!(f.app.count("select count(*) from endpoint_variant").await, 1);

    // a bad rollout request is refused when opened, naming the field
    let change = |r: Value| json!({"kind": "endpoint.rollout", "endpoint_id": endpoint, "rollout": r});
    let mut bad = rollout.clone();
    bad["step_percent"] = json!(90);
    let res = f.open(&f.member, change(bad)).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    assert_eq!(res.json()["errors"][0]["field"], "step_percent", "{}", res.text());

    // requested, approved, applied: the rollout starts as its author's, its request named
    let res = f.open(&f.member, change(rollout)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let r = res.json();
    assert!(r["diff"]["after"].as_str().is_some_and(|a| a.contains("canary rollout from a to b")), "{r}");
    assert_eq!(
        r["diff"]["split"],
        json!([{"variant": "a", "version": "churn v1", "before": 1.0, "after": 0.0},
               {"variant": "b", "version": "churn v2", "before": null, "after": 1.0}]),
        "{r}"
    );
    let id = r["id"].as_str().expect("id").to_owned();
    assert_eq!(f.decide(&f.approver, &id, "approve").await.json()["state"], "approved");
    assert_eq!(f.apply().await, 1);
    assert_eq!(f.request(&id).await["state"], "applied");
    let list = f.app.call(Method::GET, &format!("/api/v1/endpoints/{endpoint}/rollouts"), &f.viewer, None).await.json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(
        (list[0]["state"].as_str(), list[0]["created_by"].as_str()),
        (Some("running"), Some("member@example.com"))
    );
    let e = f.app.call(Method::GET, &format!("/api/v1/endpoints/{endpoint}"), &f.viewer, None).await.json();
    let names: Vec<&str> = e["variants"].as_array().into_iter().flatten().filter_map(|v| v["name"].as_str()).collect();
    assert_eq!(names, ["a", "b"], "the candidate was added: {e}");
    let audited = f
        .app
        .count(&format!("select count(*) from audit_event where action = 'endpoint.rollout_started' and summary->>'request' = '{id}'"))
        .await;
    assert_eq!(audited, 1, "the start names its request");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_bandit_runs_under_a_standing_change_request_when_the_policy_covers_it(pool: PgPool) {
    let f = fixture(pool).await;
    let variant = |name: &str, version: &str| json!({"name": name, "version_id": version, "instance_type": "ml.m5.large", "instance_count": 1, "weight": 1.0});
    let body = json!({"name": "web", "variants": [variant("a", &f.v1), variant("b", &f.v2)]});
    let res = f.app.call(Method::POST, "/api/v1/teams/ml/endpoints", &f.member, Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let endpoint = res.json()["id"].as_str().expect("id").to_owned();
    let policy = json!({"policies": [{"kind": "endpoint.bandit", "approvals_required": 1, "min_role": "approver",
                                      "expires_after_hours": 24}]});
    let res = f.app.call(Method::PUT, "/api/v1/teams/ml/approval-policies", &f.admin, Some(policy)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());

    // a direct start is refused, names the kind to request, writes nothing
    let path = format!("/api/v1/endpoints/{endpoint}/bandit");
    let settings =
        json!({"metric": "conversion", "kind": "binary", "interval_seconds": 60, "min_share": 0.2, "max_share": 0.8});
    let res = f.app.call(Method::PUT, &path, &f.member, Some(settings.clone())).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
    assert!(res.text().contains("endpoint.bandit"), "{}", res.text());
    assert_eq!(f.app.count("select count(*) from endpoint_bandit").await, 0);

    // bad settings are refused when the request is opened, naming the field
    let change = |b: Value| json!({"kind": "endpoint.bandit", "endpoint_id": endpoint, "bandit": b});
    let mut bad = settings.clone();
    bad["max_share"] = json!(0.3);
    let res = f.open(&f.member, change(bad)).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    assert_eq!(res.json()["errors"][0]["field"], "max_share", "{}", res.text());

    // requested, approved, applied: the bandit runs as its author's, under its request
    let res = f.open(&f.member, change(settings)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let r = res.json();
    assert!(
        r["diff"]["after"]
            .as_str()
            .is_some_and(|a| a.contains("Thompson sampling on conversion") && a.contains("between 20 % and 80 %")),
        "{r}"
    );
    let id = r["id"].as_str().expect("id").to_owned();
    assert_eq!(f.decide(&f.approver, &id, "approve").await.json()["state"], "approved");
    assert_eq!(f.apply().await, 1);
    assert_eq!(f.request(&id).await["state"], "applied");
    let bandit = f.app.call(Method::GET, &path, &f.viewer, None).await.json();
    assert_eq!(bandit["request_id"], json!(id), "{bandit}");
    assert_eq!(bandit["started_by"], "member@example.com", "{bandit}");
    let audited = f
        .app
        .count(&format!(
            "select count(*) from audit_event where action = 'endpoint.bandit_set' and summary->>'request' = '{id}'"
        ))
        .await;
    assert_eq!(audited, 1, "the start names its request");
    // its runs need no request each: the policy does not stop a bandit it approved
    app::endpoints::bandit::tick(&f.app.state).await.expect("tick");
    assert_eq!(f.app.count("select count(*) from endpoint_bandit").await, 1);
    // stopping needs no approval
    assert_eq!(f.app.call(Method::DELETE, &path, &f.member, None).await.status, StatusCode::NO_CONTENT);
}
