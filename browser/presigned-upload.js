// presigned-upload's browser client: a plain ES module, no build step, no dependencies;
// the npm package presigned-upload-browser (types in presigned-upload.d.ts).
//
//   import { Uploader } from "presigned-upload-browser";   // or "./presigned-upload.js"
//   const uploader = new Uploader({ api: "https://api.example.com/api", getToken });
//   const result = await uploader.upload(file, { onProgress, signal, waitForVerdict: true });
//
// Files up to `threshold` go in one presigned PUT; larger ones in parallel parts. Every
// PUT and part carries its SHA-256 (computed by WebCrypto in a Worker, off the page's
// main thread), signed into its URL, so S3 refuses other bytes and stores the checksum.
// Requests are retried with backoff; an expired URL is signed again; `signal` cancels.
// A multipart upload interrupted by a reload or a crash is kept, per file and caller, in
// `storage` (localStorage): uploading the same file again sends only the parts S3 does
// not already hold with the same SHA-256. A kept upload is forgotten after `resumeDays`
// (the bucket discards unfinished uploads then), once it succeeds, and once the API
// refuses it for good. With `waitForVerdict`, `upload` also waits for the stage's
// verifier (type check, malware scan) and resolves with its verdict.

export const MiB = 1024 * 1024;
const MIN_PART_SIZE = 5 * MiB;
const MAX_PARTS = 10000;
const STORAGE_PREFIX = "presigned-upload:";
const DAY_MS = 24 * 3600 * 1000;
// The API's answers that no retry or resume changes: the file breaks a rule (400), or
// the upload is gone (404). A 409 is kept: a completion that raced another may be tried
// again.
const REFUSED_FOR_GOOD = [400, 404];
// A completion answered so may have stored the object all the same (a lost answer, a
// retry that raced the first): the upload's status tells.
const MAYBE_COMPLETED = [404, 409, 503, 504];
// What GET /uploads/{uuid} says of an upload whose bytes are in S3, and of one judged.
const LANDED = ["uploaded", "scanning", "verified"];
const SETTLED = ["verified", "rejected"];

/** The API's refusal ({"Code", "Message"}), S3's, or the network's, as one error;
 * `fromApi` tells the API's from S3's. */
export class UploadError extends Error {
  constructor(message, { status = 0, code = "", retryable = false, expired = false,
                         fromApi = false } = {}) {
    super(message);
    this.name = "UploadError";
    this.status = status;
    this.code = code;
    this.retryable = retryable;
    this.expired = expired;
    this.fromApi = fromApi;
  }
}

const cancelled = () => new UploadError("the upload was cancelled", { code: "Cancelled" });

function s3Code(xml) {
  const match = /<Code>([^<]*)<\/Code>/.exec(xml || "");
  return match ? match[1] : "";
}

