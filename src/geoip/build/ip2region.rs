//! The ip2region v1 `.db` file (IPv4): reading its ranges in address order, and writing
//! small files of the same layout for test fixtures.
//!
//! Layout (little-endian): two `u32` header pointers to the first and last 12-byte index
//! row; each index row is `start_ip u32, end_ip u32, data_ptr u32` where the top 8 bits of
//! `data_ptr` are the data length and the low 24 bits its offset; the data is a `u32` city
//! id followed by `country|region|province|city|isp` in UTF-8, `0` meaning unknown. The
//! 8 KiB header index block after the pointers only speeds up point lookups and is ignored.
//!
//! This module owns the format only; names are folded by [`Region::from_chinese`]. It knows
//! nothing about the other sources or the output database.

use std::path::{Path, PathBuf};

use super::sweep::{Region, Span};
use crate::geoip::GeoIpError;

const INDEX_ROW: usize = 12;

/// An ip2region v1 database held in memory (the real file is under 10 MB).
pub struct Ip2Region {
    bytes: Vec<u8>,
    path: PathBuf,
    first_row: usize,
    rows: usize,
}

impl Ip2Region {
    /// Reads and checks the header of `path`.
    pub fn open(path: &Path) -> Result<Self, GeoIpError> {
        Self::from_bytes(crate::geoip::read_file(path)?, path)
    }

    /// Checks the header of an in-memory file; `path` names it in errors.
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<Self, GeoIpError> {
        let bad = |message: &str| format_error(path, message.to_string());
        let first = read_u32(&bytes, 0).ok_or_else(|| bad("shorter than its header"))? as usize;
        let last = read_u32(&bytes, 4).ok_or_else(|| bad("shorter than its header"))? as usize;
        if last < first || (last - first) % INDEX_ROW != 0 || last + INDEX_ROW > bytes.len() {
            return Err(bad("index pointers do not fit the file"));
        }
        Ok(Self {
            rows: (last - first) / INDEX_ROW + 1,
            first_row: first,
            path: path.to_path_buf(),
            bytes,
        })
    }

    /// Number of index rows (ranges).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when the file has no ranges.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Every range in file (address) order, with its folded region; rows outside China
    /// carry `None`.
    pub fn spans(&self) -> impl Iterator<Item = Result<Span<Option<Region>>, GeoIpError>> + '_ {
        (0..self.rows).map(move |i| self.row(i))
    }

    fn row(&self, i: usize) -> Result<Span<Option<Region>>, GeoIpError> {
        let at = self.first_row + i * INDEX_ROW;
        let (Some(start), Some(end), Some(ptr)) = (
            read_u32(&self.bytes, at),
            read_u32(&self.bytes, at + 4),
            read_u32(&self.bytes, at + 8),
        ) else {
            return Err(self.error(i, "index row past the end of the file"));
        };
        let len = (ptr >> 24) as usize;
        let offset = (ptr & 0x00ff_ffff) as usize;
        let text = self
            .bytes
            .get(offset + 4..offset + len)
            .filter(|_| len >= 4)
            .ok_or_else(|| self.error(i, "data pointer outside the file"))?;
        let text = std::str::from_utf8(text).map_err(|_| self.error(i, "data is not UTF-8"))?;
        let fields: Vec<&str> = text.split('|').collect();
        let [country, _region, province, city, isp] = fields[..] else {
            return Err(self.error(i, &format!("expected 5 fields, got {text:?}")));
        };
        if end < start {
            return Err(self.error(i, "range ends before it starts"));
        }
        Ok(Span {
            start: u128::from(start),
            end: u128::from(end),
            value: Region::from_chinese(country, province, city, isp),
        })
    }

    fn error(&self, row: usize, message: &str) -> GeoIpError {
        format_error(&self.path, format!("index row {row}: {message}"))
    }
}

