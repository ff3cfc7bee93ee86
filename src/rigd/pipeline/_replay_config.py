"""A pipeline rewritten to replay a run file: what ``rigd reprocess`` runs per file.

The pipeline's sources (actors no link feeds) are replaced by ``FilePlayback``
of the streams they recorded (``rate: max``), one per recorded output (a
source's output named by its link to a recorder, or by the ``record:``
shorthand, expanded here as planning expands it: ``record_stream``), of any
kind: frames, records (a structured dtype) or messages (the playback's
output declared ``kind: messages``, its cap the file's longest message
allows). Its processors run as written, its recorders (``HDF5Recorder``)
write into the output directory.

Offline nothing has to keep up with a camera, so nothing drops for speed: a
recorder's ``when_behind: drop`` becomes ``wait``, and a ``latest`` link
becomes ``lossless`` (unless its reader's ``check_links`` needs ``latest``: a
``TriggeredRecorder``'s pre-trigger ring). Each change is logged and listed
in ``Replay.changes`` (the new file's ``provenance`` note says them).

The rewritten file (``ReplayFile``) names every problem with the line and
key of the user's pipeline file, so ``check_replay`` on the driver reports a
pipeline's mistakes once, before any run file, and a file's own problems (a
stream it lacks, shapes a processor refuses) name the pipeline's line too.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rigd.config import PipelineConfig, PipelineFile, PipelineFileError, load_pipeline
from rigd.pipeline._plan import check_pipeline, record_stream
from rigd.pipeline._plan_classes import import_path
from rigd.storage import DEFAULT_MAX_MESSAGE_BYTES, describe_stream

__all__ = ["Replay", "ReplayFile", "check_replay", "replay_config"]

log = logging.getLogger(__name__)

_PLAYBACK = "rigd.pipeline.FilePlayback"
_RECORDER = "HDF5Recorder"
_SHORTHAND_RECORDER = "rigd.pipeline.HDF5Recorder"
#: libyaml's emitter where PyYAML has it (the same text, 5x faster: once per run file).
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
#: Raw chunks a replay's recorder may hand to its disk thread (``write_buffers``): on
#: one thread with the other actors, its waits for the disk would hold them back.
_SHARED_THREAD_BUFFERS = 4
#: A messages playback's ring slot: the longest recorded pickle, twice, and room
#: for the packing's headers (never under the default cap).
_MESSAGE_ROOM = 4096


@dataclass(frozen=True)
class ReplayFile(PipelineFile):
    """The replay's pipeline file, whose problems name the lines and keys of
    ``original``: ``moved`` maps a key of the replay (``("links", 7)``, a
    link the ``record:`` shorthand made) to the user's (``("record", 1)``)."""

    original: PipelineFile
    moved: Mapping[tuple[Any, ...], tuple[Any, ...]]

    def _key(self, key: tuple[Any, ...]) -> tuple[Any, ...]:
        return self.moved.get(tuple(key[:2]), key)

    def line(self, *key: Any) -> int | None:
        return self.original.line(*self._key(key))

    def where(self, *key: Any) -> str:
        return self.original.where(*self._key(key))


@dataclass(frozen=True)
class Replay:
    """A pipeline rewritten to replay a run file.

    Attributes:
        pfile: the replay's pipeline file (what ``plan_pipeline`` takes).
        config: the same as a mapping (as YAML has it).
        recorders: the ``HDF5Recorder`` actors, in the file's order.
        played: ``{playback actor: stream of the run file}``.
        changes: what was changed so that no frame is dropped, one line each.
    """

    pfile: ReplayFile
    config: dict[str, Any]
    recorders: tuple[str, ...]
    played: dict[str, str]
    changes: tuple[str, ...]

    def outputs(self, run_id: str) -> dict[str, str]:
        """The file each recorder writes: ``RUN_ID.h5`` for one recorder,
        ``RUN_ID-RECORDER.h5`` for each of several."""
        names = sorted(self.recorders)
        return {name: template(name, len(names)).format(run_id=run_id) for name in names}

    def streams(self, recorder: str) -> dict[str, str]:
        """``{new stream: source stream}``: the streams ``recorder`` records
        straight from a playback (their frames and ids are the source's)."""
        out: dict[str, str] = {}
        for link in self.pfile.config.links:
            (actor, _), (into, stream) = link.source, link.target
            if actor in self.played and into == recorder:
                out[stream] = self.played[actor]
        return out


def template(recorder: str, recorders: int) -> str:
    """A replay recorder's file name template: each recorder a file of its own
    (two on one name would collide)."""
    return "{run_id}.h5" if recorders == 1 else f"{{run_id}}-{recorder}.h5"


