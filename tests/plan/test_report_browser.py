"""The HTML report in a real browser: Debian's headless Chromium through chromedriver (selenium)."""

# CI (`.ci/run`) installs `chromium` and `chromium-driver` and sets FLEETWISE_REQUIRE_BROWSER=1, so there these
# tests fail rather than skip when the browser (or selenium) is missing. Elsewhere they skip with the reason printed
# (`-ra`).

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetwise.catalog import Catalog
from fleetwise.plan import PlanSpec, plan
from fleetwise.plan.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
REQUIRED = os.environ.get("FLEETWISE_REQUIRE_BROWSER") == "1"

if not (CHROMIUM and CHROMEDRIVER):
    if REQUIRED:
        raise RuntimeError("FLEETWISE_REQUIRE_BROWSER=1 but chromium/chromedriver are not installed "
                           "(apt-get install chromium chromium-driver)")
    pytest.skip("headless Chromium not installed (apt-get install chromium chromium-driver)", allow_module_level=True)

if REQUIRED:
    from selenium import webdriver  # required: an ImportError fails the run instead of skipping it
else:
    webdriver = pytest.importorskip("selenium.webdriver")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _open(browser: Any, path: Path) -> list[dict[str, Any]]:
    browser.get_log("browser")  # drop anything from before
    browser.get(path.resolve().as_uri())
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("reports")
    single = plan(PlanSpec(what_if=["traffic=2x"]), catalog=catalog)
    mix = plan(PlanSpec(model="meta-llama/Llama-3.1-70B-Instruct", instances=["inf2", "p4d", "g6e"],
                        dtypes=["bf16"], verify=False), catalog=catalog)
    return {"single": write_report(single, folder / "single.html"), "mix": write_report(mix, folder / "mix.html")}


@pytest.mark.parametrize("which", ["single", "mix"])
def test_report_renders_without_console_errors_and_with_every_chart(browser: Any, reports: dict[str, Path],
                                                                    which: str) -> None:
    errors = _open(browser, reports[which])
    assert errors == []
    charts = browser.execute_script(
        "return Array.from(document.querySelectorAll('svg.chart')).map(s => {"
        "const r = s.getBoundingClientRect();"
        "return {id: s.id, width: r.width, height: r.height,"
        "        marks: s.querySelectorAll('circle, rect.bar, path.line').length};"
        "});")
    by_id = {c["id"]: c for c in charts}
    assert set(by_id) >= {"pareto", "capacity", "capacity-curve", "schedule", "costs"}
    for chart in by_id.values():
        assert chart["width"] > 100 and chart["height"] > 100 and chart["marks"] > 0
    summary = browser.find_element("id", "summary").text
    assert summary.startswith("Serve ")


def test_the_console_check_catches_a_broken_page(browser: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><body><script>undefinedFunction()</script></body></html>")
    assert _open(browser, broken)  # the same check reports a script error, so a clean report means clean


def _run_this_module(path: str, pythonpath: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path, "FLEETWISE_REQUIRE_BROWSER": "1"}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           __file__], cwd=Path(__file__).parents[2], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_when_the_browser_is_required_a_missing_one_fails_the_run(tmp_path: Path) -> None:
    run = _run_this_module(path=str(tmp_path))  # nothing on PATH: no chromium, no chromedriver
    assert run.returncode != 0, run.stdout
    assert "FLEETWISE_REQUIRE_BROWSER=1 but chromium/chromedriver are not installed" in run.stdout
    assert "skipped" not in run.stdout.splitlines()[-1]


def test_when_the_browser_is_required_a_missing_selenium_fails_the_run(tmp_path: Path) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("chromium", "chromedriver"):  # found on PATH, never started
        (tools / name).write_text("#!/bin/sh\nexit 1\n")
        (tools / name).chmod(0o755)
    shadow = tmp_path / "site" / "selenium"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('selenium hidden by the test')\n")
    run = _run_this_module(path=str(tools), pythonpath=str(shadow.parent))
    assert run.returncode != 0, run.stdout
    assert "selenium hidden by the test" in run.stdout
    assert "skipped" not in run.stdout.splitlines()[-1]
