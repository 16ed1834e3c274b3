//! Solidity bindings for the x402 Permit2 proxies and the test wallets, and the EIP-712 structs a
//! buyer signs for Permit2 payments.
//!
//! The `exact` and `upto` witnesses are both called `Witness` in EIP-712 (the type string fixes
//! the name), so each scheme gets its own module; `TokenPermissions` and the Permit2 call structs
//! are repeated in both because a `sol!` interface can only use structs of its own invocation.

#![allow(missing_docs, clippy::too_many_arguments)]

/// `exact` via Permit2: the signed EIP-712 structs and `x402ExactPermit2Proxy`.
pub mod exact {
    alloy::sol! {
        #![sol(all_derives)]

        /// EIP-712 `TokenPermissions(address token,uint256 amount)` (Permit2).
        struct TokenPermissions {
            address token;
            uint256 amount;
        }

        /// EIP-712 `Witness(address to,uint256 validAfter)` of the exact proxy.
        struct Witness {
            address to;
            uint256 validAfter;
        }

        /// The EIP-712 message a buyer signs for an exact Permit2 payment (Permit2 domain).
        struct PermitWitnessTransferFrom {
            TokenPermissions permitted;
            address spender;
            uint256 nonce;
            uint256 deadline;
            Witness witness;
        }

        /// Permit2's `ISignatureTransfer.PermitTransferFrom` (the call argument; no spender, no
        /// witness).
        struct PermitTransferFrom {
            TokenPermissions permitted;
            uint256 nonce;
            uint256 deadline;
        }

        /// The EIP-2612 permit `settleWithPermit` submits before the transfer.
        struct EIP2612Permit {
            uint256 value;
            uint256 deadline;
            bytes32 r;
            bytes32 s;
            uint8 v;
        }

        /// `contracts/x402ExactPermit2Proxy.sol`.
        #[sol(rpc)]
        interface IX402ExactPermit2Proxy {
            function PERMIT2() external view returns (address);
            function WITNESS_TYPE_STRING() external view returns (string);
            function WITNESS_TYPEHASH() external view returns (bytes32);
            function settle(
                PermitTransferFrom permit,
                address owner,
                Witness witness,
                bytes signature
            ) external;
            function settleWithPermit(
                EIP2612Permit permit2612,
                PermitTransferFrom permit,
                address owner,
                Witness witness,
                bytes signature
            ) external;

            event Settled();
            event SettledWithPermit();
            event EIP2612PermitFailedWithReason(address indexed token, address indexed owner, string reason);
            event EIP2612PermitFailedWithPanic(address indexed token, address indexed owner, uint256 errorCode);
            event EIP2612PermitFailedWithData(address indexed token, address indexed owner, bytes data);

            error InvalidAmount();
            error InvalidOwner();
            error InvalidDestination();
            error PaymentTooEarly();
            error Permit2612AmountMismatch();
            error ReentrancyGuardReentrantCall();
        }
    }
}

