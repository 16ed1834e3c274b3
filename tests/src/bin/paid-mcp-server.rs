//! `paid-mcp-server`: an example MCP server with paid tools (x402 over MCP, `x402-mcp`), over
//! stdio (the default) or streamable HTTP (`--http 127.0.0.1:8402`, endpoint `/mcp`).
//!
//! Tools: `joke` (paid), `fail` (paid, always fails: never charged), `priced` (paid, its price
//! the `units` argument in atomic units), `free`. Payments: `exact` on an EVM network or on
//! Solana, verified and settled by the facilitator at `$X402_FACILITATOR_URL`.
//!
//! Environment:
//! * `X402_FACILITATOR_URL` (required): the facilitator's base URL.
//! * `X402_PAY_TO` (required): the recipient address (a Solana address on Solana).
//! * `X402_NETWORK`: the CAIP-2 network (default `eip155:84532`, Base Sepolia; a `solana:…`
//!   network sells on Solana, the fee payer named by the facilitator).
//! * `X402_PRICE`: the price of `joke` and `fail` in the asset's units (default `0.01`).
//! * `X402_ASSET`: a token instead of the network's default USDC: on EVM its address, with
//!   `X402_ASSET_NAME` / `X402_ASSET_VERSION` (its EIP-712 domain; default `USD Coin` / `2`); on
//!   Solana its mint (SPL Token or Token-2022). `X402_ASSET_DECIMALS` (default 6) in both.
//!
//! Over stdio, stdout carries the protocol only; logs go to stderr. Over HTTP it prints
//! `listening on http://ADDR/mcp` once ready.

#![allow(clippy::print_stdout)] // the HTTP mode prints its URL

use std::sync::Arc;

use rmcp::ServiceExt as _;
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use x402_core::client::FacilitatorClient;
use x402_core::{Amount, Network, Price, Registry, SellerRole as _};
use x402_evm::assets::{AssetInfo, AssetTable, TransferMethod};
use x402_mcp::{PaidService, PaidTools, ToolCall};
use x402_seller::{Accept, Route, Seller};
use x402_tests::mcp::JokeTools;

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn var(name: &str) -> Result<Option<String>, Failure> {
    match std::env::var(name) {
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => Err(format!("{name}: {e}").into()),
    }
}

fn required(name: &str) -> Result<String, Failure> {
    var(name)?.ok_or_else(|| format!("{name} must be set").into())
}

fn decimals() -> Result<u8, Failure> {
    Ok(var("X402_ASSET_DECIMALS")?
        .map(|d| d.parse())
        .transpose()
        .map_err(|e| format!("X402_ASSET_DECIMALS: {e}"))?
        .unwrap_or(6))
}

/// The seller: `exact` on `network` in the default or the configured asset.
fn seller(network: &Network) -> Result<Seller, Failure> {
    let facilitator = FacilitatorClient::new(required("X402_FACILITATOR_URL")?);
    let mut schemes = Registry::new();
    if network.namespace() == "solana" {
        let mut svm = scheme_exact_svm::Seller::new();
        if let Some(mint) = var("X402_ASSET")? {
            let mint = mint.parse().map_err(|e| format!("X402_ASSET: {e}"))?;
            svm = svm.with_mint_decimals(mint, decimals()?);
        }
        schemes.register(
            scheme_exact_svm::ANY_NETWORK,
            scheme_exact_svm::VERSIONS,
            svm.into_scheme(),
        )?;
        return Ok(Seller::new(Arc::new(facilitator), schemes));
    }
    let assets = match var("X402_ASSET")? {
        None => AssetTable::builtin(),
        Some(address) => {
            let mut table = AssetTable::empty();
            table.insert(
                network.clone(),
                AssetInfo {
                    address: address.parse().map_err(|e| format!("X402_ASSET: {e}"))?,
                    name: var("X402_ASSET_NAME")?.unwrap_or_else(|| "USD Coin".into()),
                    version: var("X402_ASSET_VERSION")?.unwrap_or_else(|| "2".into()),
                    decimals: decimals()?,
                    method: TransferMethod::Eip3009,
                },
            );
            table
        }
    };
    schemes.register(
        scheme_exact_evm::ANY_NETWORK,
        scheme_exact_evm::VERSIONS,
        scheme_exact_evm::Seller::new(assets).into_scheme(),
    )?;
    Ok(Seller::new(Arc::new(facilitator), schemes))
}

fn paid_tools() -> Result<PaidTools, Failure> {
    let network: Network = var("X402_NETWORK")?
        .unwrap_or_else(|| "eip155:84532".into())
        .parse()
        .map_err(|e| format!("X402_NETWORK: {e}"))?;
    let pay_to = required("X402_PAY_TO")?;
    let price = Price::Decimal(var("X402_PRICE")?.unwrap_or_else(|| "0.01".into()));
    let seller = seller(&network)?;
    // On Solana the mint is named in each offer (the EVM seller's asset table names its token).
    let mint = match network.namespace() {
        "solana" => var("X402_ASSET")?,
        _ => None,
    };
    let with_mint = |accept: Accept| match &mint {
        Some(mint) => accept.asset(mint.clone()),
        None => accept,
    };
    let fixed = || {
        with_mint(Accept::new(
            "exact",
            network.clone(),
            pay_to.clone(),
            price.clone(),
        ))
        .max_timeout_seconds(120)
    };
    let priced = with_mint(Accept::dynamic(
        "exact",
        network.clone(),
        pay_to.clone(),
        |parts| {
            let units = ToolCall::of(parts)
                .and_then(|call| call.arguments.get("units")?.as_u64())
                .ok_or("the argument units must be a whole number")?;
            Ok(Price::Atomic(Amount::from(units)))
        },
    ))
    .max_timeout_seconds(120);
    Ok(PaidTools::new()
        .tool(
            "joke",
            &seller,
            Route::new().description("a paid joke").accept(fixed()),
        )?
        .tool(
            "fail",
            &seller,
            Route::new().description("always fails").accept(fixed()),
        )?
        .tool(
            "priced",
            &seller,
            Route::new().description("priced per call").accept(priced),
        )?)
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let tools = Arc::new(JokeTools::default());
    let paid = Arc::new(paid_tools()?);
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            let running = PaidService::shared(tools, paid)
                .serve(rmcp::transport::stdio())
                .await?;
            running.waiting().await?;
        }
        [flag, addr] if flag == "--http" => {
            let service = StreamableHttpService::new(
                move || Ok(PaidService::shared(tools.clone(), paid.clone())),
                Arc::new(LocalSessionManager::default()),
                StreamableHttpServerConfig::default(),
            );
            let listener = tokio::net::TcpListener::bind(addr).await?;
            println!("listening on http://{}/mcp", listener.local_addr()?);
            let router = axum::Router::new().nest_service("/mcp", service);
            axum::serve(listener, router).await?;
        }
        _ => return Err("usage: paid-mcp-server [--http ADDR]".into()),
    }
    Ok(())
}
