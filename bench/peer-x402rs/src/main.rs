//! x402-rs/x402-rs's facilitator, for x402-bench's three-way comparison.
//!
//! Their published library crates (`x402-facilitator-local`, `x402-chain-eip155`,
//! `x402-chain-solana`, `x402-types`) wired exactly as their own binary wires them
//! (`facilitator/src/{run,chain,config,schemes}.rs` of github.com/x402-rs/x402-rs at 2.0.1, Apache-2.0;
//! the glue below is adapted from it), with the EVM and Solana chain families only. Differences
//! from their binary, all outside the request path:
//!
//! - it prints `listening on http://ADDR` once bound (the benchmark binds port 0 and reads the
//!   port from that line);
//! - no `.env` file is read (the benchmark hands secrets over in the environment, which their
//!   config's `"$VAR"` references read the same way);
//! - built without their `telemetry` feature (OpenTelemetry export and per-request tracing
//!   spans), as our facilitator is benchmarked with logging at `warn`.
//!
//! ```text
//! x402-bench-peer-x402rs --config config.json
//! ```
//!
//! The configuration is their format (`port`, `host`, `chains` keyed by CAIP-2 id, `schemes`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::Method;
use serde::Deserialize;
use tower_http::cors;
use x402_chain_eip155::chain as eip155;
use x402_chain_eip155::chain::config::{Eip155ChainConfig, Eip155ChainConfigInner};
use x402_chain_eip155::{V1Eip155Exact, V2Eip155Exact, V2Eip155Upto};
use x402_chain_solana::chain as solana;
use x402_chain_solana::chain::config::{SolanaChainConfig, SolanaChainConfigInner};
use x402_chain_solana::{V1SolanaExact, V2SolanaExact};
use x402_facilitator_local::util::SigDown;
use x402_facilitator_local::{FacilitatorLocal, handlers};
use x402_types::chain::{ChainId, ChainProviderOps, ChainRegistry, FromConfig};
use x402_types::scheme::{
    SchemeBlueprints, SchemeRegistry, X402SchemeFacilitator, X402SchemeFacilitatorBuilder,
};

type BoxError = Box<dyn std::error::Error>;

// --- config.rs ----------------------------------------------------------------------------------

/// Their server configuration: `x402_types::config::Config` over these chains.
type Config = x402_types::config::Config<ChainsConfig>;

/// One configured chain, by CAIP-2 namespace.
#[derive(Debug, Clone)]
enum ChainConfig {
    Eip155(Box<Eip155ChainConfig>),
    Solana(Box<SolanaChainConfig>),
}

/// The `chains` map of the configuration (CAIP-2 id → chain configuration).
#[derive(Debug, Clone, Default)]
struct ChainsConfig(Vec<ChainConfig>);

impl<'de> Deserialize<'de> for ChainsConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{Error, MapAccess, Visitor};

        struct ChainsVisitor;

        impl<'de> Visitor<'de> for ChainsVisitor {
            type Value = ChainsConfig;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of chain identifiers to chain configurations")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut access: M) -> Result<Self::Value, M::Error> {
                let mut chains = Vec::new();
                while let Some(chain_id) = access.next_key::<ChainId>()? {
                    let config = match chain_id.namespace() {
                        eip155::EIP155_NAMESPACE => {
                            let inner: Eip155ChainConfigInner = access.next_value()?;
                            ChainConfig::Eip155(Box::new(Eip155ChainConfig {
                                chain_reference: chain_id
                                    .try_into()
                                    .map_err(|e| M::Error::custom(format!("{e}")))?,
                                inner,
                            }))
                        }
                        solana::SOLANA_NAMESPACE => {
                            let inner: SolanaChainConfigInner = access.next_value()?;
                            ChainConfig::Solana(Box::new(SolanaChainConfig {
                                chain_reference: chain_id
                                    .try_into()
                                    .map_err(|e| M::Error::custom(format!("{e}")))?,
                                inner,
                            }))
                        }
                        other => {
                            return Err(M::Error::custom(format!("Unexpected namespace: {other}")));
                        }
                    };
                    chains.push(config);
                }
                Ok(ChainsConfig(chains))
            }
        }

        deserializer.deserialize_map(ChainsVisitor)
    }
}

// --- chain.rs -----------------------------------------------------------------------------------

