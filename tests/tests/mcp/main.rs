//! x402 over MCP on anvil: our paying client (`x402-mcp` + `x402-buyer`) calls tools of our paid
//! MCP server (`x402-mcp` over `x402-seller`, our facilitator over HTTP) over streamable HTTP and
//! stdio; and everything that must NOT happen: a payment moved without the tool's success, a bad
//! payment charged, a payment settled twice. Interop: with the official Python x402 MCP
//! implementation (`python`, `python_svm`: PyPI `x402`'s `x402.mcp`, both ways, both transports,
//! on anvil and Solana) and with the official MCP and x402 TypeScript SDKs (`interop`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod http;
mod interop;
mod python;
mod python_svm;
mod stdio;
