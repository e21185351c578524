"""Reads experiment specs (YAML or JSON files) with the standard library.

PyYAML reads a YAML file when it is installed; without it, the subset of
YAML that specs are written in is read here: block mappings and
sequences, flow sequences and mappings of scalars ([a, b], {k: v}),
plain, single- and double-quoted scalars, and comments. Anything else
(anchors, tags, multi-line scalars) raises ValueError, which says to use
JSON or to install PyYAML.
"""

import json
import os
import re

__all__ = ["load_spec"]


def load_spec(path):
    """The document in path: JSON, or YAML (by PyYAML or the subset here)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError("spec file %r not found" % path)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith(".json"):
        return json.loads(text)
    try:
        import yaml  # PyYAML, when installed
    except ImportError:
        return parse_yaml(text, path)
    return yaml.safe_load(text)


class _Line:
    __slots__ = ("no", "indent", "text")

    def __init__(self, no, indent, text):
        self.no, self.indent, self.text = no, indent, text


def _strip_comment(s):
    """s without a trailing # comment (one outside quotes, after a space)."""
    quote = None
    for i, ch in enumerate(s):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or s[i - 1] in " \t"):
            return s[:i].rstrip()
    return s.rstrip()


def parse_yaml(text, name="<spec>", parser=None):
    """Parses the YAML subset described in the module's documentation
    (parser: a _Parser subclass that reads scalars its own way)."""
    lines = []
    for no, raw in enumerate(text.splitlines(), 1):
        if "\t" in raw[:len(raw) - len(raw.lstrip())]:
            raise ValueError("%s:%d: tabs in indentation" % (name, no))
        body = _strip_comment(raw)
        if body.strip() in ("", "---"):
            continue
        lines.append(_Line(no, len(body) - len(body.lstrip()), body.strip()))
    if not lines:
        return None
    p = (parser or _Parser)(lines, name)
    value = p.block(lines[0].indent)
    if p.i < len(lines):
        p.fail(lines[p.i], "unexpected indentation")
    return value


class _Parser:
    def __init__(self, lines, name):
        self.lines, self.name, self.i = lines, name, 0

    def fail(self, line, why):
        raise ValueError("%s:%d: %s (for other YAML, install PyYAML or write the spec as JSON)" % (self.name, line.no, why))

    def block(self, indent):
        line = self.lines[self.i]
        if line.text == "-" or line.text.startswith("- "):
            return self.sequence(indent)
        return self.mapping(indent)

    def mapping(self, indent):
        out = {}
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if line.indent < indent:
                break
            if line.indent > indent:
                self.fail(line, "unexpected indentation")
            if line.text == "-" or line.text.startswith("- "):
                break
            key, rest = self.key_value(line, line.text)
            self.i += 1
            if key in out:
                self.fail(line, "key %r twice" % key)
            out[key] = self.value_after(rest, indent, line)
        return out

    def sequence(self, indent):
        out = []
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if line.indent != indent or not (line.text == "-" or line.text.startswith("- ")):
                if line.indent > indent:
                    self.fail(line, "unexpected indentation")
                break
            item = line.text[1:].lstrip()
            if not item:
                self.i += 1
                out.append(self.nested(indent, line))
            elif _is_key(item):
                # A mapping starting on the dash's line: its keys line up
                # with the first one.
                inner = indent + (len(line.text) - len(item))
                self.lines[self.i] = _Line(line.no, inner, item)
                out.append(self.mapping(inner))
            else:
                self.i += 1
                out.append(self.scalar_or_flow(item, line))
        return out

    def value_after(self, rest, indent, line):
        if rest:
            return self.scalar_or_flow(rest, line)
        if self.i < len(self.lines):
            nxt = self.lines[self.i]
            # A sequence may sit at its key's indentation.
            if nxt.indent == indent and (nxt.text == "-" or nxt.text.startswith("- ")):
                return self.sequence(indent)
        return self.nested(indent, line)

    def nested(self, indent, line):
        if self.i < len(self.lines) and self.lines[self.i].indent > indent:
            return self.block(self.lines[self.i].indent)
        return None

    def key_value(self, line, text):
        m = _KEY.match(text)
        if not m:
            self.fail(line, "expected 'key: value'")
        key = m.group(1)
        if key[0] in "'\"":
            key = _quoted(key, line, self)
        return key, text[m.end():].strip()

    def scalar_or_flow(self, s, line):
        if s.startswith("["):
            if not s.endswith("]"):
                self.fail(line, "a flow sequence must end on its line")
            return [self.scalar_or_flow(v, line) for v in _split_flow(s[1:-1], line, self)]
        if s.startswith("{"):
            if not s.endswith("}"):
                self.fail(line, "a flow mapping must end on its line")
            out = {}
            for item in _split_flow(s[1:-1], line, self):
                k, v = self.key_value(line, item if _KEY.match(item) else item + ":")
                out[k] = self.scalar_or_flow(v, line) if v else None
            return out
        if s[0] in "&*!|>%@`":
            self.fail(line, "unsupported YAML %r" % s[0])
        return _scalar(s, line, self)


_KEY = re.compile(r"""((?:"(?:[^"\\]|\\.)*")|(?:'(?:[^']|'')*')|[^\s'"#\[\]{},:][^:#]*?)\s*:(?:\s+|$)""")


def _is_key(s):
    return bool(_KEY.match(s)) and not s.startswith(("[", "{"))


def _split_flow(s, line, p):
    items, cur, quote, depth = [], "", None, 0
    for ch in s:
        if quote:
            cur += ch
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            cur += ch
        elif ch in "[{":
            depth += 1
            cur += ch
        elif ch in "]}":
            depth -= 1
            cur += ch
        elif ch == "," and depth == 0:
            items.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if quote or depth:
        p.fail(line, "unbalanced flow collection")
    if cur.strip():
        items.append(cur.strip())
    return items


def _quoted(s, line, p):
    if len(s) < 2 or s[-1] != s[0]:
        p.fail(line, "unterminated quoted scalar")
    if s[0] == '"':
        try:
            return json.loads(s)
        except ValueError:
            p.fail(line, "bad double-quoted scalar")
    return s[1:-1].replace("''", "'")


_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


def _scalar(s, line, p):
    if s[0] in "'\"":
        return _quoted(s, line, p)
    low = s.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "~"):
        return None
    if _INT.match(s):
        return int(s)
    if _FLOAT.match(s):
        return float(s)
    if low in (".inf", "+.inf", "-.inf", ".nan"):
        return float(low.replace(".", ""))
    return s
