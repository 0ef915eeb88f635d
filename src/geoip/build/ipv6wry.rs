//! The `ipv6wry.db` file (ZX IPv6 database, shipped in the ip2region npm package): reading
//! its ranges in address order, and writing small files of the same layout for fixtures.
//!
//! Layout (little-endian): `"IPDB"`, version `u16`, offset length `u8` (3), IP length
//! `u8` (8), record count `u64` at 8, index start `u64` at 16. Each index row is the upper
//! 64 bits of a range start followed by an `offset length`-byte record offset; a range ends
//! where the next begins. A record is two NUL-terminated strings — the area (`中国\t广东省\t
//! 广州市`) and the ISP (`中国电信`) — where a leading byte 1 or 2 redirects to another
//! offset, as in the older qqwry layout.
//!
//! This module owns only the format; names are folded by [`Region::from_chinese`].

use std::path::{Path, PathBuf};

use super::sweep::{Region, Span};
use crate::geoip::GeoIpError;

/// Redirect chains longer than this are treated as corrupt rather than followed forever.
const MAX_REDIRECTS: usize = 8;

/// An ipv6wry database held in memory (the real file is under 3 MB).
pub struct Ipv6Wry {
    bytes: Vec<u8>,
    path: PathBuf,
    offset_len: usize,
    rows: usize,
    index: usize,
}

impl Ipv6Wry {
    /// Reads and checks the header of `path`.
    pub fn open(path: &Path) -> Result<Self, GeoIpError> {
        Self::from_bytes(crate::geoip::read_file(path)?, path)
    }

    /// Checks the header of an in-memory file; `path` names it in errors.
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<Self, GeoIpError> {
        let bad = |message: &str| GeoIpError::Format {
            path: path.to_path_buf(),
            message: message.to_string(),
        };
        if bytes.get(0..4) != Some(b"IPDB") {
            return Err(bad("not an ipv6wry file (no IPDB magic)"));
        }
        let offset_len = usize::from(bytes[6]);
        if !(1..=8).contains(&offset_len) || bytes[7] != 8 {
            return Err(bad("unsupported offset or IP length"));
        }
        let rows = read_uint(&bytes, 8, 8).ok_or_else(|| bad("header truncated"))?;
        let index = read_uint(&bytes, 16, 8).ok_or_else(|| bad("header truncated"))?;
        let fits = usize::try_from(rows)
            .ok()
            .and_then(|rows| rows.checked_mul(8 + offset_len))
            .and_then(|size| size.checked_add(usize::try_from(index).ok()?))
            .is_some_and(|end| end <= bytes.len());
        if !fits {
            return Err(bad("index does not fit the file"));
        }
        Ok(Self {
            rows: rows as usize,
            index: index as usize,
            offset_len,
            path: path.to_path_buf(),
            bytes,
        })
    }

    /// Every range in address order; ranges outside China carry `None`.
    pub fn spans(&self) -> impl Iterator<Item = Result<Span<Option<Region>>, GeoIpError>> + '_ {
        (0..self.rows).map(move |i| self.row(i))
    }

    fn prefix(&self, i: usize) -> u64 {
        // The constructor checked that every index row fits.
        read_uint(&self.bytes, self.index + i * (8 + self.offset_len), 8).unwrap_or(u64::MAX)
    }

    fn row(&self, i: usize) -> Result<Span<Option<Region>>, GeoIpError> {
        let at = self.index + i * (8 + self.offset_len);
        let start = self.prefix(i);
        let end = if i + 1 < self.rows {
            let next = self.prefix(i + 1);
            if next <= start {
                return Err(self.error(i, "index is not in address order"));
            }
            (u128::from(next) << 64) - 1
        } else {
            u128::MAX
        };
        let record = read_uint(&self.bytes, at + 8, self.offset_len)
            .ok_or_else(|| self.error(i, "index row past the end"))? as usize;
        let (area, isp) = self
            .record(record)
            .ok_or_else(|| self.error(i, "record outside the file or not UTF-8"))?;
        let mut parts = area.split('\t');
        let mut next = || parts.next().unwrap_or("");
        let (country, province, city) = (next(), next(), next());
        Ok(Span {
            start: u128::from(start) << 64,
            end,
            value: Region::from_chinese(country, province, city, &isp),
        })
    }

    /// The (area, ISP) strings of the record at `offset`.
    fn record(&self, mut offset: usize) -> Option<(String, String)> {
        for _ in 0..MAX_REDIRECTS {
            if *self.bytes.get(offset)? != 1 {
                break;
            }
            offset = self.pointer(offset + 1)?;
        }
        let area = self.area(offset)?;
        let isp_at = if self.bytes[offset] == 2 {
            offset + 1 + self.offset_len
        } else {
            offset + self.bytes.get(offset..)?.iter().position(|b| *b == 0)? + 1
        };
        Some((area, self.area(isp_at)?))
    }

    fn area(&self, mut offset: usize) -> Option<String> {
        for _ in 0..MAX_REDIRECTS {
            match *self.bytes.get(offset)? {
                1 | 2 => offset = self.pointer(offset + 1)?,
                _ => {
                    let rest = self.bytes.get(offset..)?;
                    let len = rest.iter().position(|b| *b == 0)?;
                    return std::str::from_utf8(&rest[..len]).ok().map(str::to_string);
                }
            }
        }
        None
    }

    fn pointer(&self, at: usize) -> Option<usize> {
        read_uint(&self.bytes, at, self.offset_len).map(|p| p as usize)
    }

    fn error(&self, row: usize, message: &str) -> GeoIpError {
        GeoIpError::Format {
            path: self.path.clone(),
            message: format!("index row {row}: {message}"),
        }
    }
}

