"""The console, as a user meets it: a real ``rigd serve``, a real headless
Chromium driving the page's own buttons, frames from a running camera."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import pytest
from PIL import Image, ImageChops

from tests.helpers import wait_until
from tests.service import browser
from tests.service.daemon import Daemon, serving

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing())),
]

#: A spot moving over 256x256 frames: every frame differs from the last.
MOVING = """\
name: moving
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {shape: [256, 256], dtype: uint16, fps: 100, pattern: spot, overflow: block}
record: [camera.frames]
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    directory = tmp_path_factory.mktemp("console")
    pipelines = directory / "pipelines"
    pipelines.mkdir()
    (pipelines / "moving.yaml").write_text(MOVING)
    with serving(directory, pipeline_dirs=[str(pipelines)]) as d:
        yield d


@pytest.fixture(scope="module")
def page(daemon: Daemon) -> Iterator[Any]:
    with browser.chromium() as driver:
        yield driver


def by_id(driver: Any, element: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element)


def text(driver: Any, element: str) -> str:
    return str(by_id(driver, element).text)


def open_console(driver: Any, daemon: Daemon, token: str) -> None:
    """A fresh page with no token kept; ``token`` typed into it."""
    driver.get(daemon.url + "/console")
    driver.execute_script("sessionStorage.clear()")
    driver.get(daemon.url + "/console")
    by_id(driver, "token").send_keys(token)
    by_id(driver, "login-button").click()


def console_state(driver: Any) -> dict[str, Any]:
    state: dict[str, Any] = driver.execute_script("return window.rigdConsole")
    return state


def canvas_png(driver: Any, element: str) -> bytes:
    url = driver.execute_script(f"return document.getElementById('{element}').toDataURL()")
    return base64.b64decode(url.split(",", 1)[1])


