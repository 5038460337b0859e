"""Shared fixtures of the NETCONF interop suite.

The server under test is given by environment variables (tools/interop/run.sh
sets them):

  NC_HOST      default 127.0.0.1
  NC_PORT      default 18830
  NC_USER      default admin
  NC_PASSWORD  default admin
  NC_SERVER    "apphostd" (default) or "netconfd": with "apphostd" every
               behaviour is required; with another server a test whose
               optional capability is not announced is skipped, so the
               suite can be checked against a reference peer.
"""

import os
import time

import pytest
from lxml import etree
from ncclient import manager
from ncclient.operations import RPCError

AH_NS = "urn:apphost:yang:app-hosting"
NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"

HOST = os.environ.get("NC_HOST", "127.0.0.1")
PORT = int(os.environ.get("NC_PORT", "18830"))
USER = os.environ.get("NC_USER", "admin")
PASSWORD = os.environ.get("NC_PASSWORD", "admin")
SERVER = os.environ.get("NC_SERVER", "apphostd")
STRICT = SERVER == "apphostd"


def connect(user=USER, password=PASSWORD, timeout=30):
    """A new ncclient session to the server under test."""
    return manager.connect(
        host=HOST,
        port=PORT,
        username=user,
        password=password,
        hostkey_verify=False,
        allow_agent=False,
        look_for_keys=False,
        timeout=timeout,
    )


def has_cap(m, fragment):
    """Whether a server capability contains the given text."""
    return any(fragment in c for c in m.server_capabilities)


def require_cap(m, fragment):
    """Fail on apphostd, skip on a reference peer, when a capability is missing."""
    if has_cap(m, fragment):
        return
    if STRICT:
        pytest.fail(f"capability {fragment!r} not announced")
    pytest.skip(f"{SERVER} does not announce {fragment!r}")


YANGLIB_NS = "urn:ietf:params:xml:ns:yang:ietf-yang-library"


def require_module(m, name):
    """Fail on apphostd, skip on a peer, when the YANG library lacks a module.

    YANG 1.1 modules (ietf-netconf-nmda, app-hosting) are announced only in
    the YANG library (RFC 7950 §5.6.4), not as hello capabilities.
    """
    flt = ("subtree", f'<yang-library xmlns="{YANGLIB_NS}"/>')
    try:
        names = m.get(filter=flt).data_ele.xpath(
            "//yl:module/yl:name/text()", namespaces={"yl": YANGLIB_NS}
        )
    except RPCError:
        names = []
    if name in names:
        return
    if STRICT:
        pytest.fail(f"module {name!r} not in the YANG library")
    pytest.skip(f"{SERVER} does not implement {name!r}")


def ah_config(inner):
    """An edit-config <config> holding app-hosting content."""
    return f'<config xmlns="{NC_NS}"><app-hosting xmlns="{AH_NS}">{inner}</app-hosting></config>'


def ah_filter():
    return ("subtree", f'<app-hosting xmlns="{AH_NS}"/>')


def data_of(reply):
    """The <data> element of a get/get-config reply, as lxml."""
    return reply.data_ele


def find(ele, path):
    """xpath with the app-hosting prefix 'ah' and base prefix 'nc'."""
    return ele.xpath(path, namespaces={"ah": AH_NS, "nc": NC_NS})


def text_of(ele, path):
    hits = find(ele, path)
    return [h.text if isinstance(h, etree._Element) else str(h) for h in hits]


def reset(m):
    """Empty /app-hosting in candidate and running (via candidate + commit)."""
    m.discard_changes()
    cfg = f'<config xmlns="{NC_NS}"><app-hosting xmlns="{AH_NS}" xmlns:nc="{NC_NS}" nc:operation="remove"/></config>'
    try:
        m.edit_config(target="candidate", config=cfg)
    except RPCError:
        pass
    m.commit()


@pytest.fixture
def m():
    """A session on a server whose /app-hosting is empty."""
    session = connect()
    reset(session)
    yield session
    try:
        reset(session)
    finally:
        if session.connected:
            session.close_session()


def wait_until(pred, timeout=10.0, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()
