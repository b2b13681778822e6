"""Find the model file (argument > $EMOTISCOPE_MODEL > bundled), verify it, read its contract.

The contract lives in the ONNX metadata under the key `emotiscope`: a JSON object with
`labels` (output order), `input` (see preprocess.InputSpec), `arch`, `training`, `metrics`,
`created` and `version`. Nothing else in the code lists labels.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .errors import ModelError
from .preprocess import InputSpec

METADATA_KEY = "emotiscope"
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


def bundled_model_path() -> Path:
    """The newest .onnx shipped in emotiscope/models (names carry the date)."""
    folder = Path(str(resources.files("emotiscope") / "models"))
    found = sorted(folder.glob("*.onnx"))
    if not found:
        raise ModelError(f"no bundled model in {folder}; reinstall emotiscope or pass --model PATH")
    return found[-1]


def resolve_model_path(model: str | os.PathLike | None = None) -> Path:
    """Explicit argument wins, then $EMOTISCOPE_MODEL, then the bundled model."""
    chosen = model if model is not None else os.environ.get(ENV_VAR) or None
    if chosen is None:
        return bundled_model_path()
    path = Path(chosen).expanduser()
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist; pass an .onnx exported by "
                         "`emotiscope train`/`emotiscope export`, or omit --model for the bundled one")
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path: Path, sha256: str) -> None:
    """If `<model>.sha256` sits beside the model, the file must match it."""
    sidecar = path.with_name(path.name + ".sha256")
    if not sidecar.is_file():
        return
    fields = sidecar.read_text().split()
    expected = fields[0].lower() if fields else ""
    if expected != sha256:
        raise ModelError(f"model {path} fails its checksum ({sha256[:12]}... != {expected[:12]}... "
                         f"in {sidecar.name}); the file is corrupt: reinstall or re-export it")


def parse_metadata(custom: dict[str, str], path: Path) -> tuple[tuple[str, ...], InputSpec, dict]:
    """Labels, input spec and the full metadata dict from ONNX custom metadata."""
    raw = custom.get(METADATA_KEY)
    if raw is None:
        raise ModelError(f"model {path} has no '{METADATA_KEY}' metadata; it was not exported by "
                         "emotiscope: export it with `emotiscope export CHECKPOINT`")
    try:
        meta = json.loads(raw)
        labels = tuple(str(x) for x in meta["labels"])
        spec = InputSpec.from_dict(meta["input"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"model {path} has malformed '{METADATA_KEY}' metadata ({exc}); "
                         "re-export it with `emotiscope export`") from exc
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ModelError(f"model {path} lists labels {list(labels)}: need 2 or more distinct labels")
    return labels, spec, meta


def _shape_text(shape) -> str:
    return "x".join(str(d) if isinstance(d, int) else "N" for d in shape) or "a scalar"


def check_graph(path: Path, inputs, outputs, labels: tuple[str, ...], spec: InputSpec) -> None:
    """The graph must take one float N x C x S x S batch (any N) and give N x len(labels) scores,
    as the metadata says. `inputs`/`outputs`: onnxruntime NodeArgs (.shape, .type); a dimension
    that is not a number is symbolic (dynamic)."""
    fix = "the graph and its metadata disagree; re-export the model with `emotiscope export`"
    if len(inputs) != 1 or not outputs:
        raise ModelError(f"model {path} has {len(inputs)} inputs and {len(outputs)} outputs; "
                         f"an emotiscope model has one image input and a score output: {fix}")
    shape, want = list(inputs[0].shape), [None, spec.channels, spec.size, spec.size]
    colour = "grey" if spec.channels == 1 else "RGB"
    if (inputs[0].type != "tensor(float)" or len(shape) != 4
            or any(isinstance(d, int) and d != w for d, w in zip(shape[1:], want[1:], strict=True))):
        kind = inputs[0].type.removeprefix("tensor(").removesuffix(")")
        raise ModelError(f"model {path} takes a {_shape_text(shape)} {kind} input but its metadata "
                         f"says Nx{spec.channels}x{spec.size}x{spec.size} float ({colour}): {fix}")
    if isinstance(shape[0], int):
        raise ModelError(f"model {path} has a fixed batch size of {shape[0]}; emotiscope needs a "
                         "dynamic batch dimension: re-export it with `emotiscope export`")
    out = list(outputs[0].shape)
    if len(out) != 2 or (isinstance(out[1], int) and out[1] != len(labels)):
        shown = out[1] if len(out) == 2 else f"a {_shape_text(out)} array of"
        raise ModelError(f"model {path} outputs {shown} scores but lists {len(labels)} labels in its "
                         f"metadata: {fix}")


def model_card(info: ModelInfo) -> dict:
    """The model's contract and provenance as plain data (`info` and GET /v1/model show it)."""
    meta = info.metadata
    return {"name": info.path.name, "sha256": info.sha256, "arch": meta.get("arch"),
            "version": meta.get("version"), "created": meta.get("created"),
            "labels": list(info.labels), "input": info.spec.to_dict(), "temperature": info.temperature,
            "metrics": meta.get("metrics", {}), "training": meta.get("training", {})}
