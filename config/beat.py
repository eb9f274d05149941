"""The beat schedule as managers read and use it in the admin (config/admin.py): each periodic task's schedule as
a sentence in the reader's language, and "Run now", which enqueues a task by its registered name.

django_celery_beat's own texts are English only (cron_descriptor's "At 02:30 AM UTC"); the sentences here cover
the schedules this project declares (config/schedule.py: intervals and daily or hourly crontabs) and read any
other crontab back as its five fields.
"""

import datetime as dt
import json
from typing import Any

from babel.lists import format_list
from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule


def _interval_sentence(interval: IntervalSchedule) -> str:
    n = interval.every
    sentences = {
        IntervalSchedule.DAYS: ngettext("every day", "every %(count)s days", n),
        IntervalSchedule.HOURS: ngettext("every hour", "every %(count)s hours", n),
        IntervalSchedule.MINUTES: ngettext("every minute", "every %(count)s minutes", n),
        IntervalSchedule.SECONDS: ngettext("every second", "every %(count)s seconds", n),
        IntervalSchedule.MICROSECONDS: ngettext("every microsecond", "every %(count)s microseconds", n),
    }
    return sentences[interval.period] % {"count": n}


def _number(field: str, low: int, high: int) -> int | None:
    """The field's value when it is one plain number in [low, high] ("30", not "*/5" or "1,2")."""
    return int(field) if field.isdigit() and low <= int(field) <= high else None


def _weekday_numbers(field: str) -> list[int] | None:
    """Cron's day-of-week list ("1", "1,3,5"; 0 and 7 are Sunday) as 0-6 (Sunday first), or None for anything else."""
    parts = field.split(",")
    if not all(p.isdigit() and int(p) <= 7 for p in parts):
        return None
    return [int(p) % 7 for p in parts]


def _day_names() -> list[str]:
    return [_("Sunday"), _("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"), _("Saturday")]


def _one_weekday_sentence(day: int, *, time: str, zone: str) -> str:
    # One whole sentence per day: languages say "every Monday" with the day in a form of its own
    # (Hungarian "hétfőnként"), which a day name put into a sentence would not give.
    sentences = [
        _("every Sunday at %(time)s %(zone)s"), _("every Monday at %(time)s %(zone)s"),
        _("every Tuesday at %(time)s %(zone)s"), _("every Wednesday at %(time)s %(zone)s"),
        _("every Thursday at %(time)s %(zone)s"), _("every Friday at %(time)s %(zone)s"),
        _("every Saturday at %(time)s %(zone)s"),
    ]
    return sentences[day] % {"time": time, "zone": zone}


def _list(items: list[str]) -> str:
    """Items joined as the active language joins a list ("Monday and Friday", "hétfő és péntek")."""
    return format_list(items, locale=translation.to_locale(translation.get_language() or settings.LANGUAGE_CODE))


def _crontab_sentence(crontab: CrontabSchedule) -> str:
    minute, hour = crontab.minute.strip(), crontab.hour.strip()
    dom, moy, dow = crontab.day_of_month.strip(), crontab.month_of_year.strip(), crontab.day_of_week.strip()
    zone = str(crontab.timezone)
    m, h = _number(minute, 0, 59), _number(hour, 0, 23)
    every_day = dom == "*" and moy == "*" and dow == "*"
    if m is not None and h is not None:
        time = f"{h:02d}:{m:02d}"
        if every_day:
            return _("every day at %(time)s %(zone)s") % {"time": time, "zone": zone}
        days = _weekday_numbers(dow)
        if days and dom == "*" and moy == "*":
            if len(set(days)) == 1:
                return _one_weekday_sentence(days[0], time=time, zone=zone)
            # Translators: %(days)s is a list of day names, such as "Monday and Friday".
            return _("every week on %(days)s at %(time)s %(zone)s") % {
                "days": _list([_day_names()[d] for d in dict.fromkeys(days)]), "time": time, "zone": zone}
        d = _number(dom, 1, 31)
        if d is not None and moy == "*" and dow == "*":
            return _("on day %(day)s of every month at %(time)s %(zone)s") % {"day": d, "time": time, "zone": zone}
    if m is not None and hour == "*" and every_day:
        return _("every hour at minute %(minute)s") % {"minute": m}
    if hour == "*" and every_day and (minute == "*" or minute.startswith("*/")):
        step = 1 if minute == "*" else _number(minute[2:], 1, 59)
        if step is not None:
            return ngettext("every minute", "every %(count)s minutes", step) % {"count": step}
    return _("on the schedule “%(cron)s” (minute, hour, day of month, month, day of week), %(zone)s") % {
        "cron": f"{minute} {hour} {dom} {moy} {dow}", "zone": zone}


