//! Preview of one object of a dataset version: the first rows and the columns
//! with inferred types, for CSV, TSV, JSON Lines and Parquet. Only ranged GETs
//! are used: the head of a text file, and for Parquet the footer and the first
//! row group (whose size the footer gives), never the whole object.

use crate::datasets::types::{Column, Preview, PreviewQuery};
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::Action;
use bytes::Bytes;
use parquet::basic::ConvertedType;
use parquet::file::reader::{ChunkReader, FileReader as _, Length};
use uuid::Uuid;

/// How a file is read, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Tsv,
    JsonLines,
    Parquet,
}

impl Format {
    pub fn of(key: &str) -> Option<Self> {
        let lower = key.to_ascii_lowercase();
        let ext = lower.rsplit_once('.').map(|(_, e)| e)?;
        match ext {
            "csv" => Some(Self::Csv),
            "tsv" | "tab" => Some(Self::Tsv),
            "jsonl" | "ndjson" => Some(Self::JsonLines),
            "parquet" | "pq" => Some(Self::Parquet),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Tsv => "tsv",
            Self::JsonLines => "jsonl",
            Self::Parquet => "parquet",
        }
    }
}

#[cfg(feature = "ssr")]
/// The narrowest type covering every value seen in a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Boolean,
    Integer,
    Float,
    String,
    Object,
    Array,
}

#[cfg(feature = "ssr")]
impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Boolean => "boolean",
            Self::Integer => "integer",
            Self::Float => "float",
            Self::String => "string",
            Self::Object => "object",
            Self::Array => "array",
        }
    }

    fn of_text(cell: &str) -> Self {
        let cell = cell.trim();
        if cell.is_empty() {
            Self::Null
        } else if cell.parse::<i64>().is_ok() {
            Self::Integer
        } else if cell.parse::<f64>().is_ok() {
            Self::Float
        } else if cell.eq_ignore_ascii_case("true") || cell.eq_ignore_ascii_case("false") {
            Self::Boolean
        } else {
            Self::String
        }
    }

    fn merge(self, other: Self) -> Self {
        match (self, other) {
            (a, b) if a == b => a,
            (Self::Null, x) | (x, Self::Null) => x,
            (Self::Integer, Self::Float) | (Self::Float, Self::Integer) => Self::Float,
            _ => Self::String,
        }
    }
}

#[cfg(feature = "ssr")]
/// What was parsed from the head of a text file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<String>>,
}

#[cfg(feature = "ssr")]
/// Keeps whole lines only: when `complete` is false the text was cut at an
/// arbitrary byte, so everything after the last newline is dropped.
fn whole_lines(data: &[u8], complete: bool) -> &[u8] {
    if complete {
        return data;
    }
    match data.iter().rposition(|&b| b == b'\n') {
        Some(i) => &data[..=i],
        None => &[],
    }
}

#[cfg(feature = "ssr")]
/// Parses delimited text (CSV or TSV) with a header row.
pub fn parse_delimited(data: &[u8], complete: bool, delimiter: u8, max_rows: usize) -> Result<Table, String> {
    let data = whole_lines(data, complete);
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).has_headers(true).flexible(true).from_reader(data);
    let headers = reader.headers().map_err(|e| format!("the header row could not be read: {e}"))?.clone();
    if headers.is_empty() {
        return Err("the file is empty".into());
    }
    let mut kinds = vec![Kind::Null; headers.len()];
    let mut rows = Vec::new();
    for (i, record) in reader.records().take(max_rows).enumerate() {
        let record = record.map_err(|e| format!("row {} could not be read: {e}", i + 1))?;
        let mut row: Vec<String> = record.iter().map(str::to_owned).collect();
        row.resize(headers.len(), String::new());
        for (kind, cell) in kinds.iter_mut().zip(&row) {
            *kind = kind.merge(Kind::of_text(cell));
        }
        rows.push(row);
    }
    let columns = headers
        .iter()
        .zip(kinds)
        .map(|(name, kind)| Column { name: name.to_owned(), kind: kind.name().to_owned() })
        .collect();
    Ok(Table { columns, rows })
}

