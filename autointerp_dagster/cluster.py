"""A Celery deployment on this machine, to try the executor and to test it: Postgres (the Dagster instance),
Redis (Celery's broker and results) and worker processes, all on 127.0.0.1, their data, logs and pids in one
folder. `autointerp cluster up` starts them and writes `cluster.env`, the variables that point autointerp at them
(source it, then `autointerp run`); `autointerp cluster down` stops what `up` started. Postgres trusts local
connections: it is a development cluster, reachable from this machine only; a real deployment's services are
the ones docs/deploy.md describes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .core.errors import UserError
from .instance import QUEUES

PG_DATABASE = "dagster"


@dataclass(frozen=True)
class LocalCluster:
    """Where the services keep their state, and their ports."""

    folder: Path
    pg_port: int = 55432
    redis_port: int = 56379

    def env(self) -> dict[str, str]:
        """The variables that point autointerp (the runs and the workers) at these services."""
        redis = f"redis://127.0.0.1:{self.redis_port}"
        return {
            "AUTOINTERP_EXECUTOR_KIND": "celery",
            "AUTOINTERP_EXECUTOR_BROKER": f"{redis}/0",
            "AUTOINTERP_EXECUTOR_BACKEND": f"{redis}/1",
            "AUTOINTERP_INSTANCE_STORAGE": "postgres",
            # dagster-postgres needs psycopg2, which SQLAlchemy 2.1 no longer picks for a bare postgresql://
            "DAGSTER_POSTGRES_URL": f"postgresql+psycopg2://postgres@127.0.0.1:{self.pg_port}/{PG_DATABASE}",
            "AUTOINTERP_STORE_BACKEND": "parquet",  # many writers: no file lock to take turns on
        }

    @property
    def pg_data(self) -> Path:
        """Postgres' folder: under the temporary folder when running as root, since postgres runs as its own user
        and may not enter root's home."""
        if os.geteuid() == 0:
            return Path(tempfile.gettempdir()) / f"autointerp-postgres-{self.pg_port}"
        return self.folder / "postgres"

    def up(self, workers: int = 2, queues: tuple[str, ...] = QUEUES, concurrency: int = 1,
           base_env: dict[str, str] | None = None, visibility_timeout_s: int | None = None) -> dict[str, str]:
        """Starts Postgres, Redis and `workers` workers listening on `queues`; returns the variables to use them."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.start_postgres()
        self._start_redis()
        env = {**(base_env if base_env is not None else os.environ), **self.env()}
        if visibility_timeout_s is not None:
            env["AUTOINTERP_EXECUTOR_VISIBILITY_TIMEOUT_S"] = str(visibility_timeout_s)
        for n in range(workers):
            self.start_worker(n, queues, concurrency, env)
        lines = [f"export {k}={v}" for k, v in self.env().items()]
        (self.folder / "cluster.env").write_text("\n".join(lines) + "\n")
        return env

    def start_worker(self, n: int, queues: tuple[str, ...], concurrency: int, env: dict[str, str]) -> int:
        """Worker `n` (`autointerp worker`) in its own session; waits until it listens. Returns its PID."""
        log = self.folder / f"worker-{n}.log"
        autointerp = Path(sys.executable).with_name("autointerp")
        argv = [str(autointerp), "worker", "--name", f"worker-{n}", "--concurrency", str(concurrency)]
        for queue in queues:
            argv += ["--queue", queue]
        with log.open("w") as out:
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        (self.folder / f"worker-{n}.pid").write_text(str(proc.pid))
        _wait(lambda: " ready." in log.read_text() or proc.poll() is not None, 120, f"worker {n} to start")
        if proc.poll() is not None:
            raise UserError(f"worker {n} ended at start (status {proc.returncode}); see {log}")
        return proc.pid

    def worker_pids(self) -> dict[int, int]:
        return {int(p.stem.split("-")[1]): int(p.read_text()) for p in sorted(self.folder.glob("worker-*.pid"))}

    def down(self, remove: bool = False) -> None:
        """Stops the workers (their whole process groups), Redis and Postgres; keeps their data unless `remove`."""
        for n, pid in self.worker_pids().items():
            _stop_group(pid)
            (self.folder / f"worker-{n}.pid").unlink(missing_ok=True)
        redis_pid = self.folder / "redis.pid"
        if redis_pid.exists():
            _stop_group(int(redis_pid.read_text()), group=False)
            redis_pid.unlink(missing_ok=True)
        if (self.pg_data / "postmaster.pid").exists():
            self._as_postgres([_pg_binary("pg_ctl"), "-D", str(self.pg_data), "-m", "fast", "-w", "stop"])
        if remove:
            shutil.rmtree(self.pg_data, ignore_errors=True)
            shutil.rmtree(self.folder, ignore_errors=True)

    def _start_redis(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise UserError("redis-server is not installed (Debian: apt-get install redis-server)")
        subprocess.run([server, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--daemonize", "yes",
                        "--pidfile", str(self.folder / "redis.pid"), "--dir", str(self.folder),
                        "--logfile", str(self.folder / "redis.log"), "--save", "", "--appendonly", "no"],
                       check=True)
        _wait(lambda: (self.folder / "redis.pid").exists(), 30, "Redis to start")

    def start_postgres(self) -> None:
        data = self.pg_data
        if not (data / "PG_VERSION").exists():
            data.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(data, "postgres", "postgres")
            self._as_postgres([_pg_binary("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                               "-E", "UTF8"])
        if not (data / "postmaster.pid").exists():
            options = f"-p {self.pg_port} -k {data} -c listen_addresses=127.0.0.1"
            self._as_postgres([_pg_binary("pg_ctl"), "-D", str(data), "-o", options, "-l", str(data / "log"),
                               "-w", "start"])
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=self.pg_port, user="postgres", dbname="postgres")
        try:
            con.autocommit = True  # CREATE DATABASE runs outside a transaction
            with con.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,))
                if cursor.fetchone() is None:
                    cursor.execute(f"CREATE DATABASE {PG_DATABASE}")
        finally:
            con.close()

    def _as_postgres(self, argv: list[str]) -> None:
        """Postgres refuses to run as root: then its commands run as the `postgres` user."""
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise UserError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.stdout.strip()}")


def _pg_binary(name: str) -> str:
    """A Postgres server program: on the PATH, else Debian's versioned folder."""
    found = shutil.which(name) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))[-1:]), None)
    if found is None:
        raise UserError(f"{name} not found: install Postgres (Debian: apt-get install postgresql)")
    return str(found)


def _stop_group(pid: int, group: bool = True, wait_s: float = 20.0) -> None:
    """SIGTERM (a worker's warm shutdown), then SIGKILL whatever is left after `wait_s`."""
    kill = os.killpg if group else os.kill
    try:
        kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait(done, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise UserError(f"waited {timeout_s:.0f} s for {what}")
        time.sleep(0.2)