def _solar_sentence(solar: SolarSchedule) -> str:
    # One whole sentence per event: the event's name inside a sentence takes a form of its own in each language.
    sentences = {
        "dawn_astronomical": _("at astronomical dawn at latitude %(latitude)s, longitude %(longitude)s"),
        "dawn_nautical": _("at nautical dawn at latitude %(latitude)s, longitude %(longitude)s"),
        "dawn_civil": _("at civil dawn at latitude %(latitude)s, longitude %(longitude)s"),
        "sunrise": _("at sunrise at latitude %(latitude)s, longitude %(longitude)s"),
        "solar_noon": _("at solar noon at latitude %(latitude)s, longitude %(longitude)s"),
        "sunset": _("at sunset at latitude %(latitude)s, longitude %(longitude)s"),
        "dusk_civil": _("at civil dusk at latitude %(latitude)s, longitude %(longitude)s"),
        "dusk_nautical": _("at nautical dusk at latitude %(latitude)s, longitude %(longitude)s"),
        "dusk_astronomical": _("at astronomical dusk at latitude %(latitude)s, longitude %(longitude)s"),
    }
    coordinates = {"latitude": f"{float(solar.latitude):g}", "longitude": f"{float(solar.longitude):g}"}
    if solar.event not in sentences:
        return _("at the solar event “%(event)s” at latitude %(latitude)s, longitude %(longitude)s") % {
            "event": solar.event, **coordinates}
    return sentences[solar.event] % coordinates


def _clocked_sentence(clocked: ClockedSchedule) -> str:
    return _("once, at %(time)s UTC") % {"time": clocked.clocked_time.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")}


def periodic_task_sentence(task: PeriodicTask) -> str:
    """When the task runs, as a sentence ("every day at 02:30 UTC", "every 30 seconds")."""
    if task.interval_id:
        sentence = _interval_sentence(task.interval)
    elif task.crontab_id:
        sentence = _crontab_sentence(task.crontab)
    elif task.solar_id:
        sentence = _solar_sentence(task.solar)
    elif task.clocked_id:
        return _clocked_sentence(task.clocked)
    else:
        return _("no schedule")
    return _("%(schedule)s, once only") % {"schedule": sentence} if task.one_off else sentence


def periodic_task_run_now(*, periodic_task: PeriodicTask) -> None:
    """Enqueue the periodic task once, now, as beat would (its arguments, queue and name in the headers), after
    the caller's transaction commits. Refused for a disabled task (someone stopped it on purpose) and for a task
    name no worker knows (a typo in the admin would only fail in the worker)."""
    if not periodic_task.enabled:
        raise ValidationError(_("“%(name)s” is disabled: enable it before running it.") % {"name": periodic_task.name})
    current_app.loader.import_default_modules()
    task = current_app.tasks.get(periodic_task.task)
    if task is None or periodic_task.task.startswith("celery."):
        raise ValidationError(_("“%(name)s” names the task “%(task)s”, which is not one of this service's tasks.")
                              % {"name": periodic_task.name, "task": periodic_task.task})
    options: dict[str, Any] = {"headers": {"periodic_task_name": periodic_task.name}}
    if periodic_task.queue:
        options["queue"] = periodic_task.queue
    task.apply_async(args=json.loads(periodic_task.args or "[]"), kwargs=json.loads(periodic_task.kwargs or "{}"),
                     **options)
