//! `capstan-split`: the build step that turns one browser bundle into a small
//! main module and a chunk per page, which the browser loads when the page is
//! first shown (Leptos' lazy routes), then names the files by content hash.
//!
//! `scripts/build.sh` runs it in two steps around wasm-bindgen and wasm-opt:
//!
//! ```text
//! capstan-split split <frontend.wasm> <pkg dir> <main out.wasm>
//! capstan-split hash <pkg dir> <output name>     # prints hash.txt lines
//! ```
//!
//! `split` needs the wasm linked with `--emit-relocs` (see
//! `.cargo/config.toml`). It writes the chunks, their loader
//! `__wasm_split.<placeholder>.js` and `__wasm_split_manifest.json` (which
//! chunks each page needs; the server preloads them) into the pkg dir, and the
//! main module, still to be bound by wasm-bindgen, to `<main out.wasm>`.
//!
//! `hash` gives every file of the set one name suffix, the hash of all their
//! contents, so a browser may cache each for good: the main module and its
//! loader refer to each other, so one file's hash cannot be known before the
//! other's. It rewrites the references (in the wasm too: the placeholder has
//! the hash's length, so the binary stays valid) and prints the lines of
//! `hash.txt` that leptos' `HydrationScripts` reads (`js`, `wasm`, `split`,
//! `manifest`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// Stands for the hash until it is known; as long as the hash (16 hex digits).
const PLACEHOLDER: &str = "__capstan_split_";
const MANIFEST: &str = "__wasm_split_manifest.json";
/// Code that at least this many pages share goes to the main module rather
/// than a chunk of its own (`CAPSTAN_SPLIT_SHARED_BY` overrides it): without
/// it, a page would fetch hundreds of tiny chunks.
const MAIN_IF_SHARED_BY: usize = 3;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["split", input, pkg, main_out, out_name] => {
            split(Path::new(input), Path::new(pkg), Path::new(main_out), out_name)
        }
        ["hash", pkg, out_name] => {
            let hash = hash(Path::new(pkg), out_name)?;
            for kind in ["js", "wasm", "split", "manifest"] {
                println!("{kind}: {hash}");
            }
            Ok(())
        }
        _ => bail!(
            "usage: capstan-split split <frontend.wasm> <pkg dir> <main out.wasm> <output name>\n       capstan-split hash <pkg dir> <output name>"
        ),
    }
}

fn split(input: &Path, pkg: &Path, main_out: &Path, out_name: &str) -> Result<()> {
    let wasm = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let link_name = format!("./__wasm_split.{PLACEHOLDER}.js");
    let main_module = format!("./{out_name}.js");
    let shared_by = match std::env::var("CAPSTAN_SPLIT_SHARED_BY") {
        Ok(v) => v.parse().context("CAPSTAN_SPLIT_SHARED_BY must be a number")?,
        Err(_) => MAIN_IF_SHARED_BY,
    };
    wasm_split_cli_support::MAIN_IF_SHARED_BY.store(shared_by, std::sync::atomic::Ordering::Relaxed);
    let mut opts = wasm_split_cli_support::Options::new(&wasm);
    opts.output_dir = pkg;
    opts.main_out_path = main_out;
    opts.link_name = &link_name;
    opts.main_module = &main_module;
    let out = wasm_split_cli_support::transform(opts).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    if out.prefetch_map.is_empty() {
        bail!("no split points in {}: is the wasm linked with --emit-relocs?", input.display());
    }
    // Sorted, so the same bundle writes the same manifest (and hash).
    let manifest: BTreeMap<_, _> = out.prefetch_map.into_iter().collect();
    std::fs::write(pkg.join(MANIFEST), serde_json::to_string_pretty(&manifest)?)?;
    for module in &out.split_modules {
        println!("{}", module.display());
    }
    Ok(())
}

/// A chunk written by `split`: `split_<page>.wasm` or `chunk_<n>.wasm`.
fn is_chunk(name: &str) -> bool {
    (name.starts_with("split_") || name.starts_with("chunk_")) && name.ends_with(".wasm")
}

