//! The EVM test bed against a real anvil: USDC and Permit2 deployed as tests expect them, EIP-712
//! domains computed in Rust equal to the contracts' own, buyers funded, and anvil gone once its
//! guard drops.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256, address};
use alloy::providers::{DynProvider, Provider};
use x402_tests::anvil::{AnvilConfig, AnvilGuard, DEV_ACCOUNT_0_KEY};
use x402_tests::evm::{
    EvmTestBed, EvmTestBedConfig, PERMIT2_ADDRESS, USDC_DECIMALS, permit2_domain, usdc_domain,
};
use x402_tests::wait;

#[tokio::test]
async fn usdc_metadata_and_domain_separator_match_the_contract() {
    let bed = EvmTestBed::start().await;
    let usdc = bed.usdc_contract();

    let name = usdc.name().call().await.unwrap();
    assert_eq!(name, "USD Coin");
    assert_eq!(usdc.symbol().call().await.unwrap(), "USDC");
    assert_eq!(usdc.currency().call().await.unwrap(), "USD");
    assert_eq!(usdc.version().call().await.unwrap(), "2");
    assert_eq!(usdc.decimals().call().await.unwrap(), 6);
    assert_eq!(USDC_DECIMALS, 6);

    // The domain uses the token's on-chain `name()`; the Rust side must agree with it.
    assert_eq!(bed.usdc_domain().name.as_deref(), Some(name.as_str()));
    let on_chain = usdc.DOMAIN_SEPARATOR().call().await.unwrap();
    assert_eq!(on_chain, bed.usdc_domain().separator());
    assert_eq!(on_chain, usdc_domain(31337, bed.usdc()).separator());
    // A domain for another token address or chain must not match (the check can fail).
    assert_ne!(
        on_chain,
        usdc_domain(31337, bed.signature_checker()).separator()
    );
    assert_ne!(on_chain, usdc_domain(1, bed.usdc()).separator());
}

#[tokio::test]
async fn permit2_sits_at_the_canonical_address_with_the_rust_domain_separator() {
    let bed = EvmTestBed::start().await;
    assert_eq!(bed.permit2(), PERMIT2_ADDRESS);
    assert_eq!(
        PERMIT2_ADDRESS,
        address!("0x000000000022D473030F116dDEE9F6B43aC78BA3")
    );
    let code = bed.provider().get_code_at(PERMIT2_ADDRESS).await.unwrap();
    assert_eq!(code.len(), 9152, "Permit2 runtime size");

    let on_chain = bed
        .permit2_contract()
        .DOMAIN_SEPARATOR()
        .call()
        .await
        .unwrap();
    assert_eq!(on_chain, bed.permit2_domain().separator());
    assert_eq!(on_chain, permit2_domain(31337).separator());
    assert!(bed.permit2_domain().version.is_none());
    assert_ne!(on_chain, permit2_domain(1).separator());
}

#[tokio::test]
async fn a_bed_on_another_chain_id_computes_both_domains_for_it() {
    let chain_id = 84532;
    let bed = EvmTestBed::start_with(EvmTestBedConfig {
        chain_id,
        buyers: 1,
        ..EvmTestBedConfig::default()
    })
    .await;
    assert_eq!(bed.chain_id(), chain_id);
    assert_eq!(bed.caip2(), "eip155:84532");
    assert_eq!(bed.provider().get_chain_id().await.unwrap(), chain_id);

    let usdc_separator = bed.usdc_contract().DOMAIN_SEPARATOR().call().await.unwrap();
    assert_eq!(
        usdc_separator,
        usdc_domain(chain_id, bed.usdc()).separator()
    );
    let permit2_separator = bed
        .permit2_contract()
        .DOMAIN_SEPARATOR()
        .call()
        .await
        .unwrap();
    assert_eq!(permit2_separator, permit2_domain(chain_id).separator());
}

