//! `httpdns geoip build --csv`: turns a CSV of CIDRs into a flat-schema MaxMind DB.
//!
//! The CSV columns are `network,country,province,city,carrier,isp,asn`; empty cells are
//! left out of the record. Lines starting with `#` are comments. Bad rows are errors with
//! the line number: a half-built database is worse than none.

use std::path::Path;

use mmdb_writer::{Value, Writer, ipnet::IpNet};
use serde::Deserialize;

use crate::geoip::{DATABASE_TYPE, GeoIpError, carrier, province};

use super::write_atomically;

#[derive(Debug, Deserialize)]
struct CsvRow {
    network: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    province: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    carrier: String,
    #[serde(default)]
    isp: String,
    #[serde(default)]
    asn: String,
}

/// Reads `csv_path` and writes the database to `out`; returns the number of networks.
pub fn build_from_csv(csv_path: &Path, out: &Path) -> Result<usize, GeoIpError> {
    let file = std::fs::File::open(csv_path).map_err(|source| GeoIpError::Read {
        path: csv_path.to_path_buf(),
        source,
    })?;
    let (bytes, count) = build_from_reader(file, csv_path)?;
    write_atomically(out, &bytes)?;
    Ok(count)
}

/// Builds the database bytes from CSV text; `origin` names the source in errors. Rows are
/// inserted in file order, so a later row wins where networks overlap.
pub fn build_from_reader(
    input: impl std::io::Read,
    origin: &Path,
) -> Result<(Vec<u8>, usize), GeoIpError> {
    let rows = read_rows(input, origin)?;
    let count = rows.len();
    Ok((write_rows(rows, origin)?, count))
}

/// Builds an overrides database (`[geoip] overrides`) from CSV text in the same columns:
/// where networks overlap, the most specific one wins, whatever the row order.
pub fn build_overrides(input: impl std::io::Read, origin: &Path) -> Result<Vec<u8>, GeoIpError> {
    let mut rows = read_rows(input, origin)?;
    // The writer lets later inserts win: insert the widest networks first.
    rows.sort_by_key(|(_, network, _)| network.prefix_len());
    write_rows(rows, origin)
}

/// Every row as (line, network, record value), checked.
fn read_rows(
    input: impl std::io::Read,
    origin: &Path,
) -> Result<Vec<(u64, IpNet, Value)>, GeoIpError> {
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(input);
    let csv_error = |line: u64, message: String| csv_error(origin, line, message);
    let headers = reader
        .headers()
        .map_err(|e| csv_error(1, e.to_string()))?
        .clone();
    let mut record = csv::StringRecord::new();
    let mut rows = Vec::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                return Err(csv_error(
                    e.position().map_or(0, |p| p.line()),
                    e.to_string(),
                ));
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        let row: CsvRow = record
            .deserialize(Some(&headers))
            .map_err(|e| csv_error(line, e.to_string()))?;
        let network: IpNet = row
            .network
            .parse()
            .map_err(|_| csv_error(line, format!("bad network {:?}", row.network)))?;
        let value = flat_record(&row).map_err(|message| csv_error(line, message))?;
        rows.push((line, network, value));
    }
    Ok(rows)
}

fn write_rows(rows: Vec<(u64, IpNet, Value)>, origin: &Path) -> Result<Vec<u8>, GeoIpError> {
    let mut writer = Writer::builder(DATABASE_TYPE)
        .description(&[(
            "en",
            "httpdns flat geo database: country, province, city, carrier, isp, asn",
        )])
        .build();
    for (line, network, value) in rows {
        writer
            .insert_value(network, value)
            .map_err(|e| csv_error(origin, line, e.to_string()))?;
    }
    writer.to_bytes().map_err(|e| GeoIpError::Write {
        path: origin.to_path_buf(),
        message: e.to_string(),
    })
}

fn csv_error(origin: &Path, line: u64, message: String) -> GeoIpError {
    GeoIpError::Csv {
        path: origin.to_path_buf(),
        line,
        message,
    }
}

