"""ncclient against the server under test: one test per NETCONF behaviour.

ncclient is the library under Ansible's netconf modules, so these are the
requests automation really sends.
"""

import socket
import time

import pytest
from lxml import etree
from ncclient.operations import RPCError
from ncclient.xml_ import to_ele

from conftest import (
    AH_NS,
    NC_NS,
    SERVER,
    STRICT,
    ah_config,
    ah_filter,
    connect,
    data_of,
    find,
    has_cap,
    require_cap,
    require_module,
    text_of,
    wait_until,
)

MON_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
YL_NS = "urn:ietf:params:xml:ns:yang:ietf-yang-library"
NMDA_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
DS_NS = "urn:ietf:params:xml:ns:yang:ietf-datastores"

WEB = "<app><name>web</name><description>web server</description>" "<environment><name>PORT</name><value>8080</value></environment></app>"


def app_names(m, source):
    return text_of(data_of(m.get_config(source, filter=ah_filter())), "//ah:app/ah:name")


def cpu_of(m, source):
    return text_of(data_of(m.get_config(source, filter=ah_filter())), "//ah:app-hosting/ah:cpu")


# ===== hello =====


def test_hello_capabilities():
    m = connect()
    try:
        caps = list(m.server_capabilities)
        for c in (
            "urn:ietf:params:netconf:base:1.0",
            "urn:ietf:params:netconf:base:1.1",
            "urn:ietf:params:netconf:capability:candidate:1.0",
            "urn:ietf:params:netconf:capability:rollback-on-error:1.0",
            "urn:ietf:params:netconf:capability:validate:1.1",
            "urn:ietf:params:netconf:capability:startup:1.0",
            "urn:ietf:params:netconf:capability:xpath:1.0",
        ):
            assert c in caps, c
        assert has_cap(m, "urn:ietf:params:netconf:capability:with-defaults:1.0")
        # app-hosting is YANG 1.1: RFC 7950 section 5.6.4 keeps it out of
        # the hello (it is in the YANG library); a YANG 1.0 server such as
        # netconfd lists it anyway, with its revision.
        ah_caps = [c for c in caps if c.startswith(AH_NS + "?")]
        assert all("revision=2026-12-03" in c for c in ah_caps), ah_caps
        assert has_cap(m, "module=ietf-netconf&"), "ietf-netconf module capability"
        if STRICT:
            assert "urn:ietf:params:netconf:capability:writable-running:1.0" in caps
            assert has_cap(m, "urn:ietf:params:netconf:capability:yang-library:1.1")
        assert int(m.session_id) > 0
    finally:
        m.close_session()


# ===== get-config =====


def test_get_config_running(m):
    reply = m.get_config("running")
    assert reply.ok
    assert data_of(reply).tag == f"{{{NC_NS}}}data"


def test_get_config_candidate(m):
    reply = m.get_config("candidate")
    assert reply.ok
    assert data_of(reply).tag == f"{{{NC_NS}}}data"


# ===== edit-config, validate, commit, discard =====


def test_candidate_merge_validate_commit(m):
    m.edit_config(target="candidate", config=ah_config("<cpu>30</cpu>" + WEB))
    assert app_names(m, "candidate") == ["web"]
    assert app_names(m, "running") == [], "running changed before commit"
    m.validate(source="candidate")
    assert app_names(m, "candidate") == ["web"], "validate changed the candidate"
    m.commit()
    data = data_of(m.get_config("running", filter=ah_filter()))
    if not STRICT and len(data) == 0:
        pytest.xfail(f"{SERVER}: commit after <validate> commits nothing (yuma123 2.13 bug)")
    assert text_of(data, "//ah:app[ah:name='web']/ah:description") == ["web server"]
    assert text_of(data, "//ah:app[ah:name='web']/ah:environment[ah:name='PORT']/ah:value") == ["8080"]
    assert text_of(data, "//ah:app-hosting/ah:cpu") == ["30"]


def test_edit_running_directly(m):
    require_cap(m, ":writable-running")
    m.edit_config(target="running", config=ah_config(WEB))
    assert app_names(m, "running") == ["web"]


def test_discard_changes(m):
    m.edit_config(target="candidate", config=ah_config("<cpu>40</cpu>"))
    assert cpu_of(m, "candidate") == ["40"]
    m.discard_changes()
    assert cpu_of(m, "candidate") == []


# ===== locks and sessions =====


def test_lock_unlock(m):
    m.lock("candidate")
    m.edit_config(target="candidate", config=ah_config("<cpu>35</cpu>"))
    m.discard_changes()
    m.unlock("candidate")
    m.lock("running")
    m.unlock("running")


def test_lock_denied_from_second_session(m):
    m.lock("candidate")
    other = connect()
    try:
        with pytest.raises(RPCError) as err:
            other.lock("candidate")
        assert err.value.tag == "lock-denied"
        info = err.value.info or ""
        assert f">{m.session_id}<" in info, f"session-id {m.session_id} not in error-info: {info}"
    finally:
        other.close_session()
        m.unlock("candidate")


