"""fogbank: the AWS serverless-microservices architecture on your own machines."""

from fogbank._errors import ConfigError, FogbankError, TemplateError

__version__ = "0.1.0"

__all__ = ["ConfigError", "FogbankError", "TemplateError", "__version__"]
