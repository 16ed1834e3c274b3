//! The server side of HTTP/1.1 that the JSON-RPC test proxies need: one request's body read
//! from a keep-alive connection, one JSON answer written back.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Reads the next request on the connection and returns its body (by `Content-Length`);
/// `None` when the peer closed the connection.
pub async fn read_body<R: AsyncBufRead + Unpin>(read: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    read.read_exact(&mut body).await?;
    Ok(Some(body))
}

/// Writes a JSON answer with `status` (200 or 429) and an optional `Retry-After` in seconds.
pub async fn write_json<W: AsyncWrite + Unpin>(
    write: &mut W,
    status: u16,
    retry_after: Option<u64>,
    body: &[u8],
) -> std::io::Result<()> {
    let reason = if status == 429 {
        "Too Many Requests"
    } else {
        "OK"
    };
    let retry = retry_after.map_or(String::new(), |s| format!("Retry-After: {s}\r\n"));
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{retry}Content-Length: {}\r\n\r\n",
        body.len()
    );
    write.write_all(head.as_bytes()).await?;
    write.write_all(body).await
}
