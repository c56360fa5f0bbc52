#!/usr/bin/env python3
"""The tutorial's verification queries (Step 6.3 and Step 8.2), run with DuckDB over
Delta tables read by delta-rs (deltalake): peers nobody here wrote judge what the
agent committed.

usage: tutorial-queries.py RAW_TABLE [WINDOW_TABLE]
"""
import sys

import duckdb
from deltalake import DeltaTable


def show(con, title, sql):
    print(f"\n-- {title}")
    rel = con.sql(sql)
    cols = rel.columns
    rows = rel.fetchall()
    widths = [max(len(str(c)), *(len(fmt(r[i])) for r in rows)) if rows else len(str(c))
              for i, c in enumerate(cols)]
    print("  ".join(str(c).ljust(w) for c, w in zip(cols, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(fmt(v).ljust(w) for v, w in zip(r, widths)))
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


def fmt(v):
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    con = duckdb.connect()
    raw = DeltaTable(argv[1])
    con.register("raw", raw.to_pyarrow_dataset())
    print(f"raw table {argv[1]}: version {raw.version()}, {len(raw.file_uris())} files")
    # Step 6.3, with the day taken from the data so the demo works on any date.
    show(con, "Step 6.3: revenue by category and location (latest processing_date)", """
        SELECT category, location, COUNT(*) AS transaction_count,
               SUM(amount) AS total_revenue, AVG(amount) AS avg_transaction_value
        FROM raw
        WHERE processing_date = (SELECT max(processing_date) FROM raw)
        GROUP BY category, location
        ORDER BY total_revenue DESC, category, location""")
    show(con, "Step 8.2: verify data in Delta Lake", """
        SELECT COUNT(*) AS total_records, MIN(timestamp) AS earliest_transaction,
               MAX(timestamp) AS latest_transaction,
               COUNT(DISTINCT customer_id) AS unique_customers, SUM(amount) AS total_revenue
        FROM raw""")
    if len(argv) > 2:
        win = DeltaTable(argv[2])
        con.register("win", win.to_pyarrow_dataset())
        show(con, "Step 7.1: 5-minute tumbling windows by category", """
            SELECT * FROM win ORDER BY window_start, category""")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
