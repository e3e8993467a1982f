//! An in-process cache for the hottest reads (alias resolution, verified
//! API tokens), kept coherent across every Capstan process on one database
//! through PostgreSQL `LISTEN/NOTIFY`: a write sends the keys it changed on
//! channel [`CHANNEL`] in its own transaction (delivered on commit) or,
//! where notifying would hold its commit up, just after it through
//! [`Cache::changed`], and every process's [`listen`] task drops them.
//! While a process is not listening (starting up, or its channel dropped)
//! its cache is bypassed and every read goes to the database; reconnecting
//! starts from empty.
//!
//! A read that missed takes a [`Cache::ticket`] before asking the database
//! and stores its answer only if nothing was invalidated meanwhile, so an
//! answer read before a write can never outlive the write's notification.

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The notification channel.
pub const CHANNEL: &str = "capstan_cache";

/// At most this many entries; a full cache starts again from empty.
const MAX_ENTRIES: usize = 100_000;

/// Keys under this prefix are whole pages of a list (see [`Cache::put`]):
/// large values, so held apart under a bound of their own.
pub const PAGE_PREFIX: &str = "page:";

/// At most this many pages (each up to a few hundred KB).
const MAX_PAGES: usize = 1_000;

/// A value and when it stops being served (a bound on staleness should a
/// notification ever be lost, and a rhythm for work done on a miss).
type Entry = (Instant, Arc<dyn Any + Send + Sync>);

#[derive(Default)]
pub struct Cache {
    entries: RwLock<HashMap<String, Entry>>,
    /// Whole pages of lists, by keys starting with [`PAGE_PREFIX`].
    pages: RwLock<HashMap<String, Entry>>,
    /// Bumped by every invalidation; see [`Cache::ticket`].
    generation: AtomicU64,
    /// Whether this process hears invalidations now.
    live: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Keys being loaded now: one load per key at a time (see [`Cache::get_or_load`]).
    loading: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Keys to announce to the other processes (see [`Cache::changed`]).
    announcing: std::sync::Mutex<HashSet<String>>,
    announce_wake: tokio::sync::Notify,
}

/// How long changed keys gather before they are announced together: a
/// burst of writes sends each key once per round, not once per write.
const ANNOUNCE_ROUND: Duration = Duration::from_millis(10);

