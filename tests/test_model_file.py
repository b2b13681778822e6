"""model_file.py: where the model comes from, its checksum, and the contract in its metadata."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from emotiscope import model_file
from emotiscope.errors import ModelError
from emotiscope.model_file import (
    ENV_VAR,
    METADATA_KEY,
    ModelInfo,
    file_sha256,
    model_card,
    parse_metadata,
    resolve_model_path,
    verify_checksum,
)
from emotiscope.preprocess import InputSpec

INPUT = {"size": 48, "channels": 1, "mean": 0.5, "std": 0.25, "margin": 0.2}


def touch(path: Path, data: bytes = b"model") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def bundled(tmp_path, monkeypatch) -> Path:
    """A stand-in for the installed package: emotiscope/models/ under tmp_path, initially empty."""
    package = tmp_path / "package"
    (package / "models").mkdir(parents=True)
    monkeypatch.setattr(model_file, "resources", SimpleNamespace(files=lambda name: package))
    monkeypatch.delenv(ENV_VAR, raising=False)
    return package / "models"


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


# --- resolve_model_path --------------------------------------------------------------------------

def test_argument_wins_over_the_environment_and_the_bundled_model(tmp_path, bundled, monkeypatch):
    touch(bundled / "2024-01-01.onnx")
    monkeypatch.setenv(ENV_VAR, str(touch(tmp_path / "env.onnx")))
    arg = touch(tmp_path / "arg.onnx")
    assert resolve_model_path(arg) == arg
    assert resolve_model_path(str(arg)) == arg


def test_environment_wins_over_the_bundled_model(tmp_path, bundled, monkeypatch):
    touch(bundled / "2024-01-01.onnx")
    env = touch(tmp_path / "env.onnx")
    monkeypatch.setenv(ENV_VAR, str(env))
    assert resolve_model_path() == env
    assert resolve_model_path(None) == env


def test_bundled_model_is_the_newest_dated_file(bundled, monkeypatch):
    for name in ("2024-06-30.onnx", "2025-01-15.onnx", "2024-12-31.onnx", "2026-01-01.onnx.sha256"):
        touch(bundled / name)
    assert resolve_model_path() == bundled / "2025-01-15.onnx"
    monkeypatch.setenv(ENV_VAR, "")  # empty counts as unset
    assert resolve_model_path() == bundled / "2025-01-15.onnx"


def test_no_bundled_model_says_how_to_fix_it(bundled):
    with pytest.raises(ModelError, match="no bundled model") as err:
        resolve_model_path()
    assert "--model" in one_line(err)


@pytest.mark.parametrize("via_env", [False, True])
def test_missing_model_file(tmp_path, bundled, monkeypatch, via_env):
    missing = tmp_path / "nosuch.onnx"
    touch(bundled / "2024-01-01.onnx")  # a bundled model must not hide the mistake
    if via_env:
        monkeypatch.setenv(ENV_VAR, str(missing))
    with pytest.raises(ModelError, match="nosuch.onnx does not exist") as err:
        resolve_model_path(None if via_env else missing)
    assert "emotiscope export" in one_line(err)


def test_a_folder_is_not_a_model(tmp_path, bundled):
    with pytest.raises(ModelError, match="is a folder, not a file"):
        resolve_model_path(tmp_path)


def test_a_run_folder_given_as_the_model_names_its_model_onnx(tmp_path, bundled):
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(ModelError, match=r"is a folder, not a file; pass the run's model, .*model\.onnx$"):
        resolve_model_path(tmp_path)


@pytest.mark.parametrize("special", ["fifo", "/dev/null", "/dev/zero"])
def test_a_fifo_or_device_is_not_a_model_file(tmp_path, bundled, special):
    path = Path(special)
    if special == "fifo":
        path = tmp_path / "m.onnx"
        os.mkfifo(path)  # opening it would block: the check must not
    with pytest.raises(ModelError, match=f"model file {path} is not a regular file"):
        resolve_model_path(path)


def test_a_checkpoint_is_not_a_model_and_the_message_says_how_to_export_it(tmp_path, bundled):
    path = touch(tmp_path / "best.pt", b"x")
    with pytest.raises(ModelError, match=r"training checkpoint.*emotiscope export .*best\.pt -o"):
        resolve_model_path(path)


# --- checksum ------------------------------------------------------------------------------------

def test_file_sha256(tmp_path):
    path = touch(tmp_path / "m.onnx", b"abc" * 1000)
    assert file_sha256(path) == hashlib.sha256(b"abc" * 1000).hexdigest()


@pytest.mark.parametrize("sidecar", ["{digest}", "{digest}\n", "{DIGEST}  m.onnx\n"])
def test_matching_sidecar_passes(tmp_path, sidecar):
    path = touch(tmp_path / "m.onnx")
    digest = file_sha256(path)
    (tmp_path / "m.onnx.sha256").write_text(sidecar.format(digest=digest, DIGEST=digest.upper()))
    verify_checksum(path, digest)
    verify_checksum(touch(tmp_path / "other.onnx"), "anything")  # no sidecar: nothing to check


def test_sidecar_mismatch_is_a_model_error(tmp_path):
    path = touch(tmp_path / "m.onnx")
    (tmp_path / "m.onnx.sha256").write_text("0" * 64 + "  m.onnx\n")
    with pytest.raises(ModelError, match="fails its checksum") as err:
        verify_checksum(path, file_sha256(path))
    assert "reinstall or re-export" in one_line(err)
    assert f"replaced the model on purpose, update or delete {tmp_path / 'm.onnx.sha256'}" in one_line(err)


@pytest.mark.parametrize("sidecar", [b"", b"not-a-digest  m.onnx", b"0" * 63, b"\x00\xff\x1b[31mjunk\n"])
def test_a_sidecar_that_is_no_sha256sum_line_is_blamed_not_the_model(tmp_path, sidecar):
    path = touch(tmp_path / "m.onnx")
    touch(tmp_path / "m.onnx.sha256", sidecar)
    with pytest.raises(ModelError, match=r"checksum file .*m\.onnx\.sha256 is not a sha256sum line") as err:
        verify_checksum(path, file_sha256(path))
    message = one_line(err)
    assert "delete it, or regenerate it: sha256sum m.onnx > m.onnx.sha256" in message
    assert "corrupt" not in message and message.isprintable()


def test_update_sidecar_rewrites_an_existing_one_in_the_bundled_format(tmp_path):
    path = touch(tmp_path / "m.onnx", b"new model")
    assert model_file.update_sidecar(path, file_sha256(path)) is None  # none: none written
    assert not (tmp_path / "m.onnx.sha256").exists()
    touch(tmp_path / "m.onnx.sha256", b"0" * 64 + b"  m.onnx\n")  # the old model's
    assert model_file.update_sidecar(path, file_sha256(path)) == tmp_path / "m.onnx.sha256"
    verify_checksum(path, file_sha256(path))
    assert (tmp_path / "m.onnx.sha256").read_text() == f"{file_sha256(path)}  m.onnx\n"
    bundled = model_file.bundled_model_path()  # the shipped sidecar has the same form
    assert re.fullmatch(rf"[0-9a-f]{{64}}  {re.escape(bundled.name)}\n",
                        model_file.sidecar_path(bundled).read_text())


def refuse_to_read(monkeypatch, name: str) -> None:
    """Reading the file called `name` fails as an unreadable file does (tests run as root)."""
    original_bytes, original_open = Path.read_bytes, open

    def read_bytes(self):
        if self.name == name:
            raise PermissionError(13, "Permission denied", str(self))
        return original_bytes(self)

    def fake_open(file, *args, **kwargs):
        if Path(file).name == name:
            raise PermissionError(13, "Permission denied", str(file))
        return original_open(file, *args, **kwargs)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    monkeypatch.setattr(model_file, "open", fake_open, raising=False)


@pytest.mark.parametrize("name, fragment", [("m.onnx", "cannot read model"),
                                            ("m.onnx.sha256", "cannot read checksum file")])
def test_an_unreadable_model_or_sidecar_is_one_model_error(tmp_path, monkeypatch, name, fragment):
    from fixtures.tiny_model import make_tiny_model

    path = make_tiny_model(tmp_path / "m.onnx")
    touch(tmp_path / "m.onnx.sha256", f"{file_sha256(path)}  m.onnx\n".encode())
    model_file.read_model(path)  # readable: loads
    refuse_to_read(monkeypatch, name)
    with pytest.raises(ModelError, match=f"{fragment} .*{name}: Permission denied; check") as err:
        model_file.read_model(path)
    one_line(err)
    if name == "m.onnx":
        with pytest.raises(ModelError, match="cannot read model .*: Permission denied"):
            file_sha256(path)


# --- parse_metadata ------------------------------------------------------------------------------

def metadata(**fields) -> dict[str, str]:
    return {METADATA_KEY: json.dumps({"labels": ["calm", "happy", "sad"], "input": INPUT, **fields})}


def test_parse_metadata_reads_labels_spec_and_everything_else(tmp_path):
    labels, spec, meta = parse_metadata(metadata(arch="compact", metrics={"acc": 0.7}),
                                        tmp_path / "m.onnx")
    assert labels == ("calm", "happy", "sad")
    assert spec == InputSpec(48, 1, 0.5, 0.25, 0.2)
    assert meta["arch"] == "compact" and meta["metrics"] == {"acc": 0.7}


@pytest.mark.parametrize("custom, fragment", [
    ({}, "has no 'emotiscope' metadata"),
    ({"other": "{}"}, "has no 'emotiscope' metadata"),
    ({METADATA_KEY: "{not json"}, "malformed 'emotiscope' metadata"),
    ({METADATA_KEY: json.dumps({"input": INPUT})}, "malformed"),                     # no labels
    ({METADATA_KEY: json.dumps({"labels": ["a", "b"]})}, "malformed"),               # no input
    ({METADATA_KEY: json.dumps(["a", "b"])}, "malformed"),                           # not an object
    ({METADATA_KEY: json.dumps({"labels": ["happy"], "input": INPUT})}, "need 2 or more"),
    ({METADATA_KEY: json.dumps({"labels": [], "input": INPUT})}, "need 2 or more"),
    ({METADATA_KEY: json.dumps({"labels": ["a", "b", "a"], "input": INPUT})}, "distinct labels"),
])
def test_parse_metadata_errors(tmp_path, custom, fragment):
    with pytest.raises(ModelError, match=fragment) as err:
        parse_metadata(custom, tmp_path / "m.onnx")
    assert "m.onnx" in one_line(err)


def test_parse_metadata_bad_input_spec(tmp_path):
    custom = {METADATA_KEY: json.dumps({"labels": ["a", "b"], "input": {"size": 48}})}
    with pytest.raises(ModelError, match="input spec .* is invalid") as err:
        parse_metadata(custom, tmp_path / "m.onnx")
    assert "emotiscope export" in one_line(err)


# --- model_card ----------------------------------------------------------------------------------

def test_model_card_fields(tmp_path):
    meta = {"labels": ["calm", "happy"], "input": INPUT, "arch": "compact", "version": "0.1",
            "created": "2025-01-01T00:00:00+00:00", "metrics": {"validation": {"accuracy": 0.68}},
            "training": {"command": "emotiscope train x.csv"}}
    info = ModelInfo(path=tmp_path / "2025-01-01.onnx", labels=("calm", "happy"),
                     spec=InputSpec.from_dict(INPUT), sha256="ab" * 32, metadata=meta)
    card = model_card(info)
    assert card == {"name": "2025-01-01.onnx", "sha256": "ab" * 32, "arch": "compact",
                    "version": "0.1", "created": "2025-01-01T00:00:00+00:00",
                    "labels": ["calm", "happy"], "input": INPUT, "temperature": 1.0, "tta": "none",
                    "metrics": {"validation": {"accuracy": 0.68}},
                    "training": {"command": "emotiscope train x.csv"}}
    json.dumps(card)  # plain data


def test_model_card_with_sparse_metadata(tmp_path):
    info = ModelInfo(path=tmp_path / "m.onnx", labels=("a", "b"), spec=InputSpec(), sha256="0" * 64)
    card = model_card(info)
    assert card["arch"] is None and card["version"] is None and card["created"] is None
    assert card["metrics"] == {} and card["training"] == {}
    assert card["input"] == InputSpec().to_dict() and card["labels"] == ["a", "b"]


def test_model_card_without_paths_keeps_file_names_only(tmp_path):
    meta = {"training": {"command": "emotiscope train /home/qwx/fer --out=/home/qwx/runs",
                         "config": {"data": "/home/qwx/fer", "lr": 0.1}},
            "metrics": {"validation": {"source": "C:\\Users\\qwx\\val split", "accuracy": 0.5}}}
    info = ModelInfo(path=tmp_path / "m.onnx", labels=("a", "b"), spec=InputSpec(), sha256="0" * 64,
                     metadata=meta)
    assert model_card(info)["training"] == meta["training"]  # paths kept by default
    card = model_card(info, paths=False)
    assert card["training"] == {"command": "emotiscope train fer --out=runs",
                                "config": {"data": "fer", "lr": 0.1}}
    assert card["metrics"] == {"validation": {"source": "val split", "accuracy": 0.5}}
    assert "qwx" not in json.dumps(card)


# --- read_model ----------------------------------------------------------------------------------

def test_read_model_reads_the_contract(tmp_path):
    from fixtures.tiny_model import make_tiny_model

    metrics = {"validation": {"accuracy": 0.61}}
    path = make_tiny_model(tmp_path / "m.onnx", labels=("calm", "happy"),
                           metadata={"labels": ["calm", "happy"], "input": INPUT, "metrics": metrics,
                                     "temperature": 1.5})
    info = model_file.read_model(path)
    assert info.path == path and info.labels == ("calm", "happy") and info.temperature == 1.5
    assert info.metrics == metrics and info.sha256 == file_sha256(path)
    assert info.spec.size == 48 and info.spec.channels == 1


def test_read_model_refuses_a_file_that_is_not_a_model(tmp_path):
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        model_file.read_model(touch(tmp_path / "junk.onnx", b"junk"))


def test_read_model_at_a_path_that_is_not_utf8(tmp_path):
    """A Latin-1 file name (byte 0xE9) loads; messages show it with a backslash escape."""
    from fixtures.tiny_model import make_tiny_model

    path = Path(os.fsdecode(os.fsencode(tmp_path) + b"/m\xe9.onnx"))
    os.rename(make_tiny_model(tmp_path / "m.onnx"), path)
    assert model_file.read_model(path).sha256 == file_sha256(path)
    path.write_bytes(b"junk")
    with pytest.raises(ModelError, match=r"cannot load model .*m\\xe9\.onnx: not a valid"):
        model_file.read_model(path)


def test_a_missing_model_from_the_environment_names_the_variable(tmp_path, bundled, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nosuch.onnx"))
    with pytest.raises(ModelError) as err:
        resolve_model_path(None)
    assert f"(named by ${ENV_VAR})" in one_line(err) and f"unset ${ENV_VAR}" in one_line(err)
    assert "--model" not in one_line(err)


def test_update_sidecar_of_a_model_whose_name_is_not_utf8(tmp_path):
    path = Path(os.fsdecode(bytes(tmp_path) + b"/mod\xe9l.onnx"))
    touch(path, b"new model")
    touch(model_file.sidecar_path(path), b"0" * 64 + b"  old\n")
    assert model_file.update_sidecar(path, file_sha256(path)) is not None
    verify_checksum(path, file_sha256(path))
    assert model_file.sidecar_path(path).read_bytes().endswith(b"  mod\xe9l.onnx\n")