def test_lock_released_when_session_dropped():
    a = connect()
    a.lock("candidate")
    b = connect()
    try:
        with pytest.raises(RPCError):
            b.lock("candidate")
        # Drop A's TCP connection without <close-session>.
        sock = a._session._transport.sock
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()

        def try_lock():
            try:
                b.lock("candidate")
                return True
            except RPCError as e:
                assert e.tag == "lock-denied"
                return False

        assert wait_until(try_lock, timeout=15), "lock not released after the session dropped"
        b.unlock("candidate")
    finally:
        b.close_session()


def test_kill_session(m):
    victim = connect()
    victim.lock("candidate")
    vid = victim.session_id
    m.kill_session(vid)

    def try_lock():
        try:
            m.lock("candidate")
            return True
        except RPCError:
            return False

    assert wait_until(try_lock, timeout=10), "lock of the killed session still held"
    m.unlock("candidate")
    assert wait_until(lambda: not victim.connected, timeout=10), "killed session still connected"


# ===== startup =====


def test_copy_running_to_startup(m):
    require_cap(m, ":startup")
    m.edit_config(target="candidate", config=ah_config(WEB))
    m.commit()
    m.copy_config(source="running", target="startup")
    assert app_names(m, "startup") == ["web"]


def test_delete_config_startup(m):
    require_cap(m, ":startup")
    m.edit_config(target="candidate", config=ah_config(WEB))
    m.commit()
    m.copy_config(source="running", target="startup")
    m.delete_config("startup")
    try:
        names = app_names(m, "startup")
    except RPCError as e:
        # An absent startup may also be reported as missing data.
        assert e.tag in ("invalid-value", "data-missing"), e.tag
        names = []
    assert names == []
    assert app_names(m, "running") == ["web"], "delete-config startup touched running"


# ===== filters and with-defaults =====


def test_get_subtree_filter(m):
    m.edit_config(target="candidate", config=ah_config(WEB + "<app><name>db</name></app>"))
    m.commit()
    flt = ("subtree", f'<app-hosting xmlns="{AH_NS}"><app><name>db</name></app></app-hosting>')
    data = data_of(m.get(filter=flt))
    assert text_of(data, "//ah:app/ah:name") == ["db"]
    # Nothing outside the filter.
    assert find(data, "/nc:data/*[not(self::ah:app-hosting)]") == []


def test_get_xpath_filter(m):
    require_cap(m, ":xpath")
    m.edit_config(target="candidate", config=ah_config(WEB + "<app><name>db</name></app>"))
    m.commit()
    flt = ("xpath", ({"ah": AH_NS}, "/ah:app-hosting/ah:app[ah:name='web']/ah:description"))
    data = data_of(m.get(filter=flt))
    assert text_of(data, "//ah:app/ah:description") == ["web server"]
    assert text_of(data, "//ah:app/ah:name") == ["web"]


def test_with_defaults_report_all(m):
    require_cap(m, ":with-defaults")
    m.edit_config(target="candidate", config=ah_config(WEB))
    m.commit()
    assert cpu_of(m, "running") == [], "explicit mode must not show the default cpu"
    data = data_of(m.get_config("running", filter=ah_filter(), with_defaults="report-all"))
    assert text_of(data, "//ah:app-hosting/ah:cpu") == ["25"]
    assert text_of(data, "//ah:app[ah:name='web']/ah:cmd") == ["/sbin/init"]


# ===== schemas =====


def test_get_schema_app_hosting(m):
    # No <format>: "yang" is the default, and servers disagree on how the
    # unprefixed identity ncclient sends is to be read.
    reply = m.get_schema("app-hosting", version="2026-12-03")
    assert "module app-hosting" in reply.data
    assert AH_NS in reply.data


# ===== rpc-error fields =====


def test_error_invalid_value_cpu(m):
    with pytest.raises(RPCError) as err:
        m.edit_config(target="candidate", config=ah_config("<cpu>99</cpu>"))
        # A server may accept it into candidate and refuse it at validate.
        m.validate(source="candidate")
    e = err.value
    assert e.tag == "invalid-value", e.tag
    assert e.type == "application" or not STRICT, e.type
    assert e.severity == "error"
    assert "cpu" in (e.path or ""), f"error-path {e.path!r}"


def test_error_unknown_element(m):
    with pytest.raises(RPCError) as err:
        m.edit_config(target="candidate", config=ah_config("<no-such-leaf>1</no-such-leaf>"))
    assert err.value.tag == "unknown-element", err.value.tag
    if STRICT:
        assert "no-such-leaf" in (err.value.info or ""), err.value.info


def test_error_create_existing_data_exists(m):
    m.edit_config(target="candidate", config=ah_config(WEB))
    create = ah_config(f'<app xmlns:nc="{NC_NS}" nc:operation="create"><name>web</name></app>')
    with pytest.raises(RPCError) as err:
        m.edit_config(target="candidate", config=create)
    assert err.value.tag == "data-exists", err.value.tag


def test_error_delete_missing_data_missing(m):
    delete = ah_config(f'<app xmlns:nc="{NC_NS}" nc:operation="delete"><name>ghost</name></app>')
    with pytest.raises(RPCError) as err:
        m.edit_config(target="candidate", config=delete)
    assert err.value.tag == "data-missing", err.value.tag


