"""A throwaway PostgreSQL cluster from the server binaries: initdb, pg_ctl, psql.

Superuser `postgres` connects without a password over the Unix socket (local trust) and
with one over TCP (scram), so service roles are checked against their real passwords.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from pearls_localinfra._proc import free_ports, tail, wait_until

SUPERUSER = "postgres"
_HOST = "127.0.0.1"

INSTALL_HINT = (
    "The local PostgreSQL launcher needs the server binaries (initdb, pg_ctl, postgres, psql): "
    "`apt-get install postgresql` (Debian/Ubuntu: /usr/lib/postgresql/<v>/bin), "
    "`brew install postgresql@15`, or set PEARLS_PG_BIN to their directory."
)


class PostgresError(RuntimeError):
    """PostgreSQL could not be found, initialised or started."""


def find_pg_bin() -> Path | None:
    """PEARLS_PG_BIN, else the newest /usr/lib/postgresql/<v>/bin, else `initdb` on PATH."""
    if env := os.environ.get("PEARLS_PG_BIN"):
        return Path(env)
    versions = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()]
    if versions:

        def version(path: Path) -> tuple[int, ...]:
            return tuple(int(x) for x in re.findall(r"\d+", path.parent.name))

        return max(versions, key=version)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _run_as_user() -> pwd.struct_passwd | None:
    """initdb and postgres refuse to run as root: pick an unprivileged account to run them
    (PEARLS_PG_USER, else `postgres`, else `nobody`). None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in (os.environ.get("PEARLS_PG_USER"), "postgres", "nobody"):
        if not name:
            continue
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresError("running as root and no unprivileged user (postgres, nobody) exists")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def make_dsn(host: str, port: int, database: str, user: str, password: str | None) -> str:
    auth = quote(user, safe="")
    if password is not None:
        auth += ":" + quote(password, safe="")
    return f"postgresql://{auth}@{host}:{port}/{quote(database, safe='')}"