#[cfg(feature = "ssr")]
/// The data rows of a whole text file (header excluded; blank lines skipped
/// in JSON Lines), so a preview can say "50 of 200 rows".
fn count_rows(data: &[u8], format: Format) -> i64 {
    let delimited = |d: u8| {
        csv::ReaderBuilder::new().delimiter(d).has_headers(true).flexible(true).from_reader(data).records().count()
    };
    let n = match format {
        Format::Csv => delimited(b','),
        Format::Tsv => delimited(b'\t'),
        _ => data.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count(),
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(feature = "ssr")]
/// Parses JSON Lines: each line one object; columns are every key seen, in order of first appearance.
pub fn parse_json_lines(data: &[u8], complete: bool, max_rows: usize) -> Result<Table, String> {
    let data = whole_lines(data, complete);
    let text = std::str::from_utf8(data).map_err(|e| format!("the file is not UTF-8 text ({e})"))?;
    let mut names: Vec<String> = Vec::new();
    let mut kinds: Vec<Kind> = Vec::new();
    let mut objects = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).take(max_rows) {
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {} is not valid JSON: {e}", n + 1))?;
        let serde_json::Value::Object(map) = value else {
            return Err(format!("line {} is not a JSON object", n + 1));
        };
        for (key, value) in &map {
            let kind = match value {
                serde_json::Value::Null => Kind::Null,
                serde_json::Value::Bool(_) => Kind::Boolean,
                serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Kind::Integer,
                serde_json::Value::Number(_) => Kind::Float,
                serde_json::Value::String(_) => Kind::String,
                serde_json::Value::Array(_) => Kind::Array,
                serde_json::Value::Object(_) => Kind::Object,
            };
            match names.iter().position(|n| n == key) {
                Some(i) => kinds[i] = kinds[i].merge(kind),
                None => {
                    names.push(key.clone());
                    kinds.push(kind);
                }
            }
        }
        objects.push(map);
    }
    let rows = objects
        .iter()
        .map(|map| {
            names
                .iter()
                .map(|name| match map.get(name) {
                    None | Some(serde_json::Value::Null) => String::new(),
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                })
                .collect()
        })
        .collect();
    let columns =
        names.into_iter().zip(kinds).map(|(name, kind)| Column { name, kind: kind.name().to_owned() }).collect();
    Ok(Table { columns, rows })
}

/// Bytes read from the head of a text file.
const TEXT_HEAD: u64 = 256 * 1024;
/// The largest first row group read for Parquet rows; above it only the schema and counts are shown.
const MAX_ROW_GROUP: u64 = 32 * 1024 * 1024;
/// Parquet footers (schema and row group index) previews read at most.
const MAX_FOOTER: u64 = 16 * 1024 * 1024;
/// Uncompressed bytes of the first row group previews decode at most.
const MAX_DECODED: u64 = 64 * 1024 * 1024;

fn size_text(bytes: u64) -> String {
    crate::kernel::format::human_bytes(i64::try_from(bytes).unwrap_or(i64::MAX))
}
const DEFAULT_ROWS: usize = 50;
const MAX_ROWS: usize = 500;

