//! `x402-testbed`: starts the local chain set-up every test uses and keeps it running until
//! Ctrl-C — anvil with Circle's FiatTokenV2_2 (USDC) and Permit2, and solana-test-validator with
//! an SPL Token mint and a Token-2022 mint — and prints what was deployed. No private key is
//! printed; the accounts are anvil's documented dev accounts and fresh Solana keypairs.

#![allow(clippy::print_stdout)] // printing the set-up is this binary's job

use solana_sdk::signer::Signer as _;
use x402_tests::evm::EvmTestBed;
use x402_tests::solana::SvmTestBed;

#[tokio::main]
async fn main() {
    println!("==> starting anvil and deploying USDC (FiatTokenV2_2) and Permit2");
    let evm = EvmTestBed::start().await;
    println!("    rpc        {}", evm.endpoint());
    println!("    network    {}", evm.caip2());
    println!("    USDC       {}", evm.usdc());
    println!("    Permit2    {}", evm.permit2());
    println!("    seller     {}", evm.seller().address);
    println!("    facilitator signer {}", evm.facilitator().address);
    for b in evm.buyers() {
        let balance = evm.usdc_balance(b.address).await;
        println!("    buyer      {}  {balance} USDC units", b.address);
    }

    println!("==> starting solana-test-validator and creating mints");
    let svm = SvmTestBed::start().await;
    println!("    rpc        {}", svm.rpc_url());
    for m in svm.mints() {
        println!(
            "    mint       {}  (program {}, {} decimals)",
            m.address, m.token_program, m.decimals
        );
    }
    println!("    seller     {}", svm.seller().pubkey());
    for f in svm.fee_payers() {
        println!("    fee payer  {}", f.pubkey());
    }
    for b in svm.buyers() {
        let [spl, t22] = svm.mints();
        println!(
            "    buyer      {}  {} / {} token units",
            b.pubkey(),
            svm.token_balance(&b.pubkey(), &spl.address).await,
            svm.token_balance(&b.pubkey(), &t22.address).await
        );
    }

    println!("==> local chains ready; Ctrl-C stops everything");
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("cannot wait for Ctrl-C: {e}");
    }
    println!("==> stopping");
    drop(svm);
    drop(evm);
}
