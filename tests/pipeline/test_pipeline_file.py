"""Pipeline files: every error names the file, the line and the key, and nothing starts."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest

from rigd.actors import Actor
from rigd.config import BUNDLED_PIPELINES, PipelineFileError, load_pipeline
from rigd.pipeline import plan_pipeline

ACTORS = "tests.pipeline.actors"
# Indented to sit in the tests' YAML, which is dedented by 8 columns.
CAMERA = """
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {shape: [16, 16], n_frames: 10}"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    with pytest.raises(PipelineFileError) as info:
        plan_pipeline(path)
    for problem in info.value.problems:
        assert problem.startswith(f"{path}, line "), problem
    return info.value.problems


def test_the_bundled_demo_is_a_valid_pipeline() -> None:
    plan = plan_pipeline(BUNDLED_PIPELINES / "demo.yaml")
    assert [a.name for a in plan.actors] == ["camera", "stats", "recorder"]
    camera = next(r for r in plan.rings if r.name == "camera.frames")
    assert camera.shape == (512, 512)
    assert len(camera.readers) == 2
    assert plan.recorders == ("recorder",)


def test_an_unknown_key_names_its_line(tmp_path: Path) -> None:
    (problem,) = problems(
        tmp_path,
        f"""
        actors:{CAMERA}
            max_restart: 3
        """,
    )
    assert "line 5, actors[0].max_restart: unknown key 'max_restart'" in problem


def test_run_metadata_a_run_cannot_store_is_refused_at_planning_with_its_line(
    tmp_path: Path,
) -> None:
    (problem,) = problems(
        tmp_path,
        f"""
        actors:{CAMERA}
        run:
          metadata: {{when: 2024-01-01, weight_g: 23.5}}
        """,
    )
    assert "line 6, run.metadata: metadata 'when'" in problem
    assert "convert it" in problem


@pytest.mark.parametrize(
    ("directory", "problem"),
    [
        ("file:///tmp", "'file:///tmp' is a URL; give a local directory path"),
        ("s3://bucket/runs", "'s3://bucket/runs' is a URL"),
        ('""', "give a directory path"),
        ('"  "', "give a directory path"),
    ],
)
def test_a_recording_directory_that_is_not_a_local_path_is_refused(
    tmp_path: Path, directory: str, problem: str
) -> None:
    (found,) = problems(
        tmp_path,
        f"""
        actors:{CAMERA}
        record: [camera.frames]
        recording: {{directory: {directory}}}
        """,
    )
    assert "line 6, recording.directory" in found
    assert problem in found


def test_an_unknown_actor_in_a_link(tmp_path: Path) -> None:
    (problem,) = problems(
        tmp_path,
        f"""
        actors:{CAMERA}
        links:
          - camera.frames -> recoder.frames
        """,
    )
    assert "line 6, links[0]" in problem
    assert "names actor 'recoder', which is not in actors (camera)" in problem


def test_a_class_that_cannot_be_imported(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        f"""
        actors:{CAMERA}
          - name: proc
            class: no_such_module.Processor
          - name: other
            class: {ACTORS}.NotAnActor
        """,
    )
    assert any(
        "line 6, actors[1].class: class 'no_such_module.Processor' cannot be imported" in p
        and "ModuleNotFoundError" in p
        for p in found
    )
    assert any(
        "line 8, actors[2].class" in p and "not a subclass of rigd.Actor" in p for p in found
    )


def test_a_cycle(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        f"""
        actors:
          - name: a
            class: {ACTORS}.RowSum
          - name: b
            class: {ACTORS}.RowSum
        links:
          - a.sums -> b.frames
          - b.sums -> a.frames
        """,
    )
    assert any("links make a cycle" in p and "line 6, links" in p for p in found), found


def test_an_input_with_no_writer_and_one_with_two(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        f"""
        actors:{CAMERA}
          - name: sums
            class: {ACTORS}.RowSum
          - name: check
            class: {ACTORS}.Counter
        links:
          - camera.frames -> check.frames
          - camera.frames -> check.frames
        """,
    )
    assert any("line 5, actors[1]: input sums.frames has no writer" in p for p in found), found
    assert any("line 11, links[1]: input check.frames already has a writer" in p for p in found), (
        found
    )


