// SPDX-License-Identifier: MIT
// Contracts the txshadow test traffic runs on anvil. Compiled by build.sh (solc 0.8.37, optimizer
// on, EVM cancun) into out/*.bin, which the tests embed.
pragma solidity 0.8.37;

/// A plain ERC-20.
contract Token {
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    uint256 public totalSupply;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    error Insufficient(uint256 have, uint256 want);

    constructor(uint256 supply) {
        balanceOf[msg.sender] = supply;
        totalSupply = supply;
        emit Transfer(address(0), msg.sender, supply);
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _move(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 a = allowance[from][msg.sender];
        if (a < value) revert Insufficient(a, value);
        if (a != type(uint256).max) allowance[from][msg.sender] = a - value;
        _move(from, to, value);
        return true;
    }

    function _move(address from, address to, uint256 value) internal {
        uint256 b = balanceOf[from];
        if (b < value) revert Insufficient(b, value);
        unchecked {
            balanceOf[from] = b - value;
        }
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }
}

/// Reads the block context, writes and clears storage, creates contracts, fails on purpose.
contract Probe {
    mapping(uint256 => uint256) public slots;

    event Context(
        uint256 indexed number,
        bytes32 parentHash,
        bytes32 olderHash,
        uint256 timestamp,
        uint256 basefee,
        uint256 prevrandao,
        address coinbase,
        uint256 gaslimit,
        uint256 chainid
    );
    event Blob(bytes32 versionedHash, uint256 blobBaseFee);
    event Created(address plain, address salted);

    error Failed(uint256 code);

    /// BLOCKHASH of the parent and of `back` blocks ago, TIMESTAMP, BASEFEE, PREVRANDAO...
    function context(uint256 back) external {
        bytes32 p = blockhash(block.number - 1);
        bytes32 o = blockhash(block.number - back);
        slots[block.number] = uint256(p) ^ block.timestamp;
        emit Context(
            block.number, p, o, block.timestamp, block.basefee, block.prevrandao,
            block.coinbase, block.gaslimit, block.chainid
        );
    }

    /// BLOBHASH and BLOBBASEFEE (called by a blob transaction).
    function blob() external {
        bytes32 h = blobhash(0);
        slots[uint256(h) % 1000] = block.blobbasefee + 1;
        emit Blob(h, block.blobbasefee);
    }

    /// Writes a slot; a zero value clears it.
    function put(uint256 key, uint256 value) external {
        slots[key] = value;
    }

    /// Writes `count` slots (runs out of gas when given little).
    function putMany(uint256 from, uint256 count, uint256 value) external {
        for (uint256 i = 0; i < count; i++) {
            slots[from + i] = value;
        }
    }

    function fail(uint256 code) external pure {
        revert Failed(code);
    }

    /// A CREATE and a CREATE2.
    function make(bytes32 salt) external payable returns (address plain, address salted) {
        plain = address(new Child{value: msg.value / 2}(1));
        salted = address(new Child{salt: salt}(2));
        emit Created(plain, salted);
    }

    /// A contract created and destroyed in one transaction (EIP-6780: it is removed).
    function makeAndKill(bytes32 salt) external {
        Child c = new Child{salt: salt}(3);
        c.bye();
    }
}

contract Child {
    uint256 public value;

    constructor(uint256 v) payable {
        value = v;
    }

    function bye() external {
        selfdestruct(payable(msg.sender));
    }
}

/// An EIP-7702 delegate: an account delegating to it keeps a counter in its own storage.
contract Delegate {
    uint256 public count;

    event Ping(address indexed self, uint256 count);

    function ping() external {
        count += 1;
        emit Ping(address(this), count);
    }
}
