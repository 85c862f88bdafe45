#!/usr/bin/env python3
"""Compiles and runs the C and Python snippets of README.md and docs/*.md (issue #14: every
documented snippet is checked in CI, so the documentation cannot rot).

    doc_snippets.py c      CC_FLAGS...   # needs MEF_URL, MEF_PSK_URL, MEF_CA, DEVICE_CERT,
    doc_snippets.py python               # DEVICE_KEY, KPM_HEX (scripts/lib/mef-fixture.sh)

Rust snippets are doctests instead (`#[doc = include_str!("../README.md")]` in src/lib.rs and
mef/src/lib.rs).

A snippet runs against the local MEF of the fixture: the documentation's example names are
replaced by the fixture's (the MEF URIs, the store directory); the file names `mef-ca.pem`,
`device.pem` and `device.key` exist in the snippet's working directory. Every snippet must
succeed and install a certificate unless the line before its fence says
`<!-- snippet: compile-only -->` (C: compiled with -Wall -Werror and linked, not run; Python:
run, but it need not install anything) — an illustrative snippet must say so. A C snippet
that defines functions (code a host puts in its own file) is marked
`<!-- snippet: file-scope -->`: it is compiled and linked as a file of its own, with an empty
`main`, and not run.

A C snippet is a fragment: `#include` lines go to file scope, the rest becomes the body of
`main`, which provides `mef_ca_pem`, `device_cert_pem`, `device_key_pem` (file contents) and
`kpm`/`kpm_len` (the fixture's Kpm) and exits non-zero unless the snippet left `r == MEF_OK`.
The Python snippets of one file run in order in one namespace (as a reader types them).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "python" / "README.md"]
FENCE = re.compile(r"^```(\w+)\s*$")
MARK = "<!-- snippet: compile-only -->"
FILE_SCOPE = "<!-- snippet: file-scope -->"
STORE_DIRS = ("/var/lib/mycse/cred", "/var/lib/mydevice/credentials")


def snippets(lang):
    """(path, line, code, compile_only) for each ```lang block."""
    out = []
    for doc in DOCS:
        if not doc.exists():
            continue
        lines = doc.read_text().splitlines()
        i = 0
        while i < len(lines):
            m = FENCE.match(lines[i])
            if m:
                j = i + 1
                while not lines[j].startswith("```"):
                    j += 1
                if m.group(1) == lang:
                    mark = lines[i - 1].strip() if i > 0 else ""
                    compile_only = mark in (MARK, FILE_SCOPE)
                    if mark == FILE_SCOPE:
                        compile_only = "file-scope"
                    out.append((doc, i + 1, "\n".join(lines[i + 1 : j]) + "\n", compile_only))
                i = j
            i += 1
    return out


def localise(code, store):
    env = os.environ
    code = code.replace("https://mef.example.com:8444/.well-known/est", env["MEF_PSK_URL"])
    code = code.replace("https://mef.example.com/.well-known/est", env["MEF_URL"])
    for d in STORE_DIRS:
        code = code.replace(d, str(store))
    return code


def workdir():
    d = Path(tempfile.mkdtemp(prefix="doc-snippet."))
    shutil.copy(os.environ["MEF_CA"], d / "mef-ca.pem")
    shutil.copy(os.environ["DEVICE_CERT"], d / "device.pem")
    shutil.copy(os.environ["DEVICE_KEY"], d / "device.key")
    return d


