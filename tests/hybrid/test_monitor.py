"""The monitor pool: a monitor process that died is the one-line MonitorDiedError, wherever
the driver notices it (a result it waits for, or the next task it submits)."""

from __future__ import annotations

import numpy as np
import pytest

from hybridmd.hybrid.monitor import MonitorDiedError, MonitorPool, MonitorTask


def test_a_task_submitted_to_a_dead_pool_is_monitor_died(broken_pool) -> None:
    pool = MonitorPool(1, {}, {}, executor=broken_pool)
    task = MonitorTask(0, np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(MonitorDiedError, match="monitor process ended abruptly"):
        pool.submit(task, now=0)
    assert pool.outstanding == 0
