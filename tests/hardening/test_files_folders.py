"""Export folders (``compile --target mcu``, TFLM and C): one replace function, race-free, never following
or leaving links; a full disk under the compiler is the environment's fault (issue 19, defect 10)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgeq.errors import BadInput, OutputExists
from tests.conftest import listing

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on PATH")
MARK = "edgeq_export.json"


def _staged(out: Path, name: str, text: str) -> Path:
    from edgeq.artifacts import stage_folder

    staged = stage_folder(out, name)
    (staged / MARK).write_text(text)
    return staged


def test_a_folder_that_appeared_after_the_check_is_not_replaced_without_force(tmp_path):
    """Two runs into one folder: both pass the check before either writes; the second rename is refused."""
    from edgeq.artifacts import check_output_folder, replace_folder

    out, final = check_output_folder(tmp_path, "m_c", MARK, overwrite=False)
    first, second = _staged(out, "m_c", "first"), _staged(out, "m_c", "second")
    replace_folder(first, final, MARK, overwrite=False)
    with pytest.raises(OutputExists, match="m_c"):
        replace_folder(second, final, MARK, overwrite=False)
    assert (final / MARK).read_text() == "first"
    shutil.rmtree(second)
    assert listing(tmp_path) == ["m_c"]


def test_force_onto_a_symlinked_output_replaces_the_link_only(tmp_path):
    from edgeq.artifacts import check_output_folder, replace_folder

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / MARK).write_text("the user's")
    out = tmp_path / "out"
    out.mkdir()
    (out / "m_c").symlink_to(elsewhere, target_is_directory=True)
    _, final = check_output_folder(out, "m_c", MARK, overwrite=True)
    replace_folder(_staged(out, "m_c", "new"), final, MARK, overwrite=True)
    assert not final.is_symlink() and (final / MARK).read_text() == "new"
    assert (elsewhere / MARK).read_text() == "the user's"  # the link's target is never touched
    assert listing(out) == ["m_c"]  # no .m_c.old.* left behind, dangling or not


def test_force_onto_a_dangling_link(tmp_path):
    from edgeq.artifacts import check_output_folder, replace_folder

    (tmp_path / "m_c").symlink_to(tmp_path / "gone")
    _, final = check_output_folder(tmp_path, "m_c", MARK, overwrite=True)
    replace_folder(_staged(tmp_path, "m_c", "new"), final, MARK, overwrite=True)
    assert final.is_dir() and not final.is_symlink() and listing(tmp_path) == ["m_c"]


def test_a_file_where_the_export_folder_goes_is_refused(tmp_path):
    from edgeq.artifacts import check_output_folder

    (tmp_path / "m_c").write_text("mine")
    with pytest.raises(BadInput, match="not a folder"):
        check_output_folder(tmp_path, "m_c", MARK, overwrite=True)


@needs_gcc
@pytest.mark.slow
def test_two_simultaneous_compiles_into_one_folder(tmp_path, tiny_int8):
    """Without --force, exactly one of two concurrent runs writes the folder; the other is refused."""
    cmd = [sys.executable, "-m", "edgeq", "--json", "compile", str(tiny_int8), "--target", "mcu", "--runtime", "c"]
    cmd += ["--proof-samples", "2", "-o", str(tmp_path / "out")]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    runs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for _ in range(2)]
    results = [(p.wait(timeout=600), json.loads(p.stdout.read())) for p in runs]
    for p in runs:
        p.stdout.close()
        p.stderr.close()
    codes = sorted(code for code, _ in results)
    assert codes == [0, 3], results
    refused = next(doc for code, doc in results if code == 3)
    assert refused["error"]["type"] == "output_exists"
    assert listing(tmp_path / "out") == [f"{tiny_int8.stem}_c"]


@needs_gcc
def test_compile_force_onto_a_symlinked_output(run_cli, tmp_path, tiny_int8):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "notes.txt").write_text("the user's")
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{tiny_int8.stem}_c").symlink_to(elsewhere, target_is_directory=True)
    r = run_cli("compile", tiny_int8, "--target", "mcu", "--runtime", "c", "--proof-samples", "2", "-o", out, "--force")
    assert r.exit_code == 0, r.stderr
    assert listing(out) == [f"{tiny_int8.stem}_c"] and not (out / f"{tiny_int8.stem}_c").is_symlink()
    assert listing(elsewhere) == ["notes.txt"]


# -- a full disk under the compiler -------------------------------------------------------------


def test_a_full_disk_under_gcc_is_an_environment_error(tmp_path, monkeypatch):
    from edgeq.errors import EnvironmentProblem
    from edgeq.targets.mcu.cgen import toolchain

    gcc_says = (
        f"{tmp_path}/model.c:1062:1: fatal error: error writing to {tmp_path}/ccMoyXZE.s: No space left on device\n"
        "compilation terminated.\n"
    ).encode()

    def full(cmd, timeout_s, **_kw):
        return subprocess.CompletedProcess(cmd, 1, b"", gcc_says)

    monkeypatch.setattr(toolchain.procs, "run", full)
    with pytest.raises(EnvironmentProblem) as info:
        toolchain.host_build(tmp_path, tmp_path / "build")
    assert info.value.exit_code == 3
    assert f"writing {tmp_path}/ccMoyXZE.s" in info.value.message and "free some disk space" in info.value.hint


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir()
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
        ).returncode
        == 0
    )


@needs_gcc
def test_compile_with_a_full_temp_disk_is_exit_3(run_cli, tmp_path, tiny_int8, monkeypatch):
    """A real full disk: gcc's temp folder on an 8 KiB tmpfs (needs mount privileges)."""
    tiny = tmp_path / "tiny"
    if not _mount_tmpfs(tiny, "8k"):
        pytest.skip("mount -t tmpfs is not permitted here (needs root or CAP_SYS_ADMIN)")
    try:
        monkeypatch.setenv("TMPDIR", str(tiny))
        r = run_cli("--json", "compile", tiny_int8, "--target", "mcu", "--runtime", "c", "-o", tmp_path / "out")
    finally:
        subprocess.run(["umount", str(tiny)], check=True)
    assert r.exit_code == 3, r.stdout
    err = r.json["error"]
    assert (
        err["type"] == "environment"
        and f"No space left on device (the disk mounted at {tiny}, writing {tiny}/" in err["message"]
    )
    assert listing(tmp_path / "out") == []


def test_an_oserror_enospc_names_the_disk(run_cli, tmp_path, monkeypatch, tiny_int8):
    """ENOSPC raised anywhere (here: writing the project) is exit 3 naming the disk and the fix."""
    from edgeq.targets.mcu import cgen

    def full(self, folder):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder / "model.c"))

    monkeypatch.setattr(cgen.Project, "write", full)
    r = run_cli("--json", "compile", tiny_int8, "--target", "mcu", "--runtime", "c", "-o", tmp_path / "out")
    assert r.exit_code == 3, r.stdout
    err = r.json["error"]
    assert err["message"].startswith("No space left on device (the disk mounted at /)") and "model.c" in err["message"]
    assert "-o" in err["hint"] and listing(tmp_path / "out") == []