fn format_error(path: &Path, message: String) -> GeoIpError {
    GeoIpError::Format {
        path: path.to_path_buf(),
        message,
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Writes an ip2region v1 file from `(start, end, "country|region|province|city|isp")`
/// rows given in address order. Used to turn the text fixtures (ip2region's own
/// `ip.merge.txt` line format) into the binary the builder reads.
pub fn encode(rows: &[(u32, u32, &str)]) -> Vec<u8> {
    let mut out = vec![0u8; 8];
    let mut pointers = Vec::with_capacity(rows.len());
    let mut seen: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
    for (_, _, text) in rows {
        let ptr = *seen.entry(text).or_insert_with(|| {
            let offset = out.len() as u32;
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(text.as_bytes());
            ((text.len() as u32 + 4) << 24) | offset
        });
        pointers.push(ptr);
    }
    let first = out.len() as u32;
    for ((start, end, _), ptr) in rows.iter().zip(pointers) {
        out.extend_from_slice(&start.to_le_bytes());
        out.extend_from_slice(&end.to_le_bytes());
        out.extend_from_slice(&ptr.to_le_bytes());
    }
    let last = first + (rows.len().saturating_sub(1) * INDEX_ROW) as u32;
    out[0..4].copy_from_slice(&first.to_le_bytes());
    out[4..8].copy_from_slice(&last.to_le_bytes());
    out
}

/// Parses one `ip.merge.txt` line, `start|end|country|region|province|city|isp`.
pub fn parse_merge_line(line: &str) -> Option<(u32, u32, &str)> {
    let mut parts = line.splitn(3, '|');
    let start: std::net::Ipv4Addr = parts.next()?.parse().ok()?;
    let end: std::net::Ipv4Addr = parts.next()?.parse().ok()?;
    Some((start.into(), end.into(), parts.next()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> u128 {
        u128::from(u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()))
    }

    fn db(lines: &[&str]) -> Ip2Region {
        let rows: Vec<_> = lines.iter().map(|l| parse_merge_line(l).unwrap()).collect();
        Ip2Region::from_bytes(encode(&rows), Path::new("t.db")).unwrap()
    }

    #[test]
    fn rows_are_read_in_order_with_folded_names() {
        let db = db(&[
            "0.0.0.0|9.255.255.255|0|0|0|内网IP|内网IP",
            "202.96.128.0|202.96.131.255|中国|0|广东省|广州市|电信",
            "202.96.132.0|202.96.135.255|中国|0|北京|北京市|联通",
        ]);
        let spans: Vec<_> = db.spans().collect::<Result<_, _>>().unwrap();
        assert_eq!(spans.len(), 3);
        assert_eq!(spans[0].value, None);
        assert_eq!(
            (spans[1].start, spans[1].end),
            (ip("202.96.128.0"), ip("202.96.131.255"))
        );
        let gd = spans[1].value.as_ref().unwrap();
        assert_eq!(gd.country, "CN");
        assert_eq!(gd.province.as_deref(), Some("CN-GD"));
        assert_eq!(gd.city.as_deref(), Some("广州"));
        assert_eq!(gd.isp.as_deref(), Some("电信"));
        let bj = spans[2].value.as_ref().unwrap();
        assert_eq!(bj.province.as_deref(), Some("CN-BJ"));
        assert_eq!(bj.city.as_deref(), Some("北京"));
    }

    #[test]
    fn a_truncated_file_is_an_error_naming_it() {
        let bytes = encode(&[(0, 10, "中国|0|0|0|电信")]);
        let err = Ip2Region::from_bytes(bytes[..bytes.len() - 3].to_vec(), Path::new("t.db"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("t.db") && err.contains("index pointers"),
            "{err}"
        );
    }

    #[test]
    fn a_data_pointer_outside_the_file_is_an_error_not_a_panic() {
        let mut bytes = encode(&[(0, 10, "中国|0|0|0|电信")]);
        let n = bytes.len();
        bytes[n - 4..].copy_from_slice(&(0x1000_0000u32 | 0x00ff_0000).to_le_bytes());
        let db = Ip2Region::from_bytes(bytes, Path::new("t.db")).unwrap();
        let err = db.spans().next().unwrap().unwrap_err().to_string();
        assert!(err.contains("outside the file"), "{err}");
    }
}
