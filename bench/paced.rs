//! A fixed-rate HTTP/1.1 load generator for the "half of peak" latency rows of
//! `bench/run.sh`: requests at evenly spaced instants, spread over keep-alive
//! connections in turn, latency counted from the instant each request was due.
//!
//! Why not `h2load --rps`: it paces every connection on its own timer, all started
//! together, so every connection fires in the same instant: at 64 connections the
//! server receives 64 requests at once every 1/rps-per-connection seconds and the p99
//! measures that burst queueing (the hello server shows it as much as any other). A
//! fixed rate means evenly spaced arrivals, as wrk2 sends them (wrk2 is not in Debian).
//! Request `k` is due at `start + k / rate` on connection `k mod conns`; a request whose
//! connection is still waiting for its previous answer waits too, and its latency still
//! counts from when it was due, so a slow server cannot hide behind a waiting generator
//! (no coordinated omission).
//!
//! One thread busy-polls its sockets (the generator has its own CPU in the harness), so
//! sends are not rounded to the 1 ms timer tick. Bounded in time: sending stops after
//! `--warmup` + `--duration` seconds and answers are awaited at most `--drain` more.
//! Only IP literals are accepted: nothing is resolved by name. The result is one JSON
//! line on stdout.
//!
//! ```text
//! bench-paced --addr 127.0.0.1:19481 --path '/resolve?host=api.example.com' \
//!     --conns 64 --rate 20000 --duration 10 -H 'X-Forwarded-For: 202.96.128.86'
//! ```

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// Latencies kept without growing the list mid-run (the harness's runs stay under it);
/// a longer run grows it rather than reserving gigabytes up front.
const PRESIZED: u64 = 1 << 22;

/// Below this much time to the next due request the loop polls without sleeping: the
/// kernel's poll timeout is whole milliseconds.
const SPIN_BELOW: Duration = Duration::from_millis(2);

#[derive(Parser, Debug, Clone)]
#[command(about = "HTTP/1.1 at a fixed, evenly spaced rate; latency from the due instant")]
struct Args {
    /// Server address (an IP literal and port).
    #[arg(long)]
    addr: SocketAddr,
    /// Request path with query, e.g. `/resolve?host=api.example.com`.
    #[arg(long)]
    path: String,
    /// Keep-alive connections the requests take turns on.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4_096))]
    conns: u32,
    /// Requests per second over all connections.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    rate: u32,
    /// Measured seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=600))]
    duration: u32,
    /// Seconds sent before measuring (not counted).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=60))]
    warmup: u32,
    /// Seconds to wait for answers still due after sending stops.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=60))]
    drain: u32,
    /// Extra request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
}

/// What a run measured.
#[derive(Debug, Default, serde::Serialize)]
struct Report {
    generator: &'static str,
    proto: &'static str,
    conns: u32,
    target_rps: u32,
    /// Answers counted over the measured seconds, per second.
    rps: f64,
    duration_s: f64,
    /// Answered requests that were due in the measured window.
    requests: u64,
    /// Non-200 answers, broken connections and requests never answered.
    errors: u64,
    /// Requests due in the measured window still unanswered when the drain ended.
    unanswered: u64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    /// How late the generator itself put requests on the wire when their connection was
    /// free (p99, ms): the part of the latency that is the generator's own stalls.
    send_lag_p99_ms: f64,
}

/// One keep-alive connection: at most one request on the wire, the rest queued by the
/// instant each was due.
struct Conn {
    stream: TcpStream,
    /// Request bytes not yet written.
    unsent: usize,
    /// Bytes read and not yet parsed into a whole answer.
    received: Vec<u8>,
    /// Due instant of the request on the wire.
    in_flight: Option<Instant>,
    queued: VecDeque<Instant>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let report = run(&args)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn request_bytes(args: &Args) -> anyhow::Result<Vec<u8>> {
    if !args.path.starts_with('/') || args.path.contains(['\r', '\n', ' ']) {
        bail!("--path must start with / and hold no spaces or line breaks");
    }
    let mut request = format!("GET {} HTTP/1.1\r\nHost: {}\r\n", args.path, args.addr);
    for header in &args.headers {
        let Some((name, value)) = header.split_once(':') else {
            bail!("header {header:?} is not `Name: value`");
        };
        if name.trim().is_empty() || header.contains(['\r', '\n']) {
            bail!("header {header:?} is not `Name: value`");
        }
        request.push_str(&format!("{}: {}\r\n", name.trim(), value.trim()));
    }
    request.push_str("\r\n");
    Ok(request.into_bytes())
}

fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("connect to {addr}"))?;
    stream.set_nodelay(true)?;
    stream.set_nonblocking(true)?;
    Ok(TcpStream::from_std(stream))
}

