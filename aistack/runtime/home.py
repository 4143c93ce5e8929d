"""Where the embedded runtime keeps its models: `<aistack data directory>/ollama`.

The data directory is `aistack.settings.data_dir()` (AISTACK_HOME, else `$XDG_DATA_HOME/aistack`
or `~/.local/share/aistack`), the one rule every aistack entry point shares; tests point
AISTACK_HOME at a temporary directory. The store gets its own `ollama/` folder so other
aistack state can live next to it.
"""

from __future__ import annotations

from pathlib import Path

from aistack.settings import data_dir


def store_root() -> Path:
    """The embedded runtime's model store (not created here)."""
    return data_dir() / "ollama"
