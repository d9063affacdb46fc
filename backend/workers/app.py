"""The Celery application: `celery -A backend.workers.app worker -B`.

Broker from settings (`Settings.resolved_broker_url`): Redis when GRIDLEDGER_REDIS_URL or
GRIDLEDGER_CELERY_BROKER_URL is set, otherwise kombu's `filesystem://` transport under the
data dir, which needs no server. Tasks acknowledge late (after they ran) and are re-queued
when their worker dies; the beat schedule re-issues them anyway, and every task is
idempotent (see backend/settlement/services.py).
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from backend.core.config import Settings, get_settings
from backend.workers.queue import QUEUE_NAME, filesystem_folders


def broker_options(broker_url: str, settings: Settings) -> dict[str, Any]:
    if broker_url.startswith("filesystem"):
        folders = filesystem_folders(settings)
        queue, processed, control = folders["queue"], folders["processed"], folders["control"]
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(queue),
            "data_folder_out": str(queue),
            "control_folder": str(control),
            "processed_folder": str(processed),
            "store_processed": False,
        }
    return {"visibility_timeout": max(600, 2 * settings.settlement_lock_timeout_s)}


def create_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    broker = settings.resolved_broker_url
    app = Celery(
        "gridledger",
        broker=broker,
        include=[
            "backend.workers.settlement",
            "backend.workers.forecast",
            "backend.workers.vpp",
            "backend.workers.dr",
            "backend.workers.meters",
        ],
    )
    app.conf.update(
        broker_transport_options=broker_options(broker, settings),
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE_NAME,
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
        beat_schedule={
            "close-settlement-periods": {
                "task": "settlement.close_periods",
                "schedule": settings.settlement_beat_interval_s,
            },
            "issue-certificates": {
                "task": "settlement.issue_certificates",
                "schedule": settings.settlement_beat_interval_s,
            },
            "scan-meters": {
                "task": "settlement.scan_meters",
                "schedule": settings.settlement_beat_interval_s * 10,
            },
            "record-settlement-corrections": {
                "task": "settlement.record_corrections",
                "schedule": settings.settlement_beat_interval_s * 10,
            },
            "settle-dr-events": {
                "task": "dr.settle_events",
                "schedule": settings.settlement_beat_interval_s,
            },
            "refresh-vpp-forecasts": {
                "task": "forecast.refresh_vpps",
                "schedule": settings.forecast_refresh_interval_s,
            },
            "compact-reading-runs": {
                "task": "meters.compact_runs",
                "schedule": settings.reading_compaction_interval_s,
            },
            "deliver-vpp-flexibility": {  # orders placed by the beat or through the API
                "task": "vpp.deliver_flex",
                "schedule": settings.vpp_flex_delivery_interval_s,
            },
            "allocate-vpp-trades": {  # right behind settlement
                "task": "vpp.allocate",
                "schedule": settings.settlement_beat_interval_s,
            },
        },
    )
    if settings.vpp_daily_beat:  # else aggregators optimise through the API only
        app.conf.beat_schedule["optimize-vpps-daily"] = {  # once per VPP and day, asked often
            "task": "vpp.optimize_daily",
            "schedule": settings.vpp_daily_interval_s,
        }
    if settings.vpp_trading_beat:  # else aggregators trade through the API only
        app.conf.beat_schedule["trade-vpps"] = {
            "task": "vpp.trade",
            "schedule": settings.vpp_trading_interval_s,
        }
    return app


app = create_celery()
