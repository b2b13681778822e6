"""The model file: find it (argument > $EMOTISCOPE_MODEL > bundled), verify it, read its contract
(`read_model` / `open_model`: THE reader), and show it (`model_card`: THE card).

The contract lives in the ONNX metadata under the key `emotiscope`: a JSON object with
`labels` (output order), `input` (see preprocess.InputSpec), `arch`, `training`, `metrics`,
`created` and `version`. Nothing else in the code lists labels.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import ModuleType

from .errors import ModelError
from .outputs import display, write_bytes
from .preprocess import InputSpec

METADATA_KEY = "emotiscope"
TTA_MODES = ("none", "flip")  # a model's `tta`: the views every verb classifies by default
ENV_VAR = "EMOTISCOPE_MODEL"


@dataclass(frozen=True)
class ModelInfo:
    """A model file and the contract read from its metadata."""

    path: Path
    labels: tuple[str, ...]
    spec: InputSpec
    sha256: str
    metadata: dict = field(default_factory=dict, repr=False)
    temperature: float = 1.0  # logits are divided by it before the softmax (calibration)

    @property
    def metrics(self) -> dict:
        """The validation metrics and cost recorded when the model was exported."""
        return self.metadata.get("metrics", {})

    @property
    def tta(self) -> str:
        """The views the model asks every verb to classify unless told --tta / --no-tta: "flip"
        (the face and its mirror image, averaged) or "none" (its `tta` metadata; none if absent
        or unknown)."""
        mode = self.metadata.get("tta", "none")
        return mode if mode in TTA_MODES else "none"

    @property
    def flip_tta(self) -> bool:
        return self.tta == "flip"


def bundled_model_path() -> Path:
    """The newest .onnx shipped in emotiscope/models (names carry the date)."""
    folder = Path(str(resources.files("emotiscope") / "models"))
    found = sorted(folder.glob("*.onnx"))
    if not found:
        raise ModelError(f"no bundled model in {folder}; reinstall emotiscope or pass --model PATH")
    return found[-1]


CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")  # training checkpoints: no loader takes them as models


def resolve_model_path(model: str | os.PathLike | None = None) -> Path:
    """Explicit argument wins, then $EMOTISCOPE_MODEL, then the bundled model."""
    chosen = model if model is not None else os.environ.get(ENV_VAR) or None
    if chosen is None:
        return bundled_model_path()
    path = Path(chosen).expanduser()
    given = "omit --model" if model is not None else f"unset ${ENV_VAR}"
    if not path.is_file():
        # a FIFO or a device (/dev/zero) is not opened: reading it could block or never end
        what = ("is a folder, not a file" if path.is_dir() else
                "is not a regular file" if path.exists() else "does not exist")
        source = "" if model is not None else f" (named by ${ENV_VAR})"
        if (path / "model.onnx").is_file():  # a run folder of `emotiscope train`
            raise ModelError(f"model file {display(path)} {what}{source}; pass the run's model, "
                             f"{display(path / 'model.onnx')}")
        raise ModelError(f"model file {display(path)} {what}{source}; pass an .onnx exported by "
                         f"`emotiscope train`/`emotiscope export`, or {given} for the bundled one")
    if path.suffix.lower() in CHECKPOINT_SUFFIXES:
        raise ModelError(f"model file {display(path)} is a training checkpoint, not an ONNX model; "
                         f"export it first: emotiscope export {display(path)} -o model.onnx")
    return path


def _unreadable(what: str, path: Path, exc: OSError) -> ModelError:
    return ModelError(f"cannot read {what} {display(path)}: {exc.strerror or exc}; check the file "
                      "and its permissions")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise _unreadable("model", path, exc) from exc
    return digest.hexdigest()


def sidecar_path(path: Path) -> Path:
    """`<model>.sha256` beside the model: its checksum, as `sha256sum` writes it."""
    return path.with_name(path.name + ".sha256")


def verify_checksum(path: Path, sha256: str) -> None:
    """If `<model>.sha256` sits beside the model, the file must match it."""
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        return
    try:
        fields = sidecar.read_bytes().decode("ascii", "replace").split()
    except OSError as exc:
        raise _unreadable("checksum file", sidecar, exc) from exc
    expected = fields[0].lower() if fields else ""
    if not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise ModelError(f"checksum file {display(sidecar)} is not a sha256sum line (a 64-digit hex "
                         "checksum, then the file name); delete it, or regenerate it: sha256sum "
                         f"{display(path.name)} > {display(sidecar.name)}")
    if expected != sha256:
        raise ModelError(f"model {display(path)} fails its checksum ({sha256[:12]}... != {expected[:12]}... "
                         f"in {display(sidecar.name)}); the file is corrupt: reinstall or re-export it, "
                         f"or, if you replaced the model on purpose, update or delete {display(sidecar)}")


def update_sidecar(path: Path, sha256: str) -> Path | None:
    """Rewrite the `<model>.sha256` beside a model just written to `path` with its new
    checksum (the bundled model's format: "<sha256>  <name>"), so it does not fail its check;
    returns the sidecar, or None when there is none."""
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        return None
    # bytes: a name that is not valid UTF-8 is written back as it is on disk
    return write_bytes(sidecar, sha256.encode("ascii") + b"  " + os.fsencode(path.name) + b"\n")


def parse_metadata(custom: dict[str, str], path: Path) -> tuple[tuple[str, ...], InputSpec, dict]:
    """Labels, input spec and the full metadata dict from ONNX custom metadata."""
    raw = custom.get(METADATA_KEY)
    if raw is None:
        raise ModelError(f"model {display(path)} has no '{METADATA_KEY}' metadata; it was not exported by "
                         "emotiscope: export it with `emotiscope export CHECKPOINT`")
    try:
        meta = json.loads(raw)
        labels = tuple(str(x) for x in meta["labels"])
        spec = InputSpec.from_dict(meta["input"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"model {display(path)} has malformed '{METADATA_KEY}' metadata ({exc}); "
                         "re-export it with `emotiscope export`") from exc
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ModelError(f"model {display(path)} lists labels {list(labels)}: need 2 or more distinct labels")
    return labels, spec, meta


def _shape_text(shape) -> str:
    return "x".join(str(d) if isinstance(d, int) else "N" for d in shape) or "a scalar"


def check_graph(path: Path, inputs, outputs, labels: tuple[str, ...], spec: InputSpec) -> None:
    """The graph must take one float N x C x S x S batch (any N) and give N x len(labels) scores,
    as the metadata says. `inputs`/`outputs`: onnxruntime NodeArgs (.shape, .type); a dimension
    that is not a number is symbolic (dynamic)."""
    fix = "the graph and its metadata disagree; re-export the model with `emotiscope export`"
    if len(inputs) != 1 or not outputs:
        raise ModelError(f"model {display(path)} has {len(inputs)} inputs and {len(outputs)} outputs; "
                         f"an emotiscope model has one image input and a score output: {fix}")
    shape, want = list(inputs[0].shape), [None, spec.channels, spec.size, spec.size]
    colour = "grey" if spec.channels == 1 else "RGB"
    if (inputs[0].type != "tensor(float)" or len(shape) != 4
            or any(isinstance(d, int) and d != w for d, w in zip(shape[1:], want[1:], strict=True))):
        kind = inputs[0].type.removeprefix("tensor(").removesuffix(")")
        raise ModelError(f"model {display(path)} takes a {_shape_text(shape)} {kind} input but its metadata "
                         f"says Nx{spec.channels}x{spec.size}x{spec.size} float ({colour}): {fix}")
    if isinstance(shape[0], int):
        raise ModelError(f"model {display(path)} has a fixed batch size of {shape[0]}; emotiscope needs a "
                         "dynamic batch dimension: re-export it with `emotiscope export`")
    out = list(outputs[0].shape)
    if len(out) != 2 or (isinstance(out[1], int) and out[1] != len(labels)):
        shown = out[1] if len(out) == 2 else f"a {_shape_text(out)} array of"
        raise ModelError(f"model {display(path)} outputs {shown} scores but lists {len(labels)} "
                         f"labels in its metadata: {fix}")


def read_temperature(meta: dict, path) -> float:
    """The calibration temperature in the model's metadata (1.0 when it has none)."""
    value = meta.get("temperature", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.01 <= value <= 100:
        raise ModelError(f"model {display(path)} has temperature {value!r} in its metadata; it must "
                         "be a number in [0.01, 100]: re-export the model")
    return float(value)


def import_onnxruntime() -> ModuleType:
    """onnxruntime with its telemetry off (unless ORT_DISABLE_TELEMETRY is set already): on import,
    its Linux wheels write a device id and an event database under ~/.cache/Microsoft and queue
    events for upload, and emotiscope runs offline and writes only what it is asked to."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime

    return onnxruntime


def _session(path: Path, data: bytes, threads: int | None):
    """An ONNX Runtime session of the model file's bytes (`data`: given as bytes, a name that is
    not valid UTF-8 loads too)."""
    ort = import_onnxruntime()

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
    opts.log_severity_level = 3
    # Spinning worker threads steal the cores the face detector needs (measured: one-face frame
    # 30 -> 17 ms end to end without spinning).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several private exception types
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load model {display(path)}: not a valid ONNX model ({first}); "
                         "pass a model exported by `emotiscope export`") from exc


def open_model(model: str | os.PathLike | None = None, threads: int | None = None):
    """(ModelInfo, ONNX Runtime session) of a model file: found, checked against its .sha256,
    loaded, its metadata read and its graph checked against the metadata."""
    path = resolve_model_path(model)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _unreadable("model", path, exc) from exc
    digest = hashlib.sha256(data).hexdigest()
    verify_checksum(path, digest)
    session = _session(path, data, threads)
    labels, spec, meta = parse_metadata(session.get_modelmeta().custom_metadata_map, path)
    info = ModelInfo(path=path, labels=labels, spec=spec, sha256=digest, metadata=meta,
                     temperature=read_temperature(meta, path))
    check_graph(path, session.get_inputs(), session.get_outputs(), labels, spec)
    return info, session


def read_model(model: str | os.PathLike | None = None) -> ModelInfo:
    """THE reader of a model file's contract: labels, input spec, metrics, sha256, temperature
    (ModelError, one line, for a file that is missing, corrupt or not ours)."""
    return open_model(model, threads=1)[0]


# A path inside text: a run of non-space characters with a / or \ in it ("--out=/a/b" -> "/a/b")
PATH = re.compile(r"[^\s=,;'\"]*[\\/][^\s=,;'\"]*")


def file_names_only(value):
    """`value` (JSON-like) with every path in its strings cut to its last part: the training
    machine's folders are nobody's business ("/home/ann/runs/t.onnx" -> "t.onnx")."""
    if isinstance(value, dict):
        return {key: file_names_only(item) for key, item in value.items()}
    if isinstance(value, list):
        return [file_names_only(item) for item in value]
    if isinstance(value, str):
        return PATH.sub(lambda m: re.split(r"[\\/]", m.group().rstrip("/\\"))[-1], value)
    return value


def model_card(info: ModelInfo, paths: bool = True) -> dict:
    """The model's contract and provenance as plain data (`info` and GET /v1/model show it).
    paths=False cuts every path in the training record and metrics to its file name (what a
    server publishes: neither its own folders nor the training machine's)."""
    meta = info.metadata
    training, metrics = meta.get("training", {}), info.metrics
    if not paths:
        training, metrics = file_names_only(training), file_names_only(metrics)
    return {"name": info.path.name, "sha256": info.sha256, "arch": meta.get("arch"),
            "version": meta.get("version"), "created": meta.get("created"),
            "labels": list(info.labels), "input": info.spec.to_dict(), "temperature": info.temperature,
            "tta": info.tta, "metrics": metrics, "training": training}
