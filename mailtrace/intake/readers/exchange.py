"""Exchange Server 2007 and later, and Exchange Online: the NDR's "Diagnostic information
for administrators" block (Microsoft: "Email non-delivery reports and SMTP errors in
Exchange Online"; the on-premises NDR has the same block since Exchange 2007).

Per recipient, the address on its own line, then the remote server's reply:
``Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; ...'`` (Exchange
Online), ``Server at host returned '...'``, or ``#550 5.1.1 RESOLVER.ADR.RecipNotFound;
not found ##`` (Exchange 2007-2013). The generating and receiving servers are named above.
Exchange writes the NDR in the sender's language: the headings are matched in the
languages Exchange ships ("Informazioni di diagnostica per gli amministratori",
"Diagnoseinformationen für Administratoren", "管理者向けの診断情報"...), the replies it
quotes stay as the remote server wrote them.
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import address_line, blocks, clean, span
from mailtrace.intake.tiers import normalize_host

_MARK = re.compile(
    r"Diagnostic information for administrators|Informa\w{0,8} d[ie] diagn\w{1,10} (?:pour|per"
    r"|para)\b.{0,25}(?:administra|amministra)|Diagnoseinformationen f\S{1,3}r Administratoren"
    r"|Diagnostische (?:gegevens|informatie) voor beheerders|Diagnostikinformation"
    r"|Informacje diagnostyczne dla administrator|管理者向けの診断情報|管理员诊断信息"
    r"|系統管理員的診斷資訊|관리자용 진단 정보", re.I)
_END = re.compile(
    r"^[ \t]*(?:Original message headers|Intestazioni originali del messaggio|En-t\S{1,3}tes "
    r"(?:de|du) message d'origine|Urspr\S{1,3}ngliche Nachrichtenkopfzeilen|Encabezados "
    r"(?:del|de) mensaje original|Cabe\S{1,3}alhos (?:originais|da mensagem original)"
    r"|Oorspronkelijke berichtkoppen|元のメッセージ ?ヘッダー|原始邮件头|Received:)", re.I)
_GENERATING = re.compile(
    r"^[ \t]*(?:Generating server|Server di generazione|Serveur de g\S{1,3}n\S{1,3}ration"
    r"|Generierender Server|Servidor de gera\S{1,4}o|Servidor de generaci\S{1,3}n"
    r"|Genererende server|生成サーバー|生成服务器)\s*:\s*(\S+)", re.I)
_RECEIVING = re.compile(
    r"^[ \t]*(?:Receiving server|Server di ricezione|Serveur de r\S{1,3}ception"
    r"|Empfangender Server|Servidor de recep\S{1,4}o|Servidor receptor|Ontvangende server"
    r"|受信サーバー|接收服务器)\s*:\s*(\S+)", re.I)
_RETURNED = re.compile(
    r"(?:Remote Server|Server at (\S+?)) returned\s+['\"‘’]?(.*?)['\"‘’]?[ \t]*$", re.I)
_HASHED = re.compile(r"^[ \t]*#(.*?)(?:##.*)?$")
_EXO_HOST = re.compile(r"(^|\.)(outlook\.com|mx\.microsoft|office365\.com)$")


def _claims(mail: Mail) -> bool:
    return "undeliverable" in mail.subject.lower() or bool(
        re.search(r"postmaster@|microsoftexchange", mail.sender))


def _read(mail: Mail) -> Found | None:
    if not _MARK.search(mail.notification):
        return None
    lines = span(mail.lines, _MARK, _END)
    generating = receiving = None
    for line in lines:
        if found := _GENERATING.match(line):
            generating = normalize_host(found.group(1))
        elif found := _RECEIVING.match(line):
            receiving = normalize_host(found.group(1))
    delayed = bool(re.search(r"\bdelay", mail.notification[:2000], re.I))
    recipients = []
    for block in blocks(lines, address_line):
        text = block.text
        remote = receiving
        if found := _RETURNED.search(text):
            remote = normalize_host(found.group(1)) or receiving
            text = found.group(2)
        elif found := _HASHED.match(block.lines[0] if block.lines else ""):
            text = found.group(1)
        recipients.append(RecipientStatus(
            block.address, "delayed" if delayed else "failed", None, clean(text), generating,
            remote))
    if not recipients:
        return None
    return Found(recipients, generating, format=family(generating))


def family(reporting: str | None) -> str:
    """Exchange Online or an on-premises Exchange, from the generating server's name."""
    return "exchange-online" if reporting and _EXO_HOST.search(reporting) else "exchange"


READER = Reader("exchange", _claims, _read)
