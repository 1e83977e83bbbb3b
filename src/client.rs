//! A minimal HTTP/1.1 JSON client on hyper's client connection, shared by `wharf bench` and
//! the tests: one keep-alive [`Connection`] (a pooled client would hide per-connection costs
//! from the load generator), or one [`request`] on a connection of its own.

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
    /// The `Host` header, rendered once.
    host: String,
    /// The `Authorization` header every request carries, if any.
    authorization: Option<String>,
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
        Ok(Connection {
            addr,
            host: addr.to_string(),
            authorization: None,
            sender,
        })
    }

    /// Sends API key `token` with every request from now on.
    pub fn authorize(&mut self, token: &str) {
        self.authorization = Some(format!("Bearer {token}"));
    }

    /// Sends `body` (JSON, when there is one) to `path` with `method` and extra `headers`;
    /// returns the status and the body bytes. Reconnects once if the connection was closed.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Bytes>,
        headers: &[(&str, &str)],
    ) -> Result<(u16, Bytes), ClientError> {
        let (status, _, bytes) = self.send_full(method, path, body, headers).await?;
        Ok((status, bytes))
    }

    /// [`Connection::send`], with the reply's headers.
    pub async fn send_full(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Bytes>,
        headers: &[(&str, &str)],
    ) -> Result<(u16, hyper::HeaderMap, Bytes), ClientError> {
        if self.sender.ready().await.is_err() {
            let authorization = self.authorization.take();
            *self = Connection::open(self.addr).await?;
            self.authorization = authorization;
        }
        let mut builder = Request::builder().method(method).uri(path);
        // A `Host` among `headers` replaces the address's.
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("host"))
        {
            builder = builder.header("host", self.host.as_str());
        }
        if let Some(authorization) = &self.authorization {
            builder = builder.header("authorization", authorization.as_str());
        }
        let typed = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        if body.is_some() && !typed {
            builder = builder.header("content-type", "application/json");
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(Full::new(body.unwrap_or_default()))?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await?.to_bytes();
        Ok((status, parts.headers, bytes))
    }
}

/// One request on a connection of its own (closed afterwards).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Bytes>,
    headers: &[(&str, &str)],
) -> Result<(u16, Bytes), ClientError> {
    Connection::open(addr)
        .await?
        .send(method, path, body, headers)
        .await
}

/// [`request`], with the reply's headers.
pub async fn request_full(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Bytes>,
    headers: &[(&str, &str)],
) -> Result<(u16, hyper::HeaderMap, Bytes), ClientError> {
    Connection::open(addr)
        .await?
        .send_full(method, path, body, headers)
        .await
}
