//! Reading chatgpt.com cookies from Safari's `Cookies.binarycookies`.
//!
//! The format (undocumented by Apple, long since reverse-engineered):
//!
//! ```text
//! file:   "cook" | page count: u32 BE | page sizes: u32 BE × count | pages
//!         | checksum: u32 BE | footer 07 17 20 05 00 00 00 4b | optional plist
//! page:   00 00 01 00 | cookie count: u32 LE | cookie offsets: u32 LE × count | 00 00 00 00
//!         | cookie records
//! cookie: size u32 | ? u32 | flags u32 | ? u32 | offsets (from the record start) of
//!         url, name, path, value u32 each | 8 bytes end-of-header | expiry f64
//!         | creation f64 | NUL-terminated strings            (all little-endian)
//! ```
//!
//! Times are seconds since 2001-01-01 (Core Foundation's epoch). The checksum and
//! footer are not needed to read cookies, so a file that lacks them is accepted.

use std::fs;
use std::io;
use std::path::Path;

use chrono::{DateTime, Utc};
use secrecy::zeroize::Zeroizing;

use super::select::{self, RawCookie, StoreRead};
use super::{Browser, BrowserError, Os};

/// Seconds from the Unix epoch to 2001-01-01T00:00:00Z.
const MAC_EPOCH_OFFSET: f64 = 978_307_200.0;
const MAGIC: &[u8; 4] = b"cook";
const PAGE_HEADER: [u8; 4] = [0, 0, 1, 0];
/// Size of a cookie record's fixed header, before its strings.
const RECORD_HEADER: usize = 56;

/// Reads the wanted chatgpt.com cookies from the Safari store at `path`.
pub(crate) fn read(path: &Path, os: Os) -> Result<StoreRead, BrowserError> {
    let data = fs::read(path).map_err(|source| {
        if os == Os::MacOs && source.kind() == io::ErrorKind::PermissionDenied {
            BrowserError::SafariNeedsFullDiskAccess {
                store: path.to_path_buf(),
            }
        } else {
            BrowserError::Io {
                browser: Browser::Safari,
                store: path.to_path_buf(),
                source,
            }
        }
    })?;
    // The whole file holds every site's cookies: wipe it once parsed.
    let data = Zeroizing::new(data);
    let records = parse(&data).map_err(|problem| BrowserError::Corrupt {
        browser: Browser::Safari,
        store: path.to_path_buf(),
        problem,
    })?;

    let mut read = StoreRead::default();
    for r in records {
        let (Ok(host), Ok(name)) = (std::str::from_utf8(r.domain), std::str::from_utf8(r.name))
        else {
            continue;
        };
        if select::host_tier(host).is_none() || !select::is_wanted_name(name) {
            continue;
        }
        let Some(value) = select::secret_from_utf8(Zeroizing::new(r.value.to_vec())) else {
            continue;
        };
        read.cookies.push(RawCookie {
            host: host.to_owned(),
            name: name.to_owned(),
            value,
            expires: mac_time(r.expiry),
            created: mac_time(r.creation),
            last_access: None,
            jar: String::new(),
        });
    }
    Ok(read)
}

/// One cookie record, borrowing its strings from the file.
#[derive(Debug, PartialEq)]
pub(crate) struct Record<'a> {
    /// The cookie's domain (`url` field), e.g. `.chatgpt.com`.
    pub domain: &'a [u8],
    /// The cookie's name.
    pub name: &'a [u8],
    /// The cookie's path.
    pub path: &'a [u8],
    /// The cookie's value.
    pub value: &'a [u8],
    /// Expiry, seconds since 2001-01-01.
    pub expiry: f64,
    /// Creation, seconds since 2001-01-01.
    pub creation: f64,
}

