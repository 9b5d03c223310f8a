# pragma version ~=0.4.3
"""
@title RLC demo token
@notice ERC-20 with 9 decimals (as iExec's RLC). The deployer is the minter, so demos and
        tests can fund requesters; there is no other way to create tokens.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

implements: IERC20
implements: IERC20Detailed

event MinterChanged:
    previous: indexed(address)
    current: indexed(address)

name: public(String[32])
symbol: public(String[8])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
minter: public(address)


@deploy
def __init__(_name: String[32], _symbol: String[8]):
    self.name = _name
    self.symbol = _symbol
    self.decimals = 9
    self.minter = msg.sender
    log MinterChanged(previous=empty(address), current=msg.sender)


@internal
def _transfer(_from: address, _to: address, _value: uint256):
    assert _to != empty(address), "RLC: transfer to the zero address"
    assert self.balanceOf[_from] >= _value, "RLC: balance too low"
    self.balanceOf[_from] -= _value
    self.balanceOf[_to] += _value
    log IERC20.Transfer(sender=_from, receiver=_to, value=_value)


@external
def transfer(_to: address, _value: uint256) -> bool:
    self._transfer(msg.sender, _to, _value)
    return True


@external
def transferFrom(_from: address, _to: address, _value: uint256) -> bool:
    allowed: uint256 = self.allowance[_from][msg.sender]
    assert allowed >= _value, "RLC: allowance too low"
    self.allowance[_from][msg.sender] = allowed - _value
    self._transfer(_from, _to, _value)
    return True


@external
def approve(_spender: address, _value: uint256) -> bool:
    # Plain overwrite, as ERC-20 specifies; callers that care about the known approve race
    # set the allowance to zero first.
    self.allowance[msg.sender][_spender] = _value
    log IERC20.Approval(owner=msg.sender, spender=_spender, value=_value)
    return True


@external
def mint(_to: address, _value: uint256):
    assert msg.sender == self.minter, "RLC: caller is not the minter"
    assert _to != empty(address), "RLC: mint to the zero address"
    self.totalSupply += _value
    self.balanceOf[_to] += _value
    log IERC20.Transfer(sender=empty(address), receiver=_to, value=_value)


@external
def setMinter(_minter: address):
    """@notice Hand minting to another account, or renounce it with the zero address."""
    assert msg.sender == self.minter, "RLC: caller is not the minter"
    log MinterChanged(previous=self.minter, current=_minter)
    self.minter = _minter
