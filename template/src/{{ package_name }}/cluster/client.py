"""The Dask cluster a stage runs on (``engine`` in params.yaml).

``engine.scheduler: local`` starts a LocalCluster of ``engine.workers`` worker processes on this
machine for the stage and stops it afterwards; an address (``tcp://host:8786``) connects to a running
cluster. The ``DASK_SCHEDULER_ADDRESS`` environment variable overrides the setting.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any

LOCAL = "local"


def settings(params: dict[str, Any]) -> dict[str, Any]:
    """``engine`` with its defaults (the same as settings.py's)."""
    given = params.get("engine") or {}
    return {
        "scheduler": LOCAL,
        "workers": 2,
        "threads_per_worker": 1,
        "memory_limit": "auto",
        "sample_rows": 100_000,
        **given,
    }


def address(params: dict[str, Any]) -> str:
    return os.environ.get("DASK_SCHEDULER_ADDRESS") or str(settings(params)["scheduler"])


@contextmanager
def connect(params: dict[str, Any]):
    """A ``dask.distributed.Client``: on a LocalCluster started here, or on the scheduler named."""
    import logging

    from dask.distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)  # the stage says what it did
    engine, where = settings(params), address(params)
    if where != LOCAL:
        with Client(where) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=int(engine["workers"]),
            threads_per_worker=int(engine["threads_per_worker"]),
            memory_limit=engine["memory_limit"],
            processes=True,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def describe(client) -> str:
    """``2 workers, 2 threads`` of the cluster ``client`` is on."""
    workers = client.scheduler_info()["workers"]
    threads = sum(worker["nthreads"] for worker in workers.values())
    return f"{len(workers)} worker{'s' * (len(workers) != 1)}, {threads} thread{'s' * (threads != 1)}"
