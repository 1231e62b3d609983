// A Web Worker that computes SHA-256 digests off the page's main thread, so the page stays
// responsive while a large file is hashed. Messages in: {id, blob}; out: {id, sha256}
// (the digest in base64, as S3's x-amz-checksum-sha256 wants it) or {id, error}.

async function sha256(blob) {
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  let binary = "";
  for (const byte of new Uint8Array(digest)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

self.onmessage = async (event) => {
  const { id, blob } = event.data;
  try {
    self.postMessage({ id, sha256: await sha256(blob) });
  } catch (error) {
    self.postMessage({ id, error: String(error) });
  }
};
