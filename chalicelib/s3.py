"""Building the S3 client. Done once per container by app.py, then injected."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def make_s3_client(settings: Settings) -> S3Client:
    """An S3 client that signs the way browsers and curl need.

    - ``signature_version="s3v4"``: without it botocore still presigns legacy SigV2 URLs
      in some regions, which S3 rejects for newer regions and KMS-encrypted buckets.
    - ``us_east_1_regional_endpoint="regional"`` plus the bucket's own region: URLs point at
      ``<bucket>.s3.<region>.amazonaws.com``. The global endpoint answers requests for a
      bucket created in the last day with a 307 redirect, and browsers will not resend a
      PUT body across a redirect that fails CORS.
    - ``addressing_style="virtual"``: with "auto", botocore presigns against the global
      ``<bucket>.s3.amazonaws.com`` in every region. (A bucket name with dots still gets a
      path-style URL, so that TLS matches the certificate.)
    - path-style addressing for a custom endpoint (a local S3 on loopback), because
      ``<bucket>.127.0.0.1`` does not resolve.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        signature_version="s3v4",
        region_name=settings.region,
        s3={
            "addressing_style": "path" if settings.endpoint_url else "virtual",
            "us_east_1_regional_endpoint": "regional",
        },
        # Presigning needs no network; these bound the routes that later do call S3.
        connect_timeout=2,
        read_timeout=5,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return boto3.session.Session().client(
        "s3", region_name=settings.region, endpoint_url=settings.endpoint_url, config=config
    )
