//! A test Solana wallet injected into a page as a Wallet Standard wallet (`standard:connect`,
//! `solana:signTransaction`): it registers when the page announces `wallet-standard:app-ready`,
//! connects with one fixed account, and signs the transaction the page built with the test key in
//! the page itself (WebCrypto Ed25519, which Debian's Chromium has), filling its own signature
//! slot and nothing else. It records every transaction it was asked to sign, and can be told to
//! refuse (a user declining, error code 4001).

use base64::Engine as _;
use serde_json::Value;
use solana_keypair::Keypair;
use solana_signer::Signer as _;
use solana_transaction::versioned::VersionedTransaction;

use super::Page;

/// The wallet's name, as the page shows it.
pub const SOLANA_WALLET_NAME: &str = "x402 Test Wallet";

/// The wallet, defined in every new document before the page's own scripts run; `__SEED__`,
/// `__PUBLIC__` and `__ADDRESS__` are replaced with the test key's.
const WALLET: &str = r#"(() => {
  const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const b64 = (u8) => btoa(String.fromCharCode(...u8));
  const pkcs8 = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70,
    0x04, 0x22, 0x04, 0x20, ...bytes("__SEED__")]);
  const signingKey = crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
  const publicKey = bytes("__PUBLIC__");
  const chains = ["solana:devnet", "solana:localnet"];
  const state = (window.__x402SolanaWallet = { refuse: false, connects: 0, requests: [] });
  const account = Object.freeze({
    address: "__ADDRESS__", publicKey, chains, features: ["solana:signTransaction"],
  });
  const shortVec = (u8, at) => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const b = u8[at++];
      value |= (b & 127) << shift;
      if (!(b & 128)) return [value, at];
    }
  };
  const sign = async (input) => {
    const tx = new Uint8Array(input.transaction);
    state.requests.push({ transaction: b64(tx), chain: input.chain, account: input.account.address });
    if (state.refuse) throw Object.assign(new Error("User rejected the request."), { code: 4001 });
    const [count, sigs] = shortVec(tx, 0);
    const message = tx.slice(sigs + 64 * count);
    const v0 = message[0] & 128 ? 1 : 0;
    const [, keys] = shortVec(message, v0 + 3);
    for (let slot = 0; slot < message[v0]; slot++) {
      const k = message.slice(keys + 32 * slot, keys + 32 * slot + 32);
      if (k.every((b, i) => b === publicKey[i])) {
        const signature = await crypto.subtle.sign("Ed25519", await signingKey, message);
        tx.set(new Uint8Array(signature), sigs + 64 * slot);
        return { signedTransaction: tx };
      }
    }
    throw new Error("The transaction needs no signature of this wallet.");
  };
  const wallet = {
    version: "1.0.0",
    name: "__NAME__",
    icon: "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4=",
    chains,
    accounts: [],
    features: {
      "standard:connect": { version: "1.0.0", connect: async () => {
        state.connects++;
        wallet.accounts = [account];
        return { accounts: wallet.accounts };
      } },
      "solana:signTransaction": {
        version: "1.0.0",
        supportedTransactionVersions: ["legacy", 0],
        signTransaction: async (...inputs) => {
          const out = [];
          for (const input of inputs) out.push(await sign(input));
          return out;
        },
      },
    },
  };
  window.__x402SolanaWalletObject = wallet;
  const register = (api) => api.register(wallet);
  window.addEventListener("wallet-standard:app-ready", (event) => register(event.detail));
  window.dispatchEvent(new CustomEvent("wallet-standard:register-wallet", { detail: register }));
})();"#;

/// A transaction the page asked the wallet to sign.
#[derive(Debug, Clone)]
pub struct SignRequest {
    /// The transaction as the page built it (signature slots zero).
    pub transaction: VersionedTransaction,
    /// Its wire bytes.
    pub bytes: Vec<u8>,
    /// The chain the page named (`solana:devnet`, …).
    pub chain: String,
    /// The account it asked to sign with.
    pub account: String,
}

/// The Solana wallet injected into one page.
#[derive(Debug, Clone)]
pub struct TestSolanaWallet {
    page: Page,
}

impl TestSolanaWallet {
    /// Injects the wallet of `keypair` into `page` (for documents loaded from now on).
    pub async fn install(page: &Page, keypair: &Keypair) -> Self {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let source = WALLET
            .replace("__SEED__", &b64(&keypair.to_bytes()[..32]))
            .replace("__PUBLIC__", &b64(&keypair.pubkey().to_bytes()))
            .replace("__ADDRESS__", &keypair.pubkey().to_string())
            .replace("__NAME__", SOLANA_WALLET_NAME);
        page.call(
            "Page.addScriptToEvaluateOnNewDocument",
            serde_json::json!({ "source": source }),
        )
        .await;
        Self { page: page.clone() }
    }

    /// From now on, the wallet refuses to sign (as a user declining).
    pub async fn refuse(&self) {
        self.page
            .eval("window.__x402SolanaWallet.refuse = true")
            .await;
    }

    /// How many times the page connected.
    pub async fn connects(&self) -> u64 {
        self.page
            .eval("window.__x402SolanaWallet.connects")
            .await
            .as_u64()
            .expect("a count")
    }

    /// Every transaction the page asked to sign, decoded (strictly: the bytes must be a canonical
    /// bincode transaction).
    pub async fn requests(&self) -> Vec<SignRequest> {
        let all = self
            .page
            .eval("JSON.stringify(window.__x402SolanaWallet.requests)")
            .await;
        let all: Vec<Value> = serde_json::from_str(all.as_str().expect("JSON")).expect("requests");
        all.into_iter()
            .map(|r| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(r["transaction"].as_str().expect("base64"))
                    .expect("base64");
                let decoded = scheme_exact_svm::payload::decode_bytes(&bytes)
                    .unwrap_or_else(|e| panic!("the page's transaction does not decode: {e:?}"));
                SignRequest {
                    transaction: decoded.tx,
                    bytes,
                    chain: r["chain"].as_str().unwrap_or_default().to_owned(),
                    account: r["account"].as_str().unwrap_or_default().to_owned(),
                }
            })
            .collect()
    }
}
