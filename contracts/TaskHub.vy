# pragma version ~=0.4.3
"""
@title xwpy task hub
@notice Apps are registered with a price in RLC. A requester approves the price and calls
        `request` with the most it agrees to pay; the hub holds the RLC in escrow and logs
        `TaskRequested`, which the off-chain oracle follows. Only the oracle may `commit` the
        certified result of that very request (its id and its content hash), before the
        deadline: that pays the app owner and the worker pool, stores the result digest, logs
        `TaskCompleted` and calls the requester's callback with the gas the requester paid
        for (ether sent with the request, the oracle's at commit). After the deadline an
        uncommitted task can only be refunded to its requester, ether included.

        Fee split: the pool gets floor(price * poolFeeBps / 10000), the app owner gets the
        rest, so the two always add up to the escrowed price exactly.
"""

from ethereum.ercs import IERC20

MAX_PARAMS: constant(uint256) = 1024
MAX_RESULT: constant(uint256) = 1024
MAX_NAME: constant(uint256) = 64
BPS: constant(uint256) = 10000

# Task status. NONE is the default of an unknown id.
STATUS_NONE: constant(uint8) = 0
STATUS_REQUESTED: constant(uint8) = 1
STATUS_COMPLETED: constant(uint8) = 2
STATUS_REFUNDED: constant(uint8) = 3

# Gas spent between the stipend check and the CALL itself (encoding the result, the CALL's
# own cost for a cold account), with a margin. The requester's callback fee pays for it too.
CALLBACK_OVERHEAD: constant(uint256) = 20000


struct App:
    owner: address
    price: uint256
    name: String[MAX_NAME]


struct Task:
    appId: uint256
    requester: address
    callback: address
    price: uint256
    deadline: uint256
    status: uint8
    digest: bytes32
    requestHash: bytes32
    callbackFee: uint256


event AppRegistered:
    appId: indexed(uint256)
    owner: indexed(address)
    name: String[MAX_NAME]
    price: uint256

event AppPriceChanged:
    appId: indexed(uint256)
    price: uint256

event TaskRequested:
    taskId: indexed(uint256)
    appId: indexed(uint256)
    requester: indexed(address)
    callback: address
    params: Bytes[MAX_PARAMS]
    deadline: uint256
    price: uint256
    callbackFee: uint256
    requestHash: bytes32

event TaskCompleted:
    taskId: indexed(uint256)
    digest: bytes32
    result: Bytes[MAX_RESULT]
    callbackOk: bool

event TaskRefunded:
    taskId: indexed(uint256)
    requester: indexed(address)
    amount: uint256

event OracleChanged:
    previous: indexed(address)
    current: indexed(address)

event PoolChanged:
    previous: indexed(address)
    current: indexed(address)

event AdminChanged:
    previous: indexed(address)
    current: indexed(address)


token: public(immutable(IERC20))
poolFeeBps: public(immutable(uint256))
callbackGas: public(immutable(uint256))

admin: public(address)
oracle: public(address)
pool: public(address)

appCount: public(uint256)
apps: public(HashMap[uint256, App])
taskCount: public(uint256)
tasks: public(HashMap[uint256, Task])


@deploy
def __init__(
    _token: IERC20,
    _oracle: address,
    _pool: address,
    _poolFeeBps: uint256,
    _callbackGas: uint256,
):
    assert _token.address != empty(address), "hub: token is the zero address"
    assert _oracle != empty(address), "hub: oracle is the zero address"
    assert _pool != empty(address), "hub: pool is the zero address"
    assert _poolFeeBps <= BPS, "hub: pool fee above 100%"
    assert _callbackGas > 0, "hub: callback gas is zero"
    token = _token
    poolFeeBps = _poolFeeBps
    callbackGas = _callbackGas
    self.admin = msg.sender
    self.oracle = _oracle
    self.pool = _pool
    log AdminChanged(previous=empty(address), current=msg.sender)
    log OracleChanged(previous=empty(address), current=_oracle)
    log PoolChanged(previous=empty(address), current=_pool)


