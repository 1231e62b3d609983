// The local upload page, on the project's browser client (browser/presigned-upload.js,
// served at client/): plain ES modules, no build step. /config.json says where the API
// is and whether the stage wants a token.
import { MiB, Uploader } from "./client/presigned-upload.js";

const THRESHOLD = 5 * MiB; // larger files go multipart, in 5 MiB parts (S3's minimum)

const token = document.getElementById("token");

function b64url(value) {
  return btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

// An unsigned token for a local user: `chalice local` decodes a JWT's claims without
// verifying it, so any `sub` works here, and nowhere else.
function devToken(user) {
  const claims = { sub: `local-${user}`, "cognito:username": user };
  return `${b64url({ alg: "none" })}.${b64url(claims)}.`;
}

function show(box, done, status) {
  box.dataset.uuid = done.UUID;
  box.dataset.key = done.key;
  box.dataset.status = status.status;
  box.dataset.resumed = String(done.resumedParts);
  box.dataset.checksum = done.checksum ? done.checksum.value : "";
  const mode = done.mode === "single" ? "single PUT" : `multipart, ${done.parts} parts`;
  const resumed = done.resumedParts ? `, ${done.resumedParts} resumed` : "";
  const result = box.querySelector(".result");
  result.innerHTML = `<span class="status"></span> (${mode}${resumed})
    <span class="verdict"></span><br>
    UUID <code class="uuid"></code><br>key <code class="key"></code><br>
    SHA-256 <code class="checksum"></code>`;
  result.querySelector(".status").textContent = status.status;
  result.querySelector(".uuid").textContent = done.UUID;
  result.querySelector(".key").textContent = done.key;
  result.querySelector(".checksum").textContent = done.checksum
    ? `${done.checksum.value} (${done.checksum.type}, stored by S3)` : "none stored";
}

// With the verifier running (config.verifying), the API's status turns `verified` or
// `rejected` a moment after the upload (`scanning` before, with the malware scan on):
// ask it until it does. data-status stays the upload's own outcome; data-verdict is the
// verifier's, and data-scanning says the page showed the scan in progress.
async function watchVerdict(uploader, box, uuid) {
  const verdict = box.querySelector(".verdict");
  verdict.textContent = "· checking…";
  for (let attempt = 0; attempt < 120; attempt += 1) {
    const status = await uploader.call(`/uploads/${uuid}`);
    if (status.status === "scanning") {
      box.dataset.scanning = "shown";
      verdict.textContent = "· scanning for malware…";
    }
    if (status.status === "verified" || status.status === "rejected") {
      box.dataset.verdict = status.status;
      verdict.className = `verdict ${status.status}`;
      verdict.textContent = status.status === "verified" ? "· verified" : `· rejected: ${status.reason}`;
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  verdict.textContent = "· not checked yet";
}

// The caller's quotas (GET /quota), on stages that have any: what is used of each, and
// when the day's counts reset. Shown at start, after a sign-in and after each upload.
async function showQuota(uploader) {
  const line = document.getElementById("quota");
  let quota;
  try {
    quota = await uploader.call("/quota");
  } catch {
    quota = { enabled: false }; // not signed in yet, or the API is down: nothing to show
  }
  if (!quota.enabled) {
    line.hidden = true;
    return;
  }
  const { limits, used } = quota;
  const parts = [];
  if (limits.files_per_day) parts.push(`${used.files_today} of ${limits.files_per_day} uploads today`);
  if (limits.bytes_per_day) {
    parts.push(`${readableSize(used.bytes_today)} of ${readableSize(limits.bytes_per_day)} today`);
  }
  if (limits.stored_bytes) {
    parts.push(`${readableSize(used.stored_bytes)} of ${readableSize(limits.stored_bytes)} stored`);
  }
  line.textContent = `Your quota: ${parts.join(", ")} (the day's counts reset at ${quota.resets_at}).`;
  line.hidden = false;
}

async function upload(uploader, file, verifying) {
  const box = document.createElement("div");
  box.className = "upload";
  box.dataset.name = file.name;
  box.innerHTML = `<strong></strong> <span class="size"></span> <button type="button">cancel</button>
    <progress max="${file.size || 1}" value="0"></progress>
    <div class="result">uploading…</div>`;
  box.querySelector("strong").textContent = file.name;
  box.querySelector(".size").textContent = `(${readableSize(file.size)})`;
  document.getElementById("uploads").append(box);
  const bar = box.querySelector("progress");
  const cancel = new AbortController();
  const button = box.querySelector("button");
  button.addEventListener("click", () => cancel.abort());
  try {
    const done = await uploader.upload(file, {
      onProgress: ({ loaded }) => (bar.value = loaded),
      signal: cancel.signal,
    });
    bar.value = file.size || 1;
    const status = await uploader.call(`/uploads/${done.UUID}`);
    show(box, done, { ...status, status: status.status === "pending" ? "pending" : "uploaded" });
    if (verifying) await watchVerdict(uploader, box, done.UUID);
  } catch (error) {
    box.dataset.status = "failed";
    const result = box.querySelector(".result");
    result.className = "result error";
    result.textContent = `failed: ${error.status ? `${error.status} ` : ""}${error.message}`;
    if (error.code) box.dataset.code = error.code;
  } finally {
    button.remove();
    showQuota(uploader);
  }
}

/** 1536 -> "1.5 KiB", 7340032 -> "7.0 MiB"; under 1 KiB, bytes. */
export function readableSize(bytes) {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

async function start() {
  const config = await (await fetch("config.json")).json();
  document.title = `presigned-upload: ${config.stage}`;
  document.getElementById("heading").textContent = `Upload to the ${config.stage} stage's bucket`;
  if (config.auth !== "none") document.getElementById("signin").hidden = false;
  document.getElementById("dev-signin").addEventListener("click", () => {
    token.value = devToken(document.getElementById("user").value || "alice");
    showQuota(uploader);
  });
  const uploader = new Uploader({
    api: config.api,
    getToken: () => token.value.trim() || null,
    threshold: THRESHOLD,
    partSize: 5 * MiB,
  });
  document.getElementById("threshold").textContent = `${THRESHOLD / MiB} MiB`;
  showQuota(uploader);
  const drop = document.getElementById("drop");
  const input = document.getElementById("files");
  const take = (files) => [...files].forEach((file) => upload(uploader, file, config.verifying));
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
