"""bench/tail_probe.py: slow requests grouped into clusters, and who had the core while the gateway waited for it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("tail_probe", Path(__file__).parents[2] / "bench" / "tail_probe.py")
tail_probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tail_probe)

# perf sched timehist: time, cpu, task [tid/pid], wait time, sch delay, run time (ms). The gateway (pid 100)
# woke at 10.000 and waited 3 ms: the recorder (pid 200, a thread of it) ran 1 ms of that, a kworker 2 ms.
TIMEHIST = """\
           time    cpu  task name                       wait time  sch delay   run time
                        [tid/pid]                          (msec)     (msec)     (msec)
--------------- ------  ------------------------------  ---------  ---------  ---------
      10.001000 [0000]  python3[201/200]                    0.000      0.000      1.000
      10.003000 [0000]  kworker/u8:1[50]                    0.000      0.000      2.000
      10.003500 [0000]  interlock[100]                      3.000      3.000      0.500
      10.004000 [0000]  interlock[100]                      0.100      0.100      0.400
"""


def test_when_the_gateway_waited_for_the_cpu_then_the_tasks_that_ran_meanwhile_are_blamed():
    result = tail_probe.blame(TIMEHIST, gateway=100, recorder=200, min_wait=0.2)
    assert result["waits"] == 1 and result["waited_ms"] == 3.0
    assert result["who_ran_ms"] == {"kworker/u8:1": 2.0, "the recorder": 1.0}


def test_when_slow_requests_come_close_together_then_they_are_one_cluster():
    samples = [(0.0, 0.5), (1.0, 8.0), (1.01, 6.0), (1.05, 4.0), (2.0, 0.6), (3.0, 12.0)]
    result = tail_probe.report(samples, slow=3.0)
    assert result["over_5ms"] == 3
    assert result["slow_clusters"] == [
        {"at_s": 1.0, "requests": 3, "worst_ms": 8.0},
        {"at_s": 3.0, "requests": 1, "worst_ms": 12.0},
    ]


def test_when_a_response_is_sized_or_chunked_then_its_end_is_found_only_once_it_is_whole():
    sized = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n"
    for whole in (sized, chunked):
        assert tail_probe.response_length(whole + b"HTTP/1.1 200 next") == len(whole)
        assert all(tail_probe.response_length(whole[:cut]) is None for cut in range(len(whole)))
