// Uppy Companion 6 serving S3 uploads, as its docs set it up: the peer that
// bench/companion_cpu.py measures. Prints "listening <port>" once it accepts requests.
import express from 'express'
import { app as companion } from '@uppy/companion'

const port = Number(process.env.PORT)
const { app } = companion({
  s3: { key: 'AKIDEXAMPLE', secret: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
    bucket: 'my-uploads', region: 'eu-west-1', expires: 300 },
  server: { host: `127.0.0.1:${port}`, protocol: 'http' },
  filePath: process.env.TMPDIR || '/tmp',
  secret: 'bench-only-secret',
  corsOrigins: true,
  uploadUrls: ['^https://example\\.com/'], // required in production; unused here
  metrics: false, // its Prometheus middleware off: the cheaper Companion
})
const server = express().use(app).listen(port, '127.0.0.1', () => {
  console.log(`listening ${port}`)
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))
