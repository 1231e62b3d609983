"""The local stand-in for GuardDuty's malware scan (devstack/scanner.py): what it flags,
its clamd client (against a clamd-speaking socket), and the event it sends."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.verifier.verify import ScanResult
from devstack import scanner
from devstack.scanner import EICAR, is_eicar, scan, scan_event


@pytest.mark.parametrize(
    ("data", "flagged"),
    [(EICAR, True), (EICAR + b"\r\n", True), (EICAR + b" " * 60, True),
     (EICAR + b" " * 61, False),  # 129 bytes: longer than the file's definition allows
     (EICAR + b"x", False), (b" " + EICAR, False), (EICAR[:-1], False), (b"", False)],
)  # fmt: skip
def test_only_the_eicar_file_as_defined_is_flagged(data, flagged):
    assert is_eicar(data) is flagged
    expected = ("THREATS_FOUND", ["EICAR-Test-File (not a virus)"]) if flagged else (
        "NO_THREATS_FOUND", [])  # fmt: skip
    assert scan(data) == expected


class FakeClamd:
    """A Unix socket that speaks clamd's INSTREAM: it reads the chunks, then answers."""

    def __init__(self, path: Path, answer: bytes) -> None:
        self.received = b""
        self._answer = answer
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(1)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _read(self, conn: socket.socket, n: int) -> bytes:
        got = b""
        while len(got) < n:
            more = conn.recv(n - len(got))
            assert more, "the client closed early"
            got += more
        return got

    def _serve(self) -> None:
        conn, _ = self._server.accept()
        with conn:
            assert self._read(conn, 10) == b"zINSTREAM\0"
            while True:
                (size,) = struct.unpack(">I", self._read(conn, 4))
                if size == 0:
                    break
                self.received += self._read(conn, size)
            conn.sendall(self._answer)

    def close(self) -> None:
        self._thread.join(timeout=5)
        self._server.close()


@pytest.fixture
def clamd(tmp_path) -> Iterator[tuple[str, list[FakeClamd]]]:
    path = tmp_path / "clamd.sock"
    made: list[FakeClamd] = []
    yield str(path), made
    for server in made:
        server.close()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [(b"stream: Win.Test.Sample FOUND\0", ("THREATS_FOUND", ["Win.Test.Sample"])),
     (b"stream: OK\0", ("NO_THREATS_FOUND", [])),
     (b"INSTREAM size limit exceeded. ERROR\0", ("FAILED", []))],
)  # fmt: skip
def test_with_a_clamd_socket_its_answer_decides(clamd, answer, expected):
    path, made = clamd
    made.append(FakeClamd(Path(path), answer))
    data = bytes(range(256)) * 8192  # 2 MiB: two chunks
    assert scan(data, path) == expected
    assert made[0].received == data


def test_an_unreachable_clamd_is_a_failed_scan(tmp_path, capsys):
    missing = str(tmp_path / "no.sock")
    assert scan(b"hello", missing) == ("FAILED", [])
    assert "clamd at" in capsys.readouterr().err


def test_the_event_has_guardduty_s_shape_and_the_verifier_reads_it():
    entry = scan_event("uploads-local", "put_folder/a.txt", '"abc"', "THREATS_FOUND", ["X"])
    detail = json.loads(entry["Detail"])
    assert (entry["Source"], entry["DetailType"], entry["Resources"]) == (
        "aws.guardduty", "GuardDuty Malware Protection Object Scan Result",
        [scanner.PLAN])  # fmt: skip
    assert detail == {
        "schemaVersion": "1.0", "scanStatus": "COMPLETED", "resourceType": "S3_OBJECT",
        "s3ObjectDetails": {"bucketName": "uploads-local", "objectKey": "put_folder/a.txt",
                            "eTag": "abc", "versionId": None, "s3Throttled": False},
        "scanResultDetails": {"scanResultStatus": "THREATS_FOUND", "threats": [{"name": "X"}]},
    }  # fmt: skip
    assert ScanResult.parse(detail) == ScanResult(
        "uploads-local", "put_folder/a.txt", "abc", "THREATS_FOUND", ("X",))  # fmt: skip


@pytest.mark.parametrize(("status", "scan_status"), [
    ("NO_THREATS_FOUND", "COMPLETED"), ("UNSUPPORTED", "SKIPPED"),
    ("ACCESS_DENIED", "SKIPPED"), ("FAILED", "FAILED")])  # fmt: skip
def test_each_result_has_guardduty_s_scan_status(status, scan_status):
    detail = json.loads(scan_event("b", "k", "e", status, [])["Detail"])
    assert (detail["scanStatus"], detail["scanResultDetails"]["threats"]) == (scan_status, None)