pub async fn preview(ctx: &Ctx, id: Uuid, q: PreviewQuery) -> Result<Preview, AppError> {
    let loaded = crate::datasets::versions::load(ctx, id, Action::ReadTeam).await?;
    let rows = q.rows.unwrap_or(DEFAULT_ROWS);
    if !(1..=MAX_ROWS).contains(&rows) {
        return Err(AppError::query("rows", format!("Use 1 to {MAX_ROWS} rows.")));
    }
    let object = sqlx::query!("select size, etag from dataset_object where version_id = $1 and key = $2", id, q.key)
        .fetch_optional(ctx.pool())
        .await?
        .ok_or_else(|| AppError::NotFound("Object".into()))?;
    let size = u64::try_from(object.size).unwrap_or_default();
    let mut preview = Preview {
        key: q.key.clone(),
        size: object.size,
        etag: object.etag,
        format: None,
        columns: Vec::new(),
        rows: Vec::new(),
        row_count: None,
        note: None,
        bytes_read: 0,
    };
    let Some(format) = Format::of(&q.key) else {
        preview.note = Some("Preview not available for this format.".into());
        return Ok(preview);
    };
    preview.format = Some(format.name().to_owned());
    let client = &ctx.state.storage.client;
    let key = format!("{}{}", loaded.prefix, q.key);
    let read = |start: u64, len: u64| {
        let key = key.clone();
        let bucket = loaded.bucket.clone();
        async move {
            storage::read_range(client, &bucket, &key, start, len)
                .await
                .map_err(|e| AppError::field("key", format!("Could not read s3://{bucket}/{key}: {e}")))
        }
    };
    let unreadable = |what: &str, e: String| AppError::field("key", format!("Could not read this {what} file: {e}"));
    match format {
        Format::Csv | Format::Tsv | Format::JsonLines => {
            let len = size.min(TEXT_HEAD);
            let data = read(0, len).await?;
            preview.bytes_read = i64::try_from(data.len()).unwrap_or_default();
            let complete = len == size;
            let table = match format {
                Format::Csv => parse_delimited(&data, complete, b',', rows).map_err(|e| unreadable("CSV", e))?,
                Format::Tsv => parse_delimited(&data, complete, b'\t', rows).map_err(|e| unreadable("TSV", e))?,
                _ => parse_json_lines(&data, complete, rows).map_err(|e| unreadable("JSON Lines", e))?,
            };
            if !complete && table.rows.len() < rows {
                preview.note = Some(format!("Showing the rows in the first {} kB.", TEXT_HEAD / 1024));
            }
            if complete {
                preview.row_count = Some(count_rows(&data, format));
            }
            preview.columns = table.columns;
            preview.rows = table.rows;
        }
        Format::Parquet => {
            let (columns, data, row_count, fetched, note) = parquet_preview(size, rows, read).await?;
            preview.columns = columns;
            preview.rows = data;
            preview.row_count = Some(row_count);
            preview.bytes_read = fetched;
            preview.note = note;
        }
    }
    Ok(preview)
}

type ParquetParts = (Vec<Column>, Vec<Vec<String>>, i64, i64, Option<String>);

