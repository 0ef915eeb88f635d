//! IP database: turns a client IP into a [`Geo`] (country, province, city, carrier, ASN).
//!
//! Owns the MaxMind DB readers and the folding of whatever spelling a database uses into
//! the keys routing rules match on. Lookups never fail: an IP in no range, or a record
//! that does not decode, is an unknown geo. This module knows nothing about zones.

pub mod build;
pub mod carrier;
pub mod overrides;
pub mod province;
mod records;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use maxminddb::{LookupResult, Reader};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use carrier::AsnCarriers;
pub use overrides::Overrides;

use records::RecordCache;

/// The `database_type` written into the metadata of databases we build; the lookup reads
/// it to know the carrier is already folded.
pub const DATABASE_TYPE: &str = "httpdns-flat";

/// Errors opening or building IP databases.
#[derive(Debug, Error)]
pub enum GeoIpError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid MaxMind DB: {message}")]
    InvalidDb { path: PathBuf, message: String },
    #[error("ASN carrier table {path}: {message}")]
    AsnTable { path: PathBuf, message: String },
    #[error("{path} line {line}: {message}")]
    Csv {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("writing {path}: {message}")]
    Write { path: PathBuf, message: String },
}

/// Where a client is, as far as the IP database knows. Every field may be unknown.
///
/// The texts are shared (`Arc<str>`): a geo is copied out of the kept records on every
/// lookup and into speed buckets, and a copy should not allocate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Geo {
    /// ISO 3166-1 alpha-2 country code, upper case.
    pub country: Option<Arc<str>>,
    /// ISO 3166-2 code (`CN-GD`) when known, else the database's own name.
    pub province: Option<Arc<str>>,
    pub city: Option<Arc<str>>,
    /// Carrier key (`telecom`, `unicom`, `mobile`, `cernet`, ...).
    pub carrier: Option<Arc<str>>,
    pub asn: Option<u32>,
    /// The database's raw ISP name, kept for explain output; not part of the API.
    #[serde(skip)]
    pub isp: Option<Arc<str>>,
}

/// One record in the flat schema, with the field names of the open ip-location-db
/// databases accepted as aliases so those open as drop-ins.
#[derive(Deserialize)]
pub(crate) struct FlatRecord<'a> {
    #[serde(borrow, alias = "country_code")]
    country: Option<&'a str>,
    #[serde(borrow, alias = "state1", alias = "region")]
    province: Option<&'a str>,
    #[serde(borrow)]
    city: Option<&'a str>,
    #[serde(borrow)]
    carrier: Option<&'a str>,
    #[serde(borrow)]
    isp: Option<&'a str>,
    #[serde(alias = "autonomous_system_number")]
    asn: Option<u32>,
}

impl FlatRecord<'_> {
    /// The record as a [`Geo`]: country upper case, province as its ISO code, carrier
    /// folded to its key (from the ISP text too when `carrier_from_isp`).
    pub(crate) fn fold(&self, carrier_from_isp: bool) -> Geo {
        Geo {
            country: self
                .country
                .and_then(non_empty)
                .map(|c| Arc::from(c.to_ascii_uppercase())),
            province: self
                .province
                .and_then(non_empty)
                .map(|p| Arc::from(province::normalize(p))),
            city: self.city.and_then(non_empty).map(Arc::from),
            isp: self.isp.and_then(non_empty).map(Arc::from),
            asn: self.asn.filter(|asn| *asn != 0),
            carrier: self
                .carrier
                .and_then(non_empty)
                .map(|c| {
                    carrier::normalize(c).map_or_else(|| c.to_ascii_lowercase().into(), Arc::from)
                })
                .or_else(|| {
                    let isp = self.isp.filter(|_| carrier_from_isp)?;
                    carrier::normalize(isp).map(Arc::from)
                }),
        }
    }
}

/// The ASN-only database schema (ip-location-db `asn` mmdb).
#[derive(Deserialize)]
struct AsnRecord<'a> {
    autonomous_system_number: Option<u32>,
    #[serde(borrow)]
    autonomous_system_organization: Option<&'a str>,
}

/// The opened IP databases. Immutable; a reload builds a new one.
pub struct GeoDb {
    city: Reader<Vec<u8>>,
    /// False for databases `geoip build` wrote: it already folded ISP text into `carrier`
    /// with the same rules, so the (costly) text search is not repeated per lookup.
    carrier_from_isp: bool,
    asn: Option<Reader<Vec<u8>>>,
    asn_carriers: AsnCarriers,
    overrides: Option<Overrides>,
    /// Decoded records of `city` and `asn`, by offset.
    city_records: RecordCache<Geo>,
    asn_records: RecordCache<(Option<u32>, Option<Arc<str>>)>,
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb")
            .field("type", &self.city.metadata().database_type)
            .field("asn_db", &self.asn.is_some())
            .field("overrides", &self.overrides.is_some())
            .finish()
    }
}

