"""Notifications with ncclient (RFC 5277 create-subscription, RFC 6470
events): what a management system subscribing to the agent receives.

Every test opens its own subscriber session; other tests' sessions may come
and go meanwhile, so a test looks for *its* events (by session-id or
content) and skips others.
"""

import datetime
import hashlib
import time

import pytest
from ncclient.operations import RPCError
from ncclient.xml_ import to_ele

from conftest import AH_NS, STRICT, ah_config, connect, require_cap
from test_images import served  # noqa: F401 (a fixture)

NOTIF_NS = "urn:ietf:params:xml:ns:netconf:notification:1.0"
NCN_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
NCEV_NS = "urn:ietf:params:xml:ns:netmod:notification"
NS = {"n": NOTIF_NS, "ncn": NCN_NS, "ah": AH_NS, "ev": NCEV_NS}


def subscriber(**kwargs):
    """A new session with a subscription (kwargs go to create_subscription)."""
    m = connect()
    require_cap(m, ":notification:1.0")
    reply = m.create_subscription(**kwargs)
    assert reply.ok, reply.xml
    return m


def event_of(n):
    """(name, element) of the event inside a notification."""
    kids = [c for c in n.notification_ele if isinstance(c.tag, str)]
    assert kids[0].tag == f"{{{NOTIF_NS}}}eventTime", n.notification_xml
    ev = kids[1]
    return ev.tag.split("}", 1)[1], ev


def take(m, name, pred=lambda ev: True, timeout=10.0):
    """The next notification named `name` for which pred(element) holds."""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        assert left > 0, f"no {name} notification within {timeout} s"
        n = m.take_notification(block=True, timeout=left)
        assert n is not None, f"no {name} notification within {timeout} s"
        got, ev = event_of(n)
        if got == name and pred(ev):
            return ev


def text(ev, path):
    hits = ev.xpath(path, namespaces=NS)
    return hits[0].text if hits else None


def cpu_config(cpu):
    return ah_config(f"<cpu>{cpu}</cpu>")


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def test_notif_capabilities_and_streams():
    m = connect()
    try:
        require_cap(m, "urn:ietf:params:netconf:capability:notification:1.0")
        require_cap(m, "urn:ietf:params:netconf:capability:interleave:1.0")
        data = m.get(filter=("subtree", f'<netconf xmlns="{NCEV_NS}"/>')).data_ele
        names = data.xpath("//ev:stream/ev:name/text()", namespaces=NS)
        assert "NETCONF" in names, names
    finally:
        m.close_session()


def test_notif_config_change_after_commit():
    sub = subscriber()
    m = connect()
    try:
        mine = m.session_id
        m.edit_config(target="candidate", config=cpu_config(37))
        m.commit()
        ev = take(
            sub,
            "netconf-config-change",
            lambda e: text(e, "ncn:changed-by/ncn:session-id") == str(mine),
        )
        assert text(ev, "ncn:datastore") == "running"
        assert text(ev, "ncn:changed-by/ncn:username") == "admin"
        targets = [t.text for t in ev.xpath("ncn:edit/ncn:target", namespaces=NS)]
        assert any(t.endswith(":cpu") for t in targets), targets
        # The session that subscribed still answers RPCs (interleave).
        assert sub.get_config("running").ok
    finally:
        m.edit_config(target="running", config=cpu_config(25))
        m.close_session()
        sub.close_session()


def test_notif_session_start_and_end():
    sub = subscriber()
    try:
        other = connect()
        sid = other.session_id
        ev = take(sub, "netconf-session-start", lambda e: text(e, "ncn:session-id") == sid)
        assert text(ev, "ncn:username") == "admin"
        assert text(ev, "ncn:source-host") == "127.0.0.1"
        other.close_session()
        ev = take(sub, "netconf-session-end", lambda e: text(e, "ncn:session-id") == sid)
        assert text(ev, "ncn:termination-reason") == "closed"
    finally:
        sub.close_session()


def test_notif_replay_with_start_time():
    start = now_rfc3339()
    m = connect()
    try:
        mine = m.session_id
        for cpu in (31, 32):
            m.edit_config(target="running", config=cpu_config(cpu))
        sub = subscriber(
            start_time=start,
            filter=("subtree", f'<netconf-config-change xmlns="{NCN_NS}"/>'),
        )
        try:
            seen = []
            while True:
                n = sub.take_notification(block=True, timeout=10)
                assert n is not None, "replay did not end with replayComplete"
                name, ev = event_of(n)
                if name == "replayComplete":
                    break
                assert name == "netconf-config-change", n.notification_xml
                if text(ev, "ncn:changed-by/ncn:session-id") == str(mine):
                    seen.append(n)
            assert len(seen) == 2, [n.notification_xml for n in seen]
        finally:
            sub.close_session()
    finally:
        m.edit_config(target="running", config=cpu_config(25))
        m.close_session()


def test_notif_filtered_subscription():
    # Only session-end events, with an XPath filter.
    sub = subscriber(filter=("xpath", ({"ncn": NCN_NS}, "/ncn:netconf-session-end")))
    try:
        other = connect()
        sid = other.session_id
        other.edit_config(target="running", config=cpu_config(26))
        other.close_session()
        n = sub.take_notification(block=True, timeout=10)
        assert n is not None
        # Nothing before it: no session-start, no config-change.
        name, ev = event_of(n)
        while name == "netconf-session-end" and text(ev, "ncn:session-id") != sid:
            n = sub.take_notification(block=True, timeout=10)
            assert n is not None
            name, ev = event_of(n)
        assert name == "netconf-session-end", n.notification_xml
        assert text(ev, "ncn:session-id") == sid
    finally:
        sub.close_session()


def test_notif_errors():
    m = connect()
    try:
        require_cap(m, ":notification:1.0")
        with pytest.raises(RPCError) as e:
            m.create_subscription(stream_name="no-such-stream")
        assert e.value.tag == "invalid-value"
        future = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).isoformat()
        with pytest.raises(RPCError) as e:
            m.create_subscription(start_time=future)
        assert e.value.tag == "bad-element"
        assert m.create_subscription().ok
        with pytest.raises(RPCError) as e:
            m.create_subscription()
        assert e.value.tag == "in-use"
        assert m.get_config("running").ok
    finally:
        m.close_session()


def test_notif_image_imported(served):  # noqa: F811 (the fixture)
    if not STRICT:
        pytest.skip("import-image is apphostd's own RPC")
    base, data = served
    sha = hashlib.sha256(data).hexdigest()
    # The importing session itself subscribes: the events arrive while its
    # import runs, before the reply (interleave).
    m = subscriber(filter=("subtree", f'<image-imported xmlns="{AH_NS}"/>'))
    m.timeout = 120
    try:
        reply = m.dispatch(
            to_ele(
                f'<import-image xmlns="{AH_NS}"><url>{base}/interop.img</url>'
                f"<name>interop-notif.img</name><sha256>{sha}</sha256></import-image>"
            )
        )
        assert reply.ok, reply.xml
        ev = take(m, "image-imported", lambda e: text(e, "ah:name") == "interop-notif.img")
        assert text(ev, "ah:sha256") == sha
        assert text(ev, "ah:error") is None
    finally:
        try:
            m.dispatch(to_ele(f'<delete-image xmlns="{AH_NS}"><name>interop-notif.img</name></delete-image>'))
        except RPCError:
            pass
        m.close_session()
