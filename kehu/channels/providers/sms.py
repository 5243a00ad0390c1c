"""SMS through Tencent Cloud, Alibaba Cloud, or any HTTP gateway that speaks our small signed-JSON contract.

- ``tencent_sms``: SMS API 2021-01-11 ``SendSms``, signed with TC3-HMAC-SHA256 (Tencent "Signature v3").
- ``aliyun_sms``: Dysmsapi 2017-05-25 ``SendSms``, RPC style, signature version 1.0 (HMAC-SHA1).
- ``http_sms``: POST ``config.url`` with ``{"message_id", "to", "text", "template", "params"}``; headers
  ``X-Kehu-Timestamp``, ``X-Kehu-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`` and
  ``Idempotency-Key: kehu-<message_id>``. The gateway answers 2xx (optionally ``{"id": …}``), 400/422 with
  ``{"error": "invalid_number"}`` (or ``"unsubscribed"``) for a bad address, 429/5xx (``Retry-After``) to be asked
  again later, any other 4xx for a request it will never accept.

Neither cloud's ``SendSms`` takes an idempotency key (Tencent's ``SessionContext`` and Aliyun's ``OutId`` are only
echoed back), so a repeat after a lost answer is a second text message: both are ``idempotent = False``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from kehu.channels.providers import Outcome, Outgoing, Receipt, provider
from kehu.channels.providers.errors import (
    CHINA,
    OutcomeUnknown,
    retry_after,
    seconds_until_china_hour,
    short,
    transport_outcome,
    unreadable_response,
)

Clock = Callable[[], float]
# E.164 as the identity layer stores it (+8613800138000); a bare national number is tolerated
_PHONE = re.compile(r"^\+?[1-9]\d{5,14}$")


def _required(values: Mapping[str, Any], key: str, what: str) -> str:
    value = values.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} {key!r} is required")  # the key's name only, never a value
    return value


def _json_bytes(body: Any) -> bytes:
    """The exact bytes that are both signed and sent (compact, UTF-8, no \\u escapes)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _records(body: bytes) -> list[dict[str, Any]]:
    """A receipt push is a JSON array of objects (a single object is accepted too)."""
    data = json.loads(body.decode("utf-8"))
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ValueError("receipt body is not a JSON array")
    return [item for item in data if isinstance(item, dict)]


def _invalid_address(provider_name: str) -> Outcome:
    # Refused here, without paying for a request the provider would refuse too
    return Outcome("suppress", error=f"{provider_name}: address is not a phone number", suppress_reason="invalid")


# ---------------------------------------------------------------------------------------------------------------
# Tencent Cloud SMS
# ---------------------------------------------------------------------------------------------------------------

TC3_ALGORITHM = "TC3-HMAC-SHA256"
TENCENT_VERSION = "2021-01-11"
TENCENT_CONTENT_TYPE = "application/json; charset=utf-8"
# Tencent's current documentation signs these three; its older example signs only content-type and host
TC3_SIGNED_HEADERS = ("content-type", "host", "x-tc-action")


def tc3_canonical_request(*, host: str, action: str, payload: bytes, content_type: str = TENCENT_CONTENT_TYPE,
                          signed_headers: Sequence[str] = TC3_SIGNED_HEADERS) -> str:
    """Step 1 of Signature v3: the canonical request of a ``POST /`` with a JSON body (keys and values lower-cased)."""
    values = {"content-type": content_type, "host": host, "x-tc-action": action}
    canonical_headers = "".join(f"{name}:{values[name].strip().lower()}\n" for name in signed_headers)
    hashed_payload = hashlib.sha256(payload).hexdigest()
    return "\n".join(["POST", "/", "", canonical_headers, ";".join(signed_headers), hashed_payload])


