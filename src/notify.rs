//! Event notifications (RFC 5277): a bus with a bounded replay buffer that
//! never blocks its publishers, and the events we send (RFC 6470 and ours).
//!
//! Publishers call [`Bus::publish`]; subscribers get a replay of the buffer
//! and a `broadcast` receiver. A subscriber too slow to keep up loses the
//! oldest events (`Lagged`): it never slows commits or other sessions, and the
//! loss is counted ([`Bus::note_dropped`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::broadcast;
use yang2::data::{Data, DataFormat, DataOperation, DataPrinterFlags, DataTree};

use crate::error::{ErrorTag, RpcError};

/// The default stream (RFC 5277 §3.2.3).
pub const STREAM_NETCONF: &str = "NETCONF";
/// Application log lines: the seed's `follow log APP`.
pub const STREAM_APP_LOG: &str = "app-log";
/// Namespace of `<notification>` (RFC 5277).
pub const NOTIF_NS: &str = "urn:ietf:params:xml:ns:netconf:notification:1.0";

const NCN_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications";
const AH_NS: &str = crate::schema::AH_NS;

/// One notification, parsed and validated against its YANG definition.
pub struct Event {
    pub time: DateTime<Utc>,
    pub stream: &'static str,
    /// Module and name of the notification, for NACM.
    pub module: String,
    pub name: String,
    /// The notification content as a libyang tree (filters run on it).
    pub tree: DataTree<'static>,
}

impl Event {
    /// Parses notification content (`<netconf-session-start xmlns=..>..`).
    pub fn parse(stream: &'static str, content: &str) -> Result<Event, RpcError> {
        let mut text = content.to_string();
        text.push('\0');
        let tree = DataTree::parse_op_string(
            crate::schema::context(),
            text.as_bytes(),
            DataFormat::XML,
            DataOperation::NotificationYang,
        )
        .map_err(|e| RpcError::from_yang(&e))?;
        let (module, name) = {
            let top = tree
                .reference()
                .ok_or_else(|| RpcError::app(ErrorTag::OperationFailed, "empty notification"))?;
            // The notification node itself may be nested (in a container or
            // list); find the node whose schema is a notification.
            let notif = top
                .traverse()
                .find(|n| n.schema().kind() == yang2::schema::SchemaNodeKind::Notification)
                .unwrap_or(top);
            let s = notif.schema();
            (s.module().name().to_string(), s.name().to_string())
        };
        Ok(Event {
            time: Utc::now(),
            stream,
            module,
            name,
            tree,
        })
    }

    /// `eventTime` text (RFC 3339).
    pub fn event_time(&self) -> String {
        self.time.to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    /// The whole `<notification>` element for the wire, with `content`
    /// (the event tree, possibly filtered) inside.
    pub fn to_xml_with(&self, content: &DataTree<'_>) -> String {
        let body = content
            .print_string(
                DataFormat::XML,
                DataPrinterFlags::WITH_SIBLINGS | DataPrinterFlags::SHRINK,
            )
            .ok()
            .flatten()
            .unwrap_or_default();
        format!(
            "<notification xmlns=\"{NOTIF_NS}\"><eventTime>{}</eventTime>{body}</notification>",
            self.event_time()
        )
    }

    pub fn to_xml(&self) -> String {
        self.to_xml_with(&self.tree)
    }
}

/// `replayComplete` / `notificationComplete` (RFC 5277 §3.4, nc-notifications).
pub fn control_notification(name: &str) -> String {
    format!(
        "<notification xmlns=\"{NOTIF_NS}\"><eventTime>{}</eventTime><{name} xmlns=\"urn:ietf:params:xml:ns:netmod:notification\"/></notification>",
        Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
    )
}

struct Replay {
    events: VecDeque<Arc<Event>>,
    created: DateTime<Utc>,
}

/// The notification bus. One per agent.
pub struct Bus {
    replay: Mutex<Replay>,
    capacity: usize,
    tx: broadcast::Sender<Arc<Event>>,
    dropped: AtomicU64,
}

impl Bus {
    /// `replay` events are kept for startTime replay; each subscriber can
    /// fall `queue` events behind before it starts losing them.
    pub fn new(replay: usize, queue: usize) -> Bus {
        let (tx, _) = broadcast::channel(queue.max(1));
        Bus {
            replay: Mutex::new(Replay {
                events: VecDeque::with_capacity(replay.min(1024)),
                created: Utc::now(),
            }),
            capacity: replay,
            tx,
            dropped: AtomicU64::new(0),
        }
    }

