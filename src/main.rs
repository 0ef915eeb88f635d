//! The `httpdns` command: run the server, or build an IP database.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{ArgGroup, Parser, Subcommand};
use httpdns::{Server, ServerConfig};

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
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    match cli.command {
        Some(Command::Geoip { command }) => geoip(command),
        None => serve(cli.config, cli.listen, cli.admin_listen),
    }
}

fn geoip(command: GeoipCommand) -> Result<()> {
    use httpdns::geoip::{build, open_data, stats};
    match command {
        GeoipCommand::Build {
            csv: Some(csv),
            out,
            ..
        } => {
            let count = build::build_from_csv(&csv, &out)?;
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
    }
    Ok(())
}

fn serve(
    config: Option<PathBuf>,
    listen: Option<SocketAddr>,
    admin_listen: Option<SocketAddr>,
) -> Result<()> {
    let path = config.unwrap_or_else(default_config);
    let mut config =
        ServerConfig::load(&path).with_context(|| format!("loading {}", path.display()))?;
    if let Some(addr) = listen {
        config.listen = addr;
    }
    if let Some(addr) = admin_listen {
        config.admin_listen = addr;
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let server = Server::start(config).await?;
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

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
