//! The `httpdns` command: run the server, or build an IP database.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
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
    /// Classic DNS listener (UDP and TCP), e.g. 127.0.0.1:5353; overrides the config.
    #[arg(long)]
    dns_listen: Option<SocketAddr>,
    /// PEM certificate chain: serve the public listener over HTTPS (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
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
    /// (network,country,province,city,carrier,isp,asn).
    Build {
        #[arg(long)]
        csv: PathBuf,
        #[arg(short, long)]
        out: PathBuf,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    match cli.command {
        Some(Command::Geoip {
            command: GeoipCommand::Build { csv, out },
        }) => {
            let count = httpdns::geoip::build::build_from_csv(&csv, &out)?;
            println!("wrote {} ({count} networks)", out.display());
            Ok(())
        }
        Some(Command::Tls {
            command: TlsCommand::SelfSigned { out, names },
        }) => {
            let (cert, key) = httpdns::tls::write_self_signed(&out, &names)?;
            println!("wrote {} and {}", cert.display(), key.display());
            Ok(())
        }
        None => serve(cli),
    }
}

fn serve(cli: Cli) -> Result<()> {
    let path = cli.config.unwrap_or_else(default_config);
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
    if let (Some(cert), Some(key)) = (cli.tls_cert, cli.tls_key) {
        config.tls = Some(httpdns::config::TlsConfig {
            cert,
            key,
            reload_interval_ms: config.tls.as_ref().map_or(2000, |t| t.reload_interval_ms),
        });
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
