//! AWS mode's dataset code path against an AWS API emulator (`moto_server`
//! on loopback, started here; the test command installs it): a version from
//! another bucket, a snapshot copied into Capstan's bucket, drift after an
//! overwrite, a missing bucket named in the error, and a browser-style upload
//! through presigned multipart URLs.

mod common;

use common::{Auth, TestApp, presigned_put};
use http::{Method, StatusCode};
use serde_json::{Value, json};
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

/// AWS mode mirrors the registry in SageMaker's (moto 5.2.1 has every call
/// used: Create/DescribeModelPackageGroup, ListTags, ListModelPackageGroups,
/// Create/List/Describe/UpdateModelPackage): a model becomes a Model
/// Package Group, a version a Model Package with its image, artifact and
/// metrics, a status change its ModelApprovalStatus — once each, also when a
/// process died after SageMaker answered. Existing groups are imported.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn model_packages_on_the_emulated_sagemaker_api(pool: PgPool) {
    use app::registry::packages::sync_due;
    let moto = Moto::start().await;
    let storage = storage::Storage::new(&moto.config(), None, "capstan-aws").await;
    storage::ensure_bucket(&storage.client, "capstan-aws").await.expect("bucket");
    let shared =
        storage::sdk_config(Some("us-east-1"), Some(&("testing".to_owned(), "testing".to_owned())), Some(&moto.url))
            .await;
    let sagemaker = std::sync::Arc::new(training::sagemaker::SageMaker::new(&shared, None, None));
    let app = TestApp::with_backend(pool, Default::default(), Default::default(), storage, sagemaker.clone())
        .await
        .with_packages(sagemaker);
    let user = app.user("ml@example.com", false).await;
    let auth = Auth::Bearer(user.token.clone());
    let dev = app.user("dev@example.com", false).await;
    let member = Auth::Bearer(dev.token.clone());
    app.team_with_members("ml", &auth, &[("dev@example.com", "member")]).await;
    let client = aws_sdk_sagemaker_client(&moto).await;
    const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn-serve:1";

    let res = app.call(Method::POST, "/api/v1/teams/ml/models", &auth, Some(json!({"name": "churn"}))).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let model = res.json()["id"].as_str().expect("id").to_owned();
    app.put("capstan-aws", "models/ml/churn/1/model.tar.gz", "model bytes").await;
    let register = async |image: Option<&str>| {
        let mut body = json!({"artifact_uri": "s3://capstan-aws/models/ml/churn/1/model.tar.gz",
                              "framework": "sklearn", "metrics": {"auc": 0.91, "loss (train)": 0.2}});
        if let Some(image) = image {
            body["image"] = json!(image);
        }
        let res = app.call(Method::POST, &format!("/api/v1/models/{model}/versions"), &auth, Some(body)).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        res.json()["id"].as_str().expect("id").to_owned()
    };
    let sync_of =
        async |id: &str| app.call(Method::GET, &format!("/api/v1/model-versions/{id}/sagemaker"), &auth, None).await;

    // Registering writes the intent; nothing is called before the worker runs.
    let v1 = register(Some(IMAGE)).await;
    let pending = sync_of(&v1).await.json();
    assert_eq!((pending["group"].as_str(), pending["pending"].as_bool()), (Some("capstan-ml-churn"), Some(true)));
    assert_eq!(pending["package_arn"], json!(null));
    assert_eq!(sync_due(&app.state).await.expect("sync"), 1);
    let synced = sync_of(&v1).await.json();
    assert_eq!(
        (synced["pending"].as_bool(), synced["synced_status"].as_str()),
        (Some(false), Some("PendingManualApproval"))
    );
    let arn = synced["package_arn"].as_str().expect("arn").to_owned();
    let package = client.describe_model_package().model_package_name(&arn).send().await.expect("describe");
    assert_eq!(package.model_package_group_name(), Some("capstan-ml-churn"));
    let container = &package.inference_specification().expect("inference").containers()[0];
    assert_eq!(container.image(), Some(IMAGE));
    assert_eq!(container.model_data_url(), Some("s3://capstan-aws/models/ml/churn/1/model.tar.gz"));
    let metadata = package.customer_metadata_properties().expect("metadata");
    assert_eq!(metadata["capstan:version-id"], v1);
    assert_eq!(metadata["metric:auc"], "0.91");
    assert!(!metadata.contains_key("metric:loss (train)"), "SageMaker refuses '(' in metadata keys: {metadata:?}");
    let group = client.describe_model_package_group().model_package_group_name("capstan-ml-churn").send().await;
    let tags = client.list_tags().resource_arn(group.expect("group").model_package_group_arn().expect("arn")).send();
    assert!(
        tags.await
            .expect("tags")
            .tags()
            .iter()
            .any(|t| t.key() == Some("capstan:model-id") && t.value() == Some(&model))
    );

    // A process that died after CreateModelPackage answered, before recording it:
    // the retry finds the package by its capstan:version-id instead of making a second.
    let v2 = register(Some(IMAGE)).await;
    assert_eq!(sync_due(&app.state).await.expect("sync"), 1);
    sqlx::query("update model_package_sync set package_arn = null, synced_status = null, dirty = true where version_id = $1::uuid")
        .bind(&v2)
        .execute(&app.pool)
        .await
        .expect("forget");
    let v2_arn_before = sync_of(&v2).await.json()["package_arn"].clone();
    assert_eq!(v2_arn_before, json!(null));
    assert_eq!(sync_due(&app.state).await.expect("sync"), 1);
    let packages =
        client.list_model_packages().model_package_group_name("capstan-ml-churn").send().await.expect("list");
    assert_eq!(packages.model_package_summary_list().len(), 2, "one package per version, after a retry too");
    assert!(sync_of(&v2).await.json()["package_arn"].as_str().is_some());

    // A status change reaches the package; an archived version is Rejected there.
    for (status, in_sagemaker) in [("Approved", "Approved"), ("Archived", "Rejected")] {
        let res = app
            .call(Method::POST, &format!("/api/v1/model-versions/{v1}/status"), &auth, Some(json!({"status": status})))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        assert_eq!(sync_of(&v1).await.json()["pending"], true);
        assert_eq!(sync_due(&app.state).await.expect("sync"), 1);
        let package = client.describe_model_package().model_package_name(&arn).send().await.expect("describe");
        assert_eq!(package.model_approval_status().map(|s| s.as_str()), Some(in_sagemaker));
        assert_eq!(package.customer_metadata_properties().expect("metadata")["capstan:status"], status);
        assert_eq!(sync_of(&v1).await.json()["synced_status"], status);
    }
    assert_eq!(sync_due(&app.state).await.expect("sync"), 0, "nothing left to do");

    // SageMaker needs an image: the version is kept, the reason shown, and retried later.
    let v3 = register(None).await;
    assert_eq!(sync_due(&app.state).await.expect("sync"), 0);
    let failed = sync_of(&v3).await.json();
    assert_eq!(failed["pending"], true);
    assert!(failed["last_error"].as_str().is_some_and(|e| e.contains("image")), "{failed}");

    // Import: a group made outside Capstan, one package in the team's area, one elsewhere.
    client.create_model_package_group().model_package_group_name("fraud-detector").send().await.expect("group");
    for (uri, status) in [
        ("s3://capstan-aws/models/ml/fraud/model.tar.gz", "Approved"),
        ("s3://someone-elses-bucket/fraud/model.tar.gz", "PendingManualApproval"),
    ] {
        let spec = training_sdk::types::InferenceSpecification::builder()
            .containers(
                training_sdk::types::ModelPackageContainerDefinition::builder()
                    .image(IMAGE)
                    .model_data_url(uri)
                    .build(),
            )
            .supported_content_types("text/csv")
            .supported_response_mime_types("text/csv")
            .build();
        client
            .create_model_package()
            .model_package_group_name("fraud-detector")
            .inference_specification(spec)
            .model_approval_status(status.into())
            .customer_metadata_properties("accuracy", "0.87")
            .customer_metadata_properties("owner", "risk-team")
            .send()
            .await
            .expect("package");
    }
    let groups = app.call(Method::GET, "/api/v1/teams/ml/sagemaker/model-package-groups", &auth, None).await;
    assert_eq!(groups.status, StatusCode::OK, "{}", groups.text());
    let listed: Vec<(String, Option<String>)> = groups
        .json()
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| (g["name"].as_str().unwrap_or_default().to_owned(), g["model"].as_str().map(str::to_owned)))
        .collect();
    assert_eq!(
        listed,
        [("capstan-ml-churn".to_owned(), Some("ml/churn".to_owned())), ("fraud-detector".to_owned(), None)]
    );
    let models_before = app.count("select count(*) from model").await;
    let import = async |who: &Auth, body: serde_json::Value| {
        app.call(Method::POST, "/api/v1/teams/ml/models/import", who, Some(body)).await
    };
    // refusals write nothing: a member, an unknown group, a group another model mirrors
    assert_eq!(import(&member, json!({"group": "fraud-detector"})).await.status, StatusCode::FORBIDDEN);
    let res = import(&auth, json!({"group": "no-such-group"})).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    assert_eq!(res.json()["errors"][0]["field"], "group");
    let res = import(&auth, json!({"group": "capstan-ml-churn", "name": "again"})).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
    assert!(res.text().contains("ml/churn"), "{}", res.text());
    assert_eq!(app.count("select count(*) from model").await, models_before);
    let res = import(&auth, json!({"group": "fraud-detector", "name": "fraud"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let imported = res.json();
    assert_eq!(imported["versions"], 1);
    assert!(
        imported["skipped"][0]
            .as_str()
            .is_some_and(|s| s.contains("fraud-detector/2") && s.contains("someone-elses-bucket")),
        "{imported}"
    );
    let fraud = imported["model"]["id"].as_str().expect("id").to_owned();
    let versions = app.call(Method::GET, &format!("/api/v1/models/{fraud}/versions"), &auth, None).await.json();
    let version = &versions["items"][0];
    assert_eq!(
        (version["number"].as_i64(), version["status"].as_str(), version["source"].as_str()),
        (Some(1), Some("Approved"), Some("sagemaker"))
    );
    assert_eq!(version["metrics"]["accuracy"], 0.87);
    assert_eq!(version["artifact_uri"], "s3://capstan-aws/models/ml/fraud/model.tar.gz");
    // an imported version is counted, and found by its metrics like a registered one
    assert_eq!(imported["model"]["version_count"], 1, "{imported}");
    let found = app
        .call(Method::GET, "/api/v1/teams/ml/model-versions?filter=metrics.accuracy%20%3E%200.8", &auth, None)
        .await
        .json();
    let found: Vec<&str> = found["items"].as_array().expect("items").iter().filter_map(|v| v["id"].as_str()).collect();
    assert!(found.contains(&version["id"].as_str().unwrap_or_default()), "{found:?}");
    assert_eq!(import(&auth, json!({"group": "fraud-detector", "name": "fraud2"})).await.status, StatusCode::CONFLICT);
    assert_eq!(app.audit_count("model.imported").await, 1);
    // an imported version's status change goes to its own package; no group is created
    let fv = version["id"].as_str().expect("id").to_owned();
    let res = app
        .call(Method::POST, &format!("/api/v1/model-versions/{fv}/status"), &auth, Some(json!({"status": "Rejected"})))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(sync_due(&app.state).await.expect("sync"), 1);
    let fraud_packages =
        client.list_model_packages().model_package_group_name("fraud-detector").send().await.expect("list");
    let first =
        fraud_packages.model_package_summary_list().iter().find(|p| p.model_package_version() == Some(1)).expect("v1");
    assert_eq!(first.model_approval_status().map(|s| s.as_str()), Some("Rejected"));
    assert_eq!(fraud_packages.model_package_summary_list().len(), 2);
}

/// Endpoints in AWS mode through Capstan's API, serving worker and gateway,
/// against the SageMaker stand-in (`serving::standin`) — moto 5.2.1 has no
/// UpdateEndpoint, drops ShadowProductionVariants, puts endpoints in service
/// at once and answers InvokeEndpoint without routing; the calls it has are
/// tested against it in `serving/tests/sagemaker.rs`. Artifacts live in
/// moto's S3.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn endpoints_in_aws_mode_deploy_route_update_fail_and_delete_on_sagemaker(pool: PgPool) {
    use serving::sagemaker::{SageMakerServing, SageMakerServingConfig};
    use std::collections::HashMap;
    use std::time::Duration;
    let moto = Moto::start().await;
    let standin = serving::standin::EndpointStandIn::start().await.expect("stand-in");
    let storage = storage::Storage::new(&moto.config(), None, "capstan-aws").await;
    storage::ensure_bucket(&storage.client, "capstan-aws").await.expect("bucket");
    let shared =
        storage::sdk_config(Some("us-east-1"), Some(&("testing".to_owned(), "testing".to_owned())), Some(&moto.url))
            .await;
    let training = std::sync::Arc::new(training::sagemaker::SageMaker::new(&shared, None, None));
    let serving = std::sync::Arc::new(SageMakerServing::new(SageMakerServingConfig {
        shared: &shared,
        sagemaker_endpoint: Some(&standin.url),
        runtime_endpoint: None,
        cloudwatch_endpoint: Some(&moto.url),
        bucket: "capstan-aws".into(),
        default_role: Some("arn:aws:iam::123456789012:role/SageMakerServing".into()),
    }));
    let app = TestApp::with_backend(pool, Default::default(), Default::default(), storage, training)
        .await
        .with_serving_backend(serving);
    let admin = Auth::Bearer(app.user("admin@example.com", false).await.token);
    let member = Auth::Bearer(app.user("member@example.com", false).await.token);
    app.team_with_members("ml", &admin, &[("member@example.com", "member")]).await;
    let res = app.call(Method::POST, "/api/v1/teams/ml/models", &member, Some(json!({"name": "clf"}))).await;
    let model = res.json()["id"].as_str().expect("id").to_owned();
    let mut versions = HashMap::new();
    for (name, image) in [("a", true), ("b", true), ("c", true), ("bare", false)] {
        let key = format!("models/ml/{name}/model.tar.gz");
        app.put("capstan-aws", &key, common::source_archive(&[("model.json", b"{}")])).await;
        let mut body = json!({"artifact_uri": format!("s3://capstan-aws/{key}")});
        if image {
            body["image"] = json!("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3");
        }
        let res = app.call(Method::POST, &format!("/api/v1/models/{model}/versions"), &member, Some(body)).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        versions.insert(name, res.json()["id"].as_str().expect("id").to_owned());
    }
    let variant = |name: &str, version: &str, weight: f64| json!({"name": name, "version_id": versions[version], "instance_type": "ml.m5.large", "instance_count": 1, "weight": weight});
    let create = async |body: serde_json::Value| {
        let res = app.call(Method::POST, "/api/v1/teams/ml/endpoints", &member, Some(body)).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        res.json()["id"].as_str().expect("id").to_owned()
    };
    let settled = async |id: &str| {
        app.wait_for(&format!("/api/v1/endpoints/{id}"), &member, |e| {
            matches!(e["status"].as_str(), Some("InService" | "Failed"))
        })
        .await
    };

    // a version without an image cannot run on SageMaker: refused, nothing written
    let res = app
        .call(
            Method::POST,
            "/api/v1/teams/ml/endpoints",
            &member,
            Some(json!({"name": "bare", "variants": [variant("a", "bare", 1.0)]})),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    assert_eq!(res.json()["errors"][0]["field"], "variants[0].version_id", "{}", res.text());
    assert!(res.text().contains("no inference image"), "{}", res.text());
    assert_eq!(app.count("select count(*) from endpoint").await, 0);

    // two production variants and a shadow: the shadow is a production
    // variant of weight 0 that the gateway copies requests to
    let ab = create(json!({"name": "ab", "variants": [variant("a", "a", 3.0), variant("b", "b", 1.0)],
                           "shadow": {"name": "s", "version_id": versions["c"], "instance_type": "ml.m5.large",
                                      "instance_count": 1, "percent": 50}}))
    .await;
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(server::workers::serving(app.state.clone(), Duration::from_millis(200), stop.clone()));
    let endpoint = settled(&ab).await;
    assert_eq!(endpoint["status"], "InService", "{endpoint}");
    let (config, live) = standin.endpoint("ml-ab").expect("on SageMaker");
    assert_eq!(
        live,
        vec![("a".to_owned(), 3.0, 1), ("b".to_owned(), 1.0, 1), ("s".to_owned(), 0.0, 1)],
        "the shadow gets nothing of SageMaker's choosing"
    );
    let requested = standin.config(&config).expect("config");
    assert!(requested["ShadowProductionVariants"].is_null(), "{requested}");
    assert_eq!(app.audit_count("endpoint.in_service").await, 1);
    let model_name = requested["ProductionVariants"][0]["ModelName"].as_str().expect("model").to_owned();
    let created_model = standin.model(&model_name).expect("model");
    assert_eq!(created_model["ExecutionRoleArn"], "arn:aws:iam::123456789012:role/SageMakerServing");
    assert_eq!(created_model["PrimaryContainer"]["ModelDataUrl"], "s3://capstan-aws/models/ml/a/model.tar.gz");

    // the gateway routes by weight through SageMaker Runtime (TargetVariant)
    let invoke = async |engine: &str, body: &str, pin: Option<&str>| {
        let mut req = http::Request::builder()
            .method(Method::POST)
            .uri(format!("/endpoints/{engine}/invocations"))
            .header("content-type", "application/json");
        if let Auth::Bearer(t) = &member {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(v) = pin {
            req = req.header("X-Amzn-SageMaker-Target-Variant", v);
        }
        app.send(req.body(axum::body::Body::from(body.to_owned())).expect("request")).await
    };
    let mut counts: HashMap<String, u32> = HashMap::new();
    for _ in 0..400 {
        let res = invoke("ml-ab", "[[1, 2]]", None).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let header =
            res.headers.get("x-amzn-invoked-production-variant").and_then(|v| v.to_str().ok()).expect("header");
        assert_eq!(res.json()["variant"], header, "the variant SageMaker was asked for answered");
        *counts.entry(header.to_owned()).or_default() += 1;
    }
    assert_eq!(counts.get("s"), None, "the shadow never answers a caller");
    let a = f64::from(counts.get("a").copied().unwrap_or(0));
    let chi2 = (a - 300.0).powi(2) / 300.0 + (400.0 - a - 100.0).powi(2) / 100.0;
    assert!(chi2 < 10.83, "3:1 by weight: {counts:?} (chi-square {chi2:.2})");
    // about half the requests were copied to the shadow (asynchronously)
    let mut copies = 0;
    for _ in 0..50 {
        copies = standin.invocations().iter().filter(|(e, v)| e == "ml-ab" && v == "s").count();
        if copies >= 140 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!((140..=260).contains(&copies), "50 % of 400 copied to the shadow: {copies}");
    // the model's own error is a ModelError with its status
    let res = invoke("ml-ab", r#"{"fail": true}"#, Some("b")).await;
    assert_eq!(res.status, StatusCode::FAILED_DEPENDENCY, "{}", res.text());
    assert_eq!(res.json()["OriginalStatusCode"], 400, "{}", res.text());

    // CloudWatch's per-variant figures (moto's CloudWatch) count every
    // invocation, also those sent to SageMaker Runtime directly: for the
    // minutes it has, they take the place of the gateway's own counts
    app::endpoints::metrics::flush(&app.state).await.expect("the gateway's counts");
    let now = time::OffsetDateTime::now_utc();
    let minute = now.unix_timestamp() - now.unix_timestamp().rem_euclid(60);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&shared);
    // and the instances' use, under SageMaker's own namespace (CPU in percent of one vCPU: 2 on ml.m5.large)
    let usage = "/aws/sagemaker/Endpoints";
    for (namespace, variant, metric, value) in [
        ("AWS/SageMaker", "a", "Invocations", 700.0),
        ("AWS/SageMaker", "b", "Invocations", 250.0),
        ("AWS/SageMaker", "a", "Invocation5XXErrors", 7.0),
        (usage, "a", "CPUUtilization", 120.0),
        (usage, "a", "MemoryUtilization", 40.0),
        (usage, "b", "CPUUtilization", 50.0),
        (usage, "b", "MemoryUtilization", 88.0),
    ] {
        use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
        let dimension = |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
        let datum = MetricDatum::builder()
            .metric_name(metric)
            .dimensions(dimension("EndpointName", "ml-ab"))
            .dimensions(dimension("VariantName", variant))
            .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_secs(minute + 1))
            .value(value)
            .build();
        cloudwatch.put_metric_data().namespace(namespace).metric_data(datum).send().await.expect("put");
    }
    for pull in ["first", "second"] {
        assert_eq!(app::endpoints::metrics::pull_cloudwatch(&app.state).await.expect("pull"), 2, "{pull} pull");
        let metrics = app.call(Method::GET, &format!("/api/v1/endpoints/{ab}/metrics"), &member, None).await.json();
        let at = time::OffsetDateTime::from_unix_timestamp(minute)
            .expect("minute")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format");
        let i = metrics["at"].as_array().expect("at").iter().position(|t| t == at.as_str()).expect("this minute");
        let series = |v: &str| {
            metrics["variants"].as_array().expect("variants").iter().find(|s| s["variant"] == v).cloned().expect(v)
        };
        assert_eq!(
            (series("a")["requests"][i].as_u64(), series("b")["requests"][i].as_u64()),
            (Some(700), Some(250)),
            "CloudWatch's counts, set (not added) by the {pull} pull: {metrics}"
        );
        assert_eq!(series("a")["error_rate"][i].as_f64(), Some(0.01), "{metrics}");
    }
    // the health score's resource part: the busiest variant's CPU per vCPU or memory (b's memory, 88 %)
    let health = app.call(Method::GET, &format!("/api/v1/endpoints/{ab}/health"), &member, None).await.json();
    let part = |name: &str| health["parts"].as_array().expect("parts").iter().find(|p| p["name"] == name).cloned();
    let resources = part("resources").expect("a resource part in AWS mode");
    assert!(part("capacity").is_none(), "{health}");
    assert_eq!(resources["value"].as_f64(), Some(0.88), "{health}");
    assert!((resources["score"].as_f64().expect("score") - 28.0).abs() < 1e-9, "100 at 70 %, 0 at 95 %: {health}");
    assert!(resources["text"].as_str().is_some_and(|t| t.contains("b's memory at 88 %")), "{health}");

    // new weights change in place: UpdateEndpointWeightsAndCapacities, no redeployment
    let res = app
        .call(
            Method::PUT,
            &format!("/api/v1/endpoints/{ab}/weights"),
            &member,
            Some(json!({"weights": [{"variant": "a", "weight": 1}, {"variant": "b", "weight": 1}]})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    for _ in 0..100 {
        if standin.endpoint("ml-ab").is_some_and(|(_, v)| v[0].1 == 1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (same_config, live) = standin.endpoint("ml-ab").expect("endpoint");
    assert_eq!((same_config.as_str(), live[0].1, live[1].1), (config.as_str(), 1.0, 1.0));
    assert_eq!((standin.calls("UpdateEndpointWeightsAndCapacities"), standin.calls("UpdateEndpoint")), (1, 0));

    // a rollout's guardrail watches a CloudWatch alarm (moto never evaluates alarms: the test sets
    // its state); in ALARM, the candidate is rolled back however few requests it served
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StateValue, Statistic};
    let dimension = |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
    cloudwatch
        .put_metric_alarm()
        .alarm_name("ml-ab-b-5xx")
        .namespace("AWS/SageMaker")
        .metric_name("Invocation5XXErrors")
        .dimensions(dimension("EndpointName", "ml-ab"))
        .dimensions(dimension("VariantName", "b"))
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .send()
        .await
        .expect("put alarm");
    // a manual rollout of b, moved to its first step (10 %) by the worker's ticks
    let start_rollout = |guardrails: Value| {
        let (app, member, ab) = (&app, &member, &ab);
        async move {
            let rollout = json!({"baseline": "a", "candidate": "b", "strategy": "manual", "step_percent": 10,
                                 "guardrails": guardrails});
            let res = app.call(Method::POST, &format!("/api/v1/endpoints/{ab}/rollouts"), member, Some(rollout)).await;
            assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
            let rollout = res.json()["id"].as_str().expect("id").to_owned();
            for _ in 0..50 {
                app::endpoints::rollouts::tick(&app.state).await.expect("tick");
                let r = app.call(Method::GET, &format!("/api/v1/rollouts/{rollout}"), member, None).await.json();
                if r["percent"] == 10 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            rollout
        }
    };
    let rollout = start_rollout(json!({"min_requests": 1000, "alarm_names": ["ml-ab-b-5xx"]})).await;
    let read = || async { app.call(Method::GET, &format!("/api/v1/rollouts/{rollout}"), &member, None).await.json() };
    app::endpoints::rollouts::tick(&app.state).await.expect("tick");
    let r = read().await;
    assert_eq!((r["state"].as_str(), r["percent"].as_i64()), (Some("running"), Some(10)), "{r}");
    let alarm = r["steps"][0]["checks"].as_array().and_then(|c| c.iter().find(|c| c["name"] == "alarms").cloned());
    assert!(alarm.as_ref().is_some_and(|a| a["status"] != "fail"), "{r}");
    cloudwatch
        .set_alarm_state()
        .alarm_name("ml-ab-b-5xx")
        .state_value(StateValue::Alarm)
        .state_reason("test: five server errors")
        .send()
        .await
        .expect("set state");
    app::endpoints::rollouts::tick(&app.state).await.expect("tick");
    let r = read().await;
    assert_eq!(r["state"], "rolled_back", "{r}");
    assert!(r["reason"].as_str().is_some_and(|why| why.contains("ml-ab-b-5xx")), "{r}");
    for _ in 0..100 {
        if standin.endpoint("ml-ab").is_some_and(|(_, v)| v[1].1 == 0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, live) = standin.endpoint("ml-ab").expect("endpoint");
    assert_eq!((live[0].1, live[1].1), (2.0, 0.0), "the baseline has the pair's weight back on SageMaker");

    // the guardrails count what CloudWatch counted: here server errors of b that never passed the gateway
    let rollout = start_rollout(json!({"min_requests": 100})).await;
    let read = || async { app.call(Method::GET, &format!("/api/v1/rollouts/{rollout}"), &member, None).await.json() };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for (metric, value) in [("Invocations", 300.0), ("Invocation5XXErrors", 60.0)] {
        use aws_sdk_cloudwatch::types::MetricDatum;
        let datum = MetricDatum::builder()
            .metric_name(metric)
            .dimensions(dimension("EndpointName", "ml-ab"))
            .dimensions(dimension("VariantName", "b"))
            .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_secs(now))
            .value(value)
            .build();
        cloudwatch.put_metric_data().namespace("AWS/SageMaker").metric_data(datum).send().await.expect("put");
    }
    app::endpoints::metrics::pull_cloudwatch(&app.state).await.expect("pull");
    app::endpoints::rollouts::tick(&app.state).await.expect("tick");
    let r = read().await;
    assert_eq!(r["state"], "rolled_back", "{r}");
    assert!(r["reason"].as_str().is_some_and(|why| why.contains("b's error rate")), "{r}");
    assert!(r["steps"][0]["checks"][0]["value"].as_f64().is_some_and(|n| n >= 300.0), "CloudWatch's count: {r}");

    // another variant set is a new configuration: UpdateEndpoint, Updating, then in service
    let res = app
        .call(
            Method::PATCH,
            &format!("/api/v1/endpoints/{ab}"),
            &member,
            Some(json!({"variants": [variant("a", "a", 1.0), variant("c", "c", 1.0)], "shadow": null})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let endpoint = app
        .wait_for(&format!("/api/v1/endpoints/{ab}"), &member, |e| {
            e["status"] == "InService" && standin.calls("UpdateEndpoint") == 1
        })
        .await;
    let names: Vec<&str> =
        endpoint["variants"].as_array().expect("variants").iter().filter_map(|v| v["name"].as_str()).collect();
    assert_eq!(names, vec!["a", "c"]);
    let (new_config, live) = standin.endpoint("ml-ab").expect("endpoint");
    assert_ne!(new_config, config);
    assert_eq!(live.iter().map(|v| v.0.as_str()).collect::<Vec<_>>(), vec!["a", "c"]);
    // once in service, the old configuration and the models no longer used go
    for _ in 0..100 {
        if !standin.config_names().contains(&config) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(standin.config_names(), vec![new_config.clone()]);
    assert_eq!(standin.model_names().len(), 2, "{:?}", standin.model_names());

    // beside one production variant, SageMaker copies to the shadow itself
    let solo = create(json!({"name": "solo", "variants": [variant("a", "a", 2.0)],
                             "shadow": {"name": "s", "version_id": versions["c"], "instance_type": "ml.m5.large",
                                        "instance_count": 1, "percent": 25}}))
    .await;
    assert_eq!(settled(&solo).await["status"], "InService");
    let (solo_config, _) = standin.endpoint("ml-solo").expect("endpoint");
    let requested = standin.config(&solo_config).expect("config");
    assert_eq!(requested["ShadowProductionVariants"][0]["VariantName"], "s", "{requested}");
    assert_eq!(requested["ShadowProductionVariants"][0]["InitialVariantWeight"], 0.5, "25 % of weight 2");
    for _ in 0..20 {
        assert_eq!(invoke("ml-solo", "[[1]]", None).await.status, StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        standin.invocations().iter().filter(|(e, _)| e == "ml-solo").all(|(_, v)| v == "a"),
        "the gateway makes no copies of its own"
    );

    // SageMaker's failure and its reason reach the endpoint
    standin.fail_next("The image 683313688378.dkr.ecr.us-east-1.amazonaws.com/x could not be pulled.");
    let bad = create(json!({"name": "bad", "variants": [variant("a", "a", 1.0)]})).await;
    let failed = settled(&bad).await;
    assert_eq!(failed["status"], "Failed", "{failed}");
    assert!(failed["failure_reason"].as_str().is_some_and(|r| r.contains("could not be pulled")), "{failed}");
    assert_eq!(app.audit_count("endpoint.failed").await, 1);

    // SageMaker's blue/green deployment replaces a variant's fleet under its name
    let patch = async |body: serde_json::Value| {
        app.call(Method::PATCH, &format!("/api/v1/endpoints/{solo}"), &member, Some(body)).await
    };
    let canary = json!({"traffic": "canary", "step_percent": 10, "wait_seconds": 600, "alarm_names": ["solo-5xx"]});
    for (body, field) in [
        (json!({"variants": [variant("z", "b", 2.0)], "deployment": canary}), "deployment"),
        (json!({"variants": [variant("a", "a", 3.0)], "deployment": canary}), "deployment"),
        (
            json!({"variants": [variant("a", "b", 2.0)], "deployment": {"traffic": "linear", "step_percent": 5}}),
            "deployment.step_percent",
        ),
        (json!({"variants": [variant("a", "b", 2.0)], "deployment": {"traffic": "gradual"}}), "deployment.traffic"),
        (
            json!({"variants": [variant("a", "b", 2.0)], "deployment": {"traffic": "all_at_once", "alarm_names": vec!["x"; 11]}}),
            "deployment.alarm_names",
        ),
    ] {
        let res = patch(body).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
        assert_eq!(res.json()["errors"][0]["field"], field, "{}", res.text());
    }
    assert_eq!(app.audit_count("endpoint.updated").await, 1, "a refused update writes nothing");
    let updates = standin.calls("UpdateEndpoint");
    let res = patch(json!({"variants": [variant("a", "b", 2.0)], "deployment": canary})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["deployment"]["traffic"], "canary");
    let done = app
        .wait_for(&format!("/api/v1/endpoints/{solo}"), &member, |e| {
            e["status"] == "InService" && standin.calls("UpdateEndpoint") > updates
        })
        .await;
    assert_eq!(done["variants"][0]["version_id"], versions["b"].as_str());
    let asked = standin.last_request("UpdateEndpoint").expect("UpdateEndpoint");
    assert_eq!(
        asked["DeploymentConfig"],
        json!({"BlueGreenUpdatePolicy": {
                   "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 600,
                                                   "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}},
                   "TerminationWaitInSeconds": 0},
               "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "solo-5xx"}]}}),
        "{asked}"
    );
    // an update without one is SageMaker's default, all at once
    let res = patch(json!({"variants": [variant("a", "c", 2.0)]})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert!(res.json()["deployment"].is_null());
    app.wait_for(&format!("/api/v1/endpoints/{solo}"), &member, |e| {
        e["status"] == "InService" && standin.calls("UpdateEndpoint") > updates + 1
    })
    .await;
    assert!(standin.last_request("UpdateEndpoint").expect("UpdateEndpoint").get("DeploymentConfig").is_none());
    let (serving_c, _) = standin.endpoint("ml-solo").expect("endpoint");
    // an alarm going off: SageMaker rolls the update back; Capstan says so and does not try again
    standin.roll_back_next("Alarm solo-5xx went into ALARM during the baking period: rolled back");
    let res =
        patch(json!({"variants": [variant("a", "b", 2.0)], "deployment": {"traffic": "linear", "step_percent": 20}}))
            .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    for _ in 0..100 {
        if app.audit_count("endpoint.failed").await == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reason: String = sqlx::query_scalar(
        "select summary->'after'->>'failure_reason' from audit_event where action = 'endpoint.failed' order by occurred_at desc limit 1",
    )
    .fetch_one(&app.pool)
    .await
    .expect("audited");
    assert!(reason.contains("rolled the blue/green update back") && reason.contains("solo-5xx"), "{reason}");
    let back = app.wait_for(&format!("/api/v1/endpoints/{solo}"), &member, |e| e["status"] == "InService").await;
    assert!(back["failure_reason"].as_str().is_some_and(|r| r.contains("rolled back")), "{back}");
    let calls = standin.calls("UpdateEndpoint");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(standin.calls("UpdateEndpoint"), calls, "a rolled-back update is not tried again by itself");
    assert_eq!(standin.endpoint("ml-solo").expect("endpoint").0, serving_c, "the earlier fleet serves");
    // under a policy, the update is a change request whose diff says how SageMaker will deploy it
    let policy = json!({"policies": [{"kind": "endpoint.update", "approvals_required": 1, "min_role": "admin",
                                      "expires_after_hours": 24}]});
    let res = app.call(Method::PUT, "/api/v1/teams/ml/approval-policies", &admin, Some(policy)).await;
    assert!(res.status.is_success(), "{}", res.text());
    let change = json!({"change": {"kind": "endpoint.update", "endpoint_id": solo,
                                   "update": {"variants": [variant("a", "c", 2.0)], "deployment": canary}},
                        "title": "canary to c"});
    let res = app.call(Method::POST, "/api/v1/teams/ml/change-requests", &member, Some(change)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let after = res.json()["diff"]["after"].as_str().unwrap_or_default().to_owned();
    assert!(
        after.contains("SageMaker blue/green: traffic canary 10 %, 600 s bake") && after.contains("alarm solo-5xx"),
        "{after}"
    );
    let res = app.call(Method::PUT, "/api/v1/teams/ml/approval-policies", &admin, Some(json!({"policies": []}))).await;
    assert!(res.status.is_success(), "{}", res.text());

    // deleting removes the endpoint, its configuration and its models on SageMaker
    let res = app.call(Method::DELETE, &format!("/api/v1/endpoints/{ab}"), &admin, None).await;
    assert!(res.status.is_success(), "{}", res.text());
    for _ in 0..100 {
        if standin.endpoint("ml-ab").is_none() && !standin.config_names().contains(&new_config) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.call(Method::GET, &format!("/api/v1/endpoints/{ab}"), &member, None).await.status, 404);
    assert!(standin.endpoint("ml-ab").is_none());
    assert!(!standin.config_names().contains(&new_config));
    assert!(standin.model_names().iter().all(|m| !m.starts_with("ml-ab-")), "{:?}", standin.model_names());
    assert!(standin.endpoint("ml-solo").is_some(), "the others stay");
    stop.cancel();
    let _ = worker.await;
}
