// useUpload(): one file at a time through presigned-upload-browser, with its progress,
// a cancel, the verdict of the stage's verifier, and the API's refusals (a 429
// QuotaExceeded carries its figures).
import { useCallback, useEffect, useRef, useState } from "react";
import { UploadError, type UploadResult, type UploadStatus, type Uploader } from "presigned-upload-browser";

export type UploadState =
  | { phase: "idle" }
  | { phase: "uploading"; loaded: number; total: number }
  | { phase: "checking"; total: number } // every byte sent: completing, then the verdict
  // verdict: null when the file is stored but its verdict was not waited for to the end
  | { phase: "done"; result: UploadResult; verdict: UploadStatus | null }
  | { phase: "cancelled" }
  | { phase: "failed"; error: UploadError };

export function useUpload(uploader: Uploader) {
  const [state, setState] = useState<UploadState>({ phase: "idle" });
  const running = useRef<AbortController | null>(null);

  const start = useCallback(
    async (file: File) => {
      running.current?.abort();
      const controller = new AbortController();
      running.current = controller;
      // Only the latest run may set the state: one that start() replaced stays quiet.
      const show = (next: UploadState) => {
        if (running.current === controller) setState(next);
      };
      show({ phase: "uploading", loaded: 0, total: file.size });
      try {
        const result = await uploader.upload(file, {
          signal: controller.signal,
          onProgress: ({ loaded, total }) =>
            show(loaded < total ? { phase: "uploading", loaded, total } : { phase: "checking", total }),
          waitForVerdict: { timeoutMs: 60_000 },
        });
        // waitForVerdict: the result carries the verdict (or the last status at the timeout).
        show({ phase: "done", result, verdict: result.verdict ?? null });
      } catch (error) {
        if (error instanceof UploadError && error.result) {
          show({ phase: "done", result: error.result, verdict: null }); // stored, not judged yet
        } else if (error instanceof UploadError && error.code === "Cancelled") {
          show({ phase: "cancelled" });
        } else {
          show({ phase: "failed", error: error instanceof UploadError ? error : new UploadError(String(error)) });
        }
      } finally {
        if (running.current === controller) running.current = null;
      }
    },
    [uploader],
  );

  const cancel = useCallback(() => running.current?.abort(), []);
  // Unmounting cancels. A reload does not: the upload is kept, and choosing the same file
  // again resumes it.
  useEffect(() => () => running.current?.abort(), []);

  return { state, start, cancel };
}