def tc3_authorization(*, secret_id: str, secret_key: str, service: str, host: str, action: str, payload: bytes,
                      timestamp: int, content_type: str = TENCENT_CONTENT_TYPE,
                      signed_headers: Sequence[str] = TC3_SIGNED_HEADERS) -> str:
    """The ``Authorization`` header of Tencent Cloud API 3.0 (TC3-HMAC-SHA256), steps 1–4 as documented."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")  # the UTC date, never the local one
    scope = f"{date}/{service}/tc3_request"
    canonical = tc3_canonical_request(host=host, action=action, payload=payload, content_type=content_type,
                                      signed_headers=signed_headers)
    string_to_sign = "\n".join([TC3_ALGORITHM, str(timestamp), scope,
                                hashlib.sha256(canonical.encode("utf-8")).hexdigest()])

    def sign(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()

    key = sign(sign(sign(("TC3" + secret_key).encode("utf-8"), date), service), "tc3_request")
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return (f"{TC3_ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={';'.join(signed_headers)}, "
            f"Signature={signature}")


# The address is bad: nothing sent to it again until someone says otherwise.
_TENCENT_SUPPRESS = {
    # "usually the user unsubscribed (TD) or the carrier's do-not-disturb list" — Tencent's error code list
    "FailedOperation.PhoneNumberInBlacklist": "unsubscribed",
    "FailedOperation.PhoneNumberOnBlacklist": "unsubscribed",
    "InvalidParameterValue.IncorrectPhoneNumber": "invalid",
}
# Throttles that pass: try again after (seconds).
_TENCENT_RETRY_AFTER = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
    "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
    "LimitExceeded.DeliveryFrequencyLimit": 60.0,
    # The account's own daily volume cap (set in the console, national or international): the message is fine and
    # an operator can raise the cap at once, so look again in ten minutes rather than drop a whole broadcast.
    "LimitExceeded.AppDailyLimit": 600.0,
    "LimitExceeded.DailyLimit": 600.0,
}
# Per-number daily caps are failed, not retried: they exist to stop a customer being flooded, and the message
# would go out tomorrow at the earliest, when a code or a same-day reminder is stale. Journeys can send anew.
_TENCENT_FAILED = {
    "LimitExceeded.PhoneNumberDailyLimit",
    "LimitExceeded.PhoneNumberSameContentDailyLimit",
    # "Internal" in name only: our clock is off by more than the allowed skew, or we called an action that does not
    # exist. No repeat fixes either until someone does.
    "InternalError.RequestTimeException",
    "InternalError.RestApiInterfaceNotExist",
}


def tencent_outcome(code: str, message: str, *, now: float) -> Outcome:
    """Classify one Tencent error code (top-level ``Response.Error.Code`` or a number's ``SendStatusSet[].Code``)."""
    error = short(f"tencent_sms {code}: {message}")
    if code in _TENCENT_SUPPRESS:
        return Outcome("suppress", error=error, suppress_reason=_TENCENT_SUPPRESS[code])
    if code in _TENCENT_RETRY_AFTER:
        return Outcome("retry", error=error, retry_after=_TENCENT_RETRY_AFTER[code])
    if code == "FailedOperation.MarketingSendTimeConstraint":  # marketing SMS only 08:00–22:00 China time
        hour = datetime.fromtimestamp(now, CHINA).hour
        wait = 60.0 if 8 <= hour < 22 else seconds_until_china_hour(8, now=now)
        return Outcome("retry", error=error, retry_after=wait)
    if code in _TENCENT_FAILED:
        return Outcome("failed", error=error)
    if code.startswith("RequestLimitExceeded"):  # the API's own request-rate limit
        return Outcome("retry", error=error, retry_after=1.0)
    if code.startswith("InternalError"):  # Timeout, SendAndRecvFail, OtherError …: Tencent asks to try again
        return Outcome("retry", error=error)
    # AuthFailure.*, UnauthorizedOperation.*, unapproved template or signature, bad parameters, balance, mixed
    # domestic and international numbers, unsupported region, and anything undocumented: a repeat is the same
    return Outcome("failed", error=error)


class TencentSms:
    name = "tencent_sms"
    idempotent = False  # SendSms takes no idempotency key: a repeat is a second text (and a second fee)

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any], http: httpx.Client, *,
                 now: Clock = time.time) -> None:
        self.sdk_app_id = _required(config, "sdk_app_id", "config")
        self.sign_name = str(config.get("sign_name") or "")  # required by Tencent for mainland numbers only
        self.region = config.get("region") or "ap-guangzhou"
        self.endpoint = config.get("endpoint") or "sms.tencentcloudapi.com"
        self.service = self.endpoint.split(".", 1)[0]
        self._secret_id = _required(secrets, "secret_id", "secret")
        self._secret_key = _required(secrets, "secret_key", "secret")
        self._http = http
        self._now = now

    def send(self, message: Outgoing) -> Outcome:
        if not message.provider_template:
            return Outcome("failed", error="tencent_sms: no TemplateId (provider_template) for this message")
        if not _PHONE.match(message.address):
            return _invalid_address(self.name)
        body = {
            "PhoneNumberSet": [message.address],
            "SmsSdkAppId": self.sdk_app_id,
            "SignName": self.sign_name,
            "TemplateId": message.provider_template,
            "TemplateParamSet": list(message.params),
            "SessionContext": str(message.message_id),
        }
        if not self.sign_name:
            del body["SignName"]
        payload = _json_bytes(body)
        timestamp = int(self._now())
        headers = {
            "Authorization": tc3_authorization(secret_id=self._secret_id, secret_key=self._secret_key,
                                               service=self.service, host=self.endpoint, action="SendSms",
                                               payload=payload, timestamp=timestamp),
            "Content-Type": TENCENT_CONTENT_TYPE,
            "Host": self.endpoint,
            "X-TC-Action": "SendSms",
            "X-TC-Version": TENCENT_VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self.region,
        }
        try:
            response = self._http.post(f"https://{self.endpoint}/", content=payload, headers=headers)
        except httpx.TransportError as exc:
            return transport_outcome(exc, provider=self.name, idempotent=self.idempotent)
        return self._outcome(response)

    def _outcome(self, response: httpx.Response) -> Outcome:
        now = self._now()
        data = _json(response)
        body = data.get("Response") if isinstance(data, dict) else None
        if not isinstance(body, dict):
            return unreadable_response(response, provider=self.name, idempotent=self.idempotent, now=now)
        error = body.get("Error")
        if isinstance(error, dict):
            return tencent_outcome(str(error.get("Code", "")), str(error.get("Message", "")), now=now)
        statuses = body.get("SendStatusSet")
        if not isinstance(statuses, list) or not statuses or not isinstance(statuses[0], dict):
            raise OutcomeUnknown(short(f"{self.name}: answer without SendStatusSet; it may have been delivered"))
        status = statuses[0]
        code = str(status.get("Code", ""))
        if code == "Ok":
            return Outcome("sent", provider_message_id=str(status.get("SerialNo") or "") or None)
        return tencent_outcome(code, str(status.get("Message", "")), now=now)

    def close(self) -> None:
        pass  # the HTTP client belongs to the dispatcher


