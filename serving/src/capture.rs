//! Data capture for endpoints the gateway serves itself (local mode; on
//! SageMaker the endpoint captures on its own): a sampled share of the
//! requests and answers, kept in memory as JSON Lines records in SageMaker's
//! capture format, per destination prefix, until a worker writes them to
//! the bucket in batches (never on the request path).

use std::collections::HashMap;
use std::sync::Mutex;

/// Records held per destination at most; beyond it new records are dropped
/// (and counted) rather than growing memory while the store is down.
pub const MAX_PENDING: usize = 10_000;
/// And at most this many bytes per destination (bodies may be 6 MB each).
pub const MAX_PENDING_BYTES: usize = 64 << 20;

#[derive(Debug, Default)]
pub struct Captures {
    /// destination → its records and their bytes
    pending: Mutex<HashMap<String, (Vec<String>, usize)>>,
    dropped: std::sync::atomic::AtomicU64,
}

impl Captures {
    /// Keeps one record (one JSON line) for `destination`.
    pub fn push(&self, destination: &str, line: String) {
        let Ok(mut pending) = self.pending.lock() else { return };
        let (lines, bytes) = pending.entry(destination.to_owned()).or_default();
        if lines.len() < MAX_PENDING && *bytes + line.len() <= MAX_PENDING_BYTES {
            *bytes += line.len();
            lines.push(line);
        } else {
            self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Takes every pending record out, by destination.
    pub fn take(&self) -> HashMap<String, Vec<String>> {
        let taken = self.pending.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
        taken.into_iter().map(|(destination, (lines, _))| (destination, lines)).collect()
    }

    /// Puts records that could not be written back, for the next attempt.
    pub fn put_back(&self, destination: String, mut lines: Vec<String>) {
        let Ok(mut pending) = self.pending.lock() else { return };
        let (now, _) = pending.entry(destination.clone()).or_default();
        lines.append(now);
        lines.truncate(MAX_PENDING);
        let bytes = lines.iter().map(String::len).sum();
        pending.insert(destination, (lines, bytes));
    }

    /// Records dropped because their destination had too many pending.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_wait_by_destination_and_failed_writes_come_back_first() {
        let c = Captures::default();
        c.push("a/", "1".into());
        c.push("b/", "2".into());
        c.push("a/", "3".into());
        let mut taken = c.take();
        assert_eq!(taken.remove("a/"), Some(vec!["1".to_owned(), "3".to_owned()]));
        assert!(c.take().is_empty());
        c.push("a/", "4".into());
        c.put_back("a/".into(), vec!["1".into(), "3".into()]);
        assert_eq!(c.take().remove("a/"), Some(vec!["1".to_owned(), "3".to_owned(), "4".to_owned()]));
        for i in 0..MAX_PENDING + 5 {
            c.push("full/", i.to_string());
        }
        assert_eq!(c.take()["full/"].len(), MAX_PENDING);
        assert_eq!(c.dropped(), 5);
        let big = "x".repeat(MAX_PENDING_BYTES / 2);
        for _ in 0..3 {
            c.push("big/", big.clone());
        }
        assert_eq!(c.take()["big/"].len(), 2, "bytes are bounded too");
        assert_eq!(c.dropped(), 6);
    }
}