/// A chain provider of either family.
#[derive(Debug, Clone)]
enum ChainProvider {
    Eip155(Arc<eip155::Eip155ChainProvider>),
    Solana(Arc<solana::SolanaChainProvider>),
}

#[async_trait::async_trait]
impl FromConfig<ChainConfig> for ChainProvider {
    async fn from_config(chain: &ChainConfig) -> Result<Self, BoxError> {
        Ok(match chain {
            ChainConfig::Eip155(config) => ChainProvider::Eip155(Arc::new(
                eip155::Eip155ChainProvider::from_config(config).await?,
            )),
            ChainConfig::Solana(config) => ChainProvider::Solana(Arc::new(
                solana::SolanaChainProvider::from_config(config).await?,
            )),
        })
    }
}

impl ChainProviderOps for ChainProvider {
    fn signer_addresses(&self) -> Vec<String> {
        match self {
            ChainProvider::Eip155(p) => p.signer_addresses(),
            ChainProvider::Solana(p) => p.signer_addresses(),
        }
    }

    fn chain_id(&self) -> ChainId {
        match self {
            ChainProvider::Eip155(p) => p.chain_id(),
            ChainProvider::Solana(p) => p.chain_id(),
        }
    }
}

async fn chain_registry(chains: &ChainsConfig) -> Result<ChainRegistry<ChainProvider>, BoxError> {
    let mut providers = HashMap::new();
    for chain in &chains.0 {
        let provider = ChainProvider::from_config(chain).await?;
        providers.insert(provider.chain_id(), provider);
    }
    Ok(ChainRegistry::new(providers))
}

// --- schemes.rs ---------------------------------------------------------------------------------

type Built = Result<Box<dyn X402SchemeFacilitator>, BoxError>;

/// Their scheme builders over the chain-family enum: each takes the provider of its family.
macro_rules! builder {
    ($scheme:ty, $variant:ident) => {
        impl X402SchemeFacilitatorBuilder<&ChainProvider> for $scheme {
            fn build(&self, provider: &ChainProvider, config: Option<serde_json::Value>) -> Built {
                match provider {
                    ChainProvider::$variant(p) => self.build(Arc::clone(p), config),
                    #[allow(unreachable_patterns)]
                    _ => Err(concat!(
                        stringify!($scheme),
                        "::build: provider of another chain family"
                    )
                    .into()),
                }
            }
        }
    };
}

builder!(V1Eip155Exact, Eip155);
builder!(V2Eip155Exact, Eip155);
builder!(V2Eip155Upto, Eip155);
builder!(V1SolanaExact, Solana);
builder!(V2SolanaExact, Solana);

// --- run.rs -------------------------------------------------------------------------------------

async fn run() -> Result<(), BoxError> {
    // Initialize rustls crypto provider (ring), as theirs does.
    rustls::crypto::CryptoProvider::install_default(rustls::crypto::ring::default_provider())
        .map_err(|_| "failed to initialize the rustls crypto provider")?;

    let config = Config::load()?;

    let chain_registry = chain_registry(config.chains()).await?;
    let scheme_blueprints = SchemeBlueprints::new()
        .and_register(V1Eip155Exact)
        .and_register(V2Eip155Exact)
        .and_register(V2Eip155Upto)
        .and_register(V1SolanaExact)
        .and_register(V2SolanaExact);
    let scheme_registry =
        SchemeRegistry::build(chain_registry, scheme_blueprints, config.schemes());

    let facilitator = FacilitatorLocal::new(scheme_registry);
    let axum_state = Arc::new(facilitator);

    let http_endpoints = Router::new()
        .merge(handlers::routes().with_state(axum_state))
        .layer(
            cors::CorsLayer::new()
                .allow_origin(cors::Any)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers(cors::Any),
        );

    let addr = SocketAddr::new(config.host(), config.port());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    // The one line the benchmark waits for.
    println!("listening on http://{}", listener.local_addr()?);

    let sig_down = SigDown::try_new()?;
    let axum_cancellation_token = sig_down.cancellation_token();
    let axum_graceful_shutdown = async move { axum_cancellation_token.cancelled().await };
    axum::serve(listener, http_endpoints)
        .with_graceful_shutdown(axum_graceful_shutdown)
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        println!("{e}");
        std::process::exit(1)
    }
}
