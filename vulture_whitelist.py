"""Names vulture reports as unused that are used from outside its view (issue 20).

``vulture`` (settings in pyproject.toml) reads this file beside ``src/setwise``: each
line below uses a name, so vulture stops reporting it. Only names something else
calls belong here; dead code is removed, not listed.
"""
# ruff: noqa

# Python's module protocol: setwise.__getattr__ / __dir__ serve the lazy public names.
__getattr__
__dir__

# Public API: Report fields and ValidationError counts users read.
slowest_chunk_s
_.bad_values
_.nulls
_.unknown_columns
_.duplicate_keys

# Typer and Click call these: a command registered by decorator, methods overridden.
show
_.display_type_rich
_.display_type
_.get_usage_pieces

# Rich calls these: a progress column's render, a table's caption.
_.render
_.caption

# pytest calls the plugin's hooks (entry point setwise.detector.pytest_plugin).
pytest_addoption
pytest_configure
pytest_runtest_call
pytest_terminal_summary

# SQLAlchemy reads these: compiled-construct flags and @compiles functions.
inherit_cache
_compile_explain
_convert_using
_cast_float
_overriding
_.isdelete
_.isinsert
_.isupdate

# ORM columns of the demo and bench tables, mapped by their annotations.
author
genre
stock

# decimal reads the context's precision.
_.prec

# Typer fills these health options of apply and revert; the command reads them all
# through ctx.params (cli.options.health_options), by name.
max_lag
replicas

# The coroutine twins of setwise.asyncio take the sync function's names for repr and docs.
_.__qualname__

# A control row's last change, read with the row (journal.controls.RunControl).
_.changed_at
