//! `x402 discover <origin>`: an origin's manifest (`/.well-known/x402.json`, else
//! `/.well-known/x402`) — the paid routes it lists and what they ask for — as a table or JSON.

use std::io::Write;

use serde::Deserialize;
use x402_core::Registry;
use x402_core::wire::{PaymentRequirements, PaymentRequirementsV2, ResourceInfo};

use super::io;
use crate::{Buyer, Policy};

/// The largest manifest read.
const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// The paths tried at an origin, in order.
pub(super) const PATHS: [&str; 2] = ["/.well-known/x402.json", "/.well-known/x402"];

/// An origin manifest, as far as the table needs it.
#[derive(Debug, Deserialize)]
struct Manifest {
    #[serde(rename = "x402Version")]
    _version: u32,
    items: Vec<Item>,
}

#[derive(Debug, Deserialize)]
struct Item {
    resource: ResourceInfo,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    accepts: Vec<serde_json::Value>,
    #[serde(default)]
    input: Option<serde_json::Value>,
}

/// Whether `url` names a manifest itself (its path is one of [`PATHS`]).
pub(super) fn is_manifest_url(url: &reqwest::Url) -> bool {
    PATHS.contains(&url.path())
}

/// What fetching one manifest URL gave.
pub(super) enum Fetched {
    /// The manifest's JSON text.
    Found(String),
    /// 404: no manifest there.
    Missing,
}

/// Fetches the manifest at `url`.
pub(super) async fn fetch(url: &reqwest::Url) -> Result<Fetched, String> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a manifest URL must not carry user information".to_owned());
    }
    let mut response = reqwest::Client::new()
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(Fetched::Missing);
    }
    if !response.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?
    {
        if body.len() + chunk.len() > MAX_MANIFEST_BYTES {
            return Err(format!(
                "GET {url}: the manifest is larger than {MAX_MANIFEST_BYTES} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body)
        .map(Fetched::Found)
        .map_err(|_| format!("GET {url}: not UTF-8"))
}

/// The manifest text printed: the document as served with `json`, else a table.
pub(super) fn print(
    text: &str,
    policy: &Policy,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), String> {
    let not = |e: String| format!("not an x402 origin manifest: {e}");
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| not(e.to_string()))?;
    if !value.is_object() {
        return Err(not("not a JSON object".to_owned()));
    }
    let manifest: Manifest = serde_json::from_value(value).map_err(|e| not(e.to_string()))?;
    if json {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        writeln!(out, "{value}").map_err(io)?;
        return Ok(());
    }
    let buyer = Buyer::new(reqwest::Client::new(), Registry::new(), policy.clone());
    let mut rows = vec![[
        "RESOURCE".to_owned(),
        "TYPE".to_owned(),
        "PRICE".to_owned(),
        "NETWORK".to_owned(),
        "DESCRIPTION".to_owned(),
    ]];
    let clean =
        |s: &str, n: usize| -> String { s.chars().filter(|c| !c.is_control()).take(n).collect() };
    for item in &manifest.items {
        let method = item
            .input
            .as_ref()
            .and_then(|i| i.get("method"))
            .and_then(|m| m.as_str())
            .unwrap_or("");
        let resource = clean(format!("{method} {}", item.resource.url).trim(), 200);
        let kind = clean(item.kind.as_deref().unwrap_or("http"), 10);
        let description = clean(item.resource.description.as_deref().unwrap_or(""), 80);
        let accepts: Vec<PaymentRequirementsV2> = item
            .accepts
            .iter()
            .filter_map(|a| serde_json::from_value(a.clone()).ok())
            .collect();
        if accepts.is_empty() {
            rows.push([
                resource.clone(),
                kind.clone(),
                "?".into(),
                "?".into(),
                description.clone(),
            ]);
        }
        for a in accepts {
            let r = PaymentRequirements::V2(a);
            rows.push([
                resource.clone(),
                kind.clone(),
                format!("{} ({})", buyer.display(&r), clean(r.scheme(), 20)),
                clean(r.network_text(), 60),
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
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end()).map_err(io)?;
    }
    writeln!(
        out,
        "{} resource(s) in the origin manifest",
        manifest.items.len()
    )
    .map_err(io)?;
    Ok(())
}
