-- 4: sign-in-with-x (x402-siwx): who paid for which resource, and the nonces of accepted proofs.
CREATE TABLE x402_siwx_payments (
    resource text NOT NULL,
    payer    text NOT NULL,
    paid_at  bigint NOT NULL,
    PRIMARY KEY (resource, payer)
);
CREATE TABLE x402_siwx_nonces (
    nonce      text PRIMARY KEY,
    expires_at bigint NOT NULL
);
CREATE INDEX x402_siwx_nonces_expires ON x402_siwx_nonces (expires_at);
