"""Spark (pyspark 3.5 + delta-spark 3.2, the tutorial's stack) and ehdelta on
the same tables, both ways:

- Spark reads what ehdelta writes: counts, schema, history, time travel, the
  tutorial's Steps 6.3, 7.1 and 8.2 in Spark SQL equal to DuckDB's answers, and
  a streaming read that goes on across an OPTIMIZE, and one that follows a
  live agent (trigger = continuous) while its compaction commits run;
- ehdelta appends to tables Spark created by a DataFrame save (nullable
  columns, with a Spark-written checkpoint), by writeStream and by SQL DDL
  (NOT NULL columns), and Spark reads the result;
- a CHECK constraint added by Spark is enforced (the batch refused, exit 2);
- a Spark streaming query's checkpoint (written by Spark; the source line of
  its offsets in the Event Hubs connector's format, since the connector
  cannot reach ehemu) is taken over with every event exactly once, also when
  Spark stopped after its Delta commit and before its commits/ entry.

One SparkSession for the module (local[2], 512m driver, no UI); the Delta jars
come through Ivy into .tools/ivy (scripts/deps fetches them once)."""
import datetime
import json
import os
import signal
import subprocess
import time

import duckdb
import pytest
from deltalake import DeltaTable
from delta.tables import DeltaTable as SparkDeltaTable
from pyspark.sql import SparkSession

from agentutil import Emu, run_agent, send_lines, transactions, tutorial_conf
from conftest import EHDELTA, TOP_SRCDIR, wait_until
from delta_util import snapshot

DELTA_PKG = "io.delta:delta-spark_2.12:3.2.1"
EVENT_COLS = ("transaction_id STRING, customer_id STRING, amount DOUBLE, category STRING, "
              "timestamp TIMESTAMP, location STRING, payment_method STRING")
METADATA = "enqueued_time AS ingestion_time, offset, sequence_number AS sequenceNumber, partition"
# What `ehdelta run` writes with EVENT_COLS, METADATA and processing_date
# derived; Spark's DataFrame and writeStream tables have it all nullable.
SPARK_DDL = (EVENT_COLS + ", ingestion_time TIMESTAMP, offset BIGINT, sequenceNumber BIGINT, "
             "partition STRING, processing_date DATE")
STRICT_DDL = (EVENT_COLS + ", ingestion_time TIMESTAMP NOT NULL, offset BIGINT NOT NULL, "
              "sequenceNumber BIGINT NOT NULL, partition STRING, processing_date DATE")
T_START = time.monotonic()


@pytest.fixture(scope="module")
def spark():
    ivy = os.path.join(TOP_SRCDIR, ".tools", "ivy")
    s = (SparkSession.builder.master("local[2]").appName("ehdelta-interop")
         .config("spark.jars.packages", DELTA_PKG)
         .config("spark.jars.ivy", ivy)
         .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
         .config("spark.sql.catalog.spark_catalog",
                 "org.apache.spark.sql.delta.catalog.DeltaCatalog")
         .config("spark.driver.memory", "512m")
         .config("spark.ui.enabled", "false")
         .config("spark.sql.shuffle.partitions", "2")
         .config("spark.databricks.delta.snapshotPartitions", "2")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.databricks.delta.properties.defaults.checkpointInterval", "3")
         .getOrCreate())
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()
    print(f"\nspark suite: {time.monotonic() - T_START:.1f} s")


@pytest.fixture
def emu(tmp_path):
    e = Emu(tmp_path, partitions=2)
    yield e
    e.stop()


def norm(v):
    """Values from Spark and DuckDB made comparable: floats to 6 places,
    datetimes to naive UTC."""
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, datetime.datetime) and v.tzinfo is not None:
        return v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return v


def rows(seq):
    return [tuple(norm(x) for x in r) for r in seq]


def ehdelta(*args, timeout=300):
    return subprocess.run([EHDELTA, *args], capture_output=True, text=True, timeout=timeout)


