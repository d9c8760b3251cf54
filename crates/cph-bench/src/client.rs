//! A minimal HTTP/1.1 keep-alive load generator (one connection per client task).

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub struct LoadResult {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

async fn request(
    conn: &mut BufReader<TcpStream>,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&[u8]>,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let body = body.unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nX-Auth-Token: {token}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.get_mut().write_all(head.as_bytes()).await?;
    if !body.is_empty() {
        conn.get_mut().write_all(body).await?;
    }
    // Read the response head.
    let mut headbuf = Vec::with_capacity(512);
    loop {
        let b = conn.read_u8().await?;
        headbuf.push(b);
        if headbuf.ends_with(b"\r\n\r\n") {
            break;
        }
        anyhow::ensure!(headbuf.len() < 64 * 1024, "response head too large");
    }
    let text = String::from_utf8_lossy(&headbuf);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let len: usize = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut out = vec![0u8; len];
    conn.read_exact(&mut out).await?;
    Ok((status, out))
}

/// One request on a fresh connection.
pub async fn one(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&[u8]>,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut conn = BufReader::new(TcpStream::connect(addr).await?);
    request(&mut conn, method, path, token, body).await
}

/// `clients` connections issuing GET `path` back to back for `dur`.
pub async fn load(
    addr: SocketAddr,
    path: &str,
    token: &str,
    clients: usize,
    dur: Duration,
) -> anyhow::Result<LoadResult> {
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let path = path.to_string();
        let token = token.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<u32> = Vec::with_capacity(100_000);
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let mut conn = BufReader::new(stream);
            while Instant::now() < deadline {
                let t = Instant::now();
                let (status, _) = request(&mut conn, "GET", &path, &token, None).await?;
                anyhow::ensure!(status == 200, "status {status}");
                lat.push(t.elapsed().as_micros() as u32);
            }
            Ok::<Vec<u32>, anyhow::Error>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 - 1.0) * p).round() as usize;
        f64::from(all[i]) / 1000.0
    };
    Ok(LoadResult {
        rps: all.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    })
}
