//! Typed desired state, read from a validated libyang tree of module
//! `app-hosting`. Reading never fails: a node that is missing or unreadable
//! takes its YANG default, so a validated tree always yields a model (and an
//! unvalidated one still never panics).

use std::collections::BTreeMap;

use yang2::data::{Data, DataNodeRef, DataTree};

/// Path of the top container, module-qualified as libyang prints it.
pub const TOP: &str = "/app-hosting:app-hosting";

pub const DEFAULT_CPU: u8 = 25;
pub const DEFAULT_RAM: u8 = 25;
pub const DEFAULT_MEDIA: &str = "external";
pub const DEFAULT_STORAGE_PATH: &str = "app/images/";
pub const DEFAULT_CMD: &str = "/sbin/init";
pub const DEFAULT_SHELL: &str = "sh";

/// The whole `/app-hosting` configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub cpu: u8,
    pub ram: u8,
    pub storage: Storage,
    pub apps: BTreeMap<String, AppConfig>,
}

impl Default for Desired {
    fn default() -> Self {
        Desired {
            cpu: DEFAULT_CPU,
            ram: DEFAULT_RAM,
            storage: Storage::default(),
            apps: BTreeMap::new(),
        }
    }
}

/// Where images live: a media name and a directory relative to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Storage {
    pub media: String,
    pub path: String,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            media: DEFAULT_MEDIA.into(),
            path: DEFAULT_STORAGE_PATH.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetnsMode {
    /// The app gets its own network namespace (named like the app).
    #[default]
    UserNs,
    /// The app shares the host's network namespace.
    HostOs,
}

/// A host interface moved into the app, renamed to `as_name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortShare {
    pub name: String,
    /// Effective name inside the app (the YANG default "same name" applied).
    pub as_name: String,
}

/// A veth pair: host end `name`, app end `as_name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct VethShare {
    pub name: String,
    pub as_name: String,
}

/// A media directory bind-mounted into the app.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MediaShare {
    pub media: String,
    /// Relative to the media.
    pub path: String,
    /// Absolute mount point in the app (default `/` + path).
    pub as_path: String,
}

/// One `/app-hosting/app` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConfig {
    pub name: String,
    pub enable: bool,
    pub autostart: bool,
    pub description: Option<String>,
    /// Capability names as in capabilities(7), in configuration order.
    pub capabilities: Vec<String>,
    /// Effective command line (YANG default when not set).
    pub cmd: String,
    /// Whether `cmd` was configured by the user (not the YANG default): only
    /// then does it override the image's own entrypoint.
    pub cmd_explicit: bool,
    pub shell: String,
    pub netns: NetnsMode,
    pub ports: Vec<PortShare>,
    pub veths: Vec<VethShare>,
    pub media: Vec<MediaShare>,
    /// Environment in configuration (key) order.
    pub env: Vec<(String, String)>,
    /// Image label.
    pub image: Option<String>,
}

impl AppConfig {
    /// An app with every leaf at its YANG default.
    pub fn new(name: &str) -> Self {
        AppConfig {
            name: name.to_string(),
            enable: false,
            autostart: false,
            description: None,
            capabilities: Vec::new(),
            cmd: DEFAULT_CMD.into(),
            cmd_explicit: false,
            shell: DEFAULT_SHELL.into(),
            netns: NetnsMode::UserNs,
            ports: Vec::new(),
            veths: Vec::new(),
            media: Vec::new(),
            env: Vec::new(),
            image: None,
        }
    }

    /// Data path of this app's list entry (for error-path).
    pub fn path(&self) -> String {
        app_path(&self.name)
    }
}

/// Data path of an app's list entry.
pub fn app_path(name: &str) -> String {
    format!("{TOP}/app[name={}]", pred(name))
}

/// Formats a key predicate value with the right quotes: `'` normally, `"`
/// for a value holding `'` (only free strings such as media paths can).
pub fn pred(v: &str) -> String {
    if v.contains('\'') {
        format!("\"{v}\"")
    } else {
        format!("'{v}'")
    }
}

