"""``VLLMWorker``'s handling of the child process, with the emulator behind vLLM's command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from interlock.worker import VLLMWorker
from tests.support import fake_vllm
from tests.support.servers import free_port


def fake_prepared(tmp_path: Path) -> tuple[Path, Path]:
    """A worker "venv" whose python runs the fake vLLM, and a model folder that looks converted."""
    venv, model = tmp_path / "venv", tmp_path / "model"
    (venv / "bin").mkdir(parents=True)
    model.mkdir()
    (model / "config.json").write_text("{}")
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} {Path(fake_vllm.__file__)} "$@"\n')
    python.chmod(0o755)
    return venv, model


@pytest.mark.parametrize("to_file", [True, False])
def test_when_the_worker_stops_then_vllms_exit_leak_reports_are_not_printed(tmp_path, capfd, to_file):
    venv, model = fake_prepared(tmp_path)
    log = tmp_path / "worker.log" if to_file else None
    with VLLMWorker(port=0, venv=venv, model_dir=model, log_path=log) as worker:
        assert worker.returncode is None
    output = log.read_text() if log else capfd.readouterr().out
    assert "fake vLLM: serving smollm2" in output and "fake vLLM: shut down" in output
    assert "leaked" not in output and "nanobind" not in output and "resource_tracker" not in output


def test_when_an_otlp_endpoint_is_configured_then_worker_start_passes_it_to_vllm_over_http(tmp_path):
    venv, model = fake_prepared(tmp_path)
    cmd = [sys.executable, "-c", "from interlock.cli import main; main()", "worker", "start"]
    cmd += ["--venv", str(venv), "--model", str(model), "--port", str(free_port())]
    env = {**os.environ, "INTERLOCK_OBSERVABILITY__OTLP_ENDPOINT": "http://collector:4318/v1/traces"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in proc.stdout:  # until the worker is ready: the fake vLLM has printed what it was given by then
            lines.append(line)
            if "vLLM worker ready" in line:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert "fake vLLM: traces to http://collector:4318/v1/traces over http/protobuf" in "".join(lines), lines
