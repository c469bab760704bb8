//! The release example's service: a tiny HTTP/1.1 server (std only, one file, built with plain
//! `rustc`) whose version and "bad release" switch are baked in when it is built.
//!
//! Build:  SERVICE_VERSION=v1 rustc -O service/main.rs -o build/service
//! Bad:    PIPE_DEMO_BAD=1 SERVICE_VERSION=v2 rustc -O service/main.rs -o build/service
//!         (every second `GET /` answers 500, so the artifact itself is bad; /health stays 200
//!         so smoke passes and the watch's error_rate probe is what catches it)
//! Slow:   PIPE_DEMO_SLOW_MS=1200 at build time adds that much latency to every `GET /`.
//! Run:    build/service --listen 127.0.0.1:18080 [--pid-file PATH] [--window SECONDS]
//!
//! Endpoints: `GET /` (the normal request), `GET /health` (`ok`), `GET /version`, and
//! `GET /metrics`: figures over the last `--window` seconds (default 30) of `GET /` requests,
//! one `name value` per line: `requests 20`, `errors 10`, `error_rate 50.0%`, `p95 3ms`.
//! It keeps no state on disk, so SIGTERM's default action (terminate) is a clean stop.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const VERSION: &str = match option_env!("SERVICE_VERSION") {
    Some(version) => version,
    None => "dev",
};

/// Baked in at build time: `PIPE_DEMO_BAD=1` makes every second `GET /` fail.
fn bad_build() -> bool {
    option_env!("PIPE_DEMO_BAD") == Some("1")
}

/// Baked in at build time: extra milliseconds of latency on every `GET /`.
const SLOW_MS: Option<&str> = option_env!("PIPE_DEMO_SLOW_MS");

/// Longest request head read; anything longer is refused.
const MAX_HEAD: usize = 16 * 1024;

/// Oldest samples are dropped past this many, whatever the window.
const MAX_SAMPLES: usize = 100_000;

struct Options {
    listen: String,
    pid_file: Option<String>,
    window: Duration,
}

/// One answered `GET /`: when, whether it failed, how long it took.
struct Sample {
    at: Instant,
    failed: bool,
    latency: Duration,
}

struct Service {
    samples: Mutex<VecDeque<Sample>>,
    request_counter: AtomicU64,
    window: Duration,
    extra_latency: Duration,
}

fn main() {
    let options = match parse_options(std::env::args().skip(1).collect()) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("service: {message}");
            eprintln!(
                "usage: service --listen 127.0.0.1:PORT [--pid-file PATH] [--window SECONDS]"
            );
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(&options.listen) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("service: cannot listen on {}: {error}", options.listen);
            std::process::exit(1);
        }
    };
    if let Some(path) = &options.pid_file {
        if let Err(error) = std::fs::write(path, format!("{}\n", std::process::id())) {
            eprintln!("service: cannot write pid file {path}: {error}");
            std::process::exit(1);
        }
    }
    let build = if bad_build() { "bad" } else { "good" };
    eprintln!(
        "service {VERSION} ({build} build) listening on {}",
        options.listen
    );
    let service = Arc::new(Service {
        samples: Mutex::new(VecDeque::new()),
        request_counter: AtomicU64::new(0),
        window: options.window,
        extra_latency: Duration::from_millis(SLOW_MS.and_then(|ms| ms.parse().ok()).unwrap_or(0)),
    });
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let service = Arc::clone(&service);
                std::thread::spawn(move || service.handle(stream));
            }
            Err(error) => eprintln!("service: accept failed: {error}"),
        }
    }
}

fn parse_options(args: Vec<String>) -> Result<Options, String> {
    let mut options = Options {
        listen: std::env::var("SERVICE_LISTEN").unwrap_or_else(|_| "127.0.0.1:18080".into()),
        pid_file: None,
        window: Duration::from_secs(30),
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => options.listen = value()?,
            "--pid-file" => options.pid_file = Some(value()?),
            "--window" => {
                let seconds: u64 = value()?
                    .parse()
                    .map_err(|_| "--window takes whole seconds")?;
                options.window = Duration::from_secs(seconds.max(1));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

impl Service {
    fn handle(&self, mut stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let Some(path) = read_request_path(&mut stream) else {
            let _ = respond(&mut stream, 400, "bad request\n");
            return;
        };
        let _ = match path.as_str() {
            "/health" => respond(&mut stream, 200, "ok\n"),
            "/version" => respond(&mut stream, 200, &format!("{VERSION}\n")),
            "/metrics" => respond(&mut stream, 200, &self.metrics()),
            "/" => self.serve_request(&mut stream),
            _ => respond(&mut stream, 404, "not found\n"),
        };
    }

    /// The normal request: a bad build fails every second one.
    fn serve_request(&self, stream: &mut TcpStream) -> std::io::Result<()> {
        let started = Instant::now();
        let number = self.request_counter.fetch_add(1, Ordering::Relaxed);
        if !self.extra_latency.is_zero() {
            std::thread::sleep(self.extra_latency);
        }
        let failed = bad_build() && number % 2 == 1;
        let result = if failed {
            respond(stream, 500, "internal error (bad build)\n")
        } else {
            respond(stream, 200, &format!("hello from {VERSION}\n"))
        };
        self.record(Sample {
            at: Instant::now(),
            failed,
            latency: started.elapsed(),
        });
        result
    }

    fn record(&self, sample: Sample) {
        let mut samples = self
            .samples
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        samples.push_back(sample);
        while samples.len() > MAX_SAMPLES {
            samples.pop_front();
        }
    }

    /// `name value` lines over the samples of the last window.
    fn metrics(&self) -> String {
        let mut samples = self
            .samples
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        while samples
            .front()
            .is_some_and(|sample| now.duration_since(sample.at) > self.window)
        {
            samples.pop_front();
        }
        let requests = samples.len();
        let errors = samples.iter().filter(|sample| sample.failed).count();
        let error_rate = if requests == 0 {
            0.0
        } else {
            errors as f64 * 100.0 / requests as f64
        };
        let mut latencies: Vec<Duration> = samples.iter().map(|sample| sample.latency).collect();
        drop(samples);
        latencies.sort();
        let p95 = percentile(&latencies, 95);
        // Whole milliseconds, rounded up: a duration literal, and never 0ms for real traffic.
        let p95_ms = p95.as_micros().div_ceil(1000);
        format!(
            "requests {requests}\nerrors {errors}\nerror_rate {error_rate:.1}%\np95 {p95_ms}ms\n\
             window {}s\nversion {VERSION}\nbuild {}\n",
            self.window.as_secs(),
            if bad_build() { "bad" } else { "good" }
        )
    }
}

/// The nearest-rank percentile of sorted values (zero for none).
fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Reads the request head and returns the path of a `GET` (query string dropped).
fn read_request_path(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).ok()?;
        if read == 0 || head.len() + read > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut request_line = head.lines().next()?.split_whitespace();
    let (method, target) = (request_line.next()?, request_line.next()?);
    if method != "GET" && method != "HEAD" {
        return None;
    }
    Some(target.split('?').next().unwrap_or("/").to_string())
}

fn respond(stream: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())?;
    stream.flush()
}
