"""NACM (RFC 8341) seen from ncclient: user "reader" (password "reader", no
groups in the agent config) may read but not write or run the app RPCs;
"admin" (group admin) may do everything.
"""

import pytest
from ncclient.operations import RPCError
from ncclient.xml_ import to_ele

from conftest import AH_NS, NC_NS, STRICT, ah_config, ah_filter, connect, data_of, text_of

WEB = "<app><name>web</name><description>web server</description></app>"

if not STRICT:
    pytestmark = pytest.mark.skip("user 'reader' exists only in apphostd's interop config")


@pytest.fixture
def reader():
    session = connect(user="reader", password="reader")
    yield session
    if session.connected:
        session.close_session()


def assert_access_denied(err):
    e = err.value
    assert e.tag == "access-denied", e.tag
    assert e.type == "application", e.type
    assert e.severity == "error"


def test_nacm_reader_edit_config_denied(m, reader):
    for target in ("candidate", "running"):
        with pytest.raises(RPCError) as err:
            reader.edit_config(target=target, config=ah_config(WEB))
        assert_access_denied(err)
        assert "app" in (err.value.path or ""), f"error-path {err.value.path!r}"
    # Nothing changed anywhere.
    for source in ("candidate", "running"):
        names = text_of(data_of(m.get_config(source, filter=ah_filter())), "//ah:app/ah:name")
        assert names == [], names


def test_nacm_reader_stop_denied(m, reader):
    m.edit_config(target="running", config=ah_config(WEB))
    with pytest.raises(RPCError) as err:
        reader.dispatch(to_ele(f'<stop xmlns="{AH_NS}"><app>web</app></stop>'))
    assert_access_denied(err)


def test_nacm_reader_kill_session_denied(m, reader):
    with pytest.raises(RPCError) as err:
        reader.kill_session(m.session_id)
    assert_access_denied(err)
    assert m.get_config("running") is not None


def test_nacm_reader_get_config_works(m, reader):
    m.edit_config(target="running", config=ah_config(WEB))
    data = data_of(reader.get_config("running", filter=ah_filter()))
    assert text_of(data, "//ah:app/ah:name") == ["web"]
    assert text_of(data, "//ah:app/ah:description") == ["web server"]
    # <get> too; the NACM configuration itself is hidden from the reader.
    wd = (
        '<get xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
        '<with-defaults xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults">'
        "report-all</with-defaults></get>"
    )
    everything = reader.dispatch(to_ele(wd)).xml
    assert "<name>web</name>" in everything
    assert "enable-nacm" not in everything
    assert "enable-nacm" in m.dispatch(to_ele(wd)).xml


def test_nacm_admin_edits_nacm(m, reader):
    """An admin may change the NACM config: a rule permitting stop for the
    reader takes effect on the reader's next request."""
    acm = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
    rule = (
        f'<config xmlns="{NC_NS}"><nacm xmlns="{acm}">'
        "<groups><group><name>operators</name><user-name>reader</user-name></group></groups>"
        "<rule-list><name>operators</name><group>operators</group>"
        "<rule><name>may-stop</name><module-name>app-hosting</module-name>"
        "<rpc-name>stop</rpc-name><access-operations>exec</access-operations>"
        "<action>permit</action></rule></rule-list></nacm></config>"
    )
    remove = (
        f'<config xmlns="{NC_NS}" xmlns:nc="{NC_NS}"><nacm xmlns="{acm}">'
        '<groups nc:operation="remove"/><rule-list nc:operation="remove"><name>operators</name>'
        "</rule-list></nacm></config>"
    )
    m.edit_config(target="candidate", config=rule)
    m.commit()
    try:
        stop = to_ele(f'<stop xmlns="{AH_NS}"><app>web</app></stop>')
        try:
            reader.dispatch(stop)
        except RPCError as e:
            # Permitted now: whatever the daemon answers, it is not NACM's no.
            assert e.tag != "access-denied", e
        with pytest.raises(RPCError) as err:
            reader.dispatch(to_ele(f'<start xmlns="{AH_NS}"><app>web</app></start>'))
        assert_access_denied(err)
    finally:
        m.edit_config(target="running", config=remove)
