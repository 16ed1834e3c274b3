//! The HTML paywall a browser gets instead of `{}`: what is for sale, and a small inline script
//! that pays from the browser's wallet — an EIP-1193 provider signing an EIP-3009
//! `TransferWithAuthorization`, a Permit2 witness transfer (`exact` or `upto`, with an EIP-2612
//! permit when the seller sponsors the approval), or a Wallet Standard Solana wallet signing the
//! `exact` transaction the page builds — retries the request with `PAYMENT-SIGNATURE` and shows
//! the paid content or a readable error.
//!
//! The page is self-contained: one inline script and one inline style, both fixed at build time
//! and allowed by their SHA-256 in the page's `Content-Security-Policy`; nothing is fetched at run
//! time but the resource itself, the seller's logo (when configured) and, for a Solana offer, the
//! mint and a recent blockhash from the Solana RPC the seller configured for that network (the
//! policy's `connect-src` names that RPC's origin, on pages offering that network only). Everything the seller or
//! the request contributes is escaped: HTML text through [`escape`], the 402 document through
//! [`json_for_script`] into a non-executed `application/json` script element.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use x402_core::wire::PaymentRequirementsV2;

use crate::offers::Offers;

#[cfg(test)]
mod tests;

/// The page's script, inlined.
const SCRIPT: &str = include_str!("../../assets/paywall.js");
/// The page's style sheet, inlined.
const STYLE: &str = include_str!("../../assets/paywall.css");

/// How a token is shown on the paywall: its ticker and decimals, so that a price reads
/// `0.01 USDC` instead of `10000 atomic units of 0x…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetLabel {
    /// The CAIP-2 network (`eip155:8453`).
    pub network: String,
    /// The token address or mint (EVM addresses compared ignoring ASCII case, others exactly).
    pub asset: String,
    /// The ticker (`USDC`).
    pub symbol: String,
    /// The token's decimals.
    pub decimals: u8,
}

/// The browser paywall's settings (seller-wide, [`crate::SellerOptions::paywall`]): the
/// application's name ([`Self::app_name`]) and logo ([`Self::app_logo`]), a test-network banner
/// ([`Self::testnet`]), token labels for prices ([`Self::asset`]) and the Solana RPC the page
/// reads from for each Solana network ([`Self::solana_rpc`]).
///
/// ```
/// use x402_seller::{PaywallConfig, SellerOptions};
///
/// let options = SellerOptions {
///     paywall: PaywallConfig::new()
///         .app_name("Weather Pro")
///         .app_logo("https://example.com/logo.png")
///         .testnet(true)
///         .asset("eip155:84532", "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "USDC", 6)
///         .solana_rpc(
///             "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
///             "https://api.devnet.solana.com",
///         ),
///     ..SellerOptions::default()
/// };
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaywallConfig {
    pub(crate) app_name: Option<String>,
    pub(crate) app_logo: Option<String>,
    pub(crate) testnet: bool,
    pub(crate) assets: Vec<AssetLabel>,
    pub(crate) solana_rpcs: Vec<(String, String)>,
}

impl PaywallConfig {
    /// The default page: no name, no logo, mainnet wording, prices in atomic units.
    pub fn new() -> Self {
        Self::default()
    }

    /// The application's name, shown as the page's title and heading.
    pub fn app_name(mut self, name: impl Into<String>) -> Self {
        self.app_name = Some(name.into());
        self
    }

    /// The application's logo: an absolute `https://` or `http://` URL (anything else is not
    /// shown). The browser fetches it; it is the only thing the page loads besides the resource.
    pub fn app_logo(mut self, url: impl Into<String>) -> Self {
        self.app_logo = Some(url.into());
        self
    }

    /// Marks the page as a test deployment: a banner says the tokens have no value.
    pub fn testnet(mut self, testnet: bool) -> Self {
        self.testnet = testnet;
        self
    }

    /// Names a token so that its prices show in token units (`0.01 USDC`).
    pub fn asset(
        mut self,
        network: impl Into<String>,
        asset: impl Into<String>,
        symbol: impl Into<String>,
        decimals: u8,
    ) -> Self {
        self.assets.push(AssetLabel {
            network: network.into(),
            asset: asset.into(),
            symbol: symbol.into(),
            decimals,
        });
        self
    }