def test_linked_endpoints_whose_shapes_disagree(tmp_path: Path) -> None:
    (problem,) = problems(
        tmp_path,
        f"""
        actors:{CAMERA}
          - name: small
            class: {ACTORS}.TakesSmall
        links:
          - camera.frames -> small.frames
        """,
    )
    assert "line 8, links[0]" in problem
    assert "links 16x16 uint16 frames to an input that takes 8x8 uint16" in problem


def test_unknown_endpoints_and_bad_options(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        f"""
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {{shape: [16, 16], pattern: stripes}}
          - name: check
            class: {ACTORS}.Counter
        links:
          - camera.image -> check.pixels
        """,
    )
    assert any("has no output 'image'; its outputs: ['frames']" in p for p in found), found
    assert any("has no input 'pixels'; its inputs: ['frames']" in p for p in found), found


def test_bad_yaml_and_bad_link_syntax(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("actors: [\n  - name: x\n")
    with pytest.raises(PipelineFileError, match=r"broken.yaml, line \d+: not valid YAML"):
        load_pipeline(path)
    found = problems(
        tmp_path,
        f"""
        actors:{CAMERA}
        links:
          - camera.frames => nowhere
          - {{link: camera.frames -> x.y, slots: 1, policy: newest}}
        """,
    )
    assert any(
        "links[0].link: a link is written 'actor.output -> actor.input'" in p for p in found
    ), found
    assert any("links[1].slots" in p for p in found), found
    assert any("links[1].policy" in p for p in found), found


def test_a_bad_pipeline_starts_nothing(tmp_path: Path) -> None:
    problems(
        tmp_path,
        f"""
        actors:{CAMERA}
          - name: check
            class: {ACTORS}.Counter
        links:
          - camera.frames -> nobody.frames
        """,
    )
    assert [n for n in os.listdir("/dev/shm") if n.startswith(f"rigd-{os.getpid()}-ring")] == []


def test_options_the_class_does_not_take(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {shape: [16, 16], frame_rate: 100}
          - name: player
            class: rigd.pipeline.FilePlayback
        """,
    )
    assert any(
        "line 4, actors[0].options: camera (rigd.pipeline.SimulatedCamera): unknown option(s)"
        " ['frame_rate']; its options are ['dtype', 'fps', 'motion', 'n_frames',"
        " 'overflow', 'pattern', 'seed', 'shape']" in p
        for p in found
    ), found
    assert any("player" in p and "missing required option(s) ['path']" in p for p in found), found


class NoInit(Actor):
    """An actor with no ``__init__`` of its own: it takes no option."""

    input_names = ("frames",)

    def run_step(self) -> None:
        with self.inputs.frames.read(timeout=1.0):
            pass


def test_an_actor_without_init_takes_no_option(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        f"""
        actors:{CAMERA}
          - name: sink
            class: {__name__}.NoInit
            options: {{factor: 3}}
        links:
          - camera.frames -> sink.frames
        """,
    )
    assert any(
        f"sink ({__name__}.NoInit): unknown option(s) ['factor']; its options are none" in p
        for p in found
    ), found


def test_cpus_the_machine_does_not_have(tmp_path: Path) -> None:
    missing = max(os.sched_getaffinity(0)) + 1
    found = problems(
        tmp_path,
        f"""
        actors:{CAMERA}
            cpus: [0, {missing}]
          - name: other
            class: rigd.pipeline.SimulatedCamera
            cpus: []
        """,
    )
    assert len(found) == 1  # the empty list is the file's own shape: found first
    assert "line 8, actors[1].cpus" in found[0], found
    assert "leave cpus out to let the kernel choose" in found[0]
    found = problems(
        tmp_path,
        f"""
        actors:{CAMERA}
            cpus: [0, {missing}]
        """,
    )
    assert "line 5, actors[0].cpus" in found[0], found
    assert f"CPU {missing} is not available on this machine; rigd may use CPUs" in found[0]


def test_rings_dev_shm_cannot_hold_are_refused_at_load(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {shape: [100000, 100000]}
          - name: recorder
            class: rigd.pipeline.HDF5Recorder
            options: {directory: data}
        links:
          - {link: camera.frames -> recorder.camera, slots: 4}
        """,
    )
    assert any(
        "links[0]: the rings need" in p
        and "of /dev/shm but it has" in p
        and "camera.frames: 4 slots of 100000x100000 uint16" in p
        and "--shm-size" in p
        for p in found
    ), found


@pytest.mark.parametrize(
    ("fps", "message"),
    [
        ("1e9", r"fps must be a number.*'1e9'.*write 1.0e9"),
        (".nan", "fps must be a number"),
        ('"fast"', "fps must be a number"),
        ("true", "fps must be a number"),
    ],
)
def test_a_camera_rate_that_is_not_a_number_is_refused_clearly(
    tmp_path: Path, fps: str, message: str
) -> None:
    found = problems(
        tmp_path,
        f"""
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {{shape: [16, 16], fps: {fps}}}
        """,
    )
    assert any(re.search(message, p) for p in found), found


def test_a_directory_a_device_a_huge_file_binary_bytes_and_a_huge_number_are_refused_clearly(
    tmp_path: Path,
) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: x\n\xff\xfe")
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"#" * (5 << 20))
    number = tmp_path / "number.yaml"
    number.write_text("name: x\nactors: []\nlinks: []\nrun: {metadata: {n: " + "9" * 5000 + "}}\n")
    cases = {
        tmp_path: "not a file",
        Path("/dev/zero"): "not a file",
        huge: "more than a pipeline file",
        binary: "not UTF-8 text",
        number: "a value cannot be read",
    }
    for path, words in cases.items():
        with pytest.raises(PipelineFileError, match=words):
            load_pipeline(path)