/// `upto` via Permit2: the signed EIP-712 structs and `x402UptoPermit2Proxy`.
pub mod upto {
    alloy::sol! {
        #![sol(all_derives)]

        /// EIP-712 `TokenPermissions(address token,uint256 amount)` (Permit2).
        struct TokenPermissions {
            address token;
            uint256 amount;
        }

        /// EIP-712 `Witness(address to,address facilitator,uint256 validAfter)` of the upto proxy.
        struct Witness {
            address to;
            address facilitator;
            uint256 validAfter;
        }

        /// The EIP-712 message a buyer signs for an upto Permit2 payment (Permit2 domain).
        struct PermitWitnessTransferFrom {
            TokenPermissions permitted;
            address spender;
            uint256 nonce;
            uint256 deadline;
            Witness witness;
        }

        /// Permit2's `ISignatureTransfer.PermitTransferFrom` (the call argument).
        struct PermitTransferFrom {
            TokenPermissions permitted;
            uint256 nonce;
            uint256 deadline;
        }

        /// The EIP-2612 permit `settleWithPermit` submits before the transfer.
        struct EIP2612Permit {
            uint256 value;
            uint256 deadline;
            bytes32 r;
            bytes32 s;
            uint8 v;
        }

        /// `contracts/x402UptoPermit2Proxy.sol`.
        #[sol(rpc)]
        interface IX402UptoPermit2Proxy {
            function PERMIT2() external view returns (address);
            function WITNESS_TYPE_STRING() external view returns (string);
            function WITNESS_TYPEHASH() external view returns (bytes32);
            function settle(
                PermitTransferFrom permit,
                uint256 amount,
                address owner,
                Witness witness,
                bytes signature
            ) external;
            function settleWithPermit(
                EIP2612Permit permit2612,
                PermitTransferFrom permit,
                uint256 amount,
                address owner,
                Witness witness,
                bytes signature
            ) external;

            event Settled();
            event SettledWithPermit();
            event EIP2612PermitFailedWithReason(address indexed token, address indexed owner, string reason);
            event EIP2612PermitFailedWithPanic(address indexed token, address indexed owner, uint256 errorCode);
            event EIP2612PermitFailedWithData(address indexed token, address indexed owner, bytes data);

            error InvalidAmount();
            error InvalidOwner();
            error InvalidDestination();
            error PaymentTooEarly();
            error Permit2612AmountMismatch();
            error ReentrancyGuardReentrantCall();
            error AmountExceedsPermitted();
            error UnauthorizedFacilitator();
        }
    }
}

/// EIP-2612 `permit`, used by `settleWithPermit` (`eip2612GasSponsoring`).
pub mod eip2612 {
    alloy::sol! {
        #![sol(all_derives)]

        /// EIP-712 `Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)`.
        struct Permit {
            address owner;
            address spender;
            uint256 value;
            uint256 nonce;
            uint256 deadline;
        }
    }
}

alloy::sol! {
    #![sol(all_derives)]

    /// EIP-2612's token side: `permit` and the per-owner nonce.
    #[sol(rpc)]
    interface IERC20Permit {
        function permit(
            address owner,
            address spender,
            uint256 value,
            uint256 deadline,
            uint8 v,
            bytes32 r,
            bytes32 s
        ) external;
        function nonces(address owner) external view returns (uint256);
        function DOMAIN_SEPARATOR() external view returns (bytes32);
    }

    /// Permit2's custom errors (`PermitErrors.sol`, `SignatureVerification.sol`,
    /// `ISignatureTransfer`), for decoding reverts that bubble up through the proxies.
    interface IPermit2Errors {
        error InvalidNonce();
        error SignatureExpired(uint256 signatureDeadline);
        error InvalidSignatureLength();
        error InvalidSignature();
        error InvalidSigner();
        error InvalidContractSignature();
        error InvalidAmount(uint256 maxAmount);
        error LengthMismatch();
    }

    /// `contracts/test/SmartWallet.sol`: an ERC-1271 wallet with one EOA owner.
    #[sol(rpc)]
    interface ISmartWallet {
        function owner() external view returns (address);
        function signaturesDisabled() external view returns (bool);
        function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4);
        function execute(address target, bytes data) external returns (bytes result);
        function setSignaturesDisabled(bool disabled) external;

        event Executed(address indexed target, bytes data);
        event SignaturesDisabled(bool disabled);

        error NotOwner();
        error CallFailed(bytes data);
    }

    /// `contracts/test/WalletFactory.sol`: CREATE2 factory of [`ISmartWallet`]s (ERC-6492
    /// factory).
    #[sol(rpc)]
    interface IWalletFactory {
        function deploy(address owner, bytes32 salt) external returns (address wallet);
        function predict(address owner, bytes32 salt) external view returns (address);

        event WalletDeployed(address indexed wallet, address indexed owner, bytes32 salt);

        error UnexpectedAddress(address deployed, address predicted);
    }
}