// ===== parsing =====

impl Desired {
    /// Reads the typed configuration from a running (or candidate) tree.
    pub fn from_tree(tree: &DataTree<'_>) -> Desired {
        let mut d = Desired::default();
        let Ok(set) = tree.find_xpath(TOP) else {
            return d;
        };
        for top in set {
            for child in top.children() {
                match child.schema().name() {
                    "cpu" => d.cpu = parse_u8(&child).unwrap_or(DEFAULT_CPU),
                    "ram" => d.ram = parse_u8(&child).unwrap_or(DEFAULT_RAM),
                    "storage" => {
                        for s in child.children() {
                            match (s.schema().name(), s.value_canonical()) {
                                ("media", Some(v)) => d.storage.media = v,
                                ("path", Some(v)) => d.storage.path = v,
                                _ => {}
                            }
                        }
                    }
                    "app" => {
                        if let Some(app) = parse_app(&child) {
                            d.apps.insert(app.name.clone(), app);
                        }
                    }
                    _ => {}
                }
            }
        }
        d
    }
}

fn parse_u8(node: &DataNodeRef<'_, '_>) -> Option<u8> {
    node.value_canonical()?.parse().ok()
}

fn parse_bool(node: &DataNodeRef<'_, '_>) -> bool {
    node.value_canonical().as_deref() == Some("true")
}

/// Whether libyang added this node as an implicit default (flag
/// `LYD_DEFAULT`), as opposed to a value the user wrote, even one equal to
/// the default (`is_default()` cannot tell these apart).
fn is_implicit_default(node: &DataNodeRef<'_, '_>) -> bool {
    // SAFETY: `as_raw` is a valid node pointer for the lifetime of `node`;
    // `flags` is a plain field read.
    let flags = unsafe { (*node.as_raw()).flags };
    flags & yang2::ffi::LYD_DEFAULT != 0
}

fn leaf(node: &DataNodeRef<'_, '_>, name: &str) -> Option<String> {
    node.children()
        .find(|c| c.schema().name() == name)
        .and_then(|c| c.value_canonical())
}

fn parse_app(node: &DataNodeRef<'_, '_>) -> Option<AppConfig> {
    let name = leaf(node, "name")?;
    let mut app = AppConfig::new(&name);
    for c in node.children() {
        match c.schema().name() {
            "enable" => app.enable = parse_bool(&c),
            "autostart" => app.autostart = parse_bool(&c),
            "description" => app.description = c.value_canonical(),
            "capability" => {
                if let Some(v) = c.value_canonical() {
                    if !app.capabilities.contains(&v) {
                        app.capabilities.push(v);
                    }
                }
            }
            "cmd" => {
                if let Some(v) = c.value_canonical() {
                    // A leaf holding the default value because the user
                    // wrote it is explicit; an implicit default node is not.
                    app.cmd_explicit = !is_implicit_default(&c);
                    app.cmd = v;
                }
            }
            "shell" => {
                if let Some(v) = c.value_canonical() {
                    app.shell = v;
                }
            }
            "netns" if c.value_canonical().as_deref() == Some("host-os") => {
                app.netns = NetnsMode::HostOs;
            }
            "share" => parse_share(&c, &mut app),
            "environment" => {
                if let Some(n) = leaf(&c, "name") {
                    let v = leaf(&c, "value").unwrap_or_default();
                    app.env.push((n, v));
                }
            }
            "image" => app.image = c.value_canonical(),
            _ => {}
        }
    }
    Some(app)
}

