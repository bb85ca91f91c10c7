"""The interpreter the project runs on has the fix for CVE-2024-6923.

Without it, ``email`` serialises a header value holding CR/LF as written, so a
newline smuggled into a subject or display name would start a new header. The
services refuse such values before they reach a message (pearls_shared.lines);
this is the second line of defence, checked by behaviour so that distribution
backports (Debian 12's 3.11.2-6+deb12u5+) count as fixed.
"""

import email.errors
import email.policy
import sys
from email.message import EmailMessage

import pytest


def test_email_refuses_to_write_a_header_with_a_raw_newline() -> None:
    message = EmailMessage(policy=email.policy.SMTP)
    message["To"] = "city@example.org"
    message["Subject"] = "Welcome"
    # Set the header bypassing the parser's checks, as the CVE's proof of concept does.
    message._headers = [  # type: ignore[attr-defined]
        *[(k, v) for k, v in message._headers if k != "Subject"],  # type: ignore[attr-defined]
        ("Subject", "Welcome\r\nBcc: attacker@example.org"),
    ]
    with pytest.raises(email.errors.HeaderWriteError):
        message.as_string()  # the fix checks the text generator; as_bytes() never did


def test_interpreter_is_the_one_the_makefile_chose() -> None:
    assert sys.version_info >= (3, 11)
    assert hasattr(email.errors, "HeaderWriteError"), (
        f"{sys.executable} ({sys.version.split()[0]}) lacks the CVE-2024-6923 fix; "
        "run the tests through `make test`, which picks a fixed interpreter (deploy/python.sh)"
    )