/// Reads the footer, then the first row group if it is small enough.
async fn parquet_preview<F, Fut>(size: u64, max_rows: usize, read: F) -> Result<ParquetParts, AppError>
where
    F: Fn(u64, u64) -> Fut,
    Fut: std::future::Future<Output = Result<Bytes, AppError>>,
{
    let bad = |e: String| AppError::field("key", format!("Could not read this Parquet file: {e}"));
    if size < 12 {
        return Err(bad("it is too small to be Parquet".into()));
    }
    let tail = read(size - 8, 8).await?;
    let tail_bytes: [u8; 8] = tail.as_ref().try_into().map_err(|_| bad("short read".into()))?;
    let meta_len = parquet::file::metadata::FooterTail::try_from(tail_bytes)
        .map_err(|e| bad(e.to_string()))?
        .metadata_length() as u64;
    if meta_len + 8 > size {
        return Err(bad("the footer length is larger than the file".into()));
    }
    if meta_len > MAX_FOOTER {
        return Err(bad(format!(
            "its footer is {} (previews read at most {})",
            size_text(meta_len),
            size_text(MAX_FOOTER)
        )));
    }
    let footer_start = size - 8 - meta_len;
    let footer = read(footer_start, meta_len + 8).await?;
    // the object may have shrunk since its manifest was taken
    if footer.len() as u64 != meta_len + 8 {
        return Err(bad("the file changed while it was read".into()));
    }
    let mut fetched = i64::try_from(footer.len()).unwrap_or_default();
    let metadata = parquet::file::metadata::ParquetMetaDataReader::decode_metadata(&footer[..footer.len() - 8])
        .map_err(|e| bad(e.to_string()))?;
    let schema = metadata.file_metadata().schema_descr();
    let columns: Vec<Column> = schema
        .columns()
        .iter()
        .map(|c| {
            let kind = match (c.logical_type_ref(), c.converted_type()) {
                (Some(logical), _) => logical_name(&format!("{logical:?}")),
                (None, ConvertedType::UTF8 | ConvertedType::ENUM | ConvertedType::JSON) => "string".to_owned(),
                (None, ConvertedType::NONE) => format!("{:?}", c.physical_type()).to_ascii_lowercase(),
                (None, converted) => converted.to_string().to_ascii_lowercase(),
            };
            Column { name: c.path().string(), kind }
        })
        .collect();
    let row_count = metadata.file_metadata().num_rows();
    let Some(group) = metadata.row_groups().first() else {
        return Ok((columns, Vec::new(), row_count, fetched, None));
    };
    let (start, end) = group.columns().iter().fold((u64::MAX, 0_u64), |(lo, hi), c| {
        let (s, len) = c.byte_range();
        (lo.min(s), hi.max(s + len))
    });
    if end <= start || end > footer_start {
        return Err(bad("the row group offsets are outside the file".into()));
    }
    if end - start > MAX_ROW_GROUP {
        let note = format!(
            "Rows not shown: the first row group is {} (previews read at most {}).",
            crate::kernel::format::human_bytes(i64::try_from(end - start).unwrap_or(i64::MAX)),
            crate::kernel::format::human_bytes(i64::try_from(MAX_ROW_GROUP).unwrap_or(i64::MAX))
        );
        return Ok((columns, Vec::new(), row_count, fetched, Some(note)));
    }
    // Decoding allocates what the file declares, so a small file of
    // compressed zeros could claim gigabytes: its declared sizes count too.
    let declared = u64::try_from(group.total_byte_size())
        .unwrap_or(u64::MAX)
        .max(group.columns().iter().map(|c| u64::try_from(c.uncompressed_size()).unwrap_or(u64::MAX)).sum::<u64>());
    if declared > MAX_DECODED {
        let note = format!(
            "Rows not shown: the first row group decodes to {} (previews decode at most {}).",
            size_text(declared),
            size_text(MAX_DECODED)
        );
        return Ok((columns, Vec::new(), row_count, fetched, Some(note)));
    }
    let data = read(start, end - start).await?;
    fetched += i64::try_from(data.len()).unwrap_or_default();
    // each page declares its own uncompressed size, which parquet-rs
    // allocates before decompressing: a page may not claim more than the cap
    if let Some(note) = oversized_page(&data, start, group).map_err(bad)? {
        return Ok((columns, Vec::new(), row_count, fetched, Some(note)));
    }
    let sparse = Sparse { len: size, parts: vec![(start, data), (footer_start, footer)] };
    let rows = tokio::task::spawn_blocking(move || first_rows(sparse, max_rows))
        .await
        .map_err(|_| AppError::Internal)?
        .map_err(bad)?;
    Ok((columns, rows, row_count, fetched, None))
}

/// Walks the page headers of the first row group's column chunks (their
/// bytes fetched from `base`) and names the first page that declares more
/// than [`MAX_DECODED`] uncompressed bytes. (`parquet::format` is
/// deprecated and goes away in parquet 59: before upgrading, read these
/// two fields another way.)
#[allow(deprecated)]
fn oversized_page(
    data: &Bytes,
    base: u64,
    group: &parquet::file::metadata::RowGroupMetaData,
) -> Result<Option<String>, String> {
    use parquet::thrift::TSerializable as _;
    for column in group.columns() {
        let (start, len) = column.byte_range();
        let from = usize::try_from(start.saturating_sub(base)).map_err(|e| e.to_string())?;
        let to = from.saturating_add(usize::try_from(len).map_err(|e| e.to_string())?).min(data.len());
        let mut at = from;
        while at < to {
            let mut cursor = std::io::Cursor::new(&data[at..to]);
            let mut protocol = thrift::protocol::TCompactInputProtocol::new(&mut cursor);
            let header = parquet::format::PageHeader::read_from_in_protocol(&mut protocol)
                .map_err(|e| format!("a page header is unreadable: {e}"))?;
            let declared = u64::try_from(header.uncompressed_page_size).unwrap_or(u64::MAX);
            if declared > MAX_DECODED {
                return Ok(Some(format!(
                    "Rows not shown: a page declares {} uncompressed (previews decode at most {}).",
                    size_text(declared),
                    size_text(MAX_DECODED)
                )));
            }
            let header_len = usize::try_from(cursor.position()).map_err(|e| e.to_string())?;
            let body = usize::try_from(header.compressed_page_size).map_err(|_| "a page has a negative size")?;
            at = at.saturating_add(header_len).saturating_add(body);
        }
    }
    Ok(None)
}