def tencent_receipts(body: bytes, headers: dict[str, str], config: dict[str, Any],
                     secrets: dict[str, Any]) -> list[Receipt]:
    """Tencent's delivery-status callback: a JSON array of ``{"sid", "report_status", "errmsg", "description", …}``
    where ``sid`` is the ``SerialNo`` that ``SendSms`` returned."""
    receipts = []
    for item in _records(body):
        sid = item.get("sid")
        if not sid:
            continue
        if item.get("report_status") == "SUCCESS":
            receipts.append(Receipt(str(sid), "delivered"))
        else:
            detail = f"{item.get('errmsg') or ''}: {item.get('description') or ''}".strip(": ")
            receipts.append(Receipt(str(sid), "failed", error=short(f"tencent_sms {detail or 'FAIL'}")))
    return receipts


@provider("tencent_sms", receipts=tencent_receipts)
def _tencent_sms(config: dict[str, Any], secrets: dict[str, Any], http: httpx.Client) -> TencentSms:
    return TencentSms(config, secrets, http)


# ---------------------------------------------------------------------------------------------------------------
# Alibaba Cloud SMS (Dysmsapi)
# ---------------------------------------------------------------------------------------------------------------

ALIYUN_VERSION = "2017-05-25"


def aliyun_percent_encode(value: str) -> str:
    """RFC 3986 encoding as Alibaba documents it: only ``A-Z a-z 0-9 - _ . ~`` stay; space is %20, ``*`` is %2A."""
    return quote(value, safe="-_.~")


def aliyun_string_to_sign(params: Mapping[str, str], method: str = "GET") -> str:
    canonical = "&".join(f"{aliyun_percent_encode(k)}={aliyun_percent_encode(v)}"
                         for k, v in sorted(params.items()) if k != "Signature")
    return f"{method}&{aliyun_percent_encode('/')}&{aliyun_percent_encode(canonical)}"