fn read_uint(bytes: &[u8], at: usize, len: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(len)?)?;
    Some(
        b.iter()
            .rev()
            .fold(0, |acc, byte| (acc << 8) | u64::from(*byte)),
    )
}

/// Writes an ipv6wry file from `(upper 64 bits of range start, area, isp)` rows in address
/// order, without redirects. Used to turn text fixtures into the binary the builder reads.
pub fn encode(rows: &[(u64, &str, &str)]) -> Vec<u8> {
    const OFFSET_LEN: usize = 3;
    let mut out = Vec::new();
    out.extend_from_slice(b"IPDB");
    out.extend_from_slice(&[1, 0, OFFSET_LEN as u8, 8]);
    out.extend_from_slice(&(rows.len() as u64).to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // index start, patched below
    let mut offsets = Vec::with_capacity(rows.len());
    for (_, area, isp) in rows {
        offsets.push(out.len() as u32);
        for text in [area, isp] {
            out.extend_from_slice(text.as_bytes());
            out.push(0);
        }
    }
    let index = out.len() as u64;
    out[16..24].copy_from_slice(&index.to_le_bytes());
    for ((prefix, _, _), offset) in rows.iter().zip(offsets) {
        out.extend_from_slice(&prefix.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes()[..OFFSET_LEN]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(ip: &str) -> u64 {
        (u128::from(ip.parse::<std::net::Ipv6Addr>().unwrap()) >> 64) as u64
    }

    #[test]
    fn ranges_run_to_the_next_start_and_fold_names() {
        let bytes = encode(&[
            (
                prefix("2408:8756::"),
                "中国\t广东省\t广州市\t荔湾区",
                "中国联通IDC",
            ),
            (prefix("2408:8756:200::"), "全球", "Google"),
            (prefix("240e::"), "中国", "中国电信163骨干网"),
        ]);
        let db = Ipv6Wry::from_bytes(bytes, Path::new("v6.db")).unwrap();
        let spans: Vec<_> = db.spans().collect::<Result<_, _>>().unwrap();
        assert_eq!(spans[0].start, u128::from(prefix("2408:8756::")) << 64);
        assert_eq!(
            spans[0].end,
            (u128::from(prefix("2408:8756:200::")) << 64) - 1
        );
        let gz = spans[0].value.as_ref().unwrap();
        assert_eq!(gz.province.as_deref(), Some("CN-GD"));
        assert_eq!(gz.city.as_deref(), Some("广州"));
        assert_eq!(spans[1].value, None);
        let telecom = spans[2].value.as_ref().unwrap();
        assert_eq!(telecom.isp.as_deref(), Some("中国电信163骨干网"));
        assert_eq!(spans[2].end, u128::MAX);
    }

    #[test]
    fn redirected_records_are_followed() {
        // Record 1 is `0x01 <offset of record 0>`: the same strings as record 0.
        let mut bytes = encode(&[(1, "中国\t北京市", "教育网"), (2, "x", "y")]);
        let first = 24u32;
        let second = first as usize + "中国\t北京市".len() + 1 + "教育网".len() + 1;
        bytes[second] = 1;
        bytes[second + 1..second + 4].copy_from_slice(&first.to_le_bytes()[..3]);
        let db = Ipv6Wry::from_bytes(bytes, Path::new("v6.db")).unwrap();
        let spans: Vec<_> = db.spans().collect::<Result<_, _>>().unwrap();
        assert_eq!(spans[1].value, spans[0].value);
        assert_eq!(
            spans[1].value.as_ref().unwrap().province.as_deref(),
            Some("CN-BJ")
        );
    }

    #[test]
    fn a_file_without_the_magic_is_refused() {
        let err = Ipv6Wry::from_bytes(b"QQWRY...".to_vec(), Path::new("v6.db"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("v6.db") && err.contains("IPDB"), "{err}");
    }
}