    /// Sends an event to every subscriber and the replay buffer. Never
    /// blocks beyond a short mutex hold.
    pub fn publish(&self, ev: Event) {
        let ev = Arc::new(ev);
        let mut r = self.replay.lock().unwrap_or_else(|p| p.into_inner());
        if self.capacity > 0 {
            if r.events.len() == self.capacity {
                r.events.pop_front();
            }
            r.events.push_back(ev.clone());
        }
        // Sent under the lock so that `subscribe` sees each event exactly
        // once: either in the replay or on the receiver. No receiver is fine.
        let _ = self.tx.send(ev);
    }

    /// Subscribes: the buffered events of `stream` at or after `start` (none
    /// without a start time) and a receiver for what comes next.
    pub fn subscribe(
        &self,
        stream: &str,
        start: Option<DateTime<Utc>>,
    ) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let r = self.replay.lock().unwrap_or_else(|p| p.into_inner());
        let replay = match start {
            Some(t) => r
                .events
                .iter()
                .filter(|e| e.stream == stream && e.time >= t)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        (replay, self.tx.subscribe())
    }

    /// When the replay log starts (`replayLogCreationTime`).
    pub fn replay_created(&self) -> DateTime<Utc> {
        self.replay
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .created
    }

    /// Counts notifications a slow subscriber lost.
    pub fn note_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Notifications lost by slow subscribers since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// `/nc-notifications:netconf/streams` state data.
    pub fn streams_state(&self) -> Result<DataTree<'static>, RpcError> {
        let created = self
            .replay_created()
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let xml = format!(
            "<netconf xmlns=\"urn:ietf:params:xml:ns:netmod:notification\"><streams>\
             <stream><name>{STREAM_NETCONF}</name><description>NETCONF base events (RFC 6470) and app-hosting events</description>\
             <replaySupport>true</replaySupport><replayLogCreationTime>{created}</replayLogCreationTime></stream>\
             <stream><name>{STREAM_APP_LOG}</name><description>Lines written by applications</description>\
             <replaySupport>true</replaySupport><replayLogCreationTime>{created}</replayLogCreationTime></stream>\
             </streams></netconf>\0"
        );
        DataTree::parse_string(
            crate::schema::context(),
            xml.as_bytes(),
            DataFormat::XML,
            yang2::data::DataParserFlags::NO_VALIDATION,
            yang2::data::DataValidationFlags::empty(),
        )
        .map_err(|e| RpcError::from_yang(&e))
    }

    /// Known stream names.
    pub fn has_stream(name: &str) -> bool {
        name == STREAM_NETCONF || name == STREAM_APP_LOG
    }
}

/// Escapes text for XML content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry most control characters; logs may.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Who caused an event (RFC 6470 `common-session-parms`).
#[derive(Debug, Clone)]
pub struct SessionParms {
    pub username: String,
    pub session_id: u32,
    pub source_host: Option<String>,
}

impl SessionParms {
    fn xml(&self) -> String {
        let mut s = format!(
            "<username>{}</username><session-id>{}</session-id>",
            xml_escape(&self.username),
            self.session_id
        );
        if let Some(h) = &self.source_host {
            s.push_str(&format!("<source-host>{}</source-host>", xml_escape(h)));
        }
        s
    }
}

/// The RFC 6470 and app-hosting events.
pub mod events {
    use super::*;

    pub fn session_start(who: &SessionParms) -> Result<Event, RpcError> {
        Event::parse(
            STREAM_NETCONF,
            &format!(
                "<netconf-session-start xmlns=\"{NCN_NS}\">{}</netconf-session-start>",
                who.xml()
            ),
        )
    }

    /// `reason`: closed, killed, dropped, timeout, bad-hello, other.
    pub fn session_end(
        who: &SessionParms,
        killed_by: Option<u32>,
        reason: &str,
    ) -> Result<Event, RpcError> {
        let killed = killed_by
            .map(|k| format!("<killed-by>{k}</killed-by>"))
            .unwrap_or_default();
        Event::parse(
            STREAM_NETCONF,
            &format!(
                "<netconf-session-end xmlns=\"{NCN_NS}\">{}{killed}<termination-reason>{}</termination-reason></netconf-session-end>",
                who.xml(),
                xml_escape(reason)
            ),
        )
    }

