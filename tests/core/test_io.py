"""Atomic outputs, files and folders: complete or absent, with the permissions any new file or
folder would get."""

import os
import stat
import subprocess
import sys

import pytest
from sarchat_bench.core.io import atomic_folder, atomic_output
from support import SCRIPTS


def test_a_failed_write_leaves_the_earlier_file_and_no_part(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"complete\n")
    with pytest.raises(RuntimeError):
        with atomic_output(out) as handle:
            handle.write(b"half")
            raise RuntimeError("killed")
    assert out.read_bytes() == b"complete\n" and [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_outputs_get_the_permissions_of_a_plain_new_file(tmp_path, umask):
    """Not the owner-only mode of a temporary file: on a cluster, the group reads the results."""
    code = ("import sys; from sarchat_bench.core.io import atomic_output\n"
            "with atomic_output(sys.argv[1]) as out: out.write(b'x')\n"
            "open(sys.argv[2], 'wb').close()")
    subprocess.run([sys.executable, "-c", f"import os; os.umask({umask}); exec({code!r})",
                    tmp_path / "atomic", tmp_path / "plain"], check=True,
                   env={**os.environ, "PYTHONPATH": str(SCRIPTS)})
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes["atomic"] == modes["plain"] == 0o666 & ~umask


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path):
    out = tmp_path / "hf"
    (tmp_path / ".hf.stale.part").mkdir()  # left by a killed writer
    with atomic_folder(out) as tmp:
        (tmp / "a").write_text("first")
    assert [p.name for p in tmp_path.iterdir()] == ["hf"] and (out / "a").read_text() == "first"
    with pytest.raises(RuntimeError):
        with atomic_folder(out) as tmp:
            (tmp / "a").write_text("half")
            raise RuntimeError("killed")
    assert [p.name for p in tmp_path.iterdir()] == ["hf"] and (out / "a").read_text() == "first"
    with atomic_folder(out) as tmp:
        (tmp / "b").write_text("second")
    assert [p.name for p in out.iterdir()] == ["b"] and [p.name for p in tmp_path.iterdir()] == ["hf"]
    (tmp_path / "plain").mkdir()  # the permissions of a plain new folder, not mkdtemp's owner-only ones
    assert stat.S_IMODE(out.stat().st_mode) == stat.S_IMODE((tmp_path / "plain").stat().st_mode)
