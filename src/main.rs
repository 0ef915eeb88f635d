//! The `httpdns` command: run the server, talk to its admin API, build an IP database.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{ArgGroup, Parser, Subcommand};
use httpdns::admin::auth::{AdminTokens, TOKEN_ENV};
use httpdns::admin::client::AdminClient;
use httpdns::{Server, ServerConfig, StartOptions};

/// mimalloc instead of glibc malloc: the request path allocates small, short-lived
/// buffers on every query, and a reload frees a whole model built on another thread,
/// which glibc's per-thread arenas keep as resident memory (BENCH.md: RSS doubled after
/// a few reloads of a 100,000-domain config, and malloc/free took ~10% of /resolve).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (not among the Rust bindings'
/// constants): how long freed memory stays resident before it goes back to the OS.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// mimalloc 3 waits 1,000 ms. A reload of a big config frees the old model and its own
/// parse trees at once, and with a second's delay they were still resident when the
/// next reload built again: with the server on one thread, peak RSS over a cold load
/// and three reloads of the 100,000-domain bench config was 328–329 MB against
/// 272–273 MB at 10 ms, 279–286 MB at 50 ms and 294–295 MB at 100 ms; /resolve q/s
/// at 100 ms matched 1,000 ms, 10 ms was a few percent lower over HTTP/1.1 (BENCH.md).
const PURGE_DELAY_MS: std::ffi::c_long = 50;

/// Sets mimalloc's purge delay, unless the operator set `MIMALLOC_PURGE_DELAY`, and
/// turns transparent huge pages off for the process, unless the operator set
/// `MIMALLOC_ALLOW_THP`.
///
/// mimalloc asks for huge pages on the memory it maps (`madvise(MADV_HUGEPAGE)`, which
/// kernels in THP `madvise` mode honour), and the first touch of each 2 MiB page zeroes
/// all of it in one fault on the thread that touched it: a request's. On the bench VM
/// such faults, each time purged memory was used again, took 5–6 ms of the only worker
/// thread (perf: `clear_page_erms` under `do_huge_pmd_anonymous_page` from
/// `mi_page_free_list_extend`, the longest runs of the server at half of peak), most
/// of the p99 over 1 ms there. The hot data of a request is a few kilobytes; throughput
/// showed no difference without them (BENCH.md).
fn tune_allocator() {
    set_purge_delay();
    turn_off_huge_pages();
}

/// mimalloc's purge delay to [`PURGE_DELAY_MS`], unless `MIMALLOC_PURGE_DELAY` is set.
fn set_purge_delay() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set stores one process-wide option value, which mimalloc
        // reads atomically; any thread may call it at any time.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

/// `PR_SET_THP_DISABLE` for the process, unless `MIMALLOC_ALLOW_THP` is set.
fn turn_off_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // A kernel without THP refuses (EINVAL): then there is nothing to turn off.
        let _ = nix::sys::prctl::set_thp_disable(true);
    }
}

/// HTTPDNS and GSLB server: steers clients to the right IDC by real client IP.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Server config file (TOML). Default: the shipped example, deploy/example/httpdns.toml.
    #[arg(long, env = "HTTPDNS_CONFIG")]
    config: Option<PathBuf>,
    /// Public listener address; overrides the config.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Admin listener address; overrides the config.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Classic DNS listener (UDP and TCP), e.g. 127.0.0.1:5353; overrides the config.
    #[arg(long)]
    dns_listen: Option<SocketAddr>,
    /// PEM certificate chain: serve the public listener over HTTPS (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// File of admin tokens, one `name:token` per line.
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
    /// Serve the admin API without tokens (only allowed on a loopback address).
    #[arg(long)]
    admin_insecure_loopback: bool,
    /// Set aside an unreadable or corrupt state file and start without drains.
    #[arg(long)]
    reset_state: bool,
    /// Do not watch config, zones and IP database files (reload with SIGHUP or the API).
    #[arg(long)]
    no_watch: bool,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// IP database tools.
    Geoip {
        #[command(subcommand)]
        command: GeoipCommand,
    },
    /// TLS tools.
    Tls {
        #[command(subcommand)]
        command: TlsCommand,
    },
    /// Talk to a running server's admin API.
    Admin {
        /// Admin API base URL.
        #[arg(
            long,
            env = "HTTPDNS_ADMIN_URL",
            default_value = "http://127.0.0.1:8081"
        )]
        url: String,
        /// Bearer token (default: $HTTPDNS_ADMIN_TOKEN).
        #[arg(long, env = TOKEN_ENV, hide_env_values = true)]
        token: Option<String>,
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum TlsCommand {
    /// Write a self-signed certificate and key (cert.pem, key.pem) for local use.
    SelfSigned {
        #[arg(long)]
        out: PathBuf,
        /// Names and addresses the certificate is valid for.
        #[arg(long = "name", default_values = ["localhost", "127.0.0.1", "::1"])]
        names: Vec<String>,
    },
}

