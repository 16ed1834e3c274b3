//! Solidity types and interfaces: the EIP-712 structs buyers sign and the contract calls the
//! facilitator makes. Struct names are the EIP-712 type names, so the type strings (and hashes)
//! are the ones of x402-spec §3.1–§3.3 and §4.

#![allow(missing_docs, clippy::too_many_arguments)]

/// EIP-3009 `transferWithAuthorization` (Circle FiatToken and compatible tokens).
pub mod eip3009 {
    alloy::sol! {
        /// The EIP-712 message of an EIP-3009 authorization.
        #[derive(Debug, PartialEq, Eq)]
        struct TransferWithAuthorization {
            address from;
            address to;
            uint256 value;
            uint256 validAfter;
            uint256 validBefore;
            bytes32 nonce;
        }

        /// The token functions the facilitator calls.
        #[sol(rpc)]
        interface IEip3009Token {
            function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;
            function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, bytes signature) external;
            function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
            function balanceOf(address account) external view returns (uint256);
            function allowance(address owner, address spender) external view returns (uint256);
            function name() external view returns (string);
            function version() external view returns (string);
            function decimals() external view returns (uint8);
            event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
            event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);
            event Transfer(address indexed from, address indexed to, uint256 value);
        }
    }
}

/// The EIP-712 message a buyer signs for the exact proxy (Permit2 domain).
pub mod permit2_exact {
    alloy::sol! {
        /// What Permit2 lets the spender move.
        #[derive(Debug, PartialEq, Eq)]
        struct TokenPermissions {
            address token;
            uint256 amount;
        }

        /// The exact proxy's witness: recipient and start of validity.
        #[derive(Debug, PartialEq, Eq)]
        struct Witness {
            address to;
            uint256 validAfter;
        }

        /// The signed message.
        #[derive(Debug, PartialEq, Eq)]
        struct PermitWitnessTransferFrom {
            TokenPermissions permitted;
            address spender;
            uint256 nonce;
            uint256 deadline;
            Witness witness;
        }
    }
}

/// The EIP-712 message a buyer signs for the upto proxy (Permit2 domain).
pub mod permit2_upto {
    alloy::sol! {
        /// What Permit2 lets the spender move (at most).
        #[derive(Debug, PartialEq, Eq)]
        struct TokenPermissions {
            address token;
            uint256 amount;
        }

        /// The upto proxy's witness: recipient, the facilitator allowed to settle, start of validity.
        #[derive(Debug, PartialEq, Eq)]
        struct Witness {
            address to;
            address facilitator;
            uint256 validAfter;
        }

        /// The signed message.
        #[derive(Debug, PartialEq, Eq)]
        struct PermitWitnessTransferFrom {
            TokenPermissions permitted;
            address spender;
            uint256 nonce;
            uint256 deadline;
            Witness witness;
        }
    }
}

/// EIP-2612 `permit`: the EIP-712 message a token holder signs to grant an allowance without a
/// transaction of its own (the `eip2612GasSponsoring` extension grants Permit2 one this way, and
/// the facilitator submits it through `settleWithPermit`).
pub mod eip2612 {
    alloy::sol! {
        /// The EIP-712 message of an EIP-2612 permit (the token's own domain).
        #[derive(Debug, PartialEq, Eq)]
        struct Permit {
            address owner;
            address spender;
            uint256 value;
            uint256 nonce;
            uint256 deadline;
        }

        /// The EIP-2612 token functions the gas-sponsoring extension reads and simulates.
        #[sol(rpc)]
        interface IEip2612Token {
            function nonces(address owner) external view returns (uint256);
            function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external;
            function allowance(address owner, address spender) external view returns (uint256);
        }
    }
}

/// The two x402 Permit2 proxies and the ERC-20 calls around them.
pub mod permit2 {
    alloy::sol! {
        /// Permit2's `TokenPermissions`.
        #[derive(Debug)]
        struct TokenPermissions {
            address token;
            uint256 amount;
        }

        /// Permit2's `ISignatureTransfer.PermitTransferFrom`.
        #[derive(Debug)]
        struct PermitTransferFrom {
            TokenPermissions permitted;
            uint256 nonce;
            uint256 deadline;
        }

        /// The exact proxy's witness tuple.
        #[derive(Debug)]
        struct ExactWitness {
            address to;
            uint256 validAfter;
        }

        /// The upto proxy's witness tuple.
        #[derive(Debug)]
        struct UptoWitness {
            address to;
            address facilitator;
            uint256 validAfter;
        }

        /// An EIP-2612 permit passed to `settleWithPermit`.
        #[derive(Debug)]
        struct EIP2612Permit {
            uint256 value;
            uint256 deadline;
            bytes32 r;
            bytes32 s;
            uint8 v;
        }

        /// `x402ExactPermit2Proxy`.
        #[sol(rpc)]
        interface IExactPermit2Proxy {
            function PERMIT2() external view returns (address);
            function settle(PermitTransferFrom permit, address owner, ExactWitness witness, bytes signature) external;
            function settleWithPermit(EIP2612Permit permit2612, PermitTransferFrom permit, address owner, ExactWitness witness, bytes signature) external;
            error InvalidAmount();
            error InvalidOwner();
            error InvalidDestination();
            error PaymentTooEarly();
            error Permit2612AmountMismatch();
            event Settled();
            event SettledWithPermit();
        }

        /// `x402UptoPermit2Proxy`.
        #[sol(rpc)]
        interface IUptoPermit2Proxy {
            function PERMIT2() external view returns (address);
            function settle(PermitTransferFrom permit, uint256 amount, address owner, UptoWitness witness, bytes signature) external;
            function settleWithPermit(EIP2612Permit permit2612, PermitTransferFrom permit, uint256 amount, address owner, UptoWitness witness, bytes signature) external;
            error InvalidAmount();
            error InvalidOwner();
            error InvalidDestination();
            error PaymentTooEarly();
            error Permit2612AmountMismatch();
            error AmountExceedsPermitted();
            error UnauthorizedFacilitator();
            event Settled();
            event SettledWithPermit();
        }

        /// Permit2's nonce bitmap.
        #[sol(rpc)]
        interface IPermit2Nonces {
            function nonceBitmap(address owner, uint256 wordPos) external view returns (uint256);
        }

        /// Permit2's own errors, for reading reverts.
        interface IPermit2Errors {
            error InvalidNonce();
            error SignatureExpired(uint256 signatureDeadline);
            error InvalidSignature();
            error InvalidSigner();
            error InvalidSignatureLength();
            error InvalidContractSignature();
        }
    }
}

/// Smart-wallet signatures and Multicall3.
pub mod wallet {
    alloy::sol! {
        /// EIP-1271.
        #[sol(rpc)]
        interface IERC1271 {
            function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4 magicValue);
        }

        /// One call of a Multicall3 batch.
        #[derive(Debug)]
        struct Call {
            address target;
            bytes callData;
        }

        /// One result of a Multicall3 batch.
        #[derive(Debug)]
        struct Result {
            bool success;
            bytes returnData;
        }

        /// Multicall3's `tryAggregate`.
        #[sol(rpc)]
        interface IMulticall3 {
            function tryAggregate(bool requireSuccess, Call[] calls) external payable returns (Result[] returnData);
        }
    }
}
