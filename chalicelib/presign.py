"""Issuing presigned upload URLs. No HTTP framework and no os.environ here.

The S3 client is injected. Presigning is local computation (an HMAC over the request),
so issuing a URL makes no request to S3 at all: no placeholder object is written, and an
abandoned upload leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from chalicelib.keys import new_upload_id, upload_key
from chalicelib.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_AMZ_DATE = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class PutTicket:
    """Everything a client needs to PUT one file: the URL and the headers it must send."""

    upload_id: str
    key: str
    url: str
    expires_in: int
    expires_at: datetime
    headers: dict[str, str] = field(default_factory=dict)

    def to_response(self) -> dict[str, Any]:
        """The JSON body of ``GET /put-url``. ``PUT_URL`` and ``UUID`` are the original
        service's contract and keep their names."""
        return {
            "PUT_URL": self.url,
            "UUID": self.upload_id,
            "key": self.key,
            "method": "PUT",
            "headers": dict(self.headers),
            "expires_in": self.expires_in,
            "expires_at": self.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


class Presigner:
    """Issues presigned PUT URLs for new uploads under the configured prefix."""

    def __init__(
        self,
        client: S3Client,
        settings: Settings,
        new_id: Callable[[], str] = new_upload_id,
    ) -> None:
        self._client = client
        self._settings = settings
        self._new_id = new_id

    def put_ticket(self) -> PutTicket:
        """A URL that stores whatever bytes are PUT to it at ``<prefix><uuid>``.

        With no signed headers, ``curl -X PUT --upload-file FILE "$URL"`` works as is.
        """
        upload_id = self._new_id()
        key = upload_key(self._settings.prefix, upload_id)
        expires_in = self._settings.url_expires
        url = self._client.generate_presigned_url(
            "put_object",
            Params={"Bucket": self._settings.bucket, "Key": key},
            ExpiresIn=expires_in,
            HttpMethod="PUT",
        )
        return PutTicket(
            upload_id=upload_id,
            key=key,
            url=url,
            expires_in=expires_in,
            expires_at=_signed_at(url) + timedelta(seconds=expires_in),
        )


def _signed_at(url: str) -> datetime:
    # S3 counts X-Amz-Expires from X-Amz-Date, which botocore stamps from its own clock while
    # signing; reading it back makes expires_at exactly the moment S3 starts refusing the URL.
    (amz_date,) = parse_qs(urlsplit(url).query)["X-Amz-Date"]
    return datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=UTC)
