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
