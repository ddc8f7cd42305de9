"""Ego4D Looking-At-Me (LAM) layout (view ``track``), as the Ego4D data and the LAM code lay it out.

::

    root/face_imgs/<clip_uid>/<track_id>/face_%05d.jpg   face crops, one per frame the person is visible
    root/json/av_<split>.json                            Ego4D AV annotation (or ``root/av_*.json``)
  or, instead of ``json/``, what the baseline's ``scripts/preprocessing.py`` derives from it:
    root/json_original/<clip_uid>/<track_id>.json        [{"frameNumber", "Person ID", "x", "y", "width", ...}]
    root/result_LAM/<clip_uid>.json                      [{"label": <person id>, "start_frame", "end_frame"}]
                                                         (no file: the clip has no looking segments)
  the challenge's unlabelled test crops (read with ``unlabelled=True``, for ``workbench predict``):
    root/videos_challenge/<clip_uid>/<track_id>/<frame %05d>_<unique_id>.jpg

Where this comes from:

* ``face_imgs/<uid>/<trackid>/face_xxxxx.jpg`` ("xxxxx means its frameid", 224x224 crops of the face boxes):
  the README and ``dataset/data_loader.py`` (``f'{track_path}/face_{frameid:05d}.jpg'``, read with
  ``cv2.imread`` + ``COLOR_BGR2RGB``) of github.com/lemon-prog123/Ego4D-ECCV-LAM, which works from the
  baseline's data folder.
* The annotation: ``av_<set>.json`` schema in github.com/EGO4D/docs ``docs/benchmarks/av-diarization.md``
  (``videos[].video_uid``, ``videos[].clips[].clip_uid``, ``clips[].persons[].person_id``,
  ``persons[].tracking_paths[].track_id``, ``tracking_paths[].track[]`` of ``frame, x, y, width, height``,
  ``clips[].social_segments_looking``). Branch ``lam`` of github.com/EGO4D/social-interactions:
  ``scripts/get_json.py`` writes one tracklet file per ``track_id`` from ``persons[1:]`` (``persons[0]``,
  the camera wearer, is skipped), ``scripts/get_lam_result.py`` keeps the ``person``, ``start_frame``,
  ``end_frame`` of each looking segment (segments with ``person: null`` are dropped), and
  ``dataset/data_loader.py:make_dataset`` labels frame f of a track 1 iff ``"f:<Person ID>"`` lies in a
  segment of that person (both ends included). ``make_test_dataset`` parses test names as
  ``<frame>_<unique_id>.jpg``.
* Samples: every frame with a crop is a sample (``keyframes``, one per ``stride`` frames); its input is the
  window frame-3 .. frame+3, and frames outside the track repeat the nearest end frame (``pad_video``:
  ``np.pad(..., mode='edge')``). ``frame_labels`` follow the same window; ``label`` is the centre frame's.

Reading rules: the crops of a track must be one run of frame numbers (a gap is an error naming the
missing file); every crop track must be in the annotation, and every looking segment must name a person
with a track in that clip. Clips of the annotation without crops are skipped. Subjects: the people of
one video recur in its clips, so ``subject`` is per ``video_uid`` (per clip uid without an ``av_*.json``),
numbered in sorted order, or the number of ``sNNN`` uids as the writer names them. The data has no head
pose or landmarks: both come back NaN (the task then feeds zero priors). Labels of unlabelled crops are -1.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from workbench.data.formats._common import check_view, check_writable, parse_subject, require_dir, subject_name
from workbench.data.formats._images import read_images, write_jpeg
from workbench.errors import DataError
from workbench.utils.io import atomic_path

__all__ = ["read_lam", "write_lam", "TRACK_LEN"]

TRACK_LEN = 7
_HALF = TRACK_LEN // 2
_CROP_DIRS = ("face_imgs", "videos_challenge")
_FACE_RE = re.compile(r"^face_(\d+)\.jpg$")
_TEST_RE = re.compile(r"^(\d+)_([^.]+)\.jpg$")


# ----------------------------------------------------------------------------------------------------
# Annotation: clip uid -> (video key, {track id: person id}, [(person, start, end)])
# ----------------------------------------------------------------------------------------------------


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None


def _field(obj: Any, key: str, path: Path, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise DataError(f"{path}: {where} has no {key!r}")
    return obj[key]


class _Clip:
    def __init__(self, video: str, source: Path):
        self.video, self.source = video, source
        self.person_of: dict[str, str] = {}  # track id -> person id
        self.segments: list[tuple[str, int, int, str]] = []  # person, start, end, where (for errors)


def _read_av(paths: list[Path]) -> dict[str, _Clip]:
    """Clips of Ego4D ``av_<set>.json`` files (the download's annotation)."""
    clips: dict[str, _Clip] = {}
    for path in paths:
        doc = _load_json(path)
        for vi, video in enumerate(_field(doc, "videos", path, "the file")):
            vwhere = f"videos[{vi}]"
            vuid = str(_field(video, "video_uid", path, vwhere))
            for ci, clip in enumerate(_field(video, "clips", path, vwhere) or []):
                cwhere = f"{vwhere}.clips[{ci}]"
                uid = str(_field(clip, "clip_uid", path, cwhere))
                if uid in clips:
                    raise DataError(f"{path}: clip {uid} appears twice (also in {clips[uid].source.name})")
                c = clips[uid] = _Clip(vuid, path)
                # get_json.py: persons[0] is the camera wearer, who has no face track.
                for pi, person in enumerate((_field(clip, "persons", path, cwhere) or [])[1:], start=1):
                    pwhere = f"{cwhere}.persons[{pi}]"
                    pid = str(_field(person, "person_id", path, pwhere))
                    for ti, tp in enumerate(_field(person, "tracking_paths", path, pwhere) or []):
                        tid = str(_field(tp, "track_id", path, f"{pwhere}.tracking_paths[{ti}]"))
                        c.person_of[tid] = pid
                for si, seg in enumerate(_field(clip, "social_segments_looking", path, cwhere) or []):
                    swhere = f"{cwhere}.social_segments_looking[{si}]"
                    person = _field(seg, "person", path, swhere)
                    if person is None:  # get_lam_result.py drops these
                        continue
                    c.segments.append((str(person), *_span(seg, path, swhere), swhere))
    return clips


def _read_derived(root: Path) -> dict[str, _Clip]:
    """Clips of the baseline's ``json_original/`` tracklets and ``result_LAM/`` segments."""
    clips: dict[str, _Clip] = {}
    for cdir in sorted(p for p in (root / "json_original").iterdir() if p.is_dir()):
        c = clips[cdir.name] = _Clip(cdir.name, cdir)
        for tfile in sorted(cdir.glob("*.json")):
            rows = _load_json(tfile)
            if not isinstance(rows, list):
                raise DataError(f"{tfile}: expected a list of per-frame boxes, got {type(rows).__name__}")
            people = {str(_field(r, "Person ID", tfile, f"entry {i}")) for i, r in enumerate(rows)} - {""}
            if len(people) != 1:
                raise DataError(f"{tfile}: expected one 'Person ID' per tracklet, got {sorted(people)}")
            c.person_of[tfile.stem] = people.pop()
    for uid, c in clips.items():
        seg_file = root / "result_LAM" / f"{uid}.json"
        c.source = seg_file
        if not seg_file.is_file():
            continue  # get_lam_result.py writes no file for a clip without looking segments
        segs = _load_json(seg_file)
        if not isinstance(segs, list):
            raise DataError(f"{seg_file}: expected a list of segments, got {type(segs).__name__}")
        for si, seg in enumerate(segs):
            where = f"segment {si}"
            c.segments.append((str(_field(seg, "label", seg_file, where)), *_span(seg, seg_file, where), where))
    return clips


def _span(seg: Any, path: Path, where: str) -> tuple[int, int]:
    """(start_frame, end_frame) of a looking segment, both included."""
    start, end = (_int(_field(seg, k, path, where), path, f"{where}.{k}") for k in ("start_frame", "end_frame"))
    return start, end


def _int(v: Any, path: Path, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v):
        raise DataError(f"{path}: {where} is {v!r}, expected a frame number")
    return int(v)


def _annotation(root: Path) -> dict[str, _Clip] | None:
    av = sorted((root / "json").glob("av_*.json")) if (root / "json").is_dir() else []
    av = av or sorted(root.glob("av_*.json"))
    if av:
        return _read_av(av)
    if (root / "json_original").is_dir() and (root / "result_LAM").is_dir():
        return _read_derived(root)
    return None


# ----------------------------------------------------------------------------------------------------
# Crops
# ----------------------------------------------------------------------------------------------------


def _track_frames(folder: Path) -> tuple[list[int], list[Path], list[str]]:
    """Frame numbers (ascending, one run), their files and unique ids ('' for face_NNNNN.jpg)."""
    found: dict[int, tuple[Path, str]] = {}
    for p in folder.iterdir():
        m = _FACE_RE.match(p.name)
        m2 = None if m else _TEST_RE.match(p.name)
        if not (m or m2):
            continue  # not a crop (e.g. a thumbnail or .DS_Store)
        f = int((m or m2).group(1))
        if f in found:
            raise DataError(f"{p}: frame {f} has two crops (also {found[f][0].name})")
        found[f] = (p, m2.group(2) if m2 else "")
    if not found:
        raise DataError(f"{folder}: no face crops (expected face_%05d.jpg files)")
    frames = sorted(found)
    for a, b in zip(frames, frames[1:]):
        if b != a + 1:
            name = f"face_{a + 1:05d}.jpg" if found[a][1] == "" else f"{a + 1:05d}_<unique_id>.jpg"
            raise DataError(f"{folder / name}: missing (the track has frames {frames[0]}..{frames[-1]} with a gap "
                            f"at {a + 1})")
    return frames, [found[f][0] for f in frames], [found[f][1] for f in frames]


def _window_index(n: int) -> np.ndarray:
    """(n, 7) indices into a track of n frames: frame-3..frame+3, edge-padded (the baseline's pad_video)."""
    return np.clip(np.arange(n)[:, None] + np.arange(-_HALF, _HALF + 1)[None, :], 0, n - 1)


def _subjects(keys: list[str]) -> dict[str, int]:
    """Video (or clip) key -> subject id: the sNNN number when every key is one, else the sorted index."""
    nums = {k: parse_subject(k) for k in keys}
    if all(v >= 0 for v in nums.values()) and len(set(nums.values())) == len(nums):
        return nums
    return {k: i for i, k in enumerate(sorted(keys))}


def read_lam(root: str | os.PathLike, *, stride: int = 1, unlabelled: bool = False) -> dict[str, np.ndarray]:
    """Read a Looking-At-Me folder into a ``track`` view dict, one sample per ``stride`` frames of a track.

    Returns ``frames`` (N,7,3,S,S) uint8 RGB, ``label`` (N,) int64 (the centre frame's), ``frame_labels``
    (N,7) int64, ``head_pose`` (N,7,3) and ``landmarks`` (N,7,5,2) float32 NaN (the data has none),
    ``subject`` (N,) int64 and ``name`` (N,) str ``<clip_uid>/<track_id>/<frame>[/<unique_id>]``.
    Without an annotation the folder is refused unless ``unlabelled=True`` (then labels are -1).
    """
    root = require_dir(root, "lam")
    if int(stride) < 1:
        raise DataError(f"{root}: stride must be >= 1, got {stride}")
    crops = next((root / d for d in _CROP_DIRS if (root / d).is_dir()), None)
    if crops is None:
        raise DataError(f"{root}: no face_imgs/ folder (expected face_imgs/<clip_uid>/<track_id>/face_%05d.jpg)")
    clips = _annotation(root)
    if clips is None and not unlabelled:
        raise DataError(
            f"{root}: no looking-at-me annotation (looked for json/av_*.json, av_*.json, "
            "json_original/ + result_LAM/); an unlabelled test split can be read by `workbench predict`, "
            "not used for training"
        )

    tracks: list[tuple[str, str, list[int], list[Path], list[str]]] = []
    for cdir in sorted(p for p in crops.iterdir() if p.is_dir()):
        for tdir in sorted(p for p in cdir.iterdir() if p.is_dir()):
            tracks.append((cdir.name, tdir.name, *_track_frames(tdir)))
    if not tracks:
        raise DataError(f"{crops}: no <clip_uid>/<track_id>/ folders of face crops")

    labels_of: list[np.ndarray] = []
    if clips is not None:
        for uid in sorted({t[0] for t in tracks}):
            if uid not in clips:
                raise DataError(f"{crops / uid}: clip {uid} is not in the annotation")
            c = clips[uid]
            for person, _, _, where in c.segments:
                if person not in c.person_of.values():
                    people = sorted(set(c.person_of.values()))
                    raise DataError(f"{c.source}: {where} labels person {person!r} of clip {uid}, who has no track "
                                    f"there (tracks of persons {people})")
        for uid, tid, frames, _, _ in tracks:
            c = clips[uid]
            if tid not in c.person_of:
                raise DataError(f"{crops / uid / tid}: track {tid!r} is not in {c.source.name} (clip {uid} has tracks "
                                f"{sorted(c.person_of)[:5]})")
            person, f = c.person_of[tid], np.asarray(frames)
            lab = np.zeros(len(frames), dtype=np.int64)
            for p, start, end, _ in c.segments:
                if p == person:
                    lab[(f >= start) & (f <= end)] = 1
            labels_of.append(lab)
    else:
        labels_of = [np.full(len(t[2]), -1, dtype=np.int64) for t in tracks]

    video_of = {t[0]: (clips[t[0]].video if clips is not None else t[0]) for t in tracks}
    subject_of = _subjects(sorted(set(video_of.values())))
    images = read_images([p for t in tracks for p in t[3]], 3)
    frames_out, lab_out, subj, names = [], [], [], []
    offset = 0
    for (uid, tid, frames, _, uniq), lab in zip(tracks, labels_of):
        n = len(frames)
        keep = np.arange(0, n, int(stride))
        win = _window_index(n)[keep]
        frames_out.append(images[offset + win])
        lab_out.append(lab[win])
        subj += [subject_of[video_of[uid]]] * len(keep)
        names += [f"{uid}/{tid}/{frames[k]}" + (f"/{uniq[k]}" if uniq[k] else "") for k in keep]
        offset += n
    frame_labels = np.concatenate(lab_out)
    n = len(frame_labels)
    return {
        "frames": np.concatenate(frames_out),
        "label": frame_labels[:, _HALF].copy(),
        "frame_labels": frame_labels,
        "head_pose": np.full((n, TRACK_LEN, 3), np.nan, dtype=np.float32),
        "landmarks": np.full((n, TRACK_LEN, 5, 2), np.nan, dtype=np.float32),
        "subject": np.asarray(subj, dtype=np.int64),
        "name": np.asarray(names, dtype=str),
    }


# ----------------------------------------------------------------------------------------------------
# Writer
# ----------------------------------------------------------------------------------------------------


def _segments(person: str, frames: list[int], labels: np.ndarray) -> list[dict[str, Any]]:
    """Runs of label 1 -> looking segments (both ends included, as make_dataset reads them)."""
    out: list[dict[str, Any]] = []
    k = 0
    while k < len(frames):
        if labels[k] != 1:
            k += 1
            continue
        j = k
        while j + 1 < len(frames) and labels[j + 1] == 1:
            j += 1
        out.append({"person": person, "start_frame": frames[k], "end_frame": frames[j], "is_at_me": True})
        k = j + 1
    return out


def write_lam(data: Mapping[str, Any], path: str | os.PathLike, *, quality: int = 95, overwrite: bool = False) -> Path:
    """Write a ``track`` view in the genuine layout: ``face_imgs/<clip>/<track>/face_%05d.jpg`` JPEGs and
    the Ego4D annotation ``json/av_train.json``.

    ``frames`` (N,7,3,S,S) uint8 and ``frame_labels`` (N,7) 0/1, ``subject`` (N,) >= 0. Sample i becomes
    track ``{i:06d}`` (person ``str(i + 1)``) of clip ``sNNN_clip`` of video ``sNNN`` (NNN its subject),
    frames ``7*i + 1 .. 7*i + 7`` (frame 0 is skipped: the baseline drops it), face box the whole crop;
    its label-1 runs become ``social_segments_looking``. Priors have no place in the layout. Returns ``path``.
    """
    path = check_writable(path, overwrite)
    d = check_view(data, "track", ["frames", "frame_labels", "subject"], path, "lam")
    if not np.isin(d["frame_labels"], (0, 1)).all():
        raise DataError(f"{path}: cannot write lam: frame_labels must be 0 or 1")
    if (d["subject"] < 0).any():
        raise DataError(f"{path}: cannot write lam: subject ids must be >= 0 (they name the videos)")
    size = d["frames"].shape[-1]
    videos: dict[int, dict[str, Any]] = {}
    with atomic_path(path) as tmp:
        for i in range(len(d["frames"])):
            s = int(d["subject"][i])
            vuid = subject_name(s)
            video = videos.setdefault(s, {"video_uid": vuid, "split": "train", "clips": [{
                "clip_uid": f"{vuid}_clip", "video_uid": vuid, "valid": True,
                "persons": [{"person_id": "0", "camera_wearer": True, "tracking_paths": [], "voice_segments": []}],
                "social_segments_looking": [], "social_segments_talking": []}]})
            clip = video["clips"][0]
            tid, person = f"{i:06d}", str(i + 1)
            frames = [TRACK_LEN * i + 1 + k for k in range(TRACK_LEN)]
            folder = tmp / "face_imgs" / clip["clip_uid"] / tid
            folder.mkdir(parents=True)
            for k, f in enumerate(frames):
                write_jpeg(folder / f"face_{f:05d}.jpg", d["frames"][i, k], quality=quality)
            track = [{"frame": f, "x": 0.0, "y": 0.0, "width": float(size), "height": float(size)} for f in frames]
            clip["persons"].append({"person_id": person, "camera_wearer": False, "voice_segments": [],
                                    "tracking_paths": [{"track_id": tid, "track": track, "suspect": False}]})
            clip["social_segments_looking"] += _segments(person, frames, d["frame_labels"][i])
        (tmp / "json").mkdir()
        doc = {"version": "1.0", "description": "SynthGaze tracks in the Ego4D AV layout",
               "videos": list(videos.values())}
        (tmp / "json" / "av_train.json").write_text(json.dumps(doc), encoding="utf-8")
    return path
