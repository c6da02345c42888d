//! A fault-injecting HTTP proxy on 127.0.0.1, put in front of the emulator
//! (`--endpoint-url` names the proxy) to play the transient failures of real
//! AWS: a deterministic share of the requests is failed, in turn with a `503`
//! and an empty body, a `500` whose body is HTML (no XML for the SDK to
//! parse), and a reset connection. A failed request never reaches the
//! emulator, so a retry of it is never a second call.
//!
//! One request per connection: every answer the proxy passes on says
//! `Connection: close`, so it can count and fail requests one by one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Which requests the proxy fails.
#[derive(Debug, Clone, Copy)]
pub enum Faults {
    /// None: a plain proxy, for a baseline.
    None,
    /// The 3rd, 6th, 9th, … request.
    EveryNth(u64),
    /// Every request.
    All,
}

impl Faults {
    fn fails(self, request: u64) -> bool {
        match self {
            Self::None => false,
            Self::EveryNth(n) => request.is_multiple_of(n),
            Self::All => true,
        }
    }
}

/// The ways a request is failed, in turn.
const FAULTS: [&str; 3] = ["503 empty", "500 html", "reset"];

#[derive(Debug, Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub failed: AtomicU64,
    pub by_fault: [AtomicU64; 3],
}

/// The running proxy; stopped when dropped.
pub struct FaultyProxy {
    port: u16,
    counts: Arc<Counts>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyProxy {
    /// Listens on a free loopback port of `rt`, forwarding to `upstream`
    /// (`http://127.0.0.1:<port>`).
    pub fn start(rt: &tokio::runtime::Runtime, upstream: &str, faults: Faults) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let counts = Arc::new(Counts::default());
        let shared = Arc::clone(&counts);
        let task = rt.spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let counts = Arc::clone(&shared);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    // A client that goes away mid-request is its own business.
                    let _ = serve(client, &upstream, faults, &counts).await;
                });
            }
        });
        Self { port, counts, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> u64 {
        self.counts.requests.load(Ordering::SeqCst)
    }

    pub fn failed(&self) -> u64 {
        self.counts.failed.load(Ordering::SeqCst)
    }

    /// `503 empty: 12, 500 html: 11, reset: 11`.
    pub fn failures(&self) -> String {
        FAULTS
            .iter()
            .zip(&self.counts.by_fault)
            .map(|(name, n)| format!("{name}: {}", n.load(Ordering::SeqCst)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One HTTP/1.1 message head and body.
struct Message {
    head: Vec<String>,
    body: Vec<u8>,
}

async fn serve(
    client: TcpStream,
    upstream: &str,
    faults: Faults,
    counts: &Counts,
) -> std::io::Result<()> {
    let mut client = BufReader::new(client);
    let request = read_message(&mut client, None).await?;
    let number = counts.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if faults.fails(number) {
        let fault = usize::try_from(counts.failed.fetch_add(1, Ordering::SeqCst) % 3).unwrap();
        counts.by_fault[fault].fetch_add(1, Ordering::SeqCst);
        let stream = client.get_mut();
        match fault {
            0 => {
                stream
                    .write_all(
                        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await?;
                stream.shutdown().await?;
            }
            1 => {
                let body = "<html><body><h1>502 Bad Gateway</h1>upstream hiccup</body></html>";
                let answer = format!(
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(answer.as_bytes()).await?;
                stream.shutdown().await?;
            }
            _ => {
                // Closing with SO_LINGER 0 sends a TCP reset.
                stream.set_zero_linger()?;
            }
        }
        return Ok(());
    }
    let method = request.head[0]
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut server = BufReader::new(TcpStream::connect(upstream).await?);
    write_message(server.get_mut(), &request).await?;
    let response = loop {
        let response = read_message(&mut server, Some(&method)).await?;
        // An interim answer (100 Continue) comes before the real one.
        if !response.head[0].contains(" 100 ") {
            break response;
        }
    };
    write_message(client.get_mut(), &response).await?;
    client.get_mut().shutdown().await
}

/// Reads a request (`request_method` `None`) or the answer to one.
async fn read_message(
    stream: &mut BufReader<TcpStream>,
    request_method: Option<&str>,
) -> std::io::Result<Message> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    if head.is_empty() {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    let header = |name: &str| {
        head[1..].iter().find_map(|h| {
            let (key, value) = h.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let status: Option<u16> = request_method.and_then(|_| head[0].split(' ').nth(1)?.parse().ok());
    let no_body =
        request_method == Some("HEAD") || status.is_some_and(|s| s < 200 || s == 204 || s == 304);
    let mut body = Vec::new();
    if no_body {
    } else if let Some(length) = header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
        body.resize(length, 0);
        stream.read_exact(&mut body).await?;
    } else if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        // Passed on as it came, chunk framing and all.
        loop {
            let mut size_line = String::new();
            stream.read_line(&mut size_line).await?;
            body.extend_from_slice(size_line.as_bytes());
            let size =
                usize::from_str_radix(size_line.trim().split(';').next().unwrap_or_default(), 16)
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    let mut line = String::new();
                    stream.read_line(&mut line).await?;
                    body.extend_from_slice(line.as_bytes());
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size + 2, 0);
            stream.read_exact(&mut body[start..]).await?;
        }
    } else if request_method.is_some() {
        // An answer without a length ends when the server closes.
        stream.read_to_end(&mut body).await?;
    }
    Ok(Message { head, body })
}

/// Writes a message with `connection: close` in place of any connection header.
async fn write_message(stream: &mut TcpStream, message: &Message) -> std::io::Result<()> {
    let mut out = String::new();
    out.push_str(&message.head[0]);
    out.push_str("\r\n");
    for line in &message.head[1..] {
        let name = line.split(':').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("connection: close\r\n\r\n");
    stream.write_all(out.as_bytes()).await?;
    stream.write_all(&message.body).await?;
    stream.flush().await
}
