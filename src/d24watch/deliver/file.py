"""The default channel: each delivery as a .json payload and an .eml message in a folder. Names
come from the delivery, and files appear by rename, so a retry rewrites the same two files."""

from __future__ import annotations

import json
import os
from pathlib import Path

from d24watch.channels import FileChannel
from d24watch.deliver.payload import Payload, payload_time
from d24watch.deliver.render.email import email_message, file_sender
from d24watch.errors import DeliveryError


class FileSender:
    def __init__(self, channel: FileChannel) -> None:
        self.directory: Path = channel.directory

    def stem(self, payload: Payload) -> str:
        when = payload_time(payload) or ""
        stamp = "".join(ch for ch in when if ch.isdigit())[:14] or "00000000000000"
        return f"{stamp}-{payload['event']}-{payload['delivery_id'][:12]}"

    async def send(self, payload: Payload) -> None:
        stem = self.stem(payload)
        message = email_message(payload, file_sender(), ["d24watch@localhost"])
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            _write(self.directory / f"{stem}.json", json.dumps(payload, ensure_ascii=False, indent=2).encode())
            _write(self.directory / f"{stem}.eml", message.as_bytes())
        except OSError as exc:
            raise DeliveryError(f"cannot write to {self.directory}: {exc.strerror or exc}") from None


def _write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