fn flat_record(row: &CsvRow) -> Result<Value, String> {
    let mut fields: Vec<(&str, Value)> = Vec::new();
    if !row.country.is_empty() {
        if row.country.len() != 2 || !row.country.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(format!(
                "country {:?} is not an ISO 3166-1 alpha-2 code",
                row.country
            ));
        }
        fields.push(("country", Value::from(row.country.to_ascii_uppercase())));
    }
    if !row.province.is_empty() {
        fields.push(("province", Value::from(province::normalize(&row.province))));
    }
    if !row.city.is_empty() {
        fields.push(("city", Value::from(row.city.clone())));
    }
    let carrier = match row.carrier.as_str() {
        "" => carrier::normalize(&row.isp).map(str::to_string),
        given => Some(
            carrier::normalize(given).map_or_else(|| given.to_ascii_lowercase(), str::to_string),
        ),
    };
    if let Some(carrier) = carrier {
        fields.push(("carrier", Value::from(carrier)));
    }
    if !row.isp.is_empty() {
        fields.push(("isp", Value::from(row.isp.clone())));
    }
    if !row.asn.is_empty() {
        let digits = row.asn.trim_start_matches("AS").trim_start_matches("as");
        let asn: u32 = digits
            .parse()
            .map_err(|_| format!("bad asn {:?}", row.asn))?;
        fields.push(("asn", Value::U32(asn)));
    }
    Ok(Value::map(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geoip::GeoDb;

    fn build(csv: &str) -> Result<GeoDb, GeoIpError> {
        let (bytes, _) = build_from_reader(csv.as_bytes(), Path::new("t.csv"))?;
        GeoDb::from_bytes(bytes)
    }

    #[test]
    fn csv_rows_become_lookups() {
        let db = build(
            "network,country,province,city,carrier,isp,asn\n\
             # comment\n\
             1.2.4.0/24,CN,广东,Guangzhou,,电信,AS4134\n\
             2408:8000::/20,CN,,,unicom,,4837\n",
        )
        .unwrap();
        let geo = db.lookup("1.2.4.8".parse().unwrap());
        assert_eq!(geo.province.as_deref(), Some("CN-GD"));
        assert_eq!(geo.carrier.as_deref(), Some("telecom"));
        assert_eq!(geo.asn, Some(4134));
        let v6 = db.lookup("2408:8000::1".parse().unwrap());
        assert_eq!(v6.carrier.as_deref(), Some("unicom"));
    }

    #[test]
    fn overrides_let_the_most_specific_network_win_whatever_the_order() {
        let csv = "network,country,province,city,carrier,isp,asn\n\
                   10.1.2.0/24,CN,北京,,mobile,,\n\
                   10.0.0.0/8,CN,广东,,telecom,,\n";
        let db = GeoDb::from_bytes(build_overrides(csv.as_bytes(), Path::new("o.csv")).unwrap())
            .unwrap();
        let office = db.lookup("10.1.2.3".parse().unwrap());
        assert_eq!(office.carrier.as_deref(), Some("mobile"));
        assert_eq!(office.province.as_deref(), Some("CN-BJ"));
        let wide = db.lookup("10.9.9.9".parse().unwrap());
        assert_eq!(wide.carrier.as_deref(), Some("telecom"));
        // The plain build keeps file order: the later, wider row paints over.
        let (bytes, _) = build_from_reader(csv.as_bytes(), Path::new("o.csv")).unwrap();
        let plain = GeoDb::from_bytes(bytes).unwrap();
        assert_eq!(
            plain.lookup("10.1.2.3".parse().unwrap()).carrier.as_deref(),
            Some("telecom")
        );
    }

    #[test]
    fn bad_rows_name_their_line() {
        let header = "network,country,province,city,carrier,isp,asn\n";
        for (row, needle) in [
            ("1.2.3.0/33,CN,,,,,\n", "bad network"),
            ("1.2.3.0/24,CHN,,,,,\n", "alpha-2"),
            ("1.2.3.0/24,CN,,,,,ASx\n", "bad asn"),
        ] {
            let err = build(&format!("{header}1.1.1.0/24,US,,,,,\n{row}"))
                .err()
                .unwrap()
                .to_string();
            assert!(
                err.contains("t.csv line 3") && err.contains(needle),
                "{err}"
            );
        }
    }
}