#[tokio::test]
async fn buyers_hold_what_was_minted_and_nobody_else_holds_usdc() {
    let bed = EvmTestBed::start().await;
    let minted = U256::from(1_000_000u64) * U256::from(10u64).pow(U256::from(USDC_DECIMALS));
    assert_eq!(bed.buyer_usdc(), minted);
    assert_eq!(bed.buyers().len(), 5);

    for buyer in bed.buyers() {
        assert_eq!(
            bed.usdc_balance(buyer.address).await,
            minted,
            "buyer #{}",
            buyer.index
        );
    }
    for other in [bed.deployer(), bed.facilitator(), bed.seller()]
        .into_iter()
        .chain(bed.spare_accounts())
    {
        assert_eq!(
            bed.usdc_balance(other.address).await,
            U256::ZERO,
            "account #{}",
            other.index
        );
    }
    let supply = bed.usdc_contract().totalSupply().call().await.unwrap();
    assert_eq!(supply, minted * U256::from(bed.buyers().len()));

    // The roles are distinct accounts.
    let mut roles: Vec<Address> = [bed.deployer(), bed.facilitator(), bed.seller()]
        .into_iter()
        .chain(bed.buyers())
        .chain(bed.spare_accounts())
        .map(|a| a.address)
        .collect();
    let total = roles.len();
    roles.sort();
    roles.dedup();
    assert_eq!(roles.len(), total);

    // The bed's provider signs for the buyers: a transfer moves exactly the amount.
    let amount = U256::from(1_250_000u64);
    let buyer = bed.buyer(0).address;
    let tx = bed
        .usdc_contract()
        .transfer(bed.seller().address, amount)
        .into_transaction_request();
    bed.send(tx.from(buyer), "transfer").await;
    assert_eq!(bed.usdc_balance(buyer).await, minted - amount);
    assert_eq!(bed.usdc_balance(bed.seller().address).await, amount);
}

#[test]
fn anvil_uses_the_default_dev_accounts_and_the_configured_chain_id() {
    let anvil = AnvilGuard::start_with(AnvilConfig {
        chain_id: 8453,
        accounts: 3,
        ..AnvilConfig::default()
    });
    assert_eq!(anvil.chain_id(), 8453);
    assert_eq!(anvil.accounts().len(), 3);
    let first = anvil.account(0);
    assert_eq!(
        first.signer.to_bytes(),
        DEV_ACCOUNT_0_KEY.parse::<B256>().unwrap()
    );
    assert_eq!(
        first.address,
        address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
    );
    assert_eq!(
        anvil.account(1).address,
        address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let provider = anvil.provider();
        assert_eq!(provider.get_chain_id().await.unwrap(), 8453);
        let balance = provider.get_balance(first.address).await.unwrap();
        assert_eq!(
            balance,
            U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18u64))
        );
    });
}

#[test]
fn anvil_with_a_block_time_mines_on_its_own() {
    let anvil = AnvilGuard::start_with(AnvilConfig {
        block_time: Some(1),
        accounts: 1,
        ..AnvilConfig::default()
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(assert_mines_on_its_own(&anvil.provider()));
}

/// Asserts that `provider`'s chain mines two blocks without transactions.
async fn assert_mines_on_its_own(provider: &DynProvider) {
    let block = async || {
        provider
            .get_block_number()
            .await
            .unwrap_or_else(|e| panic!("eth_blockNumber: {e}"))
    };
    let start = block().await;
    wait::until(
        "blocks mined without transactions",
        wait::HANG_GUARD,
        || async { block().await >= start + 2 },
    )
    .await;
}

#[test]
fn anvil_is_gone_after_its_guard_drops() {
    let anvil = AnvilGuard::start_with(AnvilConfig {
        accounts: 1,
        ..AnvilConfig::default()
    });
    let group = anvil.process_group();
    let addr = SocketAddr::from(([127, 0, 0, 1], anvil.port()));
    assert!(TcpStream::connect(addr).is_ok(), "anvil does not listen");
    assert!(
        live_processes_in_group(group) >= 2,
        "watchdog and anvil should be running"
    );

    drop(anvil);

    let deadline = Instant::now() + wait::HANG_GUARD;
    loop {
        let live = live_processes_in_group(group);
        let listening = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok();
        if live == 0 && !listening {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{:?} after drop: {live} live process(es) in group {group}, port listening: \
             {listening}",
            wait::HANG_GUARD
        );
        std::thread::sleep(wait::POLL_INTERVAL);
    }
}

/// Counts processes in process group `group` that are not zombies (read from `/proc`).
fn live_processes_in_group(group: u32) -> usize {
    let mut live = 0;
    for entry in std::fs::read_dir("/proc")
        .unwrap_or_else(|e| panic!("cannot list /proc: {e}"))
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces, so split after the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[2] == group.to_string() && fields[0] != "Z" {
            live += 1;
        }
    }
    live
}

#[tokio::test]
async fn a_bed_with_a_block_time_switches_to_interval_mining_after_set_up() {
    let bed = EvmTestBed::start_with(EvmTestBedConfig {
        buyers: 1,
        block_time: Some(1),
        ..EvmTestBedConfig::default()
    })
    .await;
    assert_eq!(
        bed.usdc_balance(bed.buyer(0).address).await,
        bed.buyer_usdc()
    );
    assert_mines_on_its_own(&bed.provider()).await;
}
