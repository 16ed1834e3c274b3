//! `x402 discover <url>`: what a facilitator's discovery catalogue (the bazaar's
//! `GET /discovery/resources`) or an origin's manifest (`/.well-known/x402.json`, else
//! `/.well-known/x402`) lists for sale — resource, type, price, network, description — as a
//! table, or the served JSON document with `--json`.
//!
//! Which one: `--manifest` or `--facilitator` say it; otherwise a URL whose path is a manifest
//! path is read as a manifest, a bare origin (no path) is asked for its manifest first and read
//! as a facilitator when it has none (404), and any other URL is a facilitator.

use std::io::Write;

use x402_core::Registry;
use x402_core::client::{FacilitatorClient, ListResources};
use x402_core::wire::DiscoveryResponse;

use super::args::{Args, parse_asset};
use super::{Exit, io};
use crate::{Buyer, KnownAsset};

/// `discover`'s help epilogue.
pub(super) const AFTER_HELP: &str = "\
Exit status:
  0  success: the page printed (possibly empty)
  1  failure: network error, no discovery on that facilitator, no manifest at that origin
     (with --manifest or a manifest URL), unreadable answer
  2  usage error";

/// `x402 discover`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct DiscoverArgs {
    /// The facilitator's base URL (`https://facilitator.example`), or an origin
    /// (`https://shop.example`) whose `/.well-known/x402` manifest to read.
    pub(super) url: String,
    /// Read the URL's origin manifest (`/.well-known/x402.json`, else `/.well-known/x402`).
    #[arg(long, conflicts_with = "facilitator")]
    manifest: bool,
    /// Read the URL as a facilitator's discovery catalogue (`/discovery/resources`) only.
    #[arg(long)]
    facilitator: bool,
    /// Only resources of this type (`http`, `mcp`).
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<String>,
    /// Only resources paid on this network (CAIP-2).
    #[arg(long)]
    network: Option<String>,
    /// Only resources paid with this scheme (`exact`, `upto`).
    #[arg(long)]
    scheme: Option<String>,
    /// Only resources paying this recipient.
    #[arg(long = "pay-to", value_name = "ADDRESS")]
    pay_to: Option<String>,
    /// Page size, 1 to 100 [facilitator default: 20].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    limit: Option<u32>,
    /// Items to skip [default: 0].
    #[arg(long)]
    offset: Option<u32>,
    /// An asset to show prices of, with its decimals (NETWORK is CAIP-2); repeatable. Each EVM
    /// network's default stablecoin is built in.
    #[arg(long = "asset", value_name = "NETWORK:ADDRESS:DECIMALS[:SYMBOL]", value_parser = parse_asset)]
    pub(super) assets: Vec<KnownAsset>,
    /// Print the facilitator's answer as JSON on stdout.
    #[arg(long)]
    pub(super) json: bool,
}

/// One line per (resource, payment option): `resource  type  price  network  description`.
pub(super) fn table(buyer: &Buyer, list: &DiscoveryResponse) -> String {
    let mut rows = vec![[
        "RESOURCE".to_owned(),
        "TYPE".to_owned(),
        "PRICE".to_owned(),
        "NETWORK".to_owned(),
        "DESCRIPTION".to_owned(),
    ]];
    for item in &list.items {
        let description = item
            .description
            .clone()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(80)
            .collect::<String>();
        let accepts = item.accepts().unwrap_or_default();
        if accepts.is_empty() {
            rows.push([
                item.resource.clone(),
                item.kind.clone(),
                "?".to_owned(),
                "?".to_owned(),
                description.clone(),
            ]);
        }
        for r in accepts {
            rows.push([
                item.resource.clone(),
                item.kind.clone(),
                format!("{} ({})", buyer.display(&r), r.scheme()),
                r.network_text().to_owned(),
                description.clone(),
            ]);
        }
    }
    let mut widths = [0usize; 5];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    let p = list.pagination;
    out.push_str(&format!(
        "{} of {} resource(s) (offset {}, limit {})\n",
        list.items.len(),
        p.total,
        p.offset,
        p.limit
    ));
    out
}

