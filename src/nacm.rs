//! NETCONF Access Control (RFC 8341), evaluated on the `ietf-netconf-acm`
//! configuration held in running.
//!
//! The factory default is an implicit last rule-list: group `admin` may do
//! everything. Everyone else gets the RFC defaults: read permitted, write
//! denied, exec permitted except for operations marked
//! `nacm:default-deny-all` (all of ours that change the device, plus
//! `kill-session` and `delete-config`). Configured rule-lists come first, so
//! operators can restrict even `admin`.

use std::collections::HashSet;

use yang2::data::{Data, DataDiffFlags, DataDiffOp, DataNodeRef, DataTree};
use yang2::schema::SchemaNode;

use crate::error::{ErrorTag, ErrorType, RpcError};

const NACM_MODULE: &str = "ietf-netconf-acm";

/// Who is asking: the SSH user and the groups the agent config gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub groups: Vec<String>,
}

/// An access operation (RFC 8341 `access-operations-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Create,
    Read,
    Update,
    Delete,
    Exec,
}

impl Access {
    fn as_str(self) -> &'static str {
        match self {
            Access::Create => "create",
            Access::Read => "read",
            Access::Update => "update",
            Access::Delete => "delete",
            Access::Exec => "exec",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Permit,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RuleType {
    /// No rule-type: matches every kind of request in the module.
    Any,
    Rpc(String),
    Notification(String),
    /// A data path in libyang (module-name prefixed) form.
    Path(String),
}

#[derive(Debug, Clone)]
struct Rule {
    module: String,
    kind: RuleType,
    /// `None` = "*" (all operations).
    ops: Option<Vec<String>>,
    action: Action,
}

#[derive(Debug, Clone)]
struct RuleList {
    groups: Vec<String>,
    rules: Vec<Rule>,
}

/// The access-control configuration, read from running.
#[derive(Debug, Clone)]
pub struct Nacm {
    enabled: bool,
    read_default: Action,
    write_default: Action,
    exec_default: Action,
    external_groups: bool,
    /// (group, members) from `/nacm/groups`.
    groups: Vec<(String, Vec<String>)>,
    rule_lists: Vec<RuleList>,
}

/// The group that the factory default lets do everything.
pub const ADMIN_GROUP: &str = "admin";

impl Default for Nacm {
    fn default() -> Self {
        Nacm {
            enabled: true,
            read_default: Action::Permit,
            write_default: Action::Deny,
            exec_default: Action::Permit,
            external_groups: true,
            groups: Vec::new(),
            rule_lists: Vec::new(),
        }
    }
}

fn leaf(node: &DataNodeRef<'_, '_>, name: &str) -> Option<String> {
    node.children()
        .find(|c| c.schema().name() == name)
        .and_then(|c| c.value_canonical())
}

fn leaf_list(node: &DataNodeRef<'_, '_>, name: &str) -> Vec<String> {
    node.children()
        .filter(|c| c.schema().name() == name)
        .filter_map(|c| c.value_canonical())
        .collect()
}

fn action(v: Option<String>, default: Action) -> Action {
    match v.as_deref() {
        Some("permit") => Action::Permit,
        Some("deny") => Action::Deny,
        _ => default,
    }
}

impl Nacm {
    /// Reads `/ietf-netconf-acm:nacm` from a (validated) running tree.
    /// Absent nodes take their YANG defaults.
    pub fn from_running(tree: &DataTree<'_>) -> Nacm {
        let mut nacm = Nacm::default();
        let Ok(top) = tree.find_path(&format!("/{NACM_MODULE}:nacm")) else {
            return nacm;
        };
        nacm.enabled = leaf(&top, "enable-nacm").is_none_or(|v| v == "true");
        nacm.read_default = action(leaf(&top, "read-default"), Action::Permit);
        nacm.write_default = action(leaf(&top, "write-default"), Action::Deny);
        nacm.exec_default = action(leaf(&top, "exec-default"), Action::Permit);
        nacm.external_groups = leaf(&top, "enable-external-groups").is_none_or(|v| v == "true");
        for child in top.children() {
            match child.schema().name() {
                "groups" => {
                    for g in child.children().filter(|c| c.schema().name() == "group") {
                        if let Some(name) = leaf(&g, "name") {
                            nacm.groups.push((name, leaf_list(&g, "user-name")));
                        }
                    }
                }
                "rule-list" => {
                    let groups = leaf_list(&child, "group");
                    let mut rules = Vec::new();
                    for r in child.children().filter(|c| c.schema().name() == "rule") {
                        let kind = if let Some(v) = leaf(&r, "rpc-name") {
                            RuleType::Rpc(v)
                        } else if let Some(v) = leaf(&r, "notification-name") {
                            RuleType::Notification(v)
                        } else if let Some(v) = leaf(&r, "path") {
                            RuleType::Path(v)
                        } else {
                            RuleType::Any
                        };
                        let ops = match leaf(&r, "access-operations").as_deref() {
                            None | Some("*") => None,
                            Some(bits) => {
                                Some(bits.split_whitespace().map(str::to_string).collect())
                            }
                        };
                        rules.push(Rule {
                            module: leaf(&r, "module-name").unwrap_or_else(|| "*".into()),
                            kind,
                            ops,
                            action: action(leaf(&r, "action"), Action::Deny),
                        });
                    }
                    nacm.rule_lists.push(RuleList { groups, rules });
                }
                _ => {}
            }
        }
        nacm
    }

    /// Whether access control is on at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether `p` may do everything, so reads need not copy and filter the
    /// tree and writes need no diff: NACM is off, or `p` is in `admin` and
    /// no configured rule-list applies to it (the factory rule then permits
    /// all).
    pub fn unrestricted(&self, p: &Principal) -> bool {
        if !self.enabled {
            return true;
        }
        let groups = self.groups_of(p);
        groups.iter().any(|g| g == ADMIN_GROUP)
            && !self
                .rule_lists
                .iter()
                .any(|rl| rl.groups.iter().any(|g| g == "*" || groups.contains(g)))
    }

    /// Groups of `p`: NACM's own groups naming the user, plus the agent
    /// config's groups when external groups are enabled.
    pub fn groups_of(&self, p: &Principal) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if self.external_groups {
            out.extend(p.groups.iter().cloned());
        }
        for (g, members) in &self.groups {
            if members.iter().any(|m| m == &p.name) && !out.contains(g) {
                out.push(g.clone());
            }
        }
        out
    }

    /// The rule-lists that apply to these groups, configured ones first,
    /// then the factory default for `admin`.
    fn applicable<'s>(&'s self, groups: &'s [String]) -> impl Iterator<Item = &'s Rule> + 's {
        let configured = self
            .rule_lists
            .iter()
            .filter(move |rl| rl.groups.iter().any(|g| g == "*" || groups.contains(g)))
            .flat_map(|rl| rl.rules.iter());
        let factory = groups
            .iter()
            .any(|g| g == ADMIN_GROUP)
            .then_some(&*FACTORY_ADMIN)
            .into_iter();
        configured.chain(factory)
    }

