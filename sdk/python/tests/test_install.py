"""The SDK installs as the README says, `pip install ./sdk/python`, on a
machine without the package index: a fresh virtual environment, pip with
--no-index."""

import os
import subprocess
import sys
import tempfile
import unittest

SDK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, SDK)

import bmaas  # noqa: E402


def _run(*args, cwd=None):
    # No pip configuration of this machine (an index, links to wheels).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


class InstallTest(unittest.TestCase):
    def test_installs_without_the_package_index(self):
        with tempfile.TemporaryDirectory() as tmp:
            venv = os.path.join(tmp, "venv")
            made = _run(sys.executable, "-m", "venv", venv)
            if made.returncode != 0:
                self.skipTest("no venv with pip here (Debian: python3-venv): " + made.stderr.strip()[-200:])
            py = os.path.join(venv, "bin", "python")
            env_before = sorted(os.listdir(SDK))
            got = _run(py, "-m", "pip", "install", "--no-index", "--disable-pip-version-check", SDK, cwd=tmp)
            self.assertEqual(got.returncode, 0, "pip install --no-index failed:\n" + got.stdout + got.stderr)
            self.assertEqual(sorted(os.listdir(SDK)), env_before, "the build left files in the source tree")
            # Imported from the installed package, not the source tree.
            check = _run(py, "-c", "import bmaas, os; print(bmaas.__version__, os.path.dirname(bmaas.__file__)); "
                         "from bmaas import Client, train; Client('http://127.0.0.1:1')", cwd=tmp)
            self.assertEqual(check.returncode, 0, check.stderr)
            version, where = check.stdout.split()
            self.assertEqual(version, bmaas.__version__)
            self.assertTrue(where.startswith(venv), where)
            listed = _run(py, "-m", "pip", "show", "-f", "bmaas", cwd=tmp)
            self.assertIn("Name: bmaas", listed.stdout)
            self.assertNotIn("build_backend", listed.stdout, "the build backend is not installed")

    def test_wheel_matches_the_package(self):
        sys.path.insert(0, os.path.join(SDK, "build_backend"))
        import bmaas_build
        import zipfile
        with tempfile.TemporaryDirectory() as tmp:
            name = bmaas_build.build_wheel(tmp)
            self.assertEqual(name, "bmaas-%s-py3-none-any.whl" % bmaas.__version__, "pyproject's version is __version__")
            with zipfile.ZipFile(os.path.join(tmp, name)) as z:
                names = z.namelist()
                self.assertIn("bmaas/client.py", names)
                self.assertIn("bmaas/_evaluator.py", names)
                meta = z.read("bmaas-%s.dist-info/METADATA" % bmaas.__version__).decode()
            self.assertIn("Name: bmaas\n", meta)
            self.assertIn("Requires-Python: >=3.9\n", meta)
            self.assertFalse([n for n in names if "__pycache__" in n or n.startswith("build_backend")], names)
            sdist = bmaas_build.build_sdist(tmp)
            self.assertEqual(sdist, "bmaas-%s.tar.gz" % bmaas.__version__)


if __name__ == "__main__":
    unittest.main()
