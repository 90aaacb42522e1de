"""Console entry point. `fleetwise --version` answers before the command-line app and its libraries load."""

from __future__ import annotations

import sys


def main() -> None:
    """Run the `fleetwise` command: user errors print one line and exit with status 2."""
    if sys.argv[1:] == ["--version"]:
        from fleetwise import __version__
        from fleetwise.native import build_kind

        print(f"fleetwise {__version__} ({build_kind()})")
        return
    from fleetwise.cli.app import run

    run()


if __name__ == "__main__":
    main()