def check_replay(pipeline: str | Path | PipelineFile) -> tuple[str, ...]:
    """Check, once and before any run file, what a replay of ``pipeline`` (a
    pipeline file's path, or the file loaded) needs:
    a recorder, every source recorded, and what planning checks without the
    run file's shapes (classes, options, links, cycles); each problem named
    with the pipeline file's line and key. The sources' classes are not
    imported: run files stand in for them.

    Returns:
        The modules of the replay's classes, each found to be no program
        (``refused_module``) and imported: ``replay_file``'s
        ``checked_modules`` for the Ray tasks of ``rigd reprocess``.

    Raises:
        FileNotFoundError: no such file.
        PipelineFileError: every problem found.
    """
    pfile = pipeline if isinstance(pipeline, PipelineFile) else load_pipeline(pipeline)
    replay = replay_config(pfile, None, ".")
    stage = check_pipeline(replay.pfile)
    # The recorders' option values (``describe_outputs``: when_behind, write_buffers).
    stage.check_options(replay.recorders)
    # Said once, here (the driver's check), not per file: each new file's
    # provenance note says them too.
    for change in replay.changes:
        log.info("replay of %s: %s (offline nothing drops for speed)", pfile.path, change)
    return tuple(sorted({a.class_path.rpartition(".")[0] for a in stage.actors.values()}))


def replay_config(
    pfile: PipelineFile, run_file: str | None, out_dir: str, *, one_thread: bool = False
) -> Replay:
    """``pfile`` rewritten to replay ``run_file`` into ``out_dir`` (see the module).

    ``run_file`` None: no file to ask for its streams' kinds (``check_replay``).
    ``one_thread``: the replay's actors take turns on one thread
    (``rigd.pipeline.run_inline``): a recorder that takes ``write_buffers``
    gets a few, so that its waits for the disk do not hold the others back
    (not a change to what is recorded: not in ``Replay.changes``).

    Raises:
        PipelineFileError: no recorder, or a source output that feeds an
            actor but is not recorded; named with ``pfile``'s lines.
    """
    config = pfile.config
    data = config.to_data()
    data.pop("record", None)
    data.pop("recording", None)
    actors: list[dict[str, Any]] = data.setdefault("actors", [])
    links: list[dict[str, Any]] = data.setdefault("links", [])
    moved: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    names = {a["name"] for a in actors}
    if config.record:  # as planning expands it (rigd.pipeline._plan)
        slots = config.recording.slots
        if "recorder" not in names:
            options = config.recorder_options()
            actors.append({"name": "recorder", "class": _SHORTHAND_RECORDER, "options": options})
            moved["actors", len(actors) - 1] = ("recording",)
            names.add("recorder")
        else:  # the file's recorder takes the recording: keys it does not give
            own = next(a for a in actors if a["name"] == "recorder")
            own["options"] = config.recorder_options(own.get("options") or {})
        for j, endpoint in enumerate(config.record):
            links.append(
                {"link": f"{endpoint} -> recorder.{record_stream(endpoint)}", "slots": slots}
            )
            moved["links", len(links) - 1] = ("record", j)

    parsed = [_ends(link["link"]) for link in links]
    recorders = tuple(a["name"] for a in actors if str(a["class"]).endswith(_RECORDER))
    if not recorders:
        raise PipelineFileError(
            [
                f"{pfile.where('actors')}: the pipeline has no HDF5Recorder to write the new "
                "run file; add one (class: rigd.pipeline.HDF5Recorder) or record outputs with "
                "the record: shorthand (record: [camera.frames])"
            ]
        )
    readers = {dst for _, _, dst, _ in parsed}
    problems: list[str] = []
    played: dict[str, str] = {}
    # Each source output, replaced by a playback of the stream it recorded.
    players: dict[tuple[str, str], str] = {}
    for i, actor in enumerate(list(actors)):
        name = actor["name"]
        if name in readers or name in recorders:
            continue
        outputs: dict[str, str | None] = {}
        named_by: dict[str, int] = {}  # each output's link to a recorder: it names the stream
        for k, (src, out, dst, inp) in enumerate(parsed):
            if src != name:
                continue
            if dst in recorders:
                if not outputs.get(out):
                    outputs[out], named_by[out] = inp, k
            else:
                outputs.setdefault(out, None)
        if not outputs:
            problems.append(
                f"{pfile.where('actors', i)}: source {name!r} is not recorded, so a run file "
                "cannot stand in for it; link it to the recorder, or remove it"
            )
            continue
        for out, stream in outputs.items():
            if stream is None:
                k = next(k for k, p in enumerate(parsed) if p[:2] == (name, out))
                problems.append(
                    f"{pfile.where('links', k)}: source {name!r} is not recorded (its output "
                    f"{out!r} feeds {parsed[k][2]}.{parsed[k][3]}), so a run file cannot stand "
                    f"in for it; link it to the recorder ({name}.{out} -> "
                    f"{recorders[0]}.{record_stream(f'{name}.{out}')})"
                )
        if any(stream is None for stream in outputs.values()):
            continue
        for n, (out, stream) in enumerate(outputs.items()):
            assert stream is not None
            player = name if n == 0 else _free(f"{name}_{out}", names)
            playback = _playback(player, stream, run_file, actor, out)
            if n == 0:
                actors[i] = playback
            else:
                names.add(player)
                actors.append(playback)
            # A playback's problems (a stream the run file lacks) are the link's
            # that named its stream, in the user's file.
            link_key = ("links", named_by[out])
            moved["actors", i if n == 0 else len(actors) - 1] = moved.get(link_key, link_key)
            players[name, out] = player
            played[player] = stream
    if problems:
        raise PipelineFileError(problems)

    changes: list[str] = []
    for k, ((src, out, dst, inp), link) in enumerate(zip(parsed, links, strict=True)):
        if (src, out) in players:
            link["link"] = f"{players[src, out]}.frames -> {dst}.{inp}"
        if link.get("policy") == "latest" and not _needs_latest(actors, dst, inp, link):
            link["policy"] = "lossless"
            line = pfile.line(*moved.get(("links", k), ("links", k)))
            changes.append(f"link {src}.{out} -> {dst}.{inp} (line {line}): latest -> lossless")
    for actor in actors:
        actor.pop("node", None)
        if actor["name"] in recorders:
            options = dict(actor.get("options") or {})
            if options.get("when_behind") == "drop":
                changes.append(f"recorder {actor['name']}: when_behind drop -> wait")
            options.update(directory=out_dir, template=template(actor["name"], len(recorders)))
            if options.get("when_behind") == "drop":
                options["when_behind"] = "wait"  # another value: refused by its check
            if one_thread and _takes(actor, "write_buffers"):
                options.setdefault("write_buffers", _SHARED_THREAD_BUFFERS)
            actor["options"] = options

    text = yaml.dump(data, Dumper=_DUMPER, sort_keys=False)
    # Made from the validated file by the rewrite above: not validated again
    # (pydantic is never imported by a Ray task that replays a loaded file).
    replayed = ReplayFile(PipelineConfig.from_data(data), text, pfile.path, {}, pfile, moved)
    return Replay(replayed, data, recorders, played, tuple(changes))


