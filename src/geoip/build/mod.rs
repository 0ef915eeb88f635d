//! The offline database builder behind `httpdns geoip build` and `httpdns geoip stats`:
//! turning a CSV of CIDRs, or the open data sources, into the flat-schema MaxMind DB the
//! request path reads, and reporting on a database.
//!
//! Nothing here runs while serving; the request path ([`crate::geoip::GeoDb`]) only shares
//! the carrier and province folding with it. Module tree, without cycles: the source
//! readers (`ip2region`, `ipv6wry`) yield [`sweep`] types; [`merge`] decides one range
//! from them; `open_data` streams the sources, sweeps and writes; `csv` and `stats` stand
//! alone.

pub mod csv;
pub mod explain;
pub mod ip2region;
pub mod ipv6wry;
pub mod merge;
pub mod open_data;
pub mod stats;
pub mod sweep;

use std::path::Path;

use super::GeoIpError;

/// Writes via a temp file and rename so a running server never reads a half-written DB.
pub fn write_atomically(out: &Path, bytes: &[u8]) -> Result<(), GeoIpError> {
    let write_error = |e: std::io::Error| GeoIpError::Write {
        path: out.to_path_buf(),
        message: e.to_string(),
    };
    let tmp = out.with_extension("mmdb.tmp");
    std::fs::write(&tmp, bytes).map_err(write_error)?;
    std::fs::rename(&tmp, out).map_err(write_error)
}
