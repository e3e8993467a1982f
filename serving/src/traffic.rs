//! What the gateway saw, per endpoint variant and minute: requests, client
//! errors (4xx), failures (5xx), model errors, a latency histogram and the
//! shadow's agreement with production. The gateway records into memory (a
//! lock held for a few additions, never a database write on the request
//! path); a worker takes the finished counts out in batches and adds them to
//! the per-minute rollups in PostgreSQL. Totals since start are kept for
//! `/metrics`.

use std::collections::HashMap;
use std::sync::Mutex;

/// Upper bounds of the latency buckets, in milliseconds (the last is open).
pub const LATENCY_BOUNDS_MS: [f64; 15] =
    [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10_000.0, 30_000.0, 60_000.0];

/// Buckets: one per bound and one above the last.
pub const BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// How an invocation ended, for the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The caller's error (4xx other than the model's).
    ClientError,
    /// Capstan's or the backend's failure (no healthy process, a time-out).
    ServerError,
    /// The model answered with an error status.
    ModelError,
}

/// Counts of one variant in one minute.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub requests: u64,
    pub errors_4xx: u64,
    pub errors_5xx: u64,
    pub model_errors: u64,
    pub latency_ms_sum: f64,
    pub latency: [u64; BUCKETS],
    pub shadow_requests: u64,
    pub shadow_agree: u64,
}

impl Counts {
    fn add(&mut self, outcome: Outcome, latency_ms: f64) {
        self.requests += 1;
        match outcome {
            Outcome::Ok => {}
            Outcome::ClientError => self.errors_4xx += 1,
            Outcome::ServerError => self.errors_5xx += 1,
            Outcome::ModelError => self.model_errors += 1,
        }
        self.latency_ms_sum += latency_ms;
        let i = LATENCY_BOUNDS_MS.iter().position(|b| latency_ms <= *b).unwrap_or(BUCKETS - 1);
        self.latency[i] += 1;
    }
}

/// The latency at quantile `q` (0-1) of a histogram, as the upper bound of
/// the bucket it falls in (the last bound for the open bucket); `None` when empty.
pub fn quantile(latency: &[u64], q: f64) -> Option<f64> {
    let total: u64 = latency.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in latency.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(LATENCY_BOUNDS_MS.get(i).copied().unwrap_or(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1]));
        }
    }
    LATENCY_BOUNDS_MS.last().copied()
}

/// (endpoint id, variant, minute as Unix seconds)
pub type Key = (String, String, i64);

#[derive(Default)]
pub struct Recorder {
    /// Counts not yet written to the rollups.
    pending: Mutex<HashMap<Key, Counts>>,
    /// Totals since this process started, for `/metrics`: (engine name, variant).
    totals: Mutex<HashMap<(String, String), Counts>>,
}

fn minute_now() -> i64 {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    i64::try_from(secs - secs % 60).unwrap_or_default()
}

impl Recorder {
    /// One production invocation of `variant` of endpoint `endpoint_id` (`engine`: its name).
    pub fn record(&self, endpoint_id: &str, engine: &str, variant: &str, outcome: Outcome, latency_ms: f64) {
        if let Ok(mut pending) = self.pending.lock() {
            pending
                .entry((endpoint_id.to_owned(), variant.to_owned(), minute_now()))
                .or_default()
                .add(outcome, latency_ms);
        }
        if let Ok(mut totals) = self.totals.lock() {
            totals.entry((engine.to_owned(), variant.to_owned())).or_default().add(outcome, latency_ms);
        }
    }

    /// One shadow copy answered by `shadow`: counted with its own latency and
    /// outcome, and whether its answer equalled production's.
    pub fn record_shadow(
        &self,
        endpoint_id: &str,
        engine: &str,
        shadow: &str,
        outcome: Outcome,
        latency_ms: f64,
        agreed: bool,
    ) {
        let add = |c: &mut Counts| {
            c.add(outcome, latency_ms);
            c.shadow_requests += 1;
            c.shadow_agree += u64::from(agreed);
        };
        if let Ok(mut pending) = self.pending.lock() {
            add(pending.entry((endpoint_id.to_owned(), shadow.to_owned(), minute_now())).or_default());
        }
        if let Ok(mut totals) = self.totals.lock() {
            add(totals.entry((engine.to_owned(), shadow.to_owned())).or_default());
        }
    }

    /// Takes the counts recorded so far (to be added to the rollups).
    pub fn take(&self) -> Vec<(Key, Counts)> {
        self.pending.lock().map(|mut p| p.drain().collect()).unwrap_or_default()
    }

    /// Puts counts back that could not be written (the next flush adds them).
    pub fn restore(&self, counts: Vec<(Key, Counts)>) {
        if let Ok(mut pending) = self.pending.lock() {
            for (key, c) in counts {
                let slot = pending.entry(key).or_default();
                slot.requests += c.requests;
                slot.errors_4xx += c.errors_4xx;
                slot.errors_5xx += c.errors_5xx;
                slot.model_errors += c.model_errors;
                slot.latency_ms_sum += c.latency_ms_sum;
                for (a, b) in slot.latency.iter_mut().zip(c.latency) {
                    *a += b;
                }
                slot.shadow_requests += c.shadow_requests;
                slot.shadow_agree += c.shadow_agree;
            }
        }
    }

    /// The totals since start, for `/metrics`, sorted.
    pub fn totals(&self) -> Vec<((String, String), Counts)> {
        let mut out: Vec<_> =
            self.totals.lock().map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_quantiles() {
        let r = Recorder::default();
        for ms in [0.5, 3.0, 3.0, 40.0, 900.0] {
            r.record("e", "ep", "a", Outcome::Ok, ms);
        }
        r.record("e", "ep", "a", Outcome::ModelError, 7.0);
        r.record_shadow("e", "ep", "s", Outcome::Ok, 12.0, true);
        let taken = r.take();
        let a = taken.iter().find(|(k, _)| k.1 == "a").map(|(_, c)| c.clone()).expect("a");
        assert_eq!((a.requests, a.model_errors), (6, 1));
        assert_eq!(quantile(&a.latency, 0.5), Some(5.0));
        assert_eq!(quantile(&a.latency, 0.99), Some(1000.0));
        let s = taken.iter().find(|(k, _)| k.1 == "s").map(|(_, c)| c.clone()).expect("s");
        assert_eq!((s.shadow_requests, s.shadow_agree), (1, 1));
        assert!(r.take().is_empty(), "taken once");
        assert_eq!(r.totals().len(), 2, "totals stay");
    }
}
