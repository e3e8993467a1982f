//! SageMaker's model registry, as Capstan's registry mirrors it in AWS mode:
//! a model is a Model Package Group, a version a Model Package in it
//! (`InferenceSpecification`: image and `ModelDataUrl`; the version's
//! metrics and Capstan ids as customer metadata), and a status change an
//! `UpdateModelPackage` with `ModelApprovalStatus`.
//!
//! Calls are made safe to repeat by their callers: a group carries the
//! `capstan:model-id` tag, and a package the `capstan:version-id` customer
//! metadata property, so a retry after a crash finds what the first attempt
//! created instead of creating it twice.

use crate::BackendError;
use crate::sagemaker::{SageMaker, classify};
use aws_sdk_sagemaker::types::{
    InferenceSpecification, ModelApprovalStatus, ModelPackageContainerDefinition, ModelPackageType, Tag,
};
use std::collections::BTreeMap;

/// The tag that marks a group as a Capstan model's.
pub const MODEL_ID_TAG: &str = "capstan:model-id";
/// The customer metadata property that names a package's Capstan version.
pub const VERSION_ID_PROPERTY: &str = "capstan:version-id";

/// A group as the import page lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSummary {
    pub name: String,
    pub arn: String,
    pub description: Option<String>,
}

/// One package of a group, described.
#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    pub arn: String,
    /// SageMaker's number within the group.
    pub version: Option<i32>,
    pub approval_status: String,
    pub image: Option<String>,
    pub model_data_url: Option<String>,
    pub framework: Option<String>,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// What a new package holds.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageSpec {
    pub group: String,
    pub description: String,
    pub image: String,
    pub model_data_url: String,
    pub framework: Option<String>,
    pub approval_status: String,
    /// Customer metadata: the version's metrics and Capstan ids.
    pub metadata: BTreeMap<String, String>,
    /// SageMaker's idempotency token (the version id).
    pub client_token: String,
}

/// SageMaker's model registry (or an emulator of it).
#[async_trait::async_trait]
pub trait ModelPackages: Send + Sync {
    /// The group's `capstan:model-id` tag, `Ok(None)` for an untagged group,
    /// [`BackendError::NotFound`] when there is no such group.
    async fn group_owner(&self, group: &str) -> Result<Option<String>, BackendError>;
    async fn create_group(&self, group: &str, description: &str, model_id: &str) -> Result<(), BackendError>;
    /// Every group of the account and region, by name.
    async fn list_groups(&self) -> Result<Vec<GroupSummary>, BackendError>;
    /// Every package of the group, oldest first, described.
    async fn packages(&self, group: &str) -> Result<Vec<Package>, BackendError>;
    /// Creates the package; returns its ARN.
    async fn create_package(&self, spec: &PackageSpec) -> Result<String, BackendError>;
    /// Sets the package's approval status and its whole customer metadata.
    async fn update_package(
        &self,
        arn: &str,
        approval_status: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<(), BackendError>;
}

/// A legal Model Package Group name: 1-63 letters, digits and hyphens, a
/// letter or digit first and last.
pub fn is_legal_group_name(name: &str) -> bool {
    crate::is_legal_job_name(name)
}

#[async_trait::async_trait]
impl ModelPackages for SageMaker {
    async fn group_owner(&self, group: &str) -> Result<Option<String>, BackendError> {
        let described = self
            .client
            .describe_model_package_group()
            .model_package_group_name(group)
            .send()
            .await
            .map_err(classify)?;
        let Some(arn) = described.model_package_group_arn() else { return Ok(None) };
        let tags = self.client.list_tags().resource_arn(arn).send().await.map_err(classify)?;
        Ok(tags.tags().iter().find(|t| t.key() == Some(MODEL_ID_TAG)).and_then(|t| t.value().map(str::to_owned)))
    }

    async fn create_group(&self, group: &str, description: &str, model_id: &str) -> Result<(), BackendError> {
        self.client
            .create_model_package_group()
            .model_package_group_name(group)
            .model_package_group_description(description)
            .tags(Tag::builder().key(MODEL_ID_TAG).value(model_id).build())
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn list_groups(&self) -> Result<Vec<GroupSummary>, BackendError> {
        let mut groups = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_model_package_groups()
                .sort_by(aws_sdk_sagemaker::types::ModelPackageGroupSortBy::Name)
                .max_results(100)
                .set_next_token(token)
                .send()
                .await
                .map_err(classify)?;
            groups.extend(page.model_package_group_summary_list().iter().map(|g| GroupSummary {
                name: g.model_package_group_name().unwrap_or_default().to_owned(),
                arn: g.model_package_group_arn().unwrap_or_default().to_owned(),
                description: g.model_package_group_description().map(str::to_owned),
            }));
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(groups);
            }
        }
    }

    async fn packages(&self, group: &str) -> Result<Vec<Package>, BackendError> {
        let mut arns = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_model_packages()
                .model_package_group_name(group)
                .model_package_type(ModelPackageType::Versioned)
                .sort_by(aws_sdk_sagemaker::types::ModelPackageSortBy::CreationTime)
                .sort_order(aws_sdk_sagemaker::types::SortOrder::Ascending)
                .max_results(100)
                .set_next_token(token)
                .send()
                .await
                .map_err(classify)?;
            arns.extend(
                page.model_package_summary_list().iter().filter_map(|p| p.model_package_arn().map(str::to_owned)),
            );
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        let mut packages = Vec::with_capacity(arns.len());
        for arn in arns {
            let p = self.client.describe_model_package().model_package_name(&arn).send().await.map_err(classify)?;
            let container = p.inference_specification().and_then(|s| s.containers().first());
            packages.push(Package {
                arn,
                version: p.model_package_version(),
                approval_status: p.model_approval_status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                image: container.and_then(|c| c.image()).map(str::to_owned),
                model_data_url: container.and_then(|c| c.model_data_url()).map(str::to_owned),
                framework: container.and_then(|c| c.framework()).map(str::to_owned),
                description: p.model_package_description().map(str::to_owned),
                metadata: p
                    .customer_metadata_properties()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
            });
        }
        Ok(packages)
    }

    async fn create_package(&self, spec: &PackageSpec) -> Result<String, BackendError> {
        let mut container =
            ModelPackageContainerDefinition::builder().image(&spec.image).model_data_url(&spec.model_data_url);
        if let Some(framework) = &spec.framework {
            container = container.framework(framework);
        }
        let inference = InferenceSpecification::builder()
            .containers(container.build())
            .supported_content_types("text/csv")
            .supported_content_types("application/json")
            .supported_response_mime_types("text/csv")
            .supported_response_mime_types("application/json")
            .build();
        let created = self
            .client
            .create_model_package()
            .model_package_group_name(&spec.group)
            .model_package_description(&spec.description)
            .inference_specification(inference)
            .model_approval_status(ModelApprovalStatus::from(spec.approval_status.as_str()))
            .set_customer_metadata_properties(Some(spec.metadata.clone().into_iter().collect()))
            .client_token(&spec.client_token)
            .send()
            .await
            .map_err(classify)?;
        created.model_package_arn().map(str::to_owned).ok_or_else(|| BackendError::Aws {
            code: "InvalidResponse".into(),
            message: "CreateModelPackage answered without an ARN".into(),
        })
    }

    async fn update_package(
        &self,
        arn: &str,
        approval_status: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<(), BackendError> {
        self.client
            .update_model_package()
            .model_package_arn(arn)
            .model_approval_status(ModelApprovalStatus::from(approval_status))
            .set_customer_metadata_properties(Some(metadata.clone().into_iter().collect()))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}
