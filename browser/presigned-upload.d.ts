// Types of presigned-upload.js, the browser client of the presigned-upload API. Written by
// hand; tests/browser/npm/ type-checks a consumer against them in strict mode.

/** 1 MiB, in bytes. */
export declare const MiB: number;

/** What `upload` reports as bytes go out (after a retry, `loaded` may go back). */
export interface UploadProgress {
  loaded: number;
  total: number;
}

export interface UploaderOptions {
  /** The API's base URL, like `https://abc.execute-api.eu-west-1.amazonaws.com/api`. */
  api: string;
  /** Sent as `Authorization` on every API call (a Cognito ID token, say); none if null. */
  getToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /** Files larger than this go multipart (default 8 MiB). */
  threshold?: number;
  /** The part size of a multipart upload (default 8 MiB; at least 5 MiB, and raised so
   * that a file fits in 10,000 parts). */
  partSize?: number;
  /** Parts in flight at once (default 4). */
  concurrency?: number;
  /** Retries per request, with backoff (default 4). */
  retries?: number;
  /** The first backoff, doubled at each retry (default 500 ms). */
  backoffMs?: number;
  /** Where unfinished multipart uploads are kept, to resume them (default localStorage;
   * null: never kept). */
  storage?: Storage | null;
  /** How long a kept upload may be resumed, in days (default 1). */
  resumeDays?: number;
  /** Where the SHA-256 Worker's script is (default: sha256-worker.js next to the module,
   * which bundlers ship); without a Worker, hashing runs on the page's thread. */
  workerUrl?: string | URL | null;
}

export interface WaitForVerdict {
  /** Ask a last time after this long, then resolve with that status (default 120000 ms;
   * more than 0, else a RangeError). */
  timeoutMs?: number;
  /** Ask this often (default 1000 ms; more than 0). */
  intervalMs?: number;
}

export interface UploadOptions {
  onProgress?: (progress: UploadProgress) => void;
  /** Cancels the upload; a cancelled multipart upload is aborted in S3 too. */
  signal?: AbortSignal;
  /** Also wait for the stage's verifier (type check, malware scan): the result then has
   * `verdict`. */
  waitForVerdict?: boolean | WaitForVerdict;
}

/** The checksum S3 stored, as GET /uploads/{uuid} and a completion report it. */
export interface StoredChecksum {
  algorithm: "SHA256" | "CRC32" | "CRC32C" | "CRC64NVME" | "SHA1";
  value: string;
  type: "FULL_OBJECT" | "COMPOSITE";
}

/** GET /uploads/{uuid}: nothing stored yet (or not the caller's). */
export interface PendingStatus {
  UUID: string;
  status: "pending";
}

/** GET /uploads/{uuid}: stored; `scanning` until its malware scan is in, `verified` once
 * the verifier passed it. */
export interface StoredStatus {
  UUID: string;
  status: "uploaded" | "scanning" | "verified";
  key: string;
  size: number;
  content_type: string | null;
  etag: string;
  last_modified: string;
  filename: string | null;
  checksum: StoredChecksum | null;
}

/** GET /uploads/{uuid}: the verifier rejected it (`malware: ...`, `type-mismatch: ...`),
 * and it was moved out of reach. */
export interface RejectedStatus {
  UUID: string;
  status: "rejected";
  reason: string;
}

export type UploadStatus = PendingStatus | StoredStatus | RejectedStatus;

export interface UploadResult {
  UUID: string;
  key: string;
  mode: "single" | "multipart";
  parts: number;
  /** Parts S3 held already from an interrupted upload of the same file. */
  resumedParts: number;
  /** The checksum S3 stored, checked against the file's; null if S3 reported none. */
  checksum: StoredChecksum | null;
  /** With `waitForVerdict`: the status once judged, or the last one at the timeout. */
  verdict?: UploadStatus;
}

/** The figures of a 429 QuotaExceeded. */
export interface QuotaDetails {
  limit: "files_per_day" | "bytes_per_day" | "stored_bytes" | "uploads_in_flight";
  allowed: number;
  used: number;
  /** When the day's counts reset (ISO 8601, UTC); null for the limits that do not
   * reset (stored_bytes, uploads_in_flight). */
  resetsAt: string | null;
  /** Seconds, from the Retry-After header. */
  retryAfter: number | null;
}

/** The codes an UploadError carries: the API's `Code`, S3's `<Code>`, or the client's. */
export type UploadErrorCode =
  // the client's own
  | "Cancelled"
  | "ChecksumMismatch"
  // the API's (docs/api.md)
  | "QuotaExceeded"
  | "BadRequestError"
  | "UnauthorizedError"
  | "NotFoundError"
  | "ConflictError"
  | "TooManyRequestsError"
  | "ServiceUnavailableError"
  | "ConfigurationError"
  | "ServiceFailure"
  // API Gateway's own, before the function runs (an authorizer, throttling, the WAF)
  | "UNAUTHORIZED"
  | "ACCESS_DENIED"
  | "THROTTLED"
  | "WAF_FILTERED"
  | "MISSING_AUTHENTICATION_TOKEN"
  // S3's, for a PUT or a part
  | "AccessDenied"
  | "BadDigest"
  | "EntityTooLarge"
  | "InvalidRequest"
  | "PreconditionFailed"
  | "SignatureDoesNotMatch"
  // none (a network error), or one this list does not name
  | ""
  | (string & {});

/** The API's refusal, S3's, or the network's, as one error. */
export declare class UploadError extends Error {
  name: "UploadError";
  /** The HTTP status; 0 for a network error or the client's own. */
  status: number;
  code: UploadErrorCode;
  /** Whether trying again may succeed (it was retried already). */
  retryable: boolean;
  /** S3 said the URL had expired. */
  expired: boolean;
  /** The API answered it (else S3, the network, or the client). */
  fromApi: boolean;
  /** With code "QuotaExceeded": which limit, and when it resets. */
  quota?: QuotaDetails;
  /** Set when the file was stored but waiting for its verdict failed (or was
   * cancelled): what `upload` would have resolved with. */
  result?: UploadResult;
  constructor(
    message: string,
    options?: { status?: number; code?: string; retryable?: boolean; expired?: boolean;
                fromApi?: boolean },
  );
}

export declare class Uploader {
  constructor(options: UploaderOptions);
  /** Upload one file: one PUT up to `threshold`, else parts in parallel, resumable. */
  upload(file: File, options?: UploadOptions): Promise<UploadResult>;
  /** The upload's status once judged (`verified` or `rejected`), or the last one at the
   * timeout. */
  verdict(uuid: string, options?: WaitForVerdict & { signal?: AbortSignal }): Promise<UploadStatus>;
  /** Call the API (with the token, retries and backoff); its JSON answer. */
  call<T = unknown>(
    path: string,
    options?: { method?: string; body?: unknown; signal?: AbortSignal },
  ): Promise<T>;
}

/** S3's checksum of a multipart object from its parts' SHA-256s (base64, in order). */
export declare function compositeSha256(partDigests: string[]): Promise<string>;

/** The part size for a file of `size` bytes: `preferred`, raised to fit 10,000 parts. */
export declare function partSizeFor(size: number, preferred: number): number;
