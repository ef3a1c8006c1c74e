"""Rebuild data/portal.db (SQLite) from data/portal.sql: `python examples/portal-sql/make_db.py`."""

import sqlite3
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    target = HERE / "data" / "portal.db"
    target.unlink(missing_ok=True)
    with sqlite3.connect(target) as db:
        db.executescript((HERE / "data" / "portal.sql").read_text())
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
