//! The storage layer: every SQL statement of the control plane lives in this crate.
//!
//! One schema and (nearly) one SQL text serve both backends through sqlx's `Any` driver:
//! SQLite (a file in the data directory, the default) and PostgreSQL (for several replicas).
//! Where the dialects differ (row locks for job claiming, pragmas) the code asks [`Backend`].
//!
//! Invariants:
//! - Times are epoch milliseconds (`i64`) supplied by the caller; SQL never reads the clock.
//! - Writes go through [`Store::write`], a transaction. On SQLite all write transactions are
//!   serialised through one connection (`BEGIN IMMEDIATE`), so a read-then-write never races.
//! - Functions take `&mut AnyConnection`, so the same function runs inside a transaction or on a
//!   plain read connection; callers decide the boundary.

pub mod audit;
pub mod connect;
pub mod data_exports;
pub mod iam;
pub mod jobs;
pub mod lifecycle;
mod migrate;
pub mod netops;
pub mod network;
pub mod phones;
mod rows;
pub mod secrets;
pub mod servers;
pub mod tags;

pub use rows::*;
pub use sqlx::AnyConnection;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A write transaction. Dropping it without [`Tx::commit`] rolls back.
pub struct Tx {
    inner: sqlx::Transaction<'static, sqlx::Any>,
    versions: Arc<Versions>,
}

impl Tx {
    /// Commits, and advances the store's data version (see [`Store::data_version`]). On
    /// PostgreSQL the transaction also notifies [`DATA_CHANNEL`], so that every replica's
    /// listener advances its version once the commit is visible.
    pub async fn commit(mut self) -> std::result::Result<(), sqlx::Error> {
        if self.versions.notify {
            sqlx::query(NOTIFY_DATA).execute(&mut *self.inner).await?;
        }
        self.versions.writing.fetch_add(1, Ordering::SeqCst);
        let r = self.inner.commit().await;
        self.versions.version.fetch_add(1, Ordering::SeqCst);
        self.versions.writing.fetch_sub(1, Ordering::SeqCst);
        r
    }
}

impl std::ops::Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.inner
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.inner
    }
}

/// The PostgreSQL notification channel every commit notifies (see [`Store::data_version`]).
pub const DATA_CHANNEL: &str = "cph_data";
const NOTIFY_DATA: &str = "NOTIFY cph_data";

/// The store's data version: a counter of the commits this process knows of.
#[derive(Debug, Default)]
struct Versions {
    version: AtomicU64,
    /// Commits under way.
    writing: AtomicU64,
    /// Whether the counter covers every writer: on SQLite while polling `PRAGMA data_version`
    /// works; on PostgreSQL while the listener of [`DATA_CHANNEL`] is connected.
    complete: std::sync::atomic::AtomicBool,
    /// Whether commits notify [`DATA_CHANNEL`] (PostgreSQL).
    notify: bool,
}

impl Versions {
    fn sqlite() -> Arc<Versions> {
        Arc::new(Versions::default())
    }

    fn postgres() -> Arc<Versions> {
        Arc::new(Versions {
            notify: true,
            ..Versions::default()
        })
    }

    fn advance(&self) {
        self.version.fetch_add(1, Ordering::SeqCst);
    }
}

/// Follows [`DATA_CHANNEL`] on PostgreSQL: every notification (another replica's commit, or
/// this one's) advances the version. While the listener is not connected the version is
/// marked incomplete, so caches keyed on it serve nothing; after a reconnect the version
/// advances once more, since notifications sent in between are lost.
async fn follow_commits(url: String, versions: std::sync::Weak<Versions>) {
    use sqlx::postgres::PgListener;
    let mut backoff = Duration::from_millis(100);
    loop {
        let listener = async {
            let mut l = PgListener::connect(&url).await?;
            l.listen(DATA_CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        }
        .await;
        let mut listener = match listener {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "listening for commits of other replicas failed; read caches are off until it succeeds");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                if versions.strong_count() == 0 {
                    return;
                }
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        {
            let Some(v) = versions.upgrade() else { return };
            v.advance();
            v.complete.store(true, Ordering::SeqCst);
        }
        loop {
            let r = listener.try_recv().await;
            let Some(v) = versions.upgrade() else { return };
            match r {
                Ok(Some(_)) => v.advance(),
                Ok(None) | Err(_) => {
                    v.complete.store(false, Ordering::SeqCst);
                    v.advance();
                    tracing::warn!("lost the listener for commits of other replicas; reconnecting");
                    break;
                }
            }
        }
    }
}

/// How often a SQLite store looks for commits of other processes (`cph admin`).
const SQLITE_POLL: Duration = Duration::from_millis(100);

/// Follows commits of other processes on SQLite: `PRAGMA data_version` of one connection of its
/// own changes whenever another connection committed, so polling it advances the version
/// within [`SQLITE_POLL`] of a commit by `cph admin` (this process's own commits advance it at
/// once, in [`Tx::commit`]). If the poll fails the version is marked incomplete until it works
/// again.
async fn follow_sqlite(url: String, versions: std::sync::Weak<Versions>) {
    use sqlx::Connection;
    let mut conn: Option<AnyConnection> = None;
    let mut last: Option<i64> = None;
    loop {
        tokio::time::sleep(SQLITE_POLL).await;
        let Some(v) = versions.upgrade() else { return };
        if conn.is_none() {
            conn = AnyConnection::connect(&url).await.ok();
        }
        let polled = match conn.as_mut() {
            Some(c) => sqlx::query_scalar::<_, i64>("PRAGMA data_version")
                .fetch_one(c)
                .await
                .ok(),
            None => None,
        };
        match polled {
            Some(now) => {
                if last.is_some_and(|l| l != now) {
                    v.advance();
                }
                if last.is_none() {
                    v.advance();
                    v.complete.store(true, Ordering::SeqCst);
                }
                last = Some(now);
            }
            None => {
                if last.take().is_some() {
                    tracing::warn!(
                        "polling the database for commits of other processes failed; read caches are off until it works"
                    );
                }
                v.complete.store(false, Ordering::SeqCst);
                conn = None;
            }
        }
    }
}

/// Stops the commit listener when the last clone of its store goes away.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Which database engine is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Errors the layers above branch on. Everything else is `Db`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("unsupported database url (use sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The stored secret of this access key does not decrypt with the master key.
    #[error("the secret key of access key {0} does not decrypt with the master key")]
    Undecryptable(String),
}