def test_rollback_on_error(m):
    require_cap(m, ":rollback-on-error")
    # The first app is fine, the second refers to a bad value: nothing of
    # the edit may remain.
    cfg = ah_config(WEB + "<app><name>bad</name><netns>no-such-ns</netns></app>")
    with pytest.raises(RPCError):
        m.edit_config(target="candidate", config=cfg, error_option="rollback-on-error")
    assert app_names(m, "candidate") == []


# ===== operational state =====


def test_get_data_operational(m):
    require_module(m, "ietf-netconf-nmda")
    m.edit_config(target="candidate", config=ah_config(WEB))
    m.commit()
    rpc = to_ele(
        f'<get-data xmlns="{NMDA_NS}" xmlns:ds="{DS_NS}">'
        f"<datastore>ds:operational</datastore>"
        f'<subtree-filter><app-hosting xmlns="{AH_NS}"/></subtree-filter>'
        f"</get-data>"
    )
    reply = m.dispatch(rpc)
    data = etree.fromstring(reply.xml.encode())
    names = data.xpath("//ah:app/ah:name/text()", namespaces={"ah": AH_NS})
    assert names == ["web"], reply.xml
    # Operational state includes config false nodes (the media list at least).
    assert data.xpath("//ah:app-hosting/ah:media", namespaces={"ah": AH_NS}), reply.xml


def test_netconf_state_sessions(m):
    other = connect()
    try:
        flt = ("subtree", f'<netconf-state xmlns="{MON_NS}"><sessions/></netconf-state>')
        data = data_of(m.get(filter=flt))
        ids = data.xpath("//mon:session/mon:session-id/text()", namespaces={"mon": MON_NS})
        assert str(m.session_id) in ids and str(other.session_id) in ids, ids
        users = data.xpath(
            f"//mon:session[mon:session-id='{m.session_id}']/mon:username/text()", namespaces={"mon": MON_NS}
        )
        assert users == ["admin"], users
    finally:
        other.close_session()


# ===== YANG library, read the way netopeer2-cli reads it =====


def test_yang_library_xpath_wildcard(m):
    flt = ("xpath", ({"yl": YL_NS}, "/yl:*"))
    try:
        data = data_of(m.get(filter=("xpath", "/ietf-yang-library:*")))
    except RPCError:
        # Some servers want a declared prefix rather than a module name.
        data = data_of(m.get(filter=flt))
    names = data.xpath("//yl:module/yl:name/text()", namespaces={"yl": YL_NS})
    assert "app-hosting" in names, names
    assert "ietf-netconf" in names or "ietf-yang-library" in names, names


def test_yang_library_netopeer2_union(m):
    if not STRICT:
        pytest.skip("the schema-mount union is exercised against apphostd only")
    data = data_of(m.get(filter=("xpath", "/ietf-yang-library:*|/ietf-yang-schema-mount:*")))
    names = data.xpath("//yl:module/yl:name/text()", namespaces={"yl": YL_NS})
    assert "app-hosting" in names, names


def test_yang_library_modules_state(m):
    flt = ("subtree", f'<modules-state xmlns="{YL_NS}"/>')
    data = data_of(m.get(filter=flt))
    mods = {
        mod.findtext(f"{{{YL_NS}}}name"): mod for mod in data.iter(f"{{{YL_NS}}}module")
    }
    assert "app-hosting" in mods, sorted(mods)
    ah = mods["app-hosting"]
    assert ah.findtext(f"{{{YL_NS}}}revision") == "2026-12-03"
    assert ah.findtext(f"{{{YL_NS}}}namespace") == AH_NS
    assert ah.findtext(f"{{{YL_NS}}}conformance-type") == "implement"


# ===== confirmed commit =====


def test_confirmed_commit_times_out(m):
    require_cap(m, ":confirmed-commit:1.1")
    m.edit_config(target="candidate", config=ah_config("<cpu>31</cpu>"))
    m.commit()
    m.edit_config(target="candidate", config=ah_config("<cpu>44</cpu>"))
    m.commit(confirmed=True, timeout="1")
    assert cpu_of(m, "running") == ["44"]
    assert wait_until(lambda: cpu_of(m, "running") == ["31"], timeout=5)


def test_confirmed_commit_confirmed_and_cancelled(m):
    require_cap(m, ":confirmed-commit:1.1")
    m.edit_config(target="candidate", config=ah_config("<cpu>32</cpu>"))
    m.commit()
    m.edit_config(target="candidate", config=ah_config("<cpu>45</cpu>"))
    m.commit(confirmed=True, timeout="2")
    m.commit()
    time.sleep(2.5)
    assert cpu_of(m, "running") == ["45"]
    # persist: another session cancels with the token.
    m.edit_config(target="candidate", config=ah_config("<cpu>46</cpu>"))
    m.commit(confirmed=True, persist="interop-tok")
    other = connect()
    try:
        assert cpu_of(other, "running") == ["46"]
        other.cancel_commit(persist_id="interop-tok")
        assert cpu_of(other, "running") == ["45"]
    finally:
        other.close_session()
