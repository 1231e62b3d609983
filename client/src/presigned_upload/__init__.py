"""A client for the presigned-upload API: files go straight to S3 through the URLs it issues.

    from presigned_upload import Uploader
    result = Uploader("http://127.0.0.1:8000").upload("video.mp4")

Files up to ``Options.threshold`` go in one presigned PUT; larger ones in parallel parts
(multipart), resumable. The `presigned-upload` command (presigned_upload.cli) wraps it.
"""

from __future__ import annotations

from presigned_upload.api import Api, ApiError
from presigned_upload.transfer import Interrupted, Options, TransferError, Uploader

__all__ = ["Api", "ApiError", "Interrupted", "Options", "TransferError", "Uploader"]
