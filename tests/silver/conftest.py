"""Fixtures of the silver tests: the base landing of test_ingest, ingested once for the session."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def base_ingested(spark, tmp_path_factory):
    """``base_landing`` ingested for D1 by one real run, once for the session: the tests that
    start from that state copy it (an ingest run costs about 10 s here) and go on from there."""
    from crmlake_jobs.ingest import main as ingest_main
    from test_ingest import D1, KEY, base_landing

    root = tmp_path_factory.mktemp("base-ingested") / "root"
    base_landing(str(root))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRMLAKE_HMAC_KEY", KEY.decode())
        assert ingest_main(["--root", str(root), "--date", D1], spark=spark) == 0
    return root


@pytest.fixture
def ingested_d1(cfg, hmac_key, base_ingested):
    """This test's root holding ``base_landing`` ingested for D1: a copy of the session's run
    (files keep their modification times, so the registry knows them)."""
    assert hmac_key.decode() == "test-key-0123456789abcdef"  # the key the session's run used
    shutil.copytree(base_ingested, cfg.root, symlinks=True)
    return cfg.root
