//! AWS mode's dataset code path against an AWS API emulator (`moto_server`
//! on loopback, started here; the test command installs it): a version from
//! another bucket, a snapshot copied into Capstan's bucket, drift after an
//! overwrite, a missing bucket named in the error, and a browser-style upload
//! through presigned multipart URLs.

mod common;

use common::{Auth, TestApp, presigned_put};
use http::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;
use storage::emulator::Moto;
use training::aws_sdk_sagemaker as training_sdk;

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn datasets_in_aws_mode_against_the_emulator(pool: PgPool) {
    let moto = Moto::start().await;
    let storage = storage::Storage::new(&moto.config(), None, "capstan-aws").await;
    storage::ensure_bucket(&storage.client, "capstan-aws").await.expect("bucket");
    storage::ensure_bucket(&storage.client, "raw-data").await.expect("source bucket");
    let app = TestApp::with_storage(pool, Default::default(), Default::default(), storage).await;
    let user = app.user("ml@example.com", false).await;
    let auth = Auth::Bearer(user.token.clone());
    app.team_with_members("ml", &auth, &[]).await;
    // another bucket is open to the team only once a site admin allows it
    let site = Auth::Bearer(app.user("site@example.com", true).await.token);
    let allow = json!({"allowed_sources": ["s3://raw-data/clicks/", "s3://missing-bucket/x/"]});
    assert_eq!(app.call(Method::PATCH, "/api/v1/teams/ml", &site, Some(allow)).await.status, StatusCode::OK);
    let res = app.call(Method::POST, "/api/v1/teams/ml/datasets", &auth, Some(json!({"name": "clicks"}))).await;
    let dataset = res.json()["id"].as_str().expect("id").to_owned();
    for i in 0..1_005 {
        app.put("raw-data", &format!("clicks/2026/{i:04}.jsonl"), format!("{{\"i\":{i}}}\n")).await;
    }
    let register = |uri: &str, snapshot: bool| {
        let (app, auth, dataset) = (&app, &auth, &dataset);
        let body = json!({"source_uri": uri, "snapshot": snapshot});
        async move {
            let res = app.call(Method::POST, &format!("/api/v1/datasets/{dataset}/versions"), auth, Some(body)).await;
            assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
            let id = res.json()["id"].as_str().expect("id").to_owned();
            app.wait_for(&format!("/api/v1/dataset-versions/{id}"), auth, |v| v["status"] != "scanning").await
        }
    };

    let v1 = register("s3://raw-data/clicks/", false).await;
    assert_eq!(v1["status"], "ready", "{v1}");
    assert_eq!(v1["object_count"], 1_005, "two list pages");
    let v2 = register("s3://raw-data/clicks/", true).await;
    assert_eq!(v2["status"], "ready", "{v2}");
    assert_eq!(v2["location"], "s3://capstan-aws/datasets/ml/clicks/v2/");
    assert_eq!(v2["digest"], v1["digest"], "a single-part copy keeps every key, size and ETag");

    app.put("raw-data", "clicks/2026/0001.jsonl", "{\"i\":\"changed\"}\n").await;
    for id in [&v1["id"], &v2["id"]] {
        let id = id.as_str().expect("id");
        let res = app.call(Method::POST, &format!("/api/v1/dataset-versions/{id}/verify"), &auth, None).await;
        assert_eq!(res.status, StatusCode::ACCEPTED);
    }
    let check1 = app
        .wait_for(&format!("/api/v1/dataset-versions/{}/verify", v1["id"].as_str().expect("id")), &auth, |c| {
            c["status"] != "running"
        })
        .await;
    assert_eq!(check1["changed"], 1, "{check1}");
    let check2 = app
        .wait_for(&format!("/api/v1/dataset-versions/{}/verify", v2["id"].as_str().expect("id")), &auth, |c| {
            c["status"] != "running"
        })
        .await;
    assert_eq!(check2["changed"], 0, "the snapshot is unaffected: {check2}");

    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/datasets/{dataset}/versions"),
            &auth,
            Some(json!({"source_uri": "s3://missing-bucket/x/"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = res.json()["errors"][0]["message"].as_str().expect("message").to_owned();
    assert!(message.starts_with("s3://missing-bucket/x/: NoSuchBucket"), "an allowed location is probed: {message}");
    // a location nobody allowed gets one answer, whether it exists or not
    for uri in ["s3://raw-data/", "s3://no-such-bucket-at-all/x/"] {
        let body = json!({"source_uri": uri});
        let res = app.call(Method::POST, &format!("/api/v1/datasets/{dataset}/versions"), &auth, Some(body)).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        let message = res.json()["errors"][0]["message"].as_str().expect("message").to_owned();
        assert_eq!(
            message,
            format!(
                "{uri} is not open to this team: use its area of s3://capstan-aws/ or a location a site admin allowed for it."
            )
        );
    }

    // upload: presigned part URLs work against the emulator's endpoint too
    let body = b"id,label\n1,a\n".to_vec();
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/datasets/{dataset}/uploads"),
            &auth,
            Some(json!({"files": [{"path": "t.csv", "size": body.len()}]})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let id = res.json()["version"]["id"].as_str().expect("id").to_owned();
    let urls = app
        .call(
            Method::POST,
            &format!("/api/v1/dataset-versions/{id}/upload/parts"),
            &auth,
            Some(json!({"path": "t.csv", "parts": [1]})),
        )
        .await
        .json();
    let (status, etag) = presigned_put(urls[0]["url"].as_str().expect("url"), &body).await;
    assert_eq!(status, 200);
    // moto 5.2.1 answers CompleteMultipartUpload with a `…Response` XML root
    // the SDK cannot parse; Capstan then confirms the object with HeadObject.
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/dataset-versions/{id}/upload/complete"),
            &auth,
            Some(json!({"files": [{"path": "t.csv", "parts": [{"number": 1, "etag": etag.expect("etag")}]}]})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let v = app.wait_for(&format!("/api/v1/dataset-versions/{id}"), &auth, |v| v["status"] != "scanning").await;
    assert_eq!(v["status"], "ready", "{v}");
    let preview =
        app.call(Method::GET, &format!("/api/v1/dataset-versions/{id}/preview?key=t.csv"), &auth, None).await.json();
    assert_eq!(preview["rows"], json!([["1", "a"]]));
}

/// Training on SageMaker's API as the emulator models it: CreateTrainingJob
/// with script-mode hyperparameters and a channel from a dataset version,
/// ListTrainingJobs over pages, DescribeTrainingJob for the result. (moto
/// completes every job at once and has no StopTrainingJob; stopping, jobs in
/// flight and "already exists" are tested against the stand-in in
/// `training.rs`.)
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn training_jobs_on_the_emulated_sagemaker_api(pool: PgPool) {
    let moto = Moto::start().await;
    let storage = storage::Storage::new(&moto.config(), None, "capstan-aws").await;
    storage::ensure_bucket(&storage.client, "capstan-aws").await.expect("bucket");
    let shared =
        storage::sdk_config(Some("us-east-1"), Some(&("testing".to_owned(), "testing".to_owned())), Some(&moto.url))
            .await;
    let backend = std::sync::Arc::new(training::sagemaker::SageMaker::new(&shared, None, None));
    let settings = app::kernel::state::Settings {
        sagemaker_role_arn: Some("arn:aws:iam::123456789012:role/SageMakerTraining".into()),
        ..Default::default()
    };
    let app = TestApp::with_backend(pool, settings, Default::default(), storage, backend).await;
    let user = app.user("ml@example.com", false).await;
    let auth = Auth::Bearer(user.token.clone());
    app.team_with_members("ml", &auth, &[]).await;
    let res = app.call(Method::POST, "/api/v1/teams/ml/datasets", &auth, Some(json!({"name": "churn"}))).await;
    let dataset = res.json()["id"].as_str().expect("id").to_owned();
    app.put("capstan-aws", "datasets/ml/churn/raw/train.csv", "a,b,y\n1,2,0\n").await;
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/datasets/{dataset}/versions"),
            &auth,
            Some(json!({"source_uri": "s3://capstan-aws/datasets/ml/churn/raw/"})),
        )
        .await;
    let version = res.json()["id"].as_str().expect("id").to_owned();
    app.wait_for(&format!("/api/v1/dataset-versions/{version}"), &auth, |v| v["status"] == "ready").await;
    let archive = common::source_archive(&[("train.py", b"print('epoch=1 loss=0.5')\n")]);
    app.put("capstan-aws", "jobs/ml/sources/x/sourcedir.tar.gz", archive).await;
    let mut ids = Vec::new();
    const TEAM_ROLE: &str = "arn:aws:iam::210987654321:role/MlTeamTraining";
    for i in 0..3 {
        if i == 2 {
            // the team's own role overrides the site's for jobs launched after
            let bad = json!({"sagemaker_role_arn": "arn:aws:iam::1:role/x"});
            let site = Auth::Bearer(app.user("site-admin@example.com", true).await.token);
            let res = app.call(Method::PATCH, "/api/v1/teams/ml", &site, Some(bad)).await;
            assert_eq!(res.status, 422, "{}", res.text());
            assert!(res.text().contains("sagemaker_role_arn"), "{}", res.text());
            let team = app.call(Method::GET, "/api/v1/teams/ml", &auth, None).await.json();
            assert_eq!(team["sagemaker_role_arn"], json!(null), "a refused change writes nothing: {team}");
            // the team's admin may not pick the role; a site admin may
            let res = app
                .call(Method::PATCH, "/api/v1/teams/ml", &auth, Some(json!({"sagemaker_role_arn": TEAM_ROLE})))
                .await;
            assert_eq!(res.status, 403, "{}", res.text());
            let site = Auth::Bearer(app.user("site@example.com", true).await.token);
            let res = app
                .call(Method::PATCH, "/api/v1/teams/ml", &site, Some(json!({"sagemaker_role_arn": TEAM_ROLE})))
                .await;
            assert_eq!(res.status, 200, "{}", res.text());
            assert_eq!(
                (res.json()["name"].as_str(), res.json()["sagemaker_role_arn"].as_str()),
                (Some("ml"), Some(TEAM_ROLE))
            );
        }
        let res = app
            .call(
                Method::POST,
                "/api/v1/teams/ml/training-jobs",
                &auth,
                Some(json!({
                    "name": format!("churn-{i}"), "entry_point": "train.py", "framework": "sklearn-1.2",
                    "source_uri": "s3://capstan-aws/jobs/ml/sources/x/sourcedir.tar.gz", "instance_type": "ml.m5.xlarge",
                    "hyperparameters": [{"key": "epochs", "value": "3"}],
                    "metric_definitions": [{"name": "loss", "regex": "loss=([0-9.]+)"}],
                    "channels": [{"name": "train", "version_id": version}]
                })),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        ids.push(res.json()["id"].as_str().expect("id").to_owned());
    }
    // A member naming another role (another team's, say) launches nothing.
    let res = app
        .call(
            Method::POST,
            "/api/v1/teams/ml/training-jobs",
            &auth,
            Some(json!({
                "name": "as-another-role", "entry_point": "train.py", "framework": "sklearn-1.2",
                "source_uri": "s3://capstan-aws/jobs/ml/sources/x/sourcedir.tar.gz", "instance_type": "ml.m5.xlarge",
                "role_arn": "arn:aws:iam::123456789012:role/OtherTeamTraining",
                "channels": [{"name": "train", "version_id": version}]
            })),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    assert_eq!(res.json()["errors"][0]["field"], "role_arn");
    assert_eq!(app.count("select count(*) from training_job").await, 3);
    // ... unless a site admin allowed that role for the team (a team admin cannot)
    let allow = json!({"allowed_role_arns": ["arn:aws:iam::123456789012:role/GpuTraining"]});
    let res = app.call(Method::PATCH, "/api/v1/teams/ml", &auth, Some(allow.clone())).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let site = Auth::Bearer(app.user("roles-admin@example.com", true).await.token);
    assert_eq!(app.call(Method::PATCH, "/api/v1/teams/ml", &site, Some(allow)).await.status, StatusCode::OK);
    let res = app
        .call(
            Method::POST,
            "/api/v1/teams/ml/training-jobs",
            &auth,
            Some(json!({
                "name": "on-gpu-role", "entry_point": "train.py", "framework": "sklearn-1.2",
                "source_uri": "s3://capstan-aws/jobs/ml/sources/x/sourcedir.tar.gz", "instance_type": "ml.m5.xlarge",
                "role_arn": "arn:aws:iam::123456789012:role/GpuTraining",
                "channels": [{"name": "train", "version_id": version}]
            })),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    ids.push(res.json()["id"].as_str().expect("id").to_owned());
    assert_eq!(app::training::engine::launch_due(&app.state).await.expect("launch"), 4);
    let stats = app::training::engine::reconcile(&app.state).await.expect("reconcile");
    assert_eq!((stats.in_flight, stats.list_calls, stats.describe_calls), (4, 1, 4));
    for id in &ids {
        let job = app.call(Method::GET, &format!("/api/v1/training-jobs/{id}"), &auth, None).await.json();
        assert_eq!(job["status"], "completed", "{job}");
        let name = job["engine_name"].as_str().expect("name");
        assert_eq!(job["artifact_uri"], format!("s3://capstan-aws/jobs/ml/{name}/output/model.tar.gz"));
        assert_eq!(job["final_metrics"][0]["name"], "train:progress");
        assert!(job["transitions"].as_array().is_some_and(|t| !t.is_empty()));
    }
    // What SageMaker was asked for: the framework image, the script-mode
    // hyperparameters and the channel's S3 prefix.
    let client = aws_sdk_sagemaker_client(&moto).await;
    let describe = async |id: &str| {
        let job = app.call(Method::GET, &format!("/api/v1/training-jobs/{id}"), &auth, None).await.json();
        let name = job["engine_name"].as_str().expect("name").to_owned();
        client.describe_training_job().training_job_name(name).send().await.expect("describe")
    };
    let described = describe(&ids[0]).await;
    let hps = described.hyper_parameters().expect("hyperparameters");
    assert_eq!(hps["sagemaker_program"], "\"train.py\"");
    assert_eq!(hps["epochs"], "\"3\"");
    assert!(
        described
            .algorithm_specification()
            .and_then(|a| a.training_image())
            .is_some_and(|i| i.contains("sagemaker-scikit-learn"))
    );
    assert_eq!(described.role_arn(), Some("arn:aws:iam::123456789012:role/SageMakerTraining"));
    assert_eq!(describe(&ids[2]).await.role_arn(), Some(TEAM_ROLE));
    assert_eq!(describe(&ids[3]).await.role_arn(), Some("arn:aws:iam::123456789012:role/GpuTraining"));
    let channel = &described.input_data_config()[0];
    assert_eq!(channel.channel_name(), Some("train"));
    assert_eq!(
        channel.data_source().and_then(|d| d.s3_data_source()).and_then(|s| s.s3_uri()),
        Some("s3://capstan-aws/datasets/ml/churn/raw/")
    );
}

async fn aws_sdk_sagemaker_client(moto: &Moto) -> training_sdk::Client {
    let shared =
        storage::sdk_config(Some("us-east-1"), Some(&("testing".to_owned(), "testing".to_owned())), Some(&moto.url))
            .await;
    training_sdk::Client::new(&shared)
}
