// x402 browser paywall: pays the 402 document embedded in this page from the browser's wallet
// (EIP-1193 provider; EIP-3009 TransferWithAuthorization or a Permit2 witness transfer), then retries the request with the
// PAYMENT-SIGNATURE header and shows the paid content. No external code; everything the seller
// wrote is read as data and written with textContent, never as HTML.
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
    if (r.scheme !== "exact") return "the " + r.scheme + " scheme is not supported by this page";
    if (r.network.indexOf("solana:") === 0) return "Solana payments are not supported by this page yet";
    if (chainOf(r) === null) return "network " + r.network + " is not supported by this page";
    if (x.assetTransferMethod === "permit2") return null;
    if (x.assetTransferMethod && x.assetTransferMethod !== "eip3009")
      return "transfer method " + x.assetTransferMethod + " is not supported by this page";
    if (typeof x.name !== "string" || typeof x.version !== "string")
      return "the offer does not name the token's EIP-712 domain";
    return null;
  }
  function label(r) {
    var l = (data.assets || []).find(function (a) {
      return a.network === r.network && a.asset.toLowerCase() === r.asset.toLowerCase();
    });
    if (!l) return r.amount + " atomic units of " + r.asset;
    var s = r.amount.replace(/^0+/, "").padStart(l.decimals + 1, "0");
    var whole = s.slice(0, s.length - l.decimals), frac = s.slice(s.length - l.decimals).replace(/0+$/, "");
    return (frac ? whole + "." + frac : whole) + " " + l.symbol;
  }

  // --- encoding --------------------------------------------------------------------------
  function b64encode(text) {
    var bytes = new TextEncoder().encode(text), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin);
  }
  function b64decodeJson(value) {
    try {
      var bin = atob(value), bytes = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) { return null; }
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

  // --- the Permit2 witness transfer (x402ExactPermit2Proxy), as the Rust buyer signs it -------
  var PERMIT2 = "0x000000000022D473030F116dDEE9F6B43aC78BA3";
  var EXACT_PROXY = "0x402085c248EeA27D92E8b30b2C58ed07f9E20001";
  function isPermit2(r) { return extraOf(r).assetTransferMethod === "permit2"; }
  function permit2Authorization(r, from, nowSeconds) {
    return {
      from: from,
      permitted: { token: r.asset, amount: String(r.amount) },
      spender: EXACT_PROXY,
      nonce: BigInt(hex(crypto.getRandomValues(new Uint8Array(32)))).toString(),
      deadline: String(nowSeconds + r.maxTimeoutSeconds),
      witness: { to: r.payTo, validAfter: String(Math.max(0, nowSeconds - 600)) }
    };
  }
  function permit2TypedData(r, auth) {
    return {
      types: {
        EIP712Domain: [
          { name: "name", type: "string" }, { name: "chainId", type: "uint256" },
          { name: "verifyingContract", type: "address" }
        ],
        PermitWitnessTransferFrom: [
          { name: "permitted", type: "TokenPermissions" }, { name: "spender", type: "address" },
          { name: "nonce", type: "uint256" }, { name: "deadline", type: "uint256" },
          { name: "witness", type: "Witness" }
        ],
        TokenPermissions: [{ name: "token", type: "address" }, { name: "amount", type: "uint256" }],
        Witness: [{ name: "to", type: "address" }, { name: "validAfter", type: "uint256" }]
      },
      primaryType: "PermitWitnessTransferFrom",
      domain: { name: "Permit2", chainId: chainOf(r), verifyingContract: PERMIT2 },
      message: auth
    };
  }
  // The token allowance of Permit2 (ERC-20 allowance(owner, PERMIT2)), read through the wallet.
  async function permit2Allowance(provider, r, owner) {
    var word = function (a) { return a.slice(2).toLowerCase().padStart(64, "0"); };
    var answer = await provider.request({
      method: "eth_call",
      params: [{ to: r.asset, data: "0xdd62ed3e" + word(owner) + word(PERMIT2) }, "latest"]
    });
    if (typeof answer !== "string" || !/^0x[0-9a-fA-F]*$/.test(answer)) throw new Error("The wallet could not read the token's Permit2 allowance.");
    return answer === "0x" ? 0n : BigInt(answer);
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
    invalid_exact_evm_payload_authorization_valid_after: "The payment is not valid yet; check your computer's clock."
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

  // --- the wallet ----------------------------------------------------------------------------
  var account = null;
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

  async function payWith(r, button) {
    var provider = window.ethereum;
    button.disabled = true;
    try {
      if (!account) {
        var accounts = await provider.request({ method: "eth_requestAccounts" });
        if (!accounts || !/^0x[0-9a-fA-F]{40}$/.test(accounts[0])) throw new Error("The wallet returned no account.");
        account = accounts[0];
      }
      await ensureChain(provider, r);
      var now = Math.floor(Date.now() / 1000), auth, typed;
      if (isPermit2(r)) {
        var allowance = await permit2Allowance(provider, r, account);
        if (allowance < BigInt(r.amount)) {
          show("This token is paid through Permit2, and your wallet has not approved Permit2 (" +
            PERMIT2 + ") to spend " + label(r) + " of it. Approve it in your wallet, then try again.", "error");
          return;
        }
        auth = permit2Authorization(r, account, now);
        typed = permit2TypedData(r, auth);
      } else {
        auth = authorization(r, account, now);
        typed = typedData(r, auth);
      }
      show("Sign the payment of " + label(r) + " in your wallet…");
      var signature = await provider.request({
        method: "eth_signTypedData_v4",
        params: [account, JSON.stringify(typed)]
      });
      if (typeof signature !== "string" || !/^0x[0-9a-fA-F]+$/.test(signature)) throw new Error("The wallet returned no signature.");
      var inner = isPermit2(r)
        ? { signature: signature, permit2Authorization: auth }
        : { signature: signature, authorization: auth };
      var payload = {
        x402Version: 2,
        resource: required.resource,
        accepted: r,
        payload: inner
      };
      if (required.extensions) payload.extensions = required.extensions;
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
      var settled = b64decodeJson(response.headers.get("PAYMENT-RESPONSE") || "");
      var tx = settled && settled.transaction ? " Transaction " + settled.transaction + "." : "";
      show("Paid " + label(r) + "." + tx, "ok");
      pay.replaceChildren();
      await showContent(response);
    } catch (e) {
      show(walletError(e), "error");
    } finally {
      button.disabled = false;
    }
  }

  // --- the pay section -------------------------------------------------------------------------
  if (!required || !required.accepts || required.accepts.length === 0) {
    pay.replaceChildren(el("p", "This resource takes x402 version 1 payments only, which this page " +
      "cannot make. Pay with an x402 client instead."));
    return;
  }
  var payable = required.accepts.filter(function (r) { return whyNot(r) === null; });
  pay.replaceChildren();
  if (payable.length === 0) {
    pay.append(el("p", "This page cannot pay any of the offers: " + whyNot(required.accepts[0]) +
      ". Pay with an x402 client instead."));
    return;
  }
  if (!window.ethereum || typeof window.ethereum.request !== "function") {
    pay.append(el("p", "No browser wallet found. Install an Ethereum wallet extension, or pay with an x402 client."));
    return;
  }
  var choice = payable[0];
  if (payable.length > 1) {
    var select = el("select");
    payable.forEach(function (r, i) {
      var o = el("option", label(r) + " on " + r.network);
      o.value = String(i);
      select.append(o);
    });
    select.addEventListener("change", function () { choice = payable[Number(select.value)]; });
    pay.append(select);
  }
  var button = el("button", "Pay with wallet");
  button.id = "pay-button";
  button.addEventListener("click", function () { payWith(choice, button); });
  pay.append(button);
})();