C_PRELUDE = r"""
#include <onem2m_est.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
static char *doc_slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) { perror(path); exit(90); }
  static char buf[8][65536];
  static int n;
  char *b = buf[n++];
  size_t len = fread(b, 1, sizeof buf[0] - 1, f);
  b[len] = 0;
  fclose(f);
  return b;
}
int main(void) {
  const char *mef_ca_pem = doc_slurp("mef-ca.pem");
  const char *device_cert_pem = doc_slurp("device.pem");
  const char *device_key_pem = doc_slurp("device.key");
  uint8_t kpm[64];
  size_t kpm_len = 0;
  for (const char *h = getenv("KPM_HEX"); h && h[0] && h[1] && kpm_len < sizeof kpm; h += 2) {
    unsigned v;
    if (sscanf(h, "%2x", &v) != 1) break;
    kpm[kpm_len++] = (uint8_t)v;
  }
  (void)mef_ca_pem; (void)device_cert_pem; (void)device_key_pem; (void)kpm; (void)kpm_len;
"""


def check_store(store, what):
    for f in ("cert.pem", "key.pem", "trust-anchors.pem"):
        if not (store / f).is_file():
            raise SystemExit(f"FAIL: {what}: nothing installed ({store / f} missing)")


def run_c(cflags):
    failures = 0
    found = snippets("c")
    for doc, line, code, compile_only in found:
        what = f"{doc.relative_to(REPO)}:{line}"
        wd = workdir()
        store = wd / "store"
        code = localise(code, store)
        includes = [l for l in code.splitlines() if l.startswith("#include")]
        body = [l for l in code.splitlines() if not l.startswith("#include")]
        src = wd / "snippet.c"
        if compile_only == "file-scope":
            src.write_text(
                "#include <onem2m_est.h>\n"
                + f'#line {line + 1} "{doc.relative_to(REPO)}"\n'
                + code
                + "\nint main(void) { return 0; }\n"
            )
        else:
            src.write_text(
                "\n".join(includes)
                + C_PRELUDE
                + f'#line {line + 1} "{doc.relative_to(REPO)}"\n'
                + "\n".join("  " + l if l else l for l in body)
                + "\n  return r == MEF_OK ? 0 : 1;\n}\n"
            )
        exe = wd / "snippet"
        cc = subprocess.run(["cc", str(src), "-o", str(exe), *cflags])
        if cc.returncode != 0:
            print(f"FAIL: {what}: does not compile", file=sys.stderr)
            failures += 1
            continue
        if compile_only:
            print(f"ok: {what} (compiled; marked compile-only)")
            continue
        rc = subprocess.run([str(exe)], cwd=wd).returncode
        if rc != 0:
            print(f"FAIL: {what}: exited with {rc}", file=sys.stderr)
            failures += 1
            continue
        check_store(store, what)
        print(f"ok: {what} (compiled, ran, installed {store})")
        shutil.rmtree(wd)
    return found, failures


def run_python():
    failures = 0
    found = snippets("python")
    by_doc = {}
    for s in found:
        by_doc.setdefault(s[0], []).append(s)
    for doc, items in by_doc.items():
        wd = workdir()
        store = wd / "store"
        namespace = {"__name__": "__doc_snippet__"}
        cwd = os.getcwd()
        os.chdir(wd)
        try:
            for _, line, code, compile_only in items:
                what = f"{doc.relative_to(REPO)}:{line}"
                try:
                    exec(compile(localise(code, store), what, "exec"), namespace)
                except Exception as e:  # noqa: BLE001 - reported, counted as a failure
                    print(f"FAIL: {what}: {type(e).__name__}: {e}", file=sys.stderr)
                    failures += 1
                    continue
                if not compile_only:
                    check_store(store, what)
                print(f"ok: {what}")
        finally:
            os.chdir(cwd)
    return found, failures


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("c", "python"):
        raise SystemExit(__doc__)
    found, failures = run_c(sys.argv[2:]) if sys.argv[1] == "c" else run_python()
    if not found:
        raise SystemExit(f"FAIL: no {sys.argv[1]} snippet found (the extractor is broken)")
    if failures:
        raise SystemExit(f"doc snippets ({sys.argv[1]}): {failures} failure(s)")
    print(f"doc snippets ({sys.argv[1]}): {len(found)} checked")


if __name__ == "__main__":
    main()
