"""`python -m backend.workers`: one Celery worker with the beat scheduler embedded (what
`make run` starts). Production runs `celery -A backend.workers.app worker` and a separate
`celery -A backend.workers.app beat`."""

from backend.core.startup import settings_or_exit


def main() -> None:
    settings_or_exit("workers")  # before the Celery app reads them at import
    from backend.workers import settlement  # noqa: F401  (registers the tasks)
    from backend.workers.app import app

    app.worker_main(["worker", "-B", "-l", "info", "--concurrency", "2", "-n", "gridledger@%h"])


if __name__ == "__main__":
    main()
