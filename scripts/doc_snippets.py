#!/usr/bin/env python3
"""Compiles and runs the C, Python and shell snippets of README.md, docs/*.md, mef/README.md
and python/README.md (issue #14: every documented snippet is checked in CI, so the
documentation cannot rot).

    doc_snippets.py c      CC_FLAGS...   # needs MEF_URL, MEF_PSK_URL, MEF_CA, DEVICE_CERT,
    doc_snippets.py python               # DEVICE_KEY, KPM_HEX (scripts/lib/mef-fixture.sh);
    doc_snippets.py sh                   # sh: also MANUFACTURER_CA (scripts/shell-snippets.sh)

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

Shell blocks (```sh, bash, shell, and the `$ ` lines of console) of one file run in order, each in its own bash
(`set -e -o pipefail`), in one scratch folder per file, so a block uses the files an earlier
one made; target/debug's `onem2m-est` and `onem2m-mef` come first on PATH. The scratch folder
starts with the fixture's `manufacturer-ca.pem`, `device.pem`, `device.key` and `mef-ca.pem`
(the CA of the fixture's MEF), copied in again before a block that names the example MEF
(`https://mef.example.com/...`, which becomes the fixture's). What the runner changes: the
example ports 8443/8444/8445 become free ports (the same ones throughout a file), `/tmp/mef`,
`/etc/mycse` and the example store folders move into the scratch folder (SOFTHSM2_CONF too: a
SoftHSM2 token a block makes is the scratch folder's), `cargo run -p onem2m-mef --` /
`-p onem2m-est-cli --` become the built binary, and a `cargo build`/`cargo install` line is
not run. After a command put in the background (`... &`) the block waits until the
127.0.0.1 ports the command names accept connections; what a block started in the background
is stopped when the block ends. Marks on the line before the fence:
`<!-- snippet: server -->` (the last command is a server: run in the background until it
listens, then stopped), `<!-- snippet: openssl-recipe -->` (run as is; mef/tests/operator.rs
finds the block by it), `<!-- snippet: not-run: REASON -->` (not run, REASON printed; it must
say why and what tests it instead). Every other block must succeed; an unknown mark fails.
"""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    REPO / "mef" / "README.md",
    REPO / "python" / "README.md",
]
FENCE = re.compile(r"^```(\w+)\s*$")
SHELLS = ("sh", "bash", "console", "shell")
MARK = "<!-- snippet: compile-only -->"
FILE_SCOPE = "<!-- snippet: file-scope -->"
STORE_DIRS = ("/var/lib/mycse/cred", "/var/lib/mydevice/credentials")


def snippets(lang, docs=DOCS):
    """(path, line, code, compile_only) for each ```lang block (lang: a name or a tuple)."""
    out = []
    for doc in docs:
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
                if m.group(1) == lang or (isinstance(lang, tuple) and m.group(1) in lang):
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
            shutil.rmtree(wd)
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
        failures_before = failures
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
        if failures == failures_before:  # a failed document's folder is kept, to look at
            shutil.rmtree(wd)
    return found, failures


