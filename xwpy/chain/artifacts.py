"""The contracts' compiled artifacts (ABI and bytecode): shipped prebuilt, or compiled and cached.

A wheel carries the contracts compiled at build time (``build_package``, called by setup.py):
``xwpy/chain/contracts/`` holds their sources and ``artifacts.json``, with the vyper version that
compiled them, so an installed xwpy needs no compiler. A checkout has no prebuilt artifacts: the
contracts in ``contracts/`` are compiled with the vyper package (the ``contracts`` or ``test``
extra), about a second each, and cached. An artifact is keyed by the sha256 of (vyper version,
EVM version, contract name, source): a prebuilt one is used only while its source is unchanged,
and editing a contract or upgrading the compiler simply misses the cache. Cache files are written
atomically, so concurrent processes (pytest workers, a coordinator) at worst compile twice.
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

# The sources and prebuilt artifacts a wheel ships; a checkout's sources otherwise.
PACKAGED_DIR = Path(__file__).resolve().with_name("contracts")
PREBUILT = "artifacts.json"
CONTRACTS_DIR = PACKAGED_DIR if (PACKAGED_DIR / PREBUILT).is_file() else Path(__file__).resolve().parents[2] / "contracts"

# Contract name -> source path relative to CONTRACTS_DIR.
SOURCES: dict[str, str] = {
    "RLC": "RLC.vy",
    "TaskHub": "TaskHub.vy",
    "VanityConsumer": "VanityConsumer.vy",
    "Distributor": "Distributor.vy",
    # Test doubles: hostile callbacks used by the contract tests.
    "HostileCallback": "test/HostileCallback.vy",
}
# What a wheel ships compiled (the test double stays in the checkout).
PACKAGED = ("RLC", "TaskHub", "VanityConsumer", "Distributor")


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
    """Return the compiled contract NAME: prebuilt if its source is unchanged, else from the cache,
    compiling only when the cache has no entry."""
    path = source_path(name, contracts_dir)
    try:
        source = path.read_text()
    except OSError as exc:
        raise CompileError(f"cannot read contract source {path}: {exc}") from exc
    built = prebuilt(contracts_dir or CONTRACTS_DIR).get(name)
    if built is not None and built.evm_version == evm_version and built.key == cache_key(
            name, source, built.vyper_version, evm_version):
        return built
    try:
        import vyper
    except ImportError:
        raise CompileError(f"{path} is not compiled in this install and vyper is not installed: "
                           "pip install 'vyper~=0.4.3'") from None
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


def prebuilt(contracts_dir: Path) -> dict[str, Artifact]:
    """The artifacts compiled with the package (none in a checkout)."""
    try:
        data = json.loads((Path(contracts_dir) / PREBUILT).read_text())
    except OSError:
        return {}
    except ValueError as exc:
        raise CompileError(f"{contracts_dir / PREBUILT} is corrupt: {exc}") from None
    return {name: Artifact.from_json(a) for name, a in data.items()}


def build_package(out_dir: Path, *, contracts_dir: Path | None = None, cache_dir: Path | None = None) -> list[str]:
    """Compile the PACKAGED contracts into OUT_DIR: their sources and ``artifacts.json`` (setup.py
    calls this while it builds a wheel). Returns the files written."""
    src = contracts_dir or CONTRACTS_DIR
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    built = {}
    written = []
    for name in PACKAGED:
        built[name] = load_artifact(name, contracts_dir=src, cache_dir=cache_dir).to_json()
        target = out / SOURCES[name]
        target.write_text(source_path(name, src).read_text())
        written.append(str(target))
    (out / PREBUILT).write_text(json.dumps(built, indent=1, sort_keys=True) + "\n")
    written.append(str(out / PREBUILT))
    return written


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
