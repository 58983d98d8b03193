"""PayloadStore on S3: content-addressed objects `sha256/ab/<digest>`, written once.

A put is one conditional PutObject (`If-None-Match: *`): a payload that is already there
answers 412 PreconditionFailed, which means "already stored" (same key, so same bytes); the
object is then stamped again (a CopyObject onto itself with new metadata: its `dg-stored-at`,
the store's clock at the last put, which `delete_if_idle` reads, `ports.payload_store`).
No HEAD first, so a new object costs one request, a repeated one two. A get checks the digest, so
bytes altered in the bucket are reported (`PayloadCorrupted`), never returned.

A ref may also point at an object outside the content-addressed prefix — an uploaded document
(`s3://uploads/in/report.json?versionId=...`) that an S3-triggered run starts from. It is read
from where it is, pinned to its version, and digest-checked like any other payload.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from durable_graph.backends.aws import names
from durable_graph.backends.aws.errors import AwsRequestFailed, error_code, translate
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import Clock, SystemClock
from durable_graph.errors import PayloadCorrupted
from durable_graph.ports.payload_store import IdleDelete, StoredObject

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MISSING_CODES = frozenset({"NoSuchKey", "404", "NoSuchVersion", "NotFound"})
STAMP = "dg-stored-at"  # object metadata: the store's clock at the last put (epoch seconds)
READ_CHUNK = 1024 * 1024
DELETE_BATCH = 1000  # versions per DeleteObjects request (S3's most)


def object_uri(bucket: str, key: str, version_id: str | None = None) -> str:
    uri = f"s3://{bucket}/{quote(key, safe='/')}"
    return f"{uri}?versionId={quote(version_id, safe='')}" if version_id else uri


def parse_object_uri(uri: str) -> tuple[str, str, str | None] | None:
    """(bucket, key, version) of an `s3://` uri, or None for any other uri."""
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc or len(parts.path) < 2:
        return None
    version = parse_qs(parts.query).get("versionId", [None])[0]
    return parts.netloc, unquote(parts.path[1:]), version


class S3PayloadStore:
    """Implements `durable_graph.ports.payload_store.PayloadStore`.

    Args:
        client: a boto3 S3 client.
        bucket: the payload bucket.
        prefix: where content-addressed objects live (`names.PAYLOAD_PREFIX`).
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str = names.PAYLOAD_PREFIX,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.clock = clock or SystemClock()

    def key_for(self, digest: str) -> str:
        return f"{self.prefix}{digest[:2]}/{digest}"

    def put(self, data: bytes, content_type: str = "application/octet-stream") -> PayloadRef:
        raw = hashlib.sha256(data).digest()
        digest = raw.hex()
        key = self.key_for(digest)
        stamp = repr(self.clock.now().timestamp())
        try:
            # Write once: refuse to replace an existing object. Content addressing makes
            # "exists" mean "holds these very bytes", so a 412 is success.
            self._put_object(key, data, raw, content_type, stamp, only_new=True)
        except ClientError as exc:
            if error_code(exc) != "PreconditionFailed":
                raise translate(exc, "PutObject payload") from exc
            self._restamp(key, content_type, stamp, data, raw)
        except BotoCoreError as exc:
            raise translate(exc, "PutObject payload") from exc
        return PayloadRef(
            uri=object_uri(self.bucket, key),
            sha256=digest,
            size=len(data),
            content_type=content_type,
        )

    def _put_object(
        self, key: str, data: bytes, raw: bytes, content_type: str, stamp: str, *, only_new: bool
    ) -> None:
        """One PutObject of a payload: stamped, and checked by S3 against its digest `raw`
        (a mismatch is refused); `only_new`: refused (412) if the object exists."""
        condition: dict[str, Any] = {"IfNoneMatch": "*"} if only_new else {}
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            Metadata={STAMP: stamp},
            ChecksumSHA256=base64.b64encode(raw).decode("ascii"),
            **condition,
        )

    def _restamp(self, key: str, content_type: str, stamp: str, data: bytes, raw: bytes) -> None:
        """The bytes are there already: stamp them again (a copy onto themselves with new
        metadata), or, deleted meanwhile, write them anew."""
        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": key},
                MetadataDirective="REPLACE",
                Metadata={STAMP: stamp},
                ContentType=content_type,
            )
        except ClientError as exc:
            if error_code(exc) not in MISSING_CODES and error_code(exc) != "NoSuchKey":
                raise translate(exc, "CopyObject payload stamp") from exc
            self._put_object(key, data, raw, content_type, stamp, only_new=False)
        except BotoCoreError as exc:
            raise translate(exc, "CopyObject payload stamp") from exc

    def delete_if_idle(self, ref: PayloadRef, since: datetime) -> IdleDelete:
        """The stamp (object metadata; `LastModified` for an object written before stamps) is
        read, then the object deleted when it is older than `since`: not one atomic step on
        S3, which has no delete conditional on metadata, so a put landing between the two
        requests (milliseconds) is the window left (`docs/record-format.md` §13)."""
        key = self.key_for(ref.sha256)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in MISSING_CODES:
                return "absent"
            raise translate(exc, "HeadObject payload") from exc
        except BotoCoreError as exc:
            raise translate(exc, "HeadObject payload") from exc
        stamp = head.get("Metadata", {}).get(STAMP)
        stored = float(stamp) if stamp else head["LastModified"].timestamp()
        if stored >= since.timestamp():
            return "in_use"
        self.delete(ref)
        return "deleted"

    def list_objects(self, after: str = "", limit: int = 1000) -> list[StoredObject]:
        """ListObjectsV2 under the prefix, after `after`'s key: one request per 1,000 objects.
        Each object's current version (`LastModified`, the bucket's clock, which the copy that
        stamps a put of bytes already there moves too); a key whose current version is a delete
        marker is not listed."""
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
        if after:
            request["StartAfter"] = self.key_for(after)
        found: list[StoredObject] = []
        while len(found) < limit:
            request["MaxKeys"] = min(DELETE_BATCH, limit - len(found))
            try:
                page = self.client.list_objects_v2(**request)
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, "ListObjectsV2 payloads") from exc
            for entry in page.get("Contents", []):
                digest = entry["Key"].rsplit("/", 1)[1]
                found.append(StoredObject(digest, int(entry["Size"]), entry["LastModified"]))
            if not page.get("IsTruncated") or not page.get("NextContinuationToken"):
                break
            request["ContinuationToken"] = page["NextContinuationToken"]
        return found

    def delete_idle(
        self, digests: Sequence[str], since: datetime, *, dry_run: bool = False
    ) -> list[str]:
        """Per object, its versions listed (ListObjectVersions of its key) and then its stamp
        read (a HEAD); then the versions listed of those put before `since` deleted, 1,000 to a
        DeleteObjects request. A put after the listing writes a version this does not delete
        (on a versioned bucket the object stays); on an unversioned one a put between the HEAD
        and the delete is the window left, as for `delete_if_idle`."""
        doomed: list[tuple[str, str]] = []
        deleted: list[str] = []
        for digest in digests:
            key = self.key_for(digest)
            versions = self._versions(key)
            if versions and self._stamp(key) < since.timestamp():
                doomed += [(key, version) for version in versions]
                deleted.append(digest)
        for start in range(0, 0 if dry_run else len(doomed), DELETE_BATCH):
            self._delete_versions(doomed[start : start + DELETE_BATCH])
        return sorted(deleted)

    def _versions(self, key: str) -> list[str]:
        """The version ids of `key` (delete markers included; "null" on an unversioned
        bucket)."""
        try:
            listing = self.client.list_object_versions(Bucket=self.bucket, Prefix=key)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "ListObjectVersions payload") from exc
        entries = [*listing.get("Versions", []), *listing.get("DeleteMarkers", [])]
        return [str(v.get("VersionId") or "null") for v in entries if v.get("Key") == key]

    def _stamp(self, key: str) -> float:
        """The object's stamp (its `dg-stored-at`, else `LastModified`); a key whose newest
        version is a delete marker has none: 0, gone for readers already."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in MISSING_CODES or error_code(exc) == "405":
                return 0.0
            raise translate(exc, "HeadObject payload") from exc
        except BotoCoreError as exc:
            raise translate(exc, "HeadObject payload") from exc
        stamp = head.get("Metadata", {}).get(STAMP)
        return float(stamp) if stamp else head["LastModified"].timestamp()

    def _delete_versions(self, versions: list[tuple[str, str]]) -> None:
        """One DeleteObjects of up to 1,000 (key, version) pairs; a version that could not be
        deleted fails the batch (the collector runs again later)."""
        objects: list[Any] = [
            {"Key": key} if version == "null" else {"Key": key, "VersionId": version}
            for key, version in versions
        ]
        try:
            answer = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "DeleteObjects payloads") from exc
        errors = answer.get("Errors", [])
        if errors:
            code = errors[0].get("Code", "")
            raise AwsRequestFailed(
                f"DeleteObjects payloads: {len(errors)} of {len(objects)} failed, first "
                f"{errors[0].get('Key')}: {code} {errors[0].get('Message', '')}".strip(),
                aws_code=code,
            )

    def get(self, ref: PayloadRef) -> bytes:
        located = parse_object_uri(ref.uri)
        if located is None or located[1].startswith(self.prefix):
            bucket, key, version = self.bucket, self.key_for(ref.sha256), None
        else:
            bucket, key, version = located
        request: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version:
            request["VersionId"] = version
        try:
            data = self.client.get_object(**request)["Body"].read()
        except ClientError as exc:
            if error_code(exc) in MISSING_CODES:
                raise PayloadCorrupted(
                    f"payload {ref.sha256} is missing from s3://{bucket}/{key}"
                ) from exc
            raise translate(exc, "GetObject payload") from exc
        except BotoCoreError as exc:
            raise translate(exc, "GetObject payload") from exc
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise PayloadCorrupted(
                f"payload {ref.sha256} at s3://{bucket}/{key} does not match its digest"
            )
        return bytes(data)

    def delete(self, ref: PayloadRef) -> bool:
        """Delete the content-addressed object, every version of it on a versioned bucket
        (a delete marker alone would leave the bytes readable by version)."""
        key = self.key_for(ref.sha256)
        try:
            listing = self.client.list_object_versions(Bucket=self.bucket, Prefix=key)
            versions = [
                v["VersionId"]
                for v in [*listing.get("Versions", []), *listing.get("DeleteMarkers", [])]
                if v.get("Key") == key and "VersionId" in v
            ]
            found = any(v.get("Key") == key for v in listing.get("Versions", []))
            for version in versions:
                self.client.delete_object(Bucket=self.bucket, Key=key, VersionId=version)
            if not versions:
                self.client.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            raise translate(exc, "DeleteObject payload") from exc
        except BotoCoreError as exc:
            raise translate(exc, "DeleteObject payload") from exc
        return found

    def ref_for_object(
        self, bucket: str, key: str, version_id: str | None, content_type: str | None = None
    ) -> PayloadRef:
        """A digest-pinned ref to an existing object (an upload), read once to hash it."""
        request: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            request["VersionId"] = version_id
        try:
            response = self.client.get_object(**request)
            hasher = hashlib.sha256()
            size = 0
            body = response["Body"]
            while chunk := body.read(READ_CHUNK):
                hasher.update(chunk)
                size += len(chunk)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"GetObject s3://{bucket}/{key}") from exc
        return PayloadRef(
            uri=object_uri(bucket, key, version_id or response.get("VersionId")),
            sha256=hasher.hexdigest(),
            size=size,
            content_type=content_type or response.get("ContentType") or "application/octet-stream",
        )