    /// May `p` invoke operation `rpc` of `module`? (RFC 8341 §3.4.4)
    pub fn check_rpc(&self, p: &Principal, module: &str, rpc: &str) -> Result<(), RpcError> {
        if !self.enabled || (module == "ietf-netconf" && rpc == "close-session") {
            return Ok(());
        }
        let groups = self.groups_of(p);
        for rule in self.applicable(&groups) {
            if !rule.module_matches(module) || !rule.ops_match(Access::Exec) {
                continue;
            }
            let kind_matches = match &rule.kind {
                RuleType::Any => true,
                RuleType::Rpc(n) => n == "*" || n == rpc,
                _ => false,
            };
            if kind_matches {
                return match rule.action {
                    Action::Permit => Ok(()),
                    Action::Deny => Err(denied_rpc(module, rpc)),
                };
            }
        }
        let deny_all = (module == "ietf-netconf"
            && (rpc == "kill-session" || rpc == "delete-config"))
            || rpc_schema(module, rpc).is_some_and(|s| has_ext(&s, "default-deny-all"));
        if deny_all || self.exec_default == Action::Deny {
            return Err(denied_rpc(module, rpc));
        }
        Ok(())
    }

    /// May `p` receive notification `name` of `module`? (RFC 8341 §3.4.6)
    pub fn allow_notification(&self, p: &Principal, module: &str, name: &str) -> bool {
        if !self.enabled {
            return true;
        }
        let groups = self.groups_of(p);
        for rule in self.applicable(&groups) {
            if !rule.module_matches(module) || !rule.ops_match(Access::Read) {
                continue;
            }
            let kind_matches = match &rule.kind {
                RuleType::Any => true,
                RuleType::Notification(n) => n == "*" || n == name,
                _ => false,
            };
            if kind_matches {
                return rule.action == Action::Permit;
            }
        }
        let denied_by_schema = yang2_module(module)
            .and_then(|m| m.notifications().find(|n| n.name() == name))
            .is_some_and(|s| has_ext(&s, "default-deny-all"));
        !denied_by_schema && self.read_default == Action::Permit
    }

