"""The run report opened in a real headless Chromium (Debian's package), offline."""
import os
import shutil
import subprocess
from pathlib import Path

import lxml.html
import pytest
from PIL import Image

from pipelines.dedup import run
from tests.transforms.reporting.test_run_report import assert_offline
from transforms.reporting.report import read_duplicates, read_summary, read_table
from transforms.reporting.run_report import STAGES

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
# Flags of a headless run on a closed network: no sandbox (root), no GPU, no background connections,
# and every host name unresolvable, so anything the page tried to fetch would fail to render.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND"]


@pytest.fixture(scope="module")
def chromium():
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: `make test` installs it with scripts/install-chromium.sh")
        pytest.skip("chromium not installed (scripts/install-chromium.sh)")
    return path


def browse(chromium, tmp_path, page: Path, *args) -> subprocess.CompletedProcess:
    cmd = [chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


def test_report_renders_sections_tables_and_charts_in_chromium(chromium, tmp_path):
    out = tmp_path / "out"
    run(["--input", str(REPO / "demo" / "corpus.jsonl"), "--output", str(out), "--vector_store", "memory",
         "--report_top", "10"])
    page = out / "report.html"
    html = page.read_text(encoding="utf-8")
    assert_offline(html)

    dom = lxml.html.fromstring(browse(chromium, tmp_path, page, "--dump-dom").stdout)  # the DOM as rendered
    for section in ("settings", "counts", "distributions", "groups", "pairs"):
        assert dom.xpath(f"//section[@id='{section}']/h2"), section
    counts = read_summary(str(out))["counts"]
    stage_rows = dom.xpath("//table[@id='stage-counts']/tbody/tr")
    assert len(stage_rows) == sum(key in counts for key, _ in STAGES)
    shown = {tr.xpath("string(td[1])"): int(tr.xpath("string(td[2])").replace(",", "")) for tr in stage_rows}
    assert shown["document pairs (duplicates and passage reuse)"] == counts["duplicate_pairs"] == len(read_duplicates(str(out)))
    charts = dom.xpath("//figure[@class='chart']")
    assert len(charts) == 4  # document and paragraph x cosine and Jaccard
    assert all(len(fig.xpath(".//*[local-name()='path']")) > 20 for fig in charts)  # bars, axes, glyphs
    groups = read_table(str(out), "groups")
    assert len(dom.xpath("//table[@id='group-table']/tbody/tr")) == min(15, len(groups))
    pairs = dom.xpath("//div[@class='pair']")
    passages = counts["passage_pairs"]  # shown in their own section: the demo's reused paragraphs
    assert passages and len(dom.xpath("//section[@id='passages']//div[@class='pair']")) == min(10, passages)
    assert len(pairs) == min(10, counts["duplicate_pairs"] - passages) + min(10, passages)
    assert all(p.xpath(".//div[@class='side']//mark") for p in pairs)  # copied passages highlighted

    shot = tmp_path / "report.png"
    browse(chromium, tmp_path, page, "--window-size=1280,2400", f"--screenshot={shot}")
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2400)
    colours = image.getcolors(maxcolors=1 << 20)
    non_white = sum(n for n, c in colours if sum(c) < 740)
    assert non_white > 0.03 * image.width * image.height  # text, tables and charts were painted
    assert len(colours) > 200  # anti-aliased text and charts, not a flat page
    bars = sum(n for n, (r, g, b) in colours if r > 190 and 60 < g < 110 and 60 < b < 110)
    assert bars > 500  # the red 'kept' bars of the score charts were drawn
