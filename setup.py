"""Build script: the contracts compiled into the wheel, and the optional native vanity kernel; all
metadata lives in setup.cfg.

A wheel carries the contracts compiled (``xwpy/chain/contracts/``: sources, ABI, bytecode and the
vyper version that compiled them; see xwpy/chain/artifacts.py), so that no compiler is needed at
run time; vyper is a build requirement (pyproject.toml). An editable install compiles them when
first used instead.

The extension is optional: with no C compiler (or a compiler that lacks GCC/Clang extensions such
as ``unsigned __int128``) the build prints a warning and xwpy installs without it; the pure-Python
kernel is then used. For development, build it in place with::

    python setup.py build_ext --inplace
"""

import importlib.util
import sys
import tempfile
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

NATIVE = "xwpy/apps/vanitygen/native/"


class BuildPyWithContracts(build_py):
    """build_py, then the compiled contracts into the build tree (not for editable installs)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        # Loaded by path: importing the xwpy package here would need its dependencies.
        spec = importlib.util.spec_from_file_location("_xwpy_artifacts", Path("xwpy/chain/artifacts.py"))
        artifacts = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = artifacts  # dataclasses look their module up there
        spec.loader.exec_module(artifacts)
        with tempfile.TemporaryDirectory() as cache:
            artifacts.build_package(Path(self.build_lib, "xwpy", "chain", "contracts"),
                                    contracts_dir=Path("contracts"), cache_dir=Path(cache))


class OptionalBuildExt(build_ext):
    """Build extensions, but let the install continue without them if compilation fails."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # distutils raises a variety of platform/compiler errors
            self._warn(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._warn(exc, ext.name)
            self._failed = getattr(self, "_failed", set()) | {ext.name}

    def copy_extensions_to_source(self):  # --inplace: copy only what was built
        kept = self.extensions
        self.extensions = [e for e in kept if e.name not in getattr(self, "_failed", set())]
        try:
            super().copy_extensions_to_source()
        finally:
            self.extensions = kept

    def _warn(self, exc, name="extensions"):
        print(f"WARNING: could not build optional {name} ({exc}); using the pure-Python kernel")


setup(
    ext_modules=[
        Extension(
            "xwpy.apps.vanitygen._native",
            sources=[NATIVE + "_native.c"],
            depends=[NATIVE + h for h in ("field.h", "hash_scalar.h", "hash_lanes.h", "sha_ni.h")],
            extra_compile_args=["-O3", "-g0", "-std=gnu11", "-fno-strict-aliasing"],
        )
    ],
    cmdclass={"build_py": BuildPyWithContracts, "build_ext": OptionalBuildExt},
)
