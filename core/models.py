from django.db import models


class Heartbeat(models.Model):
    """The last time beat enqueued and a worker ran the heartbeat task: proof both are alive."""

    name = models.CharField(max_length=50, unique=True)
    beat_at = models.DateTimeField()
    worker = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"
