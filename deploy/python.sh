#!/usr/bin/env bash
# Prints the path of a Python 3.11+ interpreter that has the fix for
# CVE-2024-6923 (e-mail header injection: CPython 3.11.10+, 3.12.5+, or a
# distribution build with the fix backported, such as Debian 12's 3.11.2-6+deb12u5+).
# The fix is detected by behaviour-defining API (email.errors.HeaderWriteError),
# not by version number, so backports count. The Makefile hands the result to uv
# (UV_PYTHON); setup.sh installs Debian's python3 when no candidate has the fix.
set -euo pipefail
probe='import sys, email.errors; sys.exit(0 if sys.version_info >= (3, 11) and hasattr(email.errors, "HeaderWriteError") else 1)'
for candidate in "${PEARLS_PYTHON:-}" /usr/bin/python3.13 /usr/bin/python3.12 /usr/bin/python3.11 \
  /usr/bin/python3 python3.13 python3.12 python3.11 python3; do
  [[ -n $candidate ]] || continue
  path=$(command -v "$candidate" 2>/dev/null) || continue
  if "$path" -c "$probe" 2>/dev/null; then
    echo "$path"
    exit 0
  fi
done
exit 1