    /// The Solana JSON-RPC endpoint the page reads from for offers on `network` (a CAIP-2
    /// `solana:…` id): the mint's owner program and decimals (`getAccountInfo`) and a recent
    /// blockhash (`getLatestBlockhash`, commitment `confirmed`), which the transaction it builds
    /// needs. Without one, the page lists that network's offers but cannot pay them.
    ///
    /// The buyer's browser calls it directly (without cookies or referrer), so the URL is
    /// public: it is written into the page, and its origin into the page's
    /// `Content-Security-Policy` `connect-src`. Use an endpoint meant for browsers — a public one
    /// (`https://api.devnet.solana.com`) or a provider key restricted to your site's origin —
    /// never one whose URL holds a secret. It must be on the facilitator's cluster and answer
    /// CORS requests. Only `https://` and `http://` URLs without user information are used;
    /// anything else is ignored. A second call for the same network replaces the first.
    pub fn solana_rpc(mut self, network: impl Into<String>, url: impl Into<String>) -> Self {
        let network = network.into();
        self.solana_rpcs.retain(|(n, _)| *n != network);
        self.solana_rpcs.push((network, url.into()));
        self
    }

    /// The configured RPC of `network` when its URL is usable, with its origin.
    fn solana_rpc_for(&self, network: &str) -> Option<(&str, String)> {
        let (_, url) = self.solana_rpcs.iter().find(|(n, _)| n == network)?;
        Some((url.as_str(), rpc_origin(url)?))
    }

    fn label(&self, r: &PaymentRequirementsV2) -> Option<&AssetLabel> {
        self.assets
            .iter()
            .find(|a| a.network == r.network && same_asset(&r.network, &a.asset, &r.asset))
    }

    fn logo(&self) -> Option<&str> {
        self.app_logo
            .as_deref()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
    }
}

/// Whether two token ids on `network` are the same: EVM addresses ignore ASCII case (checksums),
/// anything else (Solana's base58) is compared exactly.
fn same_asset(network: &str, a: &str, b: &str) -> bool {
    if network.starts_with("eip155:") {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// Escapes `s` for HTML text and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `value` as JSON that is safe inside a `<script type="application/json">` element: `<`, `>`
/// and `&` (which can only occur inside JSON strings) and the line separators U+2028/U+2029 are
/// written as `\u` escapes, so no seller text can close the element or open a comment.
pub(crate) fn json_for_script(value: &impl Serialize) -> String {
    let json = serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned());
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// `atomic` (a decimal integer) divided by 10^`decimals`, without trailing zeros.
pub(crate) fn token_units(atomic: &str, decimals: u8) -> String {
    let decimals = usize::from(decimals);
    let digits = atomic.trim_start_matches('0');
    let padded = format!("{digits:0>width$}", width = decimals + 1);
    let (whole, fraction) = padded.split_at(padded.len() - decimals);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        whole.to_owned()
    } else {
        format!("{whole}.{fraction}")
    }
}

/// The origin (`scheme://host[:port]`) of an `http(s)` URL, when it is plain enough to name in a
/// policy: no user information, only host characters (letters, digits, `.`, `-`, `:`, `[`, `]`).
pub(crate) fn rpc_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    if authority.is_empty() || !authority.chars().all(plain) || url.chars().any(char::is_whitespace)
    {
        return None;
    }
    Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// The `Content-Security-Policy` of a page offering `offers`: the inline script and style by
/// hash, images from the web (the logo, paid images), requests to the seller's own origin and to
/// the configured Solana RPC of each Solana network offered.
pub(crate) fn content_security_policy(config: &PaywallConfig, offers: &Offers) -> String {
    static CSP: OnceLock<(String, String)> = OnceLock::new();
    let (head, tail) = CSP.get_or_init(|| {
        let hash = |s: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s));
        (
            format!(
                "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; \
                 img-src https: http: data: blob:; connect-src 'self'",
                hash(SCRIPT),
                hash(STYLE)
            ),
            "; frame-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
                .to_owned(),
        )
    });
    let mut origins: Vec<String> = solana_rpcs(config, offers)
        .into_iter()
        .map(|(_, (_, origin))| origin)
        .collect();
    origins.sort();
    origins.dedup();
    let mut csp = head.clone();
    for o in origins {
        csp.push(' ');
        csp.push_str(&o);
    }
    csp.push_str(tail);
    csp
}