# --- administration ---------------------------------------------------------------------

@external
def setOracle(_oracle: address):
    assert msg.sender == self.admin, "hub: caller is not the admin"
    assert _oracle != empty(address), "hub: oracle is the zero address"
    log OracleChanged(previous=self.oracle, current=_oracle)
    self.oracle = _oracle


@external
def setPool(_pool: address):
    assert msg.sender == self.admin, "hub: caller is not the admin"
    assert _pool != empty(address), "hub: pool is the zero address"
    log PoolChanged(previous=self.pool, current=_pool)
    self.pool = _pool


@external
def setAdmin(_admin: address):
    assert msg.sender == self.admin, "hub: caller is not the admin"
    assert _admin != empty(address), "hub: admin is the zero address"
    log AdminChanged(previous=self.admin, current=_admin)
    self.admin = _admin


# --- apps -------------------------------------------------------------------------------

@external
def registerApp(_name: String[MAX_NAME], _price: uint256) -> uint256:
    assert len(_name) > 0, "hub: empty app name"
    appId: uint256 = self.appCount + 1
    self.appCount = appId
    self.apps[appId] = App(owner=msg.sender, price=_price, name=_name)
    log AppRegistered(appId=appId, owner=msg.sender, name=_name, price=_price)
    return appId


@external
def setAppPrice(_appId: uint256, _price: uint256):
    """@notice Applies to later requests; open tasks keep the price they escrowed."""
    assert self.apps[_appId].owner == msg.sender, "hub: caller is not the app owner"
    self.apps[_appId].price = _price
    log AppPriceChanged(appId=_appId, price=_price)


@view
@external
def appPrice(_appId: uint256) -> uint256:
    assert self.apps[_appId].owner != empty(address), "hub: unknown app"
    return self.apps[_appId].price


@internal
@view
def _poolShare(_price: uint256) -> uint256:
    # floor(price * poolFeeBps / BPS) without the product, which overflows for huge prices
    # (a commit that reverts leaves the task only refundable): price = q * BPS + r.
    return _price // BPS * poolFeeBps + _price % BPS * poolFeeBps // BPS


@view
@external
def poolShare(_price: uint256) -> uint256:
    return self._poolShare(_price)


# --- tasks ------------------------------------------------------------------------------

@external
@payable
@nonreentrant
def request(
    _appId: uint256,
    _params: Bytes[MAX_PARAMS],
    _callback: address,
    _deadline: uint256,
    _maxPrice: uint256,
) -> uint256:
    """
    @notice Escrow the app's price (approved beforehand) and open a task.
    @param _callback Contract to receive `receiveResult(uint256,bytes)`, or the zero address.
    @param _deadline Unix time after which the task can no longer be committed, only refunded.
    @param _maxPrice The most the requester pays: an app owner raising the price in front of
           this transaction makes it revert instead of charging more.
    @dev The ether sent (only with a callback) is the callback's fee, paid to the oracle at
         commit: the callback gets the gas it buys at the commit's gas price, at most
         `callbackGas` (see `commit`).
    """
    app: App = self.apps[_appId]
    assert app.owner != empty(address), "hub: unknown app"
    assert app.price <= _maxPrice, "hub: price above the maximum"
    assert _deadline > block.timestamp, "hub: deadline not in the future"
    assert msg.value == 0 or _callback != empty(address), "hub: callback fee without a callback"
    taskId: uint256 = self.taskCount + 1
    self.taskCount = taskId
    # What the oracle must commit for: after a reorganisation the same id can name another
    # request, and a result computed for the first must not reach the second.
    requestHash: bytes32 = keccak256(
        abi_encode(_appId, msg.sender, _callback, _params, _deadline, app.price, msg.value)
    )
    self.tasks[taskId] = Task(
        appId=_appId,
        requester=msg.sender,
        callback=_callback,
        price=app.price,
        deadline=_deadline,
        status=STATUS_REQUESTED,
        digest=empty(bytes32),
        requestHash=requestHash,
        callbackFee=msg.value,
    )
    if app.price > 0:
        assert extcall token.transferFrom(msg.sender, self, app.price, default_return_value=True), "hub: payment failed"
    log TaskRequested(
        taskId=taskId,
        appId=_appId,
        requester=msg.sender,
        callback=_callback,
        params=_params,
        deadline=_deadline,
        price=app.price,
        callbackFee=msg.value,
        requestHash=requestHash,
    )
    return taskId


