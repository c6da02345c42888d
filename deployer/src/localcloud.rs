//! The local cloud: ministack, an emulator that serves the real AWS APIs on one
//! loopback port, installed from `PyPI` into `.tools/ministack` on first use.
//!
//! `deployer local` and the end-to-end tests use this module alone to install,
//! start, reuse and stop it. How the emulator differs from AWS, and what the
//! deployer does about it, is in [`crate::emulator`].

use std::fmt;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::output::Printer;

/// The one place the emulator's version is pinned.
pub const MINISTACK_VERSION: &str = "1.5.33";
/// Where it is installed, relative to the project root.
pub const INSTALL_DIR: &str = ".tools/ministack";
/// Where `deployer local` keeps the emulator's state (git-ignored).
pub const STATE_DIR: &str = ".local-cloud";

#[derive(Debug, thiserror::Error)]
pub enum LocalCloudError {
    #[error(
        "`python3` was not found, and the local cloud (ministack) is a Python package; install Python 3.10+ with venv and pip (Debian: `apt-get install python3 python3-venv`)"
    )]
    NoPython,
    #[error(
        "installing ministack {MINISTACK_VERSION} into `{}` failed: {detail}; check that PyPI is reachable, then run the command again",
        dir.display()
    )]
    Install { dir: PathBuf, detail: String },
    #[error("cannot start the local cloud (`{}`): {source}", exe.display())]
    Spawn {
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the local cloud did not answer on {endpoint} within {secs} s; its log is `{}`",
        log.display()
    )]
    NotReady {
        endpoint: String,
        secs: u64,
        log: PathBuf,
    },
    #[error(
        "port {port} on 127.0.0.1 is taken by something that is not the local cloud; stop it, or set another port in `endpoint_url` of `stacks/local.yaml`"
    )]
    PortTaken { port: u16 },
    #[error("cannot prepare `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no free port on 127.0.0.1: {0}")]
    NoFreePort(std::io::Error),
}

/// A running local cloud. Dropping it stops the emulator if this process
/// started it; one that was already running is left alone.
pub struct LocalCloud {
    port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl fmt::Debug for LocalCloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCloud")
            .field("endpoint", &self.endpoint())
            .field("owned", &self.child.is_some())
            .finish_non_exhaustive()
    }
}

/// How to start the emulator.
#[derive(Debug, Clone)]
pub struct StartOptions {
    pub port: u16,
    /// Holds the saved state, S3 data and temporary files.
    pub data_dir: PathBuf,
    /// Save state on shutdown and load it on start.
    pub persist: bool,
}

/// What `pip` installs: the pinned emulator and only what the stack needs of
/// its extras, every file pinned by hash.
pub const REQUIREMENTS: &str = include_str!("../local-cloud-requirements.txt");

/// What an install is recorded as: the version and the requirements' hash, so
/// a changed requirements file installs again.
fn requirement() -> String {
    format!(
        "ministack=={MINISTACK_VERSION} requirements sha256 {}",
        crate::digest::sha256_hex(REQUIREMENTS.as_bytes())
    )
}

/// Whether the pinned emulator is installed under `project_dir`.
pub fn is_installed(project_dir: &Path) -> bool {
    let dir = project_dir.join(INSTALL_DIR);
    dir.join("bin/ministack").exists()
        && std::fs::read_to_string(dir.join(".installed")).is_ok_and(|m| m.trim() == requirement())
}