def test_an_output_of_python_objects_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "objects.yaml"
    path.write_text(
        "name: objects\n"
        "actors:\n"
        "  - name: camera\n"
        "    class: rigd.pipeline.SimulatedCamera\n"
        "    options: {shape: [4, 4], dtype: object, n_frames: 3}\n"
        "record: [camera.frames]\n"
    )

    with pytest.raises(PipelineFileError, match="holds Python objects"):
        plan_pipeline(path)


def test_a_loaded_file_goes_to_its_yaml_data_and_back_and_travels_without_pydantic(
    tmp_path: Path,
) -> None:
    import pickle
    import subprocess
    import sys

    import yaml

    from rigd.config import PipelineConfig

    path = tmp_path / "p.yaml"
    path.write_text(
        "name: round_trip\n"
        "actors:\n"
        "  - name: camera\n"
        "    class: rigd.pipeline.SimulatedCamera\n"
        "    options: {shape: [16, 16], n_frames: 10}\n"
        "    num_cpus: 0.5\n"
        "    cpus: [0]\n"
        "  - {name: recorder, class: rigd.pipeline.HDF5Recorder}\n"
        "links:\n"
        "  - camera.frames -> recorder.camera\n"
        "  - {link: camera.frames -> recorder.again, policy: latest, slots: 4}\n"
        "recording: {compression: lz4}\n"
        "run: {metadata: {subject: m1}, max_pause_s: 30}\n"
    )
    config = load_pipeline(path).config

    data = config.to_data()
    assert data["actors"][0]["class"] == "rigd.pipeline.SimulatedCamera"
    assert "max_restarts" not in data["actors"][0]  # left at its default
    assert data["recording"] == {"compression": "lz4"}
    assert PipelineConfig.from_data(data) == config
    assert load_pipeline("again", text=yaml.safe_dump(data)).config == config

    # A process that unpickles a loaded file imports no pydantic (a Ray worker has none).
    code = (
        "import pickle, sys; c = pickle.loads(sys.stdin.buffer.read()); "
        "print(c.actors[0].num_cpus, 'pydantic' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=pickle.dumps(config),
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.split() == [b"0.5", b"False"]


def test_an_actor_with_both_class_and_class_path_is_refused(tmp_path: Path) -> None:
    (problem,) = problems(
        tmp_path,
        f"""
        actors:{CAMERA}
            class_path: rigd.pipeline.FrameStats
        """,
    )
    assert "actors[0]: give the class once, as class" in problem
