"""fogbank: the AWS serverless-microservices architecture on your own machines."""

from fogbank._errors import ConfigError, FogbankError, TemplateError
from fogbank._node import Node
from fogbank.config import FunctionsConfig, NodeConfig

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "FogbankError",
    "FunctionsConfig",
    "Node",
    "NodeConfig",
    "TemplateError",
    "__version__",
]
