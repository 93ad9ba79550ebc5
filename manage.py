#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os

# BLAS sizes its thread pool when numpy/scipy first load: one thread per process, as implicit
# advises (its ALS parallelises with OpenMP instead, which stays free to use every core), so
# web and worker processes don't oversubscribe the cores. Before any other import, so nothing
# can load numpy first; setdefault keeps an operator's explicit value.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    from config.local_services import local_services_use, unreachable_message

    local_services_use()
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except Exception as exc:
        # A database or Redis that cannot be reached is one line saying which and what to do.
        message = unreachable_message(exc)
        if message is None:
            raise
        sys.stderr.write(message + "\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
