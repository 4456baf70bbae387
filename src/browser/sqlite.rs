//! Opening a private, read-only copy of a browser's SQLite cookie store, and reading
//! loosely typed columns without trusting the store's data.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row};
use secrecy::zeroize::Zeroizing;

use super::tempcopy::{self, PrivateTempDir};
use super::{Browser, BrowserError};

/// A read-only connection to a copy of a store; the copy is deleted when this is dropped.
pub(crate) struct StoreCopy {
    // Field order matters: the connection must close before the directory is removed.
    pub conn: Connection,
    _dir: PrivateTempDir,
}

/// Copies `store` (with `-wal`/`-shm`) into a private temp dir under `temp_base` and opens it.
pub(crate) fn open_copy(
    browser: Browser,
    store: &Path,
    temp_base: &Path,
) -> Result<StoreCopy, BrowserError> {
    let dir = PrivateTempDir::new_in(temp_base).map_err(BrowserError::TempDir)?;
    let copy = tempcopy::copy_sqlite(&dir, store).map_err(|source| BrowserError::Io {
        browser,
        store: store.to_path_buf(),
        source,
    })?;
    let conn = Connection::open_with_flags(
        &copy,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| corrupt(browser, store, &e))?;
    Ok(StoreCopy { conn, _dir: dir })
}

/// The error for a store SQLite cannot read (garbage, truncated, missing table).
pub(crate) fn corrupt(browser: Browser, store: &Path, e: &rusqlite::Error) -> BrowserError {
    BrowserError::Corrupt {
        browser,
        store: store.to_path_buf(),
        // SQLite's own messages ("file is not a database", "no such table") carry no values.
        problem: e.to_string(),
    }
}

/// Whether `table` has a column `column` (schemas differ across browser versions).
pub(crate) fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// A column as bytes, whether stored as TEXT or BLOB (NULL is empty); wiped on drop
/// because it may be a cookie value.
pub(crate) fn bytes(row: &Row<'_>, idx: usize) -> rusqlite::Result<Zeroizing<Vec<u8>>> {
    Ok(Zeroizing::new(match row.get_ref(idx)? {
        ValueRef::Text(b) | ValueRef::Blob(b) => b.to_vec(),
        _ => Vec::new(),
    }))
}

/// A column as text, with invalid UTF-8 replaced (for hosts and names, never values).
pub(crate) fn text(row: &Row<'_>, idx: usize) -> rusqlite::Result<String> {
    Ok(String::from_utf8_lossy(&bytes(row, idx)?).into_owned())
}

/// A column as an integer, tolerating REAL and NULL (0).
pub(crate) fn int(row: &Row<'_>, idx: usize) -> rusqlite::Result<i64> {
    Ok(match row.get_ref(idx)? {
        ValueRef::Integer(i) => i,
        ValueRef::Real(f) if f.is_finite() => f as i64,
        _ => 0,
    })
}