/// Proof of when a read started: see [`Cache::put`].
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl Cache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The cached value of `key`, if this process is listening and has one.
    pub fn get<T: Clone + Send + Sync + 'static>(&self, key: &str) -> Option<T> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        let found = self
            .map(key)
            .read()
            .ok()?
            .get(key)
            .filter(|(until, _)| *until > Instant::now())
            .and_then(|(_, v)| v.downcast_ref::<T>().cloned());
        let counter = if found.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Taken before reading what will be stored with [`Cache::put`].
    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::Acquire))
    }

    /// Stores `value` under `key` for at most `ttl`, unless something was
    /// invalidated since `ticket` was taken (the value may be stale) or the
    /// process is not listening.
    pub fn put<T: Send + Sync + 'static>(&self, key: String, value: T, ticket: Ticket, ttl: Duration) {
        if !self.live.load(Ordering::Acquire) {
            return;
        }
        let max = if key.starts_with(PAGE_PREFIX) { MAX_PAGES } else { MAX_ENTRIES };
        let Ok(mut entries) = self.map(&key).write() else { return };
        // checked under the lock that invalidation also takes
        if self.generation.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        if entries.len() >= max {
            let now = Instant::now();
            entries.retain(|_, (until, _)| *until > now);
            if entries.len() >= max {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now() + ttl, Arc::new(value)));
    }

    /// The cached value of `key`, or what `load` reads (after a ticket is
    /// taken: the future runs only when awaited), stored for at most `ttl`.
    /// Concurrent misses of one key load it once: the others wait for that
    /// load and read what it stored (a burst of requests for a page that was
    /// just dropped makes one query, not one each).
    pub async fn get_or_load<T, E>(
        &self,
        key: String,
        ttl: Duration,
        load: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E>
    where
        T: Clone + Send + Sync + 'static,
    {
        if let Some(found) = self.get::<T>(&key) {
            return Ok(found);
        }
        if !self.is_live() {
            return load.await;
        }
        let gate = match self.loading.lock() {
            Ok(mut loading) => loading.entry(key.clone()).or_default().clone(),
            Err(_) => Arc::default(),
        };
        let result = async {
            let _turn = gate.lock().await;
            // a load that finished while this one waited
            if let Some(found) = self.get::<T>(&key) {
                return Ok(found);
            }
            let ticket = self.ticket();
            let found = load.await?;
            self.put(key.clone(), found.clone(), ticket, ttl);
            Ok(found)
        }
        .await;
        if let Ok(mut loading) = self.loading.lock()
            && Arc::strong_count(&gate) <= 2
        {
            // nobody else waits on this key
            loading.remove(&key);
        }
        result
    }

    /// Drops `key`, or every key starting with it when it ends with `:`.
    pub fn invalidate(&self, key: &str) {
        // a prefix shorter than the page prefix ("" or "pa") may cover pages too
        let maps: &[&RwLock<HashMap<String, Entry>>] =
            if PAGE_PREFIX.starts_with(key) { &[&self.entries, &self.pages] } else { &[self.map(key)] };
        for map in maps {
            let Ok(mut entries) = map.write() else { return };
            self.generation.fetch_add(1, Ordering::AcqRel);
            if key.ends_with(':') || key.is_empty() {
                entries.retain(|k, _| !k.starts_with(key));
            } else {
                entries.remove(key);
            }
        }
    }

    /// After a committed change that did not notify in its transaction:
    /// drops `key` here at once (a writer reads its own write) and has
    /// [`listen`]'s announcer tell every other process within about
    /// [`ANNOUNCE_ROUND`] (each key once per round, in one round trip).
    /// Should the announcement fail, they serve what they hold until it
    /// expires.
    pub fn changed(&self, key: &str) {
        self.invalidate(key);
        if let Ok(mut keys) = self.announcing.lock() {
            keys.insert(key.to_owned());
        }
        self.announce_wake.notify_one();
    }

    /// Drops everything.
    pub fn clear(&self) {
        for map in [&self.entries, &self.pages] {
            if let Ok(mut entries) = map.write() {
                self.generation.fetch_add(1, Ordering::AcqRel);
                entries.clear();
            }
        }
    }

    /// The map that holds `key`.
    fn map(&self, key: &str) -> &RwLock<HashMap<String, Entry>> {
        if key.starts_with(PAGE_PREFIX) { &self.pages } else { &self.entries }
    }

    /// Whether invalidations reach this process (else the cache is bypassed).
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    fn set_live(&self, live: bool) {
        // empty either way: nothing heard while deaf may be trusted
        self.clear();
        self.live.store(live, Ordering::Release);
    }

    /// (hits, misses) since start.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }
}

/// Tells every process to drop `key` (see [`Cache::invalidate`]) when the
/// transaction `conn` belongs to commits.
pub async fn notify(conn: &mut sqlx::PgConnection, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("select pg_notify($1, $2)").bind(CHANNEL).bind(key).execute(conn).await?;
    Ok(())
}

/// Listens for invalidations for as long as the process runs: the cache
/// is live while the channel is up, bypassed (and emptied) while it is
/// down, and reconnected every second until it is back. Also sends what
/// [`Cache::changed`] gathers (both run for as long as this future does).
pub async fn listen(pool: PgPool, cache: Arc<Cache>) {
    tokio::join!(announce(pool.clone(), cache.clone()), hear(pool, cache));
}