    /// Removes from `tree` every node `p` may not read (RFC 8341 §3.4.5:
    /// denied nodes are silently left out).
    pub fn filter_read(&self, p: &Principal, tree: &mut DataTree<'static>) {
        if self.unrestricted(p) {
            return;
        }
        let groups = self.groups_of(p);
        let matcher = PathMatcher::new(self, &groups, tree);
        let mut denied = Vec::new();
        if let Some(first) = tree.reference() {
            for top in first.inclusive_siblings() {
                self.collect_denied(&groups, &matcher, &top, &mut denied);
            }
        }
        for path in denied {
            // A denied node's path was collected while the tree was intact;
            // removing it cannot invalidate the paths of disjoint subtrees.
            let _ = tree.remove(&path);
        }
    }

    fn collect_denied(
        &self,
        groups: &[String],
        matcher: &PathMatcher,
        node: &DataNodeRef<'_, '_>,
        out: &mut Vec<String>,
    ) {
        // List keys are readable whenever their entry is.
        if node.schema().is_list_key() {
            return;
        }
        let path = node.path();
        if self.decide_data(groups, matcher, node, &path, Access::Read) == Action::Deny {
            out.push(path);
            return;
        }
        for child in node.children() {
            self.collect_denied(groups, matcher, &child, out);
        }
    }

    /// Checks every node that differs between `old` and `new` for write
    /// access (create, update, delete). The first denied node is reported
    /// with its path.
    pub fn check_write(
        &self,
        p: &Principal,
        old: &DataTree<'static>,
        new: &DataTree<'static>,
    ) -> Result<(), RpcError> {
        if self.unrestricted(p) {
            return Ok(());
        }
        let groups = self.groups_of(p);
        let diff = old
            .diff(new, DataDiffFlags::empty())
            .map_err(|e| RpcError::from_yang(&e))?;
        let new_matcher = PathMatcher::new(self, &groups, new);
        let old_matcher = PathMatcher::new(self, &groups, old);
        for (op, node) in diff.iter() {
            let (access, matcher) = match op {
                DataDiffOp::Create => (Access::Create, &new_matcher),
                DataDiffOp::Delete => (Access::Delete, &old_matcher),
                DataDiffOp::Replace => (Access::Update, &new_matcher),
            };
            // Descendants of a created or deleted node inherit its
            // operation; each is checked, so a rule on a child holds.
            for n in node.traverse() {
                let path = n.path();
                if self.decide_data(&groups, matcher, &n, &path, access) == Action::Deny {
                    return Err(
                        RpcError::new(ErrorType::Application, ErrorTag::AccessDenied)
                            .with_path(path)
                            .with_message(format!(
                                "access denied: {} of this node",
                                access.as_str()
                            )),
                    );
                }
            }
        }
        Ok(())
    }