SH_MARK = re.compile(r"^<!-- snippet: (.*?) -->$")
# Marks a shell block may carry: run as is (the README's openssl recipe, which
# mef/tests/operator.rs also runs), a block whose last command is a server (started, waited for
# until it listens, then stopped), or not run, with the reason.
SH_RUN_MARKS = ("openssl-recipe", "server")
DOC_PORTS = (8443, 8444, 8445)
BG = re.compile(r"(?<!&)&\s*(#.*)?$")
SH_PROLOGUE = r"""set -eo pipefail
export PATH="$DOC_BIN:$PATH"
# PID PORT...: returns once every PORT on 127.0.0.1 accepts connections; fails if PID exits first.
__doc_wait() {
  local pid=$1 p i
  shift
  for p in "$@"; do
    for i in $(seq 1 300); do
      (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue 2
      kill -0 "$pid" 2>/dev/null || { echo "doc-snippet: the background command exited before listening on $p" >&2; return 1; }
      sleep 0.1
    done
    echo "doc-snippet: nothing listens on $p after 30 s" >&2
    return 1
  done
}
# A server the block started in the background is stopped when the block ends.
__doc_stop() {
  local rc=$? p
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  exit "$rc"
}
trap __doc_stop EXIT
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mark_before(doc_lines, fence_line):
    """The `<!-- snippet: ... -->` text on the line before the fence (1-based), or None."""
    if fence_line < 2:
        return None
    m = SH_MARK.match(doc_lines[fence_line - 2].strip())
    return m.group(1) if m else None


def localise_sh(code, wd, ports):
    """The documentation's names made local: the example MEF (mef.example.com) is the fixture's,
    store folders and /tmp/mef are in the scratch folder, the example ports are free ones,
    `cargo run -p PACKAGE --` is the binary that build makes (on PATH)."""
    code = localise(code, wd / "store")
    code = re.sub(r"/tmp/mef\b", str(wd / "tmp-mef"), code)
    code = re.sub(r"/etc/mycse\b", str(wd / "etc-mycse"), code)
    code = re.sub(
        r"\b(127\.0\.0\.1|localhost):(%s)\b" % "|".join(map(str, DOC_PORTS)),
        lambda m: f"{m.group(1)}:{ports[int(m.group(2))]}",
        code,
    )
    code = re.sub(r"cargo run (--release )?-p onem2m-mef --", "onem2m-mef", code)
    code = re.sub(r"cargo run (--release )?-p onem2m-est-cli --", "onem2m-est", code)
    return code


def code_part(line):
    """A line without its trailing comment (` # ...` outside quotes, good enough for the docs)."""
    m = re.search(r"\s#\s[^'\"]*$", line)
    return line[: m.start()] if m else line


def prepare_sh(code, server):
    """The block as the runner executes it: `cargo build`/`cargo install` lines are not run (the
    snippets use the binaries CI built); after a command put in the background (`... &`) the
    block waits until the ports it names listen; with `server`, the last command is put in the
    background that way. Returns (script, error)."""
    lines = code.rstrip("\n").splitlines()
    if server:
        last = code_part(lines[-1]).rstrip()
        if last.endswith("\\") or last.endswith("&"):
            return None, "the server mark needs a foreground command on the last line"
        lines[-1] = last + " &"
    out = []
    command = []
    for line in lines:
        code_only = code_part(line).rstrip()
        if not command and re.match(r"\s*cargo (build|install)\b", line):
            if code_only.endswith("\\"):
                return None, "a cargo build/install line continues on the next line"
            out.append(f"echo {shlex.quote('(not run here: ' + line.strip() + ')')}")
            continue
        command.append(line)
        out.append(line)
        if code_only.endswith("\\"):
            continue
        if BG.search(code_only):
            ports = re.findall(r"127\.0\.0\.1:(\d+)", " ".join(command))
            if not ports:
                return None, "a background command without a 127.0.0.1:PORT to wait for"
            out.append("__doc_wait $! " + " ".join(ports))
        command = []
    return SH_PROLOGUE + "\n".join(out) + "\n", None


def run_block(script, wd, env, timeout=60):
    """Runs one block in its own process group (so a timeout stops its servers too)."""
    path = wd / ".doc-block.sh"
    path.write_text(script)
    proc = subprocess.Popen(
        ["bash", str(path)],
        cwd=wd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        rc = f"timeout after {timeout} s"
        output = b""
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
        proc.wait()
    return rc, output.decode(errors="replace")


def console_commands(code):
    """The commands of a console transcript: the lines after a `$ ` prompt, with their `\`
    continuations; the output lines in between are not run."""
    out, continued = [], False
    for line in code.splitlines():
        if continued or line.startswith("$ "):
            out.append(line if continued else line[2:])
            continued = code_part(line).rstrip().endswith("\\")
    return "\n".join(out) + "\n"


def fixture_files(wd):
    """The fixture's third-party credentials and the CA of its MEF, under the documentation's
    file names (a block that makes its own replaces them)."""
    for src, name in (
        ("MANUFACTURER_CA", "manufacturer-ca.pem"),
        ("DEVICE_CERT", "device.pem"),
        ("DEVICE_KEY", "device.key"),
        ("MEF_CA", "mef-ca.pem"),
    ):
        shutil.copy(os.environ[src], wd / name)


def run_sh(docs=DOCS):
    """Runs the shell blocks of each document in order, in one scratch folder per document (a
    later block uses the files an earlier one made), with the built binaries first on PATH."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not target.is_absolute():
        target = REPO / target
    bins = {b: target / "debug" / b for b in ("onem2m-est", "onem2m-mef")}
    for b, path in bins.items():
        if not path.is_file():
            raise SystemExit(f"FAIL: {path} is not built (scripts/shell-snippets.sh builds it)")
    failures = 0
    found = snippets(SHELLS, docs)
    by_doc = {}
    for s in found:
        by_doc.setdefault(s[0], []).append(s)
    for doc, items in by_doc.items():
        doc_lines = doc.read_text().splitlines()
        wd = Path(tempfile.mkdtemp(prefix="doc-shell."))
        bin_dir = wd / ".bin"
        bin_dir.mkdir()
        for b, path in bins.items():
            (bin_dir / b).symlink_to(path)
        fixture_files(wd)
        ports = {p: free_port() for p in DOC_PORTS}
        # SoftHSM2 tokens a block makes live in the scratch folder, not the system's token folder.
        (wd / "softhsm-tokens").mkdir()
        (wd / "softhsm2.conf").write_text(
            f"directories.tokendir = {wd / 'softhsm-tokens'}\nobjectstore.backend = file\n"
        )
        env = dict(os.environ, DOC_BIN=str(bin_dir), SOFTHSM2_CONF=str(wd / "softhsm2.conf"))
        doc_failures = 0
        for _, line, code, _ in items:
            what = f"{doc.relative_to(REPO) if doc.is_relative_to(REPO) else doc}:{line}"
            mark = mark_before(doc_lines, line)
            if mark is not None and mark.startswith("not-run:"):
                reason = mark[len("not-run:") :].strip()
                if not reason:
                    print(f"FAIL: {what}: a not-run mark without a reason", file=sys.stderr)
                    failures += 1
                else:
                    print(f"not run: {what} ({reason})")
                continue
            if mark is not None and mark not in SH_RUN_MARKS:
                print(f"FAIL: {what}: unknown mark for a shell block: {mark!r}", file=sys.stderr)
                failures += 1
                continue
            if doc_lines[line - 1].strip() == "```console":
                code = console_commands(code)
            if "mef.example.com" in code:
                # The example MEF is the fixture's: the block gets the credentials it trusts.
                fixture_files(wd)
            script, error = prepare_sh(localise_sh(code, wd, ports), mark == "server")
            if error:
                print(f"FAIL: {what}: {error}", file=sys.stderr)
                failures += 1
                continue
            started = time.monotonic()
            rc, output = run_block(script, wd, env)
            if rc != 0:
                print(f"FAIL: {what}: exited with {rc}; its output:\n{output}", file=sys.stderr)
                failures += 1
                doc_failures += 1
                continue
            print(f"ok: {what} (ran in {time.monotonic() - started:.1f} s)")
        if doc_failures == 0 or os.environ.get("KEEP_FIXTURE") != "1":
            shutil.rmtree(wd)
        else:
            print(f"kept {wd}", file=sys.stderr)
    return found, failures


