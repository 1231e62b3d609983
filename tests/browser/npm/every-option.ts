// A consumer of presigned-upload-browser's types (tests/browser/test_npm_package.py runs
// `tsc --strict --noEmit` on it inside the packed package's consumer app): every public
// option, the result, progress, the verdict, and UploadError narrowed by its code. The
// lines marked to expect an error fail the check if the types ever let them through.
import {
  MiB,
  type QuotaDetails,
  type StoredChecksum,
  type UploadErrorCode,
  type UploadOptions,
  type UploadProgress,
  type UploadResult,
  type UploadStatus,
  type UploaderOptions,
  UploadError,
  Uploader,
  compositeSha256,
  partSizeFor,
} from "presigned-upload-browser";

const options: UploaderOptions = {
  api: "https://api.example.com/api",
  getToken: async () => "a Cognito ID token",
  threshold: 16 * MiB,
  partSize: 8 * MiB,
  concurrency: 6,
  retries: 3,
  backoffMs: 250,
  storage: typeof localStorage === "undefined" ? null : localStorage,
  resumeDays: 1,
  workerUrl: new URL("https://cdn.example.com/sha256-worker.js"),
};
const uploader = new Uploader(options);

export async function describe(file: File): Promise<string> {
  const seen: UploadProgress[] = [];
  const upload: UploadOptions = {
    onProgress: (progress) => seen.push(progress),
    signal: AbortSignal.timeout(600_000),
    waitForVerdict: { timeoutMs: 60_000, intervalMs: 500 },
  };
  try {
    const result: UploadResult = await uploader.upload(file, upload);
    const checksum: StoredChecksum | null = result.checksum;
    const verdict: UploadStatus | undefined = result.verdict;
    switch (verdict?.status) {
      case "rejected":
        return `rejected: ${verdict.reason}`;
      case "verified":
      case "scanning":
      case "uploaded":
        return `${verdict.status} ${verdict.key} ${verdict.size} ${verdict.checksum?.value ?? ""}`;
      case "pending":
      case undefined:
        return `${result.UUID} ${result.mode} ${result.parts} ${result.resumedParts} ` +
          `${checksum?.algorithm ?? "none"} ${seen.length}`;
    }
  } catch (error) {
    if (!(error instanceof UploadError)) throw error;
    const code: UploadErrorCode = error.code;
    if (code === "QuotaExceeded" && error.quota) {
      const quota: QuotaDetails = error.quota;
      return `${quota.limit}: ${quota.used} of ${quota.allowed}, again at ${quota.resetsAt} ` +
        `(in ${quota.retryAfter ?? "?"} s)`;
    }
    if (code === "Cancelled") return "cancelled";
    return `${error.name} ${error.status} ${error.retryable} ${error.expired} ${error.fromApi}: ` +
      error.message;
  }
}

export function verdictOf(uuid: string): Promise<UploadStatus> {
  return uploader.verdict(uuid, { timeoutMs: 30_000, intervalMs: 1_000 });
}

export const quota: Promise<{ enabled: boolean }> = uploader.call<{ enabled: boolean }>("/quota");
export const checksums: Promise<string> = compositeSha256(["47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="]);
export const partSize: number = partSizeFor(100_000 * MiB, 8 * MiB);

// @ts-expect-error: the API's base URL is required
new Uploader({ threshold: MiB });
// @ts-expect-error: a timeout is a number of milliseconds
void uploader.upload(new File([], "x"), { waitForVerdict: { timeoutMs: "soon" } });
// @ts-expect-error: a rejected upload has no key
export const noKey = (status: UploadStatus) => status.status === "rejected" && status.key;
