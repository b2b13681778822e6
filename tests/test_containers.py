from __future__ import annotations

from fixtures import videos

from emotiscope.containers import cut_short


def box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def test_whole_and_cut_files(tmp_path):
    for suffix in (".avi", ".mp4"):
        path = videos.write_video(tmp_path / f"v{suffix}", videos.pan_frames(6))
        assert not cut_short(path)
        data = path.read_bytes()
        cut = tmp_path / f"cut{suffix}"
        cut.write_bytes(data[: len(data) * 2 // 3])
        assert cut_short(cut)


def test_iso_boxes(tmp_path):
    path = tmp_path / "a.mp4"
    whole = box(b"ftyp", b"isom" * 4) + box(b"moov", bytes(40)) + box(b"mdat", bytes(500))
    path.write_bytes(whole)
    assert not cut_short(path)
    path.write_bytes(whole[:-100])  # faststart file whose media data was cut
    assert cut_short(path)
    path.write_bytes(whole + b"\x00\x00")  # a box header cut in the middle
    assert cut_short(path)
    large = (1).to_bytes(4, "big") + b"mdat" + (16 + 100).to_bytes(8, "big") + bytes(100)
    path.write_bytes(box(b"ftyp", b"isom") + large)
    assert not cut_short(path)
    path.write_bytes(box(b"ftyp", b"isom") + (0).to_bytes(4, "big") + b"mdat" + bytes(9))
    assert not cut_short(path)  # size 0: the box runs to the end of the file


def test_unknown_formats_are_not_judged(tmp_path):
    path = tmp_path / "a.mkv"
    path.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(100))
    assert not cut_short(path)
    path.write_bytes(b"")
    assert not cut_short(path)
