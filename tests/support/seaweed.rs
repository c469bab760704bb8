//! A throwaway SeaweedFS S3 server for integration tests: `weed server -s3` in its own temporary
//! directory, on free loopback ports, killed on drop. A server that cannot start fails the test
//! with its log.
//!
//! `weed` is looked up as `$PIPE_WEED` if set, else `weed` on `PATH`, else `.ci/venv/bin/weed`
//! (where `.ci/install-seaweedfs.sh` installs it).

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long SeaweedFS may take before S3 answers (usually 5–8 s; CI machines are busy).
const START_LIMIT: Duration = Duration::from_secs(60);

pub fn weed_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PIPE_WEED") {
        return PathBuf::from(path);
    }
    if let Ok(path) = which::which("weed") {
        return path;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/venv/bin/weed")
}

pub struct Seaweed {
    dir: tempfile::TempDir,
    child: Child,
    pub s3_port: u16,
}

impl Seaweed {
    /// Starts a server and waits until its S3 gateway answers.
    pub fn start() -> Seaweed {
        let weed = weed_binary();
        assert!(
            weed.exists(),
            "this test needs SeaweedFS ({} is missing): run .ci/install-seaweedfs.sh",
            weed.display()
        );
        let dir = tempfile::Builder::new().prefix("weed").tempdir().unwrap();
        let [s3, master, volume, filer] = free_ports();
        let log = std::fs::File::create(dir.path().join("weed.log")).unwrap();
        let child = Command::new(&weed)
            .arg("server")
            .arg(format!("-dir={}", dir.path().display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-s3",
                "-volume.max=5",
            ])
            // Its Iceberg and Lance catalogs listen on fixed ports (8181, 9101) by default:
            // two servers at once would collide, and the tests need neither.
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
            .arg(format!("-s3.port={s3}"))
            .arg(format!("-master.port={master}"))
            .arg(format!("-volume.port={volume}"))
            .arg(format!("-filer.port={filer}"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut server = Seaweed {
            dir,
            child,
            s3_port: s3,
        };
        server.await_s3();
        server
    }

    fn await_s3(&mut self) {
        let started = Instant::now();
        while started.elapsed() < START_LIMIT {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "weed server exited ({status}) before S3 answered:\n{}",
                    self.log()
                );
            }
            if self.request("GET", "/", b"").is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "SeaweedFS's S3 did not answer on port {} within {START_LIMIT:?}:\n{}",
            self.s3_port,
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The environment a `pipe` process needs to reach this server (no credentials are
    /// configured on it, so any key is accepted).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "pipe-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "pipe-test-secret".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// Creates a bucket with a plain S3 `PUT /BUCKET`.
    pub fn create_bucket(&self, bucket: &str) {
        let status = self.request("PUT", &format!("/{bucket}"), b"");
        assert_eq!(
            status,
            Some(200),
            "creating bucket {bucket}:\n{}",
            self.log()
        );
    }

    /// A plain S3 `PUT /BUCKET/KEY` that overwrites whatever is there (behind pipe's back).
    pub fn put_object(&self, bucket: &str, key: &str, body: &[u8]) {
        let status = self.request("PUT", &format!("/{bucket}/{key}"), body);
        assert_eq!(status, Some(200), "putting {bucket}/{key}:\n{}", self.log());
    }

    /// The object's bytes, `None` when the server does not answer 200.
    pub fn get_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let (status, body) = self.exchange("GET", &format!("/{bucket}/{key}"), b"")?;
        (status == 200).then_some(body)
    }

    /// The HTTP status of one request, `None` when nothing answers.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> Option<u16> {
        self.exchange(method, path, body).map(|(status, _)| status)
    }

    fn exchange(&self, method: &str, path: &str, body: &[u8]) -> Option<(u16, Vec<u8>)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.s3_port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.s3_port,
            body.len()
        );
        stream.write_all(head.as_bytes()).ok()?;
        stream.write_all(body).ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).ok()?;
        let text = String::from_utf8_lossy(&response);
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let split = response.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        Some((status, dechunk(&text[..split], &response[split..])))
    }
}

/// The body of a response, undoing `Transfer-Encoding: chunked`.
fn dechunk(head: &str, body: &[u8]) -> Vec<u8> {
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.to_vec();
    }
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&rest[start..start + size]);
        rest = &rest[start + size + 2..];
    }
    out
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        // The data is thrown away with the temp dir: no need for a clean shutdown.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Four loopback ports that are free, and so are the gRPC ports SeaweedFS derives from them
/// (port + 10000); all clear of the examples' 18080/18081.
fn free_ports() -> [u16; 4] {
    let mut ports = Vec::new();
    while ports.len() < 4 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let usable = port < 55000
            && !(18070..=18090).contains(&port)
            && !ports.contains(&port)
            && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok();
        if usable {
            ports.push(port);
        }
    }
    [ports[0], ports[1], ports[2], ports[3]]
}
