"""The SDK's build backend (PEP 517, PEP 660), of the standard library only.

pip builds a package in an isolated environment into which it first
installs the package's build requirements from the package index; with
setuptools as the backend, `pip install ./sdk/python` failed on a machine
without the index ("No matching distribution found for setuptools>=61").
This backend needs nothing (pyproject.toml: requires = []), so the SDK
installs offline with the README's command, and with any pip since 21.

The wheel holds the bmaas package and its metadata, read from
pyproject.toml's [project] table (simple `key = "string"` lines, read
here since tomllib is not in Python 3.9 and 3.10) and README.md.
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "bmaas"
TAG = "py3-none-any"


def _project():
    """The string values of pyproject.toml's [project] table."""
    out, section = {}, None
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                section = line.strip("[]").strip()
                continue
            m = re.match(r'([A-Za-z0-9_-]+)\s*=\s*"([^"]*)"\s*(#.*)?$', line)
            if section == "project" and m:
                out[m.group(1)] = m.group(2)
    for key in ("name", "version"):
        if not out.get(key):
            raise ValueError("pyproject.toml: [project] %s is required" % key)
    return out


def _metadata():
    p = _project()
    lines = ["Metadata-Version: 2.1", "Name: " + p["name"], "Version: " + p["version"]]
    if p.get("description"):
        lines.append("Summary: " + p["description"])
    if p.get("requires-python"):
        lines.append("Requires-Python: " + p["requires-python"])
    lines.append("License: Apache-2.0")
    readme = os.path.join(ROOT, p.get("readme", "README.md"))
    text = ""
    if os.path.isfile(readme):
        lines.append("Description-Content-Type: text/markdown")
        with open(readme, encoding="utf-8") as f:
            text = f.read()
    return p, "\n".join(lines) + "\n\n" + text


def _dist_info(p):
    return "%s-%s.dist-info" % (re.sub(r"[-_.]+", "_", p["name"]), p["version"])


def _wheel_name(p):
    return "%s-%s-%s.whl" % (re.sub(r"[-_.]+", "_", p["name"]), p["version"], TAG)


def _sources():
    """The package's files, relative to ROOT, in a stable order."""
    out = []
    for d, dirs, files in os.walk(os.path.join(ROOT, PACKAGE)):
        dirs[:] = sorted(x for x in dirs if x != "__pycache__")
        for f in sorted(files):
            if not f.endswith((".pyc", ".pyo")):
                out.append(os.path.relpath(os.path.join(d, f), ROOT))
    return out


def _write_wheel(directory, files):
    """Writes a wheel of files ({archive name: bytes}) with its
    dist-info and returns its file name."""
    p, metadata = _metadata()
    info = _dist_info(p)
    files = dict(files)
    files[info + "/METADATA"] = metadata.encode("utf-8")
    files[info + "/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: bmaas_build\nRoot-Is-Purelib: true\nTag: %s\n"
                              % TAG).encode()
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (name, digest, len(data)))
    record.append(info + "/RECORD,,")
    files[info + "/RECORD"] = ("\n".join(record) + "\n").encode()
    name = _wheel_name(p)
    with zipfile.ZipFile(os.path.join(directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data in files.items():
            zi = zipfile.ZipInfo(arc, date_time=(1980, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    return name


def _read(rel):
    with open(os.path.join(ROOT, rel), "rb") as f:
        return f.read()


# PEP 517 hooks.

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    """A wheel of the bmaas package."""
    return _write_wheel(wheel_directory, {rel.replace(os.sep, "/"): _read(rel) for rel in _sources()})


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """A wheel whose .pth file puts the source tree on sys.path (pip
    install -e)."""
    return _write_wheel(wheel_directory, {PACKAGE + "_editable.pth": (ROOT + "\n").encode()})


def build_sdist(sdist_directory, config_settings=None):
    """A source archive: the package, this backend, pyproject.toml,
    README.md and PKG-INFO."""
    p, metadata = _metadata()
    base = "%s-%s" % (re.sub(r"[-_.]+", "_", p["name"]), p["version"])
    rels = ["pyproject.toml", "README.md", os.path.join("build_backend", "bmaas_build.py")] + _sources()
    name = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz", format=tarfile.PAX_FORMAT) as tar:
        entries = [(rel.replace(os.sep, "/"), _read(rel)) for rel in rels if os.path.isfile(os.path.join(ROOT, rel))]
        entries.append(("PKG-INFO", metadata.encode("utf-8")))
        for arc, data in entries:
            ti = tarfile.TarInfo(base + "/" + arc)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, int(time.time())
            tar.addfile(ti, io.BytesIO(data))
    return name
