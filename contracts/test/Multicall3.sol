// SPDX-License-Identifier: MIT
pragma solidity 0.8.17;

/// @notice The `tryAggregate` entry point of Multicall3, written for the test bed and placed at
/// Multicall3's canonical address. The facilitator batches an ERC-6492 wallet deployment with the
/// payment through it, atomically.
contract Multicall3 {
    struct Call {
        address target;
        bytes callData;
    }

    struct Result {
        bool success;
        bytes returnData;
    }

    /// @notice Runs each call in order; with `requireSuccess`, any failure reverts the batch.
    function tryAggregate(bool requireSuccess, Call[] calldata calls)
        external
        payable
        returns (Result[] memory returnData)
    {
        returnData = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; i++) {
            (bool ok, bytes memory ret) = calls[i].target.call(calls[i].callData);
            if (requireSuccess && !ok) {
                assembly {
                    revert(add(ret, 32), mload(ret))
                }
            }
            returnData[i] = Result(ok, ret);
        }
    }
}
