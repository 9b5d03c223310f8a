# pragma version ~=0.4.3
"""
@title xwpy payout distributor
@notice The worker pool's account: the hub pays each task's pool share here (set it as the hub's
        pool). Per epoch the oracle commits the Merkle root of what each volunteer earned and the
        epoch's total, which must be covered by RLC received and not yet committed; each volunteer
        then claims its own amount with a proof, once. The pool never sends one transaction per
        volunteer.

        Leaf: keccak256(abi_encode(epoch, index, account, amount)) (uint256, uint256, address,
        uint256). Inner nodes hash their two children in ascending order (sorted pairs), so a
        proof is just the siblings from the leaf up.
"""

from ethereum.ercs import IERC20

MAX_PROOF: constant(uint256) = 32  # 2**32 leaves: more volunteers than an epoch will ever have

event EpochCommitted:
    epoch: indexed(uint256)
    root: bytes32
    total: uint256

event Claimed:
    epoch: indexed(uint256)
    index: uint256
    account: indexed(address)
    amount: uint256

event OracleChanged:
    oracle: indexed(address)

token: public(immutable(IERC20))
admin: public(address)
oracle: public(address)
epochCount: public(uint256)
roots: public(HashMap[uint256, bytes32])
totals: public(HashMap[uint256, uint256])
claimed: public(HashMap[uint256, HashMap[uint256, bool]])  # epoch -> leaf index -> claimed
committed: public(uint256)  # the epochs' totals, summed
paid: public(uint256)  # the claims, summed


@deploy
def __init__(_token: IERC20, _oracle: address):
    token = _token
    self.admin = msg.sender
    self.oracle = _oracle


@view
@external
def uncommitted() -> uint256:
    """RLC received and not yet committed to an epoch: what the next epoch may distribute."""
    return staticcall token.balanceOf(self) + self.paid - self.committed


@external
def commitEpoch(root: bytes32, total: uint256) -> uint256:
    """Commit the next epoch's root; its total must be covered by RLC not yet committed."""
    assert msg.sender == self.oracle, "distributor: only the oracle"
    assert root != empty(bytes32), "distributor: empty root"
    assert total <= staticcall token.balanceOf(self) + self.paid - self.committed, "distributor: not funded"
    epoch: uint256 = self.epochCount + 1
    self.epochCount = epoch
    self.roots[epoch] = root
    self.totals[epoch] = total
    self.committed += total
    log EpochCommitted(epoch=epoch, root=root, total=total)
    return epoch


@pure
@internal
def _parent(a: bytes32, b: bytes32) -> bytes32:
    if convert(a, uint256) <= convert(b, uint256):
        return keccak256(concat(a, b))
    return keccak256(concat(b, a))


@view
@external
def verify(epoch: uint256, index: uint256, account: address, amount: uint256,
           proof: DynArray[bytes32, MAX_PROOF]) -> bool:
    node: bytes32 = keccak256(abi_encode(epoch, index, account, amount))
    for sibling: bytes32 in proof:
        node = self._parent(node, sibling)
    return node == self.roots[epoch] and node != empty(bytes32)


@external
def claim(epoch: uint256, index: uint256, amount: uint256, proof: DynArray[bytes32, MAX_PROOF]):
    """Pay the caller its amount of EPOCH, once: the leaf names the caller's own address."""
    assert self.roots[epoch] != empty(bytes32), "distributor: no such epoch"
    assert not self.claimed[epoch][index], "distributor: already claimed"
    node: bytes32 = keccak256(abi_encode(epoch, index, msg.sender, amount))
    for sibling: bytes32 in proof:
        node = self._parent(node, sibling)
    assert node == self.roots[epoch], "distributor: invalid proof"
    self.claimed[epoch][index] = True
    self.paid += amount
    assert extcall token.transfer(msg.sender, amount, default_return_value=True), "distributor: transfer failed"
    log Claimed(epoch=epoch, index=index, account=msg.sender, amount=amount)


@external
def setOracle(_oracle: address):
    assert msg.sender == self.admin, "distributor: only the admin"
    self.oracle = _oracle
    log OracleChanged(oracle=_oracle)
