//! The SageMaker serving backend against the AWS API emulator (`moto_server`
//! 5.2.1, started here; the test command installs it), for the calls moto
//! has: CreateModel, CreateEndpointConfig, CreateEndpoint (straight to
//! InService), DescribeEndpoint, UpdateEndpointWeightsAndCapacities,
//! DeleteEndpoint / DeleteEndpointConfig / DeleteModel, and SageMaker
//! Runtime's InvokeEndpoint (canned answers, set through moto's own API).
//! UpdateEndpoint, shadow variants, endpoints that take time or fail, and
//! routing by TargetVariant are tested against the stand-in
//! (`serving::standin`) through Capstan's API in `server/tests/aws_mode.rs`.

use aws_sdk_sagemaker::Client;
use serving::sagemaker::{SageMakerServing, SageMakerServingConfig, plan};
use serving::{EndpointSpec, InstanceStatus, Request, Serving, Target, VariantSpec};
use std::time::Duration;
use storage::emulator::Moto;

const ROLE: &str = "arn:aws:iam::123456789012:role/MlTeamServing";

fn variant(name: &str, weight: f64, count: u32) -> VariantSpec {
    VariantSpec {
        name: name.into(),
        model_uri: format!("s3://capstan-aws/models/ml/{name}/model.tar.gz"),
        code_uri: Some("s3://capstan-aws/jobs/ml/sources/x/sourcedir.tar.gz".into()),
        image: Some("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3".into()),
        instance_type: "ml.m5.large".into(),
        instance_count: count,
        weight,
        shadow_percent: None,
    }
}