/// Runs `x402 discover`.
pub(super) async fn run(
    args: &Args,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Exit, String> {
    let Some(d) = &args.discover else {
        return Err("discover: no arguments".to_owned());
    };
    if !d.facilitator {
        let url = reqwest::Url::parse(&d.url).map_err(|e| format!("{}: {e}", d.url))?;
        let bare = matches!(url.path(), "" | "/") && url.query().is_none();
        let candidates: Vec<reqwest::Url> = if super::manifest::is_manifest_url(&url) {
            vec![url.clone()]
        } else if d.manifest || bare {
            super::manifest::PATHS
                .iter()
                .filter_map(|p| url.join(p).ok())
                .collect()
        } else {
            Vec::new()
        };
        if !candidates.is_empty() && (!url.username().is_empty() || url.password().is_some()) {
            return Err("a manifest URL must not carry user information".to_owned());
        }
        for candidate in &candidates {
            writeln!(err, "GET {candidate}").map_err(io)?;
            if let super::manifest::Fetched::Found(text) = super::manifest::fetch(candidate).await?
            {
                super::manifest::print(&text, &args.policy, args.json, out)?;
                return Ok(Exit::Success);
            }
        }
        if d.manifest || super::manifest::is_manifest_url(&url) {
            return Err(format!("{}: no x402 origin manifest (404)", d.url));
        }
    }
    let client = FacilitatorClient::new(d.url.trim_end_matches('/'));
    let params = ListResources {
        kind: d.kind.clone(),
        network: d.network.clone(),
        scheme: d.scheme.clone(),
        pay_to: d.pay_to.clone(),
        limit: d.limit,
        offset: d.offset,
    };
    writeln!(
        err,
        "GET {}/discovery/resources{}",
        client.base_url(),
        params.query_string()
    )
    .map_err(io)?;
    let list = client
        .list_resources(&params)
        .await
        .map_err(|e| format!("discovery: {e}"))?;
    if args.json {
        let json = serde_json::to_string(&list).map_err(|e| e.to_string())?;
        writeln!(out, "{json}").map_err(io)?;
    } else {
        let buyer = Buyer::new(reqwest::Client::new(), Registry::new(), args.policy.clone());
        write!(out, "{}", table(&buyer, &list)).map_err(io)?;
    }
    Ok(Exit::Success)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::super::run as cli;
    use super::*;

    const LIST: &str = r#"{"x402Version":2,"items":[{"resource":"https://shop.example/users/:id","type":"http","x402Version":2,"accepts":[{"scheme":"exact","network":"eip155:8453","amount":"10000","asset":"0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913","payTo":"0xB0B","maxTimeoutSeconds":60}],"lastUpdated":"2025-02-27T16:01:29.000Z","description":"A user\u0007 profile"}],"pagination":{"limit":5,"offset":0,"total":7}}"#;

    /// Answers one request with `status` and `body`, handing back the request line.
    async fn serve_once(
        status: &'static str,
        body: &'static str,
    ) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let n = socket.read(&mut buf).await.unwrap();
            let request = String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()
                .unwrap()
                .to_owned();
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
            request
        });
        (url, task)
    }

    async fn discover(args: &[&str]) -> (Exit, String, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let exit = cli(&args, &|_| None, &mut out, &mut err).await;
        (
            exit,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[tokio::test]
    async fn prints_what_is_for_sale_as_a_table_or_json() {
        let (url, server) = serve_once("200 OK", LIST).await;
        let (exit, out, err) = discover(&[
            "discover",
            &url,
            "--facilitator",
            "--limit",
            "5",
            "--network",
            "eip155:8453",
        ])
        .await;
        assert_eq!(exit, Exit::Success, "{err}");
        let request = server.await.unwrap();
        assert_eq!(
            request,
            "GET /discovery/resources?network=eip155%3A8453&limit=5 HTTP/1.1"
        );
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("RESOURCE"), "{out}");
        assert!(lines[1].contains("https://shop.example/users/:id"), "{out}");
        assert!(lines[1].contains("0.01 USDC (exact)"), "{out}");
        assert!(lines[1].contains("eip155:8453"), "{out}");
        assert!(
            lines[1].contains("A user profile"),
            "control characters are dropped: {out}"
        );
        assert_eq!(lines[2], "1 of 7 resource(s) (offset 0, limit 5)");

        let (url, server) = serve_once("200 OK", LIST).await;
        let (exit, out, _) = discover(&["discover", &url, "--facilitator", "--json"]).await;
        assert_eq!(exit, Exit::Success);
        assert_eq!(server.await.unwrap(), "GET /discovery/resources HTTP/1.1");
        let printed: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(
            printed,
            serde_json::from_str::<serde_json::Value>(LIST).unwrap()
        );
    }

    #[tokio::test]
    async fn a_facilitator_without_discovery_is_a_failure() {
        let (url, _server) = serve_once(
            "404 Not Found",
            r#"{"error":"discovery is not enabled on this facilitator"}"#,
        )
        .await;
        let (exit, out, err) = discover(&["discover", &url, "--facilitator"]).await;
        assert_eq!(exit, Exit::Failure);
        assert!(out.is_empty());
        assert!(err.contains("404"), "{err}");
        let (exit, _, _) = discover(&["discover", "http://127.0.0.1:1", "--limit", "0"]).await;
        assert_eq!(exit, Exit::Usage);
    }

    const MANIFEST: &str = r#"{"x402Version":2,"lastUpdated":1781555511,"items":[{"resource":{"url":"https://shop.example/users/:id","description":"A user profile"},"type":"http","accepts":[{"scheme":"exact","network":"eip155:8453","amount":"10000","asset":"0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913","payTo":"0xB0B","maxTimeoutSeconds":60}],"input":{"method":"GET","routeTemplate":"/users/:id"}}]}"#;

    /// Answers `n` requests: the body of the first path in `answers` the request line names
    /// (404 for none); hands back the request lines.
    async fn serve_paths(
        n: usize,
        answers: &'static [(&'static str, &'static str)],
    ) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut lines = Vec::new();
            for _ in 0..n {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 8192];
                let read = socket.read(&mut buf).await.unwrap();
                let line = String::from_utf8_lossy(&buf[..read])
                    .lines()
                    .next()
                    .unwrap()
                    .to_owned();
                let found = answers
                    .iter()
                    .find(|(path, _)| line.split(' ').nth(1) == Some(*path));
                let (status, body) = match found {
                    Some((_, body)) => ("200 OK", *body),
                    None => ("404 Not Found", "{}"),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(response.as_bytes()).await.unwrap();
                lines.push(line);
            }
            lines
        });
        (url, task)
    }

    #[tokio::test]
    async fn an_origin_is_asked_for_its_manifest_first() {
        let (url, server) = serve_paths(1, &[("/.well-known/x402.json", MANIFEST)]).await;
        let (exit, out, err) = discover(&["discover", &url]).await;
        assert_eq!(exit, Exit::Success, "{err}");
        assert_eq!(
            server.await.unwrap(),
            ["GET /.well-known/x402.json HTTP/1.1"]
        );
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[1].starts_with("GET https://shop.example/users/:id"),
            "{out}"
        );
        assert!(lines[1].contains("0.01 USDC (exact)"), "{out}");
        assert_eq!(lines[2], "1 resource(s) in the origin manifest");

        // The bare name, then (no manifest at all) the facilitator's catalogue.
        let (url, server) = serve_paths(3, &[("/discovery/resources", LIST)]).await;
        let (exit, out, err) = discover(&["discover", &format!("{url}/")]).await;
        assert_eq!(exit, Exit::Success, "{err}");
        assert_eq!(
            server.await.unwrap(),
            [
                "GET /.well-known/x402.json HTTP/1.1",
                "GET /.well-known/x402 HTTP/1.1",
                "GET /discovery/resources HTTP/1.1"
            ]
        );
        assert!(out.contains("1 of 7 resource(s)"), "{out}");

        // A manifest URL itself, printed as served with --json.
        let (url, server) = serve_paths(1, &[("/.well-known/x402", MANIFEST)]).await;
        let (exit, out, _) =
            discover(&["discover", &format!("{url}/.well-known/x402"), "--json"]).await;
        assert_eq!(exit, Exit::Success);
        assert_eq!(server.await.unwrap().len(), 1);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(out.trim()).unwrap(),
            serde_json::from_str::<serde_json::Value>(MANIFEST).unwrap()
        );
    }

    #[tokio::test]
    async fn a_missing_or_bad_manifest_is_a_failure() {
        let (url, server) = serve_paths(2, &[]).await;
        let (exit, out, err) = discover(&["discover", &url, "--manifest"]).await;
        assert_eq!(exit, Exit::Failure);
        assert!(out.is_empty());
        assert!(err.contains("no x402 origin manifest"), "{err}");
        assert_eq!(server.await.unwrap().len(), 2);
        let (url, _server) = serve_paths(1, &[("/.well-known/x402.json", "[1]")]).await;
        let (exit, _, err) = discover(&["discover", &url]).await;
        assert_eq!(exit, Exit::Failure);
        assert!(err.contains("not an x402 origin manifest"), "{err}");
        let (exit, _, err) =
            discover(&["discover", "http://user:pw@127.0.0.1:1/.well-known/x402"]).await;
        assert_eq!(exit, Exit::Failure);
        assert!(err.contains("user information"), "{err}");
        assert!(!err.contains("pw"), "{err}");
        let (exit, _, _) = discover(&[
            "discover",
            "http://127.0.0.1:1",
            "--manifest",
            "--facilitator",
        ])
        .await;
        assert_eq!(exit, Exit::Usage);
    }
}