fn parse_share(node: &DataNodeRef<'_, '_>, app: &mut AppConfig) {
    for c in node.children() {
        match c.schema().name() {
            "port" => {
                if let Some(name) = leaf(&c, "name") {
                    let as_name = leaf(&c, "as").unwrap_or_else(|| name.clone());
                    app.ports.push(PortShare { name, as_name });
                }
            }
            "veth" => {
                if let Some(name) = leaf(&c, "name") {
                    let as_name = leaf(&c, "as").unwrap_or_else(|| name.clone());
                    app.veths.push(VethShare { name, as_name });
                }
            }
            "media" => {
                if let (Some(media), Some(path)) = (leaf(&c, "media"), leaf(&c, "path")) {
                    let as_path = leaf(&c, "as").unwrap_or_else(|| default_mount_point(&path));
                    app.media.push(MediaShare {
                        media,
                        path,
                        as_path,
                    });
                }
            }
            _ => {}
        }
    }
}

/// `/` followed by the path, without a trailing slash (`data/` → `/data`).
pub fn default_mount_point(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    format!("/{trimmed}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema;
    use yang2::data::{DataFormat, DataParserFlags, DataValidationFlags};

    pub(crate) fn tree(xml: &str) -> DataTree<'static> {
        let mut s = xml.to_string();
        s.push('\0');
        DataTree::parse_string(
            schema::context(),
            s.as_bytes(),
            DataFormat::XML,
            DataParserFlags::NO_STATE | DataParserFlags::STRICT,
            DataValidationFlags::NO_STATE,
        )
        .unwrap()
    }

    #[test]
    fn empty_tree_gives_defaults() {
        let t = DataTree::new(schema::context());
        assert_eq!(Desired::from_tree(&t), Desired::default());
    }

    #[test]
    fn full_app_parsed() {
        let t = tree(
            r#"<app-hosting xmlns="urn:apphost:yang:app-hosting">
              <cpu>30</cpu><ram>40</ram>
              <storage><media>usb</media><path>imgs/</path></storage>
              <app><name>web</name><enable>true</enable><autostart>true</autostart>
                <description>d</description>
                <capability>CAP_NET_ADMIN</capability><capability>CAP_NET_RAW</capability>
                <cmd>/bin/httpd -f</cmd><shell>ash</shell>
                <share>
                  <port><name>eth3</name><as>lan0</as></port>
                  <port><name>eth4</name></port>
                  <veth><name>vweb</name><as>eth0</as></veth>
                  <media><media>usb</media><path>data/www/</path></media>
                  <media><media>usb</media><path>cfg</path><as>/etc/app</as></media>
                </share>
                <environment><name>A</name><value>1</value></environment>
                <environment><name>B</name></environment>
                <image>web-1</image>
              </app>
              <app><name>db</name><netns>host-os</netns></app>
            </app-hosting>"#,
        );
        let d = Desired::from_tree(&t);
        assert_eq!((d.cpu, d.ram), (30, 40));
        assert_eq!(
            d.storage,
            Storage {
                media: "usb".into(),
                path: "imgs/".into()
            }
        );
        let web = &d.apps["web"];
        assert!(web.enable && web.autostart);
        let mut caps = web.capabilities.clone();
        caps.sort();
        assert_eq!(caps, vec!["CAP_NET_ADMIN", "CAP_NET_RAW"]);
        assert_eq!(web.cmd, "/bin/httpd -f");
        assert!(web.cmd_explicit);
        assert_eq!(web.shell, "ash");
        assert_eq!(
            web.ports,
            vec![
                PortShare {
                    name: "eth3".into(),
                    as_name: "lan0".into()
                },
                PortShare {
                    name: "eth4".into(),
                    as_name: "eth4".into()
                }
            ]
        );
        assert_eq!(
            web.veths,
            vec![VethShare {
                name: "vweb".into(),
                as_name: "eth0".into()
            }]
        );
        assert!(web.media.contains(&MediaShare {
            media: "usb".into(),
            path: "data/www/".into(),
            as_path: "/data/www".into()
        }));
        assert!(web.media.contains(&MediaShare {
            media: "usb".into(),
            path: "cfg".into(),
            as_path: "/etc/app".into()
        }));
        assert_eq!(
            web.env,
            vec![("A".into(), "1".into()), ("B".into(), "".into())]
        );
        assert_eq!(web.image.as_deref(), Some("web-1"));
        let db = &d.apps["db"];
        assert!(!db.enable && !db.autostart);
        assert_eq!(db.netns, NetnsMode::HostOs);
        assert_eq!(db.cmd, DEFAULT_CMD);
        assert!(!db.cmd_explicit, "implicit default cmd is not explicit");
        assert_eq!(db.image, None);
    }

    #[test]
    fn explicit_default_cmd_counts_as_explicit() {
        let t = tree(
            r#"<app-hosting xmlns="urn:apphost:yang:app-hosting">
              <app><name>a</name><cmd>/sbin/init</cmd></app></app-hosting>"#,
        );
        let d = Desired::from_tree(&t);
        assert!(d.apps["a"].cmd_explicit);
    }

    /// Every config node of the module is read by the model (holo's
    /// "every node has a callback" check): a node added to the YANG module
    /// without reconciler support fails here.
    #[test]
    fn every_config_node_is_handled() {
        use yang2::schema::{SchemaNodeKind, SchemaPathFormat};
        const HANDLED: &[&str] = &[
            "/app-hosting:app-hosting",
            "/app-hosting:app-hosting/cpu",
            "/app-hosting:app-hosting/ram",
            "/app-hosting:app-hosting/storage",
            "/app-hosting:app-hosting/storage/media",
            "/app-hosting:app-hosting/storage/path",
            "/app-hosting:app-hosting/app",
            "/app-hosting:app-hosting/app/name",
            "/app-hosting:app-hosting/app/enable",
            "/app-hosting:app-hosting/app/autostart",
            "/app-hosting:app-hosting/app/description",
            "/app-hosting:app-hosting/app/capability",
            "/app-hosting:app-hosting/app/cmd",
            "/app-hosting:app-hosting/app/shell",
            "/app-hosting:app-hosting/app/netns",
            "/app-hosting:app-hosting/app/share",
            "/app-hosting:app-hosting/app/share/port",
            "/app-hosting:app-hosting/app/share/port/name",
            "/app-hosting:app-hosting/app/share/port/as",
            "/app-hosting:app-hosting/app/share/veth",
            "/app-hosting:app-hosting/app/share/veth/name",
            "/app-hosting:app-hosting/app/share/veth/as",
            "/app-hosting:app-hosting/app/share/media",
            "/app-hosting:app-hosting/app/share/media/media",
            "/app-hosting:app-hosting/app/share/media/path",
            "/app-hosting:app-hosting/app/share/media/as",
            "/app-hosting:app-hosting/app/environment",
            "/app-hosting:app-hosting/app/environment/name",
            "/app-hosting:app-hosting/app/environment/value",
            "/app-hosting:app-hosting/app/image",
        ];
        let m = schema::context().get_module_latest("app-hosting").unwrap();
        let mut found = Vec::new();
        for top in m.data() {
            for n in top.traverse() {
                let data = matches!(
                    n.kind(),
                    SchemaNodeKind::Container
                        | SchemaNodeKind::Leaf
                        | SchemaNodeKind::LeafList
                        | SchemaNodeKind::List
                );
                if data && n.is_config() {
                    found.push(n.path(SchemaPathFormat::DATA));
                }
            }
        }
        found.sort();
        let mut want: Vec<String> = HANDLED.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(found, want);
    }

    #[test]
    fn key_predicates_quote_safely() {
        assert_eq!(pred("web"), "'web'");
        assert_eq!(pred("it's"), "\"it's\"");
        assert_eq!(app_path("a"), "/app-hosting:app-hosting/app[name='a']");
    }

    #[test]
    fn default_mount_point_trims() {
        assert_eq!(default_mount_point("data/"), "/data");
        assert_eq!(default_mount_point("a/b"), "/a/b");
    }
}
