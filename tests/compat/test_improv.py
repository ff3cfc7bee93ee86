"""improv's users: its config files and its demo actors (imports changed) run on rigd."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from rigd.compat.improv import Link, StoreClient
from rigd.config import PipelineFileError, load_pipeline
from rigd.exceptions import ObjectNotFoundError
from rigd.pipeline import Pipeline, plan_pipeline
from rigd.storage import FrameRing, MessageReader, MessageTooLargeError, MessageWriter
from tests.helpers import wait_until

DEMO = Path(__file__).parent / "improv_demo"
ROOT = Path(__file__).parents[2]


def log_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_improvs_minimal_demo_runs_from_its_config_file_with_only_imports_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the generator saves its matrix here, as in improv
    pipeline = Pipeline(plan_pipeline(DEMO / "minimal.yaml"), run_id="improv", log_dir=tmp_path)
    pipeline.start()
    log = tmp_path / "improv.log"
    try:
        wait_until(
            lambda: any("Frame number: 30" in line for line in log_lines(log)),
            timeout=60,
            what="the processor's 30th frame in the run's log",
        )
    finally:
        report = pipeline.stop()

    assert report.state == "stopped", report.failure
    assert report.log == str(log)
    lines = log_lines(log)
    processor = [line for line in lines if " Processor INFO " in line]
    averages = [float(line.rsplit(" ", 1)[1]) for line in processor if "Average: " in line]
    assert len(averages) >= 30
    assert all(0 <= a <= 99 for a in averages)
    # improv's logger (self.improv_logger) and the module's logger both land there.
    assert any(" Generator INFO Generator: Completed setup for Generator" in x for x in lines)
    assert any(
        "Generator INFO tests.compat.improv_demo.sample_generator: Generator stopping" in x
        for x in lines
    )
    assert any("Processor stopping" in line for line in lines)
    saved = np.load(tmp_path / "sample_generator_data.npy")
    assert saved.shape[1] == 5
    # The run's store and last-error files are gone with the run.
    assert not Path(pipeline._run_log.status_dir).exists()  # type: ignore[union-attr]


def test_improv_config_with_store_loc_sends_keys_that_name_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "named.yaml"
    config.write_text(
        textwrap.dedent(
            """\
            settings: {use_watcher: false}
            actors:
              Generator:
                package: tests.compat.improv_demo.sample_generator
                class: Generator
                store_loc: /tmp/store
              Processor:
                package: tests.compat.improv_demo.sample_processor
                class: Processor
                store_loc: /tmp/store
            connections:
              Generator.q_out: Processor.q_in
            """
        )
    )
    pipeline = Pipeline(plan_pipeline(config), run_id="named", log_dir=tmp_path)
    pipeline.start()
    try:
        wait_until(
            lambda: any("Frame number: 5" in x for x in log_lines(tmp_path / "named.log")),
            timeout=60,
            what="five frames by name",
        )
    finally:
        report = pipeline.stop()
    assert report.state == "stopped", report.failure


def test_rigd_convert_prints_the_pipeline_file_an_improv_config_means(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "rigd", "convert", str(DEMO / "minimal.yaml")],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )

    assert out.returncode == 0, out.stderr
    converted = tmp_path / "pipeline.yaml"
    converted.write_text(out.stdout)
    plan = plan_pipeline(converted)
    assert [a.name for a in plan.actors] == ["Generator", "Processor"]
    assert [(r.name, r.readers[0][:2]) for r in plan.rings if r.readers] == [
        ("Generator.q_out", ("Processor", "q_in"))
    ]
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "rigd",
            "convert",
            str(ROOT / "src/rigd/config/pipelines/demo.yaml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 2
    assert "is not an improv config file" in refused.stderr


def test_an_improv_config_with_a_bad_actor_or_connection_names_file_line_and_key(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "actors:\n"
        "  Generator:\n"
        "    package: tests.compat.improv_demo.sample_generator\n"
        "  Processor:\n"
        "    package: tests.compat.improv_demo.sample_processor\n"
        "    class: Processor\n"
        "connections:\n"
        "  Generator.q_out: [Processor]\n"
    )

    with pytest.raises(PipelineFileError) as caught:
        plan_pipeline(path)

    assert caught.value.problems == [
        f"{path}, line 2, actors.Generator.class: required key 'class' is missing"
    ]
    generator = "    package: tests.compat.improv_demo.sample_generator\n"
    path.write_text(path.read_text().replace(generator, generator + "    class: Generator\n"))
    with pytest.raises(PipelineFileError) as caught:
        plan_pipeline(path)
    assert caught.value.problems == [
        f"{path}, line 9, connections.Generator.q_out: a connection's target is "
        "'Actor.q_in', got 'Processor'"
    ]


def test_a_link_refuses_a_message_larger_than_its_slot_and_changes_nothing() -> None:
    ring = FrameRing.create(
        f"improv-link-{os.getpid()}", (1024,), "uint8", slot_count=4, kind="messages"
    )
    try:
        out = Link("q_out", writer=MessageWriter(ring))
        inp = Link("q_in", reader=MessageReader.attach(ring, "lossless"))

        with pytest.raises(MessageTooLargeError, match=r"^a message does not fit link 'q_out'"):
            out.put(np.zeros(2000, np.uint8))
        with pytest.raises(queue.Empty):
            inp.get(timeout=0)  # the refused message left nothing behind
        out.put({"roi": [(1, 2), (3, 4)], "t": (1.5, (2, "row"))})

        assert inp.get(timeout=5) == {"roi": [(1, 2), (3, 4)], "t": (1.5, (2, "row"))}
        with pytest.raises(TypeError, match="is an input"):
            inp.put(1)
    finally:
        ring.unlink()
        ring.close()
    store = StoreClient()  # this process's own store (rigd.store)
    key = store.put(np.arange(3), "../../etc/passwd")
    try:
        assert list(store.get(key)) == [0, 1, 2]
        kept = store.keys()
        assert key in kept
        with pytest.raises(ObjectNotFoundError, match="no object 'missing'"):
            store.get("missing")
    finally:
        store.delete(key)
    kept = store.keys()
    assert key not in kept


def test_rigd_run_runs_an_improv_config_until_ctrl_c_with_lines_named_after_actors(
    tmp_path: Path,
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rigd", "run", str(DEMO / "minimal.yaml")],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.SimpleQueue[str] = queue.SimpleQueue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr or ()])
    reader.start()
    seen: list[str] = []
    try:
        # Ctrl-C once the start is over (a Ctrl-C during the start kills it,
        # `rigd run: start interrupted`), and frames flow.
        while not (
            "Processor: Frame number: 5" in seen
            and any(x.startswith("rigd run: running") for x in seen)
        ):
            seen.append(lines.get(timeout=60).rstrip("\n"))
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join()

    assert proc.returncode == 130, out
    assert ": stopped after " in out
    assert "Generator: Completed setup for Generator" in seen
    assert not any(line.startswith("rigd worker") for line in seen)
    assert (tmp_path / "sample_generator_data.npy").exists()  # improv's generator saves it


def test_an_improv_config_carries_rigds_own_keys_and_refuses_keys_of_neither(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    actors = (
        "actors:\n"
        "  Generator: {package: tests.compat.improv_demo.sample_generator, class: Generator}\n"
        "  Processor: {package: tests.compat.improv_demo.sample_processor, class: Processor}\n"
        "connections:\n"
        "  Generator.q_out: [Processor.q_in]\n"
    )
    path = tmp_path / "rig.yaml"
    path.write_text(
        "settings: {use_watcher: false}\n" + actors + "name: rig_one\n"
        "record: [Generator.q_out]\n"
        "recording: {directory: data, slots: 8}\n"
        "run: {metadata: {mouse: m1}, max_pause_s: 5}\n"
        "realtime: {cpu_latency_us: 0}\n"
    )

    with caplog.at_level("WARNING", logger="rigd.config._improv"):
        config = load_pipeline(path).config

    assert config.name == "rig_one"
    assert config.record == ["Generator.q_out"]
    assert (config.recording.directory, config.recording.slots) == ("data", 8)
    assert (config.run.metadata, config.run.max_pause_s) == ({"mouse": "m1"}, 5.0)
    assert config.realtime.cpu_latency_us == 0
    assert caplog.messages == [
        f"{path}, line 1, settings: improv's server settings (use_watcher) are not used by "
        "rigd; ignored"
    ]
    # rigd convert prints the same warning, and the file it prints says why in a comment.
    out = subprocess.run(
        [sys.executable, "-m", "rigd", "convert", str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert caplog.messages[0] in out.stderr
    assert "# Not used by rigd: settings (improv's server settings).\n" in out.stdout
    assert "record:\n- Generator.q_out\n" in out.stdout

    # A carried key is checked as in rigd's format, naming the converted file.
    path.write_text(actors + "recording: {slots: true}\n")
    with pytest.raises(PipelineFileError) as caught:
        load_pipeline(path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path} (as converted from improv's format; see rigd convert")
    assert "recording.slots: slots is a whole number, got true" in problem

    # Keys of neither format, and rigd's links in improv's format, are refused by name.
    path.write_text(actors + "gui: {port: 5000}\nredirects: [a]\nlinks: [a.b -> c.d]\n")
    with pytest.raises(PipelineFileError) as caught:
        load_pipeline(path)
    assert [p.split(": ", 1)[0] for p in caught.value.problems] == [
        f"{path}, line 6, gui",
        f"{path}, line 7, redirects",
        f"{path}, line 8, links",
    ]
    assert (
        "unknown key 'gui': neither improv's (actors, connections, settings"
        in (caught.value.problems[0])
    )
    assert "check its spelling, or remove it" in caught.value.problems[1]
    assert "an improv file links actors under connections" in caught.value.problems[2]
    out = subprocess.run(
        [sys.executable, "-m", "rigd", "convert", str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 2
    assert all(p in out.stderr for p in caught.value.problems)


def test_rigd_convert_names_a_key_given_twice_as_rigd_run_does(tmp_path: Path) -> None:
    # Was: "is not an improv config file" for an actor or a connection given twice.
    path = tmp_path / "twice.yaml"
    path.write_text(
        "actors:\n"
        "  Generator: {package: tests.compat.improv_demo.sample_generator, class: Generator}\n"
        "  Processor: {package: tests.compat.improv_demo.sample_processor, class: Processor}\n"
        "connections:\n"
        "  Generator.q_out: [Processor.q_in]\n"
        "  Generator.q_out: [Processor.q_in]\n"
    )
    with pytest.raises(PipelineFileError) as caught:
        load_pipeline(path)
    (problem,) = caught.value.problems
    assert "key 'Generator.q_out' is given twice in one mapping (lines 5 and 6)" in problem

    out = subprocess.run(
        [sys.executable, "-m", "rigd", "convert", str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 2
    assert "is not an improv config file" not in out.stderr
    assert problem in out.stderr


def test_an_improv_actor_with_no_body_is_named_with_its_fix(tmp_path: Path) -> None:
    # Was: "Input should be a valid dictionary or instance of _ImprovActor".
    path = tmp_path / "bare.yaml"
    path.write_text("actors:\n  Generator:\n  Processor: {package: '', class: Processor}\n")
    with pytest.raises(PipelineFileError) as caught:
        load_pipeline(path)
    assert caught.value.problems == [
        f"{path}, line 2, actors.Generator: actor 'Generator' needs its package and class, "
        "e.g. {package: actors.sample_generator, class: Generator}",
        f"{path}, line 3, actors.Processor.package: package is a module, "
        "e.g. actors.sample_generator; got an empty one",
    ]