/// Parses the whole file; the error says what is wrong and where (never a value).
pub(crate) fn parse(data: &[u8]) -> Result<Vec<Record<'_>>, String> {
    if data.get(..4) != Some(MAGIC.as_slice()) {
        return Err("not a Safari binarycookies file: it does not start with `cook`".into());
    }
    let pages = be_u32(data, 4).ok_or("truncated before the page count")? as usize;
    let sizes_end = pages
        .checked_mul(4)
        .and_then(|n| n.checked_add(8))
        .filter(|&end| end <= data.len())
        .ok_or_else(|| format!("truncated: {pages} page sizes declared but the file ends first"))?;
    let mut records = Vec::new();
    let mut offset = sizes_end;
    for page in 0..pages {
        let size = be_u32(data, 8 + page * 4).ok_or("truncated page size table")? as usize;
        let end = offset
            .checked_add(size)
            .filter(|&end| end <= data.len())
            .ok_or_else(|| {
                format!(
                    "truncated: page {page} of {pages} needs {size} bytes at byte {offset} but \
                     the file has {} bytes",
                    data.len()
                )
            })?;
        parse_page(&data[offset..end], &mut records).map_err(|e| format!("page {page}: {e}"))?;
        offset = end;
    }
    Ok(records)
}

fn parse_page<'a>(page: &'a [u8], out: &mut Vec<Record<'a>>) -> Result<(), String> {
    if page.get(..4) != Some(PAGE_HEADER.as_slice()) {
        return Err("bad page header".into());
    }
    let count = le_u32(page, 4).ok_or("truncated cookie count")? as usize;
    for i in 0..count {
        let at = i
            .checked_mul(4)
            .and_then(|n| n.checked_add(8))
            .ok_or("cookie count too large")?;
        let start = le_u32(page, at).ok_or("truncated cookie offset table")? as usize;
        let record = parse_record(page, start).map_err(|e| format!("cookie {i}: {e}"))?;
        out.push(record);
    }
    Ok(())
}

fn parse_record(page: &[u8], start: usize) -> Result<Record<'_>, String> {
    let size = le_u32(page, start).ok_or("offset outside the page")? as usize;
    let record = start
        .checked_add(size)
        .and_then(|end| page.get(start..end))
        .filter(|r| r.len() >= RECORD_HEADER)
        .ok_or("record size outside the page")?;
    let string = |field: usize, what: &str| -> Result<&[u8], String> {
        let off = le_u32(record, field).ok_or("truncated header")? as usize;
        let tail = record
            .get(off..)
            .filter(|_| off >= RECORD_HEADER)
            .ok_or_else(|| format!("{what} offset outside the record"))?;
        let len = tail
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| format!("{what} is not NUL-terminated"))?;
        Ok(&tail[..len])
    };
    Ok(Record {
        domain: string(16, "domain")?,
        name: string(20, "name")?,
        path: string(24, "path")?,
        value: string(28, "value")?,
        expiry: le_f64(record, 40).ok_or("truncated header")?,
        creation: le_f64(record, 48).ok_or("truncated header")?,
    })
}

/// Seconds since 2001-01-01 to a UTC time; `None` for garbage (NaN, out of range).
fn mac_time(secs: f64) -> Option<DateTime<Utc>> {
    let unix = secs + MAC_EPOCH_OFFSET;
    if !unix.is_finite() || unix <= 0.0 || unix >= i64::MAX as f64 {
        return None;
    }
    let whole = unix.floor();
    let nanos = ((unix - whole) * 1e9) as u32;
    DateTime::from_timestamp(whole as i64, nanos.min(999_999_999))
}