/// Length of the first whole answer in `buf` and whether it was a 200; `None` while the
/// answer is incomplete.
fn parse_answer(buf: &[u8]) -> Result<Option<(usize, bool)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(buf) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad answer: {e}")),
    };
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .ok_or("answer without content-length")?;
    let length: usize = std::str::from_utf8(length.value)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .ok_or("bad content-length")?;
    let total = head + length;
    Ok((buf.len() >= total).then_some((total, response.code == Some(200))))
}

/// The `q`-quantile of sorted latencies, in ms.
fn quantile_ms(sorted_ns: &[u64], q: f64) -> f64 {
    if sorted_ns.is_empty() {
        return 0.0;
    }
    let rank = ((sorted_ns.len() as f64 * q).ceil() as usize).clamp(1, sorted_ns.len());
    sorted_ns[rank - 1] as f64 / 1e6
}

/// Writes what the socket takes of the rest of the request; what it does not take is
/// written when the socket says it is writable again.
fn write_request(conn: &mut Conn, request: &[u8]) -> io::Result<()> {
    while conn.unsent > 0 {
        let from = request.len() - conn.unsent;
        match conn.stream.write(&request[from..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => conn.unsent -= n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn run(args: &Args) -> anyhow::Result<Report> {
    let request = request_bytes(args)?;
    let mut poll = Poll::new()?;
    let mut conns = Vec::with_capacity(args.conns as usize);
    for i in 0..args.conns as usize {
        let mut stream = connect(args.addr)?;
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        conns.push(Conn {
            stream,
            unsent: 0,
            received: Vec::with_capacity(4096),
            in_flight: None,
            queued: VecDeque::new(),
        });
    }
    let interval = Duration::from_secs(1).as_nanos() as f64 / f64::from(args.rate);
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup.into());
    let stop_sending = measure_from + Duration::from_secs(args.duration.into());
    let give_up = stop_sending + Duration::from_secs(args.drain.into());
    let due = |k: u64| start + Duration::from_nanos((k as f64 * interval) as u64);

    let mut latencies: Vec<u64> = Vec::with_capacity(
        (u64::from(args.rate) * u64::from(args.duration)).min(PRESIZED) as usize,
    );
    let mut report = Report {
        generator: "bench-paced",
        proto: "http/1.1",
        conns: args.conns,
        target_rps: args.rate,
        ..Report::default()
    };
    let mut events = Events::with_capacity(1024);
    let mut send_lags: Vec<u64> = Vec::with_capacity(latencies.capacity());
    let mut next = 0u64;
    let mut outstanding = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let now = Instant::now();
        // Queue every request now due on its connection; send if the connection is free.
        loop {
            let at = due(next);
            if at > now || at >= stop_sending {
                break;
            }
            let conn = &mut conns[(next % u64::from(args.conns)) as usize];
            conn.queued.push_back(at);
            outstanding += 1;
            next += 1;
            if conn.in_flight.is_none() {
                if at >= measure_from {
                    send_lags.push(now.duration_since(at).as_nanos() as u64);
                }
                start_next(conn, &request)?;
            }
        }
        if (now >= stop_sending && outstanding == 0) || now >= give_up {
            break;
        }
        let wait = due(next).saturating_duration_since(Instant::now());
        let timeout = if now >= stop_sending {
            Some(
                give_up
                    .saturating_duration_since(now)
                    .min(Duration::from_millis(10)),
            )
        } else if wait > SPIN_BELOW {
            Some(wait - Duration::from_millis(1))
        } else {
            Some(Duration::ZERO)
        };
        poll.poll(&mut events, timeout)?;
        for event in &events {
            let index = event.token().0;
            let conn = &mut conns[index];
            if event.is_writable() && conn.unsent > 0 && conn.in_flight.is_some() {
                write_request(conn, &request).context("write")?;
            }
            if !event.is_readable() {
                continue;
            }
            loop {
                match conn.stream.read(&mut buf) {
                    Ok(0) => bail!("the server closed connection {index}"),
                    Ok(n) => conn.received.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e).context("read"),
                }
            }
            while let Some((length, ok)) =
                parse_answer(&conn.received).map_err(anyhow::Error::msg)?
            {
                conn.received.drain(..length);
                let Some(was_due) = conn.in_flight.take() else {
                    bail!("an answer nobody asked for on connection {index}");
                };
                outstanding -= 1;
                let answered = Instant::now();
                if was_due >= measure_from {
                    if ok {
                        latencies.push(answered.duration_since(was_due).as_nanos() as u64);
                    } else {
                        report.errors += 1;
                    }
                }
                if !conn.queued.is_empty() {
                    start_next(conn, &request)?;
                }
            }
        }
    }
    let unanswered = conns
        .iter()
        .flat_map(|c| c.in_flight.iter().chain(c.queued.iter()))
        .filter(|due| **due >= measure_from)
        .count() as u64;
    latencies.sort_unstable();
    report.requests = latencies.len() as u64;
    report.unanswered = unanswered;
    report.errors += unanswered;
    report.duration_s = f64::from(args.duration);
    report.rps = report.requests as f64 / report.duration_s;
    report.p50_ms = quantile_ms(&latencies, 0.50);
    report.p99_ms = quantile_ms(&latencies, 0.99);
    report.p999_ms = quantile_ms(&latencies, 0.999);
    report.max_ms = quantile_ms(&latencies, 1.0);
    send_lags.sort_unstable();
    report.send_lag_p99_ms = quantile_ms(&send_lags, 0.99);
    Ok(report)
}

/// Puts the connection's oldest queued request on the wire.
fn start_next(conn: &mut Conn, request: &[u8]) -> anyhow::Result<()> {
    conn.in_flight = conn.queued.pop_front();
    conn.unsent = request.len();
    write_request(conn, request).context("write")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::sync::{Arc, Mutex};

    #[test]
    fn answers_are_split_by_their_length_and_status() {
        let two = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 503 No\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(parse_answer(two), Ok(Some((40, true))));
        assert_eq!(parse_answer(&two[40..]), Ok(Some((38, false))));
        assert_eq!(parse_answer(&two[..39]), Ok(None), "body incomplete");
        assert_eq!(parse_answer(&two[..20]), Ok(None), "head incomplete");
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_answer(b"SMTP ready\r\n\r\n").is_err());
    }

    #[test]
    fn quantiles_are_ranks_of_the_sorted_latencies() {
        let ns: Vec<u64> = (1..=1000).map(|i| i * 1_000).collect();
        assert_eq!(quantile_ms(&ns, 0.5), 0.5);
        assert_eq!(quantile_ms(&ns, 0.99), 0.99);
        assert_eq!(quantile_ms(&ns, 1.0), 1.0);
        assert_eq!(quantile_ms(&[], 0.99), 0.0);
    }

    #[test]
    fn bad_paths_and_headers_are_refused() {
        let mut args = Args::parse_from([
            "bench-paced",
            "--addr",
            "127.0.0.1:1",
            "--path",
            "/x",
            "--rate",
            "10",
        ]);
        assert!(request_bytes(&args).is_ok());
        args.path = "/x y".into();
        assert!(request_bytes(&args).is_err());
        args.path = "/x".into();
        args.headers = vec!["no colon".into()];
        assert!(request_bytes(&args).is_err());
    }

    /// A loopback server answering every request at once, noting when each arrived.
    fn recording_server() -> (SocketAddr, Arc<Mutex<Vec<Instant>>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&arrivals);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || {
                    let mut writer = stream.try_clone().unwrap();
                    let mut reader = io::BufReader::new(stream);
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => {
                                seen.lock().unwrap().push(Instant::now());
                                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                                if writer.write_all(answer).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                        }
                    }
                });
            }
        });
        (addr, arrivals)
    }

    #[test]
    fn requests_arrive_evenly_spaced_not_in_bursts() {
        let (addr, arrivals) = recording_server();
        let args = Args::parse_from([
            "bench-paced",
            "--addr",
            &addr.to_string(),
            "--path",
            "/",
            "--rate",
            "2000",
            "--conns",
            "32",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--drain",
            "2",
        ]);
        let report = run(&args).unwrap();
        assert_eq!(report.errors, 0);
        // 2,000 due in the measured second, give or take the one in flight at the edge.
        assert!((1_990..=2_000).contains(&report.requests), "{report:?}");
        // Evenly spaced: 2 per millisecond. h2load's pacing would bring all 32
        // connections' requests in the same millisecond.
        let arrivals = arrivals.lock().unwrap();
        let first = arrivals[0];
        let mut per_ms = std::collections::HashMap::<u128, u32>::new();
        for t in arrivals.iter() {
            *per_ms
                .entry(t.duration_since(first).as_millis())
                .or_default() += 1;
        }
        // The median busy millisecond, not the busiest: a loaded test machine may stall
        // a thread now and then, and what is tested is the schedule.
        let mut counts: Vec<u32> = per_ms.into_values().collect();
        counts.sort_unstable();
        let median = counts[counts.len() / 2];
        assert!(
            median <= 4,
            "half the busy milliseconds took {median} requests or more"
        );
    }
}
