"""A Dask worker that dies once: right after a bulk-scan task has put its part file in place, before the
task is reported done, so that the scheduler computes the partitions of that worker again.

Installed on running workers with ``client.run(install, marker)``; the first worker to create ``marker``
exits, every later task (on a restarted worker or the other one) runs normally.
"""

from __future__ import annotations

import os

from bot import bulk_scan

_real_publish = bulk_scan._publish


def install(marker: str) -> None:
    def publish(temporary, final):
        _real_publish(temporary, final)
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, str(final).encode())
        os.close(fd)
        os._exit(1)

    bulk_scan._publish = publish


def uninstall() -> None:
    bulk_scan._publish = _real_publish
