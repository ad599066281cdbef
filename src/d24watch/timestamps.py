"""Trusted timestamps (RFC 3161) for archived records: the only rfc3161-client import. A request
carries the SHA-256 of a record's bytes as stored; the Time-Stamping Authority's answer (a
TimeStampResp holding a signed token) is kept as it came, so `openssl ts -verify` and any RFC 3161
tool can check it too. The request goes through d24watch's fetcher, with its own timeout."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from d24watch.errors import FetchError
from d24watch.fetch import Fetcher

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"


@dataclass(frozen=True, slots=True)
class Stamp:
    token: bytes  # the TimeStampResp, DER, as the TSA answered
    gen_time: str  # the time the TSA vouches for, ISO 8601 UTC


def request_for(record: bytes) -> tuple[bytes, bytes]:
    """(the DER TimeStampReq over SHA-256 of `record`, the nonce-free imprint it asks for)."""
    from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

    request = TimestampRequestBuilder().data(record).hash_algorithm(HashAlgorithm.SHA256).nonce(nonce=True).build()
    return request.as_bytes(), hashlib.sha256(record).digest()


async def stamp(fetcher: Fetcher, tsa_url: str, record: bytes) -> Stamp:
    """Ask the TSA to timestamp `record`; raises FetchError when it cannot be had or is not right."""
    from rfc3161_client import PKIStatus, decode_timestamp_response

    der, imprint = request_for(record)
    answer = await fetcher.post(tsa_url, der, content_type=QUERY_TYPE, accept=REPLY_TYPE, trusted=True)
    try:
        response = decode_timestamp_response(answer.body)
    except ValueError as exc:
        raise FetchError(tsa_url, f"the TSA's answer is not a TimeStampResp ({exc})") from None
    if PKIStatus(response.status) not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        raise FetchError(tsa_url, f"the TSA refused the request (status {response.status})")
    if response.tst_info.message_imprint.message != imprint:
        raise FetchError(tsa_url, "the TSA's token covers another hash than the one asked for")
    when = response.tst_info.gen_time
    return Stamp(answer.body, when.strftime("%Y-%m-%dT%H:%M:%SZ"))


def check_token(token: bytes, sha256_hex: str, ca_file: Path | None) -> str | None:
    """None when `token` is a granted TimeStampResp over `sha256_hex` and, with `ca_file`, signed
    by a TSA certificate (extended key usage timeStamping) that chains to a CA in it; else what is
    wrong. Without a CA only the token's content is checked, not who signed it."""
    from cryptography import x509
    from rfc3161_client import PKIStatus, VerificationError, VerifierBuilder, decode_timestamp_response

    try:
        response = decode_timestamp_response(token)
    except ValueError as exc:
        return f"not a timestamp token ({exc})"
    if PKIStatus(response.status) not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        return f"the TSA did not grant it (status {response.status})"
    try:
        expected = bytes.fromhex(sha256_hex)
    except ValueError:
        return "the recorded hash is not hexadecimal"
    if response.tst_info.message_imprint.message != expected:
        return "the token covers another hash than the record's"
    if ca_file is None:
        return None
    builder = VerifierBuilder()
    for root in x509.load_pem_x509_certificates(ca_file.read_bytes()):
        builder = builder.add_root_certificate(root)
    try:
        builder.build().verify(response, expected)
    except (VerificationError, ValueError) as exc:
        return f"the token does not verify against {ca_file.name} ({exc})"
    return None