def run_simple(emu, table, *extra):
    return ehdelta("run", "--connection-string-file", str(emu.cs_file), "--schema", EVENT_COLS,
                   "--metadata", METADATA, "--derive", "processing_date = to_date(timestamp)",
                   "--table", table, "--available-now", *extra)


def by_position(spark, path):
    """{(partition, sequenceNumber): transaction_id} of the ehdelta rows,
    asserting each position once."""
    got = spark.read.format("delta").load(path) \
        .where("partition IS NOT NULL AND sequenceNumber >= 0") \
        .select("partition", "sequenceNumber", "transaction_id").collect()
    out = {(r[0], r[1]): r[2] for r in got}
    assert len(out) == len(got), "an event twice"
    return out


def seed_rows(spark, n, first=900000):
    """n Spark-side rows in SPARK_DDL (partition NULL, sequenceNumber -1: not
    from the hub)."""
    base = datetime.datetime(2026, 11, 29, 8, 0, 0)
    data = [(f"S{first + i}", "C001", 10.0 + i, "Books", base, "US", "Debit", base, -1, -1,
             None, base.date()) for i in range(n)]
    return spark.createDataFrame(data, SPARK_DDL)


# ---- Spark reads what ehdelta writes ----

def test_spark_reads_ehdelta_tables(spark, emu, tmp_path):
    n = 300
    events = transactions(n, step_s=6)  # 30 minutes of events: closed windows
    send_lines(emu, tmp_path, events)
    root = tmp_path / "lake"
    conf = tutorial_conf(emu, tmp_path, root, watermark="1 minute")
    p, _ = run_agent(conf, tmp_path, "--available-now")
    assert p.returncode == 0, p.stderr
    raw = str(root / "raw/transactions-streaming")
    win = str(root / "curated/transaction-analytics/by-category")

    df = spark.read.format("delta").load(raw)
    assert df.count() == n
    dt = DeltaTable(raw)
    assert [f.name for f in df.schema.fields] == [f.name for f in dt.schema().fields]
    types = dict(df.dtypes)
    assert (types["amount"], types["timestamp"], types["processing_date"],
            types["sequenceNumber"]) == ("double", "timestamp", "date", "bigint")
    hist = spark.sql(f"DESCRIBE HISTORY delta.`{raw}`").collect()
    assert len(hist) == len(dt.history())
    assert {h["operation"] for h in hist} >= {"CREATE TABLE", "STREAMING UPDATE"}
    v1 = spark.read.format("delta").option("versionAsOf", 1).load(raw).count()
    assert v1 == DeltaTable(raw, version=1).to_pyarrow_table().num_rows

    con = duckdb.connect()
    con.register("raw", dt.to_pyarrow_dataset())
    con.register("win", DeltaTable(win).to_pyarrow_dataset())
    spark.read.format("delta").load(raw).createOrReplaceTempView("raw")
    spark.read.format("delta").load(win).createOrReplaceTempView("win")
    queries = {
        "6.3": """SELECT category, location, COUNT(*) AS transaction_count,
                         SUM(amount) AS total_revenue, AVG(amount) AS avg_transaction_value
                  FROM raw WHERE processing_date = (SELECT max(processing_date) FROM raw)
                  GROUP BY category, location
                  ORDER BY total_revenue DESC, category, location""",
        "7.1": "SELECT * FROM win ORDER BY window_start, category",
        "8.2": """SELECT COUNT(*) AS total_records, MIN(timestamp) AS earliest_transaction,
                         MAX(timestamp) AS latest_transaction,
                         COUNT(DISTINCT customer_id) AS unique_customers,
                         SUM(amount) AS total_revenue FROM raw""",
    }
    for step, sql in queries.items():
        want = rows(con.sql(sql).fetchall())
        got = rows(spark.sql(sql).collect())
        assert want, step
        assert got == want, (step, got[:3], want[:3])

    # a streaming read, then OPTIMIZE (dataChange=false) and more rows: the
    # stream takes the new rows only
    copy, ck = str(tmp_path / "copy"), str(tmp_path / "copy-ck")

    def stream_once():
        q = (spark.readStream.format("delta").load(raw).writeStream.format("delta")
             .option("checkpointLocation", ck).trigger(availableNow=True).start(copy))
        q.awaitTermination()
        return spark.read.format("delta").load(copy).count()

    assert stream_once() == n
    p = ehdelta("optimize", raw)
    assert p.returncode == 0, p.stderr
    more = transactions(40, seed=5, first_id=n + 1)
    send_lines(emu, tmp_path, more, name="more.jsonl")
    p, _ = run_agent(conf, tmp_path, "--available-now", tag="run2")
    assert p.returncode == 0, p.stderr
    assert stream_once() == n + 40
    assert spark.read.format("delta").load(raw).count() == n + 40


