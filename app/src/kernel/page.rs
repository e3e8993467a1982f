//! Keyset pagination shared by every list: `?limit=` and an opaque `cursor`
//! in, `next_cursor` out.

use crate::kernel::error::AppError;
use serde::{Deserialize, Serialize};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

/// One page of a list, with the cursor of the next page if there is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Checks `limit` against the allowed range; `None` means the default.
pub fn limit(raw: Option<i64>) -> Result<i64, AppError> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(AppError::query("limit", format!("Use a limit from 1 to {MAX_LIMIT}."))),
    }
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::Page;
    use crate::kernel::error::AppError;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde::{Serialize, de::DeserializeOwned};

    /// Encodes a sort key as an opaque cursor.
    pub fn encode<K: Serialize>(key: &K) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
    }

    /// Decodes a cursor made by [`encode`]; anything else is a `cursor` field error.
    pub fn decode<K: DeserializeOwned>(cursor: Option<&str>) -> Result<Option<K>, AppError> {
        let Some(cursor) = cursor.filter(|c| !c.is_empty()) else { return Ok(None) };
        URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .map(Some)
            .ok_or_else(|| AppError::query("cursor", "Unknown cursor. Start again from the first page."))
    }

    /// Builds a page from `limit + 1` fetched rows: the extra row, if present,
    /// only proves there is a next page.
    pub fn build<T, K: Serialize>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> K) -> Page<T> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| encode(&key(last)))
        } else {
            None
        };
        Page { items: rows, next_cursor }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn cursor_round_trip_and_garbage() {
            let c = encode(&("abc", 7));
            assert_eq!(decode::<(String, i32)>(Some(&c)), Ok(Some(("abc".to_owned(), 7))));
            assert_eq!(decode::<(String, i32)>(None), Ok(None));
            assert!(decode::<(String, i32)>(Some("not-a-cursor")).is_err());
        }

        #[test]
        fn build_cuts_the_probe_row() {
            let page = build(vec![1, 2, 3], 2, |n| *n);
            assert_eq!(page.items, vec![1, 2]);
            assert_eq!(decode::<i32>(page.next_cursor.as_deref()), Ok(Some(2)));
            let last = build(vec![1, 2], 2, |n| *n);
            assert_eq!(last.next_cursor, None);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn limit_range() {
        assert_eq!(super::limit(None), Ok(50));
        assert_eq!(super::limit(Some(200)), Ok(200));
        assert!(super::limit(Some(0)).is_err());
        assert!(super::limit(Some(201)).is_err());
    }
}
