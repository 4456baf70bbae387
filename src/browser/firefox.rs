//! Reading chatgpt.com cookies from a Firefox `cookies.sqlite` (`moz_cookies` table).

use std::path::Path;

use chrono::{DateTime, Utc};

use super::select::{self, RawCookie, StoreRead};
use super::sqlite::{self, corrupt};
use super::{Browser, BrowserError};

/// Reads the wanted chatgpt.com cookies from a copy of the Firefox store at `store`.
pub(crate) fn read(store: &Path, temp_base: &Path) -> Result<StoreRead, BrowserError> {
    let copy = sqlite::open_copy(Browser::Firefox, store, temp_base)?;
    query(&copy.conn).map_err(|e| corrupt(Browser::Firefox, store, &e))
}

fn query(conn: &rusqlite::Connection) -> rusqlite::Result<StoreRead> {
    // Containers (and partitioned cookies) keep separate jars, told apart by originAttributes;
    // very old stores lack the column.
    let jar = if sqlite::has_column(conn, "moz_cookies", "originAttributes")? {
        "originAttributes"
    } else {
        "''"
    };
    let sql = format!(
        "SELECT host, name, value, expiry, lastAccessed, creationTime, {jar} \
         FROM moz_cookies WHERE host IN (?1, ?2, ?3, ?4)"
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(select::HOSTS)?;
    let mut read = StoreRead::default();
    while let Some(row) = rows.next()? {
        let name = sqlite::text(row, 1)?;
        let jar = sqlite::text(row, 6)?;
        // A partitioned cookie belongs to chatgpt.com embedded in another site, not a login.
        if !select::is_wanted_name(&name) || jar.contains("partitionKey=") {
            continue;
        }
        let Some(value) = select::secret_from_utf8(sqlite::bytes(row, 2)?) else {
            tracing::debug!(cookie = %name, "skipping a cookie whose value is not UTF-8");
            continue;
        };
        let created = micros(sqlite::int(row, 5)?);
        read.cookies.push(RawCookie {
            host: sqlite::text(row, 0)?,
            name,
            value,
            expires: expiry(sqlite::int(row, 3)?, created),
            created,
            last_access: micros(sqlite::int(row, 4)?),
            jar,
        });
    }
    Ok(read)
}

/// `lastAccessed`/`creationTime` are microseconds since the Unix epoch.
fn micros(us: i64) -> Option<DateTime<Utc>> {
    (us > 0)
        .then(|| DateTime::from_timestamp_micros(us))
        .flatten()
}

/// `expiry` was seconds since the epoch and is milliseconds in newer Firefox.
///
/// Told apart by size: 10^11 seconds is the year 5138, so anything bigger is taken as
/// milliseconds, unless that would put the expiry before the cookie's creation (a far-future
/// expiry written in seconds, e.g. the year 9999, which must not read as 1978).
fn expiry(raw: i64, created: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    const MS_THRESHOLD: i64 = 100_000_000_000;
    if raw <= 0 {
        // Firefox writes no session cookies to disk with expiry 0, but be lenient: no expiry.
        return None;
    }
    let as_secs = || DateTime::from_timestamp(raw, 0).or(Some(DateTime::<Utc>::MAX_UTC));
    if raw < MS_THRESHOLD {
        return as_secs();
    }
    match DateTime::from_timestamp_millis(raw) {
        Some(ms) if created.is_none_or(|c| ms >= c - chrono::Duration::days(1)) => Some(ms),
        _ => as_secs(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_seconds_and_milliseconds() {
        let created = DateTime::from_timestamp(1_700_000_000, 0);
        let secs = expiry(1_800_000_000, created).unwrap();
        assert_eq!(secs.timestamp(), 1_800_000_000);
        let ms = expiry(1_800_000_000_123, created).unwrap();
        assert_eq!(ms.timestamp_millis(), 1_800_000_000_123);
        // Year 9999 in seconds stays year 9999.
        let far = expiry(253_402_300_799, created).unwrap();
        assert_eq!(far.timestamp(), 253_402_300_799);
        // Out of chrono's range in seconds: treated as never expiring.
        assert_eq!(expiry(i64::MAX, created), Some(DateTime::<Utc>::MAX_UTC));
        assert_eq!(expiry(0, created), None);
    }
}
