"""Build hook of the wheel: the package carries the shared library (onem2m_est/libonem2m_est.so.0,
put there by scripts/python-wheel.sh), so the wheel is a platform wheel (py3-none-PLATFORM: the
library is loaded with ctypes, so any Python 3 on that platform can use it)."""

import os
from pathlib import Path

from setuptools import Distribution, setup

try:  # setuptools >= 70.1 has bdist_wheel itself
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # older setuptools: the wheel package's
    from wheel.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent
BUNDLED = sorted((HERE / "onem2m_est").glob("libonem2m_est.so*")) + sorted(
    (HERE / "onem2m_est").glob("*.dll")
)


class BinaryDistribution(Distribution):
    """A distribution with a binary inside: installed into platlib (the wheel's
    `.data/platlib`, where auditwheel and installers expect a shared library), not purelib."""

    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform

    def run(self):
        if not BUNDLED and not os.environ.get("ONEM2M_EST_NO_BUNDLE"):
            raise SystemExit(
                "onem2m_est: no shared library to bundle in onem2m_est/: build the wheel with "
                "scripts/python-wheel.sh OUT_DIR (or set ONEM2M_EST_NO_BUNDLE=1 for a package "
                "that loads the library from ONEM2M_EST_LIB or the system)"
            )
        super().run()


setup(distclass=BinaryDistribution, cmdclass={"bdist_wheel": PlatformWheel})