    /// `edits`: (libyang data path, operation) of each change. `who` None =
    /// the server itself (e.g. a confirmed-commit rollback).
    pub fn config_change(
        who: Option<&SessionParms>,
        datastore: &str,
        edits: &[(String, &str)],
    ) -> Result<Event, RpcError> {
        let by = match who {
            Some(w) => format!("<changed-by>{}</changed-by>", w.xml()),
            None => "<changed-by><server/></changed-by>".to_string(),
        };
        let mut body = String::new();
        for (path, op) in edits {
            let (xpath, decls) = qualify_path(path);
            body.push_str(&format!(
                "<edit><target{decls}>{}</target><operation>{}</operation></edit>",
                xml_escape(&xpath),
                xml_escape(op)
            ));
        }
        Event::parse(
            STREAM_NETCONF,
            &format!("<netconf-config-change xmlns=\"{NCN_NS}\">{by}<datastore>{datastore}</datastore>{body}</netconf-config-change>"),
        )
    }

    /// `event`: start, cancel, timeout, extend, complete.
    pub fn confirmed_commit(
        who: Option<&SessionParms>,
        event: &str,
        timeout: Option<u32>,
    ) -> Result<Event, RpcError> {
        let parms = who.map(|w| w.xml()).unwrap_or_default();
        let t = timeout
            .map(|t| format!("<timeout>{t}</timeout>"))
            .unwrap_or_default();
        Event::parse(
            STREAM_NETCONF,
            &format!("<netconf-confirmed-commit xmlns=\"{NCN_NS}\">{parms}<confirm-event>{event}</confirm-event>{t}</netconf-confirmed-commit>"),
        )
    }

    pub fn app_state_changed(
        app: &str,
        status: &str,
        previous: &str,
        reason: &str,
    ) -> Result<Event, RpcError> {
        Event::parse(
            STREAM_NETCONF,
            &format!(
                "<app-state-changed xmlns=\"{AH_NS}\"><app>{}</app><status>{status}</status><previous-status>{previous}</previous-status><reason>{}</reason></app-state-changed>",
                xml_escape(app),
                xml_escape(reason)
            ),
        )
    }

    pub fn app_log(app: &str, line: &str) -> Result<Event, RpcError> {
        Event::parse(
            STREAM_APP_LOG,
            &format!(
                "<app-log xmlns=\"{AH_NS}\"><app>{}</app><line>{}</line></app-log>",
                xml_escape(app),
                xml_escape(line)
            ),
        )
    }

    /// Any notification content of a loaded module (image import events).
    pub fn custom(stream: &'static str, content: &str) -> Result<Event, RpcError> {
        Event::parse(stream, content)
    }
}

