"""The locks: every dependency pinned with hashes, the dev lock installing the runtime's very versions, and
no top-level pin of an .in file left out of its lock (an .in edited without `make lock`)."""

from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT


def lock_read(path: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (pinned version, hashes), from a compiled requirements file."""
    text = path.read_text().replace("\\\n", " ")
    out = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()  # "# via ..." annotations; a hash never holds a "#"
        if not line:
            continue
        spec, *hashes = line.split(" --hash=")
        requirement = Requirement(spec.strip())
        (pin,) = requirement.specifier
        assert pin.operator == "==", f"{path.name}: {line!r} is not pinned with =="
        out[canonicalize_name(requirement.name)] = (pin.version, frozenset(h.strip() for h in hashes))
    return out


def top_level_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            pins[canonicalize_name(requirement.name)] = next((s.version for s in requirement.specifier), "")
    return pins


def test_every_locked_requirement_is_pinned_with_hashes():
    for name in ("requirements.txt", "requirements-dev.txt"):
        lock = lock_read(ROOT / name)
        assert "django" in lock and "celery" in lock, name
        unhashed = sorted(package for package, (_, hashes) in lock.items() if not hashes)
        assert not unhashed, f"{name}: no hashes for {unhashed}"


def test_the_dev_lock_installs_the_runtime_lock_unchanged():
    runtime, dev = lock_read(ROOT / "requirements.txt"), lock_read(ROOT / "requirements-dev.txt")
    differing = {name: (pin[0], dev.get(name, ("missing",))[0]) for name, pin in runtime.items() if dev.get(name) != pin}
    assert not differing, f"runtime -> dev versions (or hashes) differ: {differing}"
    assert "pytest" in dev and "pytest" not in runtime


def test_each_lock_holds_every_top_level_pin_of_its_in_file():
    for source, compiled in (("requirements.in", "requirements.txt"), ("requirements-dev.in", "requirements-dev.txt")):
        lock = lock_read(ROOT / compiled)
        for name, version in top_level_pins(ROOT / source).items():
            assert name in lock, f"{name} of {source} is not in {compiled}: run `make lock`"
            assert not version or lock[name][0] == version, (
                f"{source} pins {name}=={version}, {compiled} has {lock[name][0]}: run `make lock`")
