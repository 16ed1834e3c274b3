//! Slow and greedy clients against the built binary (threat model S77): trickled headers and
//! bodies are cut off by the read timeouts while `/supported` keeps answering, and connections
//! beyond `[limits] max_connections` wait until one closes. Raw TCP, so the client can misbehave.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use x402_tests::evm::exact::ExactHarness;
use x402_tests::wait;

use crate::common::{Running, config, get, start};

/// How often a slow client sends its next byte.
const TRICKLE: Duration = Duration::from_millis(100);

/// The test config with `extra` lines added to `[limits]`.
pub(crate) fn start_limited(h: &ExactHarness, extra: &str) -> Running {
    let (text, envs) = config(h);
    let text = text.replacen("[limits]\n", &format!("[limits]\n{extra}\n"), 1);
    start(&text, &envs)
}

pub(crate) fn addr(server: &Running) -> String {
    server.url.trim_start_matches("http://").to_owned()
}

/// How a slow client's connection ended, and what the server sent on it.
#[derive(Debug)]
struct Ended {
    /// The server closed it (a read saw the end, or a read or write failed).
    closed: bool,
    sent: Vec<u8>,
}

/// Sends `head` and then `byte` every [`TRICKLE`], reading between bytes, until the server
/// closes the connection (or the hang guard passes).
async fn trickle(addr: &str, head: &[u8], byte: u8) -> Ended {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head).await.unwrap();
    let mut sent = Vec::new();
    let give_up = tokio::time::Instant::now() + wait::HANG_GUARD;
    let mut buf = [0u8; 512];
    while tokio::time::Instant::now() < give_up {
        match tokio::time::timeout(TRICKLE, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Ended { closed: true, sent },
            Ok(Ok(n)) => sent.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if stream.write_all(&[byte]).await.is_err() {
            return Ended { closed: true, sent };
        }
    }
    Ended {
        closed: false,
        sent,
    }
}

#[tokio::test]
async fn slowloris_connections_are_closed_and_supported_keeps_answering() {
    let h = ExactHarness::start().await;
    let server = start_limited(&h, "header_read_timeout_ms = 2000");
    let addr = addr(&server);
    // 500 clients that never finish their headers: one more byte of a header value every 100 ms.
    let mut slow = tokio::task::JoinSet::new();
    for _ in 0..500 {
        let addr = addr.clone();
        slow.spawn(async move {
            let head = format!("POST /verify HTTP/1.1\r\nHost: {addr}\r\nX-Slow: a");
            trickle(&addr, head.as_bytes(), b'a').await
        });
    }
    // Let every slow client connect and start trickling.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for path in ["/supported", "/health"] {
        let (status, body) = tokio::time::timeout(wait::HANG_GUARD, get(&server.url, path))
            .await
            .unwrap_or_else(|_| panic!("{path} did not answer while 500 slow clients were open"));
        assert_eq!(status, 200, "{path}: {body}");
        if path == "/supported" {
            assert!(body.contains("\"kinds\""), "{body}");
        }
    }
    let mut closed = 0;
    while let Some(ended) = slow.join_next().await {
        let ended = ended.unwrap();
        assert!(
            ended.closed,
            "a slow client's connection was never closed: {ended:?}"
        );
        // No request was read, so none was answered.
        assert!(
            !String::from_utf8_lossy(&ended.sent).contains("HTTP/1.1 2"),
            "{:?}",
            String::from_utf8_lossy(&ended.sent)
        );
        closed += 1;
    }
    assert_eq!(closed, 500);
    // The server is still up and serving.
    assert_eq!(get(&server.url, "/health").await.0, 200);
}

#[tokio::test]
async fn a_trickled_body_is_cut_off_without_a_verdict() {
    let h = ExactHarness::start().await;
    let server = start_limited(&h, "body_read_timeout_ms = 2000");
    let addr = addr(&server);
    let signer = h.bed.facilitator().address;
    let nonce = h.nonce_of(signer, true).await;
    for path in ["/verify", "/settle"] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: 1000\r\n\r\n{{"
        );
        let ended = trickle(&addr, head.as_bytes(), b' ').await;
        assert!(
            ended.closed,
            "{path}: the connection stayed open: {ended:?}"
        );
        let answer = String::from_utf8_lossy(&ended.sent);
        // The request fails as a request: 408, no verdict, no 5xx.
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(
            !answer.contains("isValid") && !answer.contains("success"),
            "{answer}"
        );
    }
    assert_eq!(h.nonce_of(signer, true).await, nonce, "something was sent");
    let (_, metrics) = get(&server.url, "/metrics").await;
    for route in ["verify", "settle"] {
        let needle =
            format!(r#"x402_limit_refusals_total{{route="{route}",cause="body_timeout"}} 1"#);
        assert!(metrics.contains(&needle), "missing {needle}\n{metrics}");
    }
}

/// Sends a GET on `stream` and reads its answer (which has a Content-Length) whole.
async fn get_on(stream: &mut TcpStream, path: &str) -> String {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    read_answer(stream).await
}

async fn read_answer(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_some_and(|n| body.len() >= n) {
                return text;
            }
        }
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before a whole answer: {text:?}");
        answer.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let h = ExactHarness::start().await;
    // Idle connections stay open for the length of the test.
    let server = start_limited(&h, "max_connections = 4\nheader_read_timeout_ms = 120000");
    let addr = addr(&server);
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        let answer = get_on(&mut stream, "/health").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        held.push(stream);
    }
    // The fifth connects (the kernel's backlog takes it) but is not served while four are open.
    let mut fifth = TcpStream::connect(&addr).await.unwrap();
    fifth
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_secs(2), fifth.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "served beyond max_connections: {early:?} {:?}",
        String::from_utf8_lossy(&buf)
    );
    // One closes: the fifth is served.
    drop(held.pop());
    let answer = tokio::time::timeout(wait::HANG_GUARD, read_answer(&mut fifth))
        .await
        .expect("the waiting connection is served once a place is free");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The held connections still work, and the server keeps running and counting.
    for stream in &mut held {
        let answer = get_on(stream, "/health").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let metrics = get_on(&mut fifth, "/metrics").await;
    assert!(
        metrics.contains("x402_http_connections 4"),
        "three held, and this one: {metrics}"
    );
    drop(held);
    drop(fifth);
    wait::until("a new connection is served", wait::HANG_GUARD, || async {
        get(&server.url, "/health").await.0 == 200
    })
    .await;
}
