//! Wire types of datasets, versions (with manifests and drift), browser
//! uploads and previews, shared by the server and the browser.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Dataset {
    pub id: Uuid,
    pub team: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    /// Email of the creator.
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub archived_at: Option<time::OffsetDateTime>,
    /// Versions of any status.
    pub version_count: i64,
    /// The newest ready version's number.
    pub latest_version: Option<i32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewDataset {
    /// 1-100 of `a-z 0-9 . _ -`, unique in the team.
    #[cfg_attr(feature = "ssr", schema(pattern = r"^[a-z0-9][a-z0-9._-]{0,99}$"))]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Fields to change; omitted fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DatasetUpdate {
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
}

/// Filters for a team's dataset list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct DatasetQuery {
    /// Matches names containing this text, or this exact tag.
    pub q: Option<String>,
    /// Include archived datasets.
    #[serde(default)]
    pub archived: bool,
    pub cursor: Option<String>,
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 200))]
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, sqlx::Type))]
#[cfg_attr(feature = "ssr", sqlx(type_name = "dataset_version_status", rename_all = "lowercase"))]
#[serde(rename_all = "lowercase")]
pub enum VersionStatus {
    /// Files are being uploaded from a browser.
    Uploading,
    /// The objects are being listed (and copied, for snapshots).
    Scanning,
    /// Complete and immutable.
    Ready,
    /// See `failure`; nothing of the manifest was kept.
    Failed,
}

impl VersionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uploading => "uploading",
            Self::Scanning => "scanning",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    /// Whether the version may still change (pages refresh while it does).
    pub fn in_progress(self) -> bool {
        matches!(self, Self::Uploading | Self::Scanning)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DatasetVersion {
    pub id: Uuid,
    pub dataset_id: Uuid,
    pub dataset: String,
    /// Team slug.
    pub team: String,
    /// 1, 2, 3… per dataset.
    pub number: i32,
    /// `prefix` or `upload`.
    pub source: String,
    /// The S3 URI registered, or where the upload landed.
    pub source_uri: String,
    /// Whether the objects were copied into Capstan's managed area.
    pub snapshot: bool,
    /// Where the version's objects live (`s3://bucket/prefix/`); training reads from here.
    pub location: String,
    pub status: VersionStatus,
    pub failure: Option<String>,
    /// Objects and bytes recorded so far (live while scanning).
    pub object_count: i64,
    pub byte_count: i64,
    /// SHA-256 (hex) over the manifest sorted by key, one `key\tsize\tetag\n` line per object.
    pub digest: Option<String>,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub finished_at: Option<time::OffsetDateTime>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewVersion {
    /// `s3://bucket/prefix/`; a prefix without a trailing `/` is treated as a folder.
    pub source_uri: String,
    /// Copy the objects into Capstan's managed area so later writes to the source cannot change the version.
    #[serde(default)]
    pub snapshot: bool,
}

/// One object of a version, its key relative to the version's prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ManifestEntry {
    pub key: String,
    pub size: i64,
    pub etag: String,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub last_modified: Option<time::OffsetDateTime>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct ManifestQuery {
    /// Only keys starting with this text.
    pub prefix: Option<String>,
    pub cursor: Option<String>,
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 200))]
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct VersionQuery {
    pub cursor: Option<String>,
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 200))]
    pub limit: Option<i64>,
}

/// A drift check: the version's location re-listed and compared with its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Check {
    pub id: Uuid,
    pub version_id: Uuid,
    /// `running`, `done` or `failed`.
    pub status: String,
    pub added: i64,
    pub removed: i64,
    pub changed: i64,
    pub failure: Option<String>,
    pub checked_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub started_at: time::OffsetDateTime,
    /// When the comparison finished.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub checked_at: Option<time::OffsetDateTime>,
}

/// One object that differs from the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Drift {
    pub key: String,
    /// `added`, `removed` or `changed`.
    pub change: String,
    pub old_size: Option<i64>,
    pub new_size: Option<i64>,
    pub old_etag: Option<String>,
    pub new_etag: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct DriftQuery {
    /// A check id; the latest check when omitted.
    pub check: Option<Uuid>,
    pub cursor: Option<String>,
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 200))]
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UploadFile {
    /// Path inside the version, e.g. `train.csv` or `images/001.png`.
    pub path: String,
    /// Bytes; at least 1.
    #[cfg_attr(feature = "ssr", schema(minimum = 1))]
    pub size: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewUpload {
    pub files: Vec<UploadFile>,
}

/// How the browser should cut one file into parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UploadPlan {
    pub path: String,
    pub size: i64,
    /// Every part but the last has exactly this many bytes.
    pub part_size: i64,
    pub part_count: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UploadStarted {
    /// The new version, in status `uploading`.
    pub version: DatasetVersion,
    pub files: Vec<UploadPlan>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PartsRequest {
    pub path: String,
    /// Part numbers (1-based), at most 1000 per call.
    #[cfg_attr(feature = "ssr", schema(max_items = 1000))]
    pub parts: Vec<i32>,
}

/// A presigned `PUT` for one part; send the bytes as the body and keep the
/// `ETag` response header for completion. Valid for an hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PartUrl {
    pub number: i32,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UploadedPart {
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 10000))]
    pub number: i32,
    pub etag: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UploadedFile {
    pub path: String,
    pub parts: Vec<UploadedPart>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UploadCompletion {
    pub files: Vec<UploadedFile>,
}

/// Parts are at least 8 MiB, and large enough that no file needs more than
/// S3's 10 000 parts.
pub fn part_size_for(size: i64) -> i64 {
    const MIB: i64 = 1024 * 1024;
    let needed = (size + 9_999) / 10_000;
    let rounded = (needed + MIB - 1) / MIB * MIB;
    rounded.max(8 * MIB)
}

#[cfg(test)]
mod tests {
    use super::part_size_for;

    #[test]
    fn parts_stay_within_s3_limits() {
        const MIB: i64 = 1024 * 1024;
        assert_eq!(part_size_for(1), 8 * MIB);
        assert_eq!(part_size_for(1 << 30), 8 * MIB, "1 GiB in 128 parts");
        let five_tib = 5 * 1024 * 1024 * MIB;
        let size = part_size_for(five_tib);
        assert!((five_tib + size - 1) / size <= 10_000);
        assert_eq!(size % MIB, 0);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Column {
    pub name: String,
    /// `integer`, `float`, `boolean`, `string`, `null`, `object`, `array`, or
    /// for Parquet its physical/logical type.
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Preview {
    pub key: String,
    pub size: i64,
    pub etag: String,
    /// `csv`, `tsv`, `jsonl` or `parquet`; `None` when the format has no preview.
    pub format: Option<String>,
    pub columns: Vec<Column>,
    /// Cells as text, one inner list per row, in column order.
    pub rows: Vec<Vec<String>>,
    /// Total rows in the object, when known without reading it all (Parquet).
    pub row_count: Option<i64>,
    /// Why rows are missing or cut short, for people.
    pub note: Option<String>,
    /// Bytes fetched to build this preview.
    pub bytes_read: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct PreviewQuery {
    /// The object's key relative to the version (as in the manifest).
    pub key: String,
    /// Rows to show, 1-500 (default 50).
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 500))]
    pub rows: Option<usize>,
}
