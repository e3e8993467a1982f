//! How server functions send their results: JSON, read with
//! `serde_json::from_str` — the same reader the page's resources use for the
//! data serialized into the server-rendered HTML.
//!
//! Leptos' own `Json` output reads responses with `from_slice`, which makes
//! the browser bundle carry a second copy of every result type's deserializer
//! (one per reader). Declaring every server function with
//! `output = crate::kernel::codec::Json` keeps one copy, which takes a few
//! percent off the bundle; the bytes on the wire are the same.

use leptos::server_fn::codec::Post;
use leptos::server_fn::{Bytes, ContentType, Decodes, Encodes, Format, FormatType};
use serde::{Serialize, de::DeserializeOwned};

/// JSON on the wire, decoded from text.
pub struct JsonText;

impl ContentType for JsonText {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for JsonText {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for JsonText {
    type Error = serde_json::Error;

    fn encode(output: &T) -> Result<Bytes, Self::Error> {
        serde_json::to_vec(output).map(Bytes::from)
    }
}

impl<T: DeserializeOwned> Decodes<T> for JsonText {
    type Error = serde_json::Error;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        let text = std::str::from_utf8(&bytes).map_err(<serde_json::Error as serde::de::Error>::custom)?;
        serde_json::from_str(text)
    }
}

/// The output encoding of every server function (see the module's text).
pub type Json = Post<JsonText>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_bad_text() {
        let bytes = <JsonText as Encodes<Vec<(String, i64)>>>::encode(&vec![("é".to_owned(), 3)]).expect("encodes");
        let back: Vec<(String, i64)> = <JsonText as Decodes<_>>::decode(bytes).expect("decodes");
        assert_eq!(back, vec![("é".to_owned(), 3)]);
        let bad = <JsonText as Decodes<Vec<i64>>>::decode(Bytes::from_static(b"[1,\xff]"));
        assert!(bad.is_err(), "invalid UTF-8 is an error, not a panic");
    }
}