/// Drops what the channel announces; see [`listen`].
async fn hear(pool: PgPool, cache: Arc<Cache>) {
    loop {
        let mut listener = match connect(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cache invalidation channel unavailable; reading from the database");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        cache.set_live(true);
        while let Ok(Some(n)) = listener.try_recv().await {
            cache.invalidate(n.payload());
        }
        // the connection dropped: what was missed meanwhile is unknown
        cache.set_live(false);
        tracing::warn!("cache invalidation channel dropped; reading from the database until it is back");
    }
}

/// Sends the keys [`Cache::changed`] gathered, a round at a time.
async fn announce(pool: PgPool, cache: Arc<Cache>) {
    loop {
        cache.announce_wake.notified().await;
        tokio::time::sleep(ANNOUNCE_ROUND).await;
        let keys: Vec<String> = match cache.announcing.lock() {
            Ok(mut keys) => keys.drain().collect(),
            Err(_) => continue,
        };
        if keys.is_empty() {
            continue;
        }
        let sent = sqlx::query("select pg_notify($1, k) from unnest($2::text[]) k")
            .bind(CHANNEL)
            .bind(&keys)
            .execute(&pool)
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, ?keys, "could not announce changes to other processes");
        }
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // the session is named, so operators (and tests) can find it
    sqlx::query("set application_name = 'capstan-cache-listener'").execute(&mut listener).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn concurrent_misses_of_one_key_load_it_once() {
        let cache = Arc::new(Cache::new());
        cache.live.store(true, Ordering::Release);
        let loads = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (cache, loads) = (cache.clone(), loads.clone());
                tokio::spawn(async move {
                    let load = async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<u32, ()>(7)
                    };
                    cache.get_or_load("page:t:x".into(), MINUTE, load).await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.ok(), Some(Ok(7)));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1, "one load for 16 concurrent misses");
        assert!(cache.loading.lock().map(|l| l.is_empty()).unwrap_or(false), "no gate left behind");
    }

    #[test]
    fn a_value_read_before_an_invalidation_is_not_stored() {
        let cache = Cache::new();
        cache.live.store(true, Ordering::Release);
        let before = cache.ticket();
        cache.invalidate("alias:m:champion");
        cache.put("alias:m:champion".into(), 1_u32, before, MINUTE);
        assert_eq!(cache.get::<u32>("alias:m:champion"), None);
        cache.put("alias:m:champion".into(), 2_u32, cache.ticket(), MINUTE);
        assert_eq!(cache.get::<u32>("alias:m:champion"), Some(2));
        cache.put("short".into(), 3_u32, cache.ticket(), Duration::ZERO);
        assert_eq!(cache.get::<u32>("short"), None, "expired");
    }

    #[test]
    fn pages_are_held_apart_under_their_own_bound() {
        let cache = Cache::new();
        cache.set_live(true);
        cache.put("alias:m:a".into(), 1_u32, cache.ticket(), MINUTE);
        for n in 0..MAX_PAGES {
            cache.put(format!("{PAGE_PREFIX}t:{n}"), n, cache.ticket(), MINUTE);
        }
        assert_eq!(cache.get::<usize>(&format!("{PAGE_PREFIX}t:7")), Some(7));
        // one page too many starts the pages again from empty, and leaves the rest
        cache.put(format!("{PAGE_PREFIX}t:x"), 0_usize, cache.ticket(), MINUTE);
        assert_eq!(cache.get::<usize>(&format!("{PAGE_PREFIX}t:7")), None);
        assert_eq!(cache.get::<usize>(&format!("{PAGE_PREFIX}t:x")), Some(0));
        assert_eq!(cache.get::<u32>("alias:m:a"), Some(1));
        // a team's prefix drops its pages only
        cache.put(format!("{PAGE_PREFIX}u:1"), 1_usize, cache.ticket(), MINUTE);
        cache.invalidate(&format!("{PAGE_PREFIX}t:"));
        assert_eq!(cache.get::<usize>(&format!("{PAGE_PREFIX}t:x")), None);
        assert_eq!(cache.get::<usize>(&format!("{PAGE_PREFIX}u:1")), Some(1));
        assert_eq!(cache.get::<u32>("alias:m:a"), Some(1));
    }

    #[test]
    fn prefixes_drop_every_key_under_them_and_a_deaf_cache_is_bypassed() {
        let cache = Cache::new();
        cache.set_live(true);
        for key in ["alias:m:a", "alias:m:b", "alias:n:a"] {
            cache.put(key.into(), key.to_owned(), cache.ticket(), MINUTE);
        }
        cache.invalidate("alias:m:");
        assert_eq!(cache.get::<String>("alias:m:a"), None);
        assert_eq!(cache.get::<String>("alias:m:b"), None);
        assert_eq!(cache.get::<String>("alias:n:a").as_deref(), Some("alias:n:a"));
        cache.set_live(false);
        assert_eq!(cache.get::<String>("alias:n:a"), None);
        cache.put("alias:n:a".into(), "x".to_owned(), cache.ticket(), MINUTE);
        cache.set_live(true);
        assert_eq!(cache.get::<String>("alias:n:a"), None, "nothing survives a reconnect");
    }
}
