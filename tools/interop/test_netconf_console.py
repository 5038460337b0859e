"""netconf-console2 (the CLI) against the server under test: hello,
get-config, edit-config on candidate + commit, and an rpc-error shown."""

import os
import shutil
import subprocess
import sys

import pytest
from lxml import etree

from conftest import AH_NS, HOST, PASSWORD, PORT, USER, connect, reset

EXE = shutil.which("netconf-console2") or os.path.join(os.path.dirname(sys.executable), "netconf-console2")


def nc2(*args, check=True):
    cmd = [EXE, "--host", HOST, "--port", str(PORT), "-u", USER, "-p", PASSWORD, *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if check:
        assert p.returncode == 0, f"{cmd}: rc {p.returncode}\n{p.stdout}\n{p.stderr}"
        assert "<rpc-error" not in p.stdout, p.stdout
    return p


@pytest.fixture(autouse=True)
def clean():
    m = connect()
    reset(m)
    yield
    reset(m)
    m.close_session()


def test_netconf_console_hello():
    out = nc2("--hello").stdout
    assert "urn:ietf:params:netconf:capability:candidate:1.0" in out
    assert "module=ietf-netconf&amp;" in out or "module=ietf-netconf&" in out, out


def test_netconf_console_edit_commit_get_config(tmp_path):
    edit = tmp_path / "edit.xml"
    # netconf-console2 wraps the file's content in <config> itself.
    edit.write_text(f'<app-hosting xmlns="{AH_NS}"><app><name>nc2</name><description>console</description></app></app-hosting>')
    out = nc2("--db", "candidate", "--edit-config", str(edit), "--commit").stdout
    assert out.count("<ok") == 2, out
    out = nc2("--get-config", "/ah:app-hosting", "-N", f"ah={AH_NS}").stdout
    tree = etree.fromstring(out.encode())
    assert tree.xpath("//ah:app[ah:name='nc2']/ah:description/text()", namespaces={"ah": AH_NS}) == ["console"], out


def test_netconf_console_shows_rpc_error(tmp_path):
    edit = tmp_path / "bad.xml"
    edit.write_text(f'<app-hosting xmlns="{AH_NS}"><no-such-leaf/></app-hosting>')
    out = nc2("--db", "candidate", "--edit-config", str(edit), check=False).stdout
    assert "<error-tag>unknown-element</error-tag>" in out, out
