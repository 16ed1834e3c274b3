//! The loopback EVM chain of a run: the test bed (anvil with Circle's USDC, Permit2 and the x402
//! proxies), payers funded in bulk, facilitator signers, the mining mode, and what the blocks of
//! a settle run held.

use std::time::{Duration, Instant};

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use x402_tests::evm::{EvmTestBed, EvmTestBedConfig, PERMIT2_ADDRESS};

use crate::procstat;

/// Gas limit given to each funding transaction (a first mint uses about 70,000).
const FUNDING_GAS: u64 = 150_000;
/// Fee caps of the funding transactions: the base fee climbs while full funding blocks are mined,
/// and a transaction priced for the first block would be stranded in the pool.
const FUNDING_MAX_FEE: &str = "0xe8d4a51000"; // 1,000 gwei
const FUNDING_TIP: &str = "0x3b9aca00"; // 1 gwei
/// The base fee restored once funding is mined, so the benchmark starts from a quiet chain.
const BASE_FEE: &str = "0x3b9aca00"; // 1 gwei
/// Funding transactions sent (and mined) at a time.
const FUNDING_BATCH: usize = 256;
/// How long funding may take to be mined.
const FUNDING_TIMEOUT: Duration = Duration::from_secs(600);

/// A running chain; dropping it stops anvil.
#[derive(Debug)]
pub struct Chain {
    /// The test bed.
    pub bed: EvmTestBed,
    raw: DynProvider,
}

/// Calls a JSON-RPC method and returns its raw result.
async fn rpc(p: &DynProvider, method: &'static str, params: Value) -> Result<Value, String> {
    p.raw_request::<Value, Value>(method.into(), params)
        .await
        .map_err(|e| format!("{method}: {e}"))
}

impl Chain {
    /// Starts anvil with chain id `chain_id` and the contracts deployed, mining on every
    /// transaction.
    pub async fn start(chain_id: u64) -> Self {
        let bed = EvmTestBed::start_with(EvmTestBedConfig {
            chain_id,
            buyers: 1,
            ..EvmTestBedConfig::default()
        })
        .await;
        let raw = bed.anvil().provider();
        Self { bed, raw }
    }