impl LocalCloud {
    /// Installs ministack under `project_dir` if needed; returns its executable.
    pub fn install(project_dir: &Path, printer: &Printer) -> Result<PathBuf, LocalCloudError> {
        let dir = project_dir.join(INSTALL_DIR);
        let exe = dir.join("bin/ministack");
        let marker = dir.join(".installed");
        let requirement = requirement();
        let installed = || is_installed(project_dir);
        if installed() {
            return Ok(exe);
        }
        // One installer at a time (parallel tests, two terminals): the others
        // wait for the lock and then find it installed.
        let lock_path = project_dir.join(".tools/ministack.lock");
        let io = |source| LocalCloudError::Io {
            path: lock_path.clone(),
            source,
        };
        std::fs::create_dir_all(project_dir.join(".tools")).map_err(io)?;
        let lock = std::fs::File::create(&lock_path).map_err(io)?;
        lock.lock().map_err(io)?;
        if installed() {
            return Ok(exe);
        }
        let python = which("python3").ok_or(LocalCloudError::NoPython)?;
        printer.info(format_args!(
            "installing the local cloud ({requirement}) into `{INSTALL_DIR}` (first run only, about a minute)..."
        ));
        let install_error = |detail: String| LocalCloudError::Install {
            dir: dir.clone(),
            detail,
        };
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| install_error(e.to_string()))?;
        }
        run_quiet(Command::new(&python).arg("-m").arg("venv").arg(&dir))
            .map_err(|d| install_error(format!("creating the virtualenv: {d}")))?;
        let requirements = dir.join("requirements.txt");
        std::fs::write(&requirements, REQUIREMENTS).map_err(|e| install_error(e.to_string()))?;
        run_quiet(
            Command::new(dir.join("bin/pip"))
                .args([
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--require-hashes",
                    "--no-deps",
                    "--only-binary=:all:",
                    "-r",
                ])
                .arg(&requirements),
        )
        .map_err(|d| install_error(format!("pip install: {d}")))?;
        std::fs::write(&marker, format!("{requirement}\n"))
            .map_err(|e| install_error(e.to_string()))?;
        printer.info("local cloud installed");
        Ok(exe)
    }

    /// Starts the emulator on `options.port`, or reuses the one already answering there.
    pub fn start(exe: &Path, options: &StartOptions) -> Result<Self, LocalCloudError> {
        let log = options.data_dir.join("ministack.log");
        if is_healthy(options.port) {
            return Ok(Self {
                port: options.port,
                child: None,
                log,
            });
        }
        if TcpStream::connect_timeout(
            &SocketAddr::from((Ipv4Addr::LOCALHOST, options.port)),
            Duration::from_millis(200),
        )
        .is_ok()
        {
            return Err(LocalCloudError::PortTaken { port: options.port });
        }
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| LocalCloudError::Io { path, source }
        };
        let state = options.data_dir.join("state");
        let s3 = options.data_dir.join("s3");
        let tmp = options.data_dir.join("tmp");
        for dir in [&state, &s3, &tmp] {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let log_file = std::fs::File::create(&log).map_err(io(&log))?;
        let log_err = log_file.try_clone().map_err(io(&log))?;
        let persist = if options.persist { "1" } else { "0" };
        let mut command = Command::new(exe);
        command
            .env("GATEWAY_PORT", options.port.to_string())
            // Loopback only; no extra listeners on other interfaces.
            .env("BIND_HOST", "127.0.0.1")
            .env("IOT_MTLS_ENABLED", "0")
            .env("SFTP_ENABLED", "0")
            .env("STATE_DIR", &state)
            .env("S3_DATA_DIR", &s3)
            .env("TMPDIR", &tmp)
            .env("PERSIST_STATE", persist)
            .env("S3_PERSIST", persist)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        // Its own process group: Ctrl-C reaches us, and we stop it (and the
        // function processes it spawns) cleanly, so its state gets saved.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().map_err(|source| LocalCloudError::Spawn {
            exe: exe.to_owned(),
            source,
        })?;
        let cloud = Self {
            port: options.port,
            child: Some(child),
            log,
        };
        cloud.wait_ready(Duration::from_secs(30))?;
        Ok(cloud)
    }

    /// Installs if needed and starts a throw-away emulator on a free port
    /// (tests, benchmarks). It also stops when this process ends without
    /// dropping it (a `static`), through a watchdog process.
    pub fn start_fresh(project_dir: &Path, data_dir: &Path) -> Result<Self, LocalCloudError> {
        let exe = Self::install(
            project_dir,
            &Printer::new(crate::cli::OutputMode::Text, false, 0),
        )?;
        let cloud = Self::start(
            &exe,
            &StartOptions {
                port: free_port()?,
                data_dir: data_dir.to_owned(),
                persist: false,
            },
        )?;
        cloud.stop_with_this_process();
        Ok(cloud)
    }

    /// Starts a small shell that waits for this process to end, then stops
    /// the emulator's process group.
    fn stop_with_this_process(&self) {
        let Some(child) = &self.child else {
            return;
        };
        let script = format!(
            // `sh` may be dash, whose `kill` takes no `--`.
            "while kill -0 {owner} 2>/dev/null; do sleep 1; done; kill -TERM -{group} 2>/dev/null; sleep 10; kill -KILL -{group} 2>/dev/null",
            owner = std::process::id(),
            group = child.id()
        );
        let mut watchdog = Command::new("sh");
        watchdog
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut watchdog, 0);
        // Without the watchdog a crashed test may leave an emulator behind;
        // nothing else depends on it.
        drop(watchdog.spawn());
    }

    fn wait_ready(&self, limit: Duration) -> Result<(), LocalCloudError> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if is_healthy(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(LocalCloudError::NotReady {
            endpoint: self.endpoint(),
            secs: limit.as_secs(),
            log: self.log.clone(),
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether this process started the emulator (and so stops it).
    pub fn owned(&self) -> bool {
        self.child.is_some()
    }

    /// Stops the emulator if this process started it: SIGTERM to its process
    /// group (it saves its state), then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = format!("-{}", child.id());
        drop(
            Command::new("kill")
                .args(["-TERM", "--", &group])
                .stderr(Stdio::null())
                .status(),
        );
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(
            Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status(),
        );
        drop(child.wait());
    }
}

impl Drop for LocalCloud {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16, LocalCloudError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(LocalCloudError::NoFreePort)
}

/// Whether a ministack answers its health check on `port`.
pub fn is_healthy(port: u16) -> bool {
    http_get(&format!("http://127.0.0.1:{port}/_ministack/health"))
        .is_ok_and(|r| r.status == 200 && r.body_text().contains("\"services\""))
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

fn run_quiet(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        Err(tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
    }
}

/// The host and port of an `http://` URL on this machine, and its path.
fn split_loopback_url(url: &str) -> Option<(String, u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().ok()?),
        None => (authority, 80),
    };
    Some((host.to_owned(), port, path))
}

