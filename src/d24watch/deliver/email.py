"""Email over SMTP (plain, STARTTLS or implicit TLS, optional login). smtplib blocks, so a send runs
in a thread; the message is accepted only when the server answers 250 to the data."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from email.message import EmailMessage

from d24watch.channels import EmailChannel
from d24watch.deliver.payload import Payload
from d24watch.deliver.render.email import email_message
from d24watch.errors import DeliveryError

log = logging.getLogger(__name__)


class EmailSender:
    def __init__(self, channel: EmailChannel) -> None:
        self.host = channel.smtp_host
        self.port = channel.smtp_port
        self.security = channel.security
        self.username = channel.username
        self.password = channel.password
        self.sender = channel.sender
        self.recipients = list(channel.to)
        self.timeout_s = channel.timeout_s
        self.ca_file = channel.ca_file

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
                    smtp.login(self.username, self.password.reveal() if self.password else "")
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
