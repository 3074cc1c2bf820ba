"""Write docs/settings.md from the settings model; ``--check`` fails when it is stale.

python scripts/settings_reference.py          # regenerate
python scripts/settings_reference.py --check  # exit 1 if docs/settings.md is stale
"""

from __future__ import annotations

from pathlib import Path

from coordinator.settings_reference import main

TARGET = Path(__file__).resolve().parents[1] / "docs" / "settings.md"

if __name__ == "__main__":
    raise SystemExit(main(None, TARGET))