class PostgresCluster:
    """A PostgreSQL server on 127.0.0.1:<free port> with its data under `workdir`.

    `start()` wipes and re-initialises `<workdir>/data`; a cluster given no workdir uses a
    temporary directory and removes it on `stop()`.
    """

    def __init__(
        self,
        workdir: str | Path | None = None,
        *,
        port: int | None = None,
        superuser_password: str = "postgres",  # noqa: S107 - throwaway loopback cluster
        startup_timeout: float = 60.0,
    ) -> None:
        self._owns_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="pearls-pg-")).resolve()
        self._fixed_port = port is not None
        self.port = port or free_ports(1)[0]
        self.host = _HOST
        self.superuser_password = superuser_password
        self.startup_timeout = startup_timeout
        self._bin: Path | None = None
        self._user = _run_as_user()
        self._running = False

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_file(self) -> Path:
        return self.workdir / "postgres.log"

    @property
    def superuser_dsn(self) -> str:
        return self.dsn("postgres", SUPERUSER, self.superuser_password)

    def dsn(self, db: str, user: str, password: str | None) -> str:
        """`postgresql://user:password@127.0.0.1:port/db` (asyncpg and libpq accept it)."""
        return make_dsn(self.host, self.port, db, user, password)

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._bin = find_pg_bin()
        if self._bin is None or not (self._bin / "initdb").exists():
            raise PostgresError(f"PostgreSQL server binaries not found. {INSTALL_HINT}")
        self._prepare_workdir()
        pwfile = self.workdir / "superuser.pw"
        pwfile.write_text(self.superuser_password + "\n")
        self._chown(pwfile)
        self._run(
            "initdb",
            *("-D", str(self.data_dir), "-U", SUPERUSER, f"--pwfile={pwfile}"),
            *("--auth-local=trust", "--auth-host=scram-sha-256"),
            *("--encoding=UTF8", "--locale=C", "--no-sync"),
        )
        pwfile.unlink()
        try:
            self._launch()
        except PostgresError:
            # A free port can be taken between choosing it and binding it; retry once.
            clash = "Address already in use" in self.log_file.read_text(errors="replace")
            if self._fixed_port or not clash:
                raise
            self.port = free_ports(1)[0]
            self._launch()

    def _launch(self) -> None:
        # Durability is worthless for a throwaway cluster; skipping fsync makes tests fast.
        options = (
            f"-p {self.port} -k {shlex.quote(str(self.workdir))} -c listen_addresses={_HOST}"
            " -c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        atexit.register(self.stop)
        self._running = True
        try:
            self._run(
                "pg_ctl",
                *("-D", str(self.data_dir), "-l", str(self.log_file), "-o", options),
                *("-w", "-t", str(int(self.startup_timeout)), "start"),
            )
            if not wait_until(self._is_ready, self.startup_timeout):
                raise PostgresError(f"PostgreSQL is not ready:\n{tail(self.log_file)}")
        except BaseException:
            self.stop(remove_workdir=False)
            raise

    def stop(self, *, remove_workdir: bool | None = None) -> None:
        atexit.unregister(self.stop)
        if self._running:
            self._running = False
            pg_ctl = ("pg_ctl", "-D", str(self.data_dir), "-w", "-t", "30")
            try:
                self._run(*pg_ctl, "-m", "fast", "stop")
            except PostgresError:
                self._run(*pg_ctl, "-m", "immediate", "stop", check=False)
        if remove_workdir if remove_workdir is not None else self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def discard_data(self) -> None:
        """Remove the stopped cluster's data directory; its log stays for reading."""
        if self._running:
            raise PostgresError("stop the cluster before discarding its data")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def alive(self) -> bool:
        return self._running and self._is_ready()

    # -- administration ----------------------------------------------------------------

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one statement as superuser over the Unix socket; returns unaligned rows."""
        return self._run(
            "psql",
            *("-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"),
            *("-h", str(self.workdir), "-p", str(self.port), "-U", SUPERUSER, "-d", database),
            *("-c", sql),
            as_user=False,
        )

    def create_database(self, name: str, owner_role: str, password: str) -> str:
        """Create (or reuse) a login role and a database it owns; returns the role's DSN."""
        # Every value below goes through quote_ident/quote_literal (psql -c has no binds).
        role, secret = quote_ident(owner_role), quote_literal(password)
        find_role = f"SELECT 1 FROM pg_roles WHERE rolname = {quote_literal(owner_role)}"  # noqa: S608
        verb = "ALTER" if self.psql(find_role).strip() else "CREATE"
        self.psql(f"{verb} ROLE {role} LOGIN PASSWORD {secret}")
        find_db = f"SELECT 1 FROM pg_database WHERE datname = {quote_literal(name)}"  # noqa: S608
        if not self.psql(find_db).strip():
            # CREATE DATABASE cannot share a transaction, hence one psql call per statement.
            self.psql(f"CREATE DATABASE {quote_ident(name)} OWNER {role}")
        return self.dsn(name, owner_role, password)

    # -- internals ---------------------------------------------------------------------

    def _prepare_workdir(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.log_file.unlink(missing_ok=True)
        self._chown(self.workdir)
        if self._user is not None:
            probe = self._command("test", "-w", str(self.workdir))
            if subprocess.run(probe, check=False).returncode != 0:
                raise PostgresError(
                    f"user {self._user.pw_name!r} (PostgreSQL refuses to run as root) cannot "
                    f"write {self.workdir}; pick a workdir whose parents it can traverse"
                )

    def _chown(self, path: Path) -> None:
        if self._user is not None:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def _command(self, program: str, *args: str) -> list[str]:
        exe = self._exe(program)
        if self._user is None:
            return [exe, *args]
        if shutil.which("runuser"):
            return ["runuser", "-u", self._user.pw_name, "--", exe, *args]
        ids = [f"--reuid={self._user.pw_uid}", f"--regid={self._user.pw_gid}", "--init-groups"]
        return ["setpriv", *ids, exe, *args]

    def _run(self, program: str, *args: str, as_user: bool = True, check: bool = True) -> str:
        cmd = self._command(program, *args) if as_user else [self._exe(program), *args]
        done = subprocess.run(
            cmd,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            # pg_ctl's postmaster must not share our process group: Ctrl-C is ours to handle.
            start_new_session=True,
        )
        if check and done.returncode != 0:
            raise PostgresError(
                f"$ {shlex.join(cmd)}\nexit {done.returncode}\n{done.stdout}{done.stderr}"
                + (
                    f"\n--- {self.log_file} ---\n{tail(self.log_file)}"
                    if program == "pg_ctl"
                    else ""
                )
            )
        return done.stdout

    def _exe(self, program: str) -> str:
        return str(self._bin / program) if self._bin and (self._bin / program).exists() else program

    def _is_ready(self) -> bool:
        probe = [self._exe("pg_isready"), "-q", "-h", _HOST, "-p", str(self.port), "-t", "2"]
        return subprocess.run(probe, check=False).returncode == 0
