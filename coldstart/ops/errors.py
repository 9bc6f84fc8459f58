"""Expected failures and their one-line explanations.

An *expected* failure is a condition of the operator's environment (no credentials, wrong region,
nothing published yet, a model folder vLLM could not load). The CLI prints one line for it and
exits non-zero. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSOTokenLoadError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)

from coldstart.report.errors import ReportError
from settings.config import ConfigError


class OperatorError(Exception):
    """A failure the operator can fix; the message says what is wrong and how to fix it."""


# AWS error codes that mean "your credentials are the problem", not "the resource is".
_CREDENTIAL_CODES = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "RequestExpired",
}
_ACCESS_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden", "403"}

CREDENTIALS_FIX = "set AWS_PROFILE (or pass --profile), run `aws sso login`, or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"


def describe_expected_error(exc: BaseException) -> str | None:
    """One line for an expected failure, or None when ``exc`` is a bug that deserves a traceback."""
    if isinstance(exc, OperatorError):
        return str(exc)
    if isinstance(exc, ConfigError):
        return f"configuration: {exc}"
    if isinstance(exc, ReportError):
        return f"report: {exc}"
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return f"no usable AWS credentials ({exc}); {CREDENTIALS_FIX}"
    if isinstance(exc, SSOTokenLoadError | UnauthorizedSSOTokenError | TokenRetrievalError):
        return f"AWS SSO session is missing or expired ({exc}); run `aws sso login`"
    if isinstance(exc, ProfileNotFound):
        return f"{exc}; list profiles with `aws configure list-profiles`"
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region, set AWS_REGION, or set coldstart:region in cdk.json"
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        return f"cannot reach AWS ({exc}); check --region, your network/proxy and AWS_ENDPOINT_URL"
    if isinstance(exc, ClientError):
        return _describe_client_error(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return None


def _describe_client_error(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    message = error.get("Message") or ""
    operation = exc.operation_name
    if code in _CREDENTIAL_CODES:
        return f"AWS rejected the credentials in {operation} ({code}: {message}); {CREDENTIALS_FIX}"
    if code in _ACCESS_CODES:
        return f"access denied in {operation} ({message}); use a role allowed to call it, or check the region"
    if code == "ParameterNotFound":
        return f"parameter not found in {operation}; nothing published yet? run `make create-snapshot` (check --region)"
    return f"AWS error in {operation}: {code}: {message}".rstrip(": ")
