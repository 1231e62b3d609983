"""`make package` ships bytecode compiled for the runtime (infra/bytecode.py); here with
this interpreter's version, which every machine has."""

import marshal
import subprocess
import sys
import zipfile

import pytest

from infra.bytecode import add_bytecode, runtime_version

RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
TAG = sys.implementation.cache_tag


def make_zip(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("app.py", "from pkg import mod\nVALUE = mod.VALUE\n")
        archive.writestr("pkg/__init__.py", "")
        archive.writestr("pkg/mod.py", "VALUE = 'compiled'\n")
        archive.writestr("pkg/__pycache__/mod.cpython-39.pyc", b"from another Python")
        archive.writestr("pkg/data.json", "{}")


def test_each_module_gets_an_unchecked_pyc_for_the_runtime_and_stale_ones_go(tmp_path):
    zip_path = tmp_path / "deployment.zip"
    make_zip(zip_path)
    assert add_bytecode(zip_path, RUNTIME) == 3
    archive = zipfile.ZipFile(zip_path)
    assert sorted(archive.namelist()) == sorted([
        "app.py", "pkg/__init__.py", "pkg/mod.py", "pkg/data.json",
        f"__pycache__/app.{TAG}.pyc", f"pkg/__pycache__/__init__.{TAG}.pyc",
        f"pkg/__pycache__/mod.{TAG}.pyc",
    ])  # fmt: skip
    pyc = archive.read(f"pkg/__pycache__/mod.{TAG}.pyc")
    # PEP 552: flags 0b01 = hash-based, not checked against the source.
    assert int.from_bytes(pyc[4:8], "little") == 0b01
    code = marshal.loads(pyc[16:])  # noqa: S302 (bytes this test just compiled)
    assert code.co_filename == "/var/task/pkg/mod.py"  # Lambda's path, in tracebacks
    added = [(i.date_time, i.external_attr >> 16) for i in archive.infolist()
             if i.filename.endswith(".pyc")]  # fmt: skip
    # As Chalice dates its entries; regular files, readable by Lambda's user.
    assert added == [((1980, 1, 1, 0, 0, 0), 0o100644)] * 3


def test_the_runtime_uses_the_shipped_pyc_without_reading_the_source(tmp_path):
    zip_path = tmp_path / "deployment.zip"
    make_zip(zip_path)
    add_bytecode(zip_path, RUNTIME)
    task = tmp_path / "task"
    zipfile.ZipFile(zip_path).extractall(task)
    # Were the source compiled again, VALUE would change; read-only /var/task, like -B.
    (task / "pkg" / "mod.py").write_text("VALUE = 'source'\n")
    done = subprocess.run([sys.executable, "-B", "-c", "import app; print(app.VALUE)"],
                          cwd=task, capture_output=True, text=True, check=True)  # fmt: skip
    assert done.stdout == "compiled\n"


def test_a_runtime_with_no_python_here_ships_no_bytecode_at_all(tmp_path):
    zip_path = tmp_path / "deployment.zip"
    make_zip(zip_path)
    assert add_bytecode(zip_path, "python2.1") is None
    # The working tree's .pyc (another Python's) goes too: the zip never depends on it.
    assert sorted(zipfile.ZipFile(zip_path).namelist()) == [
        "app.py", "pkg/__init__.py", "pkg/data.json", "pkg/mod.py"]  # fmt: skip


def test_runtime_names_are_lambdas():
    assert runtime_version("python3.12") == (3, 12)
    with pytest.raises(ValueError, match=r"not a Lambda Python runtime: 'nodejs20\.x'"):
        runtime_version("nodejs20.x")
