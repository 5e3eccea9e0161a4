"""The one configuration model: ``params.yaml`` is validated here, once.

Each stage owns one section (one module in this package) and receives only that
section. Unknown keys are errors (``extra="forbid"``), so a typo never silently
falls back to a default.
"""

from hypomimia.config.base import ConfigError, Section
from hypomimia.config.params import Params, load_params, params_errors

__all__ = ["ConfigError", "Params", "Section", "load_params", "params_errors"]
