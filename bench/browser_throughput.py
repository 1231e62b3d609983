"""Browser upload throughput, in headless Chromium: the project's client
(browser/presigned-upload.js, SHA-256 per part in a Worker) against Uppy 6 in companion
mode (`@uppy/aws-s3` with `companionEndpoint`, no checksums), the same 256 MiB file, the
same local S3 and API, 8 MiB parts, alternating in one run. Prints medians and the ratio.

Uppy sends one file's parts one after another; the client sends `--concurrency` parts at
a time (4 by default, Uppy's `limit` for files is 6). moto completes an upload created
without a checksum algorithm (Uppy's) by computing a full-object CRC, which costs about
3 s for 256 MiB; one created with SHA256 (the client's) costs about 1 s. That server-side
difference is inside these figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench.stack import free_port, local_stack
from tests.browser import uppy_bundle

MiB = 1024**2
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"]  # fmt: skip

CLIENT_RUN = """async ([api, partSize, concurrency]) => {
  const { Uploader } = await import("./client/presigned-upload.js");
  const file = document.querySelector("#bench").files[0];
  const uploader = new Uploader({ api, threshold: partSize, partSize, concurrency, storage: null });
  const started = performance.now();
  const done = await uploader.upload(file);
  if (done.mode !== "multipart") throw new Error(`uploaded as ${done.mode}`);
  return performance.now() - started;
}"""
UPPY_RUN = """async () => {
  const started = performance.now();
  const result = await window.uppy.upload();
  if (result.failed.length) throw new Error(String(result.failed[0].error));
  return performance.now() - started;
}"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.browser_throughput")
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    chromium, npm = (
        shutil.which("chromium") or shutil.which("chromium-browser"),
        shutil.which("npm"),
    )
    if chromium is None or npm is None:
        print("browser benchmark skipped: needs chromium and npm", file=sys.stderr)
        return 0
    from playwright.sync_api import sync_playwright

    bundle = uppy_bundle.build(npm)
    uppy = uppy_bundle.serve(bundle, free_port())
    uppy_url = f"http://127.0.0.1:{uppy.server_address[1]}/"
    times: dict[str, list[float]] = {"client": [], "uppy": []}
    with tempfile.TemporaryDirectory() as tmp, local_stack() as stack, sync_playwright() as pw:
        path = Path(tmp) / "bench.bin"
        path.write_bytes(os.urandom(args.size_mib * MiB))
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        for n in range(args.rounds):
            page = browser.new_page()
            page.goto(stack.page)
            page.evaluate("""() => { const i = document.createElement("input");
                i.type = "file"; i.id = "bench"; document.body.append(i); }""")
            page.set_input_files("#bench", str(path))
            times["client"].append(
                page.evaluate(CLIENT_RUN, [stack.api, 8 * MiB, args.concurrency]) / 1000
            )
            page.close()
            page = browser.new_page()
            page.goto(uppy_url)
            page.evaluate("api => window.startUppy(api)", stack.api)
            page.set_input_files(".uppy-Dashboard-input >> nth=0", str(path))
            times["uppy"].append(page.evaluate(UPPY_RUN) / 1000)
            page.close()
            rates = {name: args.size_mib / t[-1] for name, t in times.items()}
            print(f"  round {n + 1}: client {rates['client']:.0f}  uppy {rates['uppy']:.0f} MiB/s",
                  file=sys.stderr)  # fmt: skip
        browser.close()
    uppy.shutdown()
    client = args.size_mib / statistics.median(times["client"])
    companion = args.size_mib / statistics.median(times["uppy"])
    print(f"browser upload {args.size_mib} MiB, 8 MiB parts, Chromium, median of {args.rounds}:")
    print(f"  {'client, SHA-256 per part':<34}{client:8.1f} MiB/s")
    print(f"  {'Uppy 6, companion mode':<34}{companion:8.1f} MiB/s")
    print(f"  {'ratio client / Uppy':<34}{client / companion:8.2f}x   (target >= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