/// The configured Solana RPCs of the Solana networks `offers` name (v2 offers only: the page
/// pays nothing else).
fn solana_rpcs<'a>(
    config: &'a PaywallConfig,
    offers: &'a Offers,
) -> BTreeMap<&'a str, (&'a str, String)> {
    offers
        .v2
        .iter()
        .filter(|r| r.network.starts_with("solana:"))
        .filter_map(|r| Some((r.network.as_str(), config.solana_rpc_for(&r.network)?)))
        .collect()
}

/// What the script is told (the one JSON island of the page).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PageData<'a> {
    /// The v2 `PaymentRequired` document (as in `PAYMENT-REQUIRED`), `None` when v2 is not
    /// offered (the page then only shows the offers).
    required: Option<x402_core::wire::PaymentRequiredV2>,
    testnet: bool,
    assets: &'a [AssetLabel],
    /// The RPC URL of each Solana network offered (configured and usable).
    solana_rpc: BTreeMap<&'a str, &'a str>,
}

/// The price of `r` as shown: token units when the asset is labelled.
fn price(config: &PaywallConfig, r: &PaymentRequirementsV2) -> String {
    let atomic = r.amount.to_string();
    // an upto offer's amount is the most a request may cost
    let at_most = if r.scheme == "upto" { "at most " } else { "" };
    match config.label(r) {
        Some(l) => format!(
            "{at_most}{} {}",
            token_units(&atomic, l.decimals),
            escape(&l.symbol)
        ),
        None => format!(
            "{at_most}{atomic} atomic units of <code>{}</code>",
            escape(&r.asset)
        ),
    }
}

/// The paywall page for an unpaid browser request.
pub(crate) fn page(config: &PaywallConfig, offers: &Offers, error: &str) -> String {
    let description = offers
        .resource
        .description
        .as_deref()
        .filter(|d| !d.is_empty())
        .unwrap_or("This resource");
    let title = config.app_name.as_deref().unwrap_or("Payment required");
    let mut rows = String::new();
    for r in &offers.v2 {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>\n",
            price(config, r),
            escape(&r.network),
            escape(&r.scheme),
            escape(&r.pay_to),
        ));
    }
    for r in offers.v1.iter().filter(|_| offers.v2.is_empty()) {
        rows.push_str(&format!(
            "<tr><td>{} atomic units of <code>{}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>\n",
            r.max_amount_required,
            escape(&r.asset),
            escape(&r.network),
            escape(&r.scheme),
            escape(&r.pay_to),
        ));
    }
    let logo = config.logo().map_or_else(String::new, |u| {
        format!("<img class=\"logo\" src=\"{}\" alt=\"\">", escape(u))
    });
    let banner = if config.testnet {
        "<p class=\"testnet\">Test network: these tokens have no value.</p>\n"
    } else {
        ""
    };
    let data = PageData {
        required: offers.required_v2(error),
        testnet: config.testnet,
        assets: &config.assets,
        solana_rpc: solana_rpcs(config, offers)
            .into_iter()
            .map(|(network, (url, _))| (network, url))
            .collect(),
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title>\n<style>{STYLE}</style></head>\n<body>\n<main>\n\
<header>{logo}<h1>{title}</h1></header>\n{banner}\
<p class=\"what\">{desc}</p>\n<p class=\"url\"><code>{url}</code></p>\n\
<table>\n<tr><th>price</th><th>network</th><th>scheme</th><th>pay to</th></tr>\n{rows}</table>\n\
<section id=\"pay\"><p>Pay with a browser wallet (this page needs JavaScript) or with an x402 \
client, for example <code>x402 pay {url}</code>.</p></section>\n\
<section id=\"status\" role=\"status\" aria-live=\"polite\"></section>\n\
<section id=\"content\"></section>\n</main>\n\
<script type=\"application/json\" id=\"x402-data\">{data}</script>\n\
<script>{SCRIPT}</script>\n</body></html>\n",
        title = escape(title),
        desc = escape(description),
        url = escape(&offers.resource.url),
        data = json_for_script(&data),
    )
}
