"""`python -m presigned_upload`: the same as the `presigned-upload` command."""

from __future__ import annotations

import sys

from presigned_upload.cli import main

if __name__ == "__main__":
    sys.exit(main())
