//! Accepting connections, with the limits a server open to the network needs: how many may be
//! open at once, how long a request's head may take (which also bounds how long a kept-alive
//! connection may sit idle), and how long its body may take (a layer of the router).
//!
//! Without them, a thousand connections that send half a request and stall hold a thousand
//! file descriptors for ever, and one of them holds a graceful shutdown for its whole grace.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request};
use axum::http::header::CONNECTION;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::{Service, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use super::error::{ApiError, ErrorCode};
use super::parse_errors::ParseErrorBodies;

/// The limits on connections and on reading requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Most connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Longest a connection may take to send a request's head, counted from when the server
    /// starts waiting for it: after the connection opens, and after each reply on a kept-alive
    /// connection (so it is also the idle keep-alive timeout). The connection is then closed.
    pub header_read_timeout: Duration,
}

/// File descriptors kept for everything but client connections: the data files, the
/// listener, the runtime's own, mirror connections, and some slack.
const RESERVED_FDS: u64 = 64;

/// `max_connections`, lowered if the process's file-descriptor limit could not hold that many
/// connections (after raising the soft limit to the hard one, as Go and most servers do). At
/// the limit a client waits in the listen backlog instead of the accept loop failing with
/// "Too many open files" while the data files and mirrors need descriptors too.
pub fn connections_within_fd_limit(max_connections: usize) -> usize {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(soft), Some(hard)) = (limit.current, limit.maximum)
        && soft < hard
    {
        let raised = Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit.current = Some(hard);
        }
    }
    let Some(soft) = limit.current else {
        return max_connections; // unlimited
    };
    let room = usize::try_from(soft.saturating_sub(RESERVED_FDS).max(1)).unwrap_or(usize::MAX);
    if room < max_connections {
        tracing::warn!(
            fd_limit = soft,
            max_connections = room,
            "max_connections lowered to fit the file-descriptor limit (ulimit -n) less {RESERVED_FDS} kept for storage and mirrors; more clients wait in the listen backlog"
        );
        return room;
    }
    max_connections
}

/// Serves `router` on `listener` (over TLS when given an acceptor) until `stop` completes;
/// then stops accepting, lets each connection that is answering a request finish it, closes
/// every other connection at once (idle, or part-way through sending a head: neither has
/// anything to lose), and returns once all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    tls: Option<TlsAcceptor>,
    stop: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let (stopping, stopped) = watch::channel(false);
    let mut stop = pin!(stop);
    loop {
        // A permit first: at the limit, new connections wait in the kernel's backlog.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors (or another resource): let connections close, then
                // try again, rather than spin.
                tracing::warn!(%error, "cannot accept a connection; retrying in 100 ms");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    () = &mut stop => break,
                }
            }
        };
        // Replies go out as soon as they are written: without TCP_NODELAY, the tail of a
        // reply larger than one segment can wait for the client's (delayed) ACK.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let connection = Connection {
            http: http.clone(),
            router: router.clone(),
            peer,
            graceful: graceful.watcher(),
            stopped: stopped.clone(),
        };
        let tls = tls.clone();
        let handshake_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            match tls {
                None => connection.run(tcp).await,
                // The handshake is part of the request's head: it gets the same time limit,
                // and a stop ends it at once.
                Some(tls) => {
                    let mut stopped = connection.stopped.clone();
                    let handshake = tokio::time::timeout(handshake_timeout, tls.accept(tcp));
                    tokio::select! {
                        done = handshake => match done {
                            Ok(Ok(stream)) => connection.run(stream).await,
                            Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                            Err(_) => tracing::debug!("TLS handshake timed out"),
                        },
                        () = async { let _ = stopped.wait_for(|stop| *stop).await; } => {}
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    stopping.send_replace(true);
    graceful.shutdown().await;
}

/// What serving one accepted connection needs.
struct Connection {
    http: http1::Builder,
    router: Router,
    /// The client's address (requests carry it as `ConnectInfo`, for the audit trail).
    peer: SocketAddr,
    graceful: Watcher,
    stopped: watch::Receiver<bool>,
}

impl Connection {
    /// Serves requests on `io` until the client closes it, or the server stops.
    async fn run<IO>(self, io: IO)
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let answering = Arc::new(AtomicUsize::new(0));
        let service = counted(
            TowerToHyperService::new(self.router),
            answering.clone(),
            self.peer,
        );
        let io = TokioIo::new(ParseErrorBodies::new(io));
        let connection = self.graceful.watch(self.http.serve_connection(io, service));
        let mut stopped = self.stopped;
        let idle_at_stop = async {
            let _ = stopped.wait_for(|stop| *stop).await;
            if answering.load(Ordering::Acquire) > 0 {
                // The graceful shutdown closes it once its reply is out.
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            done = connection => {
                if let Err(error) = done {
                    tracing::debug!(%error, "connection ended with an error");
                }
            }
            // Dropping the connection closes it.
            () = idle_at_stop => {}
        }
    }
}

/// `inner`, counting in `answering` the requests being answered: from the head's arrival
/// until hyper is done with the reply's body.
fn counted(
    inner: TowerToHyperService<Router>,
    answering: Arc<AtomicUsize>,
    peer: SocketAddr,
) -> impl Service<
    hyper::Request<Incoming>,
    Response = Response,
    Error = Infallible,
    Future = impl Future<Output = Result<Response, Infallible>> + Send,
> + Clone {
    let inner = Arc::new(inner);
    service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let guard = Answering::start(&answering);
        let reply = inner.call(request);
        async move {
            let response = reply.await?;
            Ok(response.map(|body| {
                Body::new(CountedBody {
                    body,
                    _guard: guard,
                })
            }))
        }
    })
}

/// One request being answered; uncounted when dropped.
struct Answering(Arc<AtomicUsize>);

impl Answering {
    fn start(count: &Arc<AtomicUsize>) -> Answering {
        count.fetch_add(1, Ordering::AcqRel);
        Answering(count.clone())
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A reply body that keeps its request counted until hyper drops it.
struct CountedBody {
    body: Body,
    _guard: Answering,
}

impl HttpBody for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// How the router reads request bodies.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest body (413 `body_too_large` beyond).
    pub max_bytes: usize,
    /// Longest the whole body may take to arrive (408 `request_timeout` beyond).
    pub read_timeout: Duration,
}

/// Reads the whole body before the handler runs, within `limits`: a body that stalls (a
/// chunked upload that stops halfway, a `Content-Length` never reached) is answered 408 rather
/// than holding the connection and the handler.
pub async fn read_body(limits: BodyLimits, request: Request) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    let reading = Limited::new(body, limits.max_bytes).collect();
    let bytes = match tokio::time::timeout(limits.read_timeout, reading).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.is::<LengthLimitError>() => {
            return Err(ApiError::new(
                ErrorCode::BodyTooLarge,
                "the request body is over the server's max_body_bytes",
            )
            .into_response());
        }
        Ok(Err(error)) => {
            return Err(ApiError::new(
                ErrorCode::BadBody,
                format!("the request body could not be read: {error}"),
            )
            .into_response());
        }
        Err(_) => {
            let error = ApiError::new(
                ErrorCode::RequestTimeout,
                format!(
                    "the request body did not arrive within {} ms (body_read_timeout_ms)",
                    limits.read_timeout.as_millis()
                ),
            );
            // The rest of the body may still come: the connection cannot carry another request.
            return Err(([(CONNECTION, "close")], error).into_response());
        }
    };
    Ok(Request::from_parts(parts, Body::from(bytes)))
}
