"""Compile the Vyper contracts with the vyper package, caching artifacts by source hash.

Compiling takes about a second per contract, and both the tests and the coordinator need the
same three contracts over and over; the cache makes that a file read. An artifact is keyed by
the sha256 of (vyper version, EVM version, contract name, source), so editing a contract or
upgrading the compiler simply misses the cache. Cache files are written atomically, so
concurrent processes (pytest workers, a coordinator) at worst compile twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

# Shanghai, not the compiler's newer default: ganache 7.9 (the integration node) has no
# Cancun opcodes (TSTORE, MCOPY). The same bytecode then runs on both chains.
EVM_VERSION = "shanghai"

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"

# Contract name -> source path relative to CONTRACTS_DIR.
SOURCES: dict[str, str] = {
    "RLC": "RLC.vy",
    "TaskHub": "TaskHub.vy",
    "VanityConsumer": "VanityConsumer.vy",
    # Test doubles: hostile callbacks used by the contract tests.
    "HostileCallback": "test/HostileCallback.vy",
}


class CompileError(Exception):
    """A contract failed to compile; the message carries the compiler's diagnostic."""


@dataclasses.dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str  # 0x-prefixed deployment bytecode
    key: str  # cache key: sha256 over compiler, EVM version, name and source
    vyper_version: str
    evm_version: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Artifact":
        return cls(**data)


def default_cache_dir() -> Path:
    env = os.environ.get("XWPY_CACHE_DIR")
    if env:
        return Path(env) / "contracts"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "xwpy" / "contracts"


def source_path(name: str, contracts_dir: Path | None = None) -> Path:
    try:
        rel = SOURCES[name]
    except KeyError:
        raise CompileError(f"unknown contract {name!r}; known: {', '.join(sorted(SOURCES))}") from None
    return (contracts_dir or CONTRACTS_DIR) / rel


def cache_key(name: str, source: str, vyper_version: str, evm_version: str) -> str:
    h = hashlib.sha256()
    for part in (vyper_version, evm_version, name, source):
        data = part.encode()
        # Length-prefix each part so no two different tuples hash the same.
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def _compile(name: str, source: str, path: Path, evm_version: str) -> tuple[list, str]:
    import vyper
    from vyper.compiler.settings import OptimizationLevel, Settings

    settings = Settings(evm_version=evm_version, optimize=OptimizationLevel.GAS)
    try:
        out = vyper.compile_code(
            source,
            contract_path=str(path),
            output_formats=["abi", "bytecode"],
            settings=settings,
        )
    except Exception as exc:  # vyper raises many exception types; all mean "does not compile"
        raise CompileError(f"{path}: {exc}") from exc
    return out["abi"], out["bytecode"]


def load_artifact(
    name: str,
    *,
    cache_dir: Path | None = None,
    contracts_dir: Path | None = None,
    evm_version: str = EVM_VERSION,
) -> Artifact:
    """Return the compiled contract NAME, compiling only when the cache has no entry."""
    import vyper

    path = source_path(name, contracts_dir)
    try:
        source = path.read_text()
    except OSError as exc:
        raise CompileError(f"cannot read contract source {path}: {exc}") from exc
    version = vyper.__version__
    key = cache_key(name, source, version, evm_version)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = cache / f"{name}-{key[:32]}.json"
    try:
        artifact = Artifact.from_json(json.loads(entry.read_text()))
        if artifact.key == key:
            return artifact
    except (OSError, ValueError, TypeError):
        pass  # missing or corrupt entry: recompile and overwrite

    abi, bytecode = _compile(name, source, path, evm_version)
    artifact = Artifact(
        name=name,
        abi=abi,
        bytecode=bytecode,
        key=key,
        vyper_version=version,
        evm_version=evm_version,
    )
    _write_atomic(entry, json.dumps(artifact.to_json()))
    return artifact


def _write_atomic(path: Path, text: str) -> None:
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:
        # A read-only or full cache only costs speed.
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
