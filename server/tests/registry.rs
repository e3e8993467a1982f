//! The model registry: models (names, tags, search, archive) and versions
//! registered from completed training jobs of the team (numbering, what is
//! copied from the job, lineage, immutability), with the refusals that
//! write nothing.

mod common;

use common::{Auth, TestApp};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

const TRAIN: &str = include_str!("../../examples/train.py");

struct Fixture {
    app: TestApp,
    admin: Auth,
    member: Auth,
    viewer: Auth,
    /// A completed local training job of team `ml`.
    job: String,
    /// The dataset version it trained on.
    dataset_version: String,
}

/// A team `ml` (admin, member, viewer) with a completed local training job.
async fn fixture(pool: PgPool) -> Fixture {
    let app = TestApp::new(pool).await;
    let admin = Auth::Bearer(app.user("admin@example.com", false).await.token);
    let member = Auth::Bearer(app.user("member@example.com", false).await.token);
    let viewer = Auth::Bearer(app.user("viewer@example.com", false).await.token);
    app.team_with_members("ml", &admin, &[("member@example.com", "member"), ("viewer@example.com", "viewer")]).await;
    let dataset_version = common::ready_version(&app, &member, "ml", "churn").await;
    let res = common::upload_source(&app, &member, "ml", &[("train.py", TRAIN)]).await;
    let source = res.json()["source_uri"].as_str().expect("uri").to_owned();
    let body = common::launch_body("churn-lr", &source, &dataset_version, json!([{"key": "epochs", "value": "3"}]));
    let res = app.call(Method::POST, "/api/v1/teams/ml/training-jobs", &member, Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let job = res.json()["id"].as_str().expect("id").to_owned();
    let done = common::drive(&app, &viewer, &job, common::finished).await;
    assert_eq!(done["status"], "completed", "{done}");
    Fixture { app, admin, member, viewer, job, dataset_version }
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_completed_job_becomes_version_1_with_its_metrics_parameters_and_lineage(pool: PgPool) {
    let Fixture { app, admin, member, viewer, job, dataset_version } = fixture(pool).await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/teams/ml/models",
            &member,
            Some(json!({"name": "churn", "description": "Who leaves", "tags": {"task": "classification"}})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let model = res.json();
    let model_id = model["id"].as_str().expect("id").to_owned();
    assert_eq!((model["version_count"].as_i64(), &model["latest_version"]), (Some(0), &Value::Null));
    assert_eq!(app.audit_count("model.created").await, 1);

    // viewers read, and may not register
    let register = json!({"training_job_id": job, "description": "first"});
    let path = format!("/api/v1/models/{model_id}/versions");
    let res = app.call(Method::POST, &path, &viewer, Some(register.clone())).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    let res = app.call(Method::POST, &path, &member, Some(register.clone())).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let v1 = res.json();
    assert_eq!(v1["number"], 1);
    assert_eq!(v1["status"], "PendingManualApproval");
    assert_eq!(v1["source"], "training_job");
    assert_eq!(v1["training_job_id"], job.as_str());
    assert_eq!(v1["dataset_versions"], json!([dataset_version]));
    assert_eq!(v1["parameters"]["epochs"], "3");
    assert_eq!(v1["entry_point"], "train.py");
    let training = app.call(Method::GET, &format!("/api/v1/training-jobs/{job}"), &viewer, None).await.json();
    assert_eq!(v1["artifact_uri"], training["artifact_uri"]);
    // the local runner reports no final metrics: each metric's last logged value stands in
    let series = app.call(Method::GET, &format!("/api/v1/training-jobs/{job}/metrics"), &viewer, None).await.json();
    let names: Vec<&str> = series.as_array().expect("series").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["accuracy", "loss"]);
    for s in series.as_array().expect("series") {
        let last = s["points"].as_array().and_then(|p| p.last()).expect("a point");
        assert_eq!(v1["metrics"][s["name"].as_str().expect("name")], last["value"], "{s}");
    }
    assert_eq!(app.audit_count("model_version.registered").await, 1);
    let v1_path = format!("/api/v1/model-versions/{}", v1["id"].as_str().expect("id"));
    assert_eq!(app.call(Method::GET, &v1_path, &viewer, None).await.json(), v1);

    // the same job twice in one model is refused, naming the version; nothing is written
    let res = app.call(Method::POST, &path, &member, Some(register.clone())).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
    assert_eq!(res.json()["errors"][0]["field"], "training_job_id");
    assert!(res.text().contains("already version 1"), "{}", res.text());
    // the same job in another model is that model's version 1
    let other = app.call(Method::POST, "/api/v1/teams/ml/models", &member, Some(json!({"name": "churn-2"}))).await;
    let other_id = other.json()["id"].as_str().expect("id").to_owned();
    let res = app.call(Method::POST, &format!("/api/v1/models/{other_id}/versions"), &member, Some(register)).await;
    assert_eq!((res.status, res.json()["number"].as_i64()), (StatusCode::CREATED, Some(1)), "{}", res.text());
    assert_eq!(app.count("select count(*) from model_version").await, 2);

    // a version cannot change what it is made of, even by hand in the database
    let tampered =
        sqlx::query("update model_version set artifact_uri = 's3://elsewhere/model.tar.gz'").execute(&app.pool).await;
    assert!(tampered.is_err_and(|e| e.to_string().contains("cannot change")));
    // and its training job (so its lineage) cannot be deleted from under it
    let gone = sqlx::query("delete from training_job where job_id = $1::uuid").bind(&job).execute(&app.pool).await;
    assert!(gone.is_err(), "the job is referenced by its versions");

    // lists, search, archive
    let list = app.call(Method::GET, "/api/v1/teams/ml/models?q=CHURN&limit=1", &viewer, None).await.json();
    assert_eq!(list["items"][0]["name"], "churn");
    assert_eq!(list["items"][0]["latest_version"], 1);
    let next = list["next_cursor"].as_str().expect("a second page");
    let page2 = format!("/api/v1/teams/ml/models?q=churn&limit=1&cursor={next}");
    assert_eq!(app.call(Method::GET, &page2, &viewer, None).await.json()["items"][0]["name"], "churn-2");
    let tagged = app.call(Method::GET, "/api/v1/teams/ml/models?tag=task=classification", &viewer, None).await.json();
    assert_eq!(tagged["items"].as_array().map(Vec::len), Some(1), "{tagged}");
    let res = app.call(Method::POST, &format!("/api/v1/models/{other_id}/archive"), &member, None).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "only admins archive");
    let res = app.call(Method::POST, &format!("/api/v1/models/{other_id}/archive"), &admin, None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let list = app.call(Method::GET, "/api/v1/teams/ml/models", &viewer, None).await.json();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "archived models leave the list");
    let versions = app.call(Method::GET, &path, &viewer, None).await.json();
    assert_eq!(versions["items"][0]["number"], 1);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn bad_models_and_registrations_name_the_field_and_write_nothing(pool: PgPool) {
    let Fixture { app, member, job, .. } = fixture(pool).await;
    let events = app.count("select count(*) from audit_event").await;
    for (body, field) in [
        (json!({"name": "-leading"}), "name"),
        (json!({"name": "has space"}), "name"),
        (json!({"name": "x".repeat(129)}), "name"),
        (json!({"name": "ok", "tags": {"": "empty key"}}), "tags"),
        (json!({"name": "ok", "description": "d".repeat(2001)}), "description"),
    ] {
        let res = app.call(Method::POST, "/api/v1/teams/ml/models", &member, Some(body.clone())).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", res.text());
        assert_eq!(res.json()["errors"][0]["field"], field, "{body}");
    }
    let res = app.call(Method::POST, "/api/v1/teams/ml/models", &member, Some(json!({"name": "churn"}))).await;
    assert_eq!(res.status, StatusCode::CREATED);
    let model = res.json()["id"].as_str().expect("id").to_owned();
    let res = app.call(Method::POST, "/api/v1/teams/ml/models", &member, Some(json!({"name": "churn"}))).await;
    assert_eq!((res.status, res.json()["errors"][0]["field"].as_str()), (StatusCode::CONFLICT, Some("name")));
    let path = format!("/api/v1/models/{model}/versions");
    // a job that does not exist is named as the bad field
    let unknown = json!({"training_job_id": uuid::Uuid::now_v7()});
    let res = app.call(Method::POST, &path, &member, Some(unknown)).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    assert_eq!(res.json()["errors"][0]["field"], "training_job_id");
    // another team's caller does not see the model at all
    let other = Auth::Bearer(app.user("other@example.com", false).await.token);
    app.team_with_members("other", &other, &[]).await;
    let res = app.call(Method::POST, &path, &other, Some(json!({"training_job_id": job}))).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    // a job that has not completed
    sqlx::query("update training_job set status = 'failed' where job_id = $1::uuid")
        .bind(&job)
        .execute(&app.pool)
        .await
        .expect("fail it");
    let res = app.call(Method::POST, &path, &member, Some(json!({"training_job_id": job}))).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    assert!(res.text().contains("failed"), "{}", res.text());
    assert_eq!(app.count("select count(*) from model_version").await, 0, "nothing registered");
    // of the registry's events, only the one model's creation
    let registry = app.count("select count(*) from audit_event where action like 'model%'").await;
    assert_eq!(registry, 1);
    assert!(app.count("select count(*) from audit_event").await > events);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn approvers_decide_a_versions_status_and_members_edit_its_description(pool: PgPool) {
    let Fixture { app, admin, member, viewer, job, .. } = fixture(pool).await;
    let approver = Auth::Bearer(app.user("approver@example.com", false).await.token);
    app.add_member("ml", &admin, "approver@example.com", "approver").await;
    let model = app.call(Method::POST, "/api/v1/teams/ml/models", &member, Some(json!({"name": "churn"}))).await;
    let model = model.json()["id"].as_str().expect("id").to_owned();
    let res = app
        .call(Method::POST, &format!("/api/v1/models/{model}/versions"), &member, Some(json!({"training_job_id": job})))
        .await;
    let version = res.json()["id"].as_str().expect("id").to_owned();
    let status = format!("/api/v1/model-versions/{version}/status");

    // members may not decide; approvers may, with a reason kept in the audit log
    let approve = json!({"status": "Approved", "reason": "beats the baseline"});
    let res = app.call(Method::POST, &status, &member, Some(approve.clone())).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = app.call(Method::POST, &status, &approver, Some(approve.clone())).await;
    assert_eq!((res.status, res.json()["status"].as_str()), (StatusCode::OK, Some("Approved")), "{}", res.text());
    let reason: String = sqlx::query_scalar(
        "select summary ->> 'reason' from audit_event where action = 'model_version.status_changed'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("audited");
    assert_eq!(reason, "beats the baseline");
    // approving twice is not a move; a decision can be reversed; archived is final
    let res = app.call(Method::POST, &status, &approver, Some(approve.clone())).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
    assert_eq!(res.json()["errors"][0]["field"], "status");
    let reject = json!({"status": "Rejected"});
    assert_eq!(app.call(Method::POST, &status, &approver, Some(reject.clone())).await.status, StatusCode::OK);
    let archive = json!({"status": "Archived"});
    assert_eq!(app.call(Method::POST, &status, &approver, Some(archive)).await.status, StatusCode::OK);
    let res = app.call(Method::POST, &status, &approver, Some(approve)).await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert!(res.text().contains("Archived cannot become Approved"), "{}", res.text());
    let res = app.call(Method::POST, &status, &approver, Some(json!({"status": "Maybe"}))).await;
    assert!(res.status.is_client_error(), "an unknown status is refused: {}", res.status);
    assert_eq!(app.audit_count("model_version.status_changed").await, 3, "refusals write nothing");

    // members edit the description and tags, audited with before and after; viewers may not
    let path = format!("/api/v1/model-versions/{version}");
    let edit = json!({"description": "Churn v1", "tags": {"owner": "ml"}});
    assert_eq!(app.call(Method::PATCH, &path, &viewer, Some(edit.clone())).await.status, StatusCode::FORBIDDEN);
    let res = app.call(Method::PATCH, &path, &member, Some(edit)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(
        (res.json()["description"].as_str(), res.json()["tags"]["owner"].as_str()),
        (Some("Churn v1"), Some("ml"))
    );
    let before: String = sqlx::query_scalar(
        "select summary -> 'before' ->> 'description' from audit_event where action = 'model_version.updated'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("audited");
    assert_eq!(before, "");
    let res = app.call(Method::PATCH, &path, &member, Some(json!({"artifact_uri": "s3://elsewhere/"}))).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "what a version is made of is not a field to edit");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn aliases_name_versions_keep_their_history_and_protected_ones_do_not_move(pool: PgPool) {
    let Fixture { app, admin, member, viewer, job, dataset_version } = fixture(pool).await;
    let model = app.call(Method::POST, "/api/v1/teams/ml/models", &member, Some(json!({"name": "churn"}))).await;
    let model = model.json()["id"].as_str().expect("id").to_owned();
    let versions = format!("/api/v1/models/{model}/versions");
    let v1 = app.call(Method::POST, &versions, &member, Some(json!({"training_job_id": job}))).await.json();
    // a second completed job: the same script with other hyperparameters
    let source = common::upload_source(&app, &member, "ml", &[("train.py", TRAIN)]).await.json()["source_uri"]
        .as_str()
        .expect("uri")
        .to_owned();
    let body = common::launch_body("churn-2", &source, &dataset_version, json!([{"key": "epochs", "value": "5"}]));
    let job2 = app.call(Method::POST, "/api/v1/teams/ml/training-jobs", &member, Some(body)).await.json();
    let job2 = job2["id"].as_str().expect("id").to_owned();
    common::drive(&app, &viewer, &job2, common::finished).await;
    let v2 = app.call(Method::POST, &versions, &member, Some(json!({"training_job_id": job2}))).await.json();
    assert_eq!(v2["number"], 2);
    let (v1, v2) = (v1["id"].as_str().expect("id").to_owned(), v2["id"].as_str().expect("id").to_owned());

    let champion = format!("/api/v1/models/{model}/aliases/champion");
    let res = app.call(Method::PUT, &champion, &viewer, Some(json!({"version_id": v1}))).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "viewers do not move aliases");
    let res = app.call(Method::PUT, &champion, &member, Some(json!({"version_id": v1, "reason": "first"}))).await;
    assert_eq!((res.status, res.json()["number"].as_i64()), (StatusCode::OK, Some(1)), "{}", res.text());
    let resolved = app.call(Method::GET, &champion, &viewer, None).await.json();
    assert_eq!(resolved["id"], v1.as_str());
    let res = app.call(Method::PUT, &champion, &member, Some(json!({"version_id": v2, "reason": "better auc"}))).await;
    assert_eq!(res.json()["number"], 2);
    assert_eq!(app.call(Method::GET, &champion, &viewer, None).await.json()["number"], 2);

    // the history: newest first, who, from → to, why
    let history = app.call(Method::GET, &format!("{champion}/history"), &viewer, None).await.json();
    let moves: Vec<(Value, Value, Value)> = history["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|h| (h["from_number"].clone(), h["to_number"].clone(), h["reason"].clone()))
        .collect();
    assert_eq!(moves, [(json!(1), json!(2), json!("better auc")), (json!(null), json!(1), json!("first"))]);
    assert_eq!(history["items"][0]["changed_by"], "member@example.com");

    // bad names, versions of other models, unknown aliases
    let other = app.call(Method::POST, "/api/v1/teams/ml/models", &member, Some(json!({"name": "other"}))).await;
    let other = other.json()["id"].as_str().expect("id").to_owned();
    let res = app
        .call(
            Method::PUT,
            &format!("/api/v1/models/{other}/aliases/champion"),
            &member,
            Some(json!({"version_id": v1})),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    assert_eq!(res.json()["errors"][0]["field"], "version_id");
    let res = app
        .call(
            Method::PUT,
            &format!("/api/v1/models/{model}/aliases/Champion!"),
            &member,
            Some(json!({"version_id": v1})),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    assert_eq!(res.json()["errors"][0]["field"], "alias");
    let res = app.call(Method::GET, &format!("/api/v1/models/{model}/aliases/staging"), &viewer, None).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);

    // protected: only admins protect; then neither a move nor a delete goes through directly
    let res = app.call(Method::POST, &format!("{champion}/protect"), &member, None).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = app.call(Method::POST, &format!("{champion}/protect"), &admin, None).await;
    assert_eq!((res.status, res.json()["protected"].as_bool()), (StatusCode::OK, Some(true)), "{}", res.text());
    let changes = app.count("select count(*) from model_alias_history").await;
    let res = app.call(Method::PUT, &champion, &admin, Some(json!({"version_id": v1}))).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
    assert_eq!(res.headers[http::header::CONTENT_TYPE], "application/problem+json");
    assert!(res.text().contains("alias `champion` is protected: open a change request"), "{}", res.text());
    assert_eq!(app.call(Method::DELETE, &champion, &admin, None).await.status, StatusCode::CONFLICT);
    assert_eq!(app.count("select count(*) from model_alias_history").await, changes, "refusals write nothing");
    assert_eq!(app.call(Method::GET, &champion, &viewer, None).await.json()["number"], 2);

    // unprotected, it can be deleted, and the deletion is history too
    assert_eq!(app.call(Method::POST, &format!("{champion}/unprotect"), &admin, None).await.status, StatusCode::OK);
    assert_eq!(app.call(Method::DELETE, &champion, &member, None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.call(Method::GET, &champion, &viewer, None).await.status, StatusCode::NOT_FOUND);
    let history = app.call(Method::GET, &format!("{champion}/history"), &viewer, None).await.json();
    assert_eq!(
        (history["items"][0]["from_number"].as_i64(), &history["items"][0]["to_number"]),
        (Some(2), &json!(null))
    );
    let listed = app.call(Method::GET, &format!("/api/v1/models/{model}/aliases"), &viewer, None).await.json();
    assert_eq!(listed, json!([]));
    assert_eq!(app.audit_count("model_alias.set").await, 2);
    assert_eq!(app.audit_count("model_alias.protected").await, 1);
    assert_eq!(app.audit_count("model_alias.deleted").await, 1);
}

/// The demo lands a new user on a populated registry: once its job has
/// completed, the worker registers it as version 1 of `churn` and points
/// `champion` at it, once, however often the step runs.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_demos_completed_job_becomes_champion_of_model_churn(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", false).await;
    let res = app.server_fn("create_demo", &Auth::Cookie(ada.cookie.clone()), &[]).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let job = res.json()["id"].as_str().expect("job").to_owned();
    let bearer = Auth::Bearer(ada.token.clone());
    // nothing to register while the job runs
    assert_eq!(app::registry::demo::register_finished(&app.state).await.expect("step"), 0);
    let done = common::drive(&app, &bearer, &job, common::finished).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(app::registry::demo::register_finished(&app.state).await.expect("step"), 1);
    assert_eq!(app::registry::demo::register_finished(&app.state).await.expect("step"), 0, "once");
    let models = app.call(Method::GET, "/api/v1/teams/demo/models", &bearer, None).await.json();
    assert_eq!(models["items"][0]["name"], "churn");
    let model = models["items"][0]["id"].as_str().expect("id");
    let champion = app.call(Method::GET, &format!("/api/v1/models/{model}/aliases/champion"), &bearer, None).await;
    assert_eq!(champion.status, StatusCode::OK, "{}", champion.text());
    assert_eq!(
        (champion.json()["number"].as_i64(), champion.json()["training_job_id"].as_str()),
        (Some(1), Some(job.as_str()))
    );
    assert!(champion.json()["metrics"]["accuracy"].as_f64().is_some(), "{}", champion.text());
}
