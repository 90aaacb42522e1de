"""Build hook: compile the simulator's hot modules with mypyc for a regular install (pure Python otherwise).

`pip install .` (a wheel) compiles `fleetwise.native.HOT_MODULES` into C extensions, which run the same code
about twice as fast. Without a C compiler, or if any part of that build fails, no extension is kept (all or
nothing) and the pure-Python modules run. Editable installs (`pip install -e .`, for development) are never
compiled, so an edited module takes effect at once. Set FLEETWISE_PURE_PYTHON=1 to build a pure-Python wheel.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, str(Path(__file__).parent / "src"))
from fleetwise.native import HOT_MODULES  # (a module that imports the standard library only)

BUILDS = {"bdist_wheel", "build", "build_ext", "install"}  # commands that produce importable modules


class AllOrNothing(build_ext):
    """Build every compiled module, or none: a failure removes what was built and leaves pure Python."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, missing headers, a mypyc error: the pure modules still work
            print(f"fleetwise: compiling the simulator failed ({exc}); installing pure Python", file=sys.stderr)
            for extension in self.extensions:
                Path(self.get_ext_fullpath(extension.name)).unlink(missing_ok=True)
            self.extensions = []


def _extensions() -> list[object]:
    if os.environ.get("FLEETWISE_PURE_PYTHON") == "1" or "editable_wheel" in sys.argv or BUILDS.isdisjoint(sys.argv):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        return []
    return list(mypycify([f"src/fleetwise/{name}.py" for name in HOT_MODULES], opt_level="3"))


setup(ext_modules=_extensions(), cmdclass={"build_ext": AllOrNothing})