/// `String` from `String`, `Timestamp` from `Timestamp { .. }`.
fn logical_name(debug: &str) -> String {
    debug.split([' ', '(', '{']).next().unwrap_or(debug).to_ascii_lowercase()
}

fn first_rows(sparse: Sparse, max_rows: usize) -> Result<Vec<Vec<String>>, String> {
    use parquet::record::Field;
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(sparse).map_err(|e| e.to_string())?;
    let group = reader.get_row_group(0).map_err(|e| e.to_string())?;
    let iter = group.get_row_iter(None).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for row in iter.take(max_rows) {
        let row = row.map_err(|e| e.to_string())?;
        rows.push(
            row.get_column_iter()
                .map(|(_, field)| match field {
                    Field::Null => String::new(),
                    Field::Str(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
        );
    }
    Ok(rows)
}

/// The parts of a Parquet file that were fetched, addressed as the whole file.
struct Sparse {
    len: u64,
    parts: Vec<(u64, Bytes)>,
}

impl Sparse {
    fn slice(&self, start: u64, len: Option<usize>) -> parquet::errors::Result<Bytes> {
        for (offset, data) in &self.parts {
            let end = offset + data.len() as u64;
            if start >= *offset && start < end {
                let from = usize::try_from(start - offset).unwrap_or(usize::MAX);
                let to = len.map_or(data.len(), |l| from + l);
                if to <= data.len() {
                    return Ok(data.slice(from..to));
                }
            }
        }
        Err(parquet::errors::ParquetError::General(format!("bytes at offset {start} were not fetched")))
    }
}

impl Length for Sparse {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for Sparse {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        use bytes::Buf as _;
        Ok(self.slice(start, None)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.slice(start, Some(length))
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    #[test]
    fn csv_head_infers_types_and_drops_the_cut_line() {
        let data = b"id,score,ok,name,empty\n1,0.5,true,ann,\n2,3,false,bob,\n3,1e3,TRUE,c";
        let table = parse_delimited(data, false, b',', 50).expect("parses");
        let kinds: Vec<&str> = table.columns.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["integer", "float", "boolean", "string", "null"]);
        assert_eq!(table.rows.len(), 2, "the unterminated last line is not shown");
        assert_eq!(table.rows[1], ["2", "3", "false", "bob", ""]);
        let whole = parse_delimited(data, true, b',', 50).expect("parses");
        assert_eq!(whole.rows.len(), 3);
    }

    #[test]
    fn tsv_and_row_limit() {
        let data = b"a\tb\n1\tx\n2\ty\n3\tz\n";
        let table = parse_delimited(data, true, b'\t', 2).expect("parses");
        assert_eq!(table.columns.len(), 2);
        assert_eq!(table.rows, vec![vec!["1", "x"], vec!["2", "y"]]);
    }

    #[test]
    fn invalid_utf8_csv_is_an_error() {
        let data = b"a,b\n\xff\xfe,1\n";
        assert!(parse_delimited(data, true, b',', 50).is_err());
    }

    #[test]
    fn json_lines_union_of_keys() {
        let data = b"{\"a\":1,\"b\":\"x\"}\n{\"a\":2.5,\"c\":[1]}\n";
        let table = parse_json_lines(data, true, 50).expect("parses");
        let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(table.columns[0].kind, "float");
        assert_eq!(table.rows[1], ["2.5", "", "[1]"]);
        let err = parse_json_lines(b"{\"a\":1}\n[1,2]\n", true, 50).expect_err("not an object");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::of("x/train.CSV"), Some(Format::Csv));
        assert_eq!(Format::of("a.ndjson"), Some(Format::JsonLines));
        assert_eq!(Format::of("part-0.parquet"), Some(Format::Parquet));
        assert_eq!(Format::of("image.png"), None);
        assert_eq!(Format::of("README"), None);
    }
}
