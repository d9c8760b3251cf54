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
pub mod iam;
pub mod jobs;
pub mod lifecycle;
mod migrate;
pub mod netops;
pub mod network;
pub mod phones;
mod rows;
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
    /// Commits, and advances the store's data version (see [`Store::data_version`]).
    pub async fn commit(self) -> std::result::Result<(), sqlx::Error> {
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

/// Commit counter of this process's writes.
#[derive(Debug, Default)]
struct Versions {
    version: AtomicU64,
    /// Commits under way.
    writing: AtomicU64,
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
            let store = Store {
                versions: Arc::default(),
                backend: Backend::Sqlite,
                read,
                write,
            };
            migrate::run(&store).await?;
            Ok(store)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(30))
                .connect(url)
                .await?;
            let store = Store {
                versions: Arc::default(),
                backend: Backend::Postgres,
                read: pool.clone(),
                write: pool,
            };
            migrate::run(&store).await?;
            Ok(store)
        } else {
            Err(StoreError::UnsupportedUrl)
        }
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
    /// while a commit is under way, or when the store can be written by other processes
    /// (PostgreSQL serves several replicas). On SQLite this process is the only writer of
    /// resource data, so equal versions before and after a read mean the read saw a stable state.
    pub fn data_version(&self) -> Option<u64> {
        if self.backend != Backend::Sqlite || self.versions.writing.load(Ordering::SeqCst) != 0 {
            return None;
        }
        let v = self.versions.version.load(Ordering::SeqCst);
        (self.versions.writing.load(Ordering::SeqCst) == 0).then_some(v)
    }

    /// A connection for reads outside any transaction.
    pub async fn read(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        Ok(self.read.acquire().await?)
    }

    /// Closes all connections.
    pub async fn close(&self) {
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
