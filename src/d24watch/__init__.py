"""d24watch: media monitoring for Directive 24 and Vietnamese detainees."""

__version__ = "0.1.0"
