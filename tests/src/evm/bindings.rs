//! Solidity bindings for the parts of the deployed contracts the test bed and tests use.

#![allow(missing_docs, clippy::too_many_arguments)]

alloy::sol! {
    /// Circle's FiatTokenV2_2 (USDC): the functions the test bed and tests call.
    #[sol(rpc)]
    interface IFiatToken {
        function name() external view returns (string);
        function symbol() external view returns (string);
        function currency() external view returns (string);
        function version() external pure returns (string);
        function decimals() external view returns (uint8);
        function DOMAIN_SEPARATOR() external view returns (bytes32);
        function TRANSFER_WITH_AUTHORIZATION_TYPEHASH() external view returns (bytes32);
        function RECEIVE_WITH_AUTHORIZATION_TYPEHASH() external view returns (bytes32);
        function totalSupply() external view returns (uint256);
        function balanceOf(address account) external view returns (uint256);
        function allowance(address owner, address spender) external view returns (uint256);
        function approve(address spender, uint256 value) external returns (bool);
        function transfer(address to, uint256 value) external returns (bool);
        function transferFrom(address from, address to, uint256 value) external returns (bool);
        function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
        function nonces(address owner) external view returns (uint256);
        function permit(
            address owner,
            address spender,
            uint256 value,
            uint256 deadline,
            uint8 v,
            bytes32 r,
            bytes32 s
        ) external;
        function initialize(
            string tokenName,
            string tokenSymbol,
            string tokenCurrency,
            uint8 tokenDecimals,
            address newMasterMinter,
            address newPauser,
            address newBlacklister,
            address newOwner
        ) external;
        function initializeV2(string newName) external;
        function initializeV2_1(address lostAndFound) external;
        function initializeV2_2(address[] accountsToBlacklist, string newSymbol) external;
        function configureMinter(address minter, uint256 minterAllowedAmount) external returns (bool);
        function mint(address to, uint256 amount) external returns (bool);
        function blacklist(address account) external;
        function unBlacklist(address account) external;
        function isBlacklisted(address account) external view returns (bool);
        function pause() external;
        function unpause() external;
        function paused() external view returns (bool);
    }

    /// Uniswap's Permit2: the functions the test bed and tests call.
    #[sol(rpc)]
    interface IPermit2 {
        function DOMAIN_SEPARATOR() external view returns (bytes32);
        function allowance(address user, address token, address spender)
            external view returns (uint160 amount, uint48 expiration, uint48 nonce);
        function nonceBitmap(address owner, uint256 wordPos) external view returns (uint256);
        function approve(address token, address spender, uint160 amount, uint48 expiration) external;
    }
}
