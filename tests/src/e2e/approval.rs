//! A bed for `erc20ApprovalGasSponsoring`: the EVM bed with a token without EIP-2612
//! (`contracts/test/PlainToken.sol`), our facilitator (exact and upto in that token) sponsoring
//! approvals, and a seller whose Permit2 routes declare the extension: `/exact` (only
//! `erc20ApprovalGasSponsoring`), `/exact-both` (also `eip2612GasSponsoring`, which the token
//! cannot serve), `/upto` (charging [`UPTO_USED_UNITS`]), `/unsponsored`.

use std::sync::Arc;

use alloy::network::TransactionBuilder as _;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolConstructor;
use axum::Extension;
use axum::routing::get;
use x402_buyer::{Buyer, KnownAsset, Policy};
use x402_core::client::FacilitatorClient;
use x402_core::{
    Amount, BuyerRole as _, FacilitatorRole as _, LocalFacilitator, Price, Registry,
    SellerRole as _, X402Version,
};
use x402_evm::assets::{AssetInfo, AssetTable, TransferMethod};
use x402_evm::facilitator::{Erc20Sponsor, Erc20SponsorConfig};
use x402_evm::sponsor::{
    EIP2612_GAS_SPONSORING, ERC20_APPROVAL_GAS_SPONSORING, eip2612_declaration,
};
use x402_seller::{Accept, Charge, RawExtension, Route, Seller};

use super::shop::{Counting, EXACT_UNITS, UPTO_MAX_UNITS, UPTO_USED_UNITS};
use crate::evm::PERMIT2_ADDRESS;
use crate::evm::exact::ExactHarness;
use crate::tools;

alloy::sol! {
    /// `contracts/test/PlainToken.sol`.
    #[sol(rpc)]
    #[allow(missing_docs)]
    contract PlainToken {
        constructor(string name_, string symbol_);
        function mint(address to, uint256 value) external;
        function balanceOf(address who) external view returns (uint256);
        function allowance(address owner, address spender) external view returns (uint256);
        function approve(address spender, uint256 value) external returns (bool);
    }
}

/// The token's `name()`.
pub const TOKEN_NAME: &str = "Plain Token";

/// The bed, the plain token, our facilitator with the sponsor, and a seller.
#[derive(Debug)]
pub struct ApprovalBed {
    /// The chain and the facilitator's signers and store.
    pub h: ExactHarness,
    /// The plain token.
    pub token: Address,
    /// The facilitator's sponsor (its counters).
    pub sponsor: Arc<Erc20Sponsor>,
    /// The facilitator's base URL.
    pub facilitator_url: String,
    /// The seller's base URL.
    pub url: String,
}

/// Deploys the plain token from the deployer.
async fn deploy_token(h: &ExactHarness) -> Address {
    let artifact = tools::read_json(&tools::contracts_dir(), "PlainToken.json");
    let code = artifact["bytecode"].as_str().expect("bytecode");
    let mut code = alloy::hex::decode(code.trim_start_matches("0x")).expect("hex");
    code.extend(
        PlainToken::constructorCall {
            name_: TOKEN_NAME.into(),
            symbol_: "PLAIN".into(),
        }
        .abi_encode(),
    );
    let tx = TransactionRequest::default()
        .with_from(h.bed.deployer().address)
        .with_deploy_code(Bytes::from(code));
    h.bed
        .send(tx, "deploy PlainToken")
        .await
        .contract_address
        .expect("a contract")
}

