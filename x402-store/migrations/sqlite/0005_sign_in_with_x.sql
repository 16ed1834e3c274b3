-- 4: sign-in-with-x (x402-siwx): who paid for which resource, and the nonces of accepted proofs.
CREATE TABLE x402_siwx_payments (
    resource TEXT NOT NULL,
    payer    TEXT NOT NULL,
    paid_at  INTEGER NOT NULL,
    PRIMARY KEY (resource, payer)
);
CREATE TABLE x402_siwx_nonces (
    nonce      TEXT PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX x402_siwx_nonces_expires ON x402_siwx_nonces (expires_at);