impl StoreError {
    /// True for a unique/primary-key violation.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(e)) => e.is_unique_violation(),
            StoreError::Conflict(_) => true,
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Connection pools and the backend they talk to.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    read: AnyPool,
    write: AnyPool,
    versions: Arc<Versions>,
    /// The commit listener (PostgreSQL).
    follower: Option<Arc<AbortOnDrop>>,
    url: Arc<str>,
}

impl Store {
    /// Opens (creating if needed) the database at `url` and brings its schema up to date.
    ///
    /// `sqlite://PATH` (the file is created) or `postgres://…`.
    pub async fn open(url: &str) -> Result<Store> {
        install_default_drivers();
        if url.starts_with("sqlite:") {
            let url = if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            };
            fn after(
                conn: &mut AnyConnection,
                _meta: sqlx::pool::PoolConnectionMetadata,
            ) -> futures::future::BoxFuture<'_, Result<(), sqlx::Error>> {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    Ok(())
                })
            }
            let write = AnyPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(after)
                .connect(&url)
                .await?;
            // WAL lets readers proceed while the single writer commits; it persists in the file.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&write)
                .await?;
            let read = AnyPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(after)
                .connect(&url)
                .await?;
            let versions = Versions::sqlite();
            let follower = tokio::spawn(follow_sqlite(url.clone(), Arc::downgrade(&versions)));
            let store = Store {
                versions,
                backend: Backend::Sqlite,
                read,
                write,
                follower: Some(Arc::new(AbortOnDrop(follower.abort_handle()))),
                url: url.as_str().into(),
            };
            migrate::run(&store).await?;
            Ok(store)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(30))
                .connect(url)
                .await?;
            let versions = Versions::postgres();
            let follower = tokio::spawn(follow_commits(url.to_string(), Arc::downgrade(&versions)));
            let store = Store {
                versions,
                backend: Backend::Postgres,
                read: pool.clone(),
                write: pool,
                follower: Some(Arc::new(AbortOnDrop(follower.abort_handle()))),
                url: url.into(),
            };
            migrate::run(&store).await?;
            Ok(store)
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    /// Opens another store on the same database, with its own connections and data version,
    /// as another replica (or an administration command) would.
    pub async fn reopen(&self) -> Result<Store> {
        Store::open(&self.url).await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a write transaction.
    pub async fn write(&self) -> Result<Tx> {
        let inner = match self.backend {
            Backend::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.write.begin().await?,
        };
        Ok(Tx {
            inner,
            versions: self.versions.clone(),
        })
    }

    /// A number that changes whenever data may have changed, for caches of read results; `None`
    /// while a commit of this process is under way, or while the version may miss commits of
    /// other processes. This process's commits count when they return, so equal versions before
    /// and after a read mean the read saw a state that this process did not change meanwhile.
    /// Other processes' commits count once they are noticed: on SQLite (`cph admin` beside the
    /// server) within [`SQLITE_POLL`], by polling `PRAGMA data_version`; on PostgreSQL (other
    /// replicas) when the notification every commit sends on [`DATA_CHANNEL`] arrives. Until
    /// then a cache keyed on the version may serve their earlier state. While that following
    /// fails the version is `None`.
    pub fn data_version(&self) -> Option<u64> {
        if !self.versions.complete.load(Ordering::SeqCst)
            || self.versions.writing.load(Ordering::SeqCst) != 0
        {
            return None;
        }
        let v = self.versions.version.load(Ordering::SeqCst);
        (self.versions.writing.load(Ordering::SeqCst) == 0).then_some(v)
    }

    /// On SQLite, checkpoints the WAL into the database file and truncates it (best effort:
    /// frames that open readers still need stay). Nothing on PostgreSQL.
    pub async fn checkpoint_truncate(&self) -> Result<()> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.write)
                .await?;
        }
        Ok(())
    }

    /// A connection for reads outside any transaction.
    pub async fn read(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        Ok(self.read.acquire().await?)
    }

    /// Closes all connections.
    pub async fn close(&self) {
        if let Some(f) = &self.follower {
            f.0.abort();
            self.versions.complete.store(false, Ordering::SeqCst);
        }
        self.read.close().await;
        self.write.close().await;
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `($1,$2,…),($k,…)` for `rows` × `cols` bind parameters, numbered from 1.
/// (Numbered placeholders are the one syntax both backends accept.)
pub(crate) fn values_placeholders(rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            s.push('$');
            s.push_str(&(r * cols + c + 1).to_string());
        }
        s.push(')');
    }
    s
}

/// Bind parameters per statement for `IN (…)` lists and multi-row inserts. Statements with
/// thousands of parameters cost time quadratic in their count when binding (parameter-name
/// lookups), so long lists go in chunks of this size.
pub(crate) const IN_CHUNK: usize = 256;