/// Our facilitator (exact and upto v2 on the bed's network, in `token` only) sponsoring with
/// `sponsor` (listing `erc20ApprovalGasSponsoring` in `/supported`), or not sponsoring at all,
/// over HTTP; returns its base URL.
pub async fn serve_sponsoring(
    h: &ExactHarness,
    token: Address,
    sponsor: Option<Arc<Erc20Sponsor>>,
) -> String {
    let exact = scheme_exact_evm::Facilitator::new(
        h.network.clone(),
        h.bed.provider(),
        h.pool.clone(),
        h.store.clone(),
        scheme_exact_evm::Policy {
            assets: Some(vec![token]),
            ..scheme_exact_evm::Policy::default()
        },
    )
    .expect("setup");
    let upto = scheme_upto_evm::Facilitator::new(
        h.network.clone(),
        h.bed.provider(),
        h.pool.clone(),
        h.store.clone(),
        scheme_upto_evm::Policy {
            assets: Some(vec![token]),
            ..scheme_upto_evm::Policy::default()
        },
    )
    .expect("setup");
    let (exact, upto) = match &sponsor {
        Some(s) => (
            exact.with_erc20_sponsor(s.clone()),
            upto.with_erc20_sponsor(s.clone()),
        ),
        None => (exact, upto),
    };
    let mut registry = Registry::new();
    registry
        .register(h.network.as_str(), &[X402Version::V2], exact.into_scheme())
        .expect("setup");
    registry
        .register(h.network.as_str(), &[X402Version::V2], upto.into_scheme())
        .expect("setup");
    let mut facilitator = LocalFacilitator::new(registry);
    if sponsor.is_some() {
        facilitator =
            facilitator.with_extension(Arc::new(x402_evm::facilitator::Erc20ApprovalGasSponsoring));
    }
    super::serve_facilitator(facilitator).await
}

/// Sponsoring with gas funding on, the default caps.
pub fn funding() -> Erc20SponsorConfig {
    Erc20SponsorConfig {
        fund_gas: true,
        ..Erc20SponsorConfig::default()
    }
}

impl ApprovalBed {
    /// Starts everything.
    pub async fn start() -> Self {
        let h = ExactHarness::start().await;
        let token = deploy_token(&h).await;
        let sponsor = Arc::new(Erc20Sponsor::new(funding()));
        let facilitator_url = serve_sponsoring(&h, token, Some(sponsor.clone())).await;
        let url = seller(&h, token, &facilitator_url).await;
        Self {
            h,
            token,
            sponsor,
            facilitator_url,
            url,
        }
    }

    /// The bed's provider.
    pub fn provider(&self) -> DynProvider {
        self.h.bed.provider()
    }

    /// The token on the bed's provider.
    pub fn contract(&self) -> PlainToken::PlainTokenInstance<DynProvider> {
        PlainToken::new(self.token, self.provider())
    }

    /// The token balance of `who`.
    pub async fn balance(&self, who: Address) -> U256 {
        self.contract().balanceOf(who).call().await.expect("setup")
    }

    /// `who`'s allowance to Permit2.
    pub async fn allowance(&self, who: Address) -> U256 {
        self.contract()
            .allowance(who, PERMIT2_ADDRESS)
            .call()
            .await
            .expect("setup")
    }

    /// The ether of `who`.
    pub async fn eth(&self, who: Address) -> U256 {
        self.provider().get_balance(who).await.expect("setup")
    }

    /// The pending transaction count of `who`.
    pub async fn nonce(&self, who: Address) -> u64 {
        self.provider()
            .get_transaction_count(who)
            .pending()
            .await
            .expect("setup")
    }

    /// A fresh wallet holding `units` of the token and no ETH.
    pub async fn fresh_wallet(&self, units: u64) -> PrivateKeySigner {
        let wallet = PrivateKeySigner::random();
        let tx = self
            .contract()
            .mint(wallet.address(), U256::from(units))
            .into_transaction_request()
            .from(self.h.bed.deployer().address);
        self.h.bed.send(tx, "mint").await;
        wallet
    }

