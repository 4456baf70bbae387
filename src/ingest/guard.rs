//! Zip-bomb limits. Bytes are counted as they are actually inflated (headers can
//! lie), and a member is stopped as soon as it passes the ratio, total or count caps.

use crate::config::ImportConfig;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a member was stopped.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LimitError {
    /// A member inflated past the ratio limit.
    #[error(
        "{member} inflates to more than {max_ratio}× its compressed size ({compressed} bytes \
         became {inflated} bytes and counting); refusing it as a possible zip bomb (if this is a \
         genuine export, raise [import] max_ratio)"
    )]
    Ratio {
        /// Member name.
        member: String,
        /// Compressed size.
        compressed: u64,
        /// Bytes inflated when stopped.
        inflated: u64,
        /// The limit.
        max_ratio: u64,
    },
    /// A member inflated past the uncompressed size its header declares (a lying header,
    /// as zip bombs use; the `zip` crate stops reading there).
    #[error(
        "{member} inflates to more than the uncompressed size its ZIP header declares \
         ({inflated} bytes read so far); refusing it as a possible zip bomb (a genuine export \
         never does this: if this is your export, download it again)"
    )]
    Declared {
        /// Member name.
        member: String,
        /// Bytes inflated before the overflow.
        inflated: u64,
    },
    /// All members together passed the total cap.
    #[error(
        "the ZIP inflates to more than {max_total} bytes in all; refusing it as a possible zip \
         bomb (if this is a genuine export, raise [import] max_total_bytes)"
    )]
    Total {
        /// The limit.
        max_total: u64,
    },
    /// Too many entries.
    #[error(
        "the ZIP has {entries} entries, more than the limit of {max_entries} (raise [import] \
         max_entries if this is a genuine export)"
    )]
    Entries {
        /// Entries found.
        entries: u64,
        /// The limit.
        max_entries: u64,
    },
}

impl LimitError {
    /// Finds a limit error inside an I/O error, however deeply it was wrapped.
    pub fn find(e: &io::Error) -> Option<&LimitError> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<LimitError>())
    }
}

/// Counts inflated bytes of one member and enforces the limits.
pub struct Guarded<R> {
    inner: R,
    member: String,
    compressed: u64,
    inflated: u64,
    total: Arc<AtomicU64>,
    limits: ImportConfig,
}

impl<R: Read> Guarded<R> {
    /// Wraps a member reader; `total` is shared by all members of one ZIP.
    pub fn new(
        inner: R,
        member: &str,
        compressed: u64,
        total: Arc<AtomicU64>,
        limits: &ImportConfig,
    ) -> Self {
        Self {
            inner,
            member: member.to_owned(),
            compressed,
            inflated: 0,
            total,
            limits: limits.clone(),
        }
    }
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) if overflows_declared_size(&e) => {
                return Err(io::Error::other(LimitError::Declared {
                    member: self.member.clone(),
                    inflated: self.inflated,
                }));
            }
            Err(e) => return Err(e),
        };
        self.inflated += n as u64;
        let total = self.total.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if total > self.limits.max_total_bytes {
            return Err(io::Error::other(LimitError::Total {
                max_total: self.limits.max_total_bytes,
            }));
        }
        if self.inflated > self.limits.ratio_grace_bytes
            && self.inflated > self.compressed.max(1).saturating_mul(self.limits.max_ratio)
        {
            return Err(io::Error::other(LimitError::Ratio {
                member: self.member.clone(),
                compressed: self.compressed,
                inflated: self.inflated,
                max_ratio: self.limits.max_ratio,
            }));
        }
        Ok(n)
    }
}

/// Whether a read error is the `zip` crate refusing to inflate past a member's declared
/// size: it reports that as plain `InvalidData`, only its message tells it apart.
fn overflows_declared_size(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidData
        && e.to_string()
            .contains("larger than its declared uncompressed size")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflating_past_the_declared_size_is_named_a_possible_bomb() {
        struct Lying;
        impl Read for Lying {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "File is larger than its declared uncompressed size",
                ))
            }
        }
        let total = Arc::new(AtomicU64::new(0));
        let mut g = Guarded::new(Lying, "m", 10, total, &ImportConfig::default());
        let err = io::copy(&mut g, &mut io::sink()).expect_err("declared size");
        let limit = LimitError::find(&err).expect("a limit error");
        assert!(matches!(limit, LimitError::Declared { .. }));
        assert!(limit.to_string().contains("zip bomb"));
    }

    #[test]
    fn ratio_and_total_limits_trip_on_real_bytes() {
        let limits = ImportConfig {
            max_ratio: 10,
            ratio_grace_bytes: 100,
            max_total_bytes: 10_000,
            ..ImportConfig::default()
        };
        let total = Arc::new(AtomicU64::new(0));
        let data = vec![b' '; 5000];
        let mut g = Guarded::new(&data[..], "m", 20, total.clone(), &limits);
        let err = io::copy(&mut g, &mut io::sink()).expect_err("ratio");
        assert!(matches!(
            LimitError::find(&err),
            Some(LimitError::Ratio { .. })
        ));
        let mut g = Guarded::new(&data[..], "m2", 5000, total.clone(), &limits);
        io::copy(&mut g, &mut io::sink()).expect("within limits");
        let mut g = Guarded::new(&data[..], "m3", 5000, total, &limits);
        let err = io::copy(&mut g, &mut io::sink()).expect_err("total");
        assert!(matches!(
            LimitError::find(&err),
            Some(LimitError::Total { .. })
        ));
    }
}
