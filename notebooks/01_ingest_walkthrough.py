# %% [markdown]
# # crmlake walkthrough: from an operator's raw exports to trusted silver tables
#
# A percent-format notebook (open it in Jupyter with jupytext, or VS Code, or run it as a
# script); the test suite executes it. It generates a tiny synthetic operator with some bad
# records, ingests it, and shows what landed where, what was rejected and why, and that the
# counts reconcile. Set `CRMLAKE_NOTEBOOK_ROOT` to choose where the tables go.

# %%
import os
import tempfile
from pathlib import Path

from crmlake.catalog import tables
from crmlake.core.config import load_config
from crmlake.core.session import build_session
from crmlake_jobs.generate import main as generate
from crmlake_jobs.ingest import main as ingest
from pyspark.sql import functions as F

root = os.environ.get("CRMLAKE_NOTEBOOK_ROOT") or tempfile.mkdtemp(prefix="crmlake-notebook-")
cfg = load_config(overrides={"root": root})
spark = build_session(cfg)  # reuses a running session (a test's, a notebook kernel's)

# %% [markdown]
# ## 1. A synthetic operator: 300 subscribers, 4 days, 2% bad records

# %%
assert (
    generate(
        [
            "--root",
            root,
            "--subscribers",
            "300",
            "--start",
            "2026-03-01",
            "--days",
            "4",
            "--bad-rate",
            "0.02",
            "--log-format",
            "text",
        ],
        spark=spark,
    )
    == 0
)
print("file days:", sorted(p.name for p in Path(root, "landing", "usage").glob("date=*")))

# %% [markdown]
# ## 2. Ingest every file day: landing → bronze → silver

# %%
assert ingest(["--root", root, "--all", "--log-format", "text"], spark=spark) == 0
for name in (
    "silver.subscribers",
    "silver.usage",
    "silver.recharges",
    "silver.care_interactions",
    "silver.surveys",
    "silver.campaign_responses",
    "silver.network_cells",
):
    print(f"{name:<28} {tables.read(spark, root, name).count():>8,} rows")

# %% [markdown]
# ## 3. What was rejected, and why

# %%
quarantine = tables.read(spark, root, "silver.quarantine")
quarantine.groupBy("entity", "rule", "column").count().orderBy("entity", F.desc("count")).show(50, truncate=False)

# %% [markdown]
# ## 4. Counts reconcile: read = accepted + quarantined + duplicates, per run

# %%
runs = tables.read(spark, root, "gold.run_log").where("job = 'ingest'")
runs.select("run_date", "status", "rows_read", "rows_rejected", "rows_duplicate", "rows_written").orderBy(
    "run_date"
).show()
reconciliation = runs.selectExpr("sum(rows_read) AS read", "sum(rows_rejected) AS rejected").first()
assert reconciliation["rejected"] == quarantine.count()

# %% [markdown]
# ## 5. A subscriber's history, pseudonymized

# %%
history = tables.read(spark, root, "silver.subscribers")
changed = history.groupBy("subscriber_key").count().where("count > 1").select("subscriber_key").limit(1)
history.join(changed, "subscriber_key", "inner").select(
    F.substring("subscriber_key", 1, 12).alias("key"),
    "tariff",
    "status",
    "is_marketing_consent",
    "valid_from",
    "valid_to",
).orderBy("valid_from").show(truncate=False)
