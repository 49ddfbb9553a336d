"""report.html as a person uses it, in headless Chromium: it renders without JavaScript errors, its overview shows
the beat counts of beats.csv, and clicking an abnormal event shows that event's strip (screenshot kept in
outputs/test_artifacts/). Needs Chromium and Playwright (CI installs both): ``pytest -m browser``."""

import csv
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import compose_config, train_overrides, write_record
from hydra.core.hydra_config import HydraConfig

from ecg_lightning.predict import predict_record
from ecg_lightning.train import train

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "outputs" / "test_artifacts"


@pytest.fixture(scope="module")
def written(tiny_db, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("html")
    overrides = [*train_overrides(tiny_db, tmp), "trainer.max_epochs=3", "seed=3", "data.labels=aami",
                 "data.split=ds1ds2", "data.pad_edges=true", "data.lead=[MLII,V1]", "monitor=val/accuracy"]  # fmt: skip
    train(compose_config("train", tmp / "run", overrides))
    HydraConfig.instance().cfg = None
    write_record(tmp, "holter", 0.3, np.random.default_rng(8), duration_s=180)
    out = tmp / "pred"
    predict_record(compose_config("predict", out, [f"ckpt_path={tmp / 'run/checkpoints/last.ckpt'}",
                                                   f"record={tmp / 'holter'}"]))  # fmt: skip
    HydraConfig.instance().cfg = None
    return out


def test_the_report_renders_counts_and_opens_a_strip_on_click(written):
    from playwright.sync_api import sync_playwright

    rows = list(csv.DictReader((written / "beats.csv").open()))
    counts = Counter(r["predicted"] for r in rows)
    errors = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto((written / "report.html").as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=5000)
        for name in ("N", "S", "V", "F", "Q"):
            assert page.inner_text(f"#total-{name}") == f"{name}: {counts.get(name, 0)}"
        events = page.locator("#events .event")
        abnormal = sum(n for c, n in counts.items() if c != "N")
        assert abnormal > 0 and 0 < events.count() <= abnormal
        first = events.first.inner_text()
        events.first.click()
        info = page.inner_text("#stripinfo")
        assert first.split("— ")[1] in info and "beats shown" in info
        blank = page.evaluate("() => { const c = document.getElementById('strip'); const d = c.getContext('2d')"
                              ".getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 3; i < d.length;"
                              " i += 4) n += d[i] > 0; return n; }")  # fmt: skip
        assert blank > 1000  # the strip is drawn
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report_click.png"))
        browser.close()
    assert not errors