    /// anvil's own process id (the bed runs it under a watchdog shell).
    pub fn anvil_pid(&self) -> Option<u32> {
        procstat::children(self.bed.anvil().process_group())
            .into_iter()
            .find(|&pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "anvil")
            })
    }

    /// Gives every payer 1 ETH (`anvil_setBalance`) and `usdc_each` USDC (a real `mint` from the
    /// master minter), and, with `approve_permit2`, lets Permit2 move all of its USDC (an
    /// `approve` sent from the payer's own account). Everything is mined in full blocks with
    /// automining paused, then automining resumes.
    pub async fn fund(
        &self,
        payers: &[Address],
        usdc_each: U256,
        approve_permit2: bool,
    ) -> Result<(), String> {
        let p = &self.raw;
        futures::stream::iter(payers)
            .map(|a| rpc(p, "anvil_setBalance", json!([a, "0xde0b6b3a7640000"])))
            .buffer_unordered(16)
            .try_collect::<Vec<_>>()
            .await?;
        rpc(p, "evm_setAutomine", json!([false])).await?;
        let deployer = self.bed.deployer().address;
        let usdc = self.bed.usdc_contract();
        let first = p
            .get_transaction_count(deployer)
            .pending()
            .await
            .map_err(|e| format!("deployer nonce: {e}"))?;
        let mut txs = Vec::new();
        for (i, a) in payers.iter().enumerate() {
            let data = usdc.mint(*a, usdc_each).calldata().clone();
            txs.push(
                json!({"from": deployer, "to": self.bed.usdc(), "data": data,
                "nonce": format!("{:#x}", first + i as u64), "gas": format!("{FUNDING_GAS:#x}")}),
            );
        }
        if approve_permit2 {
            for a in payers {
                let data = usdc.approve(PERMIT2_ADDRESS, U256::MAX).calldata().clone();
                txs.push(json!({"from": a, "to": self.bed.usdc(), "data": data,
                    "nonce": "0x0", "gas": format!("{FUNDING_GAS:#x}"),
                    "maxFeePerGas": FUNDING_MAX_FEE, "maxPriorityFeePerGas": FUNDING_TIP}));
            }
            rpc(p, "anvil_autoImpersonateAccount", json!([true])).await?;
        }
        // Sent in batches, each mined before the next: anvil's pool silently dropped a few
        // hundred of 8,192 transactions queued at once (seen with 4,096 mints + approvals).
        let mut outcome = Ok(());
        for batch in txs.chunks(FUNDING_BATCH) {
            outcome = futures::stream::iter(batch)
                .map(|tx| rpc(p, "eth_sendTransaction", json!([tx])))
                .buffer_unordered(16)
                .try_collect::<Vec<_>>()
                .await
                .map(|_| ());
            if outcome.is_ok() {
                outcome = self.mine_pool().await;
            }
            if outcome.is_err() {
                break;
            }
        }
        if approve_permit2 {
            rpc(p, "anvil_autoImpersonateAccount", json!([false])).await?;
        }
        if outcome.is_ok() {
            rpc(p, "anvil_setNextBlockBaseFeePerGas", json!([BASE_FEE])).await?;
            rpc(p, "evm_mine", json!([])).await?;
        }
        rpc(p, "evm_setAutomine", json!([true])).await?;
        outcome?;
        self.check_funded(payers, usdc_each, approve_permit2).await
    }

    /// Mines blocks until the transaction pool is empty.
    async fn mine_pool(&self) -> Result<(), String> {
        let started = Instant::now();
        while started.elapsed() < FUNDING_TIMEOUT {
            let status = rpc(&self.raw, "txpool_status", json!([])).await?;
            let count = |k: &str| {
                status[k]
                    .as_str()
                    .and_then(|h| u64::from_str_radix(h.trim_start_matches("0x"), 16).ok())
                    .or_else(|| status[k].as_u64())
                    .unwrap_or(0)
            };
            if count("pending") + count("queued") == 0 {
                return Ok(());
            }
            rpc(&self.raw, "evm_mine", json!([])).await?;
        }
        Err(format!("funding not mined within {FUNDING_TIMEOUT:?}"))
    }

    /// Checks every payer's balance (and Permit2 allowance); the error counts the shortfalls.
    async fn check_funded(
        &self,
        payers: &[Address],
        usdc: U256,
        permit2: bool,
    ) -> Result<(), String> {
        let token = self.bed.usdc_contract();
        let token = &token;
        let short: Vec<String> = futures::stream::iter(payers)
            .map(|a| async move {
                let balance = token
                    .balanceOf(*a)
                    .call()
                    .await
                    .map_err(|e| e.to_string())?;
                let approved = if permit2 {
                    let allowance = token.allowance(*a, PERMIT2_ADDRESS).call().await;
                    allowance.map_err(|e| e.to_string())? == U256::MAX
                } else {
                    true
                };
                Ok::<_, String>((balance == usdc && approved).then_some(()).map_or_else(
                    || {
                        Some(format!(
                            "{a}: {balance} USDC units, Permit2 approved: {approved}"
                        ))
                    },
                    |()| None,
                ))
            })
            .buffer_unordered(16)
            .try_filter_map(|s| async move { Ok(s) })
            .try_collect()
            .await?;
        match short.first() {
            None => Ok(()),
            Some(first) => Err(format!(
                "{} of {} payers not funded (expected {usdc} USDC units each), e.g. {first}",
                short.len(),
                payers.len()
            )),
        }
    }

    /// `n` fresh facilitator signers holding 1,000 ETH each.
    pub async fn new_signers(&self, n: usize) -> Result<Vec<PrivateKeySigner>, String> {
        let mut keys = Vec::new();
        for _ in 0..n {
            let key = PrivateKeySigner::random();
            rpc(
                &self.raw,
                "anvil_setBalance",
                json!([key.address(), "0x3635c9adc5dea00000"]),
            )
            .await?;
            keys.push(key);
        }
        Ok(keys)
    }

    /// Places `code` (hex runtime bytecode) at `address` (`anvil_setCode`).
    pub async fn set_code(&self, address: Address, code: &str) -> Result<(), String> {
        rpc(&self.raw, "anvil_setCode", json!([address, code])).await?;
        Ok(())
    }

    /// Mines a block every `secs` seconds, or on every transaction with `None`.
    pub async fn set_block_time(&self, secs: Option<u64>) -> Result<(), String> {
        match secs {
            Some(s) => rpc(&self.raw, "evm_setIntervalMining", json!([s])).await?,
            None => {
                rpc(&self.raw, "evm_setIntervalMining", json!([0])).await?;
                rpc(&self.raw, "evm_setAutomine", json!([true])).await?
            }
        };
        Ok(())
    }

    /// The latest block number.
    pub async fn block_number(&self) -> Result<u64, String> {
        self.raw.get_block_number().await.map_err(|e| e.to_string())
    }

    /// How many transactions each address has sent (its latest nonce).
    pub async fn nonces(&self, addresses: &[Address]) -> Result<Vec<u64>, String> {
        let mut out = Vec::new();
        for a in addresses {
            out.push(
                self.raw
                    .get_transaction_count(*a)
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
        Ok(out)
    }

    /// What blocks `from + 1 ..= to` held (only settle transactions are sent while a settle step
    /// runs, so every transaction in them is a settlement).
    pub async fn block_stats(&self, from: u64, to: u64) -> Result<BlockStats, String> {
        let mut per_block = Vec::new();
        let (mut gas_used, mut gas_limit) = (0u64, 0u64);
        for n in from + 1..=to {
            let block = self
                .raw
                .get_block_by_number(BlockNumberOrTag::Number(n))
                .await
                .map_err(|e| format!("block {n}: {e}"))?
                .ok_or_else(|| format!("block {n} missing"))?;
            per_block.push(block.transactions.len() as u64);
            gas_used += block.header.gas_used;
            gas_limit = block.header.gas_limit;
        }
        Ok(BlockStats::of(per_block, gas_used, gas_limit))
    }
}

/// What the blocks of a settle step held.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BlockStats {
    /// Blocks mined during the step.
    pub blocks: u64,
    /// Settlement transactions in them.
    pub settles: u64,
    /// The block gas limit.
    pub gas_limit: u64,
    /// Mean gas per settlement (the blocks' gas used ÷ their transactions).
    pub gas_per_settle: u64,
    /// Settlements the gas limit admits in one block (gas limit ÷ gas per settle).
    pub admitted_per_block: u64,
    /// Blocks between the first and the last block holding a settlement (ramp-up and
    /// ramp-down excluded).
    pub steady_blocks: u64,
    /// Mean settlements per steady block.
    pub mean_per_steady_block: f64,
    /// Most settlements in one block.
    pub max_per_block: u64,
    /// `mean_per_steady_block ÷ admitted_per_block`.
    pub fill: f64,
    /// Settlements per block, in order (at most the first 120 blocks).
    pub per_block: Vec<u64>,
}