def test_a_wrong_token_is_refused_by_the_page_and_by_the_live_view(
    daemon: Daemon, page: Any
) -> None:
    open_console(page, daemon, "not-the-token")
    wait_until(lambda: "wrong token" in text(page, "login-error"), 30, "the refusal")
    assert by_id(page, "app").get_attribute("hidden") is not None
    assert page.execute_script("return sessionStorage.getItem('rigd-token')") is None

    # The WebSocket refuses it too, with its own close code.
    code = page.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const ws = new WebSocket(
          location.href.replace("http", "ws").replace("/console", "/v1/preview"));
        ws.onopen = () => ws.send(JSON.stringify({token: "not-the-token"}));
        ws.onclose = (e) => done([e.code, e.reason]);
        """
    )
    assert code[0] == 4401
    assert "token" in code[1]

    # A wrong setting is answered with an error naming it; the stream goes on.
    answers = page.execute_async_script(
        """
        const [token, done] = arguments;
        const ws = new WebSocket(
          location.href.replace("http", "ws").replace("/console", "/v1/preview"));
        const seen = [];
        ws.onopen = () => ws.send(JSON.stringify({token, fps: "fast", max_size: 3}));
        ws.onmessage = (m) => {
          seen.push(JSON.parse(m.data));
          if (seen.length == 2) { ws.close(); done(seen); }
        };
        """,
        daemon.token,
    )
    assert answers[0]["type"] == "error"
    assert "fps" in answers[0]["detail"]
    assert answers[1]["type"] == "idle"
    assert answers[1]["detail"] == "no run is on"


def test_the_console_runs_a_pipeline_from_its_buttons_and_shows_it_live(
    daemon: Daemon, page: Any
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select

    open_console(page, daemon, daemon.token)
    wait_until(lambda: text(page, "state") == "idle", 30, "the page to show the state")
    # The token is kept for the tab: a reload asks nothing.
    page.refresh()
    wait_until(lambda: text(page, "state") == "idle", 30, "the page to open again")
    assert by_id(page, "login").get_attribute("hidden") is not None

    wait_until(lambda: "moving" in text(page, "pipelines"), 30, "the pipeline list")
    Select(by_id(page, "pipelines")).select_by_visible_text("moving")
    by_id(page, "load").click()
    wait_until(lambda: text(page, "state") == "loaded", 30, "the pipeline to load")
    by_id(page, "run-id").send_keys("console-run")
    by_id(page, "metadata").send_keys('{"animal": "mouse12", "trial": 3}')
    by_id(page, "start").click()
    wait_until(lambda: text(page, "state") == "running", 60, "the run to start")

    # Live frames: two screenshots of the view differ, and the frame id shown advances.
    wait_until(lambda: console_state(page)["framesDrawn"] >= 2, 60, "a frame drawn")
    view = by_id(page, "view")
    first = Image.open(io.BytesIO(view.screenshot_as_png)).convert("RGB")
    first_id = int(text(page, "frame-id"))
    drawn = console_state(page)["framesDrawn"]
    wait_until(
        lambda: (
            console_state(page)["framesDrawn"] >= drawn + 2
            and int(text(page, "frame-id")) > first_id
        ),
        30,
        "newer frames drawn",
    )
    second = Image.open(io.BytesIO(view.screenshot_as_png)).convert("RGB")
    assert int(text(page, "frame-id")) > first_id
    assert ImageChops.difference(first, second).getbbox() is not None, "the view did not change"
    assert first.getextrema() != ((0, 0), (0, 0), (0, 0)), "the view is black"

    # Paced at the page's rate (10 fps by default): never faster, however fast it draws.
    start, before = time.monotonic(), console_state(page)["framesDrawn"]
    wait_until(lambda: console_state(page)["framesDrawn"] >= before + 10, 30, "ten frames")
    elapsed = time.monotonic() - start
    assert console_state(page)["framesDrawn"] - before <= 10 * elapsed + 3

    # The pixel under the cursor, read from the full frame by the daemon.
    ActionChains(page).move_to_element_with_offset(view, 5, 5).perform()
    wait_until(lambda: text(page, "pixel") not in ("-", ""), 30, "the pixel value")
    assert float(text(page, "pixel")) >= 0

    # The plots advance with the progress events.
    wait_until(lambda: console_state(page)["plotSamples"] >= 2, 30, "two progress samples")
    plot = canvas_png(page, "plot-rate")
    samples = console_state(page)["plotSamples"]
    wait_until(lambda: console_state(page)["plotSamples"] > samples, 30, "another sample")
    wait_until(lambda: canvas_png(page, "plot-rate") != plot, 30, "the rate plot to move")
    # A plot of zeros (no drops yet) reads 0 to 1, not 0 to 1.1e-9.
    assert console_state(page)["axes"]["dropped (frames)"] >= 1

    # The live view reads through a tap the ring shows as reader "preview"; leaving the
    # page gives it back at once, and coming back takes it again.
    def readers() -> list[str]:
        return [r["input"] for link in daemon.status()["links"] for r in link["readers"]]

    # (The status is sampled twice a second: wait for the sample.)
    wait_until(lambda: readers() == ["recorder.camera", "preview"], 30, "the tap")
    page.get("about:blank")
    wait_until(lambda: readers() == ["recorder.camera"], 30, "the tap to be given back")
    page.get(daemon.url + "/console")
    wait_until(lambda: console_state(page)["framesDrawn"] >= 1, 60, "the view again")
    wait_until(lambda: "preview" in readers(), 30, "the tap taken again")

    # Pause and resume from the page's own buttons: the daemon holds the run, then goes on.
    assert by_id(page, "pause").get_attribute("hidden") is None
    by_id(page, "pause").click()
    wait_until(lambda: text(page, "state") == "paused", 30, "the run to pause")
    assert daemon.client.get("/v1/runs/console-run").json()["state"] == "paused"
    by_id(page, "resume").click()
    wait_until(lambda: text(page, "state") == "running", 30, "the run to resume")
    assert daemon.client.get("/v1/runs/console-run").json()["state"] == "running"

    by_id(page, "stop").click()
    wait_until(lambda: text(page, "state") == "loaded", 60, "the run to stop")
    run = daemon.client.get("/v1/runs/console-run").json()
    assert run["state"] == "complete"
    assert run["dropped"] == {"camera": 0}
    with h5py.File(run["files"][0], "r") as f:
        assert f.attrs["animal"] == "mouse12"
        assert f.attrs["trial"] == 3
        assert len(f["camera/frames"]) == run["frames"]["camera"] > 0

    # The run list links to the file's summary.
    from selenium.webdriver.common.by import By

    wait_until(lambda: "console-run" in text(page, "runs"), 30, "the run in the list")
    link = page.find_element(By.CSS_SELECTOR, "#runs a.inspect[data-run='console-run']")
    link.click()
    wait_until(lambda: "run console-run: complete" in text(page, "inspect"), 30, "its summary")


def test_a_run_file_downloads_through_the_api_and_hostile_requests_are_refused(
    daemon: Daemon, tmp_path: Path
) -> None:
    runs = daemon.client.get("/v1/runs").json()
    done = next(r for r in runs if r["run_id"] == "console-run")
    response = daemon.client.get("/v1/runs/console-run/files/0")
    assert response.status_code == 200
    assert response.content == Path(done["files"][0]).read_bytes()
    assert daemon.client.get("/v1/runs/console-run/files/1").status_code == 404
    assert daemon.client.get("/v1/runs/nothing/files/0").status_code == 404
    assert daemon.client.get("/console/assets/..%2Fconsole.py").status_code == 404
    assert daemon.client.get("/console/assets/_console.py").status_code == 404
    unauthorized = daemon.client.get(
        "/v1/runs/console-run/files/0", headers={"Authorization": "Bearer wrong"}
    )
    assert unauthorized.status_code == 401
    names = [p["name"] for p in daemon.client.get("/v1/pipelines").json()]
    assert "moving" in names
    assert "demo" in names
    page = daemon.client.get("/console")
    assert page.status_code == 200
    assert '<script src="/console/assets/console.js">' in page.text
    assert "cdn" not in page.text.lower()
    assert "https://" not in page.text


def test_a_daemon_that_stops_is_said_to_be_gone_in_words_not_failed_to_fetch(
    tmp_path: Path, page: Any
) -> None:
    with serving(tmp_path) as own:
        open_console(page, own, own.token)
        wait_until(lambda: text(page, "state") != "", 30, "the daemon's state on the page")
    # The daemon is gone (a `rigd run --console` ends with its run the same way).
    wait_until(lambda: "rigd is not answering at" in text(page, "message"), 30, "a word")
    by_id(page, "stop").click()
    wait_until(lambda: text(page, "message").startswith("stop: rigd is not answering"), 30, "stop")
    assert "Failed to fetch" not in text(page, "message")
