// Uppy exactly as a web app would use it against this API: @uppy/core, @uppy/aws-s3 in
// companion mode (no custom signing code) and the Dashboard UI. Bundled by esbuild.
import Uppy from "@uppy/core";
import AwsS3 from "@uppy/aws-s3";
import Dashboard from "@uppy/dashboard";

const MiB = 1024 * 1024;

window.startUppy = (api) => {
  const uppy = new Uppy({ autoProceed: false });
  uppy.use(Dashboard, { inline: true, target: "#dashboard", proudlyDisplayPoweredByUppy: false });
  // Multipart above 5 MiB (Uppy's default is 100 MiB) so that a small test file takes it.
  uppy.use(AwsS3, { companionEndpoint: api, shouldUseMultipart: (file) => file.size > 5 * MiB });
  window.uppyResults = [];
  const partsUploaded = {};
  uppy.on("s3-multipart:part-uploaded", (file) => {
    partsUploaded[file.id] = (partsUploaded[file.id] ?? 0) + 1;
  });
  uppy.on("complete", (result) => {
    window.uppyResults.push({
      successful: result.successful.map((f) => ({
        name: f.name,
        key: f.response?.body?.key,
        location: f.response?.body?.location ?? f.response?.uploadURL,
        parts: partsUploaded[f.id] ?? 0,
      })),
      failed: result.failed.map((f) => ({ name: f.name, error: String(f.error) })),
    });
  });
  window.uppy = uppy;
  return true;
};
