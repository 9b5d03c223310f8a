# pragma version ~=0.4.3
"""
@title Hostile requester (test double)
@notice A requester whose `receiveResult` misbehaves on purpose, to show that the hub's
        payment stands whatever the callback does and that the hub cannot be re-entered.
        Never deploy it outside tests.
"""

from ethereum.ercs import IERC20

MODE_ACCEPT: constant(uint8) = 0
MODE_REVERT: constant(uint8) = 1
MODE_BURN: constant(uint8) = 2
MODE_REENTER: constant(uint8) = 3


interface TaskHub:
    def request(_appId: uint256, _params: Bytes[1024], _callback: address, _deadline: uint256, _maxPrice: uint256) -> uint256: payable
    def refund(_taskId: uint256): nonpayable


hub: public(immutable(TaskHub))
token: public(immutable(IERC20))
mode: public(uint8)
calls: public(uint256)
lastTaskId: public(uint256)
# Outcome of the calls tried from inside the callback in MODE_REENTER.
reenterAttempted: public(bool)
reenterRequestOk: public(bool)
reenterRefundOk: public(bool)
reenterAppId: uint256
reenterDeadline: uint256
sink: HashMap[uint256, uint256]


@deploy
def __init__(_hub: TaskHub, _token: IERC20):
    hub = _hub
    token = _token


@external
def setMode(_mode: uint8, _appId: uint256, _deadline: uint256):
    self.mode = _mode
    self.reenterAppId = _appId
    self.reenterDeadline = _deadline


@external
def approveHub(_amount: uint256):
    extcall token.approve(hub.address, _amount)


@external
@payable
def requestTask(_appId: uint256, _deadline: uint256) -> uint256:
    """@notice Request a task with this contract as requester and callback (the ether sent is
    its callback fee)."""
    return extcall hub.request(_appId, b"hostile", self, _deadline, max_value(uint256), value=msg.value)


@external
def refundTask(_taskId: uint256):
    extcall hub.refund(_taskId)


@external
def receiveResult(_taskId: uint256, _result: Bytes[1024]):
    if self.mode == MODE_REVERT:
        raise "hostile: refusing the result"
    if self.mode == MODE_BURN:
        # Storage writes until the stipend runs out.
        for i: uint256 in range(100000):
            self.sink[i] = i + 1
    if self.mode == MODE_REENTER:
        self.reenterAttempted = True
        self.reenterRequestOk = raw_call(
            hub.address,
            abi_encode(
                self.reenterAppId,
                b"reentered",
                self,
                self.reenterDeadline,
                max_value(uint256),
                method_id=method_id("request(uint256,bytes,address,uint256,uint256)"),
            ),
            revert_on_failure=False,
        )
        self.reenterRefundOk = raw_call(
            hub.address,
            abi_encode(_taskId, method_id=method_id("refund(uint256)")),
            revert_on_failure=False,
        )
    self.calls += 1
    self.lastTaskId = _taskId


@external
@payable
def __default__():
    pass  # an unspent callback fee, refunded
