"""No page a person works in is wider than the screen: every admin page a manager can open (index, each
changelist, add form and change form, the KPI page), and the agent's desk (queue, a case, callbacks), at 1440
and at 390 px wide, in headless Chromium. A table may scroll inside its own box; the page itself may not.

One row of every model is stored first (the factories), so every changelist has a row and every change form
opens. Each page is loaded once at 1440 px, measured, narrowed to 390 px and measured again (the media
queries apply on resize); a page that overflows leaves a screenshot of that width under var/screenshots/widths/
to look at. The failure message lists every page that overflowed with the elements that stick out furthest.
"""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse

from tests.browser import assert_png, browser, login, page  # noqa: F401 (browser, page: fixtures)
from tests.test_factories import PROJECT_APPS, _factory_for
from tests.winback.test_queue_access import case_now
from winback.services.queue import case_claim_next

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple"  # tests.factories.UserFactory's
WIDTHS = (1440, 390)

# The elements whose right (or, right to left, left) edge lies beyond the viewport, outermost first, skipping
# those inside a box that scrolls or clips (their overflow is that box's business, not the page's).
OVERFLOW_JS = """() => {
  const w = document.documentElement.clientWidth, out = [];
  const clipped = (el) => { for (let p = el.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return true; }
    return false; };
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || (r.right <= w + 1 && r.left >= -1) || clipped(el)) continue;
    out.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.className && typeof el.className === 'string'
      ? '.' + el.className.trim().split(/\\s+/).join('.') : ''} (${Math.round(r.left)}..${Math.round(r.right)})`);
    if (out.length >= 4) break;
  }
  return {scroll: document.documentElement.scrollWidth, width: w, offenders: out};
}"""


def _shot_path(name: str) -> Path:
    directory = Path(settings.VAR_DIR) / "screenshots" / "widths"
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{name}.png"


def _store_one_of_each_model() -> None:
    from django.apps import apps

    for app in PROJECT_APPS:
        for model in apps.get_app_config(app).get_models():
            _factory_for(model)()


def _admin_urls(user) -> list[str]:
    """The index, then per registered model the changelist, the add form and one row's change form, as far as
    this user may open them."""
    request = RequestFactory().get("/admin/")
    request.user = user
    urls = [reverse("admin:index")]
    for model, model_admin in sorted(admin.site._registry.items(), key=lambda kv: kv[0]._meta.label):
        opts = model._meta
        if not model_admin.has_view_or_change_permission(request):
            continue
        try:
            urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        except NoReverseMatch:
            continue
        if model_admin.has_add_permission(request):
            urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
        row = model_admin.get_queryset(request).order_by("pk").first()
        if row is not None:
            urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk]))
    return urls


def _measure(page, url: str, name: str) -> list[str]:
    problems = []
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})
    response = page.goto(url)
    assert response is not None and response.status < 400, f"{url} answered {response and response.status}"
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        found = page.evaluate(OVERFLOW_JS)
        if found["scroll"] > found["width"] + 1:
            # The screen as seen, for the pages that fail only: a shot of each of 200+ page widths took a third
            # of this test's time.
            shot = _shot_path(f"{name}-{width}")
            page.screenshot(path=str(shot))
            assert_png(shot)
            problems.append(f"{url} at {width} px is {found['scroll']} px wide: {', '.join(found['offenders'])} "
                            f"(screenshot: {shot})")
    return problems


def _name(url: str) -> str:
    return url.strip("/").replace("/", "_") or "root"


def test_no_admin_page_is_wider_than_the_screen(page, manager):
    # Given a row of every model and a manager
    _store_one_of_each_model()
    urls = _admin_urls(manager)
    assert reverse("admin:metrics_metricsnapshot_changelist") in urls  # the KPI page is among them
    assert len(urls) > 40
    # When they open every admin page they may open, at both widths
    page.goto("/accounts/login/?next=/admin/")
    login(page, "manager", PASSWORD)
    problems = [p for url in urls for p in _measure(page, url, _name(url))]
    # Then none is wider than the screen
    assert not problems, "pages wider than the screen:\n" + "\n".join(problems)


def test_no_page_of_the_agent_desk_is_wider_than_the_screen(page, agent):
    # Given two callable cases and an agent on the queue page
    case_now(2), case_now(1)
    page.goto("/accounts/login/?next=/agent/")
    login(page, "agent", PASSWORD)
    problems = _measure(page, reverse("agent:home"), "agent-home")
    # When they hold a case and open it, then their callbacks
    held = case_claim_next(agent=agent)
    assert held is not None
    urls = [reverse("agent:case", args=[held.pk]), reverse("agent:callbacks")]
    problems += [p for url in urls for p in _measure(page, url, "agent-" + _name(url))]
    # Then none is wider than the screen
    assert not problems, "pages wider than the screen:\n" + "\n".join(problems)
