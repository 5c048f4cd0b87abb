"""The Celery app a worker runs (`celery -A autointerp_dagster.worker_app worker`, started by `autointerp worker`):
Dagster's step task on the broker and backend of the settings' `executor` section."""

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from .core.config import load_settings
from .workers import celery_settings

app = make_app(CeleryExecutor.for_cli(**celery_settings(load_settings())).app_args())
execute_plan = create_task(app)