fn hash(pkg: &Path, out_name: &str) -> Result<String> {
    let loader = format!("__wasm_split.{PLACEHOLDER}.js");
    let mut names = vec![format!("{out_name}.js"), format!("{out_name}.wasm"), loader.clone(), MANIFEST.to_owned()];
    for entry in std::fs::read_dir(pkg)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if is_chunk(&name) {
            names.push(name);
        }
    }
    names.sort();
    let mut files = HashMap::new();
    let mut digest = Sha256::new();
    for name in &names {
        let path = pkg.join(name);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        digest.update(name.as_bytes());
        digest.update((bytes.len() as u64).to_le_bytes());
        digest.update(&bytes);
        files.insert(name.clone(), bytes);
    }
    let hash: String = digest.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    let hashed = |name: &str| -> String {
        match name.rsplit_once('.') {
            Some((stem, ext)) => format!("{}.{hash}.{ext}", stem.trim_end_matches(&format!(".{PLACEHOLDER}"))),
            None => format!("{name}.{hash}"),
        }
    };
    let chunks: Vec<&String> = names.iter().filter(|n| is_chunk(n)).collect();
    for name in &names {
        let mut bytes = files.remove(name).unwrap_or_default();
        replace_same_length(&mut bytes, PLACEHOLDER.as_bytes(), hash.as_bytes());
        if *name == loader {
            let mut text = String::from_utf8(bytes).context("the loader is not UTF-8")?;
            text = text.replace(&format!("\"./{out_name}.js\""), &format!("\"./{out_name}.{hash}.js\""));
            for chunk in &chunks {
                text = text.replace(&format!("\"./{chunk}\""), &format!("\"./{}\"", hashed(chunk)));
            }
            bytes = text.into_bytes();
        } else if name == MANIFEST {
            let manifest: BTreeMap<String, Vec<String>> = serde_json::from_slice(&bytes)?;
            let manifest: BTreeMap<_, Vec<_>> = manifest
                .into_iter()
                .map(|(split, files)| (split, files.into_iter().map(|f| format!("{f}.{hash}")).collect()))
                .collect();
            bytes = serde_json::to_vec_pretty(&manifest)?;
        }
        let target: PathBuf = pkg.join(hashed(name));
        std::fs::write(&target, bytes).with_context(|| format!("writing {}", target.display()))?;
        std::fs::remove_file(pkg.join(name))?;
    }
    Ok(hash)
}

/// Replaces every occurrence of `from` by `to`, which has the same length.
fn replace_same_length(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    debug_assert_eq!(from.len(), to.len());
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_names_every_file_alike_and_rewrites_their_references() {
        let dir = std::env::temp_dir().join(format!("capstan-split-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let loader = format!("__wasm_split.{PLACEHOLDER}.js");
        std::fs::write(dir.join("capstan.js"), format!("import * as s from './{loader}';")).expect("write");
        std::fs::write(dir.join("capstan.wasm"), format!("\0asm{PLACEHOLDER}\x01")).expect("write");
        std::fs::write(
            dir.join(&loader),
            "import { initSync } from \"./capstan.js\";\nfetch(new URL(\"./split_page_1.wasm\", import.meta.url));",
        )
        .expect("write");
        std::fs::write(dir.join("split_page_1.wasm"), "\0asm").expect("write");
        std::fs::write(dir.join(MANIFEST), r#"{"page_1":["split_page_1"]}"#).expect("write");

        let h = hash(&dir, "capstan").expect("hashes");
        assert_eq!(h.len(), 16);
        let read = |n: &str| std::fs::read_to_string(dir.join(n)).expect("write");
        assert_eq!(read(&format!("capstan.{h}.js")), format!("import * as s from './__wasm_split.{h}.js';"));
        assert_eq!(read(&format!("capstan.{h}.wasm")), format!("\0asm{h}\x01"));
        let loader = read(&format!("__wasm_split.{h}.js"));
        assert!(loader.contains(&format!("\"./capstan.{h}.js\"")), "{loader}");
        assert!(loader.contains(&format!("\"./split_page_1.{h}.wasm\"")), "{loader}");
        let manifest: serde_json::Value =
            serde_json::from_str(&read(&format!("__wasm_split_manifest.{h}.json"))).expect("manifest is JSON");
        assert_eq!(manifest["page_1"][0], format!("split_page_1.{h}"));
        assert!(!dir.join("capstan.js").exists() && !dir.join("split_page_1.wasm").exists());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
