"""Our request ids (gateway/ids.py): unpredictable, unique, never shared by forked workers."""

from __future__ import annotations

import os
import re
import time

from gateway.ids import client_request_id, new_request_id


def test_when_ids_are_drawn_then_each_is_32_hex_digits_and_none_repeats():
    before = time.time_ns() // 1_000_000
    ids = [new_request_id() for _ in range(5000)]  # several buffer refills
    after = time.time_ns() // 1_000_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    # The millisecond first (new rows land at the end of the primary key's index), then nothing predictable.
    assert all(before <= int(i[:12], 16) <= after for i in ids)
    assert [i[:12] for i in ids] == sorted(i[:12] for i in ids)
    assert len({i[12:16] for i in ids}) > 4000


def test_when_a_worker_is_forked_then_it_draws_other_ids_than_its_parent():
    new_request_id()  # the buffer is filled before the fork, as in a server that forks its workers
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next id and leave at once
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    parent = new_request_id()
    assert child[12:] != parent[12:]  # the random part: the buffer copied by the fork is not used


def test_when_a_client_sends_an_x_request_id_then_only_a_sane_one_is_kept():
    assert client_request_id("abc-123:retry.2") == "abc-123:retry.2"
    assert client_request_id("bad id with spaces") is None
    assert client_request_id("x" * 129) is None
    assert client_request_id(None) is None and client_request_id("") is None
