"""``python -m mloops.fleet [refresh]``: print the fleet table; ``refresh`` rebuilds the snapshot first."""

from __future__ import annotations

import sys

from mloops.fleet import collect, table
from mloops.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    settings = get_settings()
    if args[:1] == ["refresh"]:
        collect.refresh(settings)
    print(table.render(collect.read(settings)), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
