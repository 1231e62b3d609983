import type { ChangeEvent } from "react";
import type { Uploader } from "presigned-upload-browser";
import { useUpload, type UploadState } from "./useUpload";

export function App({ uploader }: { uploader: Uploader }) {
  const { state, start, cancel } = useUpload(uploader);
  const choose = (event: ChangeEvent<HTMLInputElement>) => {
    const file = event.target.files?.[0];
    event.target.value = ""; // so that choosing the same file again starts again
    if (file) void start(file);
  };
  const busy = state.phase === "uploading" || state.phase === "checking";
  return (
    <main>
      <h1>Upload a file</h1>
      <input id="file" type="file" onChange={choose} disabled={busy} />
      {state.phase === "uploading" && (
        <button id="cancel" type="button" onClick={cancel}>
          cancel
        </button>
      )}
      <Progress state={state} />
      <Outcome state={state} />
    </main>
  );
}

function Progress({ state }: { state: UploadState }) {
  if (state.phase === "uploading") return <progress value={state.loaded} max={state.total || 1} />;
  if (state.phase === "checking") return <p>Sent; checking the file…</p>;
  return null;
}

/** What happened, in words, with data-* attributes a test (or a script) can read. */
function Outcome({ state }: { state: UploadState }) {
  switch (state.phase) {
    case "done": {
      const { result, verdict } = state;
      const words =
        verdict === null ? "stored; not judged yet" :
        verdict.status === "verified" ? "verified" :
        verdict.status === "rejected" ? `rejected: ${verdict.reason}` : `not judged yet (${verdict.status})`;
      return (
        <p id="outcome" data-phase="done" data-uuid={result.UUID} data-verdict={verdict?.status ?? ""}
           data-checksum={result.checksum?.value ?? ""} data-mode={result.mode}>
          {result.mode === "multipart" ? `${result.parts} parts` : "one PUT"}, {words}
        </p>
      );
    }
    case "failed": {
      const { error } = state;
      const quota = error.code === "QuotaExceeded" ? error.quota : undefined;
      return (
        <p id="outcome" data-phase="failed" data-code={error.code}>
          {quota
            ? `Quota reached: ${quota.used} of ${quota.allowed} (${quota.limit})` +
              (quota.resetsAt ? `; it resets at ${quota.resetsAt}.` : ".")
            : `Failed: ${error.message}`}
        </p>
      );
    }
    case "cancelled":
      return <p id="outcome" data-phase="cancelled">Cancelled.</p>;
    default:
      return null;
  }
}
