"""Build step: the Jinja templates are compiled into the package (acrrules/compiled_templates),
so an installed acrrules never compiles them at run time. Everything else is in pyproject.toml."""

import os
import sys

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyCompilingTemplates(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install runs the templates/ of the checkout
            return
        sys.path.insert(0, os.path.abspath(self.build_lib))  # the package just copied there
        try:
            from acrrules.render import compile_templates  # needs jinja2, pyyaml, jsonschema ([build-system])

            compile_templates(os.path.join(self.build_lib, "acrrules", "compiled_templates"))
        finally:
            sys.path.pop(0)


setup(cmdclass={"build_py": BuildPyCompilingTemplates})
