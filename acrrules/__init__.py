"""acrrules: egress rules for clients of Azure Container Registry.

The pipeline, one module per stage:
    load (YAML with positions) -> validate (JSON Schema + domain rules)
    -> model (RegistrySpec, Description) -> plan (endpoints, service tags,
    prefixes) -> render (one renderer + template per target) -> write (atomic).
"""

__version__ = "0.1.0"
