"""Route ``.mib`` files in ``rsciio.IO_PLUGINS`` to this plugin, and back.

RosettaSciIO builds its plugin table from its own folders only and HyperSpy
refuses an extension claimed twice (design.md, "Registration"). So
:func:`register` edits the built-in "QuantumDetector" entry in place (same dict,
same list, so every module that imported ``IO_PLUGINS`` sees the change): its
``api`` becomes ``rsciio_mib_plugin`` and our specification's name and aliases
are added to its aliases. The built-in reader stays reachable as the format
``QuantumDetectorBuiltin``, an entry that claims no ``mib`` extension.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

_logger = logging.getLogger(__name__)

API = "rsciio_mib_plugin"
BUILTIN_API = "rsciio.quantumdetector"
BUILTIN_NAME = "QuantumDetectorBuiltin"
# HyperSpy formats its docstrings with file_extensions[default_extension], so
# the built-in's entry needs an extension; this one no file has.
BUILTIN_EXTENSION = "mib_builtin"
SPECIFICATIONS = Path(__file__).with_name("specifications.yaml")

_saved: dict | None = None  # the built-in entry as it was before register()
_refused = False  # unregister() was called: the startup hook must not register again


def specifications() -> dict:
    """Our ``specifications.yaml`` as a dict."""
    import yaml

    return yaml.safe_load(SPECIFICATIONS.read_text(encoding="utf-8"))


def _plugins():
    from rsciio._io_plugins import IO_PLUGINS

    return IO_PLUGINS


def _mib_entries(plugins) -> list[dict]:
    return [p for p in plugins if "mib" in [str(e).lower() for e in p.get("file_extensions", ())]]


def register() -> bool:
    """Route ``.mib`` files and the "QuantumDetector" format to this plugin.

    Idempotent. When the table does not look as expected (no single built-in
    ``mib`` entry), nothing is changed and a debug message is logged.

    Returns
    -------
    bool
        True when the plugin is registered after the call.
    """
    global _saved, _refused
    _refused = False
    plugins = _plugins()
    entries = _mib_entries(plugins)
    if any(p.get("api") == API for p in entries):
        return True
    if len(entries) != 1 or entries[0].get("api") != BUILTIN_API:
        _logger.debug("rsciio_mib_plugin not registered: unexpected mib entries %r", entries)
        return False
    spec = specifications()
    entry = entries[0]
    _saved = copy.deepcopy(entry)
    aliases = list(entry.get("name_aliases") or [])
    for alias in [spec["name"], *spec.get("name_aliases", [])]:
        if alias not in aliases:
            aliases.append(alias)
    entry.update(
        name_aliases=aliases,
        description=spec["description"],
        full_support=spec["full_support"],
        writes=spec["writes"],
        non_uniform_axis=spec["non_uniform_axis"],
        api=API,
    )
    builtin = dict(
        copy.deepcopy(_saved),
        name=BUILTIN_NAME,
        name_aliases=[],
        file_extensions=[BUILTIN_EXTENSION],
        default_extension=0,
        writes=False,
    )
    plugins.append(builtin)
    return True


def auto_register() -> bool:
    """What the startup hook calls: :func:`register`, unless :func:`unregister` was called."""
    return False if _refused else register()


def unregister() -> bool:
    """Restore the built-in "QuantumDetector" entry exactly as it was.

    Idempotent. Also holds when RosettaSciIO's plugin table does not exist
    yet: the startup hook then leaves it alone until :func:`register` is
    called. Returns True when something was restored.
    """
    global _saved, _refused
    _refused = True
    if _saved is None:
        return False
    plugins = _plugins()
    for entry in _mib_entries(plugins):
        if entry.get("api") == API:
            entry.clear()
            entry.update(copy.deepcopy(_saved))
    for i in reversed(range(len(plugins))):
        if plugins[i].get("name") == BUILTIN_NAME:
            del plugins[i]
    _saved = None
    return True
