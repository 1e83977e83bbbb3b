//! JSON bodies for the replies hyper writes by itself.
//!
//! A request hyper cannot parse (a raw space in the path, a bad `Content-Length`, a URI or a
//! header block over its limits) never reaches the router: hyper answers it with 400, 414 or
//! 431 and an empty body, then closes the connection, and offers no hook to change that reply.
//! Every other error of the API has the JSON shape `{"error": {"code", "message"}}`, so this
//! wraps each connection's socket and rewrites exactly those replies on their way out.
//!
//! Telling them apart is safe: every reply the router produces for an error carries a JSON
//! body, so a 400, 414 or 431 head with `content-length: 0` can only be hyper's own. The check
//! on every write is one prefix comparison of the first bytes (`HTTP/1.1 4`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::error::ErrorCode;

/// A connection's socket, with hyper's own error replies given JSON bodies.
#[derive(Debug)]
pub struct ParseErrorBodies<T> {
    inner: T,
    /// A rewritten reply, and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T> ParseErrorBodies<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> ParseErrorBodies<T> {
        ParseErrorBodies {
            inner,
            pending: None,
        }
    }
}

/// The code and message of hyper's reply with `status`.
fn error_for(status: &[u8]) -> Option<(ErrorCode, &'static str)> {
    Some(match status {
        b"400" => (
            ErrorCode::BadRequest,
            "the request is not valid HTTP/1.1: a malformed request line (a raw space or a control character in the path), header or Content-Length",
        ),
        b"414" => (
            ErrorCode::UriTooLong,
            "the request line (method, path and query string) is too long",
        ),
        b"431" => (
            ErrorCode::HeadersTooLarge,
            "the request head is too large: too many headers, or a request line and headers over the server's buffer",
        ),
        _ => return None,
    })
}

/// `head` with a JSON error body, if it is one of hyper's own error replies.
fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    const EMPTY: &[u8] = b"\r\ncontent-length: 0\r\n";
    if !head.starts_with(b"HTTP/1.1 4") || head.len() > 1024 || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let (code, message) = error_for(head.get(9..12)?)?;
    let at = head.windows(EMPTY.len()).position(|w| w == EMPTY)?;
    let body =
        serde_json::json!({"error": {"code": code.as_str(), "message": message}}).to_string();
    let mut reply = Vec::with_capacity(head.len() + body.len() + 64);
    reply.extend_from_slice(&head[..at]);
    reply.extend_from_slice(
        format!(
            "\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        )
        .as_bytes(),
    );
    reply.extend_from_slice(&head[at + EMPTY.len()..]);
    reply.extend_from_slice(body.as_bytes());
    Some(reply)
}

impl<T: AsyncWrite + Unpin> ParseErrorBodies<T> {
    /// Writes what is left of a rewritten reply.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((reply, written)) = &mut self.pending {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &reply[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
            if *written == reply.len() {
                self.pending = None;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Takes `buf` as written if it is hyper's error reply (its rewrite is then pending).
    fn poll_rewrite(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Option<Poll<io::Result<usize>>> {
        let reply = rewrite(buf)?;
        self.pending = Some((reply, 0));
        Some(match self.poll_pending(cx) {
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            // Taken either way; the rest goes out with the next write, flush or shutdown.
            _ => Poll::Ready(Ok(buf.len())),
        })
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ParseErrorBodies<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ParseErrorBodies<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        if let Some(done) = this.poll_rewrite(cx, buf) {
            return done;
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        if let Some(first) = bufs.first()
            && let Some(done) = this.poll_rewrite(cx, first)
        {
            return done;
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn hyper_error_heads_get_a_json_body_and_nothing_else_is_touched() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Fri, 04 Dec 2026 02:02:37 GMT\r\n\r\n";
        let reply = String::from_utf8(rewrite(head).unwrap()).unwrap();
        let (head, body) = reply.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains("\r\ncontent-type: application/json\r\n"),
            "{head}"
        );
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
        assert!(head.ends_with("GMT") && head.contains("connection: close"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "headers_too_large");
        // A reply of the router (it has a body), another status, a body chunk: untouched.
        for other in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 50\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"{\"HTTP/1.1 400\": 1}",
        ] {
            assert!(rewrite(other).is_none(), "{}", String::from_utf8_lossy(other));
        }
    }
}
