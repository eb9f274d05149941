from django.db import models


class Heartbeat(models.Model):
    """The last time beat enqueued and a worker ran the heartbeat task: proof both are alive."""

    name = models.CharField(max_length=50, unique=True)
    beat_at = models.DateTimeField()
    worker = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"


class EnqueueFailure(models.Model):
    """Tasks the broker refused after a commit, per task name: the write went through, a periodic sweep does
    the work later, and /health/ shows that it happened (a count, the last time and the last error)."""

    task = models.CharField(max_length=200, unique=True)
    count = models.PositiveBigIntegerField(default=0)
    last_at = models.DateTimeField()
    last_error = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"{self.task}: {self.count} refused, last {self.last_at:%Y-%m-%d %H:%M:%S}"
