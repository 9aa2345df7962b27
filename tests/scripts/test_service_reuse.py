"""The GCS and BigQuery emulator scripts never adopt a server another checkout started.

The two emulators share files on disk (BigQuery's FILE_LOADS read the GCS emulator's objects by
path). A CI clone once found a second checkout's GCS emulator on the port, "started" in 0 s, wrote
through it into the other checkout's folder, and its BigQuery loads failed with "No files found that
match the pattern". Here a second checkout (its own SERVICES_DIR) starts while the suite's emulators
run: it refuses, says why and what to do, and installs nothing.
"""
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.mark.parametrize("script, port_variable", [("gcs.sh", "GCS_PORT"), ("bigquery.sh", "BQ_REST_PORT")])
def test_an_emulator_another_checkout_started_is_refused(gcs_url, bq_endpoints, tmp_path, script, port_variable):
    other = tmp_path / "other-checkout-services"
    env = {k: v for k, v in os.environ.items() if k not in ("SERVICES_DIR", "GCS_PORT", "BQ_REST_PORT")}
    out = subprocess.run(["bash", str(REPO / "scripts/services" / script), "start"], capture_output=True, text=True,
                         env={**env, "SERVICES_DIR": str(other)}, timeout=60)
    assert out.returncode == 1, out.stderr
    assert "this checkout did not start" in out.stderr and port_variable in out.stderr
    assert not (other / "venvs").exists()  # refused before installing anything
    mine = subprocess.run(["bash", str(REPO / "scripts/services" / script), "start"], capture_output=True, text=True,
                          timeout=60)
    assert mine.returncode == 0 and "already running" in mine.stderr  # the checkout that started it reuses it
