"""`python -m backend.workers`: one Celery worker (what `make run` starts; the beat is its own
component, `python -m backend.workers.beat`, under a lock). Production may run
`celery -A backend.workers.app worker` instead."""

from backend.core.startup import settings_or_exit


def main() -> None:
    settings_or_exit("workers")  # before the Celery app reads them at import
    from backend.workers import settlement  # noqa: F401  (registers the tasks)
    from backend.workers.app import app

    app.worker_main(["worker", "-l", "info", "--concurrency", "2", "-n", "gridledger@%h"])


if __name__ == "__main__":
    main()
