import { createRoot } from "react-dom/client";
import { MiB, Uploader } from "presigned-upload-browser";
import { App } from "./App";

// ?api=<the API's base URL>&token=<a token for its Authorization header>; `make run`'s
// API by default.
const params = new URLSearchParams(location.search);
const uploader = new Uploader({
  api: params.get("api") ?? "http://127.0.0.1:8000",
  getToken: () => params.get("token"),
  // Multipart from 5 MiB, in 5 MiB parts (the defaults are 8 MiB): parts in parallel,
  // each with its SHA-256, resumable after a reload.
  threshold: 5 * MiB,
  partSize: 5 * MiB,
});

const root = document.getElementById("root");
if (root) createRoot(root).render(<App uploader={uploader} />);
