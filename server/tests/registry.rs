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
    // its lineage: the dataset version fed the job's `train` channel, the job made the version
    let lineage = app.call(Method::GET, &format!("{v1_path}/lineage"), &viewer, None).await.json();
    let ids: Vec<&str> = lineage["nodes"].as_array().expect("nodes").iter().filter_map(|n| n["id"].as_str()).collect();
    let (dv_node, job_node, v_node) = (
        format!("dataset_version:{dataset_version}"),
        format!("training_job:{job}"),
        format!("model_version:{}", v1["id"].as_str().expect("id")),
    );
    assert_eq!(ids, [dv_node.as_str(), job_node.as_str(), v_node.as_str()], "{lineage}");
    assert_eq!(
        lineage["edges"],
        json!([{"from": dv_node, "to": job_node, "label": "train"}, {"from": job_node, "to": v_node, "label": "registered"}])
    );
    assert_eq!(lineage["nodes"][1]["url"], format!("/teams/ml/training/{job}"));

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
    // the model and the models list show where each alias points
    assert_eq!(
        app.call(Method::GET, &format!("/api/v1/models/{model}"), &viewer, None).await.json()["aliases"],
        json!({"champion": 2})
    );
    let list = app.call(Method::GET, "/api/v1/teams/ml/models", &viewer, None).await.json();
    assert_eq!(list["items"][0]["aliases"], json!({"champion": 2}));

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