fn be_u32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        data.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn le_u32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        data.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn le_f64(data: &[u8], at: usize) -> Option<f64> {
    Some(f64::from_le_bytes(
        data.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

#[cfg(test)]
pub(crate) mod testing {
    //! A small encoder following the layout above, to build test stores.

    /// One cookie to encode; times are Unix seconds.
    pub struct TestCookie<'a> {
        pub domain: &'a str,
        pub name: &'a str,
        pub path: &'a str,
        pub value: &'a str,
        pub expiry_unix: f64,
        pub creation_unix: f64,
    }

    fn record(c: &TestCookie<'_>) -> Vec<u8> {
        let mut strings = Vec::new();
        let mut offsets = Vec::new();
        for s in [c.domain, c.name, c.path, c.value] {
            offsets.push((super::RECORD_HEADER + strings.len()) as u32);
            strings.extend_from_slice(s.as_bytes());
            strings.push(0);
        }
        let size = (super::RECORD_HEADER + strings.len()) as u32;
        let mut r = Vec::new();
        r.extend_from_slice(&size.to_le_bytes());
        r.extend_from_slice(&1u32.to_le_bytes()); // version
        r.extend_from_slice(&5u32.to_le_bytes()); // flags: secure | httponly
        r.extend_from_slice(&0u32.to_le_bytes()); // has port
        for o in offsets {
            r.extend_from_slice(&o.to_le_bytes());
        }
        r.extend_from_slice(&[0u8; 8]); // comment offset + end of header
        r.extend_from_slice(&(c.expiry_unix - super::MAC_EPOCH_OFFSET).to_le_bytes());
        r.extend_from_slice(&(c.creation_unix - super::MAC_EPOCH_OFFSET).to_le_bytes());
        r.extend_from_slice(&strings);
        r
    }

    fn page(cookies: &[TestCookie<'_>]) -> Vec<u8> {
        let records: Vec<Vec<u8>> = cookies.iter().map(record).collect();
        let header_len = 4 + 4 + 4 * records.len() + 4;
        let mut p = vec![0, 0, 1, 0];
        p.extend_from_slice(&(records.len() as u32).to_le_bytes());
        let mut at = header_len;
        for r in &records {
            p.extend_from_slice(&(at as u32).to_le_bytes());
            at += r.len();
        }
        p.extend_from_slice(&[0, 0, 0, 0]);
        for r in &records {
            p.extend_from_slice(r);
        }
        p
    }

    /// Encodes `pages` (each a list of cookies) as a complete binarycookies file.
    pub fn encode(pages: &[&[TestCookie<'_>]], with_footer: bool) -> Vec<u8> {
        let pages: Vec<Vec<u8>> = pages.iter().map(|c| page(c)).collect();
        let mut f = b"cook".to_vec();
        f.extend_from_slice(&(pages.len() as u32).to_be_bytes());
        for p in &pages {
            f.extend_from_slice(&(p.len() as u32).to_be_bytes());
        }
        let mut checksum = 0u32;
        for p in &pages {
            for b in p.iter().step_by(4) {
                checksum = checksum.wrapping_add(u32::from(*b));
            }
            f.extend_from_slice(p);
        }
        if with_footer {
            f.extend_from_slice(&checksum.to_be_bytes());
            f.extend_from_slice(&[0x07, 0x17, 0x20, 0x05, 0x00, 0x00, 0x00, 0x4b]);
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{TestCookie, encode};
    use super::*;

    fn cookie<'a>(domain: &'a str, name: &'a str, value: &'a str) -> TestCookie<'a> {
        TestCookie {
            domain,
            name,
            path: "/",
            value,
            expiry_unix: 2_000_000_000.0,
            creation_unix: 1_700_000_000.5,
        }
    }

    #[test]
    fn round_trip_two_pages() {
        let a = [
            cookie(".example.com", "a", "1"),
            cookie(".chatgpt.com", "b", "2"),
        ];
        let b = [cookie("chatgpt.com", "c", "3")];
        for footer in [true, false] {
            let file = encode(&[&a, &b], footer);
            let recs = parse(&file).unwrap();
            assert_eq!(recs.len(), 3);
            assert_eq!(recs[1].domain, b".chatgpt.com");
            assert_eq!(recs[2].name, b"c");
            assert_eq!(recs[2].value, b"3");
            assert_eq!(recs[0].path, b"/");
            let created = mac_time(recs[0].creation).unwrap();
            assert_eq!(created.timestamp(), 1_700_000_000);
            assert_eq!(created.timestamp_subsec_millis(), 500);
        }
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        let good = encode(&[&[cookie(".chatgpt.com", "n", "v")]], true);
        assert!(parse(b"").is_err());
        assert!(parse(b"nope").is_err());
        assert!(parse(b"cook\xff\xff\xff\xff").is_err());
        // Cut anywhere inside the pages: an error, never a panic.
        let pages_end = good.len() - 12;
        for cut in 4..pages_end {
            assert!(parse(&good[..cut]).is_err(), "cut at {cut} parsed");
        }
        // Footer cut off: still fine.
        assert_eq!(parse(&good[..pages_end]).unwrap().len(), 1);
    }

    #[test]
    fn mac_time_rejects_garbage() {
        assert!(mac_time(f64::NAN).is_none());
        assert!(mac_time(f64::INFINITY).is_none());
        assert!(mac_time(-1e12).is_none());
        assert_eq!(
            mac_time(0.0).unwrap().to_rfc3339(),
            "2001-01-01T00:00:00+00:00"
        );
    }
}
