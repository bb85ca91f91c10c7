"""A development SMTP sink: stores every message as a .eml file and lists them on a page.

    python -m pearls_notifications.devsmtp --port 1025 --maildir var/mail --http-port 8025

Nothing is relayed anywhere. The page at ``http://<host>:<http-port>/`` lists the
captured mail (newest first) with subject, recipient, date and the text body;
``/mail/<file>.eml`` returns the raw message. For development and demos only:
it accepts mail from anyone who can reach the port, so bind it to loopback.
"""

from __future__ import annotations

import argparse
import html
import time
import uuid
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response


class MaildirHandler:
    """aiosmtpd handler: one file per accepted message, named so that order is kept."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        maildir.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if isinstance(content, str):
            content = content.encode()
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        tmp = self.maildir / f".{name}.tmp"
        tmp.write_bytes(content)
        tmp.rename(self.maildir / name)  # readers never see a half-written file
        print(f"captured {name} for {', '.join(envelope.rcpt_tos)}", flush=True)
        return "250 OK captured"


def read_mail(path: Path) -> EmailMessage:
    with path.open("rb") as f:
        msg: EmailMessage = BytesParser(policy=policy.default).parse(f)
    return msg


def text_body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def create_app(maildir: Path) -> FastAPI:
    app = FastAPI(title="Pearls dev SMTP sink", docs_url=None, redoc_url=None)

    @app.get("/", response_class=HTMLResponse, summary="Captured mail, newest first")
    def index() -> HTMLResponse:
        files = sorted(maildir.glob("*.eml"), reverse=True)
        rows = []
        for path in files[:500]:
            msg = read_mail(path)
            rows.append(
                "<article style='border-top:1px solid #ccd;padding:.5em 0'>"
                f"<h3 style='margin:.2em 0'>{html.escape(str(msg['Subject'] or ''))}</h3>"
                f"<div><b>To:</b> {html.escape(str(msg['To'] or ''))} &nbsp; "
                f"<b>Date:</b> {html.escape(str(msg['Date'] or ''))} &nbsp; "
                f"<a href='/mail/{html.escape(path.name)}'>raw</a></div>"
                f"<pre style='white-space:pre-wrap'>{html.escape(text_body(msg))}</pre>"
                "</article>"
            )
        body = "".join(rows) or "<p>No mail captured yet.</p>"
        return HTMLResponse(
            "<!doctype html><html><head><meta charset='utf-8'>"
            "<meta http-equiv='refresh' content='5'><title>Captured mail</title></head>"
            "<body style='font-family:sans-serif;max-width:60em;margin:1em auto'>"
            f"<h1>Captured mail ({len(files)})</h1>{body}</body></html>"
        )

    @app.get("/mail/{name}", summary="One captured message, raw")
    def raw(name: str) -> Response:
        path = maildir / name
        if "/" in name or not name.endswith(".eml") or not path.is_file():
            raise HTTPException(404, detail="name: no such captured message")
        return Response(path.read_bytes(), media_type="message/rfc822")

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pearls_notifications.devsmtp",
        description="Development SMTP sink: accepts all mail, stores each message as a .eml "
        "file in --maildir and serves a page listing them. Never relays.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface for SMTP")
    parser.add_argument("--http-host", help="interface for the page (default: --host)")
    parser.add_argument("--port", type=int, default=1025, help="SMTP port (default 1025)")
    parser.add_argument("--maildir", type=Path, default=Path("var/mail"), help="where to store")
    parser.add_argument("--http-port", type=int, default=8025, help="page port (default 8025)")
    args = parser.parse_args(argv)

    handler = MaildirHandler(args.maildir)
    controller = Controller(handler, hostname=args.host, port=args.port)
    controller.start()
    http_host = args.http_host or args.host
    print(
        f"dev SMTP sink: smtp://{args.host}:{args.port}  mail page: "
        f"http://{http_host}:{args.http_port}/  files: {args.maildir.resolve()}",
        flush=True,
    )
    try:  # uvicorn stops on SIGINT/SIGTERM; the SMTP thread stops with it
        uvicorn.run(
            create_app(args.maildir), host=http_host, port=args.http_port, log_level="warning"
        )
    finally:
        controller.stop()
        print(f"dev SMTP sink stopped at {datetime.now(UTC).isoformat()}", flush=True)


if __name__ == "__main__":
    main()