def aliyun_signature(params: Mapping[str, str], access_key_secret: str, method: str = "GET") -> str:
    """Signature version 1.0: Base64(HMAC-SHA1(secret + "&", StringToSign))."""
    digest = hmac.new((access_key_secret + "&").encode("utf-8"),
                      aliyun_string_to_sign(params, method).encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _aliyun_number(address: str) -> str | None:
    """Mainland numbers as 11 digits without +86; others as country code + number without the plus."""
    if not _PHONE.match(address):
        return None
    if address.startswith("+86"):
        national = address[3:]
        return national if len(national) == 11 else None
    return address.lstrip("+")


_ALIYUN_RETRY = {"ServiceUnavailable", "InternalError", "isp.SYSTEM_ERROR", "isv.SYSTEM_ERROR",
                 "SignatureNonceUsed"}  # a nonce collision: the next attempt draws a new one


def aliyun_outcome(code: str, message: str, *, status: int) -> Outcome:
    """Classify an Alibaba SendSms ``Code`` that is not ``OK``."""
    error = short(f"aliyun_sms {code}: {message}")
    if code == "isv.MOBILE_NUMBER_ILLEGAL":
        return Outcome("suppress", error=error, suppress_reason="invalid")
    if code == "isv.BUSINESS_LIMIT_CONTROL":
        # Per-number flow control; the message names the window ("触发分钟级/小时级/天级流控"). The daily one is
        # failed for the reason given for Tencent's per-number daily limit; the others pass.
        if "天级" in message:
            return Outcome("failed", error=error)
        return Outcome("retry", error=error, retry_after=3600.0 if "小时级" in message else 60.0)
    if code in ("isv.DAY_LIMIT_CONTROL", "isv.MONTH_LIMIT_CONTROL"):  # the account's own volume cap
        return Outcome("retry", error=error, retry_after=600.0)
    if code.startswith("Throttling") or code in _ALIYUN_RETRY:
        return Outcome("retry", error=error)
    if status >= 500 and not code.startswith("isv."):
        return Outcome("retry", error=error)
    # isv.SMS_TEMPLATE_ILLEGAL, isv.SMS_SIGNATURE_ILLEGAL, isv.BLACK_KEY_CONTROL_LIMIT (a forbidden keyword in the
    # variables), InvalidAccessKeyId.*, SignatureDoesNotMatch, missing parameters, balance, permissions …
    return Outcome("failed", error=error)


class AliyunSms:
    name = "aliyun_sms"
    idempotent = False  # OutId is only echoed back; Dysmsapi does not deduplicate on it

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any], http: httpx.Client, *,
                 now: Clock = time.time, nonce: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self.sign_name = _required(config, "sign_name", "config")
        self.endpoint = config.get("endpoint") or "dysmsapi.aliyuncs.com"
        self.region = config.get("region") or "cn-hangzhou"
        self._access_key_id = _required(secrets, "access_key_id", "secret")
        self._access_key_secret = _required(secrets, "access_key_secret", "secret")
        self._http = http
        self._now = now
        self._nonce = nonce

    @staticmethod
    def template_param(message: Outgoing) -> dict[str, str]:
        """Alibaba templates name their variables (``${code}``), so ``fields`` map straight onto them. A message
        with positional ``params`` only becomes ``{"p1": …, "p2": …}``: such templates must call their variables
        ``${p1}``, ``${p2}`` …"""
        if message.fields:
            return dict(message.fields)
        return {f"p{i}": value for i, value in enumerate(message.params, start=1)}

    def send(self, message: Outgoing) -> Outcome:
        if not message.provider_template:
            return Outcome("failed", error="aliyun_sms: no TemplateCode (provider_template) for this message")
        number = _aliyun_number(message.address)
        if number is None:
            return _invalid_address(self.name)
        params = {
            "AccessKeyId": self._access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": str(message.message_id),
            "PhoneNumbers": number,
            "RegionId": self.region,
            "SignName": self.sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self._nonce(),
            "SignatureVersion": "1.0",
            "TemplateCode": message.provider_template,
            "Timestamp": datetime.fromtimestamp(self._now(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": ALIYUN_VERSION,
        }
        template_param = self.template_param(message)
        if template_param:
            params["TemplateParam"] = json.dumps(template_param, ensure_ascii=False, separators=(",", ":"))
        params["Signature"] = aliyun_signature(params, self._access_key_secret)
        # Encoded by hand, the same way as signed, so that no client-side re-encoding can change a byte
        query = "&".join(f"{aliyun_percent_encode(k)}={aliyun_percent_encode(v)}" for k, v in params.items())
        try:
            response = self._http.get(f"https://{self.endpoint}/?{query}")
        except httpx.TransportError as exc:
            return transport_outcome(exc, provider=self.name, idempotent=self.idempotent)
        data = _json(response)
        if not isinstance(data, dict) or not data.get("Code"):
            return unreadable_response(response, provider=self.name, idempotent=self.idempotent, now=self._now())
        code = str(data["Code"])
        if code == "OK":
            return Outcome("sent", provider_message_id=str(data.get("BizId") or "") or None)
        return aliyun_outcome(code, str(data.get("Message", "")), status=response.status_code)

    def close(self) -> None:
        pass


def aliyun_receipts(body: bytes, headers: dict[str, str], config: dict[str, Any],
                    secrets: dict[str, Any]) -> list[Receipt]:
    """Alibaba's ``SmsReport`` message: a JSON array of ``{"biz_id", "success", "err_code", "err_msg", …}``, where
    ``biz_id`` is the ``BizId`` that ``SendSms`` returned."""
    receipts = []
    for item in _records(body):
        biz_id = item.get("biz_id")
        if not biz_id:
            continue
        if item.get("success") is True:
            receipts.append(Receipt(str(biz_id), "delivered"))
        else:
            detail = f"{item.get('err_code') or ''}: {item.get('err_msg') or ''}".strip(": ")
            receipts.append(Receipt(str(biz_id), "failed", error=short(f"aliyun_sms {detail or 'failed'}")))
    return receipts


@provider("aliyun_sms", receipts=aliyun_receipts)
def _aliyun_sms(config: dict[str, Any], secrets: dict[str, Any], http: httpx.Client) -> AliyunSms:
    return AliyunSms(config, secrets, http)


# ---------------------------------------------------------------------------------------------------------------
# Any gateway speaking the signed-JSON contract
# ---------------------------------------------------------------------------------------------------------------

_HTTP_SMS_SUPPRESS = {"invalid_number": "invalid", "unsubscribed": "unsubscribed"}


def http_sms_signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 of ``"{timestamp}.{body}"``: what a gateway recomputes to trust a request."""
    mac = hmac.new(signing_secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class HttpSms:
    name = "http_sms"
    idempotent = True  # the gateway gets Idempotency-Key: kehu-<message_id> and must deduplicate on it

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any], http: httpx.Client, *,
                 now: Clock = time.time) -> None:
        self.url = _required(config, "url", "config")
        self._signing_secret = _required(secrets, "signing_secret", "secret")
        self._http = http
        self._now = now

    def send(self, message: Outgoing) -> Outcome:
        payload = _json_bytes({"message_id": message.message_id, "to": message.address, "text": message.text,
                               "template": message.provider_template, "params": list(message.params)})
        timestamp = str(int(self._now()))
        headers = {
            "Content-Type": "application/json",
            "X-Kehu-Timestamp": timestamp,
            "X-Kehu-Signature": http_sms_signature(self._signing_secret, timestamp, payload),
            "Idempotency-Key": f"kehu-{message.message_id}",
        }
        try:
            response = self._http.post(self.url, content=payload, headers=headers)
        except httpx.TransportError as exc:
            return transport_outcome(exc, provider=self.name, idempotent=self.idempotent)
        status = response.status_code
        data = _json(response)
        if 200 <= status < 300:
            ident = data.get("id") if isinstance(data, dict) else None
            return Outcome("sent", provider_message_id=str(ident) if ident not in (None, "") else None)
        code = str(data.get("error", "")) if isinstance(data, dict) else ""
        error = short(f"http_sms HTTP {status}" + (f" {code}" if code else ""))
        if status in (400, 422) and code in _HTTP_SMS_SUPPRESS:
            return Outcome("suppress", error=error, suppress_reason=_HTTP_SMS_SUPPRESS[code])
        if status in (408, 429) or status >= 500:
            return Outcome("retry", error=error,
                           retry_after=retry_after(response.headers.get("Retry-After"), now=self._now()))
        return Outcome("failed", error=error)  # 3xx and every other 4xx: the gateway will not take it as it is

    def close(self) -> None:
        pass


@provider("http_sms")
def _http_sms(config: dict[str, Any], secrets: dict[str, Any], http: httpx.Client) -> HttpSms:
    return HttpSms(config, secrets, http)