impl BlockStats {
    fn of(mut per_block: Vec<u64>, gas_used: u64, gas_limit: u64) -> Self {
        let settles: u64 = per_block.iter().sum();
        let gas_per_settle = gas_used.checked_div(settles).unwrap_or(0);
        let admitted = gas_limit.checked_div(gas_per_settle).unwrap_or(0);
        let first = per_block.iter().position(|&n| n > 0);
        let last = per_block.iter().rposition(|&n| n > 0);
        let steady: &[u64] = match (first, last) {
            (Some(f), Some(l)) if l > f + 1 => &per_block[f + 1..l],
            _ => &[],
        };
        let mean = if steady.is_empty() {
            0.0
        } else {
            steady.iter().sum::<u64>() as f64 / steady.len() as f64
        };
        let fill = if admitted == 0 {
            0.0
        } else {
            mean / admitted as f64
        };
        let steady_blocks = steady.len() as u64;
        let blocks = per_block.len() as u64;
        let max_per_block = per_block.iter().copied().max().unwrap_or(0);
        per_block.truncate(120);
        Self {
            blocks,
            settles,
            gas_limit,
            gas_per_settle,
            admitted_per_block: admitted,
            steady_blocks,
            mean_per_steady_block: mean,
            max_per_block,
            fill,
            per_block,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_blocks_skip_ramps() {
        let s = BlockStats::of(vec![0, 10, 300, 310, 40, 0], 660 * 100_000, 30_000_000);
        assert_eq!(
            (s.settles, s.gas_per_settle, s.admitted_per_block),
            (660, 100_000, 300)
        );
        assert_eq!(s.steady_blocks, 2);
        assert_eq!(s.mean_per_steady_block, 305.0);
        assert!((s.fill - 305.0 / 300.0).abs() < 1e-9);
    }
}