def test_spark_stream_follows_live_agent_compaction(spark, emu, tmp_path):
    """Spark's streaming read of a table a live agent writes with trigger =
    continuous and compaction at a bound of 2: read after each of four pieces,
    with at least one compaction commit (dataChange = false) before the last
    two reads, every event lands in the copy exactly once."""
    table, copy, ck = tmp_path / "raw", str(tmp_path / "copy"), str(tmp_path / "copy-ck")
    conf = tmp_path / "live.conf"
    conf.write_text(f"""
[source]
connection_string_file = {emu.cs_file}
starting_position = earliest
[schema]
columns = {EVENT_COLS}
derive = processing_date = to_date(timestamp)
[sink raw]
path = {table}
partition_by = processing_date
trigger = continuous
compaction = true
compaction_files = 2
compaction_interval = 1 ms
""")
    progress = tmp_path / "live.progress"
    agent = subprocess.Popen([EHDELTA, "run", "--config", str(conf), "--progress", str(progress)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def committed():
        try:
            return DeltaTable(str(table)).to_pyarrow_table(columns=["transaction_id"]).num_rows
        except Exception:  # not created yet
            return 0

    def compactions():
        return sum('"compaction"' in l for l in progress.read_text().splitlines()) \
            if progress.exists() else 0

    def stream_once():
        q = (spark.readStream.format("delta").load(str(table)).writeStream.format("delta")
             .option("checkpointLocation", ck).trigger(availableNow=True).start(copy))
        q.awaitTermination()

    events = transactions(800, step_s=0.5)
    try:
        for k in range(4):
            send_lines(emu, tmp_path, events[200 * k:200 * (k + 1)], name=f"piece{k}.jsonl")
            wait_until(lambda: committed() >= 200 * (k + 1), timeout=120, what="the piece")
            if k == 2:  # three commits or more of one date: a compaction follows
                wait_until(lambda: compactions() >= 1, timeout=120, what="a compaction")
            stream_once()
    finally:
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=60)
    assert agent.returncode == 0, err
    stream_once()
    got = [r[0] for r in spark.read.format("delta").load(copy).select("transaction_id").collect()]
    assert sorted(got) == sorted(e["transaction_id"] for e in events)
    ops = [h["operation"] for h in spark.sql(f"DESCRIBE HISTORY delta.`{table}`").collect()]
    assert "OPTIMIZE" in ops


# ---- ehdelta appends to tables Spark made ----

@pytest.mark.parametrize("how", ["save", "writeStream", "ddl"])
def test_ehdelta_appends_to_spark_tables(spark, emu, tmp_path, how):
    path = str(tmp_path / "t")
    seeds = 0
    if how == "save":
        # three commits: Spark writes a checkpoint at version 3 (interval 3)
        for i in range(4):
            seed_rows(spark, 5, first=900000 + 10 * i).write.format("delta") \
                .mode("append").partitionBy("processing_date").save(path)
            seeds += 5
        assert os.path.exists(f"{path}/_delta_log/00000000000000000003.checkpoint.parquet")
    elif how == "writeStream":
        src = tmp_path / "src"
        src.mkdir()
        for i in range(2):
            seed_rows(spark, 4, first=800000 + 10 * i).write.mode("append").json(str(src))
        q = (spark.readStream.schema(SPARK_DDL).json(str(src)).writeStream.format("delta")
             .partitionBy("processing_date").option("checkpointLocation", str(tmp_path / "ck"))
             .trigger(availableNow=True).start(path))
        q.awaitTermination()
        seeds = 8
    else:
        spark.sql(f"CREATE TABLE delta.`{path}` ({STRICT_DDL}) USING delta "
                  "PARTITIONED BY (processing_date)")
    n = 120
    send_lines(emu, tmp_path, transactions(n, seed=7))
    p = run_simple(emu, path)
    assert p.returncode == 0, p.stderr
    df = spark.read.format("delta").load(path)
    assert df.count() == seeds + n
    assert len(by_position(spark, path)) == n
    last = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").orderBy("version", ascending=False) \
        .first()
    assert last["operation"] == "STREAMING UPDATE"
    # and Spark can still append after ehdelta
    seed_rows(spark, 2, first=700000).write.format("delta").mode("append").save(path)
    assert spark.read.format("delta").load(path).count() == seeds + n + 2
    # ehdelta's commits carry a txn per partition besides the batch's (several
    # txn actions in one commit): Spark's checkpoint keeps them all
    pos, ptxns = {}, {}
    for part, seq in by_position(spark, path):
        pos[part] = max(pos.get(part, -1), seq)
    log = f"{path}/_delta_log"
    for f in sorted(f for f in os.listdir(log) if f.endswith(".json")):
        with open(f"{log}/{f}") as fh:
            multi = [json.loads(x)["txn"] for x in fh if x.startswith('{"txn"')]
        ptxns.update({x["appId"]: x["version"] for x in multi if "/" in x["appId"]})
    assert {a.rsplit("/", 1)[1]: v for a, v in ptxns.items()} == pos
    extra = 2
    while not any(f.endswith(".checkpoint.parquet") and int(f[:20]) > int(last["version"])
                  for f in os.listdir(log)):
        seed_rows(spark, 1, first=710000 + extra).write.format("delta").mode("append").save(path)
        extra += 1
    snap = snapshot(path)
    assert snap["checkpoint"] > int(last["version"])
    assert {a: snap["txn"].get(a) for a in ptxns} == ptxns


# ---- constraints ----

def test_check_constraint_is_enforced(spark, emu, tmp_path):
    path = str(tmp_path / "t")
    spark.sql(f"CREATE TABLE delta.`{path}` ({SPARK_DDL}) USING delta")
    spark.sql(f"ALTER TABLE delta.`{path}` ADD CONSTRAINT amount_positive CHECK (amount > 0)")
    proto = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()
    assert proto["minWriterVersion"] >= 3
    events = transactions(60, seed=3)
    for e in events[::10]:
        e["amount"] = -e["amount"]
    send_lines(emu, tmp_path, events)
    versions = len(spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect())
    p = run_simple(emu, path)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "amount_positive" in p.stderr and "6 of 60 rows" in p.stderr, p.stderr
    assert len(spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()) == versions
    assert spark.read.format("delta").load(path).count() == 0
    # the operator's way out: filter the rows the table refuses
    p = run_simple(emu, path, "--filter", "amount > 0")
    assert p.returncode == 0, p.stderr
    df = spark.read.format("delta").load(path)
    assert df.count() == 54 and df.where("amount <= 0").count() == 0

    # constraint_violation = dead-letter: the violating rows go to the
    # dead-letter table, the constraint named in their reason
    path2, dead = str(tmp_path / "t2"), str(tmp_path / "dead")
    spark.sql(f"CREATE TABLE delta.`{path2}` ({SPARK_DDL}) USING delta "
              "TBLPROPERTIES ('delta.constraints.amount_positive' = 'amount > 0')")
    conf = tmp_path / "dl.conf"
    conf.write_text(f"""[source]
connection_string_file = {emu.cs_file}
[schema]
columns = {EVENT_COLS}
metadata = {METADATA}
derive = processing_date = to_date(timestamp)
[sink raw]
path = {path2}
trigger = available-now
constraint_violation = dead-letter
[dead_letter]
path = {dead}
""")
    p = ehdelta("run", "--config", str(conf))
    assert p.returncode == 0, p.stderr
    assert spark.read.format("delta").load(path2).count() == 54
    dl = spark.read.format("delta").load(dead).collect()
    assert len(dl) == 6
    assert all(r["reason_code"] == "constraint" and "amount_positive" in r["reason"]
               for r in dl), dl[0]
    negs = {e["transaction_id"] for e in events if e["amount"] < 0}
    assert {json.loads(bytes(r["body"]))["transaction_id"] for r in dl} == negs


# ---- taking over from a Spark query ----

def spark_query_on(spark, tmp_path, path, per_batch):
    """A Spark streaming query that wrote per_batch[i] (lists of rows) as its
    batch i into path, its checkpoint's offsets rewritten to the connector's
    {"tx":{"0":next,"1":next}} after each batch. Returns the folder."""
    src, ck = tmp_path / "spark-src", tmp_path / "spark-ck"
    src.mkdir()
    for i, batch in enumerate(per_batch):
        (src / f"part-{i:03d}.json").write_text("".join(json.dumps(r) + "\n" for r in batch))
    q = (spark.readStream.schema(SPARK_DDL).option("maxFilesPerTrigger", 1).json(str(src))
         .writeStream.format("delta").option("checkpointLocation", str(ck))
         .trigger(availableNow=True).start(path))
    q.awaitTermination()
    nxt = {"0": 0, "1": 0}
    for i, batch in enumerate(per_batch):
        for r in batch:
            nxt[r["partition"]] = max(nxt[r["partition"]], r["sequenceNumber"] + 1)
        f = ck / "offsets" / str(i)
        lines = f.read_text().split("\n")
        assert lines[0] == "v1" and "logOffset" in lines[2], lines
        lines[2] = json.dumps({"tx": nxt}, separators=(",", ":"))
        f.write_text("\n".join(lines))
    assert sorted(f for f in os.listdir(ck / "commits") if not f.startswith(".")) == \
        [str(i) for i in range(len(per_batch))]
    return ck


def spark_switch_setup(spark, emu, tmp_path, per_part=50):
    """Events on both partitions of the hub; a Spark query that read the
    first 20 of partition 0 and 10 of partition 1 in two batches into the
    table at tmp_path/t. Returns (table, checkpoint folder, {(partition, seq):
    transaction_id} of every event sent)."""
    sent, evs = {}, {}
    for part in ("0", "1"):
        ev = transactions(per_part, seed=int(part) + 20, first_id=1 + 1000 * int(part))
        send_lines(emu, tmp_path, ev, name=f"p{part}.jsonl", extra=("--partition", part))
        evs[part] = ev
        sent.update({(part, i): e["transaction_id"] for i, e in enumerate(ev)})
    now = datetime.datetime(2026, 12, 1, 0, 0, 0).isoformat()

    def row(part, i):
        e = dict(evs[part][i])
        e.update(ingestion_time=now, offset=i, sequenceNumber=i, partition=part,
                 processing_date=e["timestamp"][:10])
        return e

    b0 = [row("0", i) for i in range(10)] + [row("1", i) for i in range(5)]
    b1 = [row("0", i) for i in range(10, 20)] + [row("1", i) for i in range(5, 10)]
    path = str(tmp_path / "t")
    return path, spark_query_on(spark, tmp_path, path, [b0, b1]), sent


@pytest.mark.parametrize("stop", ["clean", "before-commits-entry"])
def test_switch_from_spark_exactly_once(spark, emu, tmp_path, stop):
    path, ck, sent = spark_switch_setup(spark, emu, tmp_path)
    if stop == "before-commits-entry":
        os.remove(ck / "commits" / "1")  # its Delta commit landed, the entry did not
    p = run_simple(emu, path, "--from-spark-checkpoint", str(ck))
    assert p.returncode == 0, p.stderr
    got = by_position(spark, path)
    assert got == sent, sorted(set(got.items()) ^ set(sent.items()))[:5]
    assert spark.read.format("delta").load(path).count() == len(sent)
    # started again with the setting still there: nothing more, nothing twice
    p = run_simple(emu, path, "--from-spark-checkpoint", str(ck))
    assert p.returncode == 0, p.stderr
    assert spark.read.format("delta").load(path).count() == len(sent)


def test_switch_from_spark_on_azure_storage(spark, emu, tmp_path):
    """The table and the Spark checkpoint on Blob storage (Azurite), read
    through the store layer as on ADLS."""
    from delta_util import DEV_KEY, Azurite, azurite_bin
    assert azurite_bin(), "azurite not installed (.tools/node): run scripts/deps"
    path, ck, sent = spark_switch_setup(spark, emu, tmp_path)
    az = Azurite()
    os.environ["AZURITE_BLOB_STORAGE_URL"] = f"http://127.0.0.1:{az.port}"
    try:
        az.create_container("lake")
        cc = az.service().get_container_client("lake")
        for local, prefix in ((path, "t"), (str(ck), "ck")):
            for d, _, files in os.walk(local):
                for f in files:
                    rel = os.path.relpath(os.path.join(d, f), local)
                    with open(os.path.join(d, f), "rb") as fh:
                        cc.upload_blob(f"{prefix}/{rel}", fh)
        keyf = tmp_path / "key"
        keyf.write_text(DEV_KEY + "\n")
        conf = tmp_path / "az.conf"
        conf.write_text(f"""[source]
connection_string_file = {emu.cs_file}
from_spark_checkpoint = {az.url("lake", "ck")}
[schema]
columns = {EVENT_COLS}
metadata = {METADATA}
derive = processing_date = to_date(timestamp)
[storage]
auth = shared-key
account_key_file = {keyf}
[sink raw]
path = {az.url("lake", "t")}
trigger = available-now
""")
        p = ehdelta("run", "--config", str(conf))
        assert p.returncode == 0, p.stderr
        assert DEV_KEY not in p.stderr
        rows = DeltaTable("az://lake/t", storage_options=az.delta_rs_options()) \
            .to_pyarrow_table(columns=["partition", "sequenceNumber", "transaction_id"]).to_pylist()
        got = {(r["partition"], r["sequenceNumber"]): r["transaction_id"] for r in rows}
        assert len(got) == len(rows) == len(sent) and got == sent
    finally:
        az.stop()


def test_switch_refusals(spark, emu, tmp_path):
    path = str(tmp_path / "t")
    one = {"transaction_id": "S1", "amount": 1.0, "timestamp": "2026-11-30T10:00:00",
           "ingestion_time": "2026-11-30T10:00:01", "offset": 0, "sequenceNumber": 0,
           "partition": "0", "processing_date": "2026-11-30"}
    ck = spark_query_on(spark, tmp_path, path, [[one]])
    # another hub's checkpoint
    f = ck / "offsets" / "0"
    lines = f.read_text().split("\n")
    lines[2] = '{"other":{"0":1,"1":1}}'
    f.write_text("\n".join(lines))
    p = run_simple(emu, path, "--from-spark-checkpoint", str(ck))
    assert p.returncode == 2 and "read event hub 'other'" in p.stderr, p.stderr
    # a folder without commits
    empty = tmp_path / "empty-ck"
    (empty / "offsets").mkdir(parents=True)
    p = run_simple(emu, path, "--from-spark-checkpoint", str(empty))
    assert p.returncode == 2 and "has no commits/<n> file" in p.stderr, p.stderr
    assert len(spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()) == 1


# ---- protocol features ----

def test_column_mapping_name_mode(spark, emu, tmp_path):
    """Spark users turn column mapping on to rename columns: ehdelta's files
    carry the physical names, so Spark reads them before and after a rename."""
    path = str(tmp_path / "t")
    spark.sql(f"CREATE TABLE delta.`{path}` ({SPARK_DDL}) USING delta "
              "TBLPROPERTIES ('delta.columnMapping.mode' = 'name')")
    events = transactions(80, seed=9)
    send_lines(emu, tmp_path, events)
    p = run_simple(emu, path)
    assert p.returncode == 0, p.stderr
    total = round(sum(e["amount"] for e in events), 6)
    got = spark.read.format("delta").load(path).selectExpr("count(*)", "sum(amount)").first()
    assert (got[0], round(got[1], 6)) == (80, total)
    spark.sql(f"ALTER TABLE delta.`{path}` RENAME COLUMN amount TO amount_eur")
    got = spark.read.format("delta").load(path).selectExpr("sum(amount_eur)").first()
    assert round(got[0], 6) == total


def test_unsupported_features_refused_with_status_2(spark, emu, tmp_path):
    send_lines(emu, tmp_path, transactions(10, seed=4))
    # deletion vectors: a reader-writer feature ehdelta does not implement
    dv = str(tmp_path / "dv")
    spark.sql(f"CREATE TABLE delta.`{dv}` ({SPARK_DDL}) USING delta "
              "TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    for args in (("optimize", dv), ("vacuum", dv, "--retain", "7 days")):
        p = ehdelta(*args)
        assert p.returncode == 2 and "deletionVectors" in p.stderr, (args, p.stderr)
    p = run_simple(emu, dv)
    assert p.returncode == 2 and "deletionVectors" in p.stderr, p.stderr
    # row tracking: appends and OPTIMIZE refused, VACUUM allowed
    rt = str(tmp_path / "rt")
    spark.sql(f"CREATE TABLE delta.`{rt}` ({SPARK_DDL}) USING delta "
              "TBLPROPERTIES ('delta.enableRowTracking' = 'true')")
    seed_rows(spark, 3).write.format("delta").mode("append").save(rt)
    seed_rows(spark, 3, first=1).write.format("delta").mode("append").save(rt)
    p = run_simple(emu, rt)
    assert p.returncode == 2 and "rowTracking" in p.stderr, p.stderr
    p = ehdelta("optimize", rt)
    assert p.returncode == 2 and "rowTracking" in p.stderr, p.stderr
    p = ehdelta("vacuum", rt, "--retain", "7 days")
    assert p.returncode == 0, p.stderr
    assert len(spark.sql(f"DESCRIBE HISTORY delta.`{rt}`").collect()) == 3
    assert spark.read.format("delta").load(rt).count() == 6


def log_state(path):
    """(last version, metaData, protocol) from a table's JSON commits."""
    log = os.path.join(path, "_delta_log")
    last = max(int(f[:20]) for f in os.listdir(log) if f.endswith(".json"))
    md = proto = None
    for v in range(last + 1):
        for line in open(os.path.join(log, f"{v:020d}.json")):
            a = json.loads(line)
            md, proto = a.get("metaData", md), a.get("protocol", proto)
    return last, md, proto


def make_identity(path, column, start, step):
    """Turns column of a Spark table into GENERATED ALWAYS AS IDENTITY the
    way Delta 3.3 writes one (delta-spark 3.2 cannot create one): a commit
    with protocol writer 6 and the column's delta.identity.* metadata."""
    last, md, proto = log_state(path)
    schema = json.loads(md["schemaString"])
    for f in schema["fields"]:
        if f["name"] == column:
            f["nullable"] = False
            f["metadata"].update({"delta.identity.start": start, "delta.identity.step": step,
                                  "delta.identity.allowExplicitInsert": False})
    md["schemaString"] = json.dumps(schema, separators=(",", ":"))
    proto = {"minReaderVersion": proto["minReaderVersion"],
             "minWriterVersion": max(6, proto["minWriterVersion"])}
    ci = {"timestamp": int(time.time() * 1000), "operation": "CHANGE COLUMN",
          "operationParameters": {}, "isBlindAppend": False}
    with open(os.path.join(path, "_delta_log", f"{last + 1:020d}.json"), "x") as out:
        for a in ({"commitInfo": ci}, {"protocol": proto}, {"metaData": md}):
            out.write(json.dumps(a, separators=(",", ":")) + "\n")


def test_generated_and_identity_columns(spark, emu, tmp_path):
    """A table with a generated partition column (Spark's DeltaTable builder)
    and an identity column: ehdelta computes both (the rows carry neither) and
    Spark finds them right; a second run continues after the high water
    mark."""
    path = str(tmp_path / "t")
    cols = spark.createDataFrame([], EVENT_COLS + ", ingestion_time TIMESTAMP, offset BIGINT, "
                                 "sequenceNumber BIGINT, partition STRING, txn_key BIGINT").schema
    (SparkDeltaTable.create(spark).location(path).addColumns(cols)
     .addColumn("processing_date", "DATE", generatedAlwaysAs="CAST(timestamp AS DATE)")
     .partitionedBy("processing_date").execute())
    make_identity(path, "txn_key", 1000, 5)
    events = transactions(50, seed=12, step_s=3000)  # ~ 2 days of events
    send_lines(emu, tmp_path, events[:30])

    def run():
        return ehdelta("run", "--connection-string-file", str(emu.cs_file), "--schema",
                       EVENT_COLS, "--metadata", METADATA, "--table", path, "--available-now")

    p = run()
    assert p.returncode == 0, p.stderr
    send_lines(emu, tmp_path, events[30:], name="more.jsonl")
    p = run()
    assert p.returncode == 0, p.stderr
    df = spark.read.format("delta").load(path)
    assert df.count() == 50
    assert df.where("processing_date <=> CAST(timestamp AS DATE)").count() == 50
    assert df.select("processing_date").distinct().count() >= 2
    keys = sorted(r[0] for r in df.select("txn_key").collect())
    assert keys == list(range(1000, 1000 + 5 * 50, 5))
    _, md, _ = log_state(path)
    field = [f for f in json.loads(md["schemaString"])["fields"] if f["name"] == "txn_key"][0]
    assert field["metadata"]["delta.identity.highWaterMark"] == 1000 + 5 * 49


def test_append_only_and_timestamp_ntz(spark, emu, tmp_path):
    """delta.appendOnly: appends, and OPTIMIZE (dataChange=false) allowed, as
    the protocol says; timestampNtz supported: appends go on, a
    TIMESTAMP_NTZ column is refused by the schema check."""
    path = str(tmp_path / "t")
    spark.sql(f"CREATE TABLE delta.`{path}` ({SPARK_DDL}) USING delta TBLPROPERTIES "
              "('delta.appendOnly' = 'true', 'delta.feature.timestampNtz' = 'supported')")
    send_lines(emu, tmp_path, transactions(20, seed=1))
    assert run_simple(emu, path).returncode == 0
    send_lines(emu, tmp_path, transactions(20, seed=2, first_id=100), name="more.jsonl")
    assert run_simple(emu, path).returncode == 0
    p = ehdelta("optimize", path)
    assert p.returncode == 0, p.stderr
    df = spark.read.format("delta").load(path)
    assert df.count() == 40 and len(df.inputFiles()) == 1
    last = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").orderBy("version", ascending=False)
    assert last.first()["operation"] == "OPTIMIZE"
    ntz = str(tmp_path / "ntz")
    spark.sql(f"CREATE TABLE delta.`{ntz}` ({SPARK_DDL}, local_time TIMESTAMP_NTZ) USING delta")
    p = run_simple(emu, ntz)
    assert p.returncode == 2 and "timestamp_ntz" in p.stderr, p.stderr
