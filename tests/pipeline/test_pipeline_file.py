"""Pipeline files: every error names the file, the line and the key, and nothing starts."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest

from rigd.actors import Actor
from rigd.config import (
    BUNDLED_PIPELINES,
    PipelineFileError,
    ServiceConfigError,
    load_pipeline,
    load_service_config,
)
from rigd.pipeline import plan_pipeline
from rigd.pipeline._replay_config import replay_config

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
        ("1e9", r"fps must be a number.*'1e9'.*write 1\.0e\+9"),
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


def test_a_key_given_twice_is_refused_naming_both_lines_in_every_file_rigd_reads(
    tmp_path: Path,
) -> None:
    found = problems(
        tmp_path,
        f"""
        actors:{CAMERA}
          - name: stats
            class: rigd.pipeline.FrameStats
            class: rigd.pipeline.HDF5Recorder
        links:
          - camera.frames -> stats.frames
        """,
    )
    assert found == [
        f"{tmp_path / 'bad.yaml'}, line 7, actors[1].class: key 'class' is given twice in one "
        "mapping (lines 6 and 7); YAML would keep the last one silently: keep one of them"
    ]
    # The same for improv's files and the service config, which go through parse_yaml too.
    improv = tmp_path / "improv.yaml"
    improv.write_text("actors:\n  A: {package: a, class: A}\n  A: {package: b, class: B}\n")
    with pytest.raises(PipelineFileError, match=r"line 3, actors.A: key 'A' is given twice"):
        load_pipeline(improv)
    service = tmp_path / "service.yaml"
    service.write_text("port: 0\nbind: 127.0.0.1\nport: 8080\n")
    with pytest.raises(ServiceConfigError, match=r"line 3, port: key 'port' is given twice"):
        load_service_config(service)
    # A key that overrides one a merge key (<<) brought in is not repeated.
    merged = tmp_path / "merged.yaml"
    merged.write_text(
        "actors:\n"
        "  - &camera {name: camera, class: rigd.pipeline.SimulatedCamera, max_restarts: 1}\n"
        "  - {<<: *camera, name: camera2}\n"
    )
    assert [a.name for a in load_pipeline(merged).config.actors] == ["camera", "camera2"]


def test_a_value_that_holds_itself_is_refused_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "recursive.yaml"
    path.write_text(f"actors:{CAMERA}\nrun:\n  metadata: &m {{again: *m}}\n")

    with pytest.raises(PipelineFileError, match="a value holds itself"):
        load_pipeline(path)


def test_a_yaml_syntax_error_names_the_file_in_pyyamls_own_words_too(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nactors:\n  - name: camera\n   class: rigd.pipeline.SimulatedCamera\n")

    with pytest.raises(PipelineFileError) as info:
        load_pipeline(path)

    (problem,) = info.value.problems
    assert problem.startswith(f"{path}, line 4: not valid YAML: ")
    assert f'in "{path}", line 4, column 4' in problem
    assert "<unicode string>" not in problem


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("{link: camera.frames -> sink.frames, slots: true}", "slots is a whole number, got true"),
        ("{link: camera.frames -> sink.frames, slots: 2.5}", "slots is a whole number, got 2.5"),
        (
            "{link: camera.frames -> sink.frames, slots: many}",
            "slots is a whole number, got the text 'many'",
        ),
    ],
)
def test_a_boolean_or_words_for_a_number_are_refused_as_what_they_are(
    tmp_path: Path, yaml_text: str, message: str
) -> None:
    path = tmp_path / "numbers.yaml"
    path.write_text(
        f"actors:{textwrap.indent(textwrap.dedent(CAMERA), '  ')}\n"
        "  - name: sink\n"
        "    class: rigd.pipeline.FrameStats\n"
        "    num_cpus: false\n"
        f"links:\n  - {yaml_text}\n"
        "run: {max_pause_s: true, setup_timeout_s: soon}\n"
    )

    with pytest.raises(PipelineFileError) as info:
        load_pipeline(path)

    assert sorted(info.value.problems) == sorted(
        [
            f"{path}, line 7, actors[1].num_cpus: num_cpus is a number, got false",
            f"{path}, line 10, run.max_pause_s: max_pause_s is a number, got true",
            f"{path}, line 10, run.setup_timeout_s: setup_timeout_s is a number, got the text "
            "'soon'",
            *(p for p in info.value.problems if "line 9, links[0].slots: " in p),
        ]
    )
    (slots,) = (p for p in info.value.problems if "links[0].slots" in p)
    assert message in slots


def test_numbers_take_yaml_ints_float_fields_ints_and_text_that_reads_as_a_number(
    tmp_path: Path,
) -> None:
    # PyYAML leaves 1e3 as text (YAML 1.1 wants 1.0e+3): pydantic reads it as 1000.0.
    path = tmp_path / "numbers.yaml"
    path.write_text(
        f"actors:{textwrap.indent(textwrap.dedent(CAMERA), '  ')}\n"
        "    num_cpus: 1\n"
        "    cpus: [0]\n"
        "    max_restarts: -1\n"
        "  - {name: sink, class: rigd.pipeline.FrameStats, num_gpus: 0.5}\n"
        "links:\n  - {link: camera.frames -> sink.frames, slots: '8'}\n"
        "run: {max_pause_s: 10, setup_timeout_s: 1e3}\n"
        "realtime: {cpu_latency_us: 0}\n"
    )

    config = load_pipeline(path).config

    assert (config.actors[0].num_cpus, config.actors[0].cpus) == (1.0, [0])
    assert type(config.actors[0].num_cpus) is float
    assert (config.actors[0].max_restarts, config.actors[1].num_gpus) == (-1, 0.5)
    assert (config.links[0].slots, config.realtime.cpu_latency_us) == (8, 0)
    assert (config.run.max_pause_s, config.run.setup_timeout_s) == (10.0, 1000.0)


def test_the_record_shorthand_into_an_actor_named_recorder_that_does_not_record_is_one_problem(
    tmp_path: Path,
) -> None:
    found = problems(
        tmp_path,
        f"""
        actors:{CAMERA}
          - name: recorder
            class: rigd.pipeline.FrameStats
        links:
          - camera.frames -> recorder.frames
        record: [camera.frames, recorder.stats]
        """,
    )

    assert found == [
        f"{tmp_path / 'bad.yaml'}, line 9, record: the record: shorthand records into the "
        "actor named 'recorder', a FrameStats (rigd.pipeline.FrameStats), which does not "
        "record; rename that actor, or make it an HDF5Recorder (rigd.pipeline.HDF5Recorder)"
    ]
    # An actor named recorder that records takes the shorthand's streams, as designed.
    path = tmp_path / "good.yaml"
    path.write_text(
        "actors:\n"
        "  - {name: camera, class: rigd.pipeline.SimulatedCamera, options: {shape: [16, 16]}}\n"
        "  - {name: recorder, class: rigd.pipeline.HDF5Recorder, options: {directory: data}}\n"
        "record: [camera.frames]\n"
    )
    plan = plan_pipeline(path)
    assert plan.recorders == ("recorder",)
    assert [(r.name, r.readers[0][:2]) for r in plan.rings] == [
        ("camera.frames", ("recorder", "camera"))
    ]


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
        "  - {link: camera.frames -> recorder.again, policy: latest, slots: 4}\n"
        "record: [camera.frames]\n"
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


def test_the_record_shorthands_recorder_takes_when_behind_and_a_replay_rewrites_it(
    tmp_path: Path,
) -> None:
    # Was: recording: {when_behind: drop} (the README's advice for live cameras)
    # was an unknown key.
    path = tmp_path / "live.yaml"
    text = f"""
        actors:{CAMERA}
        record: [camera.frames]
        recording: {{when_behind: drop}}
        """
    path.write_text(textwrap.dedent(text).lstrip())
    plan = plan_pipeline(path)
    recorder = next(a for a in plan.actors if a.name == "recorder")
    assert recorder.options["when_behind"] == "drop"
    assert load_pipeline(path).config.recording.when_behind == "drop"

    replay = replay_config(load_pipeline(path), None, str(tmp_path / "out"))
    (actor,) = (a for a in replay.config["actors"] if a["name"] == "recorder")
    assert actor["options"]["when_behind"] == "wait"
    assert replay.changes == ("recorder recorder: when_behind drop -> wait",)


def test_an_unknown_recording_key_lists_the_keys_it_takes(tmp_path: Path) -> None:
    (problem,) = problems(
        tmp_path,
        f"""
        actors:{CAMERA}
        record: [camera.frames]
        recording: {{when_behind: drop, when_full: drop}}
        """,
    )
    assert "line 6, recording.when_full: unknown key 'when_full'" in problem
    assert "recording takes directory, template, compression, " in problem
    assert "when_behind, slots" in problem


def test_recording_when_behind_takes_wait_or_drop(tmp_path: Path) -> None:
    (problem,) = problems(
        tmp_path,
        f"""
        actors:{CAMERA}
        record: [camera.frames]
        recording: {{when_behind: skip}}
        """,
    )
    assert "line 6, recording.when_behind" in problem
    assert "'wait' or 'drop'" in problem


def test_recording_without_a_record_list_is_refused_at_load(tmp_path: Path) -> None:
    # Was: accepted, and nothing used it (the run recorded nothing).
    (problem,) = problems(
        tmp_path,
        f"""
        actors:{CAMERA}
        recording: {{directory: data, when_behind: drop}}
        """,
    )
    assert "line 5, recording: recording: sets the record: shorthand's recorder" in problem
    assert "there is no record: list; add record: [...] or remove recording:" in problem


def test_an_empty_record_list_is_refused(tmp_path: Path) -> None:
    (problem,) = problems(
        tmp_path,
        f"""
        actors:{CAMERA}
        record: []
        """,
    )
    assert "line 5, record: record: lists outputs to record; remove it or name some" in problem


RECORDER = """
          - name: recorder
            class: rigd.pipeline.HDF5Recorder
            options: {directory: mine, fsync_interval: 2.0}"""


def test_recording_keys_the_actor_named_recorder_gives_too_are_refused_naming_both_lines(
    tmp_path: Path,
) -> None:
    found = problems(
        tmp_path,
        f"""
        actors:{CAMERA}{RECORDER}
        record: [camera.frames]
        recording: {{directory: data, when_behind: drop, fsync_interval: 2.0}}
        """,
    )
    assert len(found) == 2, found
    assert "line 9, recording.directory: directory is given twice" in found[0]
    assert "under recording: (line 9) and in the options of the actor named recorder" in found[0]
    assert "(line 7); keep one" in found[0]
    assert "recording.fsync_interval: fsync_interval is given twice" in found[1]


def test_the_actor_named_recorder_takes_the_recording_keys_it_does_not_give(
    tmp_path: Path,
) -> None:
    # Was: the actor named recorder ignored recording: (when_behind: drop was lost).
    path = tmp_path / "named.yaml"
    text = f"""
        actors:{CAMERA}{RECORDER}
        record: [camera.frames]
        recording: {{when_behind: drop, slots: 8}}
        """
    path.write_text(textwrap.dedent(text).lstrip())
    plan = plan_pipeline(path)
    recorder = next(a for a in plan.actors if a.name == "recorder")
    assert recorder.options == {"directory": "mine", "fsync_interval": 2.0, "when_behind": "drop"}
    assert next(r for r in plan.rings if r.name == "camera.frames").slots == 8

    replay = replay_config(load_pipeline(path), None, str(tmp_path / "out"))
    (actor,) = (a for a in replay.config["actors"] if a["name"] == "recorder")
    assert actor["options"]["when_behind"] == "wait"
    assert replay.changes == ("recorder recorder: when_behind drop -> wait",)


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (
            "actors:\n  - {name: a, class: ''}\n",
            "line 2, actors[0].class",
            "class is an import path, e.g. rigd.pipeline.FrameStats; got an empty one",
        ),
        (
            "actors:\n  - {name: a, class: x.Y, cpus: 2}\n",
            "line 2, actors[0].cpus",
            "cpus is a list of CPU numbers, e.g. [2]; got 2",
        ),
        (
            "actors:\n  - {name: a, class: x.Y}\nlinks: [{link: a.b -> c.d, slots: 0}]\n",
            "line 3, links[0].slots",
            "slots is at least 2 (a ring of 2..4096 frames), got 0",
        ),
        (
            "actors:\n  - {name: a, class: x.Y}\nrecord: [a.b]\nrecording: {slots: 5000}\n",
            "line 4, recording.slots",
            "slots is at most 4096 (a ring of 2..4096 frames), got 5000",
        ),
        (
            "actors: [camera]\n",
            "line 1, actors[0]",
            "an actor is a mapping with its name and class, e.g. {name: stats, class: ",
        ),
    ],
    ids=["empty-class", "cpus-not-a-list", "too-few-slots", "too-many-slots", "actor-a-name"],
)
def test_a_wrong_value_is_worded_as_the_files_with_its_fix(
    text: str, key: str, message: str
) -> None:
    # Was: pydantic's own words ("Input should be a valid list"), with no fix.
    with pytest.raises(PipelineFileError) as caught:
        load_pipeline("bad.yaml", text=text)
    (problem,) = caught.value.problems
    assert problem.startswith(f"bad.yaml, {key}: {message}"), problem
    assert "Input should" not in problem
    assert "String should" not in problem


def test_a_cpu_given_twice_is_refused(tmp_path: Path) -> None:
    (problem,) = problems(
        tmp_path,
        f"""
        actors:{CAMERA}
            cpus: [0, 0]
        """,
    )
    assert "line 5, actors[0].cpus: CPU 0 is given twice in [0, 0]; name each CPU once" in problem


def test_an_infinite_or_nan_number_of_seconds_is_refused(tmp_path: Path) -> None:
    # Was: accepted (max_pause_s: .inf never ended a pause).
    found = problems(
        tmp_path,
        f"""
        actors:{CAMERA}
            num_cpus: .nan
        record: [camera.frames]
        recording: {{flush_interval: .inf, fsync_interval: .NaN}}
        run: {{max_pause_s: .inf, setup_timeout_s: -.inf}}
        """,
    )
    assert [p.split(": ", 1)[1] for p in found] == [
        "num_cpus is a finite number, got nan",
        "flush_interval is a finite number of seconds, got inf",
        "fsync_interval is a finite number of seconds, got nan",
        "max_pause_s is a finite number of seconds, got inf",
        "setup_timeout_s is a finite number of seconds, got -inf",
    ]
    assert [p.split(": ", 1)[0].rsplit(", ", 1)[1] for p in found] == [
        "actors[0].num_cpus",
        "recording.flush_interval",
        "recording.fsync_interval",
        "run.max_pause_s",
        "run.setup_timeout_s",
    ]
