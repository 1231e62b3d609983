// The local upload page: plain JavaScript, no build step. It talks to the API at the
// address `make run` serves in /config.json, then PUTs the bytes straight to S3.
"use strict";

const MiB = 1024 * 1024;
const PART_SIZE = 5 * MiB; // S3's minimum part size
const THRESHOLD = 5 * MiB; // larger files go multipart
const PARALLEL_PARTS = 4;

let API = "";

async function api(path, options = {}) {
  const response = await fetch(API + path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(`${response.status} ${body.Message || body.message || response.statusText}`);
  }
  return body;
}

// PUT a blob with XMLHttpRequest (fetch cannot report upload progress).
function put(url, blob, headers, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () =>
      xhr.status === 200
        ? resolve(xhr.getResponseHeader("ETag"))
        : reject(new Error(`S3 answered ${xhr.status}`));
    xhr.onerror = () => reject(new Error("network error (or CORS refused the request)"));
    xhr.send(blob);
  });
}

async function single(file, progress) {
  const query = new URLSearchParams({ filename: file.name, size: String(file.size) });
  if (file.type) query.set("content_type", file.type);
  const ticket = await api(`/put-url?${query}`);
  await put(ticket.PUT_URL, file, ticket.headers, progress);
  return { uuid: ticket.UUID, key: ticket.key, mode: "single PUT" };
}

async function multipart(file, progress) {
  const created = await api("/s3/multipart", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ filename: file.name, type: file.type || undefined, size: file.size }),
  });
  const key = encodeURIComponent(created.key);
  const id = encodeURIComponent(created.uploadId);
  const count = Math.max(1, Math.ceil(file.size / PART_SIZE));
  const sent = new Array(count).fill(0);
  const etags = new Array(count);
  let next = 0;
  async function worker() {
    while (next < count) {
      const index = next++;
      const blob = file.slice(index * PART_SIZE, (index + 1) * PART_SIZE);
      const part = await api(`/s3/multipart/${id}/${index + 1}?key=${key}`);
      etags[index] = await put(part.url, blob, part.headers || {}, (loaded) => {
        sent[index] = loaded;
        progress(sent.reduce((a, b) => a + b, 0));
      });
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(PARALLEL_PARTS, count) }, worker));
  } catch (error) {
    await api(`/s3/multipart/${id}?key=${key}`, { method: "DELETE" }).catch(() => {});
    throw error;
  }
  const parts = etags.map((ETag, i) => ({ PartNumber: i + 1, ETag }));
  await api(`/s3/multipart/${id}/complete?key=${key}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ parts }),
  });
  return { uuid: created.UUID, key: created.key, mode: `multipart, ${count} parts` };
}

async function upload(file) {
  const box = document.createElement("div");
  box.className = "upload";
  box.dataset.name = file.name;
  box.innerHTML = `<strong></strong> <span class="size"></span>
    <progress max="${file.size || 1}" value="0"></progress>
    <div class="result">uploading…</div>`;
  box.querySelector("strong").textContent = file.name;
  box.querySelector(".size").textContent = `(${file.size} bytes)`;
  document.getElementById("uploads").append(box);
  const bar = box.querySelector("progress");
  const result = box.querySelector(".result");
  try {
    const how = file.size > THRESHOLD ? multipart : single;
    const done = await how(file, (loaded) => (bar.value = loaded));
    bar.value = file.size || 1;
    const status = await api(`/uploads/${done.uuid}`);
    box.dataset.uuid = done.uuid;
    box.dataset.key = done.key;
    box.dataset.status = status.status;
    result.innerHTML = `<span class="status"></span> (${done.mode})<br>
      UUID <code class="uuid"></code><br>key <code class="key"></code>`;
    result.querySelector(".status").textContent = status.status;
    result.querySelector(".uuid").textContent = done.uuid;
    result.querySelector(".key").textContent = done.key;
  } catch (error) {
    box.dataset.status = "failed";
    result.className = "result error";
    result.textContent = `failed: ${error.message}`;
  }
}

async function start() {
  API = (await (await fetch("config.json")).json()).api;
  document.getElementById("threshold").textContent = `${THRESHOLD / MiB} MiB`;
  const drop = document.getElementById("drop");
  const input = document.getElementById("files");
  const take = (files) => [...files].forEach(upload);
  input.addEventListener("change", () => take(input.files));
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    take(event.dataTransfer.files);
  });
}

start();
