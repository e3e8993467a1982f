//! What SageMaker itself counts of an endpoint's variants, from CloudWatch
//! (namespace `AWS/SageMaker`, dimensions `EndpointName` and `VariantName`):
//! `Invocations`, `Invocation4XXErrors`, `Invocation5XXErrors` per minute,
//! and `ModelLatency` p50/p95/p99 (microseconds on CloudWatch). These count
//! every invocation — through Capstan's gateway or straight to SageMaker
//! Runtime — so in AWS mode they are the truth the endpoint's charts show.

use crate::VariantMinute;
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use std::collections::BTreeMap;

/// The counts asked for per variant (their `Sum` per minute).
const COUNTS: [&str; 3] = ["Invocations", "Invocation4XXErrors", "Invocation5XXErrors"];
/// The latency percentiles asked for per variant.
const PERCENTILES: [&str; 3] = ["p50", "p95", "p99"];

pub struct CloudWatch {
    client: Client,
}

impl CloudWatch {
    pub fn new(shared: &aws_config::SdkConfig, endpoint: Option<&str>) -> Self {
        let mut config = aws_sdk_cloudwatch::config::Builder::from(shared);
        if let Some(url) = endpoint {
            config = config.endpoint_url(url);
        }
        Self { client: Client::from_conf(config.build()) }
    }

    /// The state (`OK`, `ALARM`, `INSUFFICIENT_DATA`) of each metric alarm
    /// of `names` that exists (DescribeAlarms).
    pub async fn alarm_states(&self, names: &[String]) -> anyhow::Result<Vec<(String, String)>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let out = self.client.describe_alarms().set_alarm_names(Some(names.to_vec())).send().await?;
        Ok(out
            .metric_alarms()
            .iter()
            .map(|a| {
                let state = a.state_value().map(|s| s.as_str().to_owned()).unwrap_or_default();
                (a.alarm_name().unwrap_or_default().to_owned(), state)
            })
            .collect())
    }

    /// Per-minute figures of `variants` of endpoint `endpoint` from minute
    /// `since` to minute `until` (seconds since the epoch, whole minutes).
    /// The counts come in one request, the percentiles in another: where
    /// the percentiles cannot be had, the counts still are.
    pub async fn variant_minutes(
        &self,
        endpoint: &str,
        variants: &[String],
        since: i64,
        until: i64,
    ) -> anyhow::Result<Vec<VariantMinute>> {
        let mut minutes: BTreeMap<(String, i64), VariantMinute> = BTreeMap::new();
        let queries = |namespace: &str, stats: &[(&str, &str)]| -> Vec<(String, String, usize, MetricDataQuery)> {
            let mut out = Vec::new();
            for (v, variant) in variants.iter().enumerate() {
                for (s, (metric, stat)) in stats.iter().enumerate() {
                    let id = format!("q{v}_{s}");
                    let query = MetricDataQuery::builder()
                        .id(&id)
                        .metric_stat(
                            MetricStat::builder()
                                .metric(
                                    Metric::builder()
                                        .namespace(namespace)
                                        .metric_name(*metric)
                                        .dimensions(Dimension::builder().name("EndpointName").value(endpoint).build())
                                        .dimensions(Dimension::builder().name("VariantName").value(variant).build())
                                        .build(),
                                )
                                .period(60)
                                .stat(*stat)
                                .build(),
                        )
                        .return_data(true)
                        .build();
                    out.push((id, variant.clone(), s, query));
                }
            }
            out
        };
        let counts: Vec<(&str, &str)> = COUNTS.iter().map(|m| (*m, "Sum")).collect();
        for (variant, s, minute, value) in self.fetch(queries("AWS/SageMaker", &counts), since, until).await? {
            let row = minutes.entry((variant.clone(), minute)).or_insert_with(|| VariantMinute {
                variant,
                minute,
                ..Default::default()
            });
            match s {
                0 => row.invocations = value,
                1 => row.errors_4xx = value,
                _ => row.errors_5xx = value,
            }
        }
        let latency: Vec<(&str, &str)> = PERCENTILES.iter().map(|p| ("ModelLatency", *p)).collect();
        match self.fetch(queries("AWS/SageMaker", &latency), since, until).await {
            Ok(found) => {
                for (variant, s, minute, micros) in found {
                    // a minute with latency but no invocation row counts nothing
                    let Some(row) = minutes.get_mut(&(variant, minute)) else { continue };
                    let ms = Some(micros / 1000.0);
                    match s {
                        0 => row.p50_ms = ms,
                        1 => row.p95_ms = ms,
                        _ => row.p99_ms = ms,
                    }
                }
            }
            Err(e) => tracing::debug!(endpoint, error = %e, "no ModelLatency percentiles from CloudWatch"),
        }
        // the instances' use, which SageMaker publishes under its own namespace
        let usage = [("CPUUtilization", "Average"), ("MemoryUtilization", "Average")];
        match self.fetch(queries("/aws/sagemaker/Endpoints", &usage), since, until).await {
            Ok(found) => {
                for (variant, s, minute, percent) in found {
                    let Some(row) = minutes.get_mut(&(variant, minute)) else { continue };
                    match s {
                        0 => row.cpu_percent = Some(percent),
                        _ => row.memory_percent = Some(percent),
                    }
                }
            }
            Err(e) => tracing::debug!(endpoint, error = %e, "no instance metrics from CloudWatch"),
        }
        Ok(minutes.into_values().collect())
    }

    /// Runs the queries (every page); returns (variant, statistic index,
    /// minute, value) for each datapoint.
    async fn fetch(
        &self,
        queries: Vec<(String, String, usize, MetricDataQuery)>,
        since: i64,
        until: i64,
    ) -> anyhow::Result<Vec<(String, usize, i64, f64)>> {
        let mut out = Vec::new();
        let by_id: BTreeMap<String, (String, usize)> =
            queries.iter().map(|(id, variant, s, _)| (id.clone(), (variant.clone(), *s))).collect();
        // at most 500 queries per request
        let all: Vec<MetricDataQuery> = queries.into_iter().map(|(.., q)| q).collect();
        for batch in all.chunks(500) {
            let mut pages = self
                .client
                .get_metric_data()
                .set_metric_data_queries(Some(batch.to_vec()))
                .start_time(DateTime::from_secs(since))
                .end_time(DateTime::from_secs(until))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    anyhow::anyhow!("GetMetricData: {}", aws_sdk_cloudwatch::error::DisplayErrorContext(e))
                })?;
                for result in page.metric_data_results() {
                    let Some((variant, s)) = result.id().and_then(|id| by_id.get(id)) else { continue };
                    for (at, value) in result.timestamps().iter().zip(result.values()) {
                        let minute = at.secs() - at.secs().rem_euclid(60);
                        out.push((variant.clone(), *s, minute, *value));
                    }
                }
            }
        }
        Ok(out)
    }
}