function base64(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function unbase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** S3's checksum of a multipart object from its parts' SHA-256s (base64, in order): the
 * SHA-256 of the concatenated digests, base64, then "-<parts>". */
export async function compositeSha256(partDigests) {
  const joined = new Uint8Array(partDigests.length * 32);
  partDigests.forEach((digest, i) => joined.set(unbase64(digest), i * 32));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
  return `${base64(digest)}-${partDigests.length}`;
}

/** The part size for a file: `preferred`, raised so that the file fits in 10,000 parts. */
export function partSizeFor(size, preferred) {
  return Math.max(preferred, MIN_PART_SIZE, Math.ceil(size / MAX_PARTS));
}

export class Uploader {
  /**
   * @param {object} options
   * @param {string} options.api the API's base URL
   * @param {() => (string|null|Promise<string|null>)} [options.getToken] sent as
   *   Authorization on every API call (e.g. a Cognito ID token)
   * @param {number} [options.threshold] larger files go multipart (default 8 MiB)
   * @param {number} [options.partSize] (default 8 MiB, at least 5 MiB)
   * @param {number} [options.concurrency] parts in flight (default 4)
   * @param {number} [options.retries] per request (default 4)
   * @param {Storage|null} [options.storage] where resumable uploads are kept
   * @param {number} [options.resumeDays] how long a kept upload may be resumed (default
   *   1: the bucket's `deploy.abort_incomplete_multipart_days`)
   * @param {string|URL|null} [options.workerUrl] where the SHA-256 Worker's script is
   *   (default: sha256-worker.js next to this module, which bundlers ship)
   */
  constructor({
    api,
    getToken = () => null,
    threshold = 8 * MiB,
    partSize = 8 * MiB,
    concurrency = 4,
    retries = 4,
    backoffMs = 500,
    storage = globalThis.localStorage ?? null,
    resumeDays = 1,
    workerUrl = null,
  }) {
    this.api = api.replace(/\/+$/, "");
    this.getToken = getToken;
    this.threshold = threshold;
    this.partSize = partSize;
    this.concurrency = concurrency;
    this.retries = retries;
    this.backoffMs = backoffMs;
    this.storage = storage;
    this.resumeDays = resumeDays;
    this.workerUrl = workerUrl;
    this.worker = null;
    this.pending = new Map();
    this.nextId = 0;
  }

  /** Upload one File; resolves to {UUID, key, mode, parts, resumedParts, checksum}, and
   * with `waitForVerdict` (true, or {timeoutMs, intervalMs}) `verdict` too: the upload's
   * status once `verified` or `rejected` (see `verdict`). `onProgress({loaded, total})`
   * reports bytes sent; `signal` (an AbortSignal) cancels, and a cancelled multipart
   * upload is aborted in S3 too. */
  async upload(file, { onProgress = () => {}, signal, waitForVerdict = false } = {}) {
    if (signal?.aborted) throw cancelled();
    const report = (loaded) => onProgress({ loaded, total: file.size });
    const result = await (file.size <= this.threshold
      ? this.single(file, report, signal)
      : this.multipart(file, report, signal));
    if (!waitForVerdict) return result;
    const options = typeof waitForVerdict === "object" ? waitForVerdict : {};
    try {
      return { ...result, verdict: await this.verdict(result.UUID, { ...options, signal }) };
    } catch (error) {
      // The file is stored all the same: the error carries what upload() would have
      // resolved with, so that its UUID is not lost.
      error.result = result;
      throw error;
    }
  }

  /** The upload's status (GET /uploads/{uuid}) once the stage's verifier has judged it,
   * `verified` or `rejected` with its `reason`: asked every `intervalMs` (default 1000),
   * the last time at `timeoutMs` (default 120000), then the last status as it is
   * (`scanning` or `uploaded`: not judged yet; on a stage without UPLOAD_VERIFY, never). */
  async verdict(uuid, { timeoutMs = 120000, intervalMs = 1000, signal } = {}) {
    for (const [name, value] of [["timeoutMs", timeoutMs], ["intervalMs", intervalMs]]) {
      if (!(Number.isFinite(value) && value > 0)) {
        throw new RangeError(`${name} ${value}: allowed: milliseconds, more than 0`);
      }
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.call(`/uploads/${encodeURIComponent(uuid)}`, { signal });
      const left = deadline - Date.now();
      if (SETTLED.includes(status.status) || left <= 0) return status;
      if (signal?.aborted) throw cancelled();
      await new Promise((resolve, reject) => {
        // The last question is asked at the deadline itself.
        const timer = setTimeout(() => {
          signal?.removeEventListener("abort", stop);
          resolve();
        }, Math.min(intervalMs, left));
        const stop = () => {
          clearTimeout(timer);
          reject(cancelled());
        };
        signal?.addEventListener("abort", stop, { once: true });
      });
    }
  }

  // -- the API -------------------------------------------------------------------------

  async call(path, { method = "GET", body, signal } = {}) {
    return this.withRetries(async () => {
      const headers = {};
      const token = await this.getToken();
      if (token) headers.Authorization = token;
      if (body !== undefined) headers["Content-Type"] = "application/json";
      let response;
      try {
        response = await fetch(this.api + path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal,
        });
      } catch (error) {
        if (signal?.aborted) throw cancelled();
        throw new UploadError(`the API could not be reached (${error.message})`, {
          retryable: true,
        });
      }
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) {
        const status = response.status;
        // A quota is not a moment's throttling: retrying cannot help before it resets.
        const quota = answer.Code === "QuotaExceeded";
        const error = new UploadError(answer.Message || answer.message || response.statusText, {
          status,
          code: answer.Code || "",
          retryable: status >= 500 || (status === 429 && !quota),
          fromApi: true,
        });
        if (quota) {
          error.quota = { limit: answer.limit, allowed: answer.allowed, used: answer.used,
                          resetsAt: answer.resets_at,
                          retryAfter: Number(response.headers.get("Retry-After")) || null };
        }
        throw error;
      }
      return answer;
    }, signal);
  }

  async withRetries(attempt, signal) {
    for (let n = 0; ; n++) {
      try {
        return await attempt(n);
      } catch (error) {
        if (!error.retryable || n >= this.retries || signal?.aborted) throw error;
        const wait = Math.min(this.backoffMs * 2 ** n, 20000) * (0.5 + Math.random() / 2);
        await new Promise((resolve) => setTimeout(resolve, wait));
        if (signal?.aborted) throw cancelled();
      }
    }
  }

  // -- S3 ------------------------------------------------------------------------------

  /** PUT a blob to a presigned URL with XMLHttpRequest (fetch reports no upload
   * progress): its ETag and the SHA-256 S3 says it stored. */
  put(url, blob, headers, onProgress, signal) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      const abort = () => xhr.abort();
      signal?.addEventListener("abort", abort, { once: true });
      const done = (settle, value) => {
        signal?.removeEventListener("abort", abort);
        onProgress(settle === resolve ? blob.size : 0);
        settle(value);
      };
      xhr.open("PUT", url);
      for (const [name, value] of Object.entries(headers || {})) {
        // The browser sends Content-Length itself (the blob's size, which is what was
        // signed) and refuses to let a page set it.
        if (name.toLowerCase() !== "content-length") xhr.setRequestHeader(name, value);
      }
      xhr.upload.onprogress = (event) => onProgress(event.loaded);
      xhr.onload = () => {
        if (xhr.status === 200) {
          done(resolve, {
            etag: xhr.getResponseHeader("ETag"),
            sha256: xhr.getResponseHeader("x-amz-checksum-sha256"),
          });
          return;
        }
        const code = s3Code(xhr.responseText);
        const expired = xhr.status === 403 && /expired/i.test(xhr.responseText);
        done(reject, new UploadError(`S3 refused the upload: ${xhr.status} ${code}`, {
          status: xhr.status,
          code,
          expired,
          retryable: expired || xhr.status >= 500 || xhr.status === 429,
        }));
      };
      xhr.onerror = () =>
        done(reject, new UploadError("S3 could not be reached (or CORS refused)", {
          retryable: true,
        }));
      xhr.onabort = () => done(reject, cancelled());
      if (signal?.aborted) {
        done(reject, cancelled());
        return;
      }
      xhr.send(blob);
    });
  }

  // -- SHA-256, in a Worker --------------------------------------------------------------

  sha256(blob) {
    if (this.worker === null) {
      try {
        // Written just so, `new Worker(new URL("./sha256-worker.js", import.meta.url))`
        // is what Vite, webpack 5 and Parcel find and ship with a bundle; with esbuild,
        // the Worker is an entry point of its own, output next to the bundle.
        this.worker = this.workerUrl
          ? new Worker(this.workerUrl, { type: "module" })
          : new Worker(new URL("./sha256-worker.js", import.meta.url), { type: "module" });
        this.worker.onmessage = ({ data }) => {
          const { resolve, reject } = this.pending.get(data.id);
          this.pending.delete(data.id);
          if (data.error) reject(new UploadError(`SHA-256 failed: ${data.error}`));
          else resolve(data.sha256);
        };
        // The Worker's script could not load (missing, wrong type, a CSP's worker-src):
        // hash on the main thread from now on, including what was waiting.
        this.worker.onerror = () => {
          this.worker = false;
          for (const { resolve, reject, blob: waiting } of this.pending.values()) {
            sha256Here(waiting).then(resolve, reject);
          }
          this.pending.clear();
        };
      } catch {
        this.worker = false; // no Worker here: hash on the main thread
      }
    }
    if (this.worker === false) return sha256Here(blob);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, blob });
      this.worker.postMessage({ id, blob });
    });
  }

  // -- one PUT ---------------------------------------------------------------------------

  async single(file, report, signal) {
    const sha256 = await this.sha256(file);
    const query = new URLSearchParams({ filename: file.name, size: String(file.size), sha256 });
    if (file.type) query.set("content_type", file.type);
    let ticket = await this.call(`/put-url?${query}`, { signal });
    const stored = await this.withRetries(async (n) => {
      if (n > 0) ticket = await this.call(`/put-url?${query}`, { signal }); // a fresh URL
      return this.put(ticket.PUT_URL, file, ticket.headers, report, signal);
    }, signal);
    const local = { algorithm: "SHA256", value: sha256, type: "FULL_OBJECT" };
    return { UUID: ticket.UUID, key: ticket.key, mode: "single", parts: 1, resumedParts: 0,
             checksum: confirmed(stored.sha256 && { ...local, value: stored.sha256 }, local) };
  }

  // -- multipart -------------------------------------------------------------------------

  /** Where a file's unfinished upload is kept: per API, caller and file. */
  async storageKey(file) {
    const caller = await identityOf((await this.getToken()) || "");
    return `${STORAGE_PREFIX}${this.api}|${caller}|${file.name}|${file.size}|${file.lastModified}`;
  }

  /** The file's kept upload, unless it has expired; expired ones are swept first. */
  async remembered(file) {
    this.sweep();
    try {
      return JSON.parse(this.storage?.getItem(await this.storageKey(file)) ?? "null");
    } catch {
      return null;
    }
  }

  async remember(file, record) {
    const expiresAt = Date.now() + this.resumeDays * DAY_MS;
    this.storage?.setItem(await this.storageKey(file), JSON.stringify({ ...record, expiresAt }));
  }

  /** Forget every kept upload that has expired, or cannot be read. */
  sweep() {
    if (!this.storage) return;
    const keys = Array.from({ length: this.storage.length }, (_, i) => this.storage.key(i));
    for (const key of keys) {
      if (!key?.startsWith(STORAGE_PREFIX)) continue;
      let record = null;
      try {
        record = JSON.parse(this.storage.getItem(key));
      } catch {
        // unreadable: forgotten below
      }
      if (!(record?.expiresAt > Date.now())) this.storage.removeItem(key);
    }
  }

  async forget(file) {
    this.storage?.removeItem(await this.storageKey(file));
  }

  async multipart(file, report, signal) {
    // The upload's own signal: cancelled by the caller, or by the first part that fails
    // for good, so that the other parts stop instead of finishing for nothing.
    const inFlight = new AbortController();
    const stop = () => inFlight.abort();
    signal?.addEventListener("abort", stop, { once: true });
    let record = null;
    try {
      record = await this.remembered(file);
      const held = new Map();
      if (record) {
        try {
          const listed = await this.call(this.route(record), { signal: inFlight.signal });
          for (const part of listed) held.set(part.PartNumber, part);
        } catch (error) {
          if (error.status !== 404 && error.status !== 400) throw error;
          await this.forget(file); // completed, aborted or expired: start again
          record = null;
        }
      }
      if (!record) {
        const created = await this.call("/s3/multipart", {
          method: "POST",
          body: { filename: file.name, type: file.type || null, size: file.size,
                  checksum: "sha256" },
          signal: inFlight.signal,
        });
        record = { key: created.key, uploadId: created.uploadId, UUID: created.UUID,
                   partSize: partSizeFor(file.size, this.partSize) };
        await this.remember(file, record);
      }
      return await this.parts(file, record, held, report, inFlight);
    } catch (error) {
      inFlight.abort();
      if (signal?.aborted) {
        if (record) {
          await this.call(this.route(record), { method: "DELETE" }).catch(() => {});
          await this.forget(file);
        }
        throw cancelled();
      }
      if (record && error.fromApi && REFUSED_FOR_GOOD.includes(error.status)) {
        // Resuming cannot change the API's answer: abort the upload, and forget it.
        await this.call(this.route(record), { method: "DELETE" }).catch(() => {});
        await this.forget(file);
      }
      throw error; // otherwise kept: uploading the same file again resumes
    } finally {
      signal?.removeEventListener("abort", stop);
    }
  }

  /** Send the parts S3 does not hold, then complete the upload. */
  async parts(file, record, held, report, inFlight) {
    const size = record.partSize;
    const count = Math.max(1, Math.ceil(file.size / size));
    const sent = new Array(count).fill(0);
    const progress = () => report(sent.reduce((a, b) => a + b, 0));
    const digests = new Array(count);
    const etags = new Array(count);
    let resumedParts = 0;
    const todo = [];
    for (let number = 1; number <= count; number++) {
      const blob = file.slice((number - 1) * size, number * size);
      const part = held.get(number);
      if (part && part.Size === blob.size && part.ChecksumSHA256) {
        digests[number - 1] = await this.sha256(blob);
        if (digests[number - 1] === part.ChecksumSHA256) {
          etags[number - 1] = part.ETag;
          sent[number - 1] = blob.size;
          resumedParts++;
          continue;
        }
      }
      todo.push({ number, blob });
      if (inFlight.signal.aborted) throw cancelled();
    }
    if (inFlight.signal.aborted) throw cancelled();
    progress();
    const one = async ({ number, blob }) => {
      const sha256 = digests[number - 1] ?? (await this.sha256(blob));
      digests[number - 1] = sha256;
      const stored = await this.withRetries(async () => {
        // The size is signed as Content-Length: S3 refuses a part of any other length.
        const url = `${this.route(record, number)}&sha256=${encodeURIComponent(sha256)}` +
          `&size=${blob.size}`;
        const ticket = await this.call(url, { signal: inFlight.signal });
        return this.put(ticket.url, blob, ticket.headers, (loaded) => {
          sent[number - 1] = loaded;
          progress();
        }, inFlight.signal);
      }, inFlight.signal);
      etags[number - 1] = stored.etag;
    };
    let next = 0;
    const worker = async () => {
      while (next < todo.length) await one(todo[next++]);
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, todo.length) }, worker));
    const parts = etags.map((ETag, i) => ({ PartNumber: i + 1, ETag }));
    const done = await this.complete(file, record, parts, inFlight.signal);
    await this.forget(file);
    const local = { algorithm: "SHA256", value: await compositeSha256(digests),
                    type: "COMPOSITE" };
    return { UUID: record.UUID, key: record.key, mode: "multipart", parts: count,
             resumedParts, checksum: confirmed(done.checksum, local) };
  }

  /** Complete the upload; if the answer says it may have happened anyway, and the
   * upload's status says it is stored with this file's size, that status. */
  async complete(file, record, parts, signal) {
    try {
      return await this.call(`${this.route(record, "complete")}`, {
        method: "POST", body: { parts }, signal,
      });
    } catch (error) {
      if (!error.fromApi || !MAYBE_COMPLETED.includes(error.status)) throw error;
      const status = await this.call(`/uploads/${record.UUID}`, { signal }).catch(() => ({}));
      if (LANDED.includes(status.status) && status.size === file.size) {
        return status;
      }
      throw error;
    }
  }

  /** A multipart route for this upload: its listing, one part's URL, or "complete". */
  route(record, what) {
    const id = encodeURIComponent(record.uploadId);
    const key = `key=${encodeURIComponent(record.key)}`;
    return what === undefined ? `/s3/multipart/${id}?${key}` : `/s3/multipart/${id}/${what}?${key}`;
  }
}

/** SHA-256 on the main thread, where no Worker runs. */
async function sha256Here(blob) {
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return base64(new Uint8Array(digest));
}

/** Who kept uploads belong to: the `sub` claim of a JWT; for any other token a hash of
 * it (never the token itself: storage outlives it); "anonymous" without one. */
async function identityOf(token) {
  if (!token) return "anonymous";
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const sub = JSON.parse(atob(payload)).sub;
    if (typeof sub === "string" && sub) return `sub:${sub}`;
  } catch {
    // not a JWT: hashed below
  }
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0"));
  return `token:${hex.join("").slice(0, 32)}`;
}

/** The checksum S3 says it stored, checked against the one computed here. */
function confirmed(stored, local) {
  if (!stored) return null;
  if (stored.algorithm === "SHA256" && stored.value !== local.value) {
    throw new UploadError(`S3 stored checksum ${stored.value}, not this file's ${local.value}`, {
      code: "ChecksumMismatch",
    });
  }
  return stored;
}