SELF_TEST_DOC = """
```sh
true
```
<!-- snippet: server -->
```sh
onem2m-mef --listen 127.0.0.1:8443 --data-dir mef-data --client-trust manufacturer-ca.pem
```
<!-- snippet: not-run: a reason -->
```sh
false
```
```console
$ echo $((6 * 7))
42
```
```sh
false
```
<!-- snippet: not-run: -->
```sh
true
```
<!-- snippet: compile-only -->
```sh
true
```
```sh
sleep 600 &
```
"""


def self_test():
    """The runner on a document with known outcomes: 4 blocks run or skipped as they should,
    4 failures (a failing block, a mark without a reason, a mark for C, a background command
    with no port to wait for). A runner that finds fewer would pass broken documentation."""
    d = Path(tempfile.mkdtemp(prefix="doc-shell-self-test."))
    try:
        doc = d / "self-test.md"
        doc.write_text(SELF_TEST_DOC)
        print("doc snippets (sh): self-test of the runner (4 FAIL lines expected):")
        found, failures = run_sh([doc])
    finally:
        shutil.rmtree(d)
    if len(found) != 8 or failures != 4:
        raise SystemExit(
            f"FAIL: the shell snippet runner's self-test: {len(found)} blocks found (8 expected), "
            f"{failures} failures (4 expected)"
        )
    print("doc snippets (sh): self-test passed")


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("c", "python", "sh"):
        raise SystemExit(__doc__)
    if sys.argv[1] == "c":
        found, failures = run_c(sys.argv[2:])
    elif sys.argv[1] == "python":
        found, failures = run_python()
    else:
        self_test()
        found, failures = run_sh()
    if not found:
        raise SystemExit(f"FAIL: no {sys.argv[1]} snippet found (the extractor is broken)")
    if failures:
        raise SystemExit(f"doc snippets ({sys.argv[1]}): {failures} failure(s)")
    print(f"doc snippets ({sys.argv[1]}): {len(found)} checked")


if __name__ == "__main__":
    main()
