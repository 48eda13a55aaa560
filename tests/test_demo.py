"""The README's first command ends in scripts/demo.sh: it must keep working as the kits and the intake change."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (REPO / ".venv" / "bin" / "mynumber").exists(), reason="the demo runs the installed CLI")
def test_the_demo_runs_end_to_end(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYNUMBER_")}
    env["DEMO_OUT"] = str(tmp_path / "demo")
    done = subprocess.run(["bash", str(REPO / "scripts" / "demo.sh")], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "demo finished" in out and "audit log intact" in out
    assert "printed 4 kits" in out and "pages: kit_page" in out
    from tests import scansim
    if scansim.load_mnist_test() is not None:   # MNIST handwriting: some fields need their card copy
        assert "review items settled by the number on the kit's ID copy" in out
