"""Errors a user can act on. The CLI prints them in one line, without a traceback."""


class MsabenchError(Exception):
    """Base class: something the user can fix (bad input, unknown name, broken plugin)."""


class PluginError(MsabenchError):
    """A plugin failed to import or register."""


class CatalogError(MsabenchError):
    """A registered component is invalid, or a method cannot be built as asked."""


class UnknownName(CatalogError):
    """A name that no plugin registers."""


class DataError(MsabenchError):
    """A data file is missing, unreadable, unsafe, or has the wrong contents."""


class TrainingError(MsabenchError):
    """Training cannot go on (a diverging loss, no usable epoch)."""


class RequestError(MsabenchError):
    """A run was asked for with a value it cannot take (a flag, a seed, an option), found before anything loads."""


class RunError(MsabenchError):
    """A run cannot go ahead as asked: an existing result differs, an output cannot be written, a stage is missing."""
