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
from email.utils import formataddr, formatdate
from typing import Any

import httpx

from kehu.channels.providers import Outcome, Outgoing, provider
from kehu.channels.providers.errors import OutcomeUnknown

# an address as SMTP carries it: no spaces, angle brackets or line breaks (anything else is the server's to judge)
_ADDRESS = re.compile(r"[^\s<>@]+@[^\s<>@]+")


_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
# a refused recipient that is the address's fault (5.1.x: no such mailbox or domain, 5.2.1: disabled), or a
# bare 550/551/553 from a server that gives no enhanced code; any other 5xx (relay denied, policy) is the sender's
_BAD_MAILBOX = re.compile(r"^\s*5\.(1\.\d+|2\.1)\b")


def _header(value: str) -> str:
    """A header's value, as RFC 2047 encoded words where it is not ASCII: UTF-8 in base64, at most 45 bytes (60
    characters of base64, 72 with the markers) a word so each stays under RFC 2047's 75, never splitting a
    character, words folded onto lines of their own. (The standard library's Header does the same at a tenth of
    the speed, which counts at a thousand e-mails a second.)"""
    value = _CONTROLS.sub(" ", value)  # a line break in a subject would start a header (or the body) of its own
    if value.isascii():
        return value
    words: list[bytes] = []
    chunk = b""
    for character in value:
        encoded = character.encode("utf-8")
        if len(chunk) + len(encoded) > 45:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(word).decode('ascii')}?=" for word in words)


def _base64_lines(data: bytes) -> str:
    """Base64 in lines of 76 characters, each ended by CRLF (RFC 2045)."""
    encoded = base64.b64encode(data).decode("ascii")
    return "".join(encoded[i:i + 76] + "\r\n" for i in range(0, len(encoded), 76))


def _part(subtype: str, content: str) -> str:
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            f"{_base64_lines(content.encode('utf-8'))}")


_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


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
        utf8 = _needs_utf8(self.sender, message.address, self.reply_to)
        try:
            mail = self.build(message).encode("utf-8" if utf8 else "ascii", errors="strict")
        except UnicodeEncodeError as exc:  # a header no encoding covers: this message can never be sent as it is
            return Outcome("failed", error=f"cannot be written for SMTP: {exc}"[:300])
        try:
            connection = self._connect()
            connection.ehlo_or_helo_if_needed()
            # the commands written out (smtplib's address parsing costs more than the rest of the hand-over); with
            # PIPELINING (RFC 2920) the envelope and DATA go in one write and their three answers come back
            # together, else one at a time. Either way the message itself goes only after DATA's 354, so a
            # failure is known to lie before or after the message was given.
            if utf8 and not connection.has_extn("smtputf8"):
                return Outcome("failed", error="an address is not ASCII and the server does not offer SMTPUTF8")
            option = " SMTPUTF8" if utf8 else ""
            if option:
                connection.command_encoding = "utf-8"
            envelope = f"MAIL FROM:<{self.sender}>{option}\r\nRCPT TO:<{message.address}>\r\n"
            if connection.has_extn("pipelining"):
                connection.send(envelope + "DATA\r\n")
                answers = [connection.getreply() for _ in range(3)]
            else:
                answers = []
                for command in (*envelope.split("\r\n")[:2], "DATA"):
                    connection.send(command + "\r\n")
                    answers.append(connection.getreply())
                    if answers[-1][0] not in (250, 251, 354):
                        break
            refused = self._envelope_refused(answers)
            if refused is not None:
                if answers[-1][0] == 354:  # a server that took DATA though it refused the envelope: end it empty
                    connection.send(".\r\n")
                    connection.getreply()
                connection.rset()
                return refused
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            return Outcome("retry", error=f"before the message was given: {exc}"[:300])
        try:
            body = _LEADING_DOT.sub(b"..", mail)
            connection.send(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
            code, reply = connection.getreply()
        except (OSError, smtplib.SMTPException) as exc:
            self.connection = None
            raise OutcomeUnknown(f"no answer after the message was given: {exc}") from None
        self.sent_on_connection += 1
        if code != 250:
            return Outcome("retry" if 400 <= code < 500 else "failed",
                           error=f"{code} {reply.decode(errors='replace')}"[:300])
        return Outcome("sent", provider_message_id=f"<kehu-{message.message_id}@{self.domain}>")

    @classmethod
    def _envelope_refused(cls, answers: list[tuple[int, bytes]]) -> Outcome | None:
        """What the answers to MAIL, RCPT and DATA say when they do not all say yes (None when they do)."""
        (mail_code, mail_reply), *rest = answers
        if mail_code != 250:
            return Outcome("retry" if 400 <= mail_code < 500 else "failed",
                           error=f"sender refused {mail_code}: {mail_reply.decode(errors='replace')}"[:300])
        if not rest:
            return Outcome("retry", error="the server did not answer the recipient")
        rcpt_code, rcpt_reply = rest[0]
        if rcpt_code not in (250, 251):
            return cls._refused(rcpt_code, rcpt_reply)
        if len(rest) < 2 or rest[1][0] != 354:
            code, reply = rest[1] if len(rest) > 1 else (0, b"")
            return Outcome("retry" if 400 <= code < 500 or not code else "failed",
                           error=f"data refused {code}: {reply.decode(errors='replace')}"[:300])
        return None

    @staticmethod
    def _refused(code: int, reply: bytes) -> Outcome:
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        if 400 <= code < 500:
            return Outcome("retry", error=f"{code} {text}"[:300])
        enhanced = re.match(r"^\s*\d\.\d+\.\d+", text)
        if _BAD_MAILBOX.match(text) or (enhanced is None and code in (550, 551, 553)):
            return Outcome("suppress", error=f"{code} {text}"[:300], suppress_reason="hard_bounce")
        return Outcome("failed", error=f"{code} {text}"[:300])  # relay denied, policy: not the address's fault

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.connection.quit()
            self.connection = None


@provider("smtp")
def _smtp(config: dict[str, Any], secrets: dict[str, Any], http: httpx.Client) -> Smtp:
    return Smtp(config, secrets)
