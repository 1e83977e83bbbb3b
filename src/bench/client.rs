//! A minimal keep-alive HTTP/1.1 JSON client over one connection (hyper's client connection):
//! the load generator needs nothing more, and a pooled client would hide per-connection costs.

use std::net::SocketAddr;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// Why a request failed.
pub type ClientError = Box<dyn std::error::Error + Send + Sync>;

/// One connection to the broker.
pub struct Connection {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    /// Connects to `addr`.
    pub async fn open(addr: SocketAddr) -> Result<Connection, ClientError> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Connection { addr, sender })
    }

    /// Sends `body` to `path` with `method`; returns the status and the body bytes. Reconnects
    /// once if the connection was closed.
    pub async fn send(
        &mut self,
        method: &'static str,
        path: &str,
        body: Bytes,
    ) -> Result<(u16, Bytes), ClientError> {
        if self.sender.ready().await.is_err() {
            *self = Connection::open(self.addr).await?;
        }
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "wharf")
            .header("content-type", "application/json")
            .body(Full::new(body))?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }
}