/// Reads a whole source or database file, naming it in the error.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, GeoIpError> {
    std::fs::read(path).map_err(|source| GeoIpError::Read {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn open_reader(path: &Path) -> Result<Reader<Vec<u8>>, GeoIpError> {
    reader_from_bytes(read_file(path)?, path)
}

pub(crate) fn reader_from_bytes(
    bytes: Vec<u8>,
    path: &Path,
) -> Result<Reader<Vec<u8>>, GeoIpError> {
    let invalid = |message: String| GeoIpError::InvalidDb {
        path: path.to_path_buf(),
        message,
    };
    let reader = Reader::from_source(bytes).map_err(|e| invalid(e.to_string()))?;
    // A truncated or corrupt file must be refused at load time, not discovered per request.
    // An empty `description` map is a metadata nit many open databases have: allow it.
    match reader.verify() {
        Err(e) if !e.to_string().contains("description") => Err(invalid(e.to_string())),
        _ => Ok(reader),
    }
}

impl GeoDb {
    /// Opens the main database, the optional ASN database and the ASN → carrier table.
    pub fn open(
        city: &Path,
        asn: Option<&Path>,
        asn_carriers: Option<&Path>,
    ) -> Result<Self, GeoIpError> {
        let city = open_reader(city)?;
        Ok(Self {
            carrier_from_isp: carrier_from_isp(&city),
            city,
            asn: asn.map(open_reader).transpose()?,
            asn_carriers: match asn_carriers {
                Some(path) => AsnCarriers::load(path)?,
                None => AsnCarriers::builtin(),
            },
            overrides: None,
            city_records: RecordCache::new(records::SLOTS),
            asn_records: RecordCache::new(records::SLOTS),
        })
    }

    /// The networks the operator's overrides name (none without an overrides file).
    pub fn override_networks(&self) -> &[ipnetwork::IpNetwork] {
        self.overrides.as_ref().map_or(&[], Overrides::networks)
    }

    /// Lays the operator's overrides file (`[geoip] overrides`) over this database.
    pub fn with_overrides(mut self, path: Option<&Path>) -> Result<Self, GeoIpError> {
        self.overrides = path.map(Overrides::load).transpose()?;
        Ok(self)
    }

    /// Builds a database from bytes already in memory (tests, benches).
    pub fn from_bytes(city: Vec<u8>) -> Result<Self, GeoIpError> {
        let city = reader_from_bytes(city, Path::new("<memory>"))?;
        Ok(Self {
            carrier_from_isp: carrier_from_isp(&city),
            city,
            asn: None,
            asn_carriers: AsnCarriers::builtin(),
            overrides: None,
            city_records: RecordCache::new(records::SLOTS),
            asn_records: RecordCache::new(records::SLOTS),
        })
    }

    /// The prefix length of the most specific record holding `ip` in any of the
    /// databases (IPv4-mapped addresses as IPv4): every address of that network reads
    /// the same from them. Where a database cannot say, the whole address (32 or 128).
    pub fn precision(&self, ip: IpAddr) -> u8 {
        let ip = ip.to_canonical();
        let full = if ip.is_ipv4() { 32 } else { 128 };
        let of = |reader: &Reader<Vec<u8>>| match reader.lookup(ip).and_then(|r| r.network()) {
            Ok(network) if network.is_ipv4() == ip.is_ipv4() => network.prefix(),
            // An IPv4 address above an IPv6 database's IPv4 subtree: one record for all.
            Ok(_) => 0,
            Err(_) => full,
        };
        let city = of(&self.city);
        self.asn.as_ref().map_or(city, |asn| city.max(of(asn)))
    }

    /// Looks `ip` up. IPv4-mapped IPv6 addresses are looked up as IPv4.
    pub fn lookup(&self, ip: IpAddr) -> Geo {
        let ip = ip.to_canonical();
        let mut geo = self.city_record(ip);
        if let (None, Some(asn_db)) = (geo.asn, &self.asn) {
            let (asn, organization) = self.asn_record(asn_db, ip);
            geo.asn = asn;
            if geo.isp.is_none() {
                geo.isp = organization;
            }
        }
        if geo.carrier.is_none() {
            geo.carrier = geo
                .asn
                .and_then(|asn| self.asn_carriers.carrier(asn))
                .map(Arc::from);
        }
        if let Some(overrides) = &self.overrides {
            overrides.apply(ip, &mut geo);
        }
        geo
    }

    /// What the main database's record for `ip` says, folded (kept per record).
    fn city_record(&self, ip: IpAddr) -> Geo {
        kept(&self.city, &self.city_records, ip, |record: FlatRecord| {
            record.fold(self.carrier_from_isp)
        })
    }

    /// The ASN database's number and organisation for `ip` (kept per record).
    fn asn_record(&self, asn_db: &Reader<Vec<u8>>, ip: IpAddr) -> (Option<u32>, Option<Arc<str>>) {
        kept(asn_db, &self.asn_records, ip, |record: AsnRecord| {
            (
                record.autonomous_system_number.filter(|asn| *asn != 0),
                record
                    .autonomous_system_organization
                    .and_then(non_empty)
                    .map(Arc::from),
            )
        })
    }
}

/// `fold` of `ip`'s record in `reader`, kept in `records` by the record's offset;
/// the default for an address in no range or a record that does not decode.
fn kept<'r, R: Deserialize<'r>, T: Clone + Default>(
    reader: &'r Reader<Vec<u8>>,
    records: &RecordCache<T>,
    ip: IpAddr,
    fold: impl FnOnce(R) -> T,
) -> T {
    let Some((offset, found)) = find(reader, ip) else {
        return T::default();
    };
    records.get_or_decode(offset, || {
        decode_found::<R>(&found, ip).map(fold).unwrap_or_default()
    })
}

fn carrier_from_isp(reader: &Reader<Vec<u8>>) -> bool {
    reader.metadata().database_type != DATABASE_TYPE
}

pub(crate) fn non_empty(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

pub(crate) fn decode<'de, T: Deserialize<'de>>(
    reader: &'de Reader<Vec<u8>>,
    ip: IpAddr,
) -> Option<T> {
    let (_, found) = find(reader, ip)?;
    decode_found(&found, ip)
}

/// Where `ip`'s record sits in the database, and the lookup that found it; `None` for
/// an address in no range.
fn find(reader: &Reader<Vec<u8>>, ip: IpAddr) -> Option<(usize, LookupResult<'_, Vec<u8>>)> {
    // An IPv4 address in an IPv4-only database, or a corrupt record, is simply "unknown".
    match reader.lookup(ip) {
        Ok(found) => Some((found.offset()?, found)),
        Err(error) => {
            tracing::debug!(%ip, %error, "geo lookup failed; treating as unknown");
            None
        }
    }
}

fn decode_found<'de, T: Deserialize<'de>>(
    found: &LookupResult<'de, Vec<u8>>,
    ip: IpAddr,
) -> Option<T> {
    match found.decode::<T>() {
        Ok(record) => record,
        Err(error) => {
            tracing::debug!(%ip, %error, "geo record does not decode; treating as unknown");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_db() -> GeoDb {
        GeoDb::open(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/geoip/test-geo.mmdb")),
            None,
            None,
        )
        .expect("shipped test database opens")
    }

    #[test]
    fn guangdong_telecom_ip_is_found() {
        let geo = test_db().lookup("202.96.128.86".parse().unwrap());
        assert_eq!(geo.country.as_deref(), Some("CN"));
        assert_eq!(geo.province.as_deref(), Some("CN-GD"));
        assert_eq!(geo.carrier.as_deref(), Some("telecom"));
        assert_eq!(geo.asn, Some(4134));
    }

    #[test]
    fn ipv4_mapped_ipv6_is_looked_up_as_ipv4() {
        let db = test_db();
        let mapped = db.lookup("::ffff:123.125.81.6".parse().unwrap());
        assert_eq!(mapped, db.lookup("123.125.81.6".parse().unwrap()));
        assert_eq!(mapped.carrier.as_deref(), Some("unicom"));
        assert_eq!(mapped.province.as_deref(), Some("CN-BJ"));
    }

    #[test]
    fn ipv6_prefixes_are_found() {
        let db = test_db();
        assert_eq!(
            db.lookup("240e::1".parse().unwrap()).carrier.as_deref(),
            Some("telecom")
        );
        let cernet = db.lookup("2001:da8::1".parse().unwrap());
        assert_eq!(cernet.carrier.as_deref(), Some("cernet"));
        assert_eq!(cernet.country.as_deref(), Some("CN"));
    }

    #[test]
    fn ip_in_no_range_is_unknown_not_an_error() {
        assert_eq!(
            test_db().lookup("192.0.2.1".parse().unwrap()),
            Geo::default()
        );
        assert_eq!(
            test_db().lookup("2001:db8::1".parse().unwrap()),
            Geo::default()
        );
    }

    #[test]
    fn a_kept_record_reads_as_a_fresh_decode() {
        let kept = test_db();
        let ips = [
            "202.96.128.86",
            "202.96.128.87",
            "123.125.81.6",
            "211.136.17.10",
            "240e::1",
            "2001:da8::1",
            "8.8.8.8",
            "192.0.2.1",
        ];
        for round in 0..3 {
            for ip in ips {
                let ip: IpAddr = ip.parse().unwrap();
                // A new database has nothing kept: its answer is a decode.
                assert_eq!(kept.lookup(ip), test_db().lookup(ip), "round {round}, {ip}");
            }
        }
    }

    #[test]
    fn overrides_stay_with_their_address_when_its_record_is_shared() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("overrides.csv");
        std::fs::write(
            &path,
            "network,country,province,city,carrier,isp,asn\n202.96.128.86/32,CN,北京,,unicom,,\n",
        )
        .unwrap();
        let db = test_db().with_overrides(Some(&path)).unwrap();
        let neighbour: IpAddr = "202.96.128.87".parse().unwrap();
        let overridden: IpAddr = "202.96.128.86".parse().unwrap();
        // Both orders: the record the two share is kept by whichever comes first.
        for _ in 0..2 {
            assert_eq!(db.lookup(overridden).carrier.as_deref(), Some("unicom"));
            assert_eq!(db.lookup(overridden).province.as_deref(), Some("CN-BJ"));
            assert_eq!(db.lookup(neighbour).carrier.as_deref(), Some("telecom"));
            assert_eq!(db.lookup(neighbour).province.as_deref(), Some("CN-GD"));
        }
    }

    #[test]
    fn garbage_file_is_refused_with_the_path() {
        let err = GeoDb::from_bytes(b"not an mmdb".to_vec())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid MaxMind DB"), "{err}");
    }

    #[test]
    fn truncated_file_is_refused() {
        let bytes =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/geoip/test-geo.mmdb")).unwrap();
        let err = GeoDb::from_bytes(bytes[..bytes.len() / 2].to_vec())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid MaxMind DB"), "{err}");
    }

    #[test]
    fn ip_location_db_field_names_are_accepted() {
        let mut writer = mmdb_writer::Writer::new("ip-location-db-city");
        let record = mmdb_writer::Value::map([
            ("country_code", mmdb_writer::Value::from("CN")),
            ("state1", mmdb_writer::Value::from("Guangdong")),
            ("city", mmdb_writer::Value::from("Shenzhen")),
            ("latitude", mmdb_writer::Value::Float(22.5)),
        ]);
        writer
            .insert_value(
                "14.16.0.0/12".parse::<mmdb_writer::ipnet::IpNet>().unwrap(),
                record,
            )
            .unwrap();
        let db = GeoDb::from_bytes(writer.to_bytes().unwrap()).unwrap();
        let geo = db.lookup("14.17.1.1".parse().unwrap());
        assert_eq!(geo.country.as_deref(), Some("CN"));
        assert_eq!(geo.province.as_deref(), Some("CN-GD"));
        assert_eq!(geo.city.as_deref(), Some("Shenzhen"));
    }

    #[test]
    fn isp_text_is_folded_only_for_databases_we_did_not_build() {
        let record = || {
            mmdb_writer::Value::map([
                ("country", mmdb_writer::Value::from("US")),
                ("isp", mmdb_writer::Value::from("China Telecom Americas")),
            ])
        };
        let db = |database_type: &str| {
            let mut writer = mmdb_writer::Writer::new(database_type);
            let net = "1.2.3.0/24".parse::<mmdb_writer::ipnet::IpNet>().unwrap();
            writer.insert_value(net, record()).unwrap();
            GeoDb::from_bytes(writer.to_bytes().unwrap()).unwrap()
        };
        let ip = "1.2.3.4".parse().unwrap();
        assert_eq!(
            db("other-flat").lookup(ip).carrier.as_deref(),
            Some("telecom")
        );
        // Our builder decided "no carrier" for this range; the lookup keeps that answer.
        assert_eq!(db(DATABASE_TYPE).lookup(ip).carrier, None);
    }

    #[test]
    fn asn_without_carrier_is_mapped_through_the_asn_table() {
        let mut writer = mmdb_writer::Writer::new("flat");
        let record = mmdb_writer::Value::map([
            ("country", mmdb_writer::Value::from("CN")),
            ("asn", mmdb_writer::Value::U32(4837)),
        ]);
        writer
            .insert_value(
                "60.0.0.0/13".parse::<mmdb_writer::ipnet::IpNet>().unwrap(),
                record,
            )
            .unwrap();
        let db = GeoDb::from_bytes(writer.to_bytes().unwrap()).unwrap();
        assert_eq!(
            db.lookup("60.1.1.1".parse().unwrap()).carrier.as_deref(),
            Some("unicom")
        );
    }
}