    /// A buyer reading the chain (so it can sign approvals), paying in the plain token.
    pub fn buyer(&self, wallet: &PrivateKeySigner) -> Buyer {
        let signer = Arc::new(wallet.clone());
        let (chain_id, provider) = (self.h.bed.chain_id(), self.provider());
        let mut schemes = Registry::new();
        schemes
            .register(
                scheme_exact_evm::ANY_NETWORK,
                scheme_exact_evm::VERSIONS,
                scheme_exact_evm::Buyer::new(signer.clone())
                    .with_rpc(chain_id, provider.clone())
                    .into_scheme(),
            )
            .expect("setup");
        schemes
            .register(
                scheme_upto_evm::ANY_NETWORK,
                scheme_upto_evm::VERSIONS,
                scheme_upto_evm::Buyer::new(signer)
                    .with_rpc(chain_id, provider)
                    .into_scheme(),
            )
            .expect("setup");
        let mut policy = Policy::default();
        policy.assets.push(KnownAsset {
            network: self.h.network.clone(),
            address: self.token.to_checksum(None),
            decimals: 6,
            symbol: "PLAIN".into(),
        });
        Buyer::new(reqwest::Client::new(), schemes, policy)
    }
}

/// The seller (see the module's routes), over HTTP; returns its base URL.
async fn seller(h: &ExactHarness, token: Address, facilitator_url: &str) -> String {
    let info = |method| AssetInfo {
        address: token,
        name: TOKEN_NAME.into(),
        version: "1".into(),
        decimals: 6,
        method,
    };
    let (mut exact_assets, mut upto_assets) = (AssetTable::empty(), AssetTable::empty());
    exact_assets.insert(h.network.clone(), info(TransferMethod::Permit2));
    upto_assets.insert(h.network.clone(), info(TransferMethod::Permit2));
    let mut schemes = Registry::new();
    schemes
        .register(
            scheme_exact_evm::ANY_NETWORK,
            scheme_exact_evm::VERSIONS,
            scheme_exact_evm::Seller::new(exact_assets).into_scheme(),
        )
        .expect("setup");
    schemes
        .register(
            scheme_upto_evm::ANY_NETWORK,
            scheme_upto_evm::VERSIONS,
            scheme_upto_evm::Seller::new(upto_assets).into_scheme(),
        )
        .expect("setup");
    let client = Arc::new(Counting::new(Arc::new(FacilitatorClient::new(
        facilitator_url.to_owned(),
    ))));
    let seller = Seller::new(client, schemes);
    let pay_to = h.bed.seller().address.to_checksum(None);
    let accept = |scheme: &str, units: u64| {
        Accept::new(
            scheme,
            h.network.clone(),
            pay_to.clone(),
            Price::Atomic(Amount::from(units)),
        )
        .max_timeout_seconds(120)
    };
    let approval = || {
        RawExtension::new(
            ERC20_APPROVAL_GAS_SPONSORING,
            x402_evm::sponsor::erc20::erc20_declaration(),
        )
    };
    let paywall = |route: Route| seller.paywall(route).expect("paywall");
    let router = axum::Router::new()
        .route(
            "/exact",
            get(|| async { "exact, approval sponsored" }).layer(paywall(
                Route::new()
                    .accept(accept("exact", EXACT_UNITS))
                    .extension(approval()),
            )),
        )
        .route(
            "/exact-both",
            get(|| async { "exact, approval sponsored" }).layer(paywall(
                Route::new()
                    .accept(accept("exact", EXACT_UNITS))
                    .extension(RawExtension::new(
                        EIP2612_GAS_SPONSORING,
                        eip2612_declaration(),
                    ))
                    .extension(approval()),
            )),
        )
        .route(
            "/upto",
            get(|| async {
                (
                    Extension(Charge(Amount::from(UPTO_USED_UNITS))),
                    "upto, approval sponsored",
                )
            })
            .layer(paywall(
                Route::new()
                    .accept(accept("upto", UPTO_MAX_UNITS))
                    .extension(approval()),
            )),
        )
        .route(
            "/unsponsored",
            get(|| async { "never" })
                .layer(paywall(Route::new().accept(accept("exact", EXACT_UNITS)))),
        );
    super::serve(router).await
}
