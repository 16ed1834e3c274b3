// x402 browser paywall: pays the 402 document embedded in this page from the browser's wallet
// (EIP-1193 provider: EIP-3009, Permit2 `exact` or `upto`, with an EIP-2612 permit when the seller
// sponsors the approval; a Wallet Standard Solana wallet: a partially signed `exact` transaction),
// then retries the request with the PAYMENT-SIGNATURE header and shows the paid content. No
// external code; everything the seller wrote is read as data and written with textContent.
"use strict";
(function () {
  var data = JSON.parse(document.getElementById("x402-data").textContent);
  var pay = document.getElementById("pay");
  var statusBox = document.getElementById("status");
  var content = document.getElementById("content");
  var required = data.required;

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function show(text, cls) {
    statusBox.replaceChildren(el("p", text, cls));
  }

  // --- what can be paid here -------------------------------------------------------------
  function extraOf(r) { return r.extra && typeof r.extra === "object" ? r.extra : {}; }
  function chainOf(r) {
    var m = /^eip155:([0-9]{1,15})$/.exec(r.network);
    return m ? Number(m[1]) : null;
  }
  function whyNot(r) {
    var x = extraOf(r);
    if (r.network.indexOf("solana:") === 0) {
      if (r.scheme !== "exact") return "the " + r.scheme + " scheme is not supported on Solana by this page";
      if (typeof x.feePayer !== "string") return "the offer names no fee payer";
      if (!(data.solanaRpc || {})[r.network]) return "the seller configured no Solana RPC for " + r.network;
      return null;
    }
    if (chainOf(r) === null) return "network " + r.network + " is not supported by this page";
    if (r.scheme === "upto")
      return typeof x.facilitatorAddress === "string" ? null : "the offer names no facilitator address";
    if (r.scheme !== "exact") return "the " + r.scheme + " scheme is not supported by this page";
    if (x.assetTransferMethod === "permit2") return null;
    if (x.assetTransferMethod && x.assetTransferMethod !== "eip3009")
      return "transfer method " + x.assetTransferMethod + " is not supported by this page";
    if (typeof x.name !== "string" || typeof x.version !== "string")
      return "the offer does not name the token's EIP-712 domain";
    return null;
  }
  function label(r, amount) {
    amount = String(amount === undefined ? r.amount : amount);
    var l = (data.assets || []).find(function (a) {
      // EVM addresses ignore case; Solana's base58 does not
      return a.network === r.network && (a.asset === r.asset ||
        (chainOf(r) !== null && a.asset.toLowerCase() === r.asset.toLowerCase()));
    });
    if (!l) return amount + " atomic units of " + r.asset;
    var s = amount.replace(/^0+/, "").padStart(l.decimals + 1, "0");
    var whole = s.slice(0, s.length - l.decimals), frac = s.slice(s.length - l.decimals).replace(/0+$/, "");
    return (frac ? whole + "." + frac : whole) + " " + l.symbol;
  }

  // --- encoding --------------------------------------------------------------------------
  function b64(bytes) {
    var bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin);
  }
  function unb64(value) {
    var bin = atob(value), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes;
  }
  function utf8(text) { return new TextEncoder().encode(text); }
  function b64encode(text) { return b64(utf8(text)); }
  function b64decodeJson(value) {
    try { return JSON.parse(new TextDecoder().decode(unb64(value))); } catch (e) { return null; }
  }
  function hex(bytes) {
    return "0x" + Array.prototype.map.call(bytes, function (b) {
      return b.toString(16).padStart(2, "0");
    }).join("");
  }

  // --- the EIP-3009 authorization, as the Rust buyer signs it ------------------------------
  // validAfter = now - 600 (clock skew), validBefore = now + maxTimeoutSeconds, 32 random bytes.
  function authorization(r, from, nowSeconds) {
    return {
      from: from,
      to: r.payTo,
      value: String(r.amount),
      validAfter: String(Math.max(0, nowSeconds - 600)),
      validBefore: String(nowSeconds + r.maxTimeoutSeconds),
      nonce: hex(crypto.getRandomValues(new Uint8Array(32)))
    };
  }
  function typedData(r, auth) {
    var x = extraOf(r);
    return {
      types: {
        EIP712Domain: [
          { name: "name", type: "string" }, { name: "version", type: "string" },
          { name: "chainId", type: "uint256" }, { name: "verifyingContract", type: "address" }
        ],
        TransferWithAuthorization: [
          { name: "from", type: "address" }, { name: "to", type: "address" },
          { name: "value", type: "uint256" }, { name: "validAfter", type: "uint256" },
          { name: "validBefore", type: "uint256" }, { name: "nonce", type: "bytes32" }
        ]
      },
      primaryType: "TransferWithAuthorization",
      domain: { name: x.name, version: x.version, chainId: chainOf(r), verifyingContract: r.asset },
      message: auth
    };
  }

  // --- Permit2 witness transfers (the x402 exact and upto proxies), as the Rust buyers sign them --
  var PERMIT2 = "0x000000000022D473030F116dDEE9F6B43aC78BA3";
  var EXACT_PROXY = "0x402085c248EeA27D92E8b30b2C58ed07f9E20001";
  var UPTO_PROXY = "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002";
  function usesPermit2(r) { return r.scheme === "upto" || extraOf(r).assetTransferMethod === "permit2"; }
  function addressType(name) { return { name: name, type: "address" }; }
  function uintType(name) { return { name: name, type: "uint256" }; }
  // upto's witness also names the one facilitator allowed to settle; amount is the maximum.
  function permit2Authorization(r, from, nowSeconds) {
    var witness = { to: r.payTo };
    if (r.scheme === "upto") witness.facilitator = extraOf(r).facilitatorAddress;
    witness.validAfter = String(Math.max(0, nowSeconds - 600));
    return {
      from: from,
      permitted: { token: r.asset, amount: String(r.amount) },
      spender: r.scheme === "upto" ? UPTO_PROXY : EXACT_PROXY,
      nonce: BigInt(hex(crypto.getRandomValues(new Uint8Array(32)))).toString(),
      deadline: String(nowSeconds + r.maxTimeoutSeconds),
      witness: witness
    };
  }
  function permit2TypedData(r, auth) {
    var witness = [addressType("to")];
    if (r.scheme === "upto") witness.push(addressType("facilitator"));
    witness.push(uintType("validAfter"));
    return {
      types: {
        EIP712Domain: [
          { name: "name", type: "string" }, uintType("chainId"), addressType("verifyingContract")
        ],
        PermitWitnessTransferFrom: [
          { name: "permitted", type: "TokenPermissions" }, addressType("spender"),
          uintType("nonce"), uintType("deadline"), { name: "witness", type: "Witness" }
        ],
        TokenPermissions: [addressType("token"), uintType("amount")],
        Witness: witness
      },
      primaryType: "PermitWitnessTransferFrom",
      domain: { name: "Permit2", chainId: chainOf(r), verifyingContract: PERMIT2 },
      message: auth
    };
  }
  // A uint256 the token answers through the wallet (eth_call of `selector` with address args).
  async function readUint(provider, r, selector, addresses) {
    var word = function (a) { return a.slice(2).toLowerCase().padStart(64, "0"); };
    var answer = await provider.request({
      method: "eth_call",
      params: [{ to: r.asset, data: selector + addresses.map(word).join("") }, "latest"]
    });
    if (typeof answer !== "string" || !/^0x[0-9a-fA-F]{0,64}$/.test(answer)) throw new Error("The wallet could not read the token.");
    return answer === "0x" ? 0n : BigInt(answer);
  }
  // The eip2612GasSponsoring entry (x402-spec 3.5): an EIP-2612 permit granting Permit2 exactly
  // the amount until the Permit2 deadline, signed in the token's own domain.
  async function sponsoredPermit(provider, r, owner, auth) {
    var x = extraOf(r);
    var nonce = await readUint(provider, r, "0x7ecebe00", [owner]);
    var message = {
      owner: owner, spender: PERMIT2, value: String(r.amount), nonce: nonce.toString(), deadline: auth.deadline
    };
    var typed = typedData(r, message);
    typed.types.Permit = [addressType("owner"), addressType("spender"), uintType("value"), uintType("nonce"), uintType("deadline")];
    delete typed.types.TransferWithAuthorization;
    typed.primaryType = "Permit";
    var signature = await signTyped(provider, owner, typed, r);
    return { info: {
      from: owner, asset: r.asset, spender: PERMIT2, amount: message.value, nonce: message.nonce,
      deadline: message.deadline, signature: signature, version: "1"
    } };
  }

  // --- Solana: the exact-svm transaction (x402-spec 3.4), as the Rust buyer builds it ------------
  // v0 message, fee payer = extra.feePayer (its signature slot left zero for the facilitator):
  // compute-unit limit, compute-unit price, TransferChecked to payTo's associated token account,
  // memo (extra.memo, else 16 random bytes in hex so that every payment is unique).
  var B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  var TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", TOKEN22 = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb";
  var SOLANA_CHAINS = {
    "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp": "solana:mainnet",
    "EtWTRABZaYq6iMfeYKouRu166VU2xqa1": "solana:devnet",
    "4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z": "solana:testnet"
  };
  function walletChain(r) { return SOLANA_CHAINS[r.network.slice(7)] || "solana:localnet"; }
  function key(text) {
    var n = 0n, zeros = 0, out = [];
    for (var i = 0; i < text.length; i++) {
      var d = B58.indexOf(text[i]);
      if (d < 0) throw new Error(text + " is not a Solana address.");
      n = n * 58n + BigInt(d);
    }
    while (text[zeros] === "1") zeros++;
    for (; n > 0n; n >>= 8n) out.unshift(Number(n & 255n));
    if (zeros + out.length !== 32) throw new Error(text + " is not a Solana address.");
    return Uint8Array.from(new Array(zeros).fill(0).concat(out));
  }
  function le(value, bytes) {
    var out = [];
    for (var v = BigInt(value), i = 0; i < bytes; i++, v >>= 8n) out.push(Number(v & 255n));
    return out;
  }
  function shortVec(out, n) { do { out.push(n > 127 ? (n & 127) | 128 : n); n >>= 7; } while (n); }
  // Whether 32 bytes decode to an ed25519 point: (y^2 - 1) / (d y^2 + 1) is a square mod p.
  var P = 2n ** 255n - 19n;
  function pow(b, e) {
    for (var r = 1n; e > 0n; e >>= 1n, b = b * b % P) if (e & 1n) r = r * b % P;
    return r;
  }
  function onCurve(bytes) {
    var y = 0n;
    for (var i = 31; i >= 0; i--) y = (y << 8n) | BigInt(i === 31 ? bytes[i] & 127 : bytes[i]);
    var y2 = y * y % P, d = (P - 121665n) * pow(121666n, P - 2n) % P;
    var x2 = (y2 + P - 1n) * pow((d * y2 + 1n) % P, P - 2n) % P;
    return x2 === 0n || pow(x2, (P - 1n) / 2n) === 1n;
  }
  // The associated token account: the first off-curve SHA-256 of the seeds with a bump from 255.
  async function ata(owner, program, mint) {
    for (var bump = 255; bump >= 0; bump--) {
      var seed = [].concat(Array.from(owner), Array.from(program), Array.from(mint), [bump],
        Array.from(key("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")), Array.from(utf8("ProgramDerivedAddress")));
      var h = new Uint8Array(await crypto.subtle.digest("SHA-256", Uint8Array.from(seed)));
      if (!onCurve(h)) return h;
    }
    throw new Error("No associated token account address.");
  }
  // Compiles instructions ({program, keys: [[key, signer, writable]], data}) as Solana does: the
  // payer first, then signers, writable before read-only, each group in byte order.
  function transaction(payer, instructions, blockhash) {
    var metas = [{ k: payer, h: hex(payer), s: true, w: true }];
    function add(k, s, w) {
      var h = hex(k), m = metas.find(function (x) { return x.h === h; });
      if (m) { m.s = m.s || s; m.w = m.w || w; } else metas.push({ k: k, h: h, s: s, w: w });
    }
    instructions.forEach(function (ix) {
      ix.keys.forEach(function (a) { add(a[0], a[1], a[2]); });
      add(ix.program, false, false);
    });
    var rank = function (m) { return (m.s ? 0 : 2) + (m.w ? 0 : 1); };
    var keys = [metas[0]].concat(metas.slice(1).sort(function (a, b) {
      return rank(a) - rank(b) || (a.h < b.h ? -1 : 1);
    }));
    var index = function (k) { var h = hex(k); return keys.findIndex(function (m) { return m.h === h; }); };
    var signers = keys.filter(function (m) { return m.s; }).length;
    var m = [0x80, signers, keys.filter(function (m) { return m.s && !m.w; }).length,
      keys.filter(function (m) { return !m.s && !m.w; }).length];
    shortVec(m, keys.length);
    keys.forEach(function (k) { m.push.apply(m, k.k); });
    m.push.apply(m, blockhash);
    shortVec(m, instructions.length);
    instructions.forEach(function (ix) {
      m.push(index(ix.program));
      shortVec(m, ix.keys.length);
      ix.keys.forEach(function (a) { m.push(index(a[0])); });
      shortVec(m, ix.data.length);
      m.push.apply(m, ix.data);
    });
    shortVec(m, 0);
    var tx = [];
    shortVec(tx, signers);
    return Uint8Array.from(tx.concat(new Array(64 * signers).fill(0), m));
  }
  async function solanaRpc(r, method, params) {
    var response = await fetch(data.solanaRpc[r.network], {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: method, params: params }),
      credentials: "omit", referrerPolicy: "no-referrer", cache: "no-store"
    });
    var body = await response.json().catch(function () { return null; });
    if (!body || body.error || !body.result) throw new Error("The Solana RPC could not answer " + method + ".");
    return body.result;
  }
  async function solanaAccount(wallet) {
    var out = await wallet.features["standard:connect"].connect();
    var account = ((out && out.accounts) || wallet.accounts || [])[0];
    if (!account || typeof account.address !== "string") throw new Error("The wallet returned no account.");
    return account;
  }
  async function solanaPayload(r, wallet) {
    var x = extraOf(r), account = await solanaAccount(wallet);
    var owner = key(account.address), mint = key(r.asset);
    if (x.feePayer === account.address) throw new Error("The offer would make your wallet pay the network fee; it is not a valid x402 offer.");
    var info = await solanaRpc(r, "getAccountInfo", [r.asset, { encoding: "base64", commitment: "confirmed" }]);
    var v = info.value, program = v && (v.owner === TOKEN || v.owner === TOKEN22) && key(v.owner);
    var mintData = v && Array.isArray(v.data) ? unb64(v.data[0]) : [];
    if (!program || mintData.length < 82) throw new Error("The token " + r.asset + " is not a token mint on " + r.network + ".");
    if (BigInt(r.amount) >= 2n ** 64n) throw new Error("The amount does not fit a Solana token amount.");
    var memo = x.memo ? utf8(x.memo) : utf8(hex(crypto.getRandomValues(new Uint8Array(16))).slice(2));
    var blockhash = (await solanaRpc(r, "getLatestBlockhash", [{ commitment: "confirmed" }])).value.blockhash;
    var budget = key("ComputeBudget111111111111111111111111111111");
    var tx = transaction(key(x.feePayer), [
      { program: budget, keys: [], data: [2].concat(le(20000, 4)) },
      { program: budget, keys: [], data: [3].concat(le(1, 8)) },
      { program: program, data: [12].concat(le(r.amount, 8), [mintData[44]]), keys: [
        [await ata(owner, program, mint), false, true], [mint, false, false],
        [await ata(key(r.payTo), program, mint), false, true], [owner, true, false]] },
      { program: key("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"), keys: [], data: Array.from(memo) }
    ], key(blockhash));
    show("Sign the payment of " + label(r) + " in " + wallet.name + "…");
    var signed = await wallet.features["solana:signTransaction"].signTransaction({
      account: account, transaction: tx, chain: walletChain(r)
    });
    var bytes = signed && signed[0] && signed[0].signedTransaction;
    if (!ArrayBuffer.isView(bytes)) throw new Error("The wallet returned no signed transaction.");
    return { transaction: b64(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)) };
  }

  // --- reasons a buyer can read ------------------------------------------------------------
  var READABLE = {
    invalid_exact_evm_insufficient_balance: "Your wallet does not hold enough of this token to pay.",
    insufficient_funds: "Your wallet does not hold enough of this token to pay.",
    invalid_exact_evm_signature: "The wallet's signature was not accepted.",
    permit2_insufficient_balance: "Your wallet does not hold enough of this token to pay.",
    permit2_allowance_required: "Approve Permit2 to spend this token in your wallet, then try again.",
    invalid_exact_evm_nonce_already_used: "This payment was already used; reload the page to pay again.",
    invalid_exact_evm_payload_authorization_valid_before: "The payment expired before it reached the seller; check your computer's clock.",
    invalid_exact_evm_payload_authorization_valid_after: "The payment is not valid yet; check your computer's clock.",
    invalid_exact_svm_transaction_simulation_failed: "The payment would fail on chain; does your wallet hold enough of this token?",
    invalid_exact_svm_payload_signature_invalid: "The wallet's signature was not accepted.",
    permit2_2612_amount_mismatch: "The token's permit for Permit2 was not accepted."
  };
  function readable(reason) {
    return (READABLE[reason] || "The payment was refused.") + " (" + reason + ")";
  }
  async function failure(response) {
    var settled = response.headers.get("PAYMENT-RESPONSE");
    var s = settled && b64decodeJson(settled);
    if (s && s.errorReason) return readable(s.errorReason);
    var req = response.headers.get("PAYMENT-REQUIRED");
    var doc = req && b64decodeJson(req);
    if (doc && doc.error) return readable(doc.error);
    var text = await response.text();
    try {
      var body = JSON.parse(text);
      if (body && typeof body.error === "string") return body.error + " (HTTP " + response.status + ")";
    } catch (e) { /* not JSON */ }
    return "The seller answered HTTP " + response.status + ".";
  }

  // --- showing the paid content ------------------------------------------------------------
  async function showContent(response) {
    var type = (response.headers.get("Content-Type") || "").toLowerCase();
    content.replaceChildren();
    if (type.indexOf("image/") === 0) {
      var img = el("img");
      img.src = URL.createObjectURL(await response.blob());
      content.append(img);
    } else if (type.indexOf("text/html") === 0) {
      var frame = el("iframe");
      frame.setAttribute("sandbox", "");
      frame.srcdoc = await response.text();
      content.append(frame);
    } else if (type.indexOf("text/") === 0 || type.indexOf("json") !== -1 || type === "") {
      var text = await response.text();
      if (type.indexOf("json") !== -1) {
        try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* as is */ }
      }
      content.append(el("pre", text));
    } else {
      var a = el("a", "Download the paid content");
      a.href = URL.createObjectURL(await response.blob());
      a.download = "";
      content.append(a);
    }
  }

  // --- the wallets ----------------------------------------------------------------------------
  // Solana wallets register through the Wallet Standard: the register-wallet event, the
  // app-ready event for wallets loaded before this script, and the legacy navigator.wallets.
  var solanaWallets = [], done = false, busy = false;
  var walletsApi = Object.freeze({ register: function () {
    var added = Array.prototype.filter.call(arguments, function (w) {
      var f = w && w.features;
      return f && f["standard:connect"] && f["solana:signTransaction"] && solanaWallets.indexOf(w) < 0;
    });
    solanaWallets = solanaWallets.concat(added);
    if (added.length) render();
    return function () {
      solanaWallets = solanaWallets.filter(function (w) { return added.indexOf(w) < 0; });
      render();
    };
  } });
  function callWallet(callback) { try { callback(walletsApi); } catch (e) { /* the wallet's fault */ } }
  var evmAccount = null;
  async function ensureChain(provider, r) {
    var want = chainOf(r);
    var have = parseInt(await provider.request({ method: "eth_chainId" }), 16);
    if (have === want) return;
    try {
      await provider.request({
        method: "wallet_switchEthereumChain",
        params: [{ chainId: "0x" + want.toString(16) }]
      });
    } catch (e) {
      if (e && e.code === 4902) throw new Error("Add the network " + r.network + " to your wallet, then try again.");
      throw e;
    }
  }
  function walletError(e) {
    if (e && e.code === 4001) return "You declined the request in your wallet.";
    return (e && e.message) ? e.message : String(e);
  }
  async function signTyped(provider, account, typed, r) {
    show("Sign the payment of " + label(r) + " in your wallet…");
    var signature = await provider.request({
      method: "eth_signTypedData_v4",
      params: [account, JSON.stringify(typed)]
    });
    if (typeof signature !== "string" || !/^0x[0-9a-fA-F]+$/.test(signature)) throw new Error("The wallet returned no signature.");
    return signature;
  }
  // The scheme payload of an EVM offer and the extensions entries it adds; null when the buyer
  // must act first (approve Permit2).
  async function evmPayload(r, extensions) {
    var provider = window.ethereum;
    if (!evmAccount) {
      var accounts = await provider.request({ method: "eth_requestAccounts" });
      if (!accounts || !/^0x[0-9a-fA-F]{40}$/.test(accounts[0])) throw new Error("The wallet returned no account.");
      evmAccount = accounts[0];
    }
    await ensureChain(provider, r);
    var now = Math.floor(Date.now() / 1000), auth;
    if (!usesPermit2(r)) {
      auth = authorization(r, evmAccount, now);
      return { signature: await signTyped(provider, evmAccount, typedData(r, auth), r), authorization: auth };
    }
    var x = extraOf(r), permit = null;
    auth = permit2Authorization(r, evmAccount, now);
    var allowance = await readUint(provider, r, "0xdd62ed3e", [evmAccount, PERMIT2]);
    if (allowance < BigInt(r.amount)) {
      var sponsored = extensions && extensions.eip2612GasSponsoring;
      if (!sponsored || typeof x.name !== "string" || typeof x.version !== "string") {
        show("This token is paid through Permit2, and your wallet has not approved Permit2 (" +
          PERMIT2 + ") to spend " + label(r) + " of it. Approve it in your wallet, then try again.", "error");
        return null;
      }
      permit = await sponsoredPermit(provider, r, evmAccount, auth);
    }
    var signature = await signTyped(provider, evmAccount, permit2TypedData(r, auth), r);
    if (permit) extensions.eip2612GasSponsoring = permit;
    return { signature: signature, permit2Authorization: auth };
  }

  async function payWith(choice, button) {
    var r = choice.r;
    button.disabled = busy = true;
    try {
      var extensions = required.extensions ? JSON.parse(JSON.stringify(required.extensions)) : undefined;
      var inner = choice.wallet ? await solanaPayload(r, choice.wallet) : await evmPayload(r, extensions);
      if (!inner) return;
      var payload = {
        x402Version: 2,
        resource: required.resource,
        accepted: r,
        payload: inner
      };
      if (extensions) payload.extensions = extensions;
      show("Paying " + label(r) + "…");
      var response = await fetch(window.location.href, {
        headers: { "PAYMENT-SIGNATURE": b64encode(JSON.stringify(payload)) },
        cache: "no-store",
        credentials: "same-origin"
      });
      if (!response.ok) {
        show(await failure(response), "error");
        return;
      }
      var settled = b64decodeJson(response.headers.get("PAYMENT-RESPONSE") || "") || {};
      var tx = settled.transaction ? " Transaction " + settled.transaction + "." : "";
      var paid = r.scheme === "upto" && /^[0-9]+$/.test(settled.amount || "")
        ? label(r, settled.amount) + " of at most " + label(r) : label(r);
      show("Paid " + paid + "." + tx, "ok");
      done = true;
      pay.replaceChildren();
      await showContent(response);
    } catch (e) {
      show(walletError(e), "error");
    } finally {
      button.disabled = busy = false;
    }
  }

  // --- the pay section -------------------------------------------------------------------------
  function render() {
    if (done || busy) return;
    pay.replaceChildren();
    if (!required || !required.accepts || required.accepts.length === 0) {
      pay.append(el("p", "This resource takes x402 version 1 payments only, which this page " +
        "cannot make. Pay with an x402 client instead."));
      return;
    }
    var payable = required.accepts.filter(function (r) { return whyNot(r) === null; });
    if (payable.length === 0) {
      pay.append(el("p", "This page cannot pay any of the offers: " + whyNot(required.accepts[0]) +
        ". Pay with an x402 client instead."));
      return;
    }
    var hasEthereum = window.ethereum && typeof window.ethereum.request === "function";
    var choices = [];
    payable.forEach(function (r) {
      if (r.network.indexOf("solana:") !== 0) {
        if (hasEthereum) choices.push({ r: r, text: label(r) + " on " + r.network + (r.scheme === "upto" ? " (at most)" : "") });
        return;
      }
      solanaWallets.forEach(function (w) {
        if (!Array.isArray(w.chains) || w.chains.indexOf(walletChain(r)) >= 0)
          choices.push({ r: r, wallet: w, text: label(r) + " on " + r.network + " with " + w.name });
      });
    });
    if (choices.length === 0) {
      pay.append(el("p", "No browser wallet found. Install an Ethereum or Solana wallet extension, or pay with an x402 client."));
      return;
    }
    var choice, button = el("button");
    function choose(c) {
      choice = c;
      button.textContent = "Pay with " + (c.wallet ? c.wallet.name : "wallet");
    }
    choose(choices[0]);
    if (choices.length > 1) {
      var select = el("select");
      choices.forEach(function (c, i) {
        var o = el("option", c.text);
        o.value = String(i);
        select.append(o);
      });
      select.addEventListener("change", function () { choose(choices[Number(select.value)]); });
      pay.append(select);
    }
    button.id = "pay-button";
    button.addEventListener("click", function () { payWith(choice, button); });
    pay.append(button);
  }
  render();
  window.addEventListener("wallet-standard:register-wallet", function (e) { callWallet(e.detail); });
  window.dispatchEvent(new CustomEvent("wallet-standard:app-ready", { detail: walletsApi }));
  var legacy = navigator.wallets;
  try {
    Object.defineProperty(navigator, "wallets", { value: Object.freeze({ push: function () {
      Array.prototype.forEach.call(arguments, callWallet);
    } }) });
    if (Array.isArray(legacy)) legacy.forEach(callWallet);
  } catch (e) { /* another script owns it */ }
})();