def _ends(link: str) -> tuple[str, str, str, str]:
    source, target = (side.strip() for side in link.split("->"))
    src, _, out = source.partition(".")
    dst, _, inp = target.partition(".")
    return src, out, dst, inp


def _free(name: str, taken: set[str]) -> str:
    candidate, n = name[:60], 2
    while candidate in taken:
        candidate, n = f"{name[:56]}_{n}", n + 1
    return candidate


def _playback(
    name: str, stream: str, run_file: str | None, source: Mapping[str, Any], out: str
) -> dict[str, Any]:
    """A ``FilePlayback`` actor of ``stream`` standing in for ``source``'s output ``out``."""
    actor: dict[str, Any] = {
        "name": name,
        "class": _PLAYBACK,
        "options": {"path": run_file or "RUN.h5", "stream": stream, "rate": "max"},
    }
    if run_file is None:
        return actor
    try:
        described = describe_stream(run_file, stream)
        kind, longest = described.kind, described.longest_message
    except (OSError, ValueError):
        return actor  # planning names it (FilePlayback.describe_outputs), with the line
    if kind == "messages":
        declared = dict(source.get("outputs") or {}).get(out) or {}
        cap = max(
            DEFAULT_MAX_MESSAGE_BYTES,
            int(declared.get("max_message_bytes") or 0),
            2 * longest + _MESSAGE_ROOM,
        )
        actor["outputs"] = {"frames": {"kind": "messages", "max_message_bytes": cap}}
    return actor


def _takes(actor: Mapping[str, Any], option: str) -> bool:
    """Whether ``actor``'s class takes ``option`` (a user's recorder may not)."""
    try:
        cls = import_path(str(actor["class"]))
        return option in inspect.signature(cls).parameters
    except Exception:  # noqa: BLE001 - planning names a class that cannot be imported
        return False


def _needs_latest(
    actors: list[dict[str, Any]], dst: str, inp: str, link: Mapping[str, Any]
) -> bool:
    """Whether the reader of a ``latest`` link refuses a lossless one (its
    class's ``check_links``, as a ``TriggeredRecorder``'s pre-trigger ring)."""
    actor = next((a for a in actors if a["name"] == dst), None)
    if actor is None:
        return False  # planning names the unknown actor
    try:
        cls = import_path(str(actor["class"]))
    except Exception:  # noqa: BLE001 - planning names a class that cannot be imported
        return False
    check = getattr(cls, "check_links", None)
    if check is None:
        return False
    found = check(actor.get("options") or {}, {inp: ("lossless", int(link.get("slots", 16)))})
    return inp in dict(found)