@external
@nonreentrant
def commit(_taskId: uint256, _requestHash: bytes32, _digest: bytes32, _result: Bytes[MAX_RESULT]):
    assert msg.sender == self.oracle, "hub: caller is not the oracle"
    task: Task = self.tasks[_taskId]
    assert task.status == STATUS_REQUESTED, "hub: task is not open"
    assert task.requestHash == _requestHash, "hub: not this request"
    assert block.timestamp <= task.deadline, "hub: deadline passed"

    # Effects first: the task is closed before any external call.
    self.tasks[_taskId].status = STATUS_COMPLETED
    self.tasks[_taskId].digest = _digest

    toPool: uint256 = self._poolShare(task.price)
    toOwner: uint256 = task.price - toPool
    if toOwner > 0:
        assert extcall token.transfer(self.apps[task.appId].owner, toOwner, default_return_value=True), "hub: payment failed"
    if toPool > 0:
        assert extcall token.transfer(self.pool, toPool, default_return_value=True), "hub: payment failed"

    # callbackOk: a contract received the result without failing. A callback address without
    # code (an account, or a contract since destroyed) is not called: a call would "succeed"
    # without delivering anything.
    callbackOk: bool = False
    stipend: uint256 = 0
    if task.callback.is_contract:
        stipend = self._stipend(task.callbackFee)
    if stipend > 0:
        # EIP-150 forwards at most 63/64 of the gas left; refuse to start unless the callback
        # can get its whole stipend, so an oracle short of gas cannot make it fail on purpose.
        assert msg.gas >= stipend * 64 // 63 + CALLBACK_OVERHEAD, "hub: not enough gas for the callback"
        # max_outsize=0: the callee's return data is never copied (no return-data bomb).
        callbackOk = raw_call(
            task.callback,
            abi_encode(_taskId, _result, method_id=method_id("receiveResult(uint256,bytes)")),
            gas=stipend,
            revert_on_failure=False,
        )
    # The requester pays for the callback, not the oracle: its fee covers (stipend + overhead)
    # at this transaction's gas price, whatever the callback does with it.
    if task.callbackFee > 0:
        send(msg.sender, task.callbackFee)
    log TaskCompleted(taskId=_taskId, digest=_digest, result=_result, callbackOk=callbackOk)


@internal
@view
def _stipend(_fee: uint256) -> uint256:
    """The callback's gas: what FEE buys at this transaction's gas price, at most callbackGas."""
    # One path whatever the price (a node estimating gas at price 0 must take the path the
    # transaction takes); on a chain without gas fees a wei buys a unit of gas.
    bought: uint256 = _fee // max(tx.gasprice, 1)
    if bought <= CALLBACK_OVERHEAD:
        return 0
    return min(bought - CALLBACK_OVERHEAD, callbackGas)


@external
@nonreentrant
def refund(_taskId: uint256):
    task: Task = self.tasks[_taskId]
    assert task.status != STATUS_NONE, "hub: unknown task"
    assert msg.sender == task.requester, "hub: caller is not the requester"
    assert task.status == STATUS_REQUESTED, "hub: task is not open"
    assert block.timestamp > task.deadline, "hub: deadline not passed"
    self.tasks[_taskId].status = STATUS_REFUNDED
    if task.price > 0:
        assert extcall token.transfer(task.requester, task.price, default_return_value=True), "hub: refund failed"
    if task.callbackFee > 0:
        raw_call(task.requester, b"", value=task.callbackFee)
    log TaskRefunded(taskId=_taskId, requester=task.requester, amount=task.price)
