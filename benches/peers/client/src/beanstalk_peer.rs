//! beanstalkd: its text protocol, written by hand. `put` to produce, `reserve-with-timeout` to
//! consume, `delete` to acknowledge.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::workload::{Progress, Shape, Start, payload, share, start};

/// beanstalkd time-to-run: far beyond any run, so no job is ever re-released.
const BEANSTALK_TTR: u32 = 600;

/// Opens one connection per consumer and producer.
pub async fn connect_all(addr: SocketAddr, shape: Shape) -> anyhow::Result<Vec<Start>> {
    let Shape {
        producers,
        consumers,
        batch,
        payload_bytes,
    } = shape;
    let mut starts = Vec::new();
    for i in 0..consumers {
        let conn = Conn::connect(addr).await?;
        starts.push(start(format!("beanstalkd consumer {i}"), move |pr| {
            consume(conn, pr, batch, payload_bytes)
        }));
    }
    for i in 0..producers {
        let conn = Conn::connect(addr).await?;
        starts.push(start(format!("beanstalkd producer {i}"), move |pr| {
            let range = share(pr.total, producers, i);
            produce(conn, pr, range, batch, payload_bytes)
        }));
    }
    Ok(starts)
}

struct Conn {
    io: BufReader<TcpStream>,
    out: Vec<u8>,
    line: Vec<u8>,
}

enum Reserve {
    Job(u64),
    None,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .context("connect timed out")??;
        stream.set_nodelay(true)?;
        Ok(Self {
            io: BufReader::with_capacity(256 * 1024, stream),
            out: Vec::new(),
            line: Vec::new(),
        })
    }

    fn put(&mut self, body: &[u8]) {
        let _ = write!(self.out, "put 0 0 {BEANSTALK_TTR} {}\r\n", body.len());
        self.out.extend_from_slice(body);
        self.out.extend_from_slice(b"\r\n");
    }

    fn reserve(&mut self, timeout_secs: u32) {
        let _ = write!(self.out, "reserve-with-timeout {timeout_secs}\r\n");
    }

    fn delete(&mut self, id: u64) {
        let _ = write!(self.out, "delete {id}\r\n");
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        self.io.get_mut().write_all(&self.out).await?;
        self.out.clear();
        Ok(())
    }

    async fn read_line(&mut self) -> anyhow::Result<String> {
        self.line.clear();
        let n = self.io.read_until(b'\n', &mut self.line).await?;
        ensure!(n > 0, "beanstalkd closed the connection");
        let text = std::str::from_utf8(&self.line)?.trim_end_matches(['\r', '\n']);
        Ok(text.to_owned())
    }

    async fn read_inserted(&mut self) -> anyhow::Result<()> {
        let line = self.read_line().await?;
        ensure!(
            line.starts_with("INSERTED "),
            "put: unexpected reply {line:?}"
        );
        Ok(())
    }

    async fn read_reserved(&mut self, size: usize) -> anyhow::Result<Reserve> {
        let line = self.read_line().await?;
        if line == "TIMED_OUT" || line == "DEADLINE_SOON" {
            return Ok(Reserve::None);
        }
        let mut words = line.split(' ');
        ensure!(
            words.next() == Some("RESERVED"),
            "reserve: unexpected reply {line:?}"
        );
        let id: u64 = words.next().context("reserve: no id")?.parse()?;
        let bytes: usize = words.next().context("reserve: no size")?.parse()?;
        ensure!(
            bytes == size,
            "reserve: job {id} has {bytes} bytes, expected {size}"
        );
        let mut body = vec![0u8; bytes + 2];
        self.io.read_exact(&mut body).await?;
        ensure!(
            body.ends_with(b"\r\n"),
            "reserve: body of job {id} not terminated"
        );
        Ok(Reserve::Job(id))
    }

    async fn read_deleted(&mut self) -> anyhow::Result<()> {
        let line = self.read_line().await?;
        ensure!(line == "DELETED", "delete: unexpected reply {line:?}");
        Ok(())
    }
}

async fn produce(
    mut conn: Conn,
    progress: Arc<Progress>,
    (first, count): (u64, u64),
    batch: usize,
    size: usize,
) -> anyhow::Result<()> {
    let end = first + count;
    let mut id = first;
    while id < end {
        progress.check_deadline()?;
        let n = (end - id).min(batch as u64);
        for j in id..id + n {
            conn.put(&payload(j, size));
        }
        conn.flush().await?;
        for _ in 0..n {
            conn.read_inserted().await?;
        }
        id += n;
    }
    Ok(())
}

async fn consume(
    mut conn: Conn,
    progress: Arc<Progress>,
    batch: usize,
    size: usize,
) -> anyhow::Result<()> {
    let mut ids = Vec::with_capacity(batch);
    while !progress.done() {
        progress.check_deadline()?;
        ids.clear();
        if batch > 1 {
            for _ in 0..batch {
                conn.reserve(0);
            }
            conn.flush().await?;
            for _ in 0..batch {
                if let Reserve::Job(id) = conn.read_reserved(size).await? {
                    ids.push(id);
                }
            }
        }
        if ids.is_empty() {
            // Unbatched, or the queue was empty: block (up to 1 s, the protocol's unit).
            conn.reserve(1);
            conn.flush().await?;
            if let Reserve::Job(id) = conn.read_reserved(size).await? {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            continue;
        }
        for &id in &ids {
            conn.delete(id);
        }
        conn.flush().await?;
        for _ in 0..ids.len() {
            conn.read_deleted().await?;
        }
        progress.record_acks(ids.len() as u64);
    }
    Ok(())
}
