#!/usr/bin/env python3
"""Measures a solana-test-validator's responsiveness: slots per second at `processed` and
`confirmed`, and the time from a faucet airdrop's signature to `confirmed`.

    probe.py RPC_URL [--seconds N] [--airdrops N]

Prints one line of figures. Used by bench/svm-load/run.sh to compare an idle machine with one
whose cores are busy (docs/settle-timing.md)."""
import argparse
import json
import os
import time
import urllib.request


def rpc(url, method, params=None):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    req = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        answer = json.load(r)
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def b58(data):
    """Base58 (Bitcoin alphabet), for a random address."""
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = alphabet[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def slot(url, commitment):
    return rpc(url, "getSlot", [{"commitment": commitment}])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--airdrops", type=int, default=5)
    a = p.parse_args()

    t0 = time.monotonic()
    s0p, s0c = slot(a.url, "processed"), slot(a.url, "confirmed")
    time.sleep(a.seconds)
    dt = time.monotonic() - t0
    s1p, s1c = slot(a.url, "processed"), slot(a.url, "confirmed")
    lag = s1p - s1c

    latencies = []
    calls = []
    for i in range(a.airdrops):
        start = time.monotonic()
        rpc(a.url, "getVersion")
        calls.append(time.monotonic() - start)
        start = time.monotonic()
        sig = rpc(a.url, "requestAirdrop", [b58(os.urandom(32)), 1_000_000])
        while True:
            st = rpc(a.url, "getSignatureStatuses", [[sig]])["value"][0]
            if st and st.get("confirmationStatus") in ("confirmed", "finalized"):
                break
            time.sleep(0.05)
        latencies.append(time.monotonic() - start)
    latencies.sort()
    print(
        f"slots/s processed {(s1p - s0p) / dt:.2f} confirmed {(s1c - s0c) / dt:.2f} "
        f"(processed-confirmed lag {lag}); getVersion median {sorted(calls)[len(calls) // 2] * 1000:.0f} ms; "
        f"airdrop->confirmed median {latencies[len(latencies) // 2]:.2f} s max {latencies[-1]:.2f} s"
    )


if __name__ == "__main__":
    main()
