"""sdrest.outage: an outage is logged once when it begins and once when it ends."""

from __future__ import annotations

import logging

import pytest

from sdrest.outage import Outage


def test_an_outage_is_logged_once_when_it_begins_and_once_when_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    outage = Outage("the job store", "postgresql://sdrest:***@db/sdrest")
    caplog.set_level(logging.INFO, logger="sdrest.store")
    outage.succeeded()
    assert caplog.records == [] and not outage.down
    for reason in ("connection refused", "no connection within 0.2 s", "no connection within 0.2 s"):
        outage.failed(reason)
    assert outage.down
    outage.succeeded()
    outage.succeeded()
    assert not outage.down
    outage.failed("terminating connection due to administrator command")
    assert [record.getMessage() for record in caplog.records] == [
        "the job store at postgresql://sdrest:***@db/sdrest is unavailable (connection refused): "
        "requests get 503, workers wait until it is back",
        "the job store at postgresql://sdrest:***@db/sdrest is available again",
        "the job store at postgresql://sdrest:***@db/sdrest is unavailable (terminating connection due to "
        "administrator command): requests get 503, workers wait until it is back",
    ]
