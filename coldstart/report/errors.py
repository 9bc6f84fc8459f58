"""The one error type of the report: bad or missing input, with a message naming the field and the fix."""


class ReportError(ValueError):
    """Input the report cannot use. The message names the file or field, the value and the fix."""
