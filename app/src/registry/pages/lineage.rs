//! The lineage graph of a model version, drawn as SVG on the server: one
//! column per step (dataset versions or artifact, training job, version,
//! the endpoints serving it),
//! each node a link to its page.

use crate::registry::types::{Lineage, LineageKind};
use leptos::prelude::*;

const NODE_W: usize = 220;
const NODE_H: usize = 52;
const COL_GAP: usize = 90;
const ROW_GAP: usize = 18;
const PAD: usize = 12;

fn column(kind: LineageKind) -> usize {
    match kind {
        LineageKind::DatasetVersion | LineageKind::Artifact => 0,
        LineageKind::TrainingJob => 1,
        LineageKind::ModelVersion => 2,
        LineageKind::Endpoint => 3,
    }
}

fn class(kind: LineageKind) -> &'static str {
    match kind {
        LineageKind::DatasetVersion => "node dataset",
        LineageKind::Artifact => "node artifact",
        LineageKind::TrainingJob => "node job",
        LineageKind::ModelVersion => "node version",
        LineageKind::Endpoint => "node endpoint",
    }
}

/// Escapes text for XML content and attribute values.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters, the middle elided (URIs keep both ends).
fn fit(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_owned();
    }
    let head: String = text.chars().take(max / 2 - 1).collect();
    let tail: String = text.chars().skip(n - (max - max / 2)).collect();
    format!("{head}…{tail}")
}

/// The graph as an SVG document: columns left to right, edges as curves
/// labelled with the channel they fed.
pub fn svg(lineage: &Lineage) -> String {
    // columns in use, in order, so an artifact sits right next to its version
    let mut used: Vec<usize> = lineage.nodes.iter().map(|n| column(n.kind)).collect();
    used.sort_unstable();
    used.dedup();
    let mut rows = vec![0usize; used.len()];
    let mut place = std::collections::HashMap::new();
    for node in &lineage.nodes {
        let col = used.iter().position(|c| *c == column(node.kind)).unwrap_or_default();
        place.insert(node.id.as_str(), (col, rows[col]));
        rows[col] += 1;
    }
    let tallest = rows.iter().copied().max().unwrap_or(1).max(1);
    let height = PAD * 2 + tallest * NODE_H + (tallest - 1) * ROW_GAP;
    let width = PAD * 2 + used.len() * NODE_W + used.len().saturating_sub(1) * COL_GAP;
    // each column is centred vertically
    let at = |col: usize, row: usize| {
        let span = rows[col] * NODE_H + rows[col].saturating_sub(1) * ROW_GAP;
        let top = (height - span) / 2;
        (PAD + col * (NODE_W + COL_GAP), top + row * (NODE_H + ROW_GAP))
    };
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="lineage" role="img" aria-label="Lineage" viewBox="0 0 {width} {height}" width="{width}" height="{height}">"#
    );
    for edge in &lineage.edges {
        let (Some(&(fc, fr)), Some(&(tc, tr))) = (place.get(edge.from.as_str()), place.get(edge.to.as_str())) else {
            continue;
        };
        let (fx, fy) = at(fc, fr);
        let (tx, ty) = at(tc, tr);
        let (x1, y1, x2, y2) = (fx + NODE_W, fy + NODE_H / 2, tx, ty + NODE_H / 2);
        let mid = (x1 + x2) / 2;
        out.push_str(&format!(
            r#"<path class="edge" d="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"/><text class="edge-label" x="{mid}" y="{}" text-anchor="middle">{}</text>"#,
            (y1 + y2) / 2 - 4,
            xml(&fit(&edge.label, 16)),
        ));
    }
    for node in &lineage.nodes {
        let Some(&(col, row)) = place.get(node.id.as_str()) else { continue };
        let (x, y) = at(col, row);
        let body = format!(
            r#"<g class="{}" data-node="{}"><title>{}</title><rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="8"/><text class="label" x="{}" y="{}">{}</text><text class="detail" x="{}" y="{}">{}</text></g>"#,
            class(node.kind),
            xml(&node.id),
            xml(&format!("{}: {}", node.label, node.detail)),
            x + 12,
            y + 22,
            xml(&fit(&node.label, 26)),
            x + 12,
            y + 40,
            xml(&fit(&node.detail, 32)),
        );
        match &node.url {
            Some(url) => out.push_str(&format!(r#"<a href="{}">{body}</a>"#, xml(url))),
            None => out.push_str(&body),
        }
    }
    out.push_str("</svg>");
    out
}

/// The graph in a scrollable box.
#[component]
pub fn LineageGraph(lineage: Lineage) -> impl IntoView {
    view! { <div class="lineage-graph" id="lineage" inner_html=svg(&lineage)></div> }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::types::{LineageEdge, LineageNode};

    fn node(id: &str, kind: LineageKind, label: &str) -> LineageNode {
        LineageNode { id: id.into(), kind, label: label.into(), detail: "d".into(), url: Some(format!("/x/{id}")) }
    }

    #[test]
    fn draws_every_node_as_a_link_and_every_edge_escaped() {
        let lineage = Lineage {
            nodes: vec![
                node("dataset_version:a", LineageKind::DatasetVersion, "churn v1"),
                node("dataset_version:b", LineageKind::DatasetVersion, "<script>alert(1)</script>"),
                node("training_job:j", LineageKind::TrainingJob, "churn-lr"),
                node("model_version:m", LineageKind::ModelVersion, "churn v2"),
            ],
            edges: vec![
                LineageEdge { from: "dataset_version:a".into(), to: "training_job:j".into(), label: "train".into() },
                LineageEdge { from: "dataset_version:b".into(), to: "training_job:j".into(), label: "test".into() },
                LineageEdge { from: "training_job:j".into(), to: "model_version:m".into(), label: "registered".into() },
            ],
        };
        let svg = svg(&lineage);
        assert_eq!(svg.matches("<a href=").count(), 4);
        assert_eq!(svg.matches(r#"class="edge""#).count(), 3);
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;"));
        // three columns
        assert!(svg.contains(&format!("width=\"{}\"", PAD * 2 + 3 * NODE_W + 2 * COL_GAP)));
    }

    #[test]
    fn long_text_keeps_both_ends() {
        let uri = "s3://capstan-models/models/ml/churn/2026/12/03/model.tar.gz";
        let short = fit(uri, 32);
        assert_eq!(short.chars().count(), 32);
        assert!(short.starts_with("s3://cap") && short.ends_with("model.tar.gz"));
    }
}
