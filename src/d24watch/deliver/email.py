"""Email over SMTP (plain, STARTTLS or implicit TLS, optional login). smtplib blocks, so a send runs
in a thread; the message is accepted only when the server answers 250 to the data."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

from d24watch.config import Secret
from d24watch.deliver.render import Payload, email_message
from d24watch.errors import DeliveryError

log = logging.getLogger(__name__)


class EmailSender:
    def __init__(self, options: Mapping[str, Any], password: Secret | None) -> None:
        self.host = str(options["smtp_host"])
        self.port = int(options["smtp_port"])
        self.security = str(options.get("security", "starttls"))
        self.username = options.get("username")
        self.password = password
        self.sender = str(options["from"])
        self.recipients = list(options["to"])
        self.timeout_s = float(options.get("timeout", 30))
        self.ca_file = options.get("ca_file")

    async def send(self, payload: Payload) -> None:
        message = email_message(payload, self.sender, self.recipients)
        await asyncio.to_thread(self._send, message)

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def _send(self, message: EmailMessage) -> None:
        try:
            if self.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=self._tls())
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=self._tls())
                if self.username:
                    smtp.login(str(self.username), self.password.reveal() if self.password else "")
                refused = smtp.send_message(message)
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            raise DeliveryError(f"SMTP {exc.smtp_code}: {' '.join(str(text).split())[:200]}") from None
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryError("SMTP server refused every recipient") from None
        except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
            raise DeliveryError(f"cannot send mail via {self.host}:{self.port}: {exc}") from None
        if refused:
            # Accepted for the others: sending again would repeat it to them, so it counts as sent.
            log.warning("email_recipients_refused recipients=%s", ", ".join(sorted(refused)))