#[derive(Subcommand)]
enum GeoipCommand {
    /// Build a flat-schema .mmdb from a CSV of CIDRs
    /// (network,country,province,city,carrier,isp,asn), or from the open data sources
    /// (--ip2region with --asn-v4, --asn-v6 and --country; see geoip/fetch-open-data.sh).
    #[command(group(ArgGroup::new("source").required(true).args(["csv", "ip2region"])))]
    Build {
        /// CSV of CIDRs.
        #[arg(long, conflicts_with_all = ["ipv6wry", "asn_v4", "asn_v6", "country"])]
        csv: Option<PathBuf>,
        /// ip2region.db (IPv4: Chinese province, city, ISP).
        #[arg(long, requires_all = ["asn_v4", "asn_v6", "country"])]
        ip2region: Option<PathBuf>,
        /// ipv6wry.db from the ip2region package (IPv6: Chinese province, city, ISP).
        #[arg(long, requires = "ip2region")]
        ipv6wry: Option<PathBuf>,
        /// ip-location-db asn-ipv4.csv.
        #[arg(long, requires = "ip2region")]
        asn_v4: Option<PathBuf>,
        /// ip-location-db asn-ipv6.csv.
        #[arg(long, requires = "ip2region")]
        asn_v6: Option<PathBuf>,
        /// ip-location-db geo-whois-asn-country.mmdb.
        #[arg(long, requires = "ip2region")]
        country: Option<PathBuf>,
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Print the share of CN IPv4 space with a province and a carrier.
    Stats { database: PathBuf },
    /// Every source's view of IP, the merged record and the rule that chose each field.
    Explain {
        ip: std::net::IpAddr,
        /// Database to read (default: the server config's [geoip] database, with its
        /// overrides).
        #[arg(long)]
        db: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Drain a zone: its traffic (or part of it) moves to the failover chain.
    Drain {
        zone: String,
        /// Percent of normal traffic the zone keeps (0 = full drain).
        #[arg(long, default_value_t = 0.0)]
        weight: f64,
        #[arg(long)]
        reason: String,
        /// Ramp to the new weight over this long (e.g. 10m).
        #[arg(long)]
        over: Option<String>,
        /// Only these domains (default: every domain of the zone).
        #[arg(long = "domain")]
        domains: Vec<String>,
    },
    /// Restore a drained zone.
    Undrain {
        zone: String,
        #[arg(long)]
        over: Option<String>,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Zones, endpoints, health and drains.
    Zones,
    /// Why HOST resolves the way it does for client IP.
    Explain { host: String, ip: String },
    /// Reload config, zones and IP databases.
    Reload,
    /// Cluster mode: this node's etcd session and every live node.
    Cluster,
    /// Cluster mode (zones = "etcd"): validate DIR as a reload would, with the IP
    /// databases of --config, then write it to etcd as one revision for every node.
    PushZones { dir: PathBuf },
}

fn main() -> Result<()> {
    tune_allocator();
    let cli = Cli::parse();
    httpdns::logging::init(cli.log_json);
    match cli.command {
        Some(Command::Geoip { command }) => geoip(command, cli.config.as_deref()),
        Some(Command::Admin {
            url,
            token,
            command,
        }) => admin(&url, token, command, cli.config.clone()),
        Some(Command::Tls {
            command: TlsCommand::SelfSigned { out, names },
        }) => {
            let (cert, key) = httpdns::tls::write_self_signed(&out, &names)?;
            println!("wrote {} and {}", cert.display(), key.display());
            Ok(())
        }
        None => serve(&cli),
    }
}

fn admin(
    url: &str,
    token: Option<String>,
    command: AdminCommand,
    config: Option<PathBuf>,
) -> Result<()> {
    let client = AdminClient::new(url, token);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;

    let answer = runtime.block_on(async {
        let answer = match command {
            AdminCommand::Drain {
                zone,
                weight,
                reason,
                over,
                domains,
            } => {
                client
                    .drain(&zone, weight, &reason, over.as_deref(), &domains)
                    .await
            }
            AdminCommand::Undrain { zone, over, reason } => {
                client.undrain(&zone, over.as_deref(), &reason).await
            }
            AdminCommand::Zones => client.zones().await,
            AdminCommand::Explain { host, ip } => client.explain(&host, &ip).await,
            AdminCommand::Reload => client.reload().await,
            AdminCommand::Cluster => client.cluster().await,
            AdminCommand::PushZones { dir } => {
                let path = config.unwrap_or_else(default_config);
                let config = ServerConfig::load(&path)
                    .with_context(|| format!("loading {}", path.display()))?;
                let revision = httpdns::cluster::zones::push(&config, &dir).await?;
                return Ok(serde_json::json!({"pushed": dir, "zones_revision": revision}));
            }
        };
        anyhow::Ok(answer?)
    })?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

fn geoip(command: GeoipCommand, config: Option<&Path>) -> Result<()> {
    use httpdns::geoip::build::{csv, explain, open_data, stats};
    match command {
        GeoipCommand::Build {
            csv: Some(csv),
            out,
            ..
        } => {
            let count = csv::build_from_csv(&csv, &out)?;
            println!("wrote {} ({count} networks)", out.display());
        }
        GeoipCommand::Build {
            ip2region: Some(ip2region),
            ipv6wry,
            asn_v4: Some(asn_v4),
            asn_v6: Some(asn_v6),
            country: Some(country),
            out,
            ..
        } => {
            let sources = open_data::OpenDataSources {
                ip2region,
                ipv6wry,
                asn_v4,
                asn_v6,
                country,
            };
            let summary = open_data::build(&sources, &out)?;
            println!("wrote {} ({summary})", out.display());
        }
        // clap's ArgGroup and `requires` rule these out before we get here.
        GeoipCommand::Build { .. } => anyhow::bail!("give --csv, or --ip2region with its sources"),
        GeoipCommand::Stats { database } => print!("{}", stats::coverage_of_file(&database)?),
        GeoipCommand::Explain { ip, db: Some(db) } => {
            print!("{}", explain::explain(ip, &db, None)?)
        }
        GeoipCommand::Explain { ip, db: None } => {
            let path = config.map_or_else(default_config, Path::to_path_buf);
            let config = ServerConfig::load(&path)
                .with_context(|| format!("loading {} (or give --db)", path.display()))?;
            let geoip = &config.geoip;
            print!(
                "{}",
                explain::explain(ip, &geoip.database, geoip.overrides.as_deref())?
            );
        }
    }
    Ok(())
}

fn serve(cli: &Cli) -> Result<()> {
    let path = cli.config.clone().unwrap_or_else(default_config);
    let mut config =
        ServerConfig::load(&path).with_context(|| format!("loading {}", path.display()))?;
    if let Some(addr) = cli.listen {
        config.listen = addr;
    }
    if let Some(addr) = cli.admin_listen {
        config.admin_listen = addr;
    }
    if let Some(addr) = cli.dns_listen {
        config.dns_listen = Some(addr);
    }
    if let (Some(cert), Some(key)) = (&cli.tls_cert, &cli.tls_key) {
        config.tls = Some(httpdns::config::TlsConfig {
            cert: cert.clone(),
            key: key.clone(),
            reload_interval_ms: config.tls.as_ref().map_or(2000, |t| t.reload_interval_ms),
            admin: config.tls.as_ref().is_some_and(|t| t.admin),
        });
    }
    let env_token = std::env::var(TOKEN_ENV).ok();
    let options = StartOptions {
        config_path: Some(path),
        admin_tokens: AdminTokens::load(cli.admin_token_file.as_deref(), env_token.as_deref())?,
        admin_insecure_loopback: cli.admin_insecure_loopback,
        reset_state: cli.reset_state,
        watch_files: !cli.no_watch,
    };
    let runtime = httpdns::runtime::for_this_process().context("starting the async runtime")?;
    runtime.block_on(async {
        let server = Server::start(config, options).await?;
        let stopped = server.shutdown_token();
        tokio::select! {
            () = shutdown_signal() => tracing::info!("shutting down"),
            () = stopped.cancelled() => {}
        }
        server.shutdown().await;
        Ok(())
    })
}

/// The shipped example, found from the working directory or from the source tree, so
/// `cargo run` works from a fresh clone.
fn default_config() -> PathBuf {
    let relative = Path::new("deploy/example/httpdns.toml");
    if relative.exists() {
        relative.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn huge_pages_are_off_unless_the_operator_allowed_them() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            return;
        }
        turn_off_huge_pages();
        assert_eq!(nix::sys::prctl::get_thp_disable().ok(), Some(true));
    }

    #[test]
    fn the_purge_delay_is_set_unless_the_operator_set_it() {
        // SAFETY: reads one option value.
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            let before = get();
            set_purge_delay();
            assert_eq!(get(), before, "the operator's value stays");
            return;
        }
        // Option 15 is the one mimalloc 3 documents with a 1,000 ms default.
        assert_eq!(get(), 1_000);
        set_purge_delay();
        assert_eq!(get(), PURGE_DELAY_MS);
    }
}