    fn decide_data(
        &self,
        groups: &[String],
        matcher: &PathMatcher,
        node: &DataNodeRef<'_, '_>,
        path: &str,
        access: Access,
    ) -> Action {
        let module = node.schema().module().name().to_string();
        for (i, rule) in self.applicable(groups).enumerate() {
            if !rule.module_matches(&module) || !rule.ops_match(access) {
                continue;
            }
            let kind_matches = match &rule.kind {
                RuleType::Any => true,
                RuleType::Path(_) => matcher.matches(i, path),
                _ => false,
            };
            if kind_matches {
                return rule.action;
            }
        }
        let schema = node.schema();
        let deny_all = schema
            .inclusive_ancestors()
            .any(|s| has_ext(&s, "default-deny-all"));
        let deny_write = schema
            .inclusive_ancestors()
            .any(|s| has_ext(&s, "default-deny-write"));
        match access {
            Access::Read | Access::Exec if deny_all => Action::Deny,
            Access::Read | Access::Exec => self.read_default,
            _ if deny_all || deny_write => Action::Deny,
            _ => self.write_default,
        }
    }
}

/// For each path rule (by its index in `applicable`), the data paths it
/// selects in one tree. A node matches a rule when it or an ancestor is
/// selected.
struct PathMatcher {
    selected: Vec<HashSet<String>>,
}

impl PathMatcher {
    fn new(nacm: &Nacm, groups: &[String], tree: &DataTree<'_>) -> PathMatcher {
        let selected = nacm
            .applicable(groups)
            .map(|rule| match &rule.kind {
                RuleType::Path(p) if p == "/" => ["/".to_string()].into_iter().collect(),
                RuleType::Path(p) => match tree.find_xpath(p) {
                    Ok(set) => set.map(|n| n.path()).collect(),
                    Err(_) => HashSet::new(),
                },
                _ => HashSet::new(),
            })
            .collect();
        PathMatcher { selected }
    }

    fn matches(&self, rule: usize, path: &str) -> bool {
        let Some(set) = self.selected.get(rule) else {
            return false;
        };
        if set.contains("/") {
            return true;
        }
        // Walk up the path: "/a:x/y[k='v']/z" → "/a:x/y[k='v']" → "/a:x".
        let mut p = path;
        loop {
            if set.contains(p) {
                return true;
            }
            match parent_path(p) {
                Some(parent) => p = parent,
                None => return false,
            }
        }
    }
}

/// The parent of a libyang data path, skipping slashes inside predicates.
fn parent_path(path: &str) -> Option<&str> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut last = None;
    for (i, c) in path.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => depth = depth.saturating_sub(1),
            (None, '/') if depth == 0 => last = Some(i),
            _ => {}
        }
    }
    match last {
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

impl Rule {
    fn module_matches(&self, module: &str) -> bool {
        self.module == "*" || self.module == module
    }
    fn ops_match(&self, access: Access) -> bool {
        match &self.ops {
            None => true,
            Some(ops) => ops.iter().any(|o| o == access.as_str()),
        }
    }
}

static FACTORY_ADMIN: std::sync::LazyLock<Rule> = std::sync::LazyLock::new(|| Rule {
    module: "*".into(),
    kind: RuleType::Any,
    ops: None,
    action: Action::Permit,
});

fn denied_rpc(module: &str, rpc: &str) -> RpcError {
    // RFC 8341 §3.4.4: access-denied, error-type application.
    RpcError::new(ErrorType::Application, ErrorTag::AccessDenied)
        .with_message(format!("access denied: operation {module}:{rpc}"))
}

/// Whether `module` (implemented) defines the operation `rpc`.
pub fn is_rpc(module: &str, rpc: &str) -> bool {
    rpc_schema(module, rpc).is_some()
}

fn yang2_module(module: &str) -> Option<yang2::schema::SchemaModule<'static>> {
    crate::schema::context().get_module_implemented(module)
}

fn rpc_schema(module: &str, rpc: &str) -> Option<SchemaNode<'static>> {
    yang2_module(module)?.rpcs().find(|n| n.name() == rpc)
}