/// Turns a libyang data path (`/app-hosting:app-hosting/app[name='x']`) into
/// an XML instance-identifier with a prefix per module and the `xmlns`
/// declarations for them (`(path, " xmlns:app-hosting=\"urn:..\"")`).
pub fn qualify_path(path: &str) -> (String, String) {
    let ctx = crate::schema::context();
    let mut out = String::with_capacity(path.len() * 2);
    let mut modules: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars().peekable();
    let mut in_pred = 0usize;
    let mut quote: Option<char> = None;
    // Copies names, qualifying each unprefixed one with the current module.
    let mut name = String::new();
    let flush =
        |name: &mut String, out: &mut String, current: &mut String, modules: &mut Vec<String>| {
            if name.is_empty() {
                return;
            }
            if let Some((m, n)) = name.split_once(':') {
                *current = m.to_string();
                out.push_str(&format!("{m}:{n}"));
            } else if current.is_empty() {
                out.push_str(name);
            } else {
                out.push_str(&format!("{current}:{name}"));
            }
            if !current.is_empty() && !modules.contains(current) {
                modules.push(current.clone());
            }
            name.clear();
        };
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                flush(&mut name, &mut out, &mut current, &mut modules);
                quote = Some(c);
                out.push(c);
            }
            '/' | '[' | ']' | '=' | ' ' | '.' | '(' | ')' => {
                flush(&mut name, &mut out, &mut current, &mut modules);
                if c == '[' {
                    in_pred += 1;
                } else if c == ']' {
                    in_pred = in_pred.saturating_sub(1);
                }
                // Positional predicates ([1]) are digits: copied as names
                // would be wrong, so digits right after '[' pass through.
                out.push(c);
                if c == '[' {
                    while let Some(d) = chars.peek().copied().filter(|d| d.is_ascii_digit()) {
                        out.push(d);
                        chars.next();
                    }
                }
            }
            c => name.push(c),
        }
    }
    flush(&mut name, &mut out, &mut current, &mut modules);
    let _ = in_pred;
    let decls = modules
        .iter()
        .filter_map(|m| {
            ctx.get_module_implemented(m)
                .map(|md| format!(" xmlns:{m}=\"{}\"", md.namespace()))
        })
        .collect::<String>();
    (out, decls)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who() -> SessionParms {
        SessionParms {
            username: "admin".into(),
            session_id: 3,
            source_host: Some("127.0.0.1".into()),
        }
    }

    #[test]
    fn events_validate_against_their_modules() {
        let e = events::session_start(&who()).expect("session-start");
        assert_eq!(
            (e.module.as_str(), e.name.as_str()),
            ("ietf-netconf-notifications", "netconf-session-start")
        );
        let xml = e.to_xml();
        assert!(xml.contains("<username>admin</username>"), "{xml}");
        assert!(xml.starts_with(
            "<notification xmlns=\"urn:ietf:params:xml:ns:netconf:notification:1.0\"><eventTime>"
        ));
        events::session_end(&who(), Some(4), "killed").expect("session-end");
        let c = events::config_change(
            Some(&who()),
            "running",
            &[(
                "/app-hosting:app-hosting/app[name='a']/description".into(),
                "merge",
            )],
        )
        .expect("config-change");
        let xml = c.to_xml();
        assert!(
            xml.contains("/ah:app-hosting/ah:app[ah:name='a']/ah:description"),
            "{xml}"
        );
        events::config_change(None, "running", &[]).expect("server change");
        events::confirmed_commit(Some(&who()), "start", Some(600)).expect("confirmed-commit");
        let s = events::app_state_changed("a", "running", "starting", "started").expect("state");
        assert_eq!(s.module, "app-hosting");
        let l = events::app_log("a", "hello <world> & \u{1}").expect("log");
        assert_eq!(l.stream, STREAM_APP_LOG);
        assert!(
            events::app_state_changed("a", "bogus", "running", "x").is_err(),
            "status is an enum"
        );
    }

    #[test]
    fn replay_and_live_without_duplicates() {
        let bus = Bus::new(3, 8);
        let t0 = Utc::now();
        for i in 0..5 {
            bus.publish(events::app_log("a", &format!("line {i}")).expect("event"));
        }
        let (replay, mut rx) = bus.subscribe(STREAM_APP_LOG, Some(t0));
        // Capacity 3: the two oldest are gone.
        assert_eq!(replay.len(), 3);
        assert!(replay[0].to_xml().contains("line 2"));
        assert!(rx.try_recv().is_err(), "nothing live yet");
        bus.publish(events::app_log("a", "line 5").expect("event"));
        let live = rx.try_recv().expect("live event");
        assert!(live.to_xml().contains("line 5"));
        let (none, _) = bus.subscribe(STREAM_NETCONF, Some(t0));
        assert!(none.is_empty(), "other stream");
        bus.streams_state().expect("streams state");
    }

    #[test]
    fn slow_subscriber_loses_oldest_and_publisher_never_blocks() {
        let bus = Bus::new(0, 2);
        let (_, mut rx) = bus.subscribe(STREAM_NETCONF, None);
        for i in 0..10 {
            bus.publish(events::app_log("a", &format!("{i}")).expect("event"));
        }
        match rx.try_recv() {
            Err(broadcast::error::TryRecvError::Lagged(n)) => {
                assert_eq!(n, 8);
                bus.note_dropped(n);
            }
            other => panic!("expected lag, got {:?}", other.map(|e| e.to_xml())),
        }
        assert_eq!(bus.dropped(), 8);
    }
}
