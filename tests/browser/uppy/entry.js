// Uppy exactly as a web app would use it against this API: @uppy/core, @uppy/aws-s3 in
// companion mode (no custom signing code) or with signRequest (POST /s3/sign, behind
// auth), and the Dashboard UI. Bundled by esbuild.
import Uppy from "@uppy/core";
import AwsS3 from "@uppy/aws-s3";
import Dashboard from "@uppy/dashboard";

const MiB = 1024 * 1024;

// Multipart above 5 MiB (Uppy's default is 100 MiB) so that a small test file takes it.
const aboveFiveMiB = (file) => file.size > 5 * MiB;

window.startUppy = (api) => start({ companionEndpoint: api, shouldUseMultipart: aboveFiveMiB });

// Behind auth: Uppy's signRequest, forwarded with the user's token to POST /s3/sign, as
// docs/browser.md gives it. `allMultipart` is shouldUseMultipart: () => true.
window.startUppySigned = (api, token, allMultipart) => {
  const signRequest = (request) =>
    fetch(`${api}/s3/sign`, {
      method: "POST",
      headers: { Authorization: token, "Content-Type": "application/json" },
      body: JSON.stringify(request),
    }).then(async (response) => {
      const body = await response.json();
      if (!response.ok) throw new Error(`${response.status} ${body.Message}`);
      return body;
    });
  return start({ signRequest, shouldUseMultipart: allMultipart ? () => true : aboveFiveMiB });
};

function start(options) {
  const uppy = new Uppy({ autoProceed: false });
  uppy.use(Dashboard, { inline: true, target: "#dashboard", proudlyDisplayPoweredByUppy: false });
  uppy.use(AwsS3, options);
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
}
