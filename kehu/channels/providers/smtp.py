"""E-mail over SMTP: plain, STARTTLS or implicit TLS, with or without authentication. A dispatcher keeps one
connection per account open across its batches (each dispatcher is one connection of the pool: run more workers
for more), reconnecting after ``messages_per_connection`` messages or when the server drops it.

Each message is multipart (text and HTML), carries a Message-ID made from kehu's message id, and marketing mail
carries ``List-Unsubscribe`` with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058).

Outcomes: accepted → sent; a recipient refused with 5xx (no such mailbox, 5.1.x) → suppress as a hard bounce;
4xx anywhere → retry; a refused sender or content (5xx) → failed; a connection that fails before the message is
given → retry; one lost after the message's data went out, before the server answered → unknown (SMTP has no way
to ask whether it arrived, so the message is not sent twice)."""

from __future__ import annotations

import base64
import contextlib
import re
import secrets
import smtplib
import ssl
from email.header import Header
from email.utils import formataddr, formatdate
from typing import Any

import httpx

from kehu.channels.providers import Outcome, Outgoing, provider
from kehu.channels.providers.errors import OutcomeUnknown

# an address as SMTP carries it: no spaces, angle brackets or line breaks (anything else is the server's to judge)
_ADDRESS = re.compile(r"[^\s<>@]+@[^\s<>@]+")


def _header(value: str) -> str:
    """A header's value, as RFC 2047 encoded words where it is not ASCII."""
    return value if value.isascii() else Header(value, "utf-8").encode()


def _part(subtype: str, content: str) -> str:
    encoded = base64.encodebytes(content.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            f"{encoded}")


def _needs_utf8(*addresses: str) -> bool:
    return any(not address.isascii() for address in addresses)


class Smtp:
    name = "smtp"
    idempotent = False

    def __init__(self, config: dict[str, Any], secrets: dict[str, Any]) -> None:
        self.host = str(config.get("host") or "127.0.0.1")
        self.port = int(config.get("port") or 25)
        self.security = str(config.get("security") or "none")  # none | starttls | ssl
        self.username = str(config.get("username") or "")
        self.password = str(secrets.get("password") or "")
        self.sender = str(config.get("from_address") or "noreply@example.com")
        self.sender_name = str(config.get("from_name") or "")
        self.reply_to = str(config.get("reply_to") or "")
        self.domain = self.sender.rsplit("@", 1)[-1]
        self.per_connection = int(config.get("messages_per_connection") or 500)
        self.timeout = float(config.get("timeout") or 30)
        self.verify_tls = bool(config.get("verify_tls", True))
        self.connection: smtplib.SMTP | None = None
        self.sent_on_connection = 0

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self) -> smtplib.SMTP:
        if self.connection is not None and self.sent_on_connection < self.per_connection:
            return self.connection
        self.close()
        if self.security == "ssl":
            connection: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                                        context=self._context())
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.security == "starttls":
                connection.starttls(context=self._context())
        if self.username:
            connection.login(self.username, self.password)
        self.connection, self.sent_on_connection = connection, 0
        return connection

    def build(self, message: Outgoing) -> str:
        """The e-mail as it goes on the wire: headers (non-ASCII ones as RFC 2047 encoded words), then the text
        and, with HTML, a multipart/alternative of both, each UTF-8 in base64. Written out directly: the standard
        library's generator takes four times as long, which counts at a thousand e-mails a second (tests read
        what arrives with the standard library's parser)."""
        headers = [("From", formataddr((self.sender_name, self.sender)) if self.sender_name else self.sender),
                   ("To", message.address), ("Subject", _header(message.subject or "")),
                   ("Date", formatdate(localtime=False)),
                   ("Message-ID", f"<kehu-{message.message_id}@{self.domain}>"), ("MIME-Version", "1.0")]
        if self.reply_to:
            headers.append(("Reply-To", self.reply_to))
        headers += [(name, _header(value)) for name, value in message.headers.items()]
        text_part = _part("plain", message.text or "")
        if message.html:
            boundary = f"=_kehu_{message.message_id}_{secrets.token_hex(8)}"
            headers.append(("Content-Type", f'multipart/alternative; boundary="{boundary}"'))
            body = (f"--{boundary}\r\n{text_part}\r\n--{boundary}\r\n{_part('html', message.html)}\r\n"
                    f"--{boundary}--\r\n")
        else:
            head, _, body = text_part.partition("\r\n\r\n")
            headers += [tuple(line.split(": ", 1)) for line in head.split("\r\n")]  # type: ignore[misc]
        return "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n" + body

    def send(self, message: Outgoing) -> Outcome:
        if not _ADDRESS.fullmatch(message.address):  # nothing that could end the command early reaches the server
            return Outcome("suppress", error="not an e-mail address", suppress_reason="invalid")
        utf8 = _needs_utf8(self.sender, message.address)
        mail = self.build(message).encode("utf-8" if utf8 else "ascii", errors="strict")
        try:
            connection = self._connect()
            connection.ehlo_or_helo_if_needed()
            # the envelope step by step, so that a failure is known to lie before or after the message was given
            # (the commands written out: smtplib's address parsing costs more than the rest of the hand-over)
            option = " SMTPUTF8" if utf8 and connection.has_extn("smtputf8") else ""
            code, reply = connection.docmd("mail", f"FROM:<{self.sender}>{option}")
            if code != 250:
                connection.rset()
                return Outcome("retry" if 400 <= code < 500 else "failed",
                               error=f"sender refused {code}: {reply.decode(errors='replace')}"[:300])
            code, reply = connection.docmd("rcpt", f"TO:<{message.address}>")
            if code not in (250, 251):
                connection.rset()
                return self._refused(code, reply)
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            return Outcome("retry", error=f"before the message was given: {exc}"[:300])
        try:
            code, reply = connection.data(mail)
        except smtplib.SMTPDataError as exc:
            return Outcome("retry" if 400 <= exc.smtp_code < 500 else "failed",
                           error=f"data refused {exc.smtp_code}: {exc.smtp_error!r}"[:300])
        except (OSError, smtplib.SMTPException) as exc:
            self.connection = None
            raise OutcomeUnknown(f"no answer after the message was given: {exc}") from None
        self.sent_on_connection += 1
        if code != 250:
            return Outcome("retry" if 400 <= code < 500 else "failed",
                           error=f"{code} {reply.decode(errors='replace')}"[:300])
        return Outcome("sent", provider_message_id=f"<kehu-{message.message_id}@{self.domain}>")

    @staticmethod
    def _refused(code: int, reply: bytes) -> Outcome:
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        if 400 <= code < 500:
            return Outcome("retry", error=f"{code} {text}"[:300])
        return Outcome("suppress", error=f"{code} {text}"[:300], suppress_reason="hard_bounce")

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.connection.quit()
            self.connection = None


@provider("smtp")
def _smtp(config: dict[str, Any], secrets: dict[str, Any], http: httpx.Client) -> Smtp:
    return Smtp(config, secrets)