/// Whether a schema node carries the `ietf-netconf-acm` extension `name`.
fn has_ext(node: &SchemaNode<'_>, name: &str) -> bool {
    // SAFETY: `as_raw` points at a compiled node of the static context, which
    // lives for the whole process. `exts` is a libyang sized array (count
    // stored just before the first element) or null; each `def` points at a
    // compiled extension definition with a module.
    unsafe {
        let raw = node.as_raw();
        if raw.is_null() {
            return false;
        }
        let exts = (*raw).exts;
        if exts.is_null() {
            return false;
        }
        let count = *(exts as *const u64).offset(-1);
        for i in 0..count as usize {
            let ext = exts.add(i);
            let def = (*ext).def;
            if def.is_null() || (*def).name.is_null() || (*def).module.is_null() {
                continue;
            }
            let ext_name = std::ffi::CStr::from_ptr((*def).name).to_string_lossy();
            let module = (*(*def).module).name;
            if module.is_null() {
                continue;
            }
            let module = std::ffi::CStr::from_ptr(module).to_string_lossy();
            if ext_name == name && module == NACM_MODULE {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yang2::data::{DataFormat, DataParserFlags, DataValidationFlags};

    fn tree(xml: &str) -> DataTree<'static> {
        let mut s = xml.to_string();
        s.push('\0');
        DataTree::parse_string(
            crate::schema::context(),
            &s,
            DataFormat::XML,
            DataParserFlags::NO_STATE,
            DataValidationFlags::NO_STATE,
        )
        .expect("test data parses")
    }

    fn admin() -> Principal {
        Principal {
            name: "admin".into(),
            groups: vec!["admin".into()],
        }
    }
    fn reader() -> Principal {
        Principal {
            name: "reader".into(),
            groups: vec![],
        }
    }

    const AH: &str = r#"<app-hosting xmlns="urn:apphost:yang:app-hosting"><cpu>30</cpu><app><name>a</name><description>x</description></app></app-hosting>"#;

    #[test]
    fn factory_default_admin_all_others_read_only() {
        let nacm = Nacm::default();
        assert!(nacm.check_rpc(&admin(), "app-hosting", "stop").is_ok());
        let err = nacm
            .check_rpc(&reader(), "app-hosting", "stop")
            .unwrap_err();
        assert_eq!(err.tag, ErrorTag::AccessDenied);
        assert!(nacm
            .check_rpc(&reader(), "ietf-netconf", "get-config")
            .is_ok());
        assert!(nacm
            .check_rpc(&reader(), "ietf-netconf", "kill-session")
            .is_err());
        assert!(nacm
            .check_rpc(&reader(), "ietf-netconf", "close-session")
            .is_ok());

        let old = tree(AH);
        let new = tree(&AH.replace("<cpu>30</cpu>", "<cpu>40</cpu>"));
        assert!(nacm.check_write(&admin(), &old, &new).is_ok());
        let err = nacm.check_write(&reader(), &old, &new).unwrap_err();
        assert_eq!(err.tag, ErrorTag::AccessDenied);
        assert_eq!(err.path.as_deref(), Some("/app-hosting:app-hosting/cpu"));
    }

    #[test]
    fn rules_permit_and_hide() {
        let cfg = r#"<nacm xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm">
          <groups><group><name>ops</name><user-name>reader</user-name></group></groups>
          <rule-list><name>ops</name><group>ops</group>
            <rule><name>no-desc</name><module-name>app-hosting</module-name>
              <path xmlns:ah="urn:apphost:yang:app-hosting">/ah:app-hosting/ah:app/ah:description</path>
              <access-operations>read</access-operations><action>deny</action></rule>
            <rule><name>may-stop</name><module-name>app-hosting</module-name><rpc-name>stop</rpc-name>
              <access-operations>exec</access-operations><action>permit</action></rule>
            <rule><name>may-cpu</name><module-name>app-hosting</module-name>
              <path xmlns:ah="urn:apphost:yang:app-hosting">/ah:app-hosting/ah:cpu</path>
              <access-operations>update</access-operations><action>permit</action></rule>
          </rule-list></nacm>"#;
        let running = tree(&format!("{cfg}{AH}"));
        let nacm = Nacm::from_running(&running);
        assert_eq!(nacm.groups_of(&reader()), vec!["ops".to_string()]);
        assert!(nacm.check_rpc(&reader(), "app-hosting", "stop").is_ok());
        assert!(nacm.check_rpc(&reader(), "app-hosting", "start").is_err());

        let mut data = tree(AH);
        nacm.filter_read(&reader(), &mut data);
        let out = data
            .print_string(
                DataFormat::XML,
                yang2::data::DataPrinterFlags::WITH_SIBLINGS,
            )
            .ok()
            .flatten()
            .unwrap_or_default();
        assert!(!out.contains("description"), "{out}");
        assert!(out.contains("<cpu>30</cpu>"), "{out}");

        let old = tree(AH);
        let new = tree(&AH.replace("<cpu>30</cpu>", "<cpu>40</cpu>"));
        assert!(nacm.check_write(&reader(), &old, &new).is_ok());
        let new2 = tree(&AH.replace(
            "<description>x</description>",
            "<description>y</description>",
        ));
        let err = nacm.check_write(&reader(), &old, &new2).unwrap_err();
        assert_eq!(
            err.path.as_deref(),
            Some("/app-hosting:app-hosting/app[name='a']/description")
        );
    }

    #[test]
    fn nacm_subtree_hidden_from_non_admin() {
        let cfg = r#"<nacm xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm"><read-default>permit</read-default></nacm>"#;
        let mut data = tree(cfg);
        let nacm = Nacm::from_running(&data);
        nacm.filter_read(&reader(), &mut data);
        let out = data
            .print_string(
                DataFormat::XML,
                yang2::data::DataPrinterFlags::WITH_SIBLINGS,
            )
            .ok()
            .flatten()
            .unwrap_or_default();
        assert!(!out.contains("nacm"), "nacm is default-deny-all: {out}");
        let mut data = tree(cfg);
        nacm.filter_read(&admin(), &mut data);
        let out = data
            .print_string(
                DataFormat::XML,
                yang2::data::DataPrinterFlags::WITH_SIBLINGS,
            )
            .ok()
            .flatten()
            .unwrap_or_default();
        assert!(out.contains("nacm"), "{out}");
    }

    #[test]
    fn disabled_nacm_permits_all() {
        let cfg = r#"<nacm xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm"><enable-nacm>false</enable-nacm></nacm>"#;
        let nacm = Nacm::from_running(&tree(cfg));
        assert!(nacm.check_rpc(&reader(), "app-hosting", "stop").is_ok());
    }

    #[test]
    fn unrestricted_only_without_applicable_rules() {
        let nacm = Nacm::default();
        assert!(nacm.unrestricted(&admin()));
        assert!(!nacm.unrestricted(&reader()));
        // A rule-list for everyone applies to admin as well: admin reads
        // must then be filtered like anybody's.
        let cfg = r#"<nacm xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm">
          <rule-list><name>all</name><group>*</group>
            <rule><name>no-cpu</name><module-name>app-hosting</module-name>
              <path xmlns:ah="urn:apphost:yang:app-hosting">/ah:app-hosting/ah:cpu</path>
              <access-operations>read</access-operations><action>deny</action></rule>
          </rule-list></nacm>"#;
        let nacm = Nacm::from_running(&tree(cfg));
        assert!(!nacm.unrestricted(&admin()));
        let mut data = tree(AH);
        nacm.filter_read(&admin(), &mut data);
        let out = data
            .print_string(
                DataFormat::XML,
                yang2::data::DataPrinterFlags::WITH_SIBLINGS,
            )
            .ok()
            .flatten()
            .unwrap_or_default();
        assert!(!out.contains("<cpu>"), "{out}");
        assert!(out.contains("<description>x</description>"), "{out}");
        let off = r#"<nacm xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm"><enable-nacm>false</enable-nacm></nacm>"#;
        assert!(Nacm::from_running(&tree(off)).unrestricted(&reader()));
    }

    #[test]
    fn parent_paths() {
        assert_eq!(parent_path("/a:x/y[k='v/w']/z"), Some("/a:x/y[k='v/w']"));
        assert_eq!(parent_path("/a:x/y[k='v/w']"), Some("/a:x"));
        assert_eq!(parent_path("/a:x"), None);
    }
}
