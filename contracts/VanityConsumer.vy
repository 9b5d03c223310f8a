# pragma version ~=0.4.3
"""
@title Vanity address consumer
@notice Example requester contract: buys a split-key vanity search from the hub for its own
        public key and keeps what the oracle delivers. A caller pays the app's price (after
        approving this contract for it); the hub's task id is returned and later filled in.
        In split-key mode the grid only ever sees this public key: the result is a partial
        private key that the owner of the matching secret combines off-chain.
"""

from ethereum.ercs import IERC20

MAX_PARAMS: constant(uint256) = 1024
MAX_RESULT: constant(uint256) = 1024
MAX_PREFIX: constant(uint256) = 16
PUBKEY_HEX: constant(uint256) = 66


interface TaskHub:
    def appPrice(_appId: uint256) -> uint256: view
    def request(_appId: uint256, _params: Bytes[MAX_PARAMS], _callback: address, _deadline: uint256, _maxPrice: uint256) -> uint256: payable
    def refund(_taskId: uint256): nonpayable


event VanityRequested:
    taskId: indexed(uint256)
    payer: indexed(address)
    prefix: String[MAX_PREFIX]

event ResultReceived:
    taskId: indexed(uint256)
    result: Bytes[MAX_RESULT]

event Reclaimed:
    taskId: indexed(uint256)
    payer: indexed(address)
    amount: uint256


hub: public(immutable(TaskHub))
token: public(immutable(IERC20))
appId: public(immutable(uint256))
pubkey: public(String[PUBKEY_HEX])

payer: public(HashMap[uint256, address])
paid: public(HashMap[uint256, uint256])
fee: public(HashMap[uint256, uint256])
received: public(HashMap[uint256, bool])
results: public(HashMap[uint256, Bytes[MAX_RESULT]])
lastTaskId: public(uint256)


@internal
@pure
def _byte_at(_s: Bytes[PUBKEY_HEX], _i: uint256) -> uint8:
    return convert(convert(slice(_s, _i, 1), bytes1), uint8)


@internal
@pure
def _is_hex(_c: uint8) -> bool:
    return (_c >= 48 and _c <= 57) or (_c >= 97 and _c <= 102) or (_c >= 65 and _c <= 70)


@internal
@pure
def _is_base58(_c: uint8) -> bool:
    # 1-9, A-Z without I and O, a-z without l
    if _c >= 49 and _c <= 57:
        return True
    if _c >= 65 and _c <= 90:
        return _c != 73 and _c != 79
    if _c >= 97 and _c <= 122:
        return _c != 108
    return False


@deploy
def __init__(_hub: TaskHub, _token: IERC20, _appId: uint256, _pubkey: String[PUBKEY_HEX]):
    raw: Bytes[PUBKEY_HEX] = convert(_pubkey, Bytes[PUBKEY_HEX])
    assert len(raw) == PUBKEY_HEX, "consumer: pubkey must be 66 hex characters"
    first: uint8 = self._byte_at(raw, 0)
    second: uint8 = self._byte_at(raw, 1)
    assert first == 48 and (second == 50 or second == 51), "consumer: pubkey is not compressed (02/03)"
    for i: uint256 in range(PUBKEY_HEX):
        assert self._is_hex(self._byte_at(raw, i)), "consumer: pubkey is not hex"
    hub = _hub
    token = _token
    appId = _appId
    self.pubkey = _pubkey


@external
@payable
def requestVanity(_prefix: String[MAX_PREFIX], _deadline: uint256, _maxPrice: uint256) -> uint256:
    """
    @notice Pull the app's price, at most `_maxPrice`, from the caller and request a vanity
            search for `_prefix`. The ether sent is the hub's callback fee (the gas of the
            delivery to this contract, paid to the oracle).
    @dev The prefix is checked against the Base58 alphabet, which also keeps the JSON built
         below well-formed (no quote, no backslash).
    """
    raw: Bytes[MAX_PREFIX] = convert(_prefix, Bytes[MAX_PREFIX])
    assert len(raw) > 0, "consumer: empty prefix"
    for i: uint256 in range(len(raw), bound=MAX_PREFIX):
        c: uint8 = convert(convert(slice(raw, i, 1), bytes1), uint8)
        assert self._is_base58(c), "consumer: prefix is not base58"

    price: uint256 = staticcall hub.appPrice(appId)
    assert price <= _maxPrice, "consumer: price above the maximum"
    if price > 0:
        assert extcall token.transferFrom(msg.sender, self, price, default_return_value=True), "consumer: payment failed"
        assert extcall token.approve(hub.address, price, default_return_value=True), "consumer: approve failed"
    params: String[MAX_PARAMS] = concat('{"prefix":"', _prefix, '","pubkey":"', self.pubkey, '"}')
    taskId: uint256 = extcall hub.request(appId, convert(params, Bytes[MAX_PARAMS]), self, _deadline, price, value=msg.value)
    self.payer[taskId] = msg.sender
    self.paid[taskId] = price
    if msg.value > 0:
        self.fee[taskId] = msg.value
    log VanityRequested(taskId=taskId, payer=msg.sender, prefix=_prefix)
    return taskId


@external
def receiveResult(_taskId: uint256, _result: Bytes[MAX_RESULT]):
    assert msg.sender == hub.address, "consumer: caller is not the hub"
    assert self.payer[_taskId] != empty(address), "consumer: unknown task"
    self.received[_taskId] = True
    self.results[_taskId] = _result
    self.lastTaskId = _taskId
    log ResultReceived(taskId=_taskId, result=_result)


@view
@external
def lastResult() -> Bytes[MAX_RESULT]:
    """@notice The result of the latest delivered task (not stored twice: storage is gas)."""
    return self.results[self.lastTaskId]


@external
def reclaim(_taskId: uint256):
    """@notice After the deadline, get the escrow back from the hub and return it to the payer."""
    payer: address = self.payer[_taskId]
    assert payer == msg.sender, "consumer: caller is not the payer"
    amount: uint256 = self.paid[_taskId]
    fee: uint256 = self.fee[_taskId]
    self.paid[_taskId] = 0
    self.fee[_taskId] = 0
    extcall hub.refund(_taskId)
    if amount > 0:
        assert extcall token.transfer(payer, amount, default_return_value=True), "consumer: transfer failed"
    if fee > 0:
        send(payer, fee)
    log Reclaimed(taskId=_taskId, payer=payer, amount=amount)


@external
@payable
def __default__():
    """@notice The hub returns an unspent callback fee here (reclaim); nobody else sends ether."""
    assert msg.sender == hub.address, "consumer: ether only from the hub"