/// The demo lands a new user on a populated registry: once its jobs have
/// completed, the worker registers the first as version 1 of `churn` and
/// points `champion` at it, and the second (its challenger) as version 2
/// named `challenger` — in that order whichever finishes first, once,
/// however often the step runs.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_demos_completed_jobs_become_champion_and_challenger_of_model_churn(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let ada = app.user("ada@example.com", false).await;
    let res = app.server_fn("create_demo", &Auth::Cookie(ada.cookie.clone()), &[]).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let job = res.json()["job"]["id"].as_str().expect("job").to_owned();
    let second = res.json()["challenger"]["id"].as_str().expect("challenger job").to_owned();
    let bearer = Auth::Bearer(ada.token.clone());
    // nothing to register while the jobs run
    assert_eq!(app::registry::demo::register_finished(&app.state).await.expect("step").len(), 0);
    // the challenger (half the epochs) finishes first, and waits for the first job
    let done = common::drive(&app, &bearer, &second, common::finished).await;
    assert_eq!(done["status"], "completed", "{done}");
    let first = app.call(Method::GET, &format!("/api/v1/training-jobs/{job}"), &bearer, None).await.json();
    if !common::finished(&first) {
        assert_eq!(app::registry::demo::register_finished(&app.state).await.expect("step").len(), 0, "it waits");
    }
    let done = common::drive(&app, &bearer, &job, common::finished).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(app::registry::demo::register_finished(&app.state).await.expect("step").len(), 2);
    assert_eq!(app::registry::demo::register_finished(&app.state).await.expect("step").len(), 0, "once");
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
    let challenger = app.call(Method::GET, &format!("/api/v1/models/{model}/aliases/challenger"), &bearer, None).await;
    assert_eq!(
        (challenger.json()["number"].as_i64(), challenger.json()["training_job_id"].as_str()),
        (Some(2), Some(second.as_str())),
        "{}",
        challenger.text()
    );
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn an_artifact_that_exists_in_the_teams_area_becomes_a_version_and_a_bad_one_writes_nothing(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let admin = Auth::Bearer(app.user("admin@example.com", false).await.token);
    let member = Auth::Bearer(app.user("member@example.com", false).await.token);
    app.team_with_members("ml", &admin, &[("member@example.com", "member")]).await;
    let bucket = app.state.storage.bucket.clone();
    app.put(&bucket, "models/ml/churn/model.tar.gz", b"the weights".to_vec()).await;
    app.put(&bucket, "models/ml/bundle/weights.bin", b"folder weights".to_vec()).await;
    app.put(&bucket, "models/other/model.tar.gz", b"another team's".to_vec()).await;
    let model = app.call(Method::POST, "/api/v1/teams/ml/models", &member, Some(json!({"name": "churn"}))).await;
    let model = model.json()["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/models/{model}/versions");
    let file = format!("s3://{bucket}/models/ml/churn/model.tar.gz");
    let events = app.count("select count(*) from audit_event").await;

    for (body, field, says) in [
        (json!({"artifact_uri": "https://example.com/model.tar.gz"}), "artifact_uri", "s3://"),
        (json!({"artifact_uri": format!("s3://{bucket}/models/ml/missing.tar.gz")}), "artifact_uri", "Nothing is at"),
        (json!({"artifact_uri": format!("s3://{bucket}/models/ml/nothing-here/")}), "artifact_uri", "Nothing is at"),
        (json!({"artifact_uri": format!("s3://{bucket}/models/other/model.tar.gz")}), "artifact_uri", "models/ml/"),
        (json!({"artifact_uri": "s3://someone-elses-bucket/model.tar.gz"}), "artifact_uri", "not open to this team"),
        (json!({"artifact_uri": file, "image": "docker.io/library/python:3"}), "image", "ECR"),
        (json!({"artifact_uri": file, "metrics": {"": 1.0}}), "metrics", "not allowed"),
        (json!({"artifact_uri": file, "framework": "sk learn"}), "framework", "letters"),
        (json!({"artifact_uri": file, "training_job_id": uuid::Uuid::now_v7()}), "artifact_uri", "from the job"),
        (json!({"description": "neither"}), "training_job_id", "artifact_uri"),
    ] {
        let res = app.call(Method::POST, &path, &member, Some(body.clone())).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", res.text());
        assert_eq!(res.json()["errors"][0]["field"], field, "{body}: {}", res.text());
        assert!(res.text().contains(says), "{body}: {}", res.text());
    }
    assert_eq!(app.count("select count(*) from model_version").await, 0, "nothing registered");
    assert_eq!(app.count("select count(*) from audit_event").await, events, "nothing audited");

    let body = json!({
        "artifact_uri": file,
        "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1.0",
        "framework": "sklearn",
        "parameters": {"C": "1.0"},
        "metrics": {"auc": 0.91},
    });
    let res = app.call(Method::POST, &path, &member, Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let v1 = res.json();
    assert_eq!((v1["number"].as_i64(), v1["source"].as_str()), (Some(1), Some("artifact")));
    assert_eq!((&v1["artifact_uri"], &v1["training_job_id"]), (&json!(file), &Value::Null));
    assert_eq!((&v1["metrics"]["auc"], &v1["parameters"]["C"]), (&json!(0.91), &json!("1.0")));
    assert_eq!(v1["framework"], "sklearn");
    // a folder named without its slash is found by listing, and kept as a folder
    let folder = json!({"artifact_uri": format!("s3://{bucket}/models/ml/bundle")});
    let v2 = app.call(Method::POST, &path, &member, Some(folder)).await;
    assert_eq!(v2.status, StatusCode::CREATED, "{}", v2.text());
    let v2 = v2.json();
    assert_eq!(v2["artifact_uri"], format!("s3://{bucket}/models/ml/bundle/"));
    assert_eq!(app.audit_count("model_version.registered").await, 2);

    // its lineage is the artifact, and its file downloads through a short-lived link
    let v1_id = v1["id"].as_str().expect("id");
    let lineage = app.call(Method::GET, &format!("/api/v1/model-versions/{v1_id}/lineage"), &member, None).await.json();
    let kinds: Vec<&str> =
        lineage["nodes"].as_array().expect("nodes").iter().filter_map(|n| n["kind"].as_str()).collect();
    assert_eq!(kinds, ["artifact", "model_version"], "{lineage}");
    assert_eq!(lineage["edges"][0]["to"], format!("model_version:{v1_id}"));
    let res = app.call(Method::GET, &format!("/api/v1/model-versions/{v1_id}/download"), &member, None).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text());
    let link = res.headers.get("location").and_then(|l| l.to_str().ok()).expect("a location").to_owned();
    assert_eq!(common::presigned_get(&link).await, (200, b"the weights".to_vec()));
    let v2_id = v2["id"].as_str().expect("id");
    let res = app.call(Method::GET, &format!("/api/v1/model-versions/{v2_id}/download"), &member, None).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "a folder has no single file: {}", res.text());
    // another team's caller neither sees the graph nor gets the link
    let other = Auth::Bearer(app.user("other@example.com", false).await.token);
    app.team_with_members("other", &other, &[]).await;
    for route in ["lineage", "download"] {
        let res = app.call(Method::GET, &format!("/api/v1/model-versions/{v1_id}/{route}"), &other, None).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{route}");
    }
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn versions_are_searched_by_metric_parameter_and_tag_and_paged_in_metric_order(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let admin = Auth::Bearer(app.user("admin@example.com", false).await.token);
    let viewer = Auth::Bearer(app.user("viewer@example.com", false).await.token);
    app.team_with_members("ml", &admin, &[("viewer@example.com", "viewer")]).await;
    app.put("capstan", "models/ml/model.tar.gz", b"w".to_vec()).await;
    let mut ids = std::collections::HashMap::new();
    // model a: auc 0.7, 0.9, 0.8, 0.95 and one version without auc; model b: auc 0.99, 0.6
    for (model, versions) in
        [("a", vec![Some(0.7), Some(0.9), Some(0.8), Some(0.95), None]), ("b", vec![Some(0.99), Some(0.6)])]
    {
        let res = app.call(Method::POST, "/api/v1/teams/ml/models", &admin, Some(json!({"name": model}))).await;
        let model_id = res.json()["id"].as_str().expect("id").to_owned();
        for (i, auc) in versions.into_iter().enumerate() {
            let metrics = auc.map_or_else(|| json!({"loss": 1.0}), |auc| json!({"auc": auc, "loss": 1.0 - auc}));
            let body = json!({
                "artifact_uri": "s3://capstan/models/ml/model.tar.gz",
                "metrics": metrics,
                "parameters": {"C": if i % 2 == 0 { "1.0" } else { "0.1" }},
                "tags": {"stage": if i == 1 { "prod" } else { "dev" }},
            });
            let res = app.call(Method::POST, &format!("/api/v1/models/{model_id}/versions"), &admin, Some(body)).await;
            assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
            ids.insert(res.json()["id"].as_str().expect("id").to_owned(), format!("{model}{}", i + 1));
        }
    }
    let search = |query: &str| {
        let (app, viewer, ids) = (&app, &viewer, &ids);
        let path = format!("/api/v1/teams/ml/model-versions?{query}");
        async move {
            let res = app.call(Method::GET, &path, viewer, None).await;
            assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.text());
            let page = res.json();
            let names: Vec<String> = page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|v| ids[v["id"].as_str().expect("id")].clone())
                .collect();
            (names, page["next_cursor"].as_str().map(str::to_owned))
        }
    };
    let q = |filter: &str, order: &str| {
        format!("filter={}&order_by={}", common::urlencode(filter), common::urlencode(order))
    };

    let (found, _) = search(&q("metrics.auc > 0.75 and model = 'a'", "metrics.auc desc")).await;
    assert_eq!(found, ["a4", "a2", "a3"]);
    // number ties are broken by registration order
    let (found, _) =
        search(&q("params.C = '0.1' and (tags.stage = 'prod' or metrics.auc >= 0.95)", "number asc")).await;
    assert_eq!(found, ["a2", "b2", "a4"]);
    let (found, _) = search(&q("tags.stage != 'dev' and name like 'a%'", "")).await;
    assert_eq!(found, ["a2"]);
    // a version without the tag is not equal to any value (as MLflow's client expects)
    let (found, _) = search(&q("tags.absent != 'x' and model = 'b'", "number asc")).await;
    assert_eq!(found, ["b1", "b2"]);
    let (found, _) = search(&q("metrics.auc < 0.5", "")).await;
    assert!(found.is_empty());

    // paging in metric order visits every version once, those without the metric last
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = format!("{}&limit=2", q("", "metrics.auc desc"));
        if let Some(c) = &cursor {
            query.push_str(&format!("&cursor={c}"));
        }
        let (page, next) = search(&query).await;
        seen.extend(page);
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ["b1", "a4", "a2", "a3", "a1", "b2", "a5"]);
    let (asc, _) = search(&q("model = 'a'", "metrics.auc asc")).await;
    assert_eq!(asc, ["a1", "a3", "a2", "a4", "a5"]);

    // syntax errors name the position and what was expected
    for (filter, says) in [
        ("metrics.auc", "expected a comparison (= != < <= > >= like) after 'metrics.auc', found the end at 12"),
        ("metrics.auc > 'high'", "with a number"),
        ("colour = 'red'", "unknown field 'colour'"),
        ("(metrics.auc > 1", "expected ')'"),
    ] {
        let path = format!("/api/v1/teams/ml/model-versions?filter={}", common::urlencode(filter));
        let res = app.call(Method::GET, &path, &viewer, None).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{filter}: {}", res.text());
        assert_eq!(res.json()["errors"][0]["field"], "filter");
        assert!(
            res.json()["errors"][0]["message"].as_str().is_some_and(|m| m.contains(says)),
            "{filter}: {}",
            res.text()
        );
    }
    let res = app.call(Method::GET, "/api/v1/teams/ml/model-versions?order_by=params.C", &viewer, None).await;
    assert_eq!((res.status, res.json()["errors"][0]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("order_by")));
    // another team's caller learns nothing
    let other = Auth::Bearer(app.user("other@example.com", false).await.token);
    app.team_with_members("other", &other, &[]).await;
    let res = app.call(Method::GET, "/api/v1/teams/ml/model-versions", &other, None).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_versions_card_is_edited_by_members_rendered_safely_and_audited(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let admin = Auth::Bearer(app.user("admin@example.com", false).await.token);
    let viewer = Auth::Bearer(app.user("viewer@example.com", false).await.token);
    app.team_with_members("ml", &admin, &[("viewer@example.com", "viewer")]).await;
    app.put("capstan", "models/ml/model.tar.gz", b"w".to_vec()).await;
    let model = app.call(Method::POST, "/api/v1/teams/ml/models", &admin, Some(json!({"name": "churn"}))).await;
    let model = model.json()["id"].as_str().expect("id").to_owned();
    let body = json!({"artifact_uri": "s3://capstan/models/ml/model.tar.gz"});
    let v = app.call(Method::POST, &format!("/api/v1/models/{model}/versions"), &admin, Some(body)).await;
    let card = format!("/api/v1/model-versions/{}/card", v.json()["id"].as_str().expect("id"));

    let empty = app.call(Method::GET, &card, &viewer, None).await.json();
    assert_eq!((&empty["markdown"], &empty["signature"]), (&json!(""), &Value::Null));
    let markdown =
        "## Intended use\n\nChurn risk <script>alert(1)</script>\n\n![x](https://tracker.example.com/p.png)\n";
    let signature = json!({"inputs": [{"name": "tenure", "type": "double"}], "outputs": [{"name": "churn", "type": "double", "optional": false}]});
    let update = json!({"markdown": markdown, "signature": signature});
    let res = app.call(Method::PUT, &card, &viewer, Some(update.clone())).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "viewers read cards only");
    let res = app.call(Method::PUT, &card, &admin, Some(update)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let saved = app.call(Method::GET, &card, &viewer, None).await.json();
    assert_eq!(saved["markdown"], markdown);
    assert_eq!(saved["signature"]["inputs"][0]["name"], "tenure");
    assert_eq!(saved["updated_by"], "admin@example.com");
    let html = saved["html"].as_str().expect("html");
    assert!(html.contains("<h2>Intended use</h2>") && html.contains("&lt;script&gt;"), "{html}");
    assert!(!html.contains("<script") && !html.contains("<img") && !html.contains("tracker.example.com"), "{html}");
    assert_eq!(app.audit_count("model_version.card_updated").await, 1);

    // too big, a bad signature: refused, nothing changes
    for (body, field) in [
        (json!({"markdown": "x".repeat(256 * 1024 + 1)}), "markdown"),
        (json!({"markdown": "ok", "signature": {"inputs": [{"name": "", "type": "double"}]}}), "signature"),
        (json!({"markdown": "ok", "signature": {"inputs": [{"name": "a", "type": "<b>"}]}}), "signature"),
    ] {
        let res = app.call(Method::PUT, &card, &admin, Some(body)).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
        assert_eq!(res.json()["errors"][0]["field"], field);
    }
    assert_eq!(app.call(Method::GET, &card, &viewer, None).await.json()["markdown"], markdown);
    assert_eq!(app.audit_count("model_version.card_updated").await, 1);
    // what the version is made of is untouched by its card
    let res = app.call(Method::GET, &card.replace("/card", ""), &viewer, None).await.json();
    assert_eq!(res["artifact_uri"], "s3://capstan/models/ml/model.tar.gz");
}