/// A response from [`http_get`].
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A minimal HTTP/1.1 GET for `http://` URLs on this machine. Hosts under
/// `.localhost` (the emulator's API Gateway hosts) connect to 127.0.0.1, as
/// browsers do; any other host is refused, so nothing leaves the machine.
pub fn http_get(url: &str) -> std::io::Result<HttpResponse> {
    http_request("GET", url, &[], &[])
}

/// [`http_get`] for any method, with extra request headers and a body: what a
/// test needs to act as a browser against the stage's API on the emulator.
/// The same loopback-only rule applies.
pub fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    let (host, port, path) =
        split_loopback_url(url).ok_or_else(|| invalid(format!("not an http:// URL: {url}")))?;
    if !(host == "127.0.0.1" || host == "localhost" || host.ends_with(".localhost")) {
        return Err(invalid(format!(
            "refusing a request off this machine: {url}"
        )));
    }
    let mut stream = TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_secs(2),
    )?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nAccept: */*\r\n"
    );
    for (name, value) in headers {
        for part in [*name, ": ", *value, "\r\n"] {
            head.push_str(part);
        }
    }
    if !body.is_empty() || method != "GET" {
        head.push_str("Content-Length: ");
        head.push_str(&body.len().to_string());
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| invalid(format!("malformed HTTP response from {url}")))
}

fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body)?;
    }
    Some(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requirements_pin_this_version_by_hash_without_the_unneeded_extras() {
        assert!(REQUIREMENTS.contains(&format!("\nministack=={MINISTACK_VERSION} \\")));
        let packages: Vec<&str> = REQUIREMENTS
            .lines()
            .filter(|l| !l.starts_with(' ') && !l.starts_with('#') && !l.is_empty())
            .collect();
        for line in &packages {
            assert!(line.contains("==") && line.ends_with('\\'), "{line}");
        }
        for unneeded in [
            "duckdb", "docker", "psycopg2", "pymysql", "asyncssh", "aws-sam",
        ] {
            assert!(
                !packages.iter().any(|l| l.starts_with(unneeded)),
                "{unneeded}"
            );
        }
        assert!(packages.iter().any(|l| l.starts_with("cryptography==")));
    }

    #[test]
    fn urls_split_into_host_port_path() {
        assert_eq!(
            split_loopback_url("http://abc.execute-api.localhost:4566/local/health"),
            Some((
                "abc.execute-api.localhost".to_owned(),
                4566,
                "/local/health".to_owned()
            ))
        );
        assert_eq!(
            split_loopback_url("http://127.0.0.1:9"),
            Some(("127.0.0.1".to_owned(), 9, "/".to_owned()))
        );
        assert_eq!(split_loopback_url("https://example.com/"), None);
    }

    #[test]
    fn requests_off_this_machine_are_refused() {
        let err = http_get("http://example.com:80/").unwrap_err();
        assert!(err.to_string().contains("refusing"));
    }

    #[test]
    fn responses_parse_including_chunked_bodies() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let r = parse_response(raw).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.body_text(), "hello world");
    }
}