/// Deploys as the serving worker does: again while SageMaker is busy with it.
async fn deploy(backend: &SageMakerServing, spec: &EndpointSpec) {
    for _ in 0..20 {
        match backend.deploy(spec).await {
            Ok(()) => return,
            Err(serving::ServingError::Busy(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("deploy {}: {e}", spec.name),
        }
    }
    panic!("{} stayed busy", spec.name);
}

/// Sends one HTTP POST with a JSON body (moto's own configuration API).
async fn post_json(url: &str, path: &str, body: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 2") || answer.starts_with("HTTP/1.0 2"), "{answer}");
}

#[tokio::test]
async fn endpoints_are_created_reweighed_invoked_and_deleted_on_the_emulated_sagemaker_api() {
    let moto = Moto::start().await;
    let shared =
        storage::sdk_config(Some("us-east-1"), Some(&("testing".to_owned(), "testing".to_owned())), Some(&moto.url))
            .await;
    let backend = SageMakerServing::new(SageMakerServingConfig {
        shared: &shared,
        sagemaker_endpoint: Some(&moto.url),
        runtime_endpoint: None,
        cloudwatch_endpoint: None,
        bucket: "capstan-aws".into(),
        default_role: Some("arn:aws:iam::123456789012:role/SiteDefault".into()),
    });
    let client = Client::new(&shared);
    let mut spec = EndpointSpec {
        name: "ml-churn".into(),
        team: "00000000-0000-0000-0000-000000000001".into(),
        team_slug: "ml".into(),
        role: Some(ROLE.into()),
        capture_percent: Some(20),
        variants: vec![variant("champion", 9.0, 1), variant("challenger", 1.0, 1)],
        blue_green: None,
    };
    let planned = plan(&spec, ROLE, "capstan-aws").expect("plan");

    deploy(&backend, &spec).await;
    let described = backend.describe("ml-churn").await.expect("describe").expect("exists");
    assert_eq!(described.status, "InService", "moto puts endpoints in service at once");
    assert_eq!(described.instances.len(), 2);
    assert!(described.instances.iter().all(|i| i.status == InstanceStatus::Healthy && i.address.is_none()));

    // what SageMaker was asked for
    let endpoint = client.describe_endpoint().endpoint_name("ml-churn").send().await.expect("endpoint");
    assert_eq!(endpoint.endpoint_config_name(), Some(planned.config.as_str()));
    let config = client.describe_endpoint_config().endpoint_config_name(&planned.config).send().await.expect("config");
    let variants: Vec<(Option<&str>, Option<f32>, Option<i32>)> = config
        .production_variants()
        .iter()
        .map(|v| (v.variant_name(), v.initial_variant_weight(), v.initial_instance_count()))
        .collect();
    assert_eq!(variants, vec![(Some("champion"), Some(9.0), Some(1)), (Some("challenger"), Some(1.0), Some(1))]);
    let capture = config.data_capture_config().expect("data capture");
    assert_eq!(capture.initial_sampling_percentage(), Some(20));
    assert_eq!(capture.destination_s3_uri(), Some("s3://capstan-aws/endpoints/ml/ml-churn/data-capture/"));
    let model = client.describe_model().model_name(&planned.models[0].name).send().await.expect("model");
    assert_eq!(model.execution_role_arn(), Some(ROLE), "the team's role, not the site's");
    let container = model.primary_container().expect("container");
    assert_eq!(container.model_data_url(), Some("s3://capstan-aws/models/ml/champion/model.tar.gz"));
    assert!(container.image().is_some_and(|i| i.contains("sagemaker-scikit-learn")));
    assert_eq!(
        container.environment().and_then(|e| e.get("SAGEMAKER_PROGRAM")).map(String::as_str),
        Some("inference.py")
    );

    // deploying the same spec again (a retry after a crash) makes nothing new
    deploy(&backend, &spec).await;
    let configs = client.list_endpoint_configs().send().await.expect("configs");
    assert_eq!(configs.endpoint_configs().len(), 1);
    let models = client.list_models().send().await.expect("models");
    assert_eq!(models.models().len(), 2);

    // weights and counts change in place
    spec.variants[0].weight = 1.0;
    spec.variants[1].instance_count = 2;
    deploy(&backend, &spec).await;
    let endpoint = client.describe_endpoint().endpoint_name("ml-churn").send().await.expect("endpoint");
    assert_eq!(endpoint.endpoint_config_name(), Some(planned.config.as_str()), "no new configuration");
    let now: Vec<(Option<&str>, Option<f32>, Option<i32>)> = endpoint
        .production_variants()
        .iter()
        .map(|v| (v.variant_name(), v.desired_weight(), v.desired_instance_count()))
        .collect();
    assert_eq!(now, vec![(Some("champion"), Some(1.0), Some(1)), (Some("challenger"), Some(1.0), Some(2))]);
    let described = backend.describe("ml-churn").await.expect("describe").expect("exists");
    assert_eq!(described.instances.iter().filter(|i| i.variant == "challenger").count(), 2);

    // invocations go to SageMaker Runtime (moto answers what it was told to)
    post_json(
        &moto.url,
        "/moto-api/static/sagemaker/endpoint-results",
        r#"{"results": [{"Body": "{\"churn\": 0.25}", "ContentType": "application/json", "InvokedProductionVariant": "challenger"}]}"#,
    )
    .await;
    let answer = backend
        .invoke(
            &Target { endpoint: "ml-churn", variant: "challenger", address: None },
            Request {
                body: bytes::Bytes::from_static(b"24,70.5,3"),
                content_type: Some("text/csv".into()),
                accept: Some("application/json".into()),
            },
            Duration::from_secs(10),
        )
        .await
        .expect("invoke");
    assert_eq!(answer.status, 200);
    assert_eq!(&answer.body[..], br#"{"churn": 0.25}"#);
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));

    // a team without a role of its own runs as the site's role
    let other = EndpointSpec {
        name: "ops-fraud".into(),
        team_slug: "ops".into(),
        role: None,
        capture_percent: None,
        variants: vec![variant("a", 1.0, 1)],
        ..spec.clone()
    };
    deploy(&backend, &other).await;
    let other_model =
        &plan(&other, "arn:aws:iam::123456789012:role/SiteDefault", "capstan-aws").expect("plan").models[0];
    let model = client.describe_model().model_name(&other_model.name).send().await.expect("model");
    assert_eq!(model.execution_role_arn(), Some("arn:aws:iam::123456789012:role/SiteDefault"));

    // deleting takes the endpoint, its configuration and its models, and nothing of the other's
    backend.remove("ml-churn").await.expect("remove");
    assert!(backend.describe("ml-churn").await.expect("describe").is_none());
    let configs = client.list_endpoint_configs().send().await.expect("configs");
    let names: Vec<&str> = configs.endpoint_configs().iter().filter_map(|c| c.endpoint_config_name()).collect();
    assert_eq!(names.len(), 1);
    assert!(names[0].starts_with("ops-fraud-c"), "{names:?}");
    let models = client.list_models().send().await.expect("models");
    let names: Vec<&str> = models.models().iter().filter_map(|m| m.model_name()).collect();
    assert_eq!(names, vec![other_model.name.as_str()]);
    backend.remove("ml-churn").await.expect("removing again is nothing");
}
