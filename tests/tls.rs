//! HTTPS: the server serves the API over TLS with a certificate the test generates, a client
//! that trusts that certificate talks to it, and one that speaks plain HTTP gets nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;

use std::sync::Arc;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use wharf::clock::Clock;
use wharf::server::Server;

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM into `dir`; returns
/// the certificate (to trust) and the two paths.
fn certificate(
    dir: &std::path::Path,
) -> (
    CertificateDer<'static>,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names).unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();
    (cert.der().clone(), cert_path, key_path)
}

/// One HTTPS request to `addr`, trusting only `root`.
async fn https(
    addr: std::net::SocketAddr,
    root: &CertificateDer<'static>,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, serde_json::Value), Box<dyn std::error::Error + Send + Sync>> {
    let mut roots = RootCertStore::empty();
    roots.add(root.clone())?;
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1")?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::from(body.to_owned())))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, serde_json::from_slice(&bytes)?))
}

#[tokio::test]
async fn the_api_is_served_over_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (root, cert, key) = certificate(certs.path());
    let mut config = common::test_config(dir.path());
    config.tls_cert = Some(cert);
    config.tls_key = Some(key);
    let server = Server::start(&config, Clock::System).await.unwrap();
    let addr = server.addr();

    let (status, body) = https(addr, &root, "POST", "/v1/queues/q/jobs", r#"{"payload":7}"#)
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    let (status, body) = https(addr, &root, "POST", "/v1/queues/q/poll", "{}")
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["jobs"][0]["payload"], 7, "{body}");

    // A client that does not trust the certificate refuses the connection.
    let (stranger, _, _) = certificate(certs.path());
    assert!(https(addr, &stranger, "GET", "/healthz", "").await.is_err());

    // Plain HTTP to the TLS port gets no HTTP reply: the handshake fails and it is closed.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        plain.read_to_end(&mut reply),
    )
    .await
    .expect("the server closes a connection that is not TLS");
    assert!(
        !reply.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&reply)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_unusable_certificate_or_key_stops_the_start_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (_, cert, key) = certificate(certs.path());
    let garbage = certs.path().join("garbage.pem");
    std::fs::write(&garbage, "not a pem file").unwrap();
    for (cert, key, says) in [
        (garbage.clone(), key.clone(), "no certificate"),
        (cert.clone(), garbage.clone(), "private key"),
        (certs.path().join("missing.pem"), key.clone(), "cannot read"),
        (cert.clone(), cert.clone(), "private key"),
    ] {
        let mut config = common::test_config(dir.path());
        config.tls_cert = Some(cert);
        config.tls_key = Some(key);
        let Err(error) = Server::start(&config, Clock::System).await else {
            panic!("started with an unusable certificate");
        };
        assert!(error.to_string().contains(says), "{error}");
    }
    let mut config = common::test_config(dir.path());
    config.tls_cert = Some(cert);
    assert!(
        config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("tls_key")
    );
}
