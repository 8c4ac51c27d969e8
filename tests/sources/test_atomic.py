"""Every writer goes through one write-then-rename with unpredictable temporary names."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rsciio_mib_plugin import write_mib, write_references
from rsciio_mib_plugin.sources.atomic import create_new, replacing, temporary_beside


def test_temporary_names_are_new_and_unpredictable(tmp_path):
    target = tmp_path / "scan.zspy"
    names = {temporary_beside(target).name for _ in range(20)} | {temporary_beside(target, True).name for _ in range(5)}
    assert len(names) == 25
    assert all(n.startswith(".scan.partial-") and n.endswith(".zspy") for n in names)


def test_replacing_puts_in_place_only_on_success(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), replacing(target) as temp:
        temp.write_text("half")
        raise RuntimeError("failed half way")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    with pytest.raises(FileExistsError, match="out.json exists"), replacing(target, overwrite=False):
        pass
    with replacing(target) as temp:
        temp.write_text("new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_a_link_planted_at_a_target_or_old_temporary_name_is_never_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    data = np.random.default_rng(0).integers(0, 4096, size=(2, 3, 16, 256), dtype=np.uint16)
    path = write_mib(tmp_path / "scan.mib", data)
    # the fixed temporary names of earlier versions
    for name in ("ref.json.part", ".live.part.png"):
        os.symlink(victim, tmp_path / name)
    write_references(path, tmp_path / "ref.json")
    from rsciio_mib_plugin.live.preview import LivePreview

    live = LivePreview(path, (16, 256))
    live.add(0, data.reshape(-1, 16, 256))
    live.save(tmp_path / "live.png", "scan")
    # record's output: an existing link is replaced, not followed
    os.symlink(victim, tmp_path / "rec.mib")
    os.close(create_new(tmp_path / "rec.mib", overwrite=True))
    assert victim.read_bytes() == b"precious"
    assert not (tmp_path / "rec.mib").is_symlink()
    with pytest.raises(FileExistsError):
        create_new(tmp_path / "rec.mib", overwrite=False)
