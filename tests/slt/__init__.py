"""sqllogictest through maintained views (see :mod:`tests.slt.runner`)."""
