"""ncclient: import-image over http from a python http.server on loopback,
the image listed in /app-hosting/image, a refused import, delete-image.

Needs mksquashfs (squashfs-tools) to build the image served.
"""

import hashlib
import http.server
import os
import shutil
import subprocess
import tempfile
import threading
from functools import partial

import pytest
from lxml import etree
from ncclient.operations import RPCError
from ncclient.xml_ import to_ele

from conftest import AH_NS, STRICT, connect, require_module, text_of


@pytest.fixture(scope="module")
def served():
    """(base URL, image bytes) of a small SquashFS served over http."""
    if not shutil.which("mksquashfs"):
        pytest.fail("mksquashfs missing: apt-get install squashfs-tools")
    tmp = tempfile.mkdtemp(prefix="apphost-interop-img.")
    root = os.path.join(tmp, "root")
    os.makedirs(os.path.join(root, "etc"))
    with open(os.path.join(root, "etc", "hello"), "w") as f:
        f.write("hello from interop\n")
    srv = os.path.join(tmp, "srv")
    os.makedirs(srv)
    img = os.path.join(srv, "interop.img")
    subprocess.run(
        ["mksquashfs", root, img, "-noappend", "-no-progress", "-quiet"], check=True
    )
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = partial(Quiet, directory=srv)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        with open(img, "rb") as f:
            yield f"http://127.0.0.1:{httpd.server_address[1]}", f.read()
    finally:
        httpd.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


def rpc(m, xml):
    return m.dispatch(to_ele(xml))


def image_names(m):
    flt = ("subtree", f'<app-hosting xmlns="{AH_NS}"><image><name/></image></app-hosting>')
    return text_of(m.get(filter=flt).data_ele, "//ah:image/ah:name")


def delete(m, name):
    return rpc(m, f'<delete-image xmlns="{AH_NS}"><name>{name}</name></delete-image>')


def test_import_and_delete_image(served):
    base, data = served
    m = connect(timeout=120)
    try:
        require_module(m, "app-hosting")
        if not STRICT:
            pytest.skip("import-image is apphostd's own RPC")
        sha = hashlib.sha256(data).hexdigest()
        reply = rpc(
            m,
            f'<import-image xmlns="{AH_NS}"><url>{base}/interop.img</url>'
            f"<name>interop-test.img</name><sha256>{sha}</sha256></import-image>",
        )
        assert text_of(to_ele(reply.xml), "//ah:sha256") == [sha], reply.xml
        assert "interop-test.img" in image_names(m)

        # A wrong checksum: an rpc-error with its app-tag, nothing stored.
        with pytest.raises(RPCError) as e:
            rpc(
                m,
                f'<import-image xmlns="{AH_NS}"><url>{base}/interop.img</url>'
                f"<name>interop-bad.img</name><sha256>{'0' * 64}</sha256></import-image>",
            )
        err = etree.tostring(e.value.xml).decode()
        assert e.value.tag == "operation-failed", err
        assert "<error-app-tag>checksum-mismatch</error-app-tag>" in err, err
        assert "interop-bad.img" not in image_names(m)

        assert delete(m, "interop-test.img").ok
        assert "interop-test.img" not in image_names(m)
        with pytest.raises(RPCError) as e:
            delete(m, "interop-test.img")
        assert e.value.tag == "data-missing", etree.tostring(e.value.xml)
    finally:
        try:
            delete(m, "interop-test.img")
        except RPCError:
            pass
        m.close_session()
